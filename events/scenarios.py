"""The scenario catalogue: a name operators type (``1080p-h264``) to what FFmpeg must do.

Names follow one grammar, ``<resolution>[60]-<codec>[-nvenc]``: ``1080p-h264`` is 1080p at
30 fps with libx264, ``4K60-hevc`` is 2160p at 60 fps with libx265, ``720p-av1-nvenc`` uses
NVENC. ``<resolution>[60]-nvenc`` is short for H.264 on NVENC, as the earlier Go system's
``4K-nvenc`` was. Pure data: no I/O.
"""

from __future__ import annotations

from typing import Final

import msgspec

from events.errors import InvalidSpec


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    """What a scenario asks of an encoder."""

    name: str
    width: int
    height: int
    fps: int
    codec: str  # h264 | hevc | av1
    encoder: str  # the FFmpeg encoder name
    bitrate_kbps: int
    needs_gpu: bool

    @property
    def pixels_per_second(self) -> int:
        """Pixel throughput the encoder must sustain to run in real time."""
        return self.width * self.height * self.fps


_RESOLUTIONS: Final = {
    "480p": (854, 480),
    "720p": (1280, 720),
    "1080p": (1920, 1080),
    "1440p": (2560, 1440),
    "4K": (3840, 2160),
}
# Bitrates at 30 fps for H.264, as streaming ladders commonly use; 60 fps takes 1.5x,
# HEVC 0.7x and AV1 0.6x of the H.264 figure for similar quality.
_H264_KBPS_30FPS: Final = {"480p": 1200, "720p": 3000, "1080p": 6000, "1440p": 10000, "4K": 20000}
_CODEC_BITRATE_FACTOR: Final = {"h264": 1.0, "hevc": 0.7, "av1": 0.6}
_CPU_ENCODERS: Final = {"h264": "libx264", "hevc": "libx265", "av1": "libsvtav1"}
_NVENC_ENCODERS: Final = {"h264": "h264_nvenc", "hevc": "hevc_nvenc", "av1": "av1_nvenc"}


def _build_catalogue() -> dict[str, Scenario]:
    catalogue: dict[str, Scenario] = {}
    for res, (width, height) in _RESOLUTIONS.items():
        for fps in (30, 60):
            stem = res if fps == 30 else f"{res}60"
            for codec, factor in _CODEC_BITRATE_FACTOR.items():
                kbps = round(_H264_KBPS_30FPS[res] * factor * (1.5 if fps == 60 else 1.0))
                for gpu, encoders, suffix in (
                    (False, _CPU_ENCODERS, ""),
                    (True, _NVENC_ENCODERS, "-nvenc"),
                ):
                    name = f"{stem}-{codec}{suffix}"
                    catalogue[name] = Scenario(
                        name=name, width=width, height=height, fps=fps, codec=codec,
                        encoder=encoders[codec], bitrate_kbps=kbps, needs_gpu=gpu,
                    )  # fmt: skip
    return catalogue


SCENARIOS: Final[dict[str, Scenario]] = _build_catalogue()
ALIASES: Final[dict[str, str]] = {
    f"{stem}-nvenc": f"{stem}-h264-nvenc" for res in _RESOLUTIONS for stem in (res, f"{res}60")
}


_BY_LOWER: Final = {key.lower(): key for key in (*SCENARIOS, *ALIASES)}


def canonical_name(name: str) -> str:
    """Resolve an alias or a differently-cased name to the catalogue's spelling."""
    found = _BY_LOWER.get(name.strip().lower())
    if found is None:
        known = ", ".join(sorted(SCENARIOS)[:6])
        raise InvalidSpec(
            "scenario",
            f"unknown scenario {name!r}; names look like 1080p-h264, 4K60-hevc, 720p-av1-nvenc "
            f"(e.g. {known}, …); `ffrtmp scenarios` lists them all",
        )
    return ALIASES.get(found, found)


def scenario(name: str) -> Scenario:
    """Look up a scenario by name or alias, case-insensitively."""
    return SCENARIOS[canonical_name(name)]
