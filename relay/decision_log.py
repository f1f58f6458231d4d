"""The one log line per decision intake makes: refused, stored (and how), set aside.

Every line carries its facts as fields (``extra={"fields": ...}``), so the JSON log
format can be queried and the text format stays short; no line names a real
address at INFO. The fields are worked out only when INFO is logged, and each line
is formatted once, by the one handler relay.ops.logsetup installs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from relay.mail.replies import Reply
from relay.rules.base import Action, Hit

log = logging.getLogger("relay.intake")


def _code(reply: Reply) -> str:
    return f"{reply.code} {reply.status}"


def refused(reply: Reply, source: str) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    fields = {"source": source, "decision": "refused", "smtp": _code(reply)}
    log.info("refused: %s", reply.text, extra={"fields": fields})


def set_aside(pair_tokens: list[str]) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    fields = {"pair": pair_tokens, "decision": "set aside"}
    log.info("From names no participant: set aside", extra={"fields": fields})


def stored(
    message_id: int,
    pair_token: str,
    sender_role: str,
    action: Action,
    hits: Sequence[Hit],
    reply: Reply,
    source: str,
) -> None:
    if not log.isEnabledFor(logging.INFO):  # the fields are not worked out for nobody
        return
    fields = {
        "message": message_id,
        "pair": pair_token,
        "sender_role": sender_role,
        "decision": str(action),
        "rules": sorted({hit.rule for hit in hits}),
        "smtp": _code(reply),
        "source": source,
    }
    # The id, decision and rules are fields: the line's text does not repeat them.
    log.info("decided", extra={"fields": fields})
