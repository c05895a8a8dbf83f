"""GStreamer for tests: the machine's own, found once; missing, it skips locally and fails in CI."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import imageio_ffmpeg
import psutil
import pytest

from agent import gst_probe
from agent.gst_engine import GstEngine, GstSettings

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


@functools.cache
def _found() -> gst_probe.GstInfo | None:
    return gst_probe.probe()


def require_gstreamer() -> gst_probe.GstInfo:
    """The GStreamer found here; skip without one (fail in CI, which installs it)."""
    info = _found()
    if info is None:
        reason = "gst-launch-1.0 is not installed (Debian: gstreamer1.0-tools and plugins)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return info


def gst_engine(work_dir: Path, **settings: object) -> GstEngine:
    """An engine on this machine's GStreamer, writing its own files under ``work_dir``."""
    info = require_gstreamer()
    fields: dict[str, object] = {
        "launch": info.launch, "ffmpeg": FFMPEG, "elements": info.elements, "cores": 2,
        "work_dir": str(work_dir),
    }  # fmt: skip
    fields.update(settings)
    return GstEngine(GstSettings(**fields))  # type: ignore[arg-type]


def media_children(*names: str) -> list[psutil.Process]:
    """Children of the test process running one of ``names`` (ffmpeg, gst-launch-1.0).

    The one lookup of media processes the engine and liveness tests make.
    """
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if any(name in child.name().lower() for name in names):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found
