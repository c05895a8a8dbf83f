"""What this agent can run, as it registers it.

FFmpeg's encoders, filters and protocols, GStreamer's elements when it is installed
(``agent.gst_probe``), the host's CPU and RAM, and each NVIDIA GPU with the NVENC encoders a
test encode proved on it.

FFmpeg lists ``h264_nvenc`` whether or not a GPU, a driver or an NVENC unit exists, so a
hardware encoder counts only after five frames encode on that GPU. Other hardware encoders
(QSV, VAAPI, AMF, …) are not offered: nothing here proves them.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Final

from agent.gst_probe import GstInfo
from agent.hardware import Host, host
from agent.nvml import GpuDevice, Nvml
from agent.probe import FfmpegInfo, is_hardware, probe
from events.agent_events import Capabilities, GpuInfo

log = logging.getLogger(__name__)

TEST_ENCODE_TIMEOUT_S: Final = 30.0
TEST_FRAMES: Final = 5

Prover = Callable[[str, int], bool]  # (encoder, gpu index) -> the test encode succeeded


def test_encode_argv(ffmpeg: str, encoder: str, gpu: int) -> list[str]:
    """A five-frame encode of a 256x256 colour source on GPU ``gpu``, output discarded."""
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error",
        "-f", "lavfi", "-i", "color=size=256x256:rate=30",
        "-frames:v", str(TEST_FRAMES), "-pix_fmt", "yuv420p",
        "-c:v", encoder, "-gpu", str(gpu), "-f", "null", "-",
    ]  # fmt: skip


def test_encode(ffmpeg: Path) -> Prover:
    """A prover that runs the test encode with this FFmpeg."""

    def proves(encoder: str, gpu: int) -> bool:
        try:
            done = subprocess.run(  # noqa: S603 - argv list of our own
                test_encode_argv(str(ffmpeg), encoder, gpu),
                capture_output=True,
                timeout=TEST_ENCODE_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.info("%s on GPU %d: test encode did not run (%s)", encoder, gpu, exc)
            return False
        if done.returncode != 0:
            reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
            log.info("%s on GPU %d: test encode failed: %s", encoder, gpu, reason[0])
        return done.returncode == 0

    return proves


def gpu_info(device: GpuDevice, candidates: tuple[str, ...], proves: Prover) -> GpuInfo:
    """A GPU as registered: its NVENC encoders are those a test encode proved."""
    encoders = tuple(enc for enc in candidates if device.nvenc and proves(enc, device.index))
    return GpuInfo(
        index=device.index,
        name=device.name,
        memory_bytes=device.memory_bytes,
        nvenc_sessions=device.nvenc_sessions if encoders else 0,
        encoders=encoders,
    )


def assemble(
    info: FfmpegInfo,
    machine: Host,
    devices: list[GpuDevice],
    proves: Prover,
    gst: GstInfo | None = None,
) -> Capabilities:
    """Capabilities from what FFmpeg and GStreamer list, the host, and the GPUs' proven encoders."""
    nvenc = tuple(enc for enc in info.encoders if enc.endswith("_nvenc"))
    gpus = tuple(gpu_info(device, nvenc, proves) for device in devices)
    proven = {enc for gpu in gpus for enc in gpu.encoders}
    software = [enc for enc in info.encoders if not is_hardware(enc)]
    return Capabilities(
        hostname=machine.hostname,
        engines=("ffmpeg",) if gst is None else ("ffmpeg", "gstreamer"),
        encoders=tuple(sorted({*software, *proven})),
        filters=info.filters,
        protocols=info.protocols,
        cpu_model=machine.cpu_model,
        cpu_cores=machine.cpu_cores,
        ram_bytes=machine.ram_bytes,
        gpus=gpus,
        ffmpeg_version=info.version,
        gst_elements=() if gst is None else gst.elements,
        gst_version="" if gst is None else gst.version,
    )


def detect(ffmpeg: Path, nvml: Nvml, gst: GstInfo | None = None) -> Capabilities:
    """Probe FFmpeg, the host and the GPUs, and prove each NVENC encoder on each GPU."""
    capabilities = assemble(probe(ffmpeg), host(), nvml.devices(), test_encode(ffmpeg), gst)
    for gpu in capabilities.gpus:
        log.info("GPU %d %s: NVENC %s", gpu.index, gpu.name, ", ".join(gpu.encoders) or "none")
    return capabilities
