"""CPU of receiving one message's DATA: aiosmtpd's line reader against the relay's chunked one.

Owns the DATA-reading micro-benchmark of issue 14 (twelfth pass). One process, one
event loop: a loopback server (aiosmtpd's ``SMTP``, then relay.sources.data_reader's
``ChunkedDataSMTP``, alternating five times) whose handler only answers 250, and an
asyncio client sending the same 50 KB message N times on one session. The figure is the
process's CPU per message (client and server; the client's share is the same for both),
median of the five; the ratio chunked/aiosmtpd is printed for two bodies: smtp-source's
(80-character lines "1XXX...", as bench/throughput.py sends) and prose (ordinary
sentences wrapped at 76 characters, blank lines between paragraphs).

    python bench/data_read.py            # 300 messages per measurement
    python bench/data_read.py --messages 100
"""

import argparse
import asyncio
import time

from aiosmtpd.smtp import SMTP

from relay.sources.data_reader import ChunkedDataSMTP


class Answer250:
    """The handler: takes the message, says 250."""

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        return "250 OK"


def body(kind: str, size: int) -> bytes:
    if kind == "smtp-source":
        line = b"".join(b"%d" % (n % 10) + b"X" * 77 + b"\r\n" for n in range(1, 11))
    else:
        line = (
            b"Thank you for the notes from last week; I read them twice on the train and\r\n"
            b"I think the plan for the interview practice is a good one. Shall we start\r\n"
            b"with the questions about teamwork, then move on to the harder ones?\r\n\r\n"
        )
    head = b"From: a@b.example\r\nTo: c@d.example\r\nSubject: hi\r\n\r\n"
    return head + (line * (size // len(line) + 1))[: size - len(head) - 2] + b"\r\n"


async def cpu_per_message(session_class: type[SMTP], data: bytes, n: int) -> float:
    """Process CPU (us) per message for n messages on one session with this server."""
    server = await asyncio.get_running_loop().create_server(
        lambda: session_class(Answer250(), data_size_limit=10_000_000), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.write(b"HELO c\r\n")
    await reader.readline()
    t0 = time.process_time()
    for _ in range(n):
        writer.write(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n")
        await reader.readline()
        await reader.readline()
        await reader.readline()
        writer.write(data + b".\r\n")
        assert (await reader.readline()).startswith(b"250")
    cpu = time.process_time() - t0
    writer.close()
    server.close()
    await server.wait_closed()
    return cpu / n * 1e6


async def main(n: int) -> None:
    for kind in ("smtp-source", "prose"):
        data = body(kind, 50_000)
        res: dict[str, list[float]] = {"aiosmtpd": [], "chunked": []}
        for _ in range(5):
            res["aiosmtpd"].append(await cpu_per_message(SMTP, data, n))
            res["chunked"].append(await cpu_per_message(ChunkedDataSMTP, data, n))
        a, c = sorted(res["aiosmtpd"])[2], sorted(res["chunked"])[2]
        print(
            f"{kind:12s} 50 KB: aiosmtpd {a:6.0f} us/msg, chunked {c:6.0f} us/msg, "
            f"ratio {c / a:.2f} (process CPU, median of 5 x {n})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300, help="per measurement (300)")
    asyncio.run(main(parser.parse_args().messages))
