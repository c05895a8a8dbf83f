"""Pure: the ``gst-launch-1.0`` pipeline for one attempt, and the elements a job needs for it.

One set of tables says which GStreamer element does each part of a job (source, encoder,
parser, muxer, sink), so the pipeline an agent builds and the elements the scheduler asks of
it (``requirements``) cannot disagree. A job the engine cannot express (a color name it has no
value for, HEVC over FLV, quality metrics) gets a requirement no agent meets, with the reason,
so it is rejected at submit instead of failing on an agent.

The pipeline: the source (``videotestsrc``, ``filesrc ! decodebin``, ``uridecodebin``), then
conversion, scaling (borders keep the aspect ratio) and rate conversion to the scenario's frame,
an ``identity`` whose per-buffer messages are the progress, the encoder at the scenario's
bitrate, its parser, the muxer and the sink. Audio, AAC at 128 kb/s, goes with it when the
input has some (and the output is not ``none``), and a silent track when a test pattern goes
to a live destination (ingests expect one). A pattern stops after the job's frames. A file or
URL passes an ``avwait`` that lets through exactly the job's duration of audio and video (by
running time); ``gst-launch`` cannot seek, so the engine then ends the input by EOS once the
progress shows the duration reached, instead of decoding the rest for nothing.

A live destination is paced by its sink (``sync=true``), as ``-re`` paces FFmpeg: sources are
never live themselves, so every frame keeps its place in time and a pause (SIGSTOP) delays the
stream instead of leaving a hole that the frames after it are squeezed into.
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath
from typing import Final

import msgspec

from events.media import parse_pattern
from events.scenarios import Scenario, scenario
from events.spec import (
    InputKind,
    JobSpec,
    OutputKind,
    input_kind,
    output_kind,
    planned_duration_s,
)

PROGRESS: Final = "ffrtmp_progress"  # the identity element whose messages are the progress
CUT: Final = "ffrtmp_cut"  # the avwait that passes a decoded input's first duration_s
AUDIO_RATE: Final = 48000
AUDIO_BPS: Final = 128_000
SILENCE_BUFFER: Final = 480  # samples: 10 ms buffers, so a duration is a whole count of them

ENCODERS: Final = {  # the scenario's FFmpeg encoder -> the GStreamer element doing the same
    "libx264": "x264enc",
    "libx265": "x265enc",
    "libsvtav1": "svtav1enc",
    "h264_nvenc": "nvh264enc",
    "hevc_nvenc": "nvh265enc",
    "av1_nvenc": "nvav1enc",
}
PARSERS: Final = {"h264": "h264parse", "hevc": "h265parse", "av1": "av1parse"}
FILE_MUXERS: Final = {
    ".mp4": "mp4mux",
    ".m4v": "mp4mux",
    ".mov": "qtmux",
    ".mkv": "matroskamux",
    ".ts": "mpegtsmux",
    ".flv": "flvmux",
}
MUXER_CODECS: Final = {
    "mp4mux": frozenset({"h264", "hevc", "av1"}),
    "qtmux": frozenset({"h264", "hevc", "av1"}),
    "matroskamux": frozenset({"h264", "hevc", "av1"}),
    "mpegtsmux": frozenset({"h264", "hevc"}),
    "flvmux": frozenset({"h264"}),
}
LIVE_SINKS: Final = {
    OutputKind.RTMP: ("flvmux", "rtmp2sink"),
    OutputKind.SRT: ("mpegtsmux", "srtsink"),
}
AAC_ENCODERS: Final = ("avenc_aac", "voaacenc", "fdkaacenc")  # in order of preference
PATTERNS: Final = {  # FFmpeg's lavfi test sources -> the nearest videotestsrc pattern
    "testsrc": "smpte",
    "testsrc2": "smpte",
    "smptebars": "smpte75",
    "smptehdbars": "smpte-rp-219",
    "rgbtestsrc": "colors",
    "mandelbrot": "zone-plate",
    "color": "solid-color",
}
COLORS: Final = {  # FFmpeg's names for the common colors, as 0xRRGGBB
    "black": "000000", "white": "ffffff", "red": "ff0000", "green": "008000", "blue": "0000ff",
    "yellow": "ffff00", "cyan": "00ffff", "magenta": "ff00ff", "gray": "808080",
    "grey": "808080", "orange": "ffa500",
}  # fmt: skip
MOVING: Final = frozenset({"testsrc2", "mandelbrot"})  # sources whose picture moves
CONVERT: Final = ("videoconvert", "videoscale", "videorate", "identity", "queue")
AUDIO: Final = ("audioconvert", "audioresample", "aacparse")
SOURCES: Final = ("videotestsrc", "audiotestsrc", "filesrc", "decodebin", "uridecodebin", "avwait")
URL_SOURCES: Final = {  # what uridecodebin opens each scheme with
    "http": "souphttpsrc", "https": "souphttpsrc", "rtmp": "rtmp2src", "rtmps": "rtmp2src",
    "srt": "srtsrc", "udp": "udpsrc", "rtsp": "rtspsrc",
}  # fmt: skip
KNOWN_ELEMENTS: Final = frozenset(
    {
        *ENCODERS.values(), *PARSERS.values(), *MUXER_CODECS, *CONVERT, *AUDIO, *AAC_ENCODERS,
        *SOURCES, *URL_SOURCES.values(), "filesink", "fakesink", "rtmp2sink", "srtsink",
    }
)  # fmt: skip


class Requirement(msgspec.Struct, frozen=True, kw_only=True):
    """Elements of which an agent needs one (none listed: no agent can), and how to say so."""

    any_of: tuple[str, ...]
    phrase: str

    def met_by(self, elements: frozenset[str] | tuple[str, ...]) -> bool:
        """Whether an agent with these elements meets it."""
        return any(element in elements for element in self.any_of)


def element(name: str) -> Requirement:
    """One element, by name."""
    return Requirement(any_of=(name,), phrase=f"GStreamer element {name}")


def impossible(why: str) -> Requirement:
    """A job the GStreamer engine cannot express."""
    return Requirement(any_of=(), phrase=f"GStreamer support for {why}")


def file_muxer(output: str) -> str | None:
    """The muxer for a file output's extension, None when the engine writes no such container."""
    return FILE_MUXERS.get(PurePosixPath(output).suffix.lower())


def muxer_of(spec: JobSpec) -> str | None:
    """The muxer the output needs (None for ``none``, or an extension the engine lacks)."""
    kind = output_kind(spec.output)
    if kind is OutputKind.FILE:
        return file_muxer(spec.output)
    if kind is OutputKind.NONE:
        return None
    return LIVE_SINKS[kind][0]


def _source(spec: JobSpec) -> list[Requirement]:
    kind = input_kind(spec.input)
    if kind is InputKind.PATTERN:
        color = parse_pattern(spec.input).color
        if color is not None and argb(color) is None:
            return [impossible(f"the color {color!r}; give it as 0xRRGGBB")]
        return [element("videotestsrc")]
    if kind is InputKind.FILE:
        return [element("filesrc"), element("decodebin"), element("avwait")]
    scheme = spec.input.split("://", 1)[0].lower()
    opener = URL_SOURCES.get(scheme)
    if opener is None:
        return [impossible(f"{scheme}:// inputs")]
    return [element("uridecodebin"), element(opener), element("avwait")]


def _output(spec: JobSpec, codec: str) -> list[Requirement]:
    kind = output_kind(spec.output)
    if kind is OutputKind.NONE:
        return [element("fakesink")]
    muxer = muxer_of(spec)
    if muxer is None:
        exts = ", ".join(sorted(FILE_MUXERS))
        return [impossible(f"writing {PurePosixPath(spec.output).suffix} files (it writes {exts})")]
    if codec not in MUXER_CODECS[muxer]:
        return [impossible(f"{codec} in {muxer}")]
    sink = "filesink" if kind is OutputKind.FILE else LIVE_SINKS[kind][1]
    return [element(muxer), element(sink)]


def has_audio_path(spec: JobSpec) -> bool:
    """Whether the job may carry audio: a file or URL input, or a pattern to a live output."""
    out = output_kind(spec.output)
    if out is OutputKind.NONE:
        return False
    return input_kind(spec.input) is not InputKind.PATTERN or out in LIVE_SINKS


def requirements(spec: JobSpec) -> tuple[Requirement, ...]:
    """Every element the job needs to run on the GStreamer engine."""
    chosen = scenario(spec.scenario)
    needed = [element(name) for name in CONVERT]
    needed += _source(spec)
    needed += [element(ENCODERS[chosen.encoder]), element(PARSERS[chosen.codec])]
    needed += _output(spec, chosen.codec)
    if spec.quality_metrics:
        needed.append(impossible("quality metrics (the FFmpeg engine computes them)"))
    if has_audio_path(spec):
        needed += [element(name) for name in AUDIO]
        if input_kind(spec.input) is InputKind.PATTERN:
            needed.append(element("audiotestsrc"))
        needed.append(Requirement(any_of=AAC_ENCODERS, phrase="a GStreamer AAC encoder"))
    return tuple(needed)


def lacks(spec: JobSpec, elements: frozenset[str] | tuple[str, ...]) -> list[str]:
    """What an agent with ``elements`` lacks to run the job on GStreamer, as short phrases."""
    return [need.phrase for need in requirements(spec) if not need.met_by(elements)]


# --- the pipeline ---------------------------------------------------------------------------


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """An attempt's ``gst-launch-1.0`` invocation and what the engine needs to know about it."""

    argv: tuple[str, ...]
    live: bool  # paced to real time
    cut_at_s: float | None  # media seconds at which the engine ends the input (EOS)
    audio: bool


class Machine(msgspec.Struct, frozen=True, kw_only=True):
    """What the pipeline depends on about the agent: its elements, cores and the GPU."""

    elements: frozenset[str]
    preset: str | None = None  # the x264/x265/SVT-AV1 preset for this machine
    gpu: int | None = None


def quote(value: str) -> str:
    """A property value as ``gst-launch`` parses it back whatever it holds."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def argb(color: str) -> str | None:
    """An FFmpeg color (a common name, 0xRRGGBB or 0xRRGGBBAA) as videotestsrc's 0xAARRGGBB."""
    rgb = COLORS.get(color.lower())
    if rgb is not None:
        return f"0xff{rgb}"
    digits = color.lower().removeprefix("0x")
    if not color.lower().startswith("0x") or len(digits) not in {6, 8}:
        return None
    alpha = digits[6:] or "ff"
    return f"0x{alpha}{digits[:6]}"


def _pattern(spec: JobSpec, scen: Scenario) -> list[str]:
    """The test source: the job's duration (or the pattern's, when shorter) at its own rate."""
    pattern = parse_pattern(spec.input)
    rate = pattern.rate or scen.fps
    lengths = [d for d in (planned_duration_s(spec), pattern.duration_s) if d is not None]
    frames = max(1, math.ceil(min(lengths) * rate - 1e-9)) if lengths else -1  # -1: until EOS
    args = ["videotestsrc", f"pattern={PATTERNS[pattern.source]}", f"num-buffers={frames}"]
    if pattern.source in MOVING:
        args.append("horizontal-speed=4")
    if pattern.source == "color":
        args.append(f"foreground-color={argb(pattern.color or 'black')}")
    args.append("is-live=false")
    size = f",width={pattern.width},height={pattern.height}" if pattern.width else ""
    if size or pattern.rate:
        args += ["!", f"video/x-raw{size},framerate={rate}/1"]
    return args


def _decoded(spec: JobSpec) -> list[str]:
    if input_kind(spec.input) is InputKind.FILE:
        return ["filesrc", f"location={quote(spec.input)}", "!", "decodebin", "name=src"]
    return ["uridecodebin", f"uri={quote(spec.input)}", "name=src"]


def encoder(scen: Scenario, machine: Machine, live: bool) -> list[str]:
    """The encoder element with the scenario's rate control, its preset and GOP."""
    name, kbps, gop = ENCODERS[scen.encoder], scen.bitrate_kbps, 2 * scen.fps
    preset = machine.preset
    match name:
        case "x264enc":
            args = [name, f"bitrate={kbps}", "vbv-buf-capacity=1000"]  # 2 s let it run 8 % over
            args += [f"speed-preset={preset}"] if preset else []
            live_args = [f"key-int-max={gop}", "bframes=0", "option-string=scenecut=0"]
            return args + (live_args if live else [])
        case "x265enc":
            options = f"vbv-maxrate={kbps}:vbv-bufsize={2 * kbps}:log-level=error"
            options += ":scenecut=0" if live else ""
            args = [name, f"bitrate={kbps}", f"option-string={quote(options)}"]
            args += [f"speed-preset={preset}"] if preset else []
            return args + ([f"key-int-max={gop}"] if live else [])
        case "svtav1enc":
            args = [name, f"target-bitrate={kbps}"]
            args += [f"preset={preset}"] if preset else []
            return args + ([f"intra-period-length={gop - 1}"] if live else [])
        case _:  # NVENC: nvh264enc, nvh265enc, nvav1enc
            args = [name, f"bitrate={kbps}", f"max-bitrate={kbps}", "rc-mode=cbr"]
            args += [f"cuda-device-id={machine.gpu}"] if machine.gpu is not None else []
            return args + ([f"gop-size={gop}"] if live else [])


def _parsed(scen: Scenario, muxer: str | None) -> list[str]:
    parser = [PARSERS[scen.codec]]
    if scen.codec == "hevc" and muxer in {"mp4mux", "qtmux"}:
        parser += ["!", "video/x-h265,stream-format=hvc1"]  # players (Apple) need hvc1
    return parser


def _window(spec: JobSpec, pad: str) -> list[str]:
    """Through the cut (``avwait``'s ``pad``) for a file or URL input; nothing for a pattern."""
    if input_kind(spec.input) is InputKind.PATTERN:
        return []
    return [f"{CUT}.{pad[0]}sink", f"{CUT}.{pad[0]}src", "!"]


def cut(spec: JobSpec) -> list[str]:
    """The ``avwait`` that passes the job's duration of a decoded input, then drops the rest."""
    duration = planned_duration_s(spec)
    end = [] if duration is None else [f"end-running-time={round(duration * 1e9)}"]
    return ["avwait", f"name={CUT}", "mode=running-time", "target-running-time=0",
            *end]  # fmt: skip


def _video(spec: JobSpec, scen: Scenario, machine: Machine, live: bool) -> list[str]:
    frame = (
        f"video/x-raw,width={scen.width},height={scen.height},"
        f"framerate={scen.fps}/1,format=I420,pixel-aspect-ratio=1/1"
    )
    muxer = muxer_of(spec)
    tail = ["fakesink", "sync=false"] if muxer is None else ["queue", "!", "mux."]
    return [
        "videoconvert", "!", "videoscale", "!", "videorate", "skip-to-first=true", "!", frame, "!",
        "identity", f"name={PROGRESS}", "silent=false", "!", *_window(spec, "video"),
        *encoder(scen, machine, live), "!", *_parsed(scen, muxer), "!", *tail,
    ]  # fmt: skip


def aac_encoder(elements: frozenset[str]) -> str:
    """The AAC encoder this agent has, by preference; the first when it has none."""
    return next((name for name in AAC_ENCODERS if name in elements), AAC_ENCODERS[0])


def _audio(spec: JobSpec, machine: Machine) -> list[str]:
    if input_kind(spec.input) is InputKind.PATTERN:
        duration = planned_duration_s(spec)
        buffers = -1 if duration is None else max(1, round(duration * AUDIO_RATE / SILENCE_BUFFER))
        head = [
            "audiotestsrc", "wave=silence", f"samplesperbuffer={SILENCE_BUFFER}",
            f"num-buffers={buffers}", "is-live=false", "!",
        ]  # fmt: skip
    else:
        head = ["src.", "!", "queue", "!"]
    return [
        *head, "audioconvert", "!", "audioresample", "!",
        f"audio/x-raw,rate={AUDIO_RATE},channels=2", "!", *_window(spec, "audio"),
        aac_encoder(machine.elements), f"bitrate={AUDIO_BPS}", "!", "aacparse", "!",
        "queue", "!", "mux.",
    ]  # fmt: skip


def _sink(spec: JobSpec, write_to: str | None) -> list[str]:
    kind = output_kind(spec.output)
    muxer = muxer_of(spec)
    if muxer is None:
        return []
    props = {"mp4mux": ["faststart=true"], "qtmux": ["faststart=true"]}.get(muxer, [])
    if kind is OutputKind.RTMP:
        props = ["streamable=true"]
        sink = ["rtmp2sink", f"location={quote(spec.output)}", "sync=true"]
    elif kind is OutputKind.SRT:
        props = ["alignment=7"]  # 7 TS packets, 1316 bytes: what one SRT live message holds
        sink = ["srtsink", f"uri={quote(spec.output)}", "sync=true"]
    else:
        sink = ["filesink", f"location={quote(write_to or spec.output)}"]
    return [muxer, "name=mux", *props, "!", *sink]


def build(
    launch: str,
    spec: JobSpec,
    machine: Machine,
    *,
    audio_in_input: bool,
    write_to: str | None = None,
) -> Plan:
    """The whole invocation; ``audio_in_input``: the file or URL has an audio stream.

    A file output is written to ``write_to`` (a temporary name beside it) when given.
    """
    scen = scenario(spec.scenario)
    kind = input_kind(spec.input)
    live = output_kind(spec.output) in LIVE_SINKS
    pattern = kind is InputKind.PATTERN
    audio = has_audio_path(spec) and (pattern or audio_in_input)
    if pattern:
        video_src = [*_pattern(spec, scen), "!"]
    else:
        video_src = [*_decoded(spec), *cut(spec), "src.", "!", "queue", "!"]
    argv = [
        launch, "-e", "-v", *video_src, *_video(spec, scen, machine, live),
        *(_audio(spec, machine) if audio else []), *_sink(spec, write_to),
    ]  # fmt: skip
    return Plan(
        argv=tuple(argv),
        live=live,
        cut_at_s=None if pattern else planned_duration_s(spec),
        audio=audio,
    )
