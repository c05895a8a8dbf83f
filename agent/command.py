"""Pure: the FFmpeg argv for one attempt, from its spec, its scenario and the machine.

Inputs: a lavfi test pattern (generated at the scenario's size and rate unless the pattern names
its own), a file, or a URL. Outputs: a file (container from its extension), ``rtmp://`` (FLV),
``srt://`` (MPEG-TS), or nowhere (the null muxer, for benchmarks). Frames are scaled to the
scenario's resolution and rate and encoded at its bitrate. A live destination (RTMP, SRT) gets
real-time pacing (``-re``) for file and pattern inputs and a two-second GOP.

When the job asks for quality metrics the encoded stream must also land in a local file the
second pass can read: the output itself when it is a file, else a ``quality_copy`` (the null
output is replaced by it; a live output is teed to it, so the stream is encoded once).

Progress goes to stdout as ``-progress`` key=value blocks; stderr carries FFmpeg's log.
"""

from __future__ import annotations

from typing import Final

import msgspec

from events.scenarios import Scenario
from events.spec import InputKind, JobSpec, OutputKind, input_kind, output_kind

PROGRESS_PERIOD_S: Final = 0.5
_LIVE: Final = frozenset({OutputKind.RTMP, OutputKind.SRT})
_MUXERS: Final = {OutputKind.RTMP: "flv", OutputKind.SRT: "mpegts"}
# Without a linger libsrt closes before the receiver has acknowledged the stream's end (27 of
# 30 frames arrived). A receiver with a jitter buffer (TSBPD, SRT's default) still drops what
# that buffer holds when the caller closes; that is the receiver's setting, see README.
SRT_LINGER_S: Final = 2


class Machine(msgspec.Struct, frozen=True, kw_only=True):
    """What the command depends on about the agent's machine."""

    cores: int = 1


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """An attempt's FFmpeg invocation and what the runner needs to know about it."""

    argv: tuple[str, ...]
    preset: str | None
    live: bool  # paced to real time: stalls are counted
    compare_with: str | None  # the local file the quality pass reads, when metrics were asked


def choose_preset(encoder: str, cores: int) -> str | None:
    """A preset that keeps the encoder near real time on a machine with ``cores`` cores."""
    if encoder in {"libx264", "libx265"}:
        return "veryfast" if cores <= 4 else "fast" if cores <= 16 else "medium"
    if encoder == "libsvtav1":
        return "12" if cores <= 4 else "10" if cores <= 16 else "8"
    if encoder.endswith("_nvenc"):
        return "p4"
    return None


def pattern_source(value: str, scen: Scenario) -> str:
    """A lavfi source: as given when it names options, else at the scenario's size and rate."""
    if "=" in value:
        return value
    return f"{value}=size={scen.width}x{scen.height}:rate={scen.fps}"


def input_args(spec: JobSpec, scen: Scenario, live: bool) -> list[str]:
    """Arguments that open the job's input."""
    kind = input_kind(spec.input)
    pace = ["-re"] if live and kind is not InputKind.URL else []
    if kind is InputKind.PATTERN:
        return [*pace, "-f", "lavfi", "-i", pattern_source(spec.input, scen)]
    return [*pace, "-i", spec.input]


def video_filter(scen: Scenario) -> str:
    """Scale and rate conversion to the scenario's frame; the quality pass reuses it."""
    return f"scale={scen.width}:{scen.height},fps={scen.fps},format=yuv420p"


def encoder_args(scen: Scenario, preset: str | None, gpu: int | None, live: bool) -> list[str]:
    """Encoder, rate control and preset for the scenario."""
    kbps = scen.bitrate_kbps
    args = ["-c:v", scen.encoder, "-b:v", f"{kbps}k"]
    if scen.encoder != "libsvtav1":  # SVT-AV1 caps the rate only in CRF mode
        args += ["-maxrate", f"{kbps}k", "-bufsize", f"{2 * kbps}k"]
    if preset is not None:
        args += ["-preset", preset]
    if scen.encoder.endswith("_nvenc") and gpu is not None:
        args += ["-gpu", str(gpu)]
    if scen.encoder == "libx265":
        args += ["-x265-params", "log-level=error"]
    if live:
        args += ["-g", str(2 * scen.fps)]
    return args


def srt_url(url: str) -> str:
    """An SRT URL that lingers on close until the receiver has the stream's end."""
    if "linger=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}linger={SRT_LINGER_S}"


def output_args(spec: JobSpec, compare_with: str | None) -> list[str]:
    """Where the encoded stream goes (and its local copy for the quality pass)."""
    kind = output_kind(spec.output)
    if kind is OutputKind.FILE:
        return [spec.output]
    if kind is OutputKind.NONE:
        return ["-f", "null", "-"] if compare_with is None else ["-f", "matroska", compare_with]
    muxer = _MUXERS[kind]
    url = srt_url(spec.output) if kind is OutputKind.SRT else spec.output
    if compare_with is None:
        return ["-f", muxer, url]
    targets = f"[f={muxer}:onfail=abort]{url}|[f=matroska]{compare_with}"
    return ["-flags", "+global_header", "-f", "tee", targets]


def build(
    ffmpeg: str,
    spec: JobSpec,
    scen: Scenario,
    machine: Machine,
    *,
    gpu: int | None = None,
    quality_copy: str | None = None,
) -> Plan:
    """The whole invocation; ``quality_copy`` names the file to tee into when metrics are asked."""
    kind = output_kind(spec.output)
    live = kind in _LIVE
    preset = spec.preset if spec.preset is not None else choose_preset(scen.encoder, machine.cores)
    compare_with = None
    if spec.quality_metrics:
        compare_with = spec.output if kind is OutputKind.FILE else quality_copy
    audio = input_kind(spec.input) is not InputKind.PATTERN and kind is not OutputKind.NONE
    argv = [
        ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-y",
        *input_args(spec, scen, live),
        "-t", f"{spec.duration_s:g}",
        "-map", "0:v:0", *(["-map", "0:a:0?", "-c:a", "aac", "-b:a", "128k"] if audio else []),
        "-vf", video_filter(scen),
        *encoder_args(scen, preset, gpu, live),
        "-progress", "pipe:1", "-stats_period", f"{PROGRESS_PERIOD_S:g}",
        *output_args(spec, compare_with),
    ]  # fmt: skip
    return Plan(argv=tuple(argv), preset=preset, live=live, compare_with=compare_with)
