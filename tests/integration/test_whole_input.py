"""A file or URL input without a duration is encoded whole, with its length found by the agent.

Before, a spec without ``duration_s`` meant 10 s: a 14 s file came out as 10 s and the job was
reported completed. Now the agent encodes the whole input and reads its length from FFmpeg's own
input header: the heartbeats show the media to encode, milestones follow the real percent, and
the scheduler budgets the attempt from it. Everything is real: scheduler, agent, FFmpeg, an HTTP
server, and the output probed.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import imageio_ffmpeg
import msgspec
import pytest

from agent.ffmpeg_engine import EngineSettings, FfmpegEngine
from agent.service import AgentService, AgentSettings
from events.enums import JobStatus
from events.job_events import JobAssigned, JobCompleted, JobProgressed, JobSubmitted
from events.policy import NO_BUDGET
from tests.farm import CPU, Farm, scheduler
from tests.mediaprobe import probe
from tests.receivers import HttpServer, http_server

pytestmark = pytest.mark.anyio
S = JobStatus
FFMPEG: Final = imageio_ffmpeg.get_ffmpeg_exe()
MEDIA_S: Final = 14.0  # longer than the 10 s a missing duration used to mean
__all__ = ["http_server"]  # the fixture, used by name


@pytest.fixture
async def ffmpeg_agent(farm: Farm, tmp_path: Path) -> AsyncIterator[AgentService]:
    """An agent on the bundled FFmpeg, heartbeating as often as the test scheduler expects."""
    engine = FfmpegEngine(EngineSettings(ffmpeg=FFMPEG, cores=2, work_dir=str(tmp_path)))
    caps = msgspec.structs.replace(CPU, protocols=("file", "http"))
    service = AgentService(
        farm.store.nc, farm.store, farm.subjects, "ff", caps, engine, AgentSettings(heartbeat_s=0.2)
    )
    await service.start()
    yield service
    await service.stop(deregister=False)


def clip(path: Path) -> Path:
    """A 14 s 160x90 clip with a tone, written to ``path``.

    ``+faststart``: the standard library's HTTP server ignores ``Range``, so a reader must never
    need to seek back for the index, as it would in a file with ``moov`` at the end.
    """
    subprocess.run(  # noqa: S603
        [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error",
         "-f", "lavfi", "-i", f"testsrc2=size=160x90:rate=30:duration={MEDIA_S:g}",
         "-f", "lavfi", "-i", f"sine=duration={MEDIA_S:g}",
         "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest",
         "-movflags", "+faststart", "-y", str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.mark.usefixtures("ffmpeg_agent")
@pytest.mark.parametrize("where", ["file", "url"])
async def test_an_input_without_a_duration_is_encoded_whole(
    farm: Farm, tmp_path: Path, http_server: HttpServer, where: str
) -> None:
    """14 s in, 14 s out, milestones on the way, no budget until the agent knew the length."""
    source = clip(http_server.root / "in.mp4")
    given = str(source) if where == "file" else http_server.url("in.mp4")
    output = tmp_path / "out.mp4"
    async with scheduler(farm.store):
        await farm.submit("whole", scenario="480p-h264", input=given, output=str(output))
        await farm.wait_status("whole", S.COMPLETED, S.FAILED)
    history = await farm.history("whole")
    assert isinstance(history[-1], JobCompleted), history[-1]
    submitted = history[0]
    assert isinstance(submitted, JobSubmitted)
    assert submitted.spec.duration_s is None
    (assigned,) = [e for e in history if isinstance(e, JobAssigned)]
    assert assigned.budget_s == NO_BUDGET
    assert [e.percent for e in history if isinstance(e, JobProgressed)] == [25.0, 50.0, 75.0]
    encoded = probe(output)
    assert encoded.duration_s == pytest.approx(MEDIA_S, abs=0.3)
    assert encoded.frames == pytest.approx(MEDIA_S * 30, abs=3)
    assert history[-1].results.frames == pytest.approx(MEDIA_S * 30, abs=3)
