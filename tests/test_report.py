"""`relay report` on a programme with known traffic, every figure checked by hand.

The traffic goes through the running relay (SMTP to the pair addresses, the
moderators' `relay approve` / `reject`, check-in answers by mail, `relay tick
--at` for the programme's weeks, `relay pair pause` / `end`). The relay stamps
mail with the wall clock, so the one step not done through the relay is the
test's clock: each stored message, decision and pair is then moved to its
scripted time (an UPDATE of received_at, decided_at, created_at, ended_at),
which makes every day and hour below a hand count.

The timeline (S = week 1's Monday, the report --until S+28d, i.e. as of S+29d 00:00):

  spring  P1  mentor S+1d 10:00, mentee S+1d 16:00, mentor S+2d 10:00,
              mentor S+3d 10:00, mentee S+4d 10:00, mentee S+20d 12:00;
              check-ins: mentor 4, mentee 2
          P2  mentor S+1d 09:00, S+8d 09:00; ended S+20d (mentee-left, by priya)
          P3  paused from the start; nothing written
  autumn  P4  mentor: 5 messages with a link, 3 with a phone number, S+5d 10:00-17:00,
              all held: links 4 approved, 1 rejected; contact 1 approved with
              redaction, 1 rejected, 1 waiting; decided 1..7 hours after arrival;
              check-in: mentee 5
Every pair was matched at S-2d 00:00; prompts went out in weeks 1-3 (S, S+7d, S+14d 09:00).
"""

from __future__ import annotations

import contextlib
import csv
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from relay.config import load_config
from relay.store import db
from relay.store.models import Message, ModerationAction, Pair
from tests.conftest import (
    TEST_DATABASE_URL,
    RunningRelay,
    SinkHandler,
    _empty_postgres,
    free_port,
    mail,
    wait_for,
    write_config,
)
from tests.programme_helpers import from_checkin, next_monday, ok, pair_up, people, run, tick

LINK = "Here are my notes: https://files.example.net/notes/week1"
PHONE = "Call me on 07700 900123 after school."


@dataclass
class Programme:
    config_path: Path
    start: date
    pairs: list[str]  # P1..P4 addresses
    emails: list[tuple[str, str]]  # (mentor, mentee) of P1..P4

    def moment(self, days: float, hour: float = 0) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC) + timedelta(
            days=days, hours=hour
        )

    @property
    def until(self) -> str:
        return (self.start + timedelta(days=28)).isoformat()

    def report(self, *args: str) -> dict:
        return json.loads(ok(self.config_path, "report", "--json", "--until", self.until, *args))


@pytest.fixture(scope="module")
def programme(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Programme]:
    from aiosmtpd.controller import Controller

    folder = tmp_path_factory.mktemp("report")
    if TEST_DATABASE_URL:
        _empty_postgres(TEST_DATABASE_URL)
        url = TEST_DATABASE_URL
    else:
        url = f"sqlite:///{folder / 'relay.db'}"
    handler = SinkHandler()
    sink = Controller(handler, hostname="127.0.0.1", port=free_port())
    sink.start()
    config_path = write_config(
        folder,
        url,
        delivery='transport = "smtp"\npoll_interval = "1s"',
        smarthost=f'host = "127.0.0.1"\nport = {sink.port}',
    )
    config = load_config(config_path)
    store = db.Store(config.database.url)
    db.upgrade(store)
    relay = RunningRelay(config)
    try:
        yield _build(config_path, relay, store, handler)
    finally:
        relay.stop()
        store.dispose()
        sink.stop()


def _build(config_path: Path, relay: RunningRelay, store: db.Store, sink: SinkHandler) -> Programme:
    start = next_monday()
    for cohort in ("spring", "autumn"):
        ok(config_path, "cohort", "create", cohort, "--start", start.isoformat())
    emails = people(config_path, 4)
    pairs = [pair_up(config_path, *emails[i], cohort="spring") for i in range(3)]
    pairs.append(pair_up(config_path, *emails[3], cohort="autumn"))
    programme = Programme(config_path, start, pairs, emails)
    ok(config_path, "pair", "pause", pairs[2])

    # (pair, sender is the mentor, body, scripted time)
    at = programme.moment
    traffic = [
        (0, True, "Hello!", at(1, 10)),
        (0, False, "Hi, nice to meet you", at(1, 16)),
        (0, True, "What are you studying?", at(2, 10)),
        (0, True, "Did you get my mail?", at(3, 10)),
        (0, False, "Yes, sorry: maths and art", at(4, 10)),
        (0, False, "Exams went fine", at(20, 12)),
        (1, True, "Hello from your mentor", at(1, 9)),
        (1, True, "Anyone there?", at(8, 9)),
        *((3, True, LINK, at(5, 10 + k)) for k in range(5)),
        *((3, True, PHONE, at(5, 15 + k)) for k in range(3)),
    ]
    for index, by_mentor, body, _ in traffic:
        mentor, mentee = emails[index]
        sender = mentor if by_mentor else mentee
        relay.send(mail(sender, pairs[index], "Hi", body), sender, pairs[index])
    with store.session() as session:
        ids = list(session.scalars(select(Message.id).order_by(Message.id)))
    assert len(ids) == len(traffic)
    by_pair: dict[int, list[int]] = {}
    for message_id, (index, *_rest) in zip(ids, traffic, strict=True):
        by_pair.setdefault(index, []).append(message_id)
    held = by_pair[3]
    # links: 4 approved unchanged, 1 rejected; contact: 1 approved redacted, 1 rejected, 1 waits.
    ok(config_path, "approve", *map(str, held[:4]), "--as", "mo")
    ok(config_path, "reject", str(held[4]), "--reason", "no file links", "--as", "mo")
    ok(config_path, "approve", str(held[5]), "--redact", "--as", "mo")
    ok(config_path, "reject", str(held[6]), "--reason", "no phone numbers", "--as", "mo")

    for week in range(3):
        tick(config_path, start + timedelta(weeks=week))
    ok(config_path, "pair", "end", pairs[1], "--reason", "mentee-left", "--as", "priya")
    tick(config_path, start + timedelta(weeks=3))  # week 4: the check-ins
    for index, role, score in ((0, 0, "4"), (0, 1, "2"), (3, 1, "5")):
        person = emails[index][role]
        question = wait_for(
            lambda person=person: [
                r for r in sink.received if person in r.recipients and from_checkin(r)
            ],
            what=f"the check-in to {person}",
        )[0]
        reply_to = question.message["From"].addresses[0].addr_spec
        relay.send(mail(person, reply_to, "Re: check-in", f"{score} thanks"), person, reply_to)

    # The test's clock: every row to its scripted time.
    with store.session() as session:
        session.execute(update(Pair).values(created_at=at(-2)))
        session.execute(update(Pair).where(Pair.status == "ended").values(ended_at=at(20)))
        for message_id, (_, _, _, when) in zip(ids, traffic, strict=True):
            session.execute(
                update(Message).where(Message.id == message_id).values(received_at=when)
            )
        for hours, message_id in enumerate(held[:7], start=1):
            decided = traffic[ids.index(message_id)][3] + timedelta(hours=hours)
            session.execute(
                update(Message).where(Message.id == message_id).values(decided_at=decided)
            )
            session.execute(
                update(ModerationAction)
                .where(ModerationAction.message_id == message_id)
                .values(created_at=decided)
            )
    return programme


def by_address(report: dict, programme: Programme) -> list[dict]:
    rows = {row["address"]: row for row in report["pairs"]}
    return [rows[address] for address in programme.pairs]


def test_every_pair_figure_matches_the_hand_count(programme: Programme):
    report = programme.report()
    p1, p2, p3, p4 = by_address(report, programme)

    assert (p1["cohort"], p1["mentor"], p1["mentee"], p1["state"]) == (
        "spring",
        "Mentor 0",
        "Mentee 0",
        "active",
    )
    assert p1["days_since_matched"] == 31.0
    assert (p1["mentor_days_to_first"], p1["mentee_days_to_first"]) == (3.4, 3.7)  # 3d10h, 3d16h
    assert (p1["mentor_messages"], p1["mentee_messages"]) == (3, 3)
    assert (p1["mentor_per_30_days"], p1["mentee_per_30_days"]) == (2.9, 2.9)  # 3 * 30 / 31
    assert p1["mentor_share"] == 0.5
    # The mentor replied after 18 h; the mentee after 6 h and 24 h (from the message it
    # answers: the mentor's second of two).
    assert (p1["mentor_median_reply_hours"], p1["mentee_median_reply_hours"]) == (18.0, 15.0)
    assert (p1["mentor_days_silent"], p1["mentee_days_silent"]) == (25.6, 8.5)  # 25d14h, 8d12h
    # Prompts of weeks 1 and 3 were followed by a message before the next one; week 2's not.
    assert (p1["prompts"], p1["prompts_answered"], p1["prompts_unanswered"]) == (3, 2, 1)
    assert (p1["mentor_checkin"], p1["mentee_checkin"]) == (4, 2)
    assert (p1["held"], p1["rejected"]) == (0, 0)
    assert p1["focus"] == ["low check-in"]

    assert (p2["state"], p2["ended_reason"], p2["ended_by"]) == ("ended", "mentee-left", "priya")
    assert (p2["mentor_messages"], p2["mentee_messages"], p2["mentor_share"]) == (2, 0, 1.0)
    assert p2["days_in_period"] == 22.0  # matched S-2d, ended S+20d
    assert p2["mentor_per_30_days"] == 2.73  # 2 * 30 / 22
    assert p2["mentee_days_to_first"] is None and p2["mentee_days_silent"] is None
    assert p2["mentor_median_reply_hours"] is None
    assert (p2["prompts"], p2["prompts_answered"]) == (3, 2)
    assert p2["focus"] == []

    assert (p3["state"], p3["mentor_messages"], p3["mentee_messages"]) == ("paused", 0, 0)
    assert (p3["prompts"], p3["mentor_share"], p3["mentor_checkin"]) == (0, None, None)

    assert (p4["cohort"], p4["mentor_messages"], p4["held"], p4["rejected"]) == ("autumn", 8, 8, 2)
    assert (p4["prompts"], p4["prompts_answered"]) == (3, 1)
    assert (p4["mentor_checkin"], p4["mentee_checkin"]) == (None, 5)
    assert p4["focus"] == ["held mail waiting", "unanswered prompts"]


def test_every_cohort_figure_matches_the_hand_count(programme: Programme):
    report = programme.report()
    spring, autumn = sorted(report["cohorts"], key=lambda row: row["cohort"], reverse=True)
    assert spring == {
        "cohort": "spring",
        "pairs": 3,
        "active": 1,  # P1 wrote on S+20d; P2 ended; P3 silent
        "paused": 1,
        "ended_early": 1,
        "ended_early_by_reason": {"mentee-left": 1},
        "ended_early_by_who": {"priya": 1},
        "completed": 0,
        "median_match_days": 22.0,
        "messages": 8,
        "messages_per_pair_per_month": 2.86,  # 8 * 30 / (31 + 22 + 31)
        "median_reply_hours": 18.0,  # 6, 18, 24
        "checkins_scored": 2,
        "checkin_mean": 3.0,
        "checkin_scores": {"1": 0, "2": 1, "3": 0, "4": 1, "5": 0},
        "prompts": 6,
        "prompts_answered": 4,
        "prompts_answered_pct": 66.7,
    }
    assert (autumn["pairs"], autumn["active"], autumn["messages"]) == (1, 0, 8)
    assert (autumn["median_reply_hours"], autumn["checkin_mean"]) == (None, 5.0)
    assert (autumn["prompts_answered_pct"], autumn["messages_per_pair_per_month"]) == (33.3, 7.74)
    summary = report["summary"]
    assert (summary["pairs"], summary["active"], summary["paused"], summary["messages"]) == (
        4,
        1,
        1,
        16,
    )
    assert (summary["checkins_scored"], summary["checkin_mean"]) == (3, 3.67)
    assert (summary["prompts"], summary["prompts_answered"]) == (9, 5)


def test_moderation_figures_and_the_too_eager_rule(programme: Programme):
    moderation = programme.report()["moderation"]
    rules = {rule["rule"]: rule for rule in moderation.pop("rules")}
    assert moderation == {
        "held": 8,
        "approved": 4,
        "approved_redacted": 1,
        "rejected": 2,
        "discarded": 0,
        "waiting": 1,
        "median_decision_hours": 4.0,  # 1, 2, ..., 7 hours
        "p90_decision_hours": 7.0,  # nearest rank: the 7th of 7
        "oldest_waiting_since": programme.moment(5, 17).isoformat(),
        "oldest_waiting_hours": 559.0,  # S+5d 17:00 to S+29d 00:00
    }
    assert rules["links"] == {
        "rule": "links",
        "held": 5,
        "approved": 4,
        "approved_redacted": 0,
        "rejected": 1,
        "discarded": 0,
        "waiting": 0,
        "approved_unchanged_share": 0.8,
        "too_eager": True,
    }
    assert (rules["contact"]["held"], rules["contact"]["approved_unchanged_share"]) == (3, 0.0)
    assert rules["contact"]["too_eager"] is False
    summary = ok(programme.config_path, "report", "--until", programme.until)
    assert "rule links: held 5, approved unchanged 80%  <- too eager" in summary


def test_the_focus_list_is_the_programme_one(programme: Programme):
    report = programme.report()
    focus = json.loads(
        ok(
            programme.config_path,
            "focus",
            "--json",
            "--at",
            f"{programme.start + timedelta(days=29)} 00:00",
        )
    )
    assert report["focus"] == focus
    assert [entry["pair"] for entry in focus] == [programme.pairs[0], programme.pairs[3]]


def test_the_focus_list_after_weeks_of_silence_is_the_programme_one(programme: Programme):
    """The report hands the focus list its own reading of who last wrote and of the
    prompts (relay.programme.focus_inputs); weeks later, the silences it finds must be
    those `relay focus` finds by itself."""
    later = programme.start + timedelta(days=59)
    report = programme.report("--until", later.isoformat())
    focus = json.loads(
        ok(programme.config_path, "focus", "--json", "--at", f"{later + timedelta(days=1)} 00:00")
    )
    assert report["focus"] == focus
    reasons = {reason["reason"] for entry in focus for reason in entry["reasons"]}
    assert {"quiet pair", "one-sided silence"} & reasons


def test_the_json_is_what_json_dumps_writes(programme: Programme):
    """--json writes the pairs table through its own fast path; the text must be
    json.dumps(indent=2)'s to the byte, for the report and for awkward rows."""
    from relay.reports.files import to_json

    report = programme.report()
    awkward = {
        "period": {"since": None},
        "pairs": [
            {"id": 1, "mentor": 'Zoë "Z" \\ \u0000', "share": 0.1, "focus": []},
            {"id": 2, "mentor": "Ana", "focus": ["quiet pair", "low check-in"]},
            {"focus": ["first"], "id": 3},
            {"id": 4, "nested": {"a": [1]}, "focus": ["x"]},
            {},
        ],
        "focus": [{"reasons": [{"reason": "quiet pair"}]}],
        "series": {"left": "out"},
    }
    for shown in (report, awkward):
        expected = {key: value for key, value in shown.items() if key != "series"}
        assert to_json(shown) == json.dumps(expected, indent=2, ensure_ascii=False)


def test_a_period_and_a_cohort_narrow_every_figure(programme: Programme):
    since = (programme.start + timedelta(days=10)).isoformat()
    report = programme.report("--since", since)
    p1 = by_address(report, programme)[0]
    assert (p1["mentor_messages"], p1["mentee_messages"]) == (0, 1)  # only S+20d 12:00
    assert p1["days_in_period"] == 19.0
    assert p1["mentor_median_reply_hours"] is None  # no reply in the period
    assert (p1["prompts"], p1["prompts_answered"]) == (1, 1)  # week 3's
    assert report["moderation"]["held"] == 0  # P4's mail came on S+5d

    autumn = programme.report("--cohort", "autumn")
    assert [row["address"] for row in autumn["pairs"]] == [programme.pairs[3]]
    assert [row["cohort"] for row in autumn["cohorts"]] == ["autumn"]
    assert autumn["moderation"]["held"] == 8
    assert [entry["pair"] for entry in autumn["focus"]] == [programme.pairs[3]]


def test_real_addresses_only_with_with_addresses(programme: Programme, tmp_path: Path):
    everyone = [email for pair in programme.emails for email in pair]
    plain = ok(programme.config_path, "report", "--json", "--until", programme.until)
    ok(programme.config_path, "report", "--until", programme.until, "--csv", str(tmp_path / "a"))
    ok(
        programme.config_path,
        "report",
        "--until",
        programme.until,
        "--html",
        str(tmp_path / "a.html"),
    )
    written = plain + "".join(p.read_text() for p in (tmp_path / "a").iterdir())
    written += (tmp_path / "a.html").read_text()
    assert not [email for email in everyone if email in written]

    shown = programme.report("--with-addresses")
    p1 = by_address(shown, programme)[0]
    assert (p1["mentor_address"], p1["mentee_address"]) == programme.emails[0]


def test_csv_files_one_per_table(programme: Programme, tmp_path: Path):
    folder = tmp_path / "out"
    result = ok(programme.config_path, "report", "--until", programme.until, "--csv", str(folder))
    assert f"wrote {folder / 'pairs.csv'}" in result
    assert sorted(p.name for p in folder.iterdir()) == [
        "cohorts.csv",
        "moderation.csv",
        "pairs.csv",
    ]
    with (folder / "pairs.csv").open() as handle:
        pairs = {row["address"]: row for row in csv.DictReader(handle)}
    assert pairs[programme.pairs[0]]["mentee_median_reply_hours"] == "15.0"
    assert pairs[programme.pairs[3]]["focus"] == "held mail waiting; unanswered prompts"
    with (folder / "cohorts.csv").open() as handle:
        cohorts = {row["cohort"]: row for row in csv.DictReader(handle)}
    assert cohorts["spring"]["ended_early_by_reason.mentee-left"] == "1"
    assert cohorts["(all)"]["pairs"] == "4"
    with (folder / "moderation.csv").open() as handle:
        moderation = {row["rule"]: row for row in csv.DictReader(handle)}
    assert moderation["(all)"]["held"] == "8" and moderation["links"]["too_eager"] == "True"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--cohort", "nope"], "Error: no cohort called 'nope'"),
        (
            ["--since", "2030-05-02", "--until", "2030-05-01"],
            "Error: --until 2030-05-01 is before --since 2030-05-02",
        ),
        (["--since", "yesterday"], "Error: --since: not a date (YYYY-MM-DD): 'yesterday'"),
        (["--until", "2030-02-30"], "Error: --until: not a date (YYYY-MM-DD): '2030-02-30'"),
        (
            ["--since", "2999-01-01"],
            "Error: --since 2999-01-01 is in the future (give --until too)",
        ),
        (["--until", "1999-01-01"], "Error: no pairs were matched and open in that period"),
    ],
)
def test_bad_input_gets_one_clear_line(programme: Programme, args: list[str], error: str):
    result = run(programme.config_path, "report", *args)
    assert result.exit_code == 1
    assert result.output.strip() == error


CHART_SIZES = """JSON.stringify(Array.from(document.querySelectorAll('figure.chart')).map(f => {
  const svg = f.querySelector('svg'), box = svg.getBoundingClientRect();
  return {id: f.id, width: box.width, height: box.height,
          drawn: svg.querySelectorAll('path, rect, use, line').length, text: svg.textContent};
}))"""
FIRST_COLUMN = (
    "Array.from(document.querySelectorAll('#pairs tbody tr')).map(r => r.cells[0].textContent)"
)


def test_the_page_opens_offline_in_chromium_with_its_charts(programme: Programme, tmp_path: Path):
    from tests.chromium import Browser

    page = tmp_path / "report.html"
    ok(programme.config_path, "report", "--until", programme.until, "--html", str(page))
    browser = Browser()
    try:
        browser.open(page.as_uri())
        charts = json.loads(browser.evaluate(CHART_SIZES))
        by_rule = browser.evaluate("document.querySelector('#rules').textContent")
        heading = "document.querySelector('#pairs th[data-key=mentor_messages]').click()"
        browser.evaluate(heading)
        ascending = browser.evaluate(FIRST_COLUMN)
        browser.evaluate(heading)
        descending = browser.evaluate(FIRST_COLUMN)
        browser.screenshot(tmp_path / "report.png")  # kept with the test's tmp_path
        errors, requested = browser.errors(), browser.requested()
    finally:
        browser.close()

    assert [chart["id"] for chart in charts] == [
        "chart-messages",
        "chart-active",
        "chart-replies",
        "chart-checkins",
        "chart-moderation",
    ]
    for chart in charts:  # 8 x 3 inches: 768 x 288 CSS pixels, with something drawn
        assert (chart["width"], chart["height"]) == (768, 288), chart["id"]
        assert chart["drawn"] > 10 and "nothing in this period" not in chart["text"], chart["id"]
    assert "spring" in charts[0]["text"] and "autumn" in charts[0]["text"]
    assert "links" in charts[4]["text"] and "too eager" in by_rule
    p1, p2, p3, p4 = programme.pairs  # mentor messages: 3, 2, 0, 8
    assert ascending == [p3, p2, p1, p4]
    assert descending == [p4, p1, p2, p3]
    assert errors == []
    assert requested == [page.as_uri()]  # nothing else loaded: no network, no CDN
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# Last: on PostgreSQL its fresh database empties the one the module's programme is in.
def test_an_empty_programme_is_a_clear_error(config_path: Path, store: db.Store):
    result = run(config_path, "report")
    assert result.exit_code == 1
    assert result.output.strip() == "Error: the programme has no pairs yet: nothing to report"


def test_ctrl_c_stops_the_report_with_no_traceback_and_no_process_left(programme: Programme):
    """Ctrl-C reaches the terminal's process group: the report says "Aborted!" (not a
    database error from cleaning up after the interrupted statement), prints no partial
    report, and its second process is stopped and gone."""
    import os
    import signal
    import sys

    command = [sys.executable, "-m", "relay", "-c", str(programme.config_path), "report"]
    report = subprocess.Popen(
        [*command, "--json", "--until", programme.until],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # the process group a terminal would interrupt
    )
    second = wait_for(lambda: _second_process(report), 30, "the second process")
    # Once the second process's Python catches SIGINT, an interrupt reaching it would be a
    # KeyboardInterrupt and a traceback (before that it would just end it, silently).
    wait_for(lambda: _catches_sigint(second), 30, "the second process's Python")
    os.killpg(report.pid, signal.SIGINT)
    stdout, stderr = report.communicate(timeout=30)
    assert report.returncode == 1
    assert stderr.decode().strip() == "Aborted!", stderr.decode()
    assert stdout == b""
    # The report waits for it before exiting; the bound only spares a loaded machine's
    # scheduler a false alarm, and a process left behind still fails.
    wait_for(lambda: not _running(second), 10, "the second process to be gone")


def _second_process(report: subprocess.Popen[bytes]) -> int | None:
    """The report's child running relay.reports.second_process (not any other child)."""
    from relay.reports.parallel import ENTRY_POINT

    assert report.poll() is None, "the report ended before its second process was seen"
    children = Path(f"/proc/{report.pid}/task/{report.pid}/children").read_text().split()
    for child in children:
        with contextlib.suppress(OSError):
            if ENTRY_POINT in Path(f"/proc/{child}/cmdline").read_bytes().decode():
                return int(child)
    return None


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _catches_sigint(pid: int) -> bool:
    import signal

    status = Path(f"/proc/{pid}/status").read_text()
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGINT - 1)))
