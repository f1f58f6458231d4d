"""What sender authentication ("verify") costs intake per message, against parsing it.

Starts a DNS server on loopback (dnslib, as the tests do; `pip install '.[test]'`)
publishing SPF, DKIM and DMARC records for one sender domain, signs N messages with
dkimpy, and times, in the same run and interleaved: parsing each message (the
baseline: intake does it for every message anyway) and relay.mail.authentication's
check of each (SPF for 127.0.0.1, the DKIM signature, DMARC alignment), first with an
empty DNS cache and then with the resolver's cache warm, as for a sender who writes
again. Prints milliseconds per message and the ratios to parsing.

    python3 bench/authentication.py             # 300 messages
    python3 bench/authentication.py --count 50

All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relay.mail.authentication import Verifier
from relay.mail.reading import parse
from relay.mail.resolver import Resolver
from tests.dnsserver import LoopbackDns
from tests.tlskeys import dkim_txt_record, rsa_key

DOMAIN = "mentors.example.org"


def messages(count: int, key: object) -> list[bytes]:
    pem = key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    signed = []
    for number in range(count):
        message = EmailMessage()
        message["From"] = f"ana@{DOMAIN}"
        message["To"] = "7hk2qvmx9c4rt@relay.example.org"
        message["Subject"] = f"Message {number}"
        message.set_content("How is school going? " * 40)
        data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
        signed.append(dkim.sign(data, b"mr2026", DOMAIN.encode(), pem) + data)
    return signed


def timed(each: list[bytes], work: object) -> float:
    started = time.perf_counter()
    for raw in each:
        work(raw)  # type: ignore[operator]
    return (time.perf_counter() - started) * 1000 / len(each)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    key = rsa_key()
    dns = LoopbackDns()
    dns.zone.txt(DOMAIN, "v=spf1 ip4:127.0.0.1 -all")
    dns.zone.txt(f"_dmarc.{DOMAIN}", "v=DMARC1; p=reject")
    dns.zone.txt(f"mr2026._domainkey.{DOMAIN}", dkim_txt_record(key).decode())
    batch = messages(args.count, key)
    rows: dict[str, list[float]] = {"parse": [], "verify, cold DNS": [], "verify, warm": []}
    try:
        for _ in range(args.runs):
            rows["parse"].append(timed(batch, parse))
            cold = Verifier(Resolver(["127.0.0.1"], dns.port, 2.0))

            def check(raw: bytes, verifier: Verifier = cold) -> None:
                result = verifier.check(raw, f"ana@{DOMAIN}", f"ana@{DOMAIN}", "mail", "127.0.0.1")
                assert result.authenticated, result

            rows["verify, cold DNS"].append(timed(batch[:1], check))
            rows["verify, warm"].append(timed(batch[1:], check))
    finally:
        dns.stop()
    base = statistics.median(rows["parse"])
    print(f"{args.count} DKIM-signed messages, median of {args.runs} runs")
    for name, values in rows.items():
        median = statistics.median(values)
        print(f"{name:18} {median:8.2f} ms/message   {median / base:6.1f} x parse")


if __name__ == "__main__":
    main()
