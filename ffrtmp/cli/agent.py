"""``ffrtmp agent``: the agent's own command line (``agent.main``) under ``ffrtmp``.

Under ``ffrtmp`` the agent resolves its settings as every command does (``ffrtmp.config``: the
config file, the environment, the flags); ``python -m agent`` reads the environment only.
"""

from agent.main import app, use_resolver
from events.connection import NatsOptions
from ffrtmp.cli import connflags
from ffrtmp.config import nats_options, resolve


def _resolve(url: str | None, prefix: str | None) -> tuple[NatsOptions, str]:
    config = resolve({"nats": url, "prefix": prefix, **connflags.given()})
    return nats_options(config), config.prefix


use_resolver(_resolve)

__all__ = ["app"]
