"""``ffrtmp agent``: the agent's own command line (``agent.main``) under ``ffrtmp``."""

from agent.main import app

__all__ = ["app"]
