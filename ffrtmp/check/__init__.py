"""The invariant checker: a whole log read, every broken promise named (``ffrtmp check``)."""

from ffrtmp.check.invariants import CheckSettings, Kind, Record, Report, Violation, check

__all__ = ["CheckSettings", "Kind", "Record", "Report", "Violation", "check"]
