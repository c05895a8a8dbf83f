"""What this machine's GStreamer offers: ``gst-launch-1.0``, its version, and the elements jobs use.

GStreamer is optional: an agent without it runs FFmpeg alone and does not advertise the
engine. ``gst-inspect-1.0`` with no argument lists every element the registry holds, one
``plugin:  element: description`` line each; only the elements a pipeline of ours can use are
kept (``agent.gst_pipeline.KNOWN_ELEMENTS``), so registering stays small. Hardware encoders
(``nvh264enc`` …) are listed only when their plugin found a device and driver at registry time.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path
from typing import Final

import msgspec

from agent.gst_pipeline import KNOWN_ELEMENTS

log = logging.getLogger(__name__)

LAUNCH: Final = "gst-launch-1.0"
INSPECT: Final = "gst-inspect-1.0"
INSPECT_TIMEOUT_S: Final = 120.0  # the first run builds the plugin registry


class GstInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A usable GStreamer: the launcher, its version, and the elements of ours it has."""

    launch: str
    version: str
    elements: tuple[str, ...]


def parse_elements(listing: str) -> tuple[str, ...]:
    """The elements of ours in ``gst-inspect-1.0``'s listing, sorted."""
    found = set()
    for line in listing.splitlines():
        parts = line.split(":")
        if len(parts) >= 3:  # "plugin:  element: description"
            found.add(parts[1].strip())
    return tuple(sorted(found & KNOWN_ELEMENTS))


def parse_version(text: str) -> str:
    """``GStreamer 1.22.0`` in ``gst-launch-1.0 --version`` → ``1.22.0``; empty when absent."""
    for line in text.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == "GStreamer":
            return words[1]
    return ""


def _run(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 - argv of our own, binaries found on PATH
            argv, capture_output=True, timeout=INSPECT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.info("%s did not run: %s", argv[0], exc)
        return None
    if done.returncode != 0:
        log.info("%s exited %d", argv[0], done.returncode)
        return None
    return done.stdout.decode(errors="replace")


def probe(launch: str | None = None) -> GstInfo | None:
    """The GStreamer of this machine, or None (logged) when it is absent or does not run."""
    found = shutil.which(launch or LAUNCH)
    if found is None:
        log.info("no %s: the GStreamer engine is not offered", launch or LAUNCH)
        return None
    inspect = shutil.which(INSPECT, path=str(Path(found).parent)) or shutil.which(INSPECT)
    version = _run([found, "--version"])
    listing = _run([inspect]) if inspect else None
    if version is None or listing is None:
        log.info("GStreamer at %s is not usable: the GStreamer engine is not offered", found)
        return None
    return GstInfo(launch=found, version=parse_version(version), elements=parse_elements(listing))
