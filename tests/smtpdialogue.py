"""A byte-exact SMTP client for the security tests: every byte the relay sends is kept.

smtplib rewrites line endings and hides the dialogue; these tests need both
the raw bytes they send (smuggling sequences) and the raw bytes they get back
(to compare a right and a wrong guess byte for byte).
"""

from __future__ import annotations

import socket


def read_reply(stream) -> bytes:
    reply = b""
    while True:
        line = stream.readline()
        if not line:
            return reply
        reply += line
        if line[3:4] != b"-":
            return reply


def dialogue(port: int, envelope_from: str, recipients: list[str], data: bytes | None) -> bytes:
    """One whole SMTP session; returns everything the server said, in order.

    data is sent as given (already dot-stuffed, ending in CRLF) and closed with
    ".\\r\\n"; None stops after RCPT.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        stream = connection.makefile("rb")
        said = [read_reply(stream)]

        def command(line: bytes) -> bytes:
            connection.sendall(line + b"\r\n")
            reply = read_reply(stream)
            said.append(reply)
            return reply

        command(b"EHLO client.example")
        command(f"MAIL FROM:<{envelope_from}>".encode())
        accepted = [r for r in recipients if command(f"RCPT TO:<{r}>".encode()).startswith(b"250")]
        if data is not None and accepted and command(b"DATA").startswith(b"354"):
            connection.sendall(data + b".\r\n")
            said.append(read_reply(stream))
        command(b"QUIT")
    return b"".join(said)
