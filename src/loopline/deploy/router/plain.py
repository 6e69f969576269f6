"""Framing of *plain* messages, shared by both sides of the proxy.

A plain message is forwarded byte for byte. :class:`PlainBuffer` collects one, asks the
caller's predicate whether its head qualifies once the head is complete, and lets a second
httptools parser with only begin/complete callbacks say where the message ends (rejecting
malformed ones). It gives up — handing back every byte so far for the full parser — when the
head does not qualify, the message outgrows ``PLAIN_LIMIT``, or another message starts in
the same bytes (pipelining).

Heads repeat: a client sends the same head for every request of one size, a replica answers
with the same head until a header such as ``date`` changes. Both judgements — the predicate
and the checking parser's — depend on the head's bytes alone, so a head that passed both is
remembered (:class:`KnownHeads`) with the length of the body it announces, and the next
message with exactly that head is framed by that length: no predicate, no parser. Only heads
whose framing is their ``Content-Length`` are remembered (one such header, the body exactly
that long, and for responses a 2xx other than 204), so the length is the one the parser
would find. Where heads do not repeat (a replica that sends a request id in a header), the
memory finds that out from its own hit count and stops learning for a while, so such traffic
pays little more than a dictionary look-up of an empty dictionary.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

PLAIN_LIMIT = 256 * 1024  # larger messages are streamed through the full parser
KNOWN_HEAD_LIMIT = 2048  # longer heads are not remembered
KNOWN_HEADS = 1024  # heads remembered at most per KnownHeads; then it starts over
KNOWN_PAUSE = 16 * KNOWN_HEADS  # new heads not learned after a full memory hit < once each

CONTENT_LENGTH = re.compile(rb"\ncontent-length:[ \t]*(\d+)[ \t]*\r\n", re.IGNORECASE)


class HeadTooLarge(Exception):
    """A message head not complete after more bytes than the buffer's ``head_limit``."""


class KnownHeads:
    """Heads that passed the predicate and the checking parser, with their body's length.

    Args:
        responses: the heads are responses' (only 2xx answers other than 204 are learned:
            other statuses can frame a body differently from its Content-Length).
    """

    __slots__ = ("hits", "lengths", "pause", "responses")

    def __init__(self, *, responses: bool) -> None:
        self.lengths: dict[bytes, int] = {}
        self.responses = responses
        self.hits = 0  # messages framed by a remembered head since ``lengths`` started over
        self.pause = 0  # heads still to pass by without being learned

    def learn(self, message: bytes, end: int) -> None:
        """Remember the head of ``message`` (``message[:end]``, a whole message the checking
        parser framed) if its framing is exactly its Content-Length."""
        if self.pause:
            self.pause -= 1
            return
        if end > KNOWN_HEAD_LIMIT:
            return
        if self.responses and (message[9:10] != b"2" or message[9:12] == b"204"):
            return
        found = CONTENT_LENGTH.findall(message, 0, end + 2)
        if len(found) > 1 or len(message) - end - 4 != (int(found[0]) if found else 0):
            return  # e.g. a CRLF after the message, which llhttp skips
        lengths = self.lengths
        if len(lengths) >= KNOWN_HEADS:  # full: start over, or pause if it did not pay
            lengths.clear()
            if self.hits < KNOWN_HEADS:
                self.pause, self.hits = KNOWN_PAUSE, 0
                return
            self.hits = 0
        lengths[message[:end]] = len(message) - end - 4


class Framing:
    """Callbacks of a checking parser: it only reports where plain messages begin and end."""

    __slots__ = ("begun", "complete")

    def __init__(self) -> None:
        self.begun = 0
        self.complete = False

    def on_message_begin(self) -> None:
        self.begun += 1

    def on_message_complete(self) -> None:
        self.complete = True


class PlainBuffer:
    """The start of a plain message not yet complete, and the parser that checks it.

    Args:
        parser_class: ``httptools.HttpRequestParser`` or ``HttpResponseParser``.
        on_full: called with every byte of a message that is not plain (from its first
            byte), for the full parser.
        head_limit: a head still not complete after this many bytes raises
            :class:`HeadTooLarge` (None: it goes to the full parser past ``PLAIN_LIMIT``).
    """

    __slots__ = ("buf", "checker", "end", "expect", "framing", "head_limit", "on_full",
                 "parser_class", "vetted")  # fmt: skip

    def __init__(self, parser_class: Callable[[Framing], Any], on_full: Callable[[bytes], None],
                 head_limit: int | None = None) -> None:  # fmt: skip
        self.parser_class = parser_class
        self.on_full = on_full
        self.head_limit = head_limit
        self.framing = Framing()
        self.checker = parser_class(self.framing)
        self.buf = b""
        self.vetted = False  # the head is complete, plain, and fed to the checker
        self.end = 0  # where the vetted head ends
        self.expect = 0  # the message's whole length, when its head is known (else 0)

    def feed(self, data: bytes, is_plain: Callable[[bytes, int], bool],
             known: KnownHeads | None) -> bytes | None:  # fmt: skip
        """The message once it is complete; else None (more bytes are needed, or it is not
        plain and went to ``on_full``).

        ``is_plain(buf, end)`` judges a complete head (``buf[:end]``); ``known`` (None: none)
        frames the heads it knows and learns the others. Raises ``httptools.HttpParserError``
        for a malformed message, :class:`HeadTooLarge` for a head past ``head_limit``.
        """
        buf = self.buf + data if self.buf else data
        if self.expect:  # a known head: framed by length
            if len(buf) < self.expect:
                self.buf = buf
                return None
            if len(buf) > self.expect:  # the start of another message: pipelining
                self._give_up(buf)
                return None
            self.buf, self.expect = b"", 0
            return buf
        framing = self.framing
        if self.vetted:
            self.checker.feed_data(data)
        else:
            end = buf.find(b"\r\n\r\n")
            if end < 0:  # head not complete yet
                limit = self.head_limit
                if limit is not None and len(buf) > limit:
                    self.buf = b""
                    raise HeadTooLarge(f"no head within {limit} bytes")
                if len(buf) > PLAIN_LIMIT:
                    self._give_up(buf)
                    return None
                self.buf = buf
                return None
            if known is not None and known.lengths:
                length = known.lengths.get(buf[:end])
                if length is not None:
                    known.hits += 1
                    whole = end + 4 + length
                    if len(buf) == whole:
                        self.buf = b""
                        return buf
                    if len(buf) > whole:  # the start of another message: pipelining
                        self._give_up(buf)
                        return None
                    self.buf, self.expect = buf, whole
                    return None
            if not is_plain(buf, end):
                self._give_up(buf)
                return None
            self.vetted, self.end = True, end
            framing.begun, framing.complete = 0, False
            self.checker.feed_data(buf)
        if framing.begun > 1 or (not framing.complete and len(buf) > PLAIN_LIMIT):
            self._give_up(buf)
            return None
        if not framing.complete:
            self.buf = buf
            return None
        self.buf, self.vetted = b"", False
        if known is not None:
            known.learn(buf, self.end)
        return buf

    def _give_up(self, buf: bytes) -> None:
        if self.vetted:  # the checking parser is mid-message: start a fresh one
            self.checker = self.parser_class(self.framing)
        self.buf, self.vetted, self.expect = b"", False, 0
        self.on_full(buf)
