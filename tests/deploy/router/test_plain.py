"""Plain framing (deploy/router/plain.py) driven directly: a head seen before is framed by
its length alone, and only heads whose framing is their Content-Length are remembered."""

from __future__ import annotations

import httptools
import pytest

from loopline.deploy.router.limits import RouterLimits
from loopline.deploy.router.plain import KNOWN_HEADS, KNOWN_PAUSE, KnownHeads, PlainBuffer
from loopline.deploy.router.protocols import plain_request
from loopline.deploy.router.upstream import plain_response

BODY = b'{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1.0]}]}'
REQUEST = b"POST /v2/models/m/infer HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (
    len(BODY), BODY)  # fmt: skip


def answer(status: bytes = b"200 OK", body: bytes = b'{"outputs":[]}', extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %s\r\n%scontent-length: %d\r\n\r\n%s" % (status, extra, len(body), body)


class Side:
    """One PlainBuffer with the bytes it handed to the full parser."""

    def __init__(self, responses: bool = False) -> None:
        self.spilled: list[bytes] = []
        parser = httptools.HttpResponseParser if responses else httptools.HttpRequestParser
        self.buffer = PlainBuffer(parser, self.spilled.append)
        self.known = KnownHeads(responses=responses)
        limits = RouterLimits()
        self.is_plain = plain_response(limits) if responses else plain_request(limits)

    def feed(self, data: bytes) -> bytes | None:
        return self.buffer.feed(data, self.is_plain, self.known)


def test_a_head_seen_before_is_framed_by_its_length_whole_or_in_pieces() -> None:
    side = Side()
    assert side.feed(REQUEST) == REQUEST and side.known.hits == 0
    assert list(side.known.lengths.values()) == [len(BODY)]
    assert side.feed(REQUEST) == REQUEST and side.known.hits == 1
    assert side.feed(REQUEST[:60]) is None  # head not complete yet
    assert side.feed(REQUEST[60:-5]) is None  # known head, body not complete
    assert side.feed(REQUEST[-5:]) == REQUEST and side.known.hits == 2
    assert side.spilled == []


def test_a_known_head_followed_by_another_message_goes_to_the_full_parser() -> None:
    side = Side()
    side.feed(REQUEST)
    assert side.feed(REQUEST + REQUEST[:20]) is None
    assert side.spilled == [REQUEST + REQUEST[:20]]
    side.spilled.clear()
    assert side.feed(REQUEST[:-3]) is None  # split, then the rest and the next one
    assert side.feed(REQUEST[-3:] + b"GET /") is None
    assert side.spilled == [REQUEST + b"GET /"]


def test_a_message_with_a_crlf_after_it_is_not_learned() -> None:
    side = Side()
    assert side.feed(REQUEST + b"\r\n") == REQUEST + b"\r\n"  # llhttp skips the CRLF
    assert side.known.lengths == {}
    assert side.feed(REQUEST) == REQUEST  # judged again, and learned now
    assert len(side.known.lengths) == 1


@pytest.mark.parametrize(
    "message",
    [
        answer(b"304 Not Modified", b""),  # llhttp frames no body, whatever the length says
        answer(b"204 No Content", b""),
        answer(b"404 Not Found"),
    ],
)
def test_responses_other_than_2xx_with_a_body_are_not_learned(message: bytes) -> None:
    side = Side(responses=True)
    assert side.feed(message) == message
    assert side.known.lengths == {}


def test_a_response_head_is_learned_and_a_malformed_one_never_is() -> None:
    side = Side(responses=True)
    assert side.feed(answer()) == answer() and len(side.known.lengths) == 1
    with pytest.raises(httptools.HttpParserError):
        side.feed(answer(extra=b"bad header\r\n"))
    assert len(side.known.lengths) == 1


def test_heads_that_never_repeat_pause_the_learning() -> None:
    side = Side(responses=True)
    for i in range(KNOWN_HEADS):
        side.feed(answer(extra=b"x-request-id: %d\r\n" % i))
    assert len(side.known.lengths) == KNOWN_HEADS
    side.feed(answer(extra=b"x-request-id: new\r\n"))  # full, and no head was met again
    assert side.known.lengths == {} and side.known.pause == KNOWN_PAUSE
    side.feed(answer())
    assert side.known.lengths == {} and side.known.pause == KNOWN_PAUSE - 1


def test_a_full_memory_whose_heads_repeat_starts_over_and_keeps_learning() -> None:
    side = Side(responses=True)
    side.feed(answer())
    for _ in range(KNOWN_HEADS):
        side.feed(answer())  # KNOWN_HEADS hits
    for i in range(KNOWN_HEADS):
        side.feed(answer(extra=b"x-request-id: %d\r\n" % i))
    assert side.known.pause == 0 and len(side.known.lengths) == 1
