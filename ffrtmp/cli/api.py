"""``ffrtmp api run``: the HTTP API and the web console; ``ffrtmp api token``: make a token.

The API binds 127.0.0.1 by default and may then run open (no tokens: the local farm). Bound to
any other address it refuses to start without tokens. Tokens come from ``--tokens-file`` (or
``FFRTMP_API_TOKENS_FILE``) and ``FFRTMP_API_TOKENS``, never from the command line.
``--https-cert`` and ``--https-key`` serve HTTPS.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

from events.connection import redact_logs
from events.errors import FfrtmpError
from ffrtmp.api.auth import ENV, Role, is_loopback, load_tokens, new_token
from ffrtmp.cli.common import NatsOpt, PrefixOpt, Target, explained, target
from ffrtmp.client.conn import connect

if TYPE_CHECKING:
    from ffrtmp.api.app import ApiSettings

app = typer.Typer(help="The HTTP API and web console: the farm for programs and for people.")
app.info.no_args_is_help = True

DEFAULT_PORT: Final = 8080
KEEP_ALIVE_S: Final = 65


@app.command()
def run(
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--api-port", "--port", help="HTTP port (--port: the same).")
    ] = DEFAULT_PORT,
    tokens_file: Annotated[
        Path | None,
        typer.Option(
            envvar="FFRTMP_API_TOKENS_FILE",
            help=f"Bearer tokens, one role:name:token a line (also {ENV}).",
        ),
    ] = None,
    console: Annotated[bool, typer.Option(help="Serve the web console at /.")] = True,
    https_cert: Annotated[
        Path | None, typer.Option(help="Serve HTTPS with this certificate (PEM, chain first).")
    ] = None,
    https_key: Annotated[Path | None, typer.Option(help="The certificate's key (PEM).")] = None,
) -> None:
    """Serve the HTTP API (/api/v1) and the console (/) until Ctrl-C.

    Example: ffrtmp api run --port 8080
    """
    from ffrtmp.api.app import ApiSettings  # noqa: PLC0415 -- Litestar loads only for `api run`

    where = target(nats, prefix, None)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    redact_logs()
    with explained():
        tokens = load_tokens(tokens_file)
        if not tokens and not is_loopback(host):
            raise FfrtmpError(
                f"the API on {host} needs tokens: give --tokens-file or {ENV} "
                "(`ffrtmp api token` makes one), or bind 127.0.0.1"
            )
        https = _https(https_cert, https_key)
        settings = ApiSettings(tokens=tokens, console=console)
        asyncio.run(_serve(where, host, port, settings, https))


def _https(cert: Path | None, key: Path | None) -> tuple[str, str] | None:
    """The certificate and key to serve HTTPS with, checked now: a bad pair is one line."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise FfrtmpError("HTTPS needs both --https-cert and --https-key")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise FfrtmpError(f"cannot serve HTTPS with {cert} and {key}: {exc}") from None
    return str(cert), str(key)


async def _serve(
    where: Target, host: str, port: int, settings: ApiSettings, https: tuple[str, str] | None
) -> None:
    import uvicorn  # noqa: PLC0415 -- as above

    from ffrtmp.api.app import create_app  # noqa: PLC0415 -- as above

    async with connect(where):
        pass  # an unreachable farm is one line here, not a traceback from the lifespan
    try:
        listening = _listen(host, port)
    except OSError as exc:
        raise FfrtmpError(f"the API cannot listen on {host}:{port}: {exc.strerror}") from None
    app_ = create_app(where, settings)
    # Keep-alive longer than a load balancer's idle timeout (60 s on most), so the balancer, not
    # the API, closes idle connections: a close racing a reused connection fails that request.
    cert, key = https or (None, None)
    config = uvicorn.Config(
        app_,
        log_level="warning",
        timeout_keep_alive=KEEP_ALIVE_S,
        ssl_certfile=cert,
        ssl_keyfile=key,
    )
    server = uvicorn.Server(config)
    auth = f"{len(settings.tokens)} tokens" if settings.tokens else "open: no tokens"
    url = f"{'https' if https else 'http'}://{host}:{port}/"
    typer.echo(f"api on {where.url} (prefix {where.subjects.prefix}): {url} ({auth})")
    with listening:
        await server.serve(sockets=[listening])
    typer.echo("api stopped")


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket made as uvicorn would, with its protocol named.

    asyncio sets TCP_NODELAY only on sockets whose ``proto`` is TCP; ``socket.create_server``
    leaves it 0, and every keep-alive answer then waited 40 ms for a delayed ACK (Nagle).
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


@app.command()
def token(
    role: Annotated[Role, typer.Option(help="viewer reads; operator also steers.")] = Role.VIEWER,
    name: Annotated[
        str, typer.Option(help="Who uses it: recorded as the `by` of its commands.")
    ] = "api",
) -> None:
    """Print a new token as a line for the tokens file (role:name:token).

    Example: ffrtmp api token --role operator --name ci >> tokens.txt
    """
    if not name or ":" in name or "," in name:
        raise typer.BadParameter("a name without ':' or ','", param_hint="--name")
    typer.echo(f"{role}:{name}:{new_token()}")
