"""A real DNS server on loopback for the authentication tests (dnslib, UDP and TCP).

Serves whatever records a test puts in ``records`` (name -> list of (type,
value)); a name with no records at all is NXDOMAIN. ``BlackHole`` is a UDP
port that reads queries and never answers: a DNS server that has gone quiet.
"""

from __future__ import annotations

import socket
import threading
from collections import defaultdict
from dataclasses import dataclass, field

from dnslib import QTYPE, RCODE, RR, TXT, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer


def _chunks(value: str) -> list[str]:
    return [value[i : i + 255] for i in range(0, len(value), 255)] or [""]


@dataclass
class Zone(BaseResolver):
    records: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    queries: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, kind: str, value: str) -> None:
        self.records[name.lower().rstrip(".")].append((kind, value))

    def txt(self, name: str, value: str) -> None:
        self.add(name, "TXT", value)

    def resolve(self, request, handler):  # dnslib's resolver contract
        reply = request.reply()
        name = str(request.q.qname).lower().rstrip(".")
        kind = QTYPE[request.q.qtype]
        self.queries.append((name, kind))
        found = self.records.get(name)
        if not found:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for record_kind, value in found:
            if record_kind != kind:
                continue
            rdata = TXT(_chunks(value)) if kind == "TXT" else A(value)
            reply.add_answer(RR(request.q.qname, QTYPE.reverse[kind], rdata=rdata, ttl=60))
        return reply


class LoopbackDns:
    """UDP and TCP on one loopback port, serving a Zone."""

    def __init__(self) -> None:
        self.zone = Zone()
        for _ in range(20):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            try:
                quiet = DNSLogger(logf=lambda text: None)
                self.udp = DNSServer(self.zone, address="127.0.0.1", port=port, logger=quiet)
                self.tcp = DNSServer(
                    self.zone, address="127.0.0.1", port=port, tcp=True, logger=quiet
                )
            except OSError:
                continue
            break
        else:
            raise RuntimeError("no free port for the loopback DNS server")
        self.port = port
        self.udp.start_thread()
        self.tcp.start_thread()

    def stop(self) -> None:
        self.udp.stop()
        self.tcp.stop()

    def settings(self, timeout: int = 2) -> str:
        """The [rules.authentication] lines that point the relay at this server."""
        return f'nameservers = ["127.0.0.1"]\nport = {self.port}\ntimeout = {timeout}'


class BlackHole:
    """A UDP DNS 'server' that takes queries and never answers."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.asked = threading.Event()
        self._thread = threading.Thread(target=self._swallow, daemon=True)
        self._thread.start()

    def _swallow(self) -> None:
        while True:
            try:
                self.socket.recvfrom(4096)
            except OSError:
                return
            self.asked.set()

    def stop(self) -> None:
        self.socket.close()
