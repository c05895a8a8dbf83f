"""The reader's cheap parsing of JetStream reply subjects and control headers."""

from __future__ import annotations

import pytest

from events.reader import _ack_numbers, _parse_headers


@pytest.mark.parametrize(
    ("reply", "numbers"),
    [
        (b"$JS.ACK.S.C.1.42.7.1795453161808822697.3", (42, 7, 3)),
        (b"$JS.ACK.hub.ACCHASH.S.C.1.42.7.1795453161808822697.3.rnd", (42, 7, 3)),
        (b"$JS.ACK.S.C.1.x.7.1.3", None),
        (b"$JS.ACK.S.C", None),
    ],
)
def test_ack_subjects_give_stream_seq_delivery_seq_and_pending(
    reply: bytes, numbers: tuple[int, int, int] | None
) -> None:
    """Both reply layouts give (stream seq, delivery seq, pending); anything else gives None."""
    assert _ack_numbers(reply) == numbers


def test_a_heartbeat_gives_its_status_and_headers() -> None:
    """An idle heartbeat's status and its last-consumer and stalled headers are read."""
    raw = (
        b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 5\r\n"
        b"Nats-Last-Stream: 9\r\nNats-Consumer-Stalled: $JS.FC.S.C.x\r\n\r\n"
    )
    assert _parse_headers(raw) == {
        "Status": "100",
        "Nats-Last-Consumer": "5",
        "Nats-Last-Stream": "9",
        "Nats-Consumer-Stalled": "$JS.FC.S.C.x",
    }


def test_no_headers_parse_to_nothing() -> None:
    """A message without headers has no status."""
    assert _parse_headers(None) == {}
