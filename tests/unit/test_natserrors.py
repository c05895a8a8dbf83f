"""The one NATS boundary: each nats-py failure becomes the one line of ours a person reads."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.client import Srv
from nats.errors import BadSubjectError, MaxPayloadError, NoServersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import APIError, KeyNotFoundError, NotFoundError, ServiceUnavailableError

from events.errors import FfrtmpError, InvalidSpec, StoreUnavailable
from events.natserrors import client_url, failing_as, refused_as, store_boundary, unavailable

URL = "nats://op:s3cr3t-pw@127.0.0.1:4222"


@pytest.mark.parametrize(
    ("raised", "kind", "line"),
    [
        (NotFoundError(), StoreUnavailable, "stream FFRTMP_EVENTS is missing: run the setup"),
        (KeyNotFoundError(), StoreUnavailable, "stream FFRTMP_EVENTS is missing: run the setup"),
        (ServiceUnavailableError(), StoreUnavailable, "the server has no JetStream"),
        (APIError(description="insufficient resources"), FfrtmpError,
         "JetStream refused: insufficient resources"),
        (MaxPayloadError(), FfrtmpError, "an event is larger than the server's max_payload"),
        (BadSubjectError(), FfrtmpError, "the server refuses the subject"),
        (NatsTimeoutError(), StoreUnavailable, "no answer in 5.0 s"),
        (TimeoutError(), StoreUnavailable, "no answer in 5.0 s"),
        (NoServersError(), StoreUnavailable, "NoServersError: nats: no servers available"),
        (ConnectionResetError("reset by peer"), StoreUnavailable, "ConnectionResetError: reset"),
    ],
)  # fmt: skip
def test_the_store_boundary_says_one_line_per_failure(
    raised: Exception, kind: type[FfrtmpError], line: str
) -> None:
    """Each failure of the event store's calls is our type, its line, the cause kept, no secret."""
    missing = "stream FFRTMP_EVENTS is missing: run the setup"
    with pytest.raises(kind) as caught, store_boundary(URL, missing=missing, timeout_s=5.0):
        raise raised
    assert line in str(caught.value)
    assert "s3cr3t-pw" not in str(caught.value)
    assert caught.value.__cause__ is raised


@pytest.mark.parametrize(
    "raised", [NatsTimeoutError(), TimeoutError(), NoServersError(), OSError("refused"), APIError()]
)
def test_unavailable_names_the_server_and_what_was_being_done(raised: Exception) -> None:
    """A NATS failure while reading is ``StoreUnavailable`` at the URL: "doing: the failure"."""
    with pytest.raises(StoreUnavailable) as caught, unavailable(URL, "cannot read the log"):
        raise raised
    assert str(caught.value).startswith("cannot reach NATS JetStream at nats://op:***@127.0.0.1")
    assert f": cannot read the log: {raised}" in str(caught.value)


@pytest.mark.parametrize("raised", [ValueError("a bug"), InvalidSpec("command", "too big")])
def test_what_is_not_a_nats_failure_passes_through(raised: Exception) -> None:
    """Our own errors and bugs are not outages: they leave the boundary as they came."""
    with pytest.raises(type(raised)) as caught, failing_as(lambda _: FfrtmpError("outage")):
        raise raised
    assert caught.value is raised


def test_refused_as_says_what_was_refused_and_lets_other_failures_through() -> None:
    """A JetStream refusal is "doing: the server's reason"; a timeout is not a refusal."""
    in_use = r"^cannot create stream X: stream name in use$"
    with pytest.raises(FfrtmpError, match=in_use), refused_as("cannot create stream X"):
        raise APIError(description="stream name in use")
    with pytest.raises(TimeoutError), refused_as("cannot create stream X"):
        raise TimeoutError


def test_the_server_is_named_through_the_private_client_nats_py_keeps() -> None:
    """``client_url`` reads nats-py's private ``JetStreamContext._nc``.

    If a release renames it, this fails here rather than every error line saying "?"; a context
    without it names no server and raises nothing.
    """
    nc = NatsClient()
    nc._current_server = Srv(urlparse(URL))  # what connect sets
    nc._status = NatsClient.CONNECTED
    assert client_url(nc.jetstream()) == "nats://op:***@127.0.0.1:4222"
    assert client_url(object()) == "?"  # type: ignore[arg-type]
