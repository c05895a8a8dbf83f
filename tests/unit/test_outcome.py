"""FFmpeg endings classified, preflight refusals, capabilities assembled, RAPL counted."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from agent.capabilities import assemble
from agent.hardware import Host, Rapl
from agent.nvml import GpuDevice
from agent.outcome import classify, energy_between
from agent.output import written_bytes
from agent.preflight import check, disk_problem
from agent.probe import FfmpegInfo
from events.enums import FailureReason
from events.spec import JobSpec


@pytest.mark.parametrize(
    "stderr",
    [
        b"[in#0 @ 0x1] Error opening input: No such file or directory\n",
        b"x.mp4: Invalid data found when processing input\n",
        b"Unrecognized option 'foo'.\nError splitting the argument list: Option not found\n",
        b"Unknown encoder 'libnothing'\n",
        b"[libx264 @ 0x1] Error setting option preset to value fastest.\n",
    ],
)
def test_bad_input_or_parameters_are_user_errors(stderr: bytes) -> None:
    """What FFmpeg says about the job's own input or options is the job's fault."""
    failed = classify(1, b"frame=1\n" + stderr)
    assert failed.reason is FailureReason.USER_ERROR
    assert stderr.decode().strip().splitlines()[-1] in failed.message


def test_other_exits_are_runtime_errors_with_the_last_lines() -> None:
    """Anything else is retried as runtime_error and says what FFmpeg said last."""
    stderr = b"".join(f"line {i}\n".encode() for i in range(50))
    failed = classify(1, stderr)
    assert failed.reason is FailureReason.RUNTIME_ERROR
    assert failed.message == "FFmpeg exited 1: line 45 | line 46 | line 47 | line 48 | line 49"


def test_error_lines_are_preferred_to_statistics() -> None:
    """The lines that say what went wrong are shown, not the encoder statistics after them."""
    stderr = (
        b"[tee] Error writing trailer: Broken pipe\n[libx264] kb/s:1237.94\nConversion failed!\n"
    )
    failed = classify(251, stderr)
    assert failed.reason is FailureReason.RUNTIME_ERROR
    assert failed.message == (
        "FFmpeg exited 251: [tee] Error writing trailer: Broken pipe | Conversion failed!"
    )


def test_death_by_signal_is_a_runtime_error() -> None:
    """A killed FFmpeg is a runtime_error naming the signal, even if stderr looks like misuse."""
    failed = classify(-signal.SIGKILL, b"Invalid argument\n")
    assert failed.reason is FailureReason.RUNTIME_ERROR
    assert "SIGKILL" in failed.message
    assert classify(1, b"").message == "FFmpeg exited 1: no output on stderr"


def test_preflight(tmp_path: Path) -> None:
    """Missing input and output directory are user errors; a full disk is a resource error."""
    assert check(JobSpec(scenario="480p-h264"), tmp_path) is None
    missing = check(JobSpec(scenario="480p-h264", input=str(tmp_path / "a.mp4")), tmp_path)
    assert missing is not None
    assert missing.reason is FailureReason.USER_ERROR
    no_dir = check(JobSpec(scenario="480p-h264", output=str(tmp_path / "d" / "o.mp4")), tmp_path)
    assert no_dir is not None
    assert no_dir.reason is FailureReason.USER_ERROR
    full = check(JobSpec(scenario="480p-h264"), tmp_path, min_free_bytes=1 << 62)
    assert full is not None
    assert full.reason is FailureReason.RESOURCE_ERROR
    assert disk_problem(tmp_path, 0) is None


INFO = FfmpegInfo(
    path="ffmpeg",
    version="n9",
    encoders=("libx264", "h264_nvenc", "hevc_nvenc", "h264_qsv"),
    filters=("psnr",),
    protocols=("file", "rtmp"),
)
HOST = Host(hostname="h", cpu_model="CPU", cpu_cores=8, ram_bytes=1 << 34)


def test_hardware_encoders_count_only_when_proven() -> None:
    """NVENC encoders are offered per GPU only where the test encode worked; QSV never."""
    gpus = [
        GpuDevice(index=0, name="L4", memory_bytes=1 << 34, nvenc=True, nvenc_sessions=32),
        GpuDevice(index=1, name="H100", memory_bytes=1 << 36, nvenc=False, nvenc_sessions=0),
    ]
    tried: list[tuple[str, int]] = []

    def proves(encoder: str, gpu: int) -> bool:
        tried.append((encoder, gpu))
        return encoder == "h264_nvenc"

    caps = assemble(INFO, HOST, gpus, proves)
    assert tried == [("h264_nvenc", 0), ("hevc_nvenc", 0)]  # no NVENC unit on GPU 1: not tried
    assert caps.encoders == ("h264_nvenc", "libx264")
    assert [g.encoders for g in caps.gpus] == [("h264_nvenc",), ()]
    assert [g.nvenc_sessions for g in caps.gpus] == [32, 0]
    assert (caps.cpu_cores, caps.filters, caps.ffmpeg_version) == (8, ("psnr",), "n9")


def test_no_gpu_means_no_hardware_encoders() -> None:
    """Without GPUs FFmpeg's listing of NVENC means nothing."""
    caps = assemble(INFO, HOST, [], lambda _encoder, _gpu: True)
    assert caps.encoders == ("libx264",)
    assert caps.gpus == ()


def zone(root: Path, name: str, energy_uj: int, wrap_uj: int = 1000) -> Path:
    """A fake powercap zone."""
    path = root / name
    path.mkdir()
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{wrap_uj}\n")
    return path


def test_rapl_sums_packages_across_wraps(tmp_path: Path) -> None:
    """Package counters are summed, sub-zones skipped, and a wrap adds the range."""
    package = zone(tmp_path, "intel-rapl:0", 900_000, wrap_uj=1_000_000)
    zone(tmp_path, "intel-rapl:1", 100)
    zone(tmp_path, "intel-rapl:0:0", 5)
    rapl = Rapl(tmp_path)
    assert rapl.available
    assert rapl.joules() == 0.0
    (package / "energy_uj").write_text("100000\n")  # wrapped: +200,000 µJ
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("600\n")
    assert rapl.joules() == pytest.approx(0.2005)


def test_rapl_unreadable_is_none(tmp_path: Path) -> None:
    """No readable counter: energy is unmeasured (None), not zero."""
    rapl = Rapl(tmp_path)
    assert not rapl.available
    assert rapl.joules() is None


def test_energy_is_the_difference_of_two_readings_or_none() -> None:
    """Both engines' energy: end minus start; a missing reading (no meter) is no figure."""
    assert energy_between(10.0, 12.5) == 2.5
    assert energy_between(None, 12.5) is None
    assert energy_between(10.0, None) is None


def test_the_written_size_is_the_file_s_or_none(tmp_path: Path) -> None:
    """Both engines' output size: the temporary file's bytes; a file that is gone has none."""
    written = tmp_path / ".a.ffrtmp-j-1.partial.mp4"
    assert written_bytes(written) is None
    written.write_bytes(b"x" * 123)
    assert written_bytes(written) == 123
