"""The second FFmpeg pass: PSNR, SSIM and VMAF of the encoded output against its source.

The source is opened exactly as the encode opened it (same pattern, file or URL, cut to the
job's duration) and put through the same scale and rate filter, so both sides have the
scenario's frame size and rate. Both sides are then renumbered frame by frame
(``settb=1/fps,setpts=N``): a container that stores timestamps in milliseconds would otherwise
pair every third frame with its neighbour. VMAF uses libvmaf's built-in model
(``version=vmaf_v0.6.1``), so no model file is needed. Each filter prints a summary line on
stderr, which ``parse`` reads.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from agent.command import PROGRESS_PERIOD_S, duration_args, input_args, video_filter
from events.enums import QualityMetric
from events.scenarios import Scenario
from events.spec import JobSpec

VMAF_MODEL: Final = "version=vmaf_v0.6.1"
_FILTERS: Final = {
    QualityMetric.PSNR: "psnr",
    QualityMetric.SSIM: "ssim",
    QualityMetric.VMAF: f"libvmaf=model={VMAF_MODEL}",
}
_PSNR: Final = re.compile(r"\] PSNR .*?average:(inf|[-\d.]+)")
_SSIM: Final = re.compile(r"\] SSIM .*?All:([-\d.]+)")
_VMAF: Final = re.compile(r"\] VMAF score[:=]\s*([-\d.]+)")
PSNR_IDENTICAL: Final = 100.0  # FFmpeg prints ``inf`` for identical frames; reported as 100 dB


class Scores(msgspec.Struct, frozen=True, kw_only=True):
    """What the pass measured; a metric not asked for, or not printed, is None."""

    psnr: float | None = None
    ssim: float | None = None
    vmaf: float | None = None


def graph(metrics: tuple[QualityMetric, ...], scen: Scenario) -> str:
    """A filtergraph comparing input 0 (the encode) with input 1 (the source), one output each."""
    count = len(metrics)
    renumber = f"settb=1/{scen.fps},setpts=N"
    distorted = "".join(f"[d{i}]" for i in range(count))
    reference = "".join(f"[r{i}]" for i in range(count))
    parts = [
        f"[0:v]format=yuv420p,{renumber},split={count}{distorted}",
        f"[1:v]{video_filter(scen)},{renumber},split={count}{reference}",
    ]
    parts += [f"[d{i}][r{i}]{_FILTERS[metric]}[q{i}]" for i, metric in enumerate(metrics)]
    return ";".join(parts)


def argv(ffmpeg: str, spec: JobSpec, scen: Scenario, encoded: str) -> tuple[str, ...]:
    """The comparison pass: the encoded file against the job's source, output discarded."""
    metrics = spec.quality_metrics
    outputs: list[str] = []
    for i in range(len(metrics)):
        outputs += ["-map", f"[q{i}]", "-f", "null", "-"]
    return (
        ffmpeg, "-nostdin", "-hide_banner", "-nostats",
        "-i", encoded,
        *duration_args(spec), *input_args(spec, scen, live=False),
        "-filter_complex", graph(metrics, scen),
        "-progress", "pipe:1", "-stats_period", f"{PROGRESS_PERIOD_S:g}",
        *outputs,
    )  # fmt: skip


def _last(pattern: re.Pattern[str], text: str) -> float | None:
    found = pattern.findall(text)
    if not found:
        return None
    return PSNR_IDENTICAL if found[-1] == "inf" else float(found[-1])


def parse(stderr: str) -> Scores:
    """The summaries the psnr, ssim and libvmaf filters print when they finish."""
    return Scores(psnr=_last(_PSNR, stderr), ssim=_last(_SSIM, stderr), vmaf=_last(_VMAF, stderr))
