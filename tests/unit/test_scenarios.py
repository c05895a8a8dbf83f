"""The scenario catalogue covers the ladder operators use and resolves the seeds' names."""

from __future__ import annotations

import itertools

import pytest

from events.errors import InvalidSpec
from events.scenarios import SCENARIOS, canonical_name, scenario


@pytest.mark.parametrize(
    ("res", "fps", "codec", "gpu"),
    list(
        itertools.product(
            ["480p", "720p", "1080p", "1440p", "4K"],
            [30, 60],
            ["h264", "hevc", "av1"],
            [False, True],
        )
    ),
)
def test_catalogue_covers_the_ladder(res: str, fps: int, codec: str, gpu: bool) -> None:
    """Every resolution × frame rate × codec exists on CPU encoders and on NVENC."""
    name = f"{res}{'' if fps == 30 else '60'}-{codec}{'-nvenc' if gpu else ''}"
    found = scenario(name)
    assert (found.fps, found.codec, found.needs_gpu) == (fps, codec, gpu)
    assert found.encoder.endswith("_nvenc") == gpu


@pytest.mark.parametrize(
    ("name", "encoder", "size"),
    [
        ("1080p-h264", "libx264", (1920, 1080)),
        ("4K60-h264", "libx264", (3840, 2160)),
        ("4K-nvenc", "h264_nvenc", (3840, 2160)),
        ("720p-hevc", "libx265", (1280, 720)),
        ("4k60-NVENC", "h264_nvenc", (3840, 2160)),
    ],
)
def test_seed_names_resolve(name: str, encoder: str, size: tuple[int, int]) -> None:
    """The names the earlier Go system used still work, case-insensitively."""
    found = scenario(name)
    assert found.encoder == encoder
    assert (found.width, found.height) == size


def test_aliases_resolve_to_canonical_names() -> None:
    """``4K-nvenc`` is stored as ``4K-h264-nvenc``, so the log holds one spelling."""
    assert canonical_name("4K-nvenc") == "4K-h264-nvenc"
    assert canonical_name("1080P-H264") == "1080p-h264"


def test_unknown_scenario_says_what_names_look_like() -> None:
    """A typo gets a message with the naming pattern and where to find the list."""
    with pytest.raises(InvalidSpec, match="ffrtmp scenarios"):
        scenario("1080-h264")


def test_bitrates_grow_with_resolution_and_frame_rate() -> None:
    """A bigger picture or a higher frame rate never gets a lower bitrate."""
    for codec in ("h264", "hevc", "av1"):
        ladder = [SCENARIOS[f"{r}-{codec}"].bitrate_kbps for r in ("480p", "720p", "1080p", "4K")]
        assert ladder == sorted(ladder)
        assert SCENARIOS[f"1080p60-{codec}"].bitrate_kbps > SCENARIOS[f"1080p-{codec}"].bitrate_kbps
