"""NVENC H.264, HEVC and AV1 through the agent's own engine, then a GPU job through the farm.

The engine is the one ``ffrtmp agent run`` assembles (``agent.main.engines``) with the agent's
detected capabilities and NVML energy meter; outputs are probed. The last test runs the whole
path: the scheduler places an NVENC job on a GPU (sessions and VRAM counted), the agent service
runs it with ``-gpu``, and the completed event carries the GPU's energy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.attempt import AttemptSettings
from agent.engine import Done, Failed
from agent.main import engines
from agent.nvml import Nvml
from agent.service import AgentService, AgentSettings
from agent.telemetry import Telemetry
from events.agent_events import Capabilities
from events.enums import JobStatus
from events.job_events import JobAssigned, JobCompleted
from events.spec import JobSpec, validate
from events.work import Dispatch
from tests.farm import Farm, scheduler
from tests.gpu.conftest import nvenc_gpu
from tests.mediaprobe import probe

pytestmark = pytest.mark.anyio
CODECS = {"h264": "h264", "hevc": "hevc", "av1": "av1"}  # scenario codec -> FFmpeg's codec name
SECONDS = 5.0


def dispatch(spec: JobSpec, gpu: int) -> Dispatch:
    """Attempt 1 of ``spec`` placed on ``gpu``, as the scheduler would send it."""
    return Dispatch(
        job="gpu", attempt=1, spec=validate(spec), budget_s=300.0, after_seq=1, at=0.0, gpu=gpu
    )


@pytest.mark.parametrize("codec", sorted(CODECS))
async def test_nvenc_encodes_a_1080p_file(
    codec: str, capabilities: Capabilities, nvml: Nvml, ffmpeg: Path, tmp_path: Path
) -> None:
    """5 s of 1080p30 on NVENC: the right codec and size, 150 frames, energy from NVML."""
    gpu = nvenc_gpu(capabilities, f"{codec}_nvenc")
    chooser = engines(str(ffmpeg), None, capabilities, tmp_path, Telemetry(nvml))
    output = tmp_path / f"out-{codec}.mp4"
    spec = JobSpec(
        scenario=f"1080p-{codec}-nvenc", input="testsrc2", output=str(output), duration_s=SECONDS
    )
    execution = await chooser.start(dispatch(spec, gpu.index))
    assert not isinstance(execution, Failed), execution
    ending = await execution.wait()
    assert isinstance(ending, Done), (ending, execution.log_tail()[-2000:])
    media = probe(output)
    assert media.video_codec == CODECS[codec]
    assert (media.width, media.height) == (1920, 1080)
    assert media.frames == pytest.approx(SECONDS * 30, abs=1)
    assert ending.results.frames == pytest.approx(SECONDS * 30, abs=1)
    if nvml.energy_j(gpu.index) is not None:
        assert ending.results.energy_j is not None
        assert ending.results.energy_j > 0


@pytest.fixture
async def gpu_agent(
    farm: Farm, capabilities: Capabilities, nvml: Nvml, ffmpeg: Path, tmp_path: Path
) -> AsyncIterator[AgentService]:
    """The agent service as ``ffrtmp agent run`` builds it on this machine, heartbeats scaled."""
    telemetry = Telemetry(nvml)
    chooser = engines(str(ffmpeg), None, capabilities, tmp_path, telemetry)
    settings = AgentSettings(slots=2, heartbeat_s=0.2, attempt=AttemptSettings())
    service = AgentService(
        farm.store.nc, farm.store, farm.subjects, "gpu-agent", capabilities, chooser, settings,
        telemetry=telemetry.read,
    )  # fmt: skip
    await service.start()
    yield service
    await service.stop(deregister=False)


@pytest.mark.usefixtures("gpu_agent")
async def test_a_gpu_job_runs_through_the_farm_on_its_gpu(
    farm: Farm, capabilities: Capabilities, nvml: Nvml, tmp_path: Path
) -> None:
    """Submitted, placed on the GPU that proved h264_nvenc, encoded there, completed."""
    gpu = nvenc_gpu(capabilities, "h264_nvenc")
    output = tmp_path / "farm.mp4"
    async with scheduler(farm.store):
        await farm.submit(
            "gpujob", scenario="1080p-h264-nvenc", input="testsrc2", output=str(output),
            duration_s=SECONDS,
        )  # fmt: skip
        await farm.wait_status("gpujob", JobStatus.COMPLETED, JobStatus.FAILED)
    history = await farm.history("gpujob")
    (assigned,) = [e for e in history if isinstance(e, JobAssigned)]
    assert assigned.gpu == gpu.index
    completed = history[-1]
    assert isinstance(completed, JobCompleted), completed
    assert probe(output).video_codec == "h264"
    if nvml.energy_j(gpu.index) is not None:
        assert completed.results.energy_j is not None
