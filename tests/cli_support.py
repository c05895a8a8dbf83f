"""Running the CLI from an async test: typer's runner in a worker thread, the farm in the loop.

The commands call ``asyncio.run`` themselves, so they run in a thread of their own while the
test's event loop keeps the scheduler and the simulated agents going.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import typer
from typer.testing import CliRunner, Result

from ffrtmp.natsd import free_port


class Cli:
    """One test's CLI: pointed at its server and prefix, with no config file of its own."""

    def __init__(self, url: str, prefix: str, home: Path) -> None:
        self.env: dict[str, str | None] = {
            "FFRTMP_NATS_URL": url,
            "FFRTMP_PREFIX": prefix,
            "FFRTMP_OUTPUT": "table",
            "XDG_CONFIG_HOME": str(home),
            "FFRTMP_USER": "tester",
            "NO_COLOR": "1",
            "FFRTMP_CONFIG": None,
        }
        self.runner = CliRunner()

    def invoke_sync(self, app: typer.Typer, *args: str) -> Result:
        return self.runner.invoke(app, list(args), env=self.env)

    async def __call__(self, app: typer.Typer, *args: str) -> Result:
        return await anyio.to_thread.run_sync(lambda: self.invoke_sync(app, *args))

    async def with_input(self, text: str, app: typer.Typer, *args: str) -> Result:
        """The command with ``text`` on its standard input."""
        return await anyio.to_thread.run_sync(
            lambda: self.runner.invoke(app, list(args), env=self.env, input=text)
        )


def dead_url() -> str:
    """A NATS URL nobody listens on."""
    return f"nats://127.0.0.1:{free_port()}"


def one_line_error(result: Result, *needles: str) -> None:
    """Exit 1, one line on stderr containing every needle, no traceback."""
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
