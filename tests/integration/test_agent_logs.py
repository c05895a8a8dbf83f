"""The attempt logs' store says a NATS failure in its own words, as an ffrtmp error."""

from __future__ import annotations

import nats
import pytest
from nats.errors import Error as NatsError

from agent.logs import LogNotFound, open_logs, read_log
from events.errors import FfrtmpError
from events.subjects import Subjects
from ffrtmp.natsd import NatsServer

pytestmark = pytest.mark.anyio


async def test_a_failed_read_is_one_ffrtmp_line_naming_the_log(
    nats_server: NatsServer, prefix: str
) -> None:
    """A read on a closed connection is an FfrtmpError naming the log, its cause kept."""
    nc = await nats.connect(nats_server.url)
    await nc.close()
    with pytest.raises(FfrtmpError) as caught:
        await read_log(nc.jetstream(), Subjects(prefix), "j1", 1)
    assert not isinstance(caught.value, LogNotFound)
    assert str(caught.value).startswith("attempt logs: reading j1/1 failed: ")
    assert isinstance(caught.value.__cause__, NatsError)


async def test_a_missing_bucket_names_the_setup(nats_server: NatsServer, prefix: str) -> None:
    """Opening the logs where the setup never ran says which bucket and what to run."""
    nc = await nats.connect(nats_server.url)
    try:
        with pytest.raises(FfrtmpError, match="does not exist") as caught:
            await open_logs(nc.jetstream(), Subjects(prefix))
    finally:
        await nc.close()
    assert Subjects(prefix).log_bucket in str(caught.value)
