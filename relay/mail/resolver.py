"""DNS lookups for sender authentication: one resolver, configurable, always bounded.

Owns how the relay asks DNS for the TXT, A, AAAA, MX and PTR records that
SPF, DKIM and DMARC need: which servers (``[rules.authentication]
nameservers`` and ``port``, or the system's resolv.conf when none are
named), and how long one lookup may take (``timeout``; every lookup has a
lifetime, so a silent server costs at most that, never a stall). Answers are
cached for their TTL. Lookups are blocking: intake calls them from its worker
thread, never on the event loop.

A name that does not exist or has no such record is an empty answer; a
timeout or a failing server is a ``DnsTemporaryError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dns.exception
import dns.name
import dns.resolver


class DnsTemporaryError(Exception):
    """DNS did not answer in time, or answered with a server failure."""


class Resolver:
    def __init__(self, nameservers: Sequence[str] = (), port: int = 53, timeout: float = 5.0):
        if nameservers:
            self._resolver = dns.resolver.Resolver(configure=False)
            self._resolver.nameservers = list(nameservers)
        else:
            self._resolver = dns.resolver.Resolver()
        self._resolver.port = port
        self._resolver.timeout = timeout
        self._resolver.lifetime = timeout
        # Answers are kept for their TTL: a busy pair costs its sender's records once.
        self._resolver.cache = dns.resolver.LRUCache(max_size=10_000)
        self.timeout = timeout

    def query(self, name: str, rdtype: str) -> list[Any]:
        """The records of one type at a name; [] when there are none."""
        try:
            answer = self._resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.name.EmptyLabel, dns.name.LabelTooLong, dns.name.NameTooLong):
            return []  # not a name anyone can publish records at
        except dns.exception.DNSException as error:
            raise DnsTemporaryError(f"DNS {rdtype} {name}: {type(error).__name__}") from None
        return list(answer)

    def txt(self, name: str) -> list[bytes]:
        """Each TXT record at a name, its strings joined (RFC 7208 3.3)."""
        return [b"".join(record.strings) for record in self.query(name, "TXT")]
