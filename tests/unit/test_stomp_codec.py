"""The STOMP codec: real clients' frames split at every byte, limits, escaping, encoding."""

from __future__ import annotations

import pytest

from agent.stomp.codec import Decoder, Frame, FrameError, Limits, encode, message

BODY = b'[{"jsonrpc": "2.0", "method": "Host.ping2", "params": {}, "id": "abc"}]'

# Frames as stomp.md §2-§3 shows them on the wire, from the Python and Java clients.
STREAM = [
    (
        b"CONNECT\naccept-version:1.2\nheart-beat:0,24000\n\n\0",
        Frame("CONNECT", {"accept-version": "1.2", "heart-beat": "0,24000"}),
    ),
    (
        b"SUBSCRIBE\ndestination:r-1\nack:auto\nid:s\\c1\n\n\0",
        Frame("SUBSCRIBE", {"destination": "r-1", "ack": "auto", "id": "s:1"}),
    ),
    (
        b"SEND\ndestination:jms.topic.vdsm_requests\ncontent-type:application/json\n"
        b"reply-to:r-1\ncontent-length:%d\n\n%s\0" % (len(BODY), BODY),
        Frame(
            "SEND",
            {
                "destination": "jms.topic.vdsm_requests",
                "content-type": "application/json",
                "reply-to": "r-1",
                "content-length": str(len(BODY)),
            },
            BODY,
        ),
    ),
    (  # no content-length: the body runs to the NUL; CRLF line ends; heart-beat EOLs before
        b"\n\r\n\nSEND\r\ndestination:a\\nb\r\nx:1\r\nx:2\r\n\r\nhello\0",
        Frame("SEND", {"destination": "a\nb", "x": "1"}, b"hello"),
    ),
    (  # body with a NUL inside, delimited by content-length; unknown escape kept literal
        b"SEND\ndestination:q\\t\ncontent-length:3\n\na\0b\0",
        Frame("SEND", {"destination": "q\\t", "content-length": "3"}, b"a\0b"),
    ),
    (  # raw ':' in a value (Java client), CONNECT not unescaped
        b"STOMP\nhost:a:b\\c\n\n\0",
        Frame("STOMP", {"host": "a:b\\c"}),
    ),
    (b"DISCONNECT\nreceipt:77\n\n\0", Frame("DISCONNECT", {"receipt": "77"})),
]
WIRE = b"".join(raw for raw, _ in STREAM) + b"\n"
EXPECTED = [frame for _, frame in STREAM]


def test_whole_stream_at_once():
    assert Decoder().feed(WIRE) == EXPECTED


def test_every_split_point_of_every_frame():
    for raw, frame in STREAM:
        for cut in range(len(raw) + 1):
            d = Decoder()
            got = d.feed(raw[:cut]) + d.feed(raw[cut:])
            assert got == [frame], (raw, cut)
            assert d.buffered == 0


def test_whole_stream_split_at_every_point_and_byte_by_byte():
    for cut in range(len(WIRE) + 1):
        d = Decoder()
        assert d.feed(WIRE[:cut]) + d.feed(WIRE[cut:]) == EXPECTED, cut
    d = Decoder()
    got = []
    for i in range(len(WIRE)):
        got += d.feed(WIRE[i : i + 1])
    assert got == EXPECTED


def test_round_trip_through_encoder():
    headers = [("destination", "a:b\\c\nd"), ("id", "1")]
    raw = encode("SEND", headers, b"xyz")
    assert b"destination:a\\cb\\\\c\\nd\n" in raw
    assert Decoder().feed(raw) == [Frame("SEND", {**dict(headers), "content-length": "3"}, b"xyz")]


def test_message_and_error_always_carry_content_length():
    assert encode("ERROR", [("message", "x")]) == b"ERROR\nmessage:x\ncontent-length:0\n\n\0"
    assert message("d", "s", b"{}") == (
        b"MESSAGE\ndestination:d\ncontent-type:application/json\nsubscription:s\n"
        b"content-length:2\n\n{}\0"
    )
    # CONNECTED is never escaped (spec): the heart-beat value keeps its comma and no escapes.
    assert encode("CONNECTED", [("version", "1.2"), ("heart-beat", "24000,0")]) == (
        b"CONNECTED\nversion:1.2\nheart-beat:24000,0\n\n\0"
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"FROB\n\n\0", "unknown command"),
        (b"MESSAGE\n\n\0", "unknown command"),  # a server command from a client
        (b"X" * 40, "command too long"),
        (b"\x00\xff\xfe garbage \x01\x02\n\n\0", "unknown command"),
        (b"SEND\ncontent-length:3\n\nabcd\0", "body not terminated by NUL"),
        (b"SEND\ncontent-length:-3\n\nabc\0", "content-length is not a number"),
        (b"SEND\ncontent-length:\xd9\xa3\n\nabc\0", "content-length is not a number"),
        (b"SEND\ncontent-length:99999999999999999999\n\n", "frame too large"),
        (b"SEND\nnocolon\n\n\0", "header without ':'"),
        (b"SEND\nk:\xff\n\n\0", "header is not UTF-8"),
        (b"SEND\n" + b"h:v\n" * 65 + b"\n\0", "too many headers"),
        (b"SEND\nh:" + b"v" * 70000, "header block too large"),
        (b"SEND\nh:" + b"v" * 70000 + b"\n\n\0", "header block too large"),
    ],
)
def test_violations_raise_fixed_reasons(raw, reason):
    with pytest.raises(FrameError) as info:
        Decoder().feed(raw)
    assert str(info.value) == reason


def test_body_limits_with_and_without_content_length():
    limits = Limits(max_body=10)
    with pytest.raises(FrameError, match="frame too large"):
        Decoder(limits).feed(b"SEND\ncontent-length:11\n\n")
    d = Decoder(limits)
    d.feed(b"SEND\n\n" + b"a" * 10)  # no NUL yet: still within the limit
    with pytest.raises(FrameError, match="frame too large"):
        d.feed(b"b")
    assert Decoder(limits).feed(b"SEND\n\n" + b"a" * 10 + b"\0")[0].body == b"a" * 10


def test_ten_thousand_headers_are_refused():
    with pytest.raises(FrameError, match="too many headers"):
        Decoder().feed(b"SEND\n" + b"h:v\n" * 10_000 + b"\n\0")
