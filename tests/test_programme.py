"""A cohort walks through its weeks against the running relay, ticked at chosen times.

The relay runs in-process (RunningRelay) and delivers to the sink smarthost;
`relay tick --at` plays the scheduler at the times the test picks, so 34
weeks pass in seconds. What is asserted is what participants receive at
the sink and what `relay schedule`, `relay checkins` and `relay focus` say.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from pathlib import Path

from relay.programme.curriculum import SAMPLE_CONTEXT, load_curriculum, shipped_folder
from relay.store import db
from tests.conftest import RunningRelay, Sink, mail, wait_for
from tests.programme_helpers import (
    from_checkin,
    next_monday,
    ok,
    pair_up,
    people,
    run,
    schedule,
    subjects_to,
    tick,
)


def curriculum_subjects() -> Counter[str]:
    curriculum = load_curriculum(shipped_folder())
    return Counter(
        curriculum.render(item.template, **(SAMPLE_CONTEXT | {"week": item.week})).subject
        for item in curriculum.items
    )


def test_a_cohort_walks_through_34_weeks_and_every_item_arrives_once_in_its_week(
    config_path: Path, relay: RunningRelay, store: db.Store, sink: Sink
):
    start = next_monday()
    ok(config_path, "cohort", "create", "spring", "--start", start.isoformat())
    (a, b, late) = people(config_path, 3)
    first = pair_up(config_path, *a, cohort="spring")
    second = pair_up(config_path, *b, cohort="spring")
    third = pair_up(config_path, *late)
    joined = ok(
        config_path,
        "cohort",
        "add",
        "spring",
        third,
        "--start",
        (start + timedelta(weeks=5)).isoformat(),
    )
    assert f"week 1 from {start + timedelta(weeks=5)}" in joined

    for week in range(41):
        monday = start + timedelta(weeks=week)
        tick(config_path, monday)
        if week % 3 == 0:
            tick(config_path, monday)  # a second tick at the same time sends nothing
            tick(config_path, monday, 9, 30)

    expected = curriculum_subjects()
    assert sum(1 for s in expected if s.startswith("Week")) == 23
    everyone = [*a, *b, *late]
    # intro + 23 curriculum items + completion + exit check-in + one quiet-pair nudge
    wait_for(
        lambda: all(len(sink.to(p)) >= 27 for p in everyone),
        timeout=30,
        what="every participant's programme mail",
    )
    for person in everyone:
        got = subjects_to(sink, person)
        curriculum_mail = Counter({s: n for s, n in got.items() if s in expected})
        assert curriculum_mail == expected, person  # every item, each exactly once
        assert got["You have finished the programme: thank you"] == 1
        assert got["One last question: how did it go?"] == 1
        assert got["It has gone quiet"] == 1
        assert len(sink.to(person)) == 27, got

    lines = schedule(config_path)
    assert {line["status"] for line in lines} == {"sent"}
    # Ticks ran at each Monday 09:00: every item went out at its own due time.
    assert all(line["done"] == line["due"] for line in lines)
    late_first = [row for row in lines if row["pair"] == third and row["week"] == 1]
    assert {row["done"][:10] for row in late_first} == {(start + timedelta(weeks=5)).isoformat()}
    shown = json.loads(ok(config_path, "cohort", "show", "spring", "--json"))
    assert {
        p["pair"]: (p["status"], p["ended_reason"], p["ended_by"]) for p in shown["pair_list"]
    } == {
        first: ("ended", "completed", "programme"),
        second: ("ended", "completed", "programme"),
        third: ("ended", "completed", "programme"),
    }

    # A prompt threads with the pair's conversation and comes from the pair address.
    prompt = next(
        r
        for r in sink.to(a[1])
        if r.message["Subject"] == "Week 2: what would make this worthwhile?"
    )
    assert prompt.message["From"].addresses[0].addr_spec == first
    assert str(prompt.message["From"].addresses[0].display_name) == "Test Programme programme"
    assert "programme@relay.test" in str(prompt.message["References"])

    # Renewal opens the pair again for more weeks, with the same address.
    renewed = ok(config_path, "pair", "renew", first, "--weeks", "4")
    assert "38 weeks" in renewed
    relay.send(mail(a[0], first, "Still here"), a[0], first)
    wait_for(lambda: "Still here" in subjects_to(sink, a[1]), what="mail after renewal")


def test_a_checkin_answered_with_2_is_listed_and_puts_the_pair_on_the_focus_list(
    config_path: Path, relay: RunningRelay, store: db.Store, sink: Sink
):
    start = next_monday()
    ok(config_path, "cohort", "create", "c", "--start", start.isoformat())
    ((mentor, mentee),) = people(config_path, 1)
    address = pair_up(config_path, mentor, mentee, cohort="c")
    tick(config_path, start + timedelta(weeks=3))  # week 4: the first check-in
    wait_for(lambda: any(from_checkin(r) for r in sink.to(mentee)), what="the check-in")
    question = next(r for r in sink.to(mentee) if from_checkin(r))
    reply_to = question.message["From"].addresses[0].addr_spec

    answer = mail(
        mentee,
        reply_to,
        "Re: " + str(question.message["Subject"]),
        "2 - we haven't really clicked yet\n\nOn Monday, Test Programme wrote:\n"
        "> on a scale of 1 to 5, how are things going?\n",
    )
    relay.send(answer, mentee, reply_to)

    listed = json.loads(ok(config_path, "checkins", "--json"))
    answered = [line for line in listed if line["answered_at"]]
    assert [(row["role"], row["score"], row["comment"]) for row in answered] == [
        ("mentee", 2, "we haven't really clicked yet")
    ]
    low = ok(config_path, "checkins", "--low")
    assert "Mentee 0" in low and " 2 " in low and "Mentor 0" not in low
    focus = json.loads(ok(config_path, "focus", "--json"))
    assert [(p["pair"], [r["reason"] for r in p["reasons"]]) for p in focus] == [
        (address, ["low check-in"])
    ]
    # The answer is for the programme team: nothing of it reaches the partner (a
    # message the mentee writes afterwards marks when the worker has caught up).
    relay.send(mail(mentee, address, "Marker", "hello"), mentee, address)
    wait_for(lambda: "Marker" in subjects_to(sink, mentor), what="the marker message")
    assert not any(b"clicked" in r.data for r in sink.to(mentor))

    # An answer with no number is kept, as "no score".
    mentor_question = next(r for r in sink.to(mentor) if from_checkin(r))
    mentor_reply_to = mentor_question.message["From"].addresses[0].addr_spec
    relay.send(mail(mentor, mentor_reply_to, "Re", "Going fine I think!"), mentor, mentor_reply_to)
    shown = ok(config_path, "checkins")
    assert "no score" in shown and "Going fine I think!" in shown


def test_strangers_partners_and_forgers_get_250_and_store_nothing(
    config_path: Path, relay: RunningRelay, store: db.Store, sink: Sink
):
    start = next_monday()
    ok(config_path, "cohort", "create", "c", "--start", start.isoformat())
    ((mentor, mentee),) = people(config_path, 1)
    pair_up(config_path, mentor, mentee, cohort="c")
    tick(config_path, start + timedelta(weeks=3))
    wait_for(lambda: any(from_checkin(r) for r in sink.to(mentee)), what="the check-in")
    reply_to = (
        next(r for r in sink.to(mentee) if from_checkin(r)).message["From"].addresses[0].addr_spec
    )
    local, _, domain = reply_to.partition("@")
    number, signature = local.removeprefix("checkin-").split("-")
    forged = [
        f"checkin-{number}-{'0' * 16}@{domain}",  # bad signature
        f"checkin-{int(number) ^ 1}-{signature}@{domain}",  # another id, same signature
        f"checkin-1-{signature}@{domain}",
    ]
    with relay.smtp() as client:
        for target in forged:
            refused = client.sendmail(mentee, [target], mail(mentee, target, "Re", "1").as_bytes())
            assert refused == {}
        # The partner and a stranger answering the mentee's question: dropped quietly.
        for sender in (mentor, "stranger@elsewhere.example"):
            refused = client.sendmail(
                sender, [reply_to], mail(sender, reply_to, "Re", "1 awful").as_bytes()
            )
            assert refused == {}
    listed = json.loads(ok(config_path, "checkins", "--json"))
    assert all(line["answered_at"] is None for line in listed)
    assert json.loads(ok(config_path, "focus", "--json")) == []


def test_silence_is_nudged_once_and_pause_stops_prompts(
    config_path: Path, relay: RunningRelay, store: db.Store, sink: Sink
):
    start = next_monday()
    ok(config_path, "cohort", "create", "c", "--start", start.isoformat())
    (quiet, paused) = people(config_path, 2)
    quiet_pair = pair_up(config_path, *quiet, cohort="c")
    paused_pair = pair_up(config_path, *paused, cohort="c")
    relay.send(mail(quiet[0], quiet_pair, "Hello from your mentor"), quiet[0], quiet_pair)
    tick(config_path, start)  # week 1
    ok(config_path, "pair", "pause", paused_pair)
    for day in range(1, 36):
        tick(config_path, start + timedelta(days=day), 10)

    wait_for(lambda: len(sink.to(quiet[1])) >= 1 + 5 + 1 + 1, what="the quiet pair's mail")
    wait_for(lambda: "It has gone quiet" in subjects_to(sink, quiet[0]), what="the quiet nudge")
    mentee_got = subjects_to(sink, quiet[1])
    mentor_got = subjects_to(sink, quiet[0])
    # The mentee, whose mentor wrote, is reminded once; the silence is not nudged again.
    assert mentee_got["Mentor 0 is waiting to hear from you"] == 1
    assert "It has gone quiet" not in mentee_got
    # Both silent since the start for 21 days: the mentor too, once.
    assert mentor_got["It has gone quiet"] == 1
    assert "Mentee 0 is waiting to hear from you" not in mentor_got

    # The paused pair got week 1 (before the pause) and nothing after it.
    paused_got = subjects_to(sink, paused[1])
    assert "Week 1: say hello properly" in paused_got
    assert not any(s.startswith("Week 2") or s.startswith("Week 3") for s in paused_got)
    assert "It has gone quiet" not in paused_got
    statuses = Counter(row["status"] for row in schedule(config_path) if row["pair"] == paused_pair)
    assert statuses["sent"] == 2 and statuses["paused"] > 0

    focus = json.loads(
        ok(
            config_path,
            "focus",
            "--json",
            "--at",
            (start + timedelta(days=35)).isoformat() + " 10:00",
        )
    )
    reasons = {p["pair"]: {r["reason"] for r in p["reasons"]} for p in focus}
    assert "one-sided silence" in reasons[quiet_pair]
    assert "unanswered prompts" in reasons[quiet_pair]

    # Resumed after weeks away: stale prompts are skipped, not sent in a burst.
    ok(config_path, "pair", "resume", paused_pair)
    tick(config_path, start + timedelta(days=36), 10)
    lines = [row for row in schedule(config_path) if row["pair"] == paused_pair]
    assert [
        row["week"] for row in lines if row["status"] == "skipped" and row["to"] == "mentee"
    ] == [
        2,
        3,
        5,
    ]
    # The week-4 check-in is still sent, late; week 5's prompt was 8 days late.
    assert [row["week"] for row in lines if row["status"] == "sent" and row["to"] == "mentee"] == [
        1,
        4,
    ]


def test_ending_a_pair_sends_closing_and_exit_checkin_and_records_who_and_why(
    config_path: Path, relay: RunningRelay, store: db.Store, sink: Sink
):
    start = next_monday()
    ok(config_path, "cohort", "create", "c", "--start", start.isoformat())
    ((mentor, mentee),) = people(config_path, 1)
    address = pair_up(config_path, mentor, mentee, cohort="c")
    ended = ok(config_path, "pair", "end", address, "--reason", "mentee-left", "--as", "coord")
    assert ended.strip() == f"ended {address} (mentee-left, by coord)"
    for person in (mentor, mentee):
        wait_for(lambda p=person: len(sink.to(p)) >= 3, what="closing and exit check-in")
        got = subjects_to(sink, person)
        assert (
            got[
                "Your mentoring with "
                + ("Mentee 0" if person == mentor else "Mentor 0")
                + " has ended"
            ]
            == 1
        )
        exit_question = [r for r in sink.to(person) if from_checkin(r)]
        assert len(exit_question) == 1
    shown = json.loads(ok(config_path, "cohort", "show", "c", "--json"))
    assert [(p["status"], p["ended_reason"], p["ended_by"]) for p in shown["pair_list"]] == [
        ("ended", "mentee-left", "coord")
    ]
    # The exit check-in can be answered; the pair address refuses mail as before.
    reply_to = (
        next(r for r in sink.to(mentee) if from_checkin(r)).message["From"].addresses[0].addr_spec
    )
    relay.send(mail(mentee, reply_to, "Re", "4, thanks for everything"), mentee, reply_to)
    listed = json.loads(ok(config_path, "checkins", "--json"))
    assert [(row["item"], row["score"]) for row in listed if row["answered_at"]] == [("exit", 4)]
    with relay.smtp() as client:
        client.ehlo()
        client.mail(mentor)
        code, _ = client.rcpt(address)
    assert code == 550
    # Nothing scheduled goes to an ended pair.
    tick(config_path, start + timedelta(weeks=2))
    assert not any(row["status"] == "sent" for row in schedule(config_path))
    again = run(config_path, "pair", "end", address, "--reason", "other")
    assert again.exit_code == 1 and "has already ended" in again.output


def test_match_apply_puts_pairs_in_a_cohort_with_the_profiles_time_zones(
    tmp_path: Path, config_path: Path, store: db.Store
):
    from sqlalchemy import select

    from relay.store.models import Participant
    from tests.test_match_cli import MENTEES, MENTORS

    (tmp_path / "mentors.csv").write_text(MENTORS)
    (tmp_path / "mentees.csv").write_text(MENTEES)
    proposals = tmp_path / "proposals.csv"
    proposals.write_text(
        "mentee_email,mentee_name,mentor_email,mentor_name\n"
        "lea@school.example.net,Lea,ana@mentors.example.org,Ana Ruiz\n"
    )
    start = next_monday()
    ok(config_path, "cohort", "create", "c", "--start", start.isoformat())
    applied = ok(
        config_path,
        "match",
        "apply",
        str(proposals),
        "--cohort",
        "c",
        "--mentors",
        str(tmp_path / "mentors.csv"),
        "--mentees",
        str(tmp_path / "mentees.csv"),
    )
    assert "1 pair created" in applied
    with store.session() as session:
        zones = dict(session.execute(select(Participant.email, Participant.time_zone)).all())
    assert zones == {
        "ana@mentors.example.org": "Europe/Madrid",
        "lea@school.example.net": "Europe/Madrid",
    }
    shown = json.loads(ok(config_path, "cohort", "show", "c", "--json"))
    assert [p["started_on"] for p in shown["pair_list"]] == [start.isoformat()]
    # Week 1 at 09:00 in Madrid is 08:00 UTC in winter, 07:00 in summer.
    due = {line["due"][11:16] for line in schedule(config_path) if line["week"] == 1}
    assert due <= {"08:00", "07:00"} and len(due) == 1


def test_list_unsubscribe_switches_off_prompts_and_nudges_but_not_checkins(
    config_path: Path, relay: RunningRelay, store: db.Store, sink: Sink
):
    start = next_monday()
    ok(config_path, "cohort", "create", "c", "--start", start.isoformat())
    ((mentor, mentee),) = people(config_path, 1)
    address = pair_up(config_path, mentor, mentee, cohort="c")
    tick(config_path, start)
    wait_for(lambda: "Week 1: say hello properly" in subjects_to(sink, mentee), what="week 1")
    prompt = next(
        r for r in sink.to(mentee) if r.message["Subject"] == "Week 1: say hello properly"
    )
    header = str(prompt.message["List-Unsubscribe"])
    assert header.startswith("<mailto:unsubscribe-") and header.endswith("?subject=unsubscribe>")
    target = header.removeprefix("<mailto:").split("?")[0]
    local, _, domain = target.partition("@")
    forged = f"{local[:-1]}{'0' if local[-1] != '0' else '1'}@{domain}"
    relay.send(mail(mentee, forged, "unsubscribe", "unsubscribe"), mentee, forged)
    tick(config_path, start + timedelta(weeks=1))
    wait_for(
        lambda: "Week 2: what would make this worthwhile?" in subjects_to(sink, mentee),
        what="week 2 (a forged unsubscribe changes nothing)",
    )

    relay.send(mail(mentee, target, "unsubscribe", "unsubscribe"), mentee, target)
    for week in (2, 3, 4):
        tick(config_path, start + timedelta(weeks=week))
    wait_for(lambda: any(from_checkin(r) for r in sink.to(mentee)), what="the week-4 check-in")
    wait_for(
        lambda: "Week 3: how do you like to work together?" in subjects_to(sink, mentor),
        what="the mentor's week 3",
    )
    got = subjects_to(sink, mentee)
    assert "Week 3: how do you like to work together?" not in got
    assert "It has gone quiet" not in got  # reminders off: no nudge either
    wait_for(lambda: "It has gone quiet" in subjects_to(sink, mentor), what="the mentor's nudge")
    assert subjects_to(sink, mentor)["It has gone quiet"] == 1
    lines = [r for r in schedule(config_path) if r["pair"] == address and r["to"] == "mentee"]
    assert [(r["week"], r["status"]) for r in lines if r["week"] <= 4] == [
        (1, "sent"),
        (2, "sent"),
        (3, "skipped"),
        (4, "sent"),
    ]
    assert "reminders on" in ok(config_path, "participant", "reminders", mentee, "on")
