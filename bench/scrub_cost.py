"""What scrubbing costs per pair and per message: the old pattern against scrub_search.

Owns the scrubbing figures in bench/RESULTS.md ("Issue 14, fifth pass"). The
old pattern is the builder kept verbatim in tests/outbound/scrub_reference.py;
the texts are the reply that ``bench/throughput.py --reply`` sends (text and
HTML parts, as the relay scrubs them). Min / median of repeated calls.

    python3 bench/scrub_cost.py
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from throughput import pair_people, reply_bytes

from relay.outbound import scrub_forms
from relay.outbound.scrub_text import Scrubber
from tests.outbound.scrub_reference import _address_pattern

PAIR = "k7q2m9x4ab3cdxyz@relay.bench"


def parts(size: int, sender: str) -> list[str]:
    message = message_from_bytes(reply_bytes(size, PAIR, 1, sender), policy=policy.default)
    return [part.get_content() for part in message.walk() if part.get_content_maintype() == "text"]


def timed(call: Callable[[int], object], count: int) -> str:
    samples = []
    for number in range(count):
        started = time.perf_counter()
        call(number)
        samples.append(time.perf_counter() - started)
    samples.sort()
    return f"min {samples[0] * 1000:.3f} / median {samples[len(samples) // 2] * 1000:.3f} ms"


def main() -> int:
    pairs = [scrub_forms.search_order(pair_people(n)) for n in range(1000, 1100)]
    for markup in (False, True):

        def compile_one(number: int, markup: bool = markup) -> None:
            re.purge()  # re's own cache would hide the compile
            _address_pattern(pairs[number], markup)

        kind = "markup" if markup else "text"
        print(f"old: compile one pair's {kind} pattern: {timed(compile_one, 100)}")
    sender = pair_people(5)[0]
    for size in (1024, 51200):
        plain, html = parts(size, sender)
        row(f"{size // 1024} KB reply", plain, html, own=False)
        plain, html = (text.replace(PAIR, sender, 1) for text in (plain, html))
        row(f"{size // 1024} KB reply quoting the sender's own address", plain, html, own=True)
    return 0


def row(what: str, plain: str, html: str, *, own: bool) -> None:
    ordered = scrub_forms.search_order(pair_people(5))
    patterns = _address_pattern(ordered, False), _address_pattern(ordered, True)
    old = timed(lambda _: (patterns[0].sub(PAIR, plain), patterns[1].sub(PAIR, html)), 300)

    def new(number: int) -> None:
        # A new pair every call, unless the text quotes pair 5's own address.
        scrubber = Scrubber(pair_people(5 if own else 2000 + number), PAIR)
        scrubber.text(plain)
        scrubber.markup(html)

    print(f"{what}, text + HTML: old, pattern compiled: {old}; new: {timed(new, 300)}")


if __name__ == "__main__":
    sys.exit(main())
