"""Find the FFmpeg the agent runs: the one asked for, else the system's, else imageio-ffmpeg's.

An agent without a working FFmpeg can do nothing, so it refuses to start with one line that says
which binary it tried and what to do; ``FfmpegUnavailable`` is that line.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Final

from events.errors import FfrtmpError

VERSION_TIMEOUT_S: Final = 20.0
_HINT: Final = "pass --ffmpeg PATH, install ffmpeg, or `pip install imageio-ffmpeg`"


class FfmpegUnavailable(FfrtmpError):
    """No FFmpeg was found, or the one found does not run."""

    def __init__(self, reason: str) -> None:
        """Say what went wrong and how to fix it."""
        super().__init__(f"FFmpeg unusable: {reason}; {_HINT}")
        self.reason = reason


def _bundled() -> str | None:
    try:
        import imageio_ffmpeg  # noqa: PLC0415 - optional at runtime: only when nothing else is found

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        return None


def locate(explicit: str | None = None) -> Path:
    """The FFmpeg to use, without running it: ``explicit``, else on PATH, else imageio-ffmpeg's."""
    if explicit:
        found = shutil.which(explicit)
        if found is None:
            raise FfmpegUnavailable(f"{explicit} does not exist or is not executable")
        return Path(found)
    found = shutil.which("ffmpeg") or _bundled()
    if found is None:
        raise FfmpegUnavailable("no ffmpeg on PATH and imageio-ffmpeg has none")
    return Path(found)


def run_flag(ffmpeg: Path, flag: str) -> subprocess.CompletedProcess[bytes]:
    """``ffmpeg -hide_banner <flag>`` (a listing such as ``-encoders``), output captured."""
    try:
        return subprocess.run(  # noqa: S603 - argv list, binary chosen by the operator
            [str(ffmpeg), "-hide_banner", flag],
            capture_output=True,
            timeout=VERSION_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FfmpegUnavailable(f"{ffmpeg} {flag} does not run ({exc})") from exc


def version_line(ffmpeg: Path) -> str:
    """The first line of ``ffmpeg -version``; raises ``FfmpegUnavailable`` when it does not run."""
    done = run_flag(ffmpeg, "-version")
    first = done.stdout.decode(errors="replace").partition("\n")[0].strip()
    if done.returncode != 0 or not first.startswith("ffmpeg version"):
        raise FfmpegUnavailable(f"{ffmpeg} -version exited {done.returncode}")
    return first


def find_ffmpeg(explicit: str | None = None) -> Path:
    """Locate FFmpeg and prove it runs; the agent calls this once at start."""
    path = locate(explicit)
    version_line(path)
    return path
