"""Pure: the FFmpeg argv for one attempt, from its spec, its scenario and the machine.

Inputs: a test pattern (one of a fixed set of sources, rebuilt from its checked options at the
scenario's size and rate unless it names its own), a file, or a URL. Outputs: a file (container
from its extension), ``rtmp://`` (FLV), ``srt://`` (MPEG-TS), or nowhere (the null muxer, for
benchmarks). What comes out is what players and ingests expect by default:

- frames fit the scenario's size with the aspect ratio kept (padded, square pixels);
- every encoder is capped at the scenario's bitrate (one second of VBV; SVT-AV1 by VBR without
  overshoot, as it ignores ``-maxrate`` outside CRF);
- MP4/MOV have their index first (``+faststart``) and HEVC tagged ``hvc1``;
- audio is copied when the container takes the source's codec, else encoded; a live test
  pattern carries a silent AAC track;
- a live destination (RTMP, SRT) gets real-time pacing (``-re``) for every VOD input (pattern,
  file, http(s)) and a fixed two-second GOP with no scene-cut keyframes.

When the job asks for quality metrics the encoded stream must also land in a local file the
second pass can read: the output itself when it is a file, else a ``quality_copy`` (the null
output is replaced by it; a live output is teed to it, so the stream is encoded once).

Progress goes to stdout as ``-progress`` key=value blocks; stderr carries FFmpeg's log.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Final

import msgspec

from events.media import parse_pattern
from events.scenarios import Scenario
from events.spec import (
    InputKind,
    JobSpec,
    OutputKind,
    input_kind,
    output_kind,
    planned_duration_s,
)

PROGRESS_PERIOD_S: Final = 0.5
_LIVE: Final = frozenset({OutputKind.RTMP, OutputKind.SRT})
_MUXERS: Final = {OutputKind.RTMP: "flv", OutputKind.SRT: "mpegts"}
# Without a linger libsrt closes before the receiver has acknowledged the stream's end (27 of
# 30 frames arrived). A receiver with a jitter buffer (TSBPD, SRT's default) still drops what
# that buffer holds when the caller closes; that is the receiver's setting, see README.
SRT_LINGER_S: Final = 2
# An RTMP receiver that accepts the connection but never answers the handshake (a wrong port,
# another service) or stops reading mid-stream would hold FFmpeg until the scheduler's stall
# window; with an I/O timeout FFmpeg fails in seconds, saying "Cannot read RTMP handshake
# response ... Connection timed out", and the attempt is retried as a runtime error.
RTMP_IO_TIMEOUT_S: Final = 10
_VOD_SCHEMES: Final = frozenset({"http", "https"})
SILENCE: Final = "anullsrc=channel_layout=stereo:sample_rate=48000"
AUDIO_BITRATE: Final = "128k"
_ISO_BMFF: Final = frozenset({"mp4", "mov"})
_BY_SUFFIX: Final = {
    ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
    ".ts": "mpegts", ".m2ts": "mpegts", ".flv": "flv",
}  # fmt: skip
# Audio codecs each muxer stores as they are; a muxer not listed takes any (Matroska).
_AUDIO_COPY: Final[dict[str, frozenset[str]]] = {
    "mp4": frozenset({"aac", "mp3", "ac3", "eac3", "alac", "flac", "opus"}),
    "mov": frozenset({"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le"}),
    "webm": frozenset({"opus", "vorbis"}),
    "mpegts": frozenset({"aac", "mp3", "mp2", "ac3", "eac3", "opus"}),
    "flv": frozenset({"aac", "mp3"}),
    "other": frozenset(),
}


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
    """The lavfi source of a test pattern, rebuilt from its checked parts (never passed through)."""
    return parse_pattern(value).lavfi(scen.width, scen.height, scen.fps)


def paced(spec: JobSpec, live: bool) -> bool:
    """Whether the input is read at real time: a VOD source (pattern, file, http) to a live output.

    A live source (rtmp, srt, udp, rtsp) already arrives at real time and is never paced.
    """
    if not live:
        return False
    kind = input_kind(spec.input)
    return kind is not InputKind.URL or spec.input.split("://", 1)[0].lower() in _VOD_SCHEMES


def input_args(spec: JobSpec, scen: Scenario, live: bool) -> list[str]:
    """Arguments that open the job's input (and a silent track for a live test pattern)."""
    pace = ["-re"] if paced(spec, live) else []
    if input_kind(spec.input) is InputKind.PATTERN:
        video = [*pace, "-f", "lavfi", "-i", pattern_source(spec.input, scen)]
        return [*video, *pace, "-f", "lavfi", "-i", SILENCE] if live else video
    return [*pace, "-i", spec.input]


def duration_args(spec: JobSpec) -> list[str]:
    """``-t`` with the seconds to encode; nothing for the whole input or an endless stream."""
    planned = planned_duration_s(spec)
    return [] if planned is None else ["-t", f"{planned:g}"]


def video_filter(scen: Scenario) -> str:
    """Fit in the scenario's frame keeping the aspect ratio, pad the rest, square pixels.

    A 4:3 input in a 16:9 scenario is pillarboxed, never stretched; the quality pass reuses it.
    """
    w, h = scen.width, scen.height
    return (
        f"scale={w}:{h}:force_original_aspect_ratio=decrease:force_divisible_by=2,"
        f"pad={w}:{h}:-1:-1,setsar=1,fps={scen.fps},format=yuv420p"
    )


def _keyframes(scen: Scenario, live: bool) -> list[str]:
    """A fixed GOP of two seconds for live outputs, with no scene-cut keyframes in between."""
    if not live:
        return []
    gop = str(2 * scen.fps)
    if scen.encoder == "libx264":
        return ["-g", gop, "-keyint_min", gop, "-sc_threshold", "0"]
    if scen.encoder.endswith("_nvenc"):
        return ["-g", gop, "-no-scenecut", "1"]
    return ["-g", gop]  # x265 and SVT-AV1 take theirs in their own parameters


def _private_params(scen: Scenario, live: bool) -> list[str]:
    gop = 2 * scen.fps
    if scen.encoder == "libx265":
        params = "log-level=error" + (f":keyint={gop}:min-keyint={gop}:scenecut=0" if live else "")
        return ["-x265-params", params]
    if scen.encoder == "libsvtav1":  # VBR without overshoot: SVT-AV1 ignores -maxrate outside CRF
        return ["-svtav1-params", "rc=1:overshoot-pct=0" + (":scd=0" if live else "")]
    return []


def encoder_args(scen: Scenario, preset: str | None, gpu: int | None, live: bool) -> list[str]:
    """Encoder, rate control capped at the scenario's bitrate (one second of VBV), preset, GOP."""
    kbps = scen.bitrate_kbps
    args = ["-c:v", scen.encoder, "-b:v", f"{kbps}k"]
    if scen.encoder != "libsvtav1":
        args += ["-maxrate", f"{kbps}k", "-bufsize", f"{kbps}k"]
    if preset is not None:
        args += ["-preset", preset]
    if scen.encoder.endswith("_nvenc") and gpu is not None:
        args += ["-gpu", str(gpu)]
    return [*args, *_private_params(scen, live), *_keyframes(scen, live)]


def container(spec: JobSpec) -> str | None:
    """The muxer the output gets: from a file's extension, flv for RTMP, mpegts for SRT."""
    kind = output_kind(spec.output)
    if kind is OutputKind.NONE:
        return None
    if kind is OutputKind.FILE:
        return _BY_SUFFIX.get(PurePosixPath(spec.output).suffix.lower(), "other")
    return _MUXERS[kind]


def audio_args(spec: JobSpec, live: bool, source_audio: str | None) -> list[str]:
    """The audio track: copied when the container takes the source's codec, else encoded.

    A live test pattern gets its silent track (input 1) encoded as AAC; a benchmark none.
    ``source_audio`` is the input's audio codec when it was probed (None: unknown, so encode).
    """
    muxer = container(spec)
    if muxer is None:
        return ["-an"]
    if input_kind(spec.input) is InputKind.PATTERN:
        return ["-map", "1:a:0", "-c:a", "aac", "-b:a", AUDIO_BITRATE] if live else ["-an"]
    allowed = _AUDIO_COPY.get(muxer)
    if source_audio is not None and (allowed is None or source_audio in allowed):
        return ["-map", "0:a:0?", "-c:a", "copy"]
    codec = "libopus" if muxer == "webm" else "aac"
    return ["-map", "0:a:0?", "-c:a", codec, "-b:a", AUDIO_BITRATE]


def container_args(spec: JobSpec, scen: Scenario) -> list[str]:
    """MP4/MOV: the index first (``+faststart``) and HEVC tagged ``hvc1`` as Apple requires."""
    if container(spec) not in _ISO_BMFF:
        return []
    tag = ["-tag:v", "hvc1"] if scen.codec == "hevc" else []
    return ["-movflags", "+faststart", *tag]


def srt_url(url: str) -> str:
    """An SRT URL that lingers on close until the receiver has the stream's end."""
    if "linger=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}linger={SRT_LINGER_S}"


def output_args(spec: JobSpec, compare_with: str | None, write_to: str | None = None) -> list[str]:
    """Where the encoded stream goes (and its local copy for the quality pass).

    A file output is written to ``write_to`` (a temporary name beside it) when given.
    """
    kind = output_kind(spec.output)
    if kind is OutputKind.FILE:
        return [write_to or spec.output]
    if kind is OutputKind.NONE:
        return ["-f", "null", "-"] if compare_with is None else ["-f", "matroska", compare_with]
    muxer = _MUXERS[kind]
    url = srt_url(spec.output) if kind is OutputKind.SRT else spec.output
    if compare_with is None:
        timeout = ["-rw_timeout", f"{RTMP_IO_TIMEOUT_S * 1_000_000}"]
        return [*(timeout if kind is OutputKind.RTMP else []), "-f", muxer, url]
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
    write_to: str | None = None,
    source_audio: str | None = None,
) -> Plan:
    """The whole invocation.

    ``quality_copy`` names the file to tee into when metrics are asked for a non-file output;
    ``write_to`` is where a file output is really written (renamed to the destination later);
    ``source_audio`` is the input's audio codec when known.
    """
    kind = output_kind(spec.output)
    live = kind in _LIVE
    preset = spec.preset if spec.preset is not None else choose_preset(scen.encoder, machine.cores)
    compare_with = None
    if spec.quality_metrics:
        compare_with = (write_to or spec.output) if kind is OutputKind.FILE else quality_copy
    argv = [
        ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-y",
        *input_args(spec, scen, live),
        *duration_args(spec),
        "-map", "0:v:0", *audio_args(spec, live, source_audio),
        "-vf", video_filter(scen),
        *encoder_args(scen, preset, gpu, live),
        *container_args(spec, scen),
        "-progress", "pipe:1", "-stats_period", f"{PROGRESS_PERIOD_S:g}",
        *output_args(spec, compare_with, write_to),
    ]  # fmt: skip
    return Plan(argv=tuple(argv), preset=preset, live=live, compare_with=compare_with)
