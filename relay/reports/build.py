"""A whole report: the period checked, every table queried, the focus list joined in.

Owns the order of the work and the report's shape, one object
{"period", "summary", "pairs", "cohorts", "moderation", "focus"} (plus the
charts' series for the page). The focus list is the programme's own
(relay.programme.focus), as of the report's moment, fed with what the report
has read already (when each side last wrote, the last two prompts); each
pair's row carries its reasons. The reply times are read by a second process
(relay.reports.parallel) on the same snapshot while this one reads every
other table; they are waited for only when nothing else is left.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Subquery

from relay.config import Config
from relay.errors import NotFoundError
from relay.programme.focus import focus_list
from relay.programme.focus_inputs import FocusInputs
from relay.reports import parallel
from relay.reports.cohorts import cohort_rows, read_cohort_figures
from relay.reports.held import held_messages
from relay.reports.moderation import moderation_figures
from relay.reports.pairs import PairQuery, add_reply_medians, message_stats, pair_rows
from relay.reports.period import Period
from relay.reports.prompts import pair_prompts
from relay.reports.replies import ReplyFigures, ReplyPass
from relay.reports.selection import selected_pairs
from relay.reports.series import chart_series, checkin_scores
from relay.reports.sql import Dialect, allow_long_statements
from relay.rules.base import Action
from relay.store.db import Store
from relay.store.models import Pair


def build_report(
    store: Store,
    config: Config,
    period: Period,
    with_addresses: bool = False,
    with_series: bool = False,
    second: parallel.SecondProcess | None = None,
) -> dict[str, Any]:
    """second: the process that reads the reply times, started by the caller as early as
    it can (relay.reports.parallel); one is started here if not given."""
    with store.read_session() as session:
        cohort_id = _checked_cohort(session, period)
    selection = selected_pairs(period, cohort_id)
    # The reply times, the largest pass, are read by the second process while this one
    # reads the rest, both on one snapshot.
    replies = ReplyPass(period, cohort_id, with_series)
    with (
        store.read_session() as session,
        parallel.beside(store, session, replies, second) as pending,
    ):
        dialect = Dialect(session.get_bind().dialect.name)
        allow_long_statements(session, dialect)
        if not session.scalar(select(func.count()).select_from(selection)):
            where = f" in cohort {period.cohort!r}" if period.cohort else ""
            raise NotFoundError(f"no pairs{where} were matched and open in that period")
        with held_messages(session, dialect, period, selection) as held:
            return _report(
                session,
                config,
                dialect,
                period,
                selection,
                held,
                with_addresses,
                with_series,
                pending,
            )


def _checked_cohort(session: Session, period: Period) -> int | None:
    """The cohort asked for (None: every pair); a clear error when there is nothing to report."""
    cohort_id = None
    if period.cohort:
        # Imported here: relay.programme.cohorts pulls in the curricula and notices.
        from relay.programme.cohorts import find_cohort

        cohort_id = find_cohort(session, period.cohort).id
    if not session.scalar(select(func.count()).select_from(Pair)):
        raise NotFoundError("the programme has no pairs yet: nothing to report")
    return cohort_id


def _report(
    session: Session,
    config: Config,
    dialect: Dialect,
    period: Period,
    selection: Subquery,
    held: Table,
    with_addresses: bool,
    with_series: bool,
    pending: parallel.Pending[ReplyFigures],
) -> dict[str, Any]:
    domain = config.relay.domain
    query = PairQuery(session, dialect, period, selection, held, domain, with_addresses)
    # Everything that does not need the reply times first, while the second process
    # reads them.
    stats = message_stats(query)
    prompts = pair_prompts(session, period, selection)
    pairs = pair_rows(query, stats, prompts)
    # The focus list reads what the report's own passes over messages and prompts found.
    shared = FocusInputs(
        pairs={row["id"] for row in pairs},
        last_written={
            pair_id: {sender: figures.latest for sender, figures in sides.items()}
            for pair_id, sides in stats.items()
        },
        last_prompts={pair_id: found.last_two for pair_id, found in prompts.items()},
    )
    listed = focus_list(session, config, period.as_of, period.cohort, shared)
    focus: list[dict[str, Any]] = [entry.to_json() for entry in listed]
    by_address = {row["address"]: row for row in pairs}
    focus = [entry for entry in focus if entry["pair"] in by_address]
    for entry in focus:
        by_address[entry["pair"]]["focus"] = [reason["reason"] for reason in entry["reasons"]]
    actions: Mapping[str, Action] = config.rules.actions
    accepting = {rule for rule, action in actions.items() if action is Action.ACCEPT}
    moderation = moderation_figures(session, dialect, period, held, accepting)
    cohort_figures = read_cohort_figures(session, dialect, period, selection)
    checkins = checkin_scores(session, dialect, period, selection) if with_series else {}
    medians, histogram, weekly = pending.result()
    add_reply_medians(pairs, medians)
    cohorts, summary = cohort_rows(cohort_figures, histogram, pairs)
    report: dict[str, Any] = {
        "period": period.to_json(),
        "summary": summary,
        "pairs": pairs,
        "cohorts": cohorts,
        "moderation": moderation,
        "focus": focus,
    }
    if weekly is not None:
        report["series"] = chart_series(cohort_figures.names, period, histogram, weekly, checkins)
    return report
