"""Pure: the derived scores an attempt's results carry, with their formulas.

- ``frames_per_joule = frames / energy_j`` — efficiency where energy was measured (NVML for
  NVENC work, RAPL for CPU work); None when energy is unmeasured or zero.
- ``frames_per_cpu_s = frames / cpu_s`` — efficiency on any machine (CPU seconds are the
  FFmpeg process's user + system time); None when CPU time is unmeasured or zero.
- ``qoe = clamp(vmaf × STALL_FACTOR ** stalls, 0, 100)`` with ``STALL_FACTOR = 0.8`` — the
  viewer's quality of experience: VMAF (0..100, the picture) discounted by 20 % for every
  stall (each is a rebuffer for the viewer, and rebuffering hurts perceived quality
  multiplicatively rather than by a fixed amount). A stall is a real underrun of a live output:
  it fell a full second behind real time, by running below 1.0x or delivering no frames
  (``agent.progress.StallCounter``); jitter around 1.0x is none. A non-live output has no
  stalls (``stalls`` None counts as 0). None without VMAF.
"""

from __future__ import annotations

from typing import Final

import msgspec

from events.job_events import JobResults

STALL_FACTOR: Final = 0.8


def per_unit(frames: int, amount: float | None) -> float | None:
    """Frames per unit of ``amount``; None when the amount is unmeasured or not positive."""
    if amount is None or amount <= 0:
        return None
    return frames / amount


def qoe(vmaf: float | None, stalls: int | None) -> float | None:
    """Quality of experience 0..100 from VMAF and stalls (formula in the module docstring)."""
    if vmaf is None:
        return None
    return min(100.0, max(0.0, vmaf * STALL_FACTOR ** (stalls or 0)))


def scored(results: JobResults) -> JobResults:
    """The results with their derived scores filled in."""
    return msgspec.structs.replace(
        results,
        frames_per_joule=per_unit(results.frames, results.energy_j),
        frames_per_cpu_s=per_unit(results.frames, results.cpu_s),
        qoe=qoe(results.vmaf, results.stalls),
    )
