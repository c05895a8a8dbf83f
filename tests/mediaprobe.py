"""A small media probe for tests, built on FFmpeg alone (imageio-ffmpeg ships no ffprobe).

``probe(path)`` reads three things: the stream summary ``ffmpeg -i`` prints (container,
duration, codecs, sizes, the codec tag, audio), every packet of the file through the
``framecrc`` muxer with ``-c copy`` (no decoding, so it is cheap: frame count, keyframe times,
bytes per stream), and, for MP4/MOV, the order of the top-level boxes (``+faststart`` puts
``moov`` before ``mdat``).
"""

from __future__ import annotations

import itertools
import re
import struct
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Final

import msgspec

from agent.ffmpeg_binary import locate

_DURATION: Final = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")
_BITRATE: Final = re.compile(r"Duration: .*bitrate: (\d+) kb/s")
_INPUT: Final = re.compile(r"^Input #0, ([\w,]+), from")
_VIDEO: Final = re.compile(
    r"Stream #0:(\d+).*?: Video: (\w+)(?: \([^)]*\))*?(?: \((\w{4}) / 0x[0-9a-fA-F]+\))?, .*?"
    r"(\d{2,5})x(\d{2,5})(?: \[SAR (\d+):(\d+) DAR (\d+):(\d+)\])?"
)
_AUDIO: Final = re.compile(
    r"Stream #0:(\d+).*?: Audio: (\w+)(?: \([^)]*\))*?(?: \((\w{4}) / 0x[0-9a-fA-F]+\))?, "
    r"(\d+) Hz, ([\w.()]+)"
)
_TB: Final = re.compile(r"^#tb (\d+): (\d+)/(\d+)")


class Packets(msgspec.Struct, frozen=True, kw_only=True):
    """One stream's packets, in stream time."""

    count: int = 0
    bytes: int = 0
    span_s: float = 0.0  # from the first packet's start to the last one's end
    keyframes_s: tuple[float, ...] = ()  # presentation times of key packets


class Media(msgspec.Struct, frozen=True, kw_only=True):
    """What a media file holds, as FFmpeg reads it."""

    container: str
    duration_s: float | None
    bitrate_kbps: int | None
    video_codec: str | None = None
    video_tag: str | None = None  # e.g. hvc1 / hev1 / avc1 in MP4
    width: int = 0
    height: int = 0
    display_aspect: Fraction | None = None  # DAR; None when FFmpeg printed no SAR/DAR
    audio_codec: str | None = None
    audio_rate: int | None = None
    audio_channels: str | None = None
    video: Packets = Packets()
    audio: Packets = Packets()
    boxes: tuple[str, ...] = ()  # top-level MP4/MOV boxes in file order

    @property
    def frames(self) -> int:
        """Video frames (packets) in the file."""
        return self.video.count

    @property
    def video_kbps(self) -> float:
        """Mean video bitrate over the stream's span."""
        return self.video.bytes * 8 / 1000 / self.video.span_s if self.video.span_s else 0.0

    def keyframe_gaps_s(self) -> list[float]:
        """Seconds between consecutive keyframes."""
        keys = sorted(self.video.keyframes_s)
        return [round(b - a, 3) for a, b in itertools.pairwise(keys)]

    @property
    def faststart(self) -> bool:
        """Whether ``moov`` comes before ``mdat`` (a player can start before the whole file)."""
        if "moov" not in self.boxes or "mdat" not in self.boxes:
            return False
        return self.boxes.index("moov") < self.boxes.index("mdat")


def _ffmpeg(*args: str) -> subprocess.CompletedProcess[bytes]:
    argv = [str(locate()), "-hide_banner", "-nostdin", *args]
    return subprocess.run(argv, capture_output=True, check=False, timeout=120)  # noqa: S603


def _summary(text: str) -> dict[str, object]:
    found: dict[str, object] = {"container": "", "duration_s": None, "bitrate_kbps": None}
    # The first Video/Audio line of ``Input #0`` only: the output section repeats them.
    text = text.split("\nOutput #", 1)[0]
    for line in text.splitlines():
        if (m := _INPUT.match(line.strip())) is not None:
            found["container"] = m.group(1)
        if (m := _DURATION.search(line)) is not None:
            h, mi, s = m.groups()
            found["duration_s"] = int(h) * 3600 + int(mi) * 60 + float(s)
        if (m := _BITRATE.search(line)) is not None:
            found["bitrate_kbps"] = int(m.group(1))
        if "video_codec" not in found and (m := _VIDEO.search(line)) is not None:
            found.update(video_codec=m.group(2), video_tag=m.group(3), width=int(m.group(4)),
                         height=int(m.group(5)))  # fmt: skip
            if m.group(8):
                found["display_aspect"] = Fraction(int(m.group(8)), int(m.group(9)))
        if "audio_codec" not in found and (m := _AUDIO.search(line)) is not None:
            found.update(audio_codec=m.group(2), audio_rate=int(m.group(4)),
                         audio_channels=m.group(5))  # fmt: skip
    return found


def _packets(text: str) -> dict[int, Packets]:
    """Per stream index, from ``framecrc`` lines ``index, dts, pts, duration, size, crc[, F=]``."""
    bases: dict[int, Fraction] = {}
    rows: dict[int, list[tuple[int, int, int, bool]]] = {}
    for line in text.splitlines():
        if (m := _TB.match(line)) is not None:
            bases[int(m.group(1))] = Fraction(int(m.group(2)), int(m.group(3)))
            continue
        if line.startswith("#") or not line.strip():
            continue
        cols = [c.strip() for c in line.split(",")]
        index, pts, duration, size = int(cols[0]), int(cols[2]), int(cols[3]), int(cols[4])
        key = not any(c.startswith("F=") for c in cols[6:])
        rows.setdefault(index, []).append((pts, duration, size, key))
    found: dict[int, Packets] = {}
    for index, packets in rows.items():
        tb = bases.get(index, Fraction(1, 1000))
        start = min(p[0] for p in packets)
        end = max(p[0] + p[1] for p in packets)
        found[index] = Packets(
            count=len(packets),
            bytes=sum(p[2] for p in packets),
            span_s=float((end - start) * tb),
            keyframes_s=tuple(float(p[0] * tb) for p in packets if p[3]),
        )
    return found


def top_level_boxes(path: Path) -> tuple[str, ...]:
    """The top-level box types of an ISO BMFF (MP4/MOV) file, in order; () for other files."""
    boxes: list[str] = []
    with path.open("rb") as f:
        while header := f.read(8):
            if len(header) < 8:
                break
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0] - 8
            elif size == 0:
                boxes.append(kind.decode(errors="replace"))
                break
            if not kind.isalnum() and kind != b"free":
                return ()
            boxes.append(kind.decode(errors="replace"))
            f.seek(size - 8, 1)
    return tuple(boxes)


def probe(path: Path) -> Media:
    """Read ``path`` with FFmpeg; fails the test when FFmpeg cannot open it."""
    info = _ffmpeg("-i", str(path))
    text = info.stderr.decode(errors="replace")
    summary = _summary(text)
    assert summary["container"], f"FFmpeg could not read {path}: {text[-600:]}"
    crc = _ffmpeg("-i", str(path), "-map", "0", "-c", "copy", "-f", "framecrc", "-")
    packets = _packets(crc.stdout.decode(errors="replace"))
    video_index = _index(text, "Video")
    audio_index = _index(text, "Audio")
    return Media(
        **summary,  # type: ignore[arg-type]
        video=packets.get(video_index, Packets()) if video_index is not None else Packets(),
        audio=packets.get(audio_index, Packets()) if audio_index is not None else Packets(),
        boxes=top_level_boxes(path) if path.suffix.lower() in {".mp4", ".mov", ".m4v"} else (),
    )


def _index(text: str, kind: str) -> int | None:
    found = re.search(rf"Stream #0:(\d+)\S*: {kind}:", text)
    return int(found.group(1)) if found else None
