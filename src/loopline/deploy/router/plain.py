"""Framing of *plain* messages, shared by both sides of the proxy.

A plain message is forwarded byte for byte. :class:`PlainBuffer` collects one, asks the
caller's predicate whether its head qualifies once the head is complete, and lets a second
httptools parser with only begin/complete callbacks say where the message ends (rejecting
malformed ones). It gives up — handing back every byte so far for the full parser — when the
head does not qualify, the message outgrows ``PLAIN_LIMIT``, or another message starts in
the same bytes (pipelining).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PLAIN_LIMIT = 256 * 1024  # larger messages are streamed through the full parser

MORE, DONE, FULL = 0, 1, 2  # PlainBuffer.feed outcomes


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
    """The start of a plain message not yet complete, and the parser that checks it."""

    __slots__ = ("buf", "checker", "framing", "parser_class", "vetted")

    def __init__(self, parser_class: Callable[[Framing], Any]) -> None:
        self.parser_class = parser_class  # httptools.HttpRequestParser or HttpResponseParser
        self.framing = Framing()
        self.checker = parser_class(self.framing)
        self.buf = b""
        self.vetted = False  # the head is complete, plain, and fed to the checker

    def feed(self, data: bytes, is_plain: Callable[[bytes, int], bool]) -> tuple[int, bytes]:
        """``(DONE, message)``, ``(MORE, b"")``, or ``(FULL, every byte so far)``.

        ``is_plain(buf, end)`` judges a complete head (``buf[:end]``). Raises
        ``httptools.HttpParserError`` for a malformed message.
        """
        buf = self.buf + data if self.buf else data
        framing = self.framing
        if self.vetted:
            self.checker.feed_data(data)
        else:
            end = buf.find(b"\r\n\r\n")
            if end < 0:  # head not complete yet
                if len(buf) > PLAIN_LIMIT:
                    return self._give_up(buf)
                self.buf = buf
                return MORE, b""
            if not is_plain(buf, end):
                return self._give_up(buf)
            self.vetted = True
            framing.begun, framing.complete = 0, False
            self.checker.feed_data(buf)
        if framing.begun > 1 or (not framing.complete and len(buf) > PLAIN_LIMIT):
            return self._give_up(buf)
        if not framing.complete:
            self.buf = buf
            return MORE, b""
        self.buf, self.vetted = b"", False
        return DONE, buf

    def _give_up(self, buf: bytes) -> tuple[int, bytes]:
        if self.vetted:  # the checking parser is mid-message: start a fresh one
            self.checker = self.parser_class(self.framing)
        self.buf, self.vetted = b"", False
        return FULL, buf
