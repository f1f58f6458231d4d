"""The daemon's log lines (relay.ops.logsetup, relay.decision_log): same text, less work.

The time is formatted once a second and reused; records no longer carry the
caller, thread or process. A line must read exactly as the standard
formatter would have written it, across second boundaries too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from relay import decision_log
from relay.mail import replies
from relay.ops import logsetup
from relay.rules.base import Action, Hit


@pytest.fixture
def logged(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[[], str]]:
    """What `relay serve`'s logging writes to stderr; logging's globals put back after."""
    for name in ("logThreads", "logProcesses", "logMultiprocessing", "_srcfile"):
        monkeypatch.setattr(logging, name, getattr(logging, name))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield lambda: capsys.readouterr().err
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _record(created: float) -> logging.LogRecord:
    record = logging.LogRecord("relay.intake", logging.INFO, __file__, 1, "decided", None, None)
    record.created = created
    record.msecs = (created - int(created)) * 1000
    return record


# Across a second boundary, at whole seconds, just before one.
MOMENTS = [
    1_700_000_000.0,
    1_700_000_000.999,
    1_700_000_001.0005,
    1_700_000_001.25,
    1_699_999_999.5,
]


def test_the_text_time_reads_as_the_standard_formatters() -> None:
    ours, standard = logsetup.TextFormatter(), logging.Formatter("%(asctime)s")
    for created in MOMENTS:
        record = _record(created)
        assert ours.formatTime(record) == standard.format(record)


def test_the_json_time_reads_as_before() -> None:
    ours = logsetup.JsonFormatter()
    for created in MOMENTS:
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert json.loads(ours.format(_record(created)))["time"] == expected


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_one_decision_one_line_with_every_field(logged: Callable[[], str], log_format: str) -> None:
    logsetup.configure("info", log_format)  # type: ignore[arg-type]
    hits = [Hit("keywords", "a keyword"), Hit("links", "a link"), Hit("keywords", "another")]
    decision_log.stored(41, "xr47n7k6z2jqc", "mentor", Action.HOLD, hits, replies.OK, "smtp")
    lines = logged().splitlines()
    assert len(lines) == 1
    if log_format == "json":
        entry = json.loads(lines[0])
        assert entry["message"] == 41  # the field (the message id) over the text, as before
        assert (entry["pair"], entry["decision"], entry["rules"], entry["smtp"]) == (
            "xr47n7k6z2jqc",
            "hold",
            ["keywords", "links"],
            "250 2.0.0",
        )
    else:
        text = lines[0].split(" ", 2)[2]  # after the date and time
        assert text == (
            "INFO relay.intake: decided message=41 pair=xr47n7k6z2jqc sender_role=mentor "
            "decision=hold rules=keywords,links smtp=250 2.0.0 source=smtp"
        )


def test_nothing_is_worked_out_when_info_is_not_logged(logged: Callable[[], str]) -> None:
    logsetup.configure("warning", "text")

    class Unreadable(list[Hit]):
        def __iter__(self):  # type: ignore[override]
            raise AssertionError("the fields worked out for a line nobody logs")

    decision_log.stored(1, "token", "mentee", Action.ACCEPT, Unreadable(), replies.OK, "smtp")
    decision_log.refused(replies.UNKNOWN_PAIR, "smtp")
    assert logged() == ""
