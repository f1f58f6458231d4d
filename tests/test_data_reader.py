"""DATA read in chunks (relay.sources.data_reader) gives exactly what aiosmtpd's line reader gives.

aiosmtpd's own SMTP and ChunkedDataSMTP run side by side on loopback; the
same bytes, cut into the same pieces, go to both, and the replies and the
bytes each handler receives must be equal. Then the running relay gets the
cases a user would see: a too-long line, a message at and past the size
limit, a client that disconnects mid-DATA, dot-stuffed lines.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import socket

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from relay.sources.data_reader import ChunkedDataSMTP, DataCollector
from relay.store import db
from relay.store.models import Message
from tests.conftest import PairInfo, RunningRelay, Sink, mail, wait_for, wire


class Capture:
    """A handler that keeps what DATA hands it."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(bytes(envelope.original_content or b""))
        assert envelope.content == envelope.original_content
        return "250 OK"


async def _reply(reader: asyncio.StreamReader) -> bytes:
    said = b""
    while True:
        line = await reader.readline()
        said += line
        if not line or line[3:4] != b"-":
            return said


async def _session(
    session_class: type[SMTP], pieces: list[bytes], size_limit: int | None
) -> tuple[bytes, list[bytes]]:
    """Everything the server said, and what its handler received, for DATA sent in pieces."""
    capture = Capture()
    server = await asyncio.get_running_loop().create_server(
        lambda: session_class(capture, data_size_limit=size_limit), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    said = [await _reply(reader)]
    for command in (b"EHLO client.example", b"MAIL FROM:<a@b.example>", b"RCPT TO:<c@d.example>"):
        writer.write(command + b"\r\n")
        said.append(await _reply(reader))
    writer.write(b"DATA\r\n")
    said.append(await _reply(reader))
    for piece in pieces:  # each its own segment, so the server reads the cuts as they are
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.002)
    # The answer to the data, then to the NOOP sent right behind the end marker;
    # bounded, so a reader that misses the marker fails here instead of waiting.
    said.append(await asyncio.wait_for(_reply(reader), 10))
    said.append(await asyncio.wait_for(_reply(reader), 10))
    writer.close()
    server.close()
    await server.wait_closed()
    return b"".join(said), capture.received


def _both(pieces: list[bytes], size_limit: int | None = None) -> None:
    async def run() -> None:
        library = await _session(SMTP, pieces, size_limit)
        chunked = await _session(ChunkedDataSMTP, pieces, size_limit)
        assert chunked == library

    asyncio.run(run())


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *sorted({c for c in cuts if 0 < c < len(data)}), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(edges)]


LONG = b"y" * 999
CASES = {
    "empty": b"",
    "plain": b"Subject: hi\r\n\r\nHello.\r\n",
    "dots at line starts": b"..first\r\n.\r\r\n..\r\nmiddle\r\n...three\r\n.x\r\n",
    "a dot after a bare LF": b"a\n.\r\nb\n..\r\n",
    "lone CRs": b"\r\r\n\ra\rb\r\r\r\n.\r.\r\n",
    "only CRLFs": b"\r\n" * 3000,
    "line at the limit": LONG + b"\r\n",
    "line one over": LONG + b"y\r\n",
    "line three over": LONG + b"yyy\r\n",
    "line far over": b"z" * 5000 + b"\r\nafter\r\n",
    "long line then a dot line": b"z" * 3000 + b"\r\n..\r\n",
    "no CRLF before the marker's dot": b"text.\r\n\n.\r\nend\r\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("cutting", ["whole", "bytewise start", "random", "at every CR"])
def test_chunked_reader_matches_aiosmtpd(name: str, cutting: str) -> None:
    data = CASES[name] + b".\r\nNOOP\r\n"
    cuts = {
        "whole": [],
        "bytewise start": list(range(1, 12)),
        "random": random.Random(name).sample(range(1, len(data)), min(8, len(data) - 1)),
        "at every CR": [i for i, byte in enumerate(data) if byte == 13][:40],
    }[cutting]
    _both(_cut(data, cuts))


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_size_limit_exactly(offset: int) -> None:
    body = b"".join(b"line %04d of the message\r\n" % n for n in range(100))
    _both([body + b".\r\nNOOP\r\n"], size_limit=len(body) + offset)


def test_size_and_line_limits_in_aiosmtpds_order() -> None:
    # The line crossing the size limit is 1002 bytes: aiosmtpd counts it before
    # judging its length (552); one of 1004 bytes is judged first (500).
    for line in (b"q" * 1000 + b"\r\n", b"q" * 1002 + b"\r\n"):
        body = b"short\r\n" + line
        _both([body + b".\r\nNOOP\r\n"], size_limit=len(body) - 1)


TOKENS = st.sampled_from(
    [b".", b"..", b"\r", b"\n", b"\r\n", b"a", b"text ", b"x" * 300, b"w" * 997, b".\r\n."]
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(TOKENS, max_size=40),
    st.lists(st.integers(min_value=1, max_value=4000), max_size=6),
    st.sampled_from([None, 40, 1000, 2500]),
)
def test_chunked_reader_matches_aiosmtpd_on_generated_data(
    tokens: list[bytes], cuts: list[int], size_limit: int | None
) -> None:
    data = b"".join(tokens)
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    _both(_cut(data + b".\r\nNOOP\r\n", cuts), size_limit)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(TOKENS, max_size=40),
    st.lists(st.integers(min_value=1, max_value=4000), max_size=8),
    st.sampled_from([None, 40, 1000, 2500]),
)
def test_collector_judges_the_same_whatever_the_pieces(
    tokens: list[bytes], cuts: list[int], size_limit: int | None
) -> None:
    # The stream hands the collector pieces cut anywhere, between a CR and its LF too.
    data = b"".join(tokens) + b"\r\n"
    whole, cut = DataCollector(1001, size_limit), DataCollector(1001, size_limit)
    whole.feed(data)
    for piece in _cut(data, cuts):
        cut.feed(piece)
    assert (cut.refusal, cut.content()) == (whole.refusal, whole.content())


def test_collector_finds_a_crlf_split_between_pieces() -> None:
    collector = DataCollector(1001, None)
    for piece in (b"y" * 990 + b"\r", b"\n" + b"z" * 20, b"\r\n"):
        collector.feed(piece)
    assert (collector.refusal, collector.content()) == (
        None,
        b"y" * 990 + b"\r\n" + b"z" * 20 + b"\r\n",
    )


def test_disconnect_mid_data_reaches_no_handler() -> None:
    async def run(session_class: type[SMTP]) -> list[bytes]:
        capture = Capture()
        server = await asyncio.get_running_loop().create_server(
            lambda: session_class(capture), "127.0.0.1", 0
        )
        port = server.sockets[0].getsockname()[1]
        for _ in range(2):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await _reply(reader)
            for command in (b"HELO c", b"MAIL FROM:<a@b.example>", b"RCPT TO:<c@d.example>"):
                writer.write(command + b"\r\n")
                await _reply(reader)
            writer.write(b"DATA\r\n")
            await _reply(reader)
            writer.write(b"Subject: cut\r\n\r\nhalf a messa")
            await writer.drain()
            writer.close()
            await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return capture.received

    assert asyncio.run(run(ChunkedDataSMTP)) == asyncio.run(run(SMTP)) == []


def _stored(store: db.Store) -> list[Message]:
    with store.session() as session:
        return list(session.scalars(select(Message)).all())


def test_relay_refuses_a_too_long_line_and_stays_in_step(
    relay: RunningRelay, pair: PairInfo, store: db.Store
) -> None:
    message = wire(mail(pair.mentor, pair.address)) + b"x" * 1200 + b"\r\n"
    with relay.smtp() as client:
        client.ehlo()
        client.mail(pair.mentor)
        client.rcpt(pair.address)
        code, text = client.data(message)
        assert (code, text[:5]) == (500, b"5.6.0")
        assert client.noop()[0] == 250
    assert _stored(store) == []


def test_relay_size_limit_exactly(configured) -> None:
    limit = 4000
    running, info, store = configured(
        relay=f'domain = "relay.test"\nmax_message_size = {limit}\npostmaster = "op@ops.example"'
    )
    head = wire(mail(info.mentor, info.address, body=""))
    filler = b"words " * 10 + b"\r\n"  # 62 bytes a line
    body = filler * ((limit - len(head)) // len(filler))
    exact = head + body + b"z" * (limit - len(head) - len(body) - 2) + b"\r\n"
    assert len(exact) == limit
    with running.smtp() as client:
        client.ehlo()
        client.mail(info.mentor)
        client.rcpt(info.address)
        assert client.data(exact)[0] == 250
        client.mail(info.mentor)
        client.rcpt(info.address)
        code, text = client.data(b"z" + exact)
        assert (code, text[:5]) == (552, b"5.3.4")
    assert len(_stored(store)) == 1


def test_relay_client_gone_mid_data_stores_nothing_and_serves_the_next(
    relay: RunningRelay, pair: PairInfo, store: db.Store, sink: Sink
) -> None:
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as connection:
        stream = connection.makefile("rb")
        stream.readline()
        for command in (b"HELO c", f"MAIL FROM:<{pair.mentor}>".encode()):
            connection.sendall(command + b"\r\n")
            stream.readline()
        connection.sendall(f"RCPT TO:<{pair.address}>\r\nDATA\r\n".encode())
        assert stream.readline().startswith(b"250")
        assert stream.readline().startswith(b"354")
        connection.sendall(wire(mail(pair.mentor, pair.address))[:-10])
    relay.send(mail(pair.mentor, pair.address, "After", "Still here."), pair.mentor, pair.address)
    wait_for(lambda: len(_stored(store)) == 1, what="the next message stored")
    (only,) = _stored(store)
    assert b"Still here." in only.raw


def test_relay_unstuffs_dots_for_the_partner(
    relay: RunningRelay, pair: PairInfo, sink: Sink
) -> None:
    text = ".hidden line\r\n..two dots\r\nplain\r\n"
    relay.send(mail(pair.mentor, pair.address, "Dots", text), pair.mentor, pair.address)
    wait_for(
        lambda: any(r.message["Subject"] == "Dots" for r in sink.to(pair.mentee)),
        what="the forward",
    )
    forward = next(r for r in sink.to(pair.mentee) if r.message["Subject"] == "Dots")
    assert forward.message.get_content().splitlines()[:3] == [".hidden line", "..two dots", "plain"]
