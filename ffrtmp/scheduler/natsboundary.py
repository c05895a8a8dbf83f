"""Kept for the scheduler's lease and snapshot modules: the boundary is ``events.natserrors``."""

from __future__ import annotations

from events.natserrors import NO_JETSTREAM, client_url, jetstream_boundary

__all__ = ["NO_JETSTREAM", "client_url", "jetstream_boundary"]
