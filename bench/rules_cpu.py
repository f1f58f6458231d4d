"""The moderation rules' CPU per message, rule by rule, in process (no database, no SMTP).

Owns the rules-only figure of issue 14's fifteenth pass in bench/RESULTS.md. Parses
messages of the bodies bench/profile_intake.py sends (smtp-source's lines of X, a
letter in prose, a reply quoting the partner in text and HTML), builds each MailView
once, then times every rule's ``check`` over all of them, and ``run_rules`` plus
intake's own ``is_automated`` per message; thread CPU, best of the rounds (steady on a
shared machine). To compare with other code, run it from outside the checkout with
that code first on the path:

    python3 bench/rules_cpu.py --rounds 5
    cd /tmp && PYTHONPATH=/tmp/before python3 /path/to/checkout/bench/rules_cpu.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from profile_intake import prose_bytes, source_bytes
from throughput import MENTOR, reply_bytes

PAIR = "tok123@relay.example.org"
DOMAIN = "relay.example.org"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--size", default="1k")
    arguments = parser.parse_args()
    size = int(arguments.size.rstrip("kK")) * 1024
    import relay
    from relay.mail.reading import parse
    from relay.mail.text import MailView
    from relay.rules.automated import is_automated
    from relay.rules.base import RuleContext
    from relay.rules.engine import build_rules, run_rules

    print(f"relay code: {Path(relay.__file__).parent}")
    rules = build_rules()
    context = RuleContext(PAIR, DOMAIN, "mentor", 5, 1, allowed_addresses=frozenset({PAIR, MENTOR}))
    bodies = {
        "smtp-source": source_bytes,
        "prose": prose_bytes,
        "reply": lambda size, to, number: reply_bytes(size, to, number, MENTOR),
    }
    for name, make in bodies.items():
        views = [
            MailView.from_message(parse(make(size, PAIR, n))) for n in range(arguments.messages)
        ]
        best: dict[str, float] = {}
        for _ in range(arguments.rounds):
            for rule in rules:
                started = time.thread_time()
                for view in views:
                    rule.check(view, context)
                per_message = (time.thread_time() - started) / len(views) * 1e6
                best[rule.name] = min(best.get(rule.name, per_message), per_message)
            started = time.thread_time()
            for view in views:
                run_rules(rules, view, context)
                is_automated(view.message, DOMAIN)
            per_message = (time.thread_time() - started) / len(views) * 1e6
            best["ALL"] = min(best.get("ALL", per_message), per_message)
        shown = " ".join(
            f"{rule}={us:.1f}" for rule, us in best.items() if us >= 1 or rule == "ALL"
        )
        print(f"{name}: us/msg {shown}")
    print("ALL: run_rules and intake's is_automated, per message; rules under 1 us not shown")
    return 0


if __name__ == "__main__":
    sys.exit(main())
