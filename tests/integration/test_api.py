"""The HTTP API against a real farm: ``ffrtmp up`` with one real agent, FFmpeg, and tokens.

Every endpoint, the curl flows of the systems it replaces (submit, poll, approve, prompt and
response, cancel), bad input (422 naming the field, and nothing changed), auth (401 and 403 per
role), and a server-sent event stream following a job to its end with no event lost.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import nats
import pytest

from events.subjects import Subjects
from ffrtmp.natsd import free_port
from tests.upfarm import BIN, Up, environment, running
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(240)

DEADLINE_S: Final = 60.0
VIEWER: Final = "viewer-token-0123456789abcdef"
OPERATOR: Final = "operator-token-0123456789abcdef"
SHORT: Final = {"scenario": "480p-h264", "duration_s": 2}


class Farm(Up):
    """``ffrtmp up`` with one agent and the API on a free port, with a viewer and an operator."""

    def __init__(self, root: Path) -> None:
        tokens = root / "tokens.txt"
        tokens.write_text(f"viewer:watcher:{VIEWER}\noperator:ci:{OPERATOR}\n")
        super().__init__(root, "--api-tokens-file", str(tokens))
        self.operator = httpx.Client(base_url=self.base, headers=_bearer(OPERATOR), timeout=30)
        self.viewer = httpx.Client(base_url=self.base, headers=_bearer(VIEWER), timeout=30)

    def stop(self) -> None:
        self.operator.close()
        self.viewer.close()
        super().stop()

    def submit(self, **spec: Any) -> dict[str, Any]:
        reply = self.operator.post("/api/v1/jobs", json={**SHORT, **spec})
        assert reply.status_code == 201, reply.text
        return dict(reply.json())

    def status(self, job: str) -> str:
        return str(self.viewer.get(f"/api/v1/jobs/{job}").json()["job"]["status"])

    def until(self, job: str, status: str) -> None:
        wait_for(lambda: self.status(job) == status, f"job {job} {status}", DEADLINE_S,
                 poll_s=0.2, context=lambda: self.status(job))  # fmt: skip

    def commands(self) -> int:
        """How many commands the log has taken: a request refused at the door adds none."""

        async def count() -> int:
            nc = await nats.connect(self.url)
            try:
                info = await nc.jetstream().stream_info(Subjects().commands_stream)
                return int(info.state.last_seq)
            finally:
                await nc.close()

        return asyncio.run(count())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """One farm with its API for the module's tests."""
    with running(lambda: Farm(tmp_path_factory.mktemp("api"))) as started:
        yield started


def _error(reply: httpx.Response, status: int, field: str = "") -> str:
    """The error document's message, after checking its status, shape and field."""
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert set(body) == {"error"}, body
    assert body["error"]["status"] == status
    assert body["error"].get("field", "") == field, body
    message = str(body["error"]["message"])
    assert message
    assert "\n" not in message
    return message


# --- the curl flows ------------------------------------------------------------------------


def test_the_banner_names_the_api(farm: Farm) -> None:
    """``up`` prints the API's URL among the farm's addresses."""
    assert f"http://127.0.0.1:{farm.api_port}/" in farm.output()


def test_submit_poll_and_read_a_job_to_its_end(farm: Farm) -> None:
    """Submit is 201 with the scheduler's decision; the job completes and tells its story."""
    submitted = farm.submit(labels={"team": "vod"})
    job = submitted["job"]["job"]
    decision = submitted["decision"]
    assert decision["decided"] is True
    assert decision["events"] == ["JobSubmitted"]
    assert decision["message"].endswith("by ci")  # the token's name is the command's author
    farm.until(job, "completed")
    status = farm.viewer.get(f"/api/v1/jobs/{job}").json()
    assert status["job"]["percent"] == 100.0
    assert status["seq"] > 0
    assert "ffmpeg" in status["command"]
    history = farm.viewer.get(f"/api/v1/jobs/{job}/events").json()
    types = [entry["type"] for entry in history]
    assert types[0] == "JobSubmitted"
    assert types[-1] == "JobCompleted"
    assert "JobAssigned" in types
    assert {entry["writer"] for entry in history} == {"sched", "local-1"}
    log = farm.viewer.get(f"/api/v1/jobs/{job}/logs").json()
    assert log["job"] == job
    assert log["attempt"] == 1
    assert "frame=" in log["log"] or "ffmpeg" in log["log"].lower()

    def completed_listed() -> dict[str, Any]:
        params: dict[str, str | int] = {"status": "completed", "limit": 100}
        return dict(farm.viewer.get("/api/v1/jobs", params=params).json())

    # The listing is the projector's, a moment behind the log the status above was read from.
    wait_for(lambda: job in [r["id"] for r in completed_listed()["rows"]], "the job listed",
             DEADLINE_S, poll_s=0.2)  # fmt: skip
    listed = completed_listed()
    assert listed["matching"] == len(listed["rows"])  # one page holds them all
    everything = farm.viewer.get("/api/v1/jobs", params={"limit": 1}).json()
    assert len(everything["rows"]) == 1
    assert everything["matching"] == everything["total"] >= listed["matching"]
    none = farm.viewer.get("/api/v1/jobs", params={"status": "rejected", "agent": "nobody"}).json()
    assert (none["rows"], none["matching"], none["total"]) == ([], 0, everything["total"])


def test_a_resent_id_is_a_no_op(farm: Farm) -> None:
    """The same id twice: the second answer is 200 with the job, and the log has one submit."""
    first = farm.submit(id="api-resent-1")
    assert first["job"]["job"] == "api-resent-1"
    again = farm.operator.post("/api/v1/jobs", json={**SHORT, "id": "api-resent-1"})
    assert again.status_code == 200, again.text
    assert again.json()["decision"] is None
    farm.until("api-resent-1", "completed")
    history = farm.viewer.get("/api/v1/jobs/api-resent-1/events").json()
    assert [e["type"] for e in history].count("JobSubmitted") == 1
    assert not any(e["type"] == "CommandRefused" for e in history)


def test_approve_and_the_prompt_and_response_flow(farm: Farm) -> None:
    """A waiting job shows its prompt; approve queues it; a response with approve=false denies."""
    asked = farm.submit(approval_required=True, approval_prompt="Push to the live CDN?")
    job = asked["job"]["job"]
    assert asked["job"]["status"] == "pending"
    prompt = farm.viewer.get(f"/api/v1/jobs/{job}/prompt").json()
    assert prompt == {"job": job, "status": "pending", "waiting": True,
                      "prompt": "Push to the live CDN?"}  # fmt: skip
    approved = farm.operator.post(f"/api/v1/jobs/{job}/approve", json={"answer": "go"})
    assert approved.status_code == 200, approved.text
    assert approved.json()["decided"] is True
    farm.until(job, "completed")
    assert farm.viewer.get(f"/api/v1/jobs/{job}/prompt").json()["waiting"] is False

    other = farm.submit(approval_required=True)["job"]["job"]
    denied = farm.operator.post(
        f"/api/v1/jobs/{other}/response", json={"answer": "not today", "approve": False}
    )
    assert denied.status_code == 200, denied.text
    assert denied.json()["status"] == "canceled"
    assert farm.status(other) == "canceled"


def test_cancel_a_running_job_and_a_second_cancel_is_409(farm: Farm) -> None:
    """Cancel stops a running encode; cancelling what has ended is refused with its reason."""
    job = farm.submit(scenario="1080p-h264", duration_s=600)["job"]["job"]
    farm.until(job, "running")

    def held() -> list[str]:
        return list(farm.viewer.get("/api/v1/nodes/local-1").json()["running"])

    wait_for(lambda: held() == [job], "the node to hold the job", DEADLINE_S, poll_s=0.2,
             context=lambda: str(held()))  # fmt: skip
    canceled = farm.operator.post(f"/api/v1/jobs/{job}/cancel")
    assert canceled.status_code in {200, 202}, canceled.text
    farm.until(job, "canceled")
    message = _error(farm.operator.post(f"/api/v1/jobs/{job}/cancel"), 409)
    assert "canceled" in message


def test_pause_resume_and_retry_are_decided(farm: Farm) -> None:
    """Pause and resume steer a running job; retry runs a canceled one again."""
    job = farm.submit(scenario="1080p-h264", duration_s=600)["job"]["job"]
    farm.until(job, "running")
    assert farm.operator.post(f"/api/v1/jobs/{job}/pause").status_code in {200, 202}
    farm.until(job, "paused")
    assert farm.operator.post(f"/api/v1/jobs/{job}/resume").status_code in {200, 202}
    farm.until(job, "running")
    assert farm.operator.post(f"/api/v1/jobs/{job}/cancel").status_code in {200, 202}
    farm.until(job, "canceled")
    retried = farm.operator.post(f"/api/v1/jobs/{job}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] in {"queued", "assigned", "running"}
    farm.operator.post(f"/api/v1/jobs/{job}/cancel")
    farm.until(job, "canceled")


# --- following a job -----------------------------------------------------------------------


def _sse(reply: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(event, data)`` of a server-sent event stream, as a browser would parse it."""
    event, data = "message", list[str]()
    for line in reply.iter_lines():
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data.append(line.split(":", 1)[1].strip())


def test_an_event_stream_follows_a_job_to_its_end_without_losing_an_event(farm: Farm) -> None:
    """SSE: every event as ``history`` in order, progress as ``status``, then ``end``."""
    job = farm.submit(scenario="720p-h264", duration_s=8)["job"]["job"]
    seen: list[dict[str, Any]] = []
    statuses: list[dict[str, Any]] = []
    ended: dict[str, Any] = {}
    headers = {**_bearer(VIEWER), "Accept": "text/event-stream"}
    with httpx.stream("GET", f"{farm.base}/api/v1/jobs/{job}/events", headers=headers,
                      timeout=DEADLINE_S) as reply:  # fmt: skip
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        for event, data in _sse(reply):
            if event == "history":
                seen.append(data)
            elif event == "status":
                statuses.append(data)
            elif event == "end":
                ended = data
                break
    assert ended["job"]["status"] == "completed"
    history = farm.viewer.get(f"/api/v1/jobs/{job}/events").json()
    assert [e["seq"] for e in seen] == [e["seq"] for e in history]  # none lost, none doubled
    assert [e["type"] for e in seen][-1] == "JobCompleted"
    assert statuses  # state and progress were sent as they changed
    percents = [s["job"]["percent"] for s in statuses]
    assert percents == sorted(percents)


# --- nodes, SQL, summary, documents ---------------------------------------------------------


def test_nodes_list_describe_drain_and_clear(farm: Farm) -> None:
    """The agent is a node; drain then clear it, as an operator."""
    nodes = farm.viewer.get("/api/v1/nodes").json()
    assert [n["id"] for n in nodes] == ["local-1"]
    node = farm.viewer.get("/api/v1/nodes/local-1").json()
    assert node["status"] == "online"
    assert node["slots"] >= 1
    drained = farm.operator.post("/api/v1/nodes/local-1/drain")
    assert drained.status_code == 200, drained.text
    assert "draining" in drained.json()["message"] or "drained" in drained.json()["message"]
    assert farm.viewer.get("/api/v1/nodes/local-1").json()["status"] in {"drained", "draining"}
    cleared = farm.operator.post("/api/v1/nodes/local-1/clear").json()["message"]
    assert "cleared" in cleared
    assert farm.viewer.get("/api/v1/nodes/local-1").json()["status"] == "online"
    _error(farm.viewer.get("/api/v1/nodes/no-such-node"), 404)


def test_quarantine_records_the_reason(farm: Farm) -> None:
    """Quarantine with a reason; the node shows it until cleared."""
    reply = farm.operator.post("/api/v1/nodes/local-1/quarantine", json={"reason": "NVENC errors"})
    assert reply.status_code == 200, reply.text
    node = farm.viewer.get("/api/v1/nodes/local-1").json()
    assert node["status"] == "quarantined"
    assert node["quarantine_reason"] == "NVENC errors"
    farm.operator.post("/api/v1/nodes/local-1/clear")


def test_sql_reads_and_refuses_writes(farm: Farm) -> None:
    """A query answers with columns and rows; a write is 422 on the ``sql`` field."""
    farm.submit()
    answer = farm.viewer.post("/api/v1/sql", json={"sql": "SELECT count(*) AS n FROM jobs"}).json()
    assert answer["columns"] == ["n"]
    assert answer["rows"][0][0] >= 1
    _error(farm.viewer.post("/api/v1/sql", json={"sql": "DROP TABLE jobs"}), 422, "sql")
    assert farm.viewer.post("/api/v1/sql", json={"sql": "SELECT 1"}).status_code == 200


def test_summary_counts_jobs_and_nodes(farm: Farm) -> None:
    """The glance: jobs by status, nodes online."""
    job = farm.submit()["job"]["job"]
    farm.until(job, "completed")
    summary = farm.viewer.get("/api/v1/summary").json()
    assert summary["jobs_by_status"]["completed"] >= 1
    assert summary["completed_last_hour"] >= 1
    assert summary["nodes_total"] == 1


def test_openapi_documents_the_log_types_and_health_answers(farm: Farm) -> None:
    """/openapi.json has the routes and the spec's schema; /healthz and /readyz answer 200."""
    document = httpx.get(f"{farm.base}/openapi.json", timeout=30).json()
    assert "post" in document["paths"]["/api/v1/jobs"]
    schemas = document["components"]["schemas"]
    submission = next(s for name, s in schemas.items() if name.endswith("Submission"))
    assert {"scenario", "input", "output", "duration_s", "id"} <= set(submission["properties"])
    assert httpx.get(f"{farm.base}/healthz", timeout=30).json()["status"] == "ok"
    assert httpx.get(f"{farm.base}/readyz", timeout=30).status_code == 200
    assert httpx.get(f"{farm.base}/api/docs", timeout=30).status_code == 200


# --- auth ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/jobs"), ("GET", "/api/v1/nodes"), ("POST", "/api/v1/jobs"),
     ("GET", "/api/v1/summary"), ("POST", "/api/v1/sql")],
)  # fmt: skip
def test_no_token_or_a_wrong_one_is_401(farm: Farm, method: str, path: str) -> None:
    """Every API route needs a token the farm knows."""
    before = farm.commands()
    for headers in ({}, _bearer("not-a-token-we-know-0000"), {"Authorization": OPERATOR}):
        reply = httpx.request(method, farm.base + path, headers=headers, json=SHORT, timeout=30)
        _error(reply, 401)
    assert farm.commands() == before


def test_a_viewer_reads_but_may_not_steer(farm: Farm) -> None:
    """403 for a viewer's command, with the role that may; the log is unchanged."""
    job = farm.submit()["job"]["job"]
    before = farm.commands()
    message = _error(farm.viewer.post("/api/v1/jobs", json=SHORT), 403)
    assert "operator" in message
    _error(farm.viewer.post(f"/api/v1/jobs/{job}/cancel"), 403)
    _error(farm.viewer.post("/api/v1/nodes/local-1/drain"), 403)
    assert farm.commands() == before
    assert farm.viewer.get(f"/api/v1/jobs/{job}").status_code == 200


def test_health_needs_no_token(farm: Farm) -> None:
    """A load balancer's probes carry no token."""
    assert httpx.get(f"{farm.base}/healthz", timeout=30).status_code == 200
    assert httpx.get(f"{farm.base}/readyz", timeout=30).status_code == 200


# --- hostile input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scenario": 1}, "scenario"),
        ({"scenario": "no-such-scenario"}, "scenario"),
        ({"scenario": "480p-h264", "bogus": 1}, "bogus"),
        ({}, "scenario"),
        ({"scenario": "480p-h264", "queue": "urgent"}, "queue"),
        ({"scenario": "480p-h264", "duration_s": -5}, "duration_s"),
        ({"scenario": "480p-h264", "id": "../../etc"}, "job id"),
        ({"scenario": "480p-h264", "id": "a" * 65}, "job id"),
        ({"scenario": "480p-h264", "labels": {"k": "v" * 5000}}, "labels"),
        ({"scenario": "480p-h264", "labels": {"k": [[[[[[[[[[1]]]]]]]]]]}}, "labels"),
        ({"scenario": "480p-h264", "approval_prompt": "x\u0000y"}, "approval_prompt"),
    ],
)
def test_a_bad_spec_is_422_naming_the_field_and_changes_nothing(
    farm: Farm, body: dict[str, Any], field: str
) -> None:
    """What a careless script sends: one error naming the field; no job appears."""
    before = farm.commands()
    _error(farm.operator.post("/api/v1/jobs", json=body), 422, field)
    assert farm.commands() == before


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"not json", 400),
        (b"[1, 2, 3]", 422),
        (b'{"scenario": "480p-h264"' + b" " * 70_000 + b"}", 413),
        (b"[" * 100_000 + b"]" * 100_000, 413),
        (b'"\xff\xfe"', 400),
    ],
)
def test_a_body_that_is_not_a_spec_is_one_error(farm: Farm, content: bytes, status: int) -> None:
    """Malformed, the wrong shape, too large, not UTF-8: one error each; nothing changes."""
    before = farm.commands()
    reply = farm.operator.post(
        "/api/v1/jobs", content=content, headers={"Content-Type": "application/json"}
    )
    _error(reply, status, "")
    assert farm.commands() == before


@pytest.mark.parametrize(
    "path",
    ["/api/v1/jobs/no-such-job", "/api/v1/jobs/no-such-job/events", "/api/v1/jobs/no-such-job/logs",
     "/api/v1/jobs/no-such-job/prompt"],
)  # fmt: skip
def test_an_unknown_job_is_404(farm: Farm, path: str) -> None:
    """A whole id the log does not have."""
    assert "no-such-job" in _error(farm.viewer.get(path), 404)


def test_the_log_of_a_job_that_has_not_run_is_404(farm: Farm) -> None:
    """A job waiting for approval has no attempt, so no log; an attempt never made has none."""
    job = farm.submit(approval_required=True)["job"]["job"]
    assert "has not run yet" in _error(farm.viewer.get(f"/api/v1/jobs/{job}/logs"), 404)
    message = _error(farm.viewer.get(f"/api/v1/jobs/{job}/logs", params={"attempt": 7}), 404)
    assert "attempt 7" in message
    farm.operator.post(f"/api/v1/jobs/{job}/cancel")


@pytest.mark.parametrize("job", ["a.b", "a*", "%2e%2e", "x" * 200, "UPPER"])
def test_an_id_that_is_no_id_is_422_and_reaches_no_subject(farm: Farm, job: str) -> None:
    """A path id that could not be a job id (a NATS wildcard, a dot, too long) is refused."""
    reply = farm.viewer.get(f"/api/v1/jobs/{job}")
    assert reply.status_code in {404, 422}, reply.text
    before = farm.commands()
    assert farm.operator.post(f"/api/v1/jobs/{job}/cancel").status_code in {404, 422}
    assert farm.commands() == before


def test_query_parameters_are_checked(farm: Farm) -> None:
    """A filter that is not one: 422 naming it."""
    _error(farm.viewer.get("/api/v1/jobs", params={"status": "sleeping"}), 422, "status")
    _error(farm.viewer.get("/api/v1/jobs", params={"limit": 0}), 422, "limit")
    _error(farm.viewer.get("/api/v1/jobs", params={"since": "last tuesday"}), 422, "since")


# --- starting the API ----------------------------------------------------------------------


def test_the_api_refuses_another_address_without_tokens(tmp_path: Path) -> None:
    """Bound to anything but loopback, no tokens: exit 1 and one line; nothing listens."""
    env = environment()
    done = subprocess.run(  # noqa: S603 -- our own CLI
        [str(BIN / "ffrtmp"), "api", "run", "--host", "0.0.0.0", "--api-port", str(free_port())],  # noqa: S104
        capture_output=True, text=True, env=env, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "needs tokens" in lines[0]


def test_a_bad_tokens_file_is_one_line(tmp_path: Path) -> None:
    """A role that is none, or a short token: the entry is named, the API does not start."""
    bad = tmp_path / "tokens.txt"
    bad.write_text("admin:root:0123456789abcdef0123\n")
    env = environment()
    done = subprocess.run(  # noqa: S603 -- our own CLI
        [str(BIN / "ffrtmp"), "api", "run", "--tokens-file", str(bad)],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "entry 1" in done.stderr
    assert "admin" in done.stderr
