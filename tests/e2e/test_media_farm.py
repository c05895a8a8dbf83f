"""The media suite: real agent process, scheduler, FFmpeg and receivers; every output probed.

One nats-server per session; per test a scheduler in this process, an ``ffrtmp agent run``
process confined to the test's directory (``--media-root``), and the receivers the test needs
(nginx-rtmp, an SRT listener, an HTTP server), all started here. Clips are small (480p, a few
seconds) so the suite stays cheap on a two-core CI machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from agent.ffmpeg_binary import locate
from events.commands import PauseJob, SubmitJob
from events.enums import FailureReason, JobStatus
from events.jetstream import JetStreamEventStore
from events.job_events import JobRetrying, JobStarted
from events.policy import RetryPolicy
from events.scenarios import scenario
from events.spec import JobSpec
from ffrtmp.cli import jobs
from ffrtmp.natsd import NatsServer
from ffrtmp.scheduler.core import SchedulerSettings
from ffrtmp.scheduler.service import ServiceSettings
from ffrtmp.scheduler.timers import TimerSettings
from tests.cli_support import Cli
from tests.farm import Farm, scheduler, wait_until
from tests.mediaprobe import probe
from tests.receivers import HttpServer, RtmpServer, SrtListener

pytestmark = pytest.mark.anyio

FFMPEG = str(locate())
SETTINGS = ServiceSettings(
    core=SchedulerSettings(
        timers=TimerSettings(heartbeat_s=0.5, agent_lost_after_s=4.0, stalled_after_s=60.0),
        retry=RetryPolicy(base_s=0.2, cap_s=0.5),
    ),
    tick_s=0.05,
    lease_ttl_s=2.0,
)
DEADLINE_S = 120.0


class Agent:
    """A real ``python -m agent run`` process."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path) -> None:
        self.process = process
        self.log = log

    def ffmpegs(self) -> list[psutil.Process]:
        """The FFmpeg processes this agent started (nice wraps none: it execs)."""
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        return [c for c in children if "ffmpeg" in " ".join(c.cmdline())]


@contextlib.asynccontextmanager
async def agent(url: str, prefix: str, name: str, root: Path) -> AsyncIterator[Agent]:
    """An agent process confined to ``root``; yields once it has registered."""
    log = root.parent / f"{name}.log"
    argv = [sys.executable, "-m", "agent", "run", "--nats", url, "--prefix", prefix, "--id", name,
            "--slots", "2", "--health-port", "0", "--heartbeat-s", "0.5", "--ffmpeg", FFMPEG,
            "--work-dir", str(root), "--media-root", str(root)]  # fmt: skip
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(*argv, stdout=out, stderr=out)

    async def registered() -> bool:
        assert process.returncode is None, log.read_text()
        return "health on port" in log.read_text()

    running = Agent(process, log)
    try:
        await wait_until(registered, f"agent {name} to register", DEADLINE_S)
        yield running
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """The test's media root (inputs and outputs live under it)."""
    root = tmp_path / "media"
    root.mkdir()
    return root


@pytest.fixture
async def farm_with_agent(
    nats_server: NatsServer, jetstream_store: JetStreamEventStore, prefix: str, media: Path
) -> AsyncIterator[Farm]:
    """A scheduler here and one real agent process, on this test's prefix."""
    async with scheduler(jetstream_store, SETTINGS), agent(nats_server.url, prefix, "m1", media):
        yield Farm(jetstream_store)


async def finished(farm: Farm, job: str) -> JobStatus:
    """Wait (generously) for the job's terminal state."""
    end = time.monotonic() + DEADLINE_S
    while True:
        state = await farm.state(job)
        if state.status in {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED}:
            return state.status
        assert time.monotonic() < end, f"job {job} still {state.status}"
        await asyncio.sleep(0.1)


def names(directory: Path) -> list[str]:
    """Every name in ``directory``, hidden ones included, sorted."""
    return sorted(p.name for p in directory.iterdir())


def make_clip(path: Path, size: str = "320x240", seconds: float = 2.0) -> Path:
    """A clip with a 440 Hz tone, made with FFmpeg directly."""
    argv = [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", f"{seconds:g}", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
            str(path)]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True, timeout=60)  # noqa: S603
    return path


async def test_url_to_hevc_mp4_comes_out_right_and_shows_its_command(
    farm_with_agent: Farm,
    nats_server: NatsServer,
    prefix: str,
    media: Path,
    http_server: HttpServer,
    tmp_path: Path,
) -> None:
    """A 4:3 VOD over HTTP to HEVC MP4: hvc1, faststart, pillarboxed, audio kept, capped."""
    farm = farm_with_agent
    make_clip(http_server.root / "in.mp4")
    out = media / "out.mp4"
    await farm.submit("u1", scenario="480p-hevc", input=http_server.url("in.mp4"),
                      output=str(out), duration_s=2.0)  # fmt: skip
    assert await finished(farm, "u1") is JobStatus.COMPLETED
    got = probe(out)
    assert (got.video_codec, got.video_tag, got.faststart) == ("hevc", "hvc1", True)
    assert (got.width, got.height, got.frames) == (854, 480, 60)
    assert got.duration_s == pytest.approx(2.0, abs=0.1)
    assert got.audio_codec == "aac"
    assert got.video_kbps < 1.05 * scenario("480p-hevc").bitrate_kbps
    assert names(media) == ["out.mp4"]
    cli = Cli(nats_server.url, prefix, tmp_path)
    status = await cli(jobs.app, "status", "u1", "--output", "json")
    command = json.loads(status.stdout)["command"]
    assert command.startswith(f"{FFMPEG} -nostdin")
    assert "-tag:v hvc1" in command
    assert "-c:a aac" in command  # a URL input's audio is encoded (no second fetch to probe)
    logs = await cli(jobs.app, "logs", "u1")
    assert logs.stdout.splitlines()[0] == f"$ {command}"


async def test_live_pushes_arrive_with_audio_and_aligned_keyframes(
    farm_with_agent: Farm, rtmp_server: RtmpServer, srt_listener: SrtListener
) -> None:
    """Test patterns pushed to nginx-rtmp and an SRT listener arrive whole, with audio, IDR/2 s."""
    farm = farm_with_agent
    await farm.submit("l1", scenario="480p-h264", output=rtmp_server.url("s1"), duration_s=4.0)
    await farm.submit("l2", scenario="480p-h264", output=srt_listener.url, duration_s=4.0)
    assert await finished(farm, "l1") is JobStatus.COMPLETED
    assert await finished(farm, "l2") is JobStatus.COMPLETED
    for recording in (rtmp_server.wait_recorded("s1"), srt_listener.wait_recorded()):
        got = probe(recording)
        assert (got.video_codec, got.width, got.height) == ("h264", 854, 480)
        assert got.frames == pytest.approx(120, abs=3)
        assert got.audio_codec == "aac"
        assert got.keyframe_gaps_s() == [pytest.approx(2.0, abs=0.05)]
    results = (await farm.state("l1")).results
    assert results is not None
    assert results.stalls == 0


async def test_bad_inputs_fail_as_user_errors_without_retries(
    farm_with_agent: Farm, media: Path, http_server: HttpServer, tmp_path: Path
) -> None:
    """A 404 URL, a missing file, a file outside the media root, an existing dest: user_error."""
    farm = farm_with_agent
    existing = media / "exists.mp4"
    existing.write_bytes(b"keep me")
    outside = make_clip(tmp_path / "outside.mp4", seconds=1.0)
    cases = {
        "b1": {"input": http_server.missing_url, "output": str(media / "b1.mp4")},
        "b2": {"input": str(media / "missing.mp4"), "output": str(media / "b2.mp4")},
        "b3": {"input": str(outside), "output": str(media / "b3.mp4")},
        "b4": {"output": str(existing)},
    }
    for job, spec in cases.items():
        await farm.submit(job, scenario="480p-h264", duration_s=1.0, **spec)
    for job in cases:
        assert await finished(farm, job) is JobStatus.FAILED
        state = await farm.state(job)
        assert state.reason is FailureReason.USER_ERROR, (job, state.message)
        assert not any(isinstance(e, JobRetrying) for e in await farm.history(job))
    assert existing.read_bytes() == b"keep me"
    assert names(media) == ["exists.mp4"]
    assert [s for p, s in http_server.requests if p.endswith("no-such-file.mp4")] == [404]


async def test_an_unreachable_destination_fails_runtime_error_with_the_reason(
    farm_with_agent: Farm,
) -> None:
    """RTMP to a port nobody listens on: runtime_error, retried, FFmpeg's reason kept."""
    from ffrtmp.natsd import free_port  # noqa: PLC0415

    farm = farm_with_agent
    url = f"rtmp://127.0.0.1:{free_port()}/live/x"
    await farm.submit("d1", scenario="480p-h264", output=url, duration_s=1.0, max_retries=1)
    assert await finished(farm, "d1") is JobStatus.FAILED
    state = await farm.state("d1")
    assert state.reason is FailureReason.RUNTIME_ERROR
    assert "Connection refused" in state.message
    assert any(isinstance(e, JobRetrying) for e in await farm.history("d1"))


async def kill_agent_mid_encode(farm: Farm, doomed: Agent, job: str, pause: bool) -> None:
    """Kill -9 the agent while its FFmpeg encodes (or is paused); its FFmpeg must die with it."""

    async def encoding() -> bool:
        return bool(doomed.ffmpegs())

    await wait_until(encoding, "the agent's FFmpeg", DEADLINE_S)
    (ffmpeg,) = doomed.ffmpegs()
    if pause:  # a stopped FFmpeg writes nothing, so no broken pipe would ever end it
        await farm.send(PauseJob(id=f"pause-{job}", job=job, at=time.time()))

        async def stopped() -> bool:
            return bool(ffmpeg.status() == psutil.STATUS_STOPPED)

        await wait_until(stopped, "FFmpeg to be paused", DEADLINE_S)
    os.kill(doomed.process.pid, signal.SIGKILL)
    await doomed.process.wait()

    async def gone() -> bool:
        return not ffmpeg.is_running() or bool(ffmpeg.status() == psutil.STATUS_ZOMBIE)

    try:
        await wait_until(gone, "the orphaned FFmpeg to die", 10.0)
    finally:  # leave no orphan behind when the test fails
        with contextlib.suppress(psutil.NoSuchProcess):
            ffmpeg.kill()


@pytest.mark.timeout(400)
async def test_kill_9_of_the_agent_takes_its_ffmpeg_and_the_retry_writes_alone(
    nats_server: NatsServer, jetstream_store: JetStreamEventStore, prefix: str, media: Path
) -> None:
    """A kill -9 of an agent mid-encode takes its FFmpeg; another agent's retry publishes.

    No attempt writes the destination's name before it succeeds, so the dead one never did.
    """
    farm = Farm(jetstream_store)
    out = media / "long.mkv"
    async with scheduler(jetstream_store, SETTINGS):
        async with agent(nats_server.url, prefix, "k1", media) as doomed:
            await farm.submit("k", scenario="480p-h264", input="testsrc2", output=str(out),
                              duration_s=8.0, max_retries=2)  # fmt: skip
            await kill_agent_mid_encode(farm, doomed, "k", pause=False)
            assert not out.exists()
        async with agent(nats_server.url, prefix, "k2", media):
            assert await finished(farm, "k") is JobStatus.COMPLETED
    started = [e for e in await farm.history("k") if isinstance(e, JobStarted)]
    assert [e.agent for e in started][-1] == "k2"
    assert probe(out).frames == 240
    assert names(media) == ["long.mkv"]  # the retry removed the dead attempt's temporary file


async def test_kill_9_of_the_agent_takes_even_a_paused_ffmpeg(
    nats_server: NatsServer, jetstream_store: JetStreamEventStore, prefix: str, media: Path
) -> None:
    """A paused (SIGSTOPped) FFmpeg dies with its agent too: nothing else would ever end it."""
    farm = Farm(jetstream_store)
    out = media / "paused.mkv"
    async with (
        scheduler(jetstream_store, SETTINGS),
        agent(nats_server.url, prefix, "p1", media) as doomed,
    ):
        await farm.submit("p", scenario="480p-h264", input="testsrc2", output=str(out),
                          duration_s=60.0)  # fmt: skip
        await kill_agent_mid_encode(farm, doomed, "p", pause=True)
    assert not out.exists()


async def test_raw_graph_inputs_are_refused_before_anything_runs(
    farm_with_agent: Farm, media: Path, nats_server: NatsServer, prefix: str, tmp_path: Path
) -> None:
    """A filter graph that reads a file is refused by the CLI and, over raw NATS, by the scheduler.

    The refusal is a ``CommandRefused``: no job exists and nothing is written.
    """
    secret = media / "secret.txt"
    secret.write_text("s3cret")
    graph = f"testsrc2=size=160x90,drawtext=textfile={secret}"
    cli = Cli(nats_server.url, prefix, tmp_path)
    refused = await cli(jobs.app, "submit", "--input", graph, "--dest", str(media / "x.mp4"))
    assert refused.exit_code == 1
    assert len([line for line in refused.stderr.splitlines() if line.strip()]) == 1
    farm = farm_with_agent
    spec = JobSpec(scenario="480p-h264", input=graph, output=str(media / "g1.mp4"))
    await farm.send(SubmitJob(id="raw-1", job="g1", at=time.time(), spec=spec))

    async def refused_event() -> bool:
        return "CommandRefused" in await farm.kinds("g1")

    await wait_until(refused_event, "the scheduler to refuse the raw submit", DEADLINE_S)
    assert (await farm.state("g1")).status is JobStatus.NEW
    assert names(media) == ["secret.txt"]
