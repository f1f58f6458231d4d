"""The DATA section read in large chunks, with exactly aiosmtpd's results.

aiosmtpd 1.4.6 reads DATA one line at a time (a ``readuntil`` and a
``log.debug`` per line); at 50 KB that was the largest single cost of a
message. ``ChunkedDataSMTP.smtp_DATA`` is aiosmtpd's ``smtp_DATA`` with only
the reading replaced, and aiosmtpd has no hook for that (a chunk hook is an
open pull request, aio-libs/aiosmtpd#543). The reading takes whatever the
stream holds up to the end marker ("\\r\\n.\\r\\n", found by the stream
reader's own search), so a 50 KB message is a handful of reads.

The results are aiosmtpd's, byte for byte (tests/test_data_reader.py runs
both side by side): lines are what lies between CRLFs (a bare LF or a lone CR
is inside a line); the data ends at a "." line; a line over
``line_length_limit`` bytes with its CRLF gives 500, more than
``data_size_limit`` bytes (counted before dot-unstuffing) gives 552, whichever
comes first in aiosmtpd's order, and either is said only after the end
marker; the handler gets the bytes dot-unstuffed with their line endings as
sent. A client that disconnects mid-DATA is logged and closed as aiosmtpd
does. Memory stays bounded as in aiosmtpd: once a message is refused, what
arrives is dropped, and a line is never kept past its limit.
"""

from __future__ import annotations

import asyncio
import enum
import logging

from aiosmtpd.smtp import MISSING, SMTP, syntax

log = logging.getLogger("mail.log")  # aiosmtpd's logger, for its "Connection lost during DATA"

END = b"\r\n.\r\n"
# aiosmtpd's StreamReader raises at once for a line whose CRLF lies more than
# this many bytes past its start, before counting the line towards the size.
_READER_SLACK = 2
_BYTEWISE_FLUSH = 1024


class Refusal(enum.Enum):
    """Why the data is refused: aiosmtpd's two states past NOMINAL, with its words."""

    TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
    TOO_MUCH = "552 Error: Too much mail data"


class DataCollector:
    """What aiosmtpd's loop would decide, fed the DATA bytes in pieces of any size.

    ``feed`` takes bytes in order (the end marker's final ".\\r\\n" excluded);
    complete lines are judged as aiosmtpd judges them, the unfinished last line
    is kept until its CRLF comes, or judged too long as soon as it is.
    """

    def __init__(self, line_length_limit: int, size_limit: int | None) -> None:
        self.line_limit = line_length_limit
        self.size_limit = size_limit or 0  # aiosmtpd: no limit when None or 0
        self.refusal: Refusal | None = None
        self.data = bytearray()  # while nominal: every byte so far
        self._judged = 0  # data[:_judged] is complete lines, all judged

    def feed(self, piece: bytes) -> None:
        if self.refusal is not None:
            return
        data = self.data
        data += piece
        last = data.rfind(b"\r\n", max(self._judged, len(data) - len(piece) - 1))
        if last >= 0:
            self._judge(self._judged, last + 2)
        if self.refusal is None:
            self._judge_unfinished()
        if self.refusal is not None:
            data.clear()  # as aiosmtpd: refused data is dropped at once

    def _judge(self, start: int, end: int) -> None:
        """Judge the complete lines data[start:end]; the usual case in two C calls."""
        lines = self.data[start:end].split(b"\r\n")
        lines.pop()  # the empty piece after the last CRLF
        longest = max(map(len, lines)) + 2
        if longest <= self.line_limit and (not self.size_limit or end <= self.size_limit):
            self._judged = end
            return
        counted = start
        for line in lines:  # rare: a refusal; aiosmtpd's order, line by line
            length = len(line) + 2
            if length > self.line_limit + _READER_SLACK:
                self.refusal = Refusal.TOO_LONG
                return
            counted += length
            if self.size_limit and counted > self.size_limit:
                self.refusal = Refusal.TOO_MUCH
                return
            if length > self.line_limit:
                self.refusal = Refusal.TOO_LONG
                return
        self._judged = end

    def _judge_unfinished(self) -> None:
        # Content past the limit plus slack: the line is too long whatever follows
        # (a final CR may still be half of its CRLF, so it is not counted).
        unfinished = len(self.data) - self._judged
        if self.data.endswith(b"\r"):
            unfinished -= 1
        if unfinished > self.line_limit + _READER_SLACK - 2:
            self.refusal = Refusal.TOO_LONG

    def content(self) -> bytes:
        """The data dot-unstuffed (RFC 5321 4.5.2), as aiosmtpd hands it to the handler."""
        data = bytes(self.data)
        # "\r\n." cannot overlap itself, so one replace reaches every line start but the first.
        unstuffed = data.replace(b"\r\n.", b"\r\n") if b"\r\n." in data else data
        return unstuffed[1:] if data.startswith(b".") else unstuffed


async def read_data(reader: asyncio.StreamReader, collector: DataCollector) -> None:
    """Read up to and including the end marker, feeding the collector."""
    # The data starts at a line start, so a first ".\r\n" ends it: seen through a
    # virtual CRLF in front. While the last four bytes read hold a CR, an end
    # marker could straddle what was read and what was not, so those bytes come
    # one at a time (usually four, at the start); past that, the reader's own
    # search never splits a marker: it keeps the last four bytes it has not matched.
    read = bytearray(b"\r\n")
    virtual = 2
    while b"\r" in read[-4:]:
        read += await reader.readexactly(1)
        if read.endswith(END):
            collector.feed(bytes(read[virtual:-3]))
            return
        if len(read) > _BYTEWISE_FLUSH:  # a long run of CRs: keep memory bounded
            collector.feed(bytes(read[virtual:-4]))
            del read[:-4]
            virtual = 0
    collector.feed(bytes(read[virtual:]))
    while True:
        try:
            chunk = await reader.readuntil(END)
        except asyncio.LimitOverrunError as overrun:
            # No marker in the first `consumed` bytes: take them all at once.
            collector.feed(await reader.read(overrun.consumed))
            continue
        collector.feed(chunk[:-3])
        return


class ChunkedDataSMTP(SMTP):
    """aiosmtpd's SMTP whose DATA is read in chunks; everything else is aiosmtpd's."""

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if self._decode_data:  # str content: aiosmtpd's own path, unchanged
            await super().smtp_DATA(arg)
            return
        # The checks before 354, as aiosmtpd's smtp_DATA makes them.
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        collector = DataCollector(self.line_length_limit, self.data_size_limit)
        try:
            await read_data(self._reader, collector)
        except asyncio.CancelledError:
            # The connection was reset or closed (connection_lost and eof_received
            # cancel this task), as aiosmtpd handles it.
            log.info("Connection lost during DATA")
            self._writer.close()
            raise
        if collector.refusal is not None:
            await self.push(collector.refusal.value)
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            return
        content = collector.content()
        collector.data.clear()
        self.envelope.content = content
        self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push("250 OK" if status is MISSING else status)
