"""``/api/docs``: the OpenAPI document as a page that needs nothing from the internet.

Litestar's own pages load their scripts from CDNs, which a farm's network may not reach; this
one is rendered here from the same document ``/openapi.json`` serves: each route with its
summary, parameters, and the schemas of its body and answers, everything escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any, Final

import msgspec

_METHODS: Final = ("get", "post", "put", "patch", "delete")
_STYLE: Final = (
    "body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem}"
    "h2{margin-top:2rem;font-size:1.1rem}code,pre{background:#f4f4f4;padding:.1rem .3rem}"
    "pre{padding:.6rem;overflow:auto}.m{font-weight:bold;text-transform:uppercase}"
    "details{margin:.3rem 0}"
)


def _ref(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        return f"list of {_ref(schema['items'])}"
    if "oneOf" in schema:
        return " | ".join(_ref(s) for s in schema["oneOf"] if isinstance(s, dict))
    return str(schema.get("type", "object"))


def _body_of(content: dict[str, Any]) -> str:
    for media in content.values():
        if isinstance(media, dict) and isinstance(media.get("schema"), dict):
            return _ref(media["schema"])
    return ""


def _operation(path: str, method: str, op: dict[str, Any]) -> list[str]:
    lines = [f"<h2><span class=m>{escape(method)}</span> <code>{escape(path)}</code></h2>"]
    if op.get("summary") or op.get("description"):
        lines.append(f"<p>{escape(str(op.get('description') or op.get('summary')))}</p>")
    params = [p for p in op.get("parameters", []) if isinstance(p, dict)]
    if params:
        items = "".join(
            f"<li><code>{escape(str(p.get('name')))}</code> ({escape(str(p.get('in')))}"
            f"{', required' if p.get('required') else ''})</li>"
            for p in params
        )
        lines.append(f"<ul>{items}</ul>")
    body = op.get("requestBody")
    if isinstance(body, dict):
        lines.append(f"<p>Body: <code>{escape(_body_of(body.get('content', {})))}</code></p>")
    for status, answer in sorted(op.get("responses", {}).items()):
        if isinstance(answer, dict):
            shape = _body_of(answer.get("content", {}))
            lines.append(f"<p>{escape(str(status))}: <code>{escape(shape or '-')}</code></p>")
    return lines


def render(document: dict[str, Any]) -> str:
    """The page for an OpenAPI document."""
    info = document.get("info", {})
    parts = [
        "<!doctype html><html><head><meta charset=utf-8>",
        f"<title>{escape(str(info.get('title', 'API')))} API</title><style>{_STYLE}</style>",
        "</head><body>",
        f"<h1>{escape(str(info.get('title', '')))} API {escape(str(info.get('version', '')))}</h1>",
        (
            f"<p>{escape(str(info.get('description', '')))} The machine-readable document: "
            "<a href='/openapi.json'>/openapi.json</a>.</p>"
        ),
    ]
    for path, item in sorted(document.get("paths", {}).items()):
        for method in _METHODS:
            if isinstance(item, dict) and isinstance(item.get(method), dict):
                parts += _operation(path, method, item[method])
    parts.append("<h1>Schemas</h1>")
    for name, schema in sorted(document.get("components", {}).get("schemas", {}).items()):
        text = escape(msgspec.json.format(msgspec.json.encode(schema), indent=2).decode())
        parts.append(
            f"<details><summary><code>{escape(name)}</code></summary><pre>{text}</pre></details>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)
