"""The summary `relay report` prints: the cohorts as a table, then moderation and focus.

Owns the plain-text rendering only; the figures come from relay.reports.build.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

HEADERS = (
    "COHORT",
    "PAIRS",
    "ACTIVE",
    "PAUSED",
    "ENDED EARLY",
    "COMPLETED",
    "MSGS/PAIR/MONTH",
    "MEDIAN REPLY",
    "CHECK-IN MEAN",
    "PROMPTS ANSWERED",
)


def _number(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:g}{unit}"


def _cells(name: str, row: dict[str, Any]) -> tuple[str, ...]:
    return (
        name,
        str(row["pairs"]),
        str(row["active"]),
        str(row["paused"]),
        str(row["ended_early"]),
        str(row["completed"]),
        _number(row["messages_per_pair_per_month"]),
        _number(row["median_reply_hours"], " h"),
        _number(row["checkin_mean"]),
        _number(row["prompts_answered_pct"], "%"),
    )


def _counts(found: dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in found.items())


def summary_lines(report: dict[str, Any], table: Callable[..., None]) -> list[str]:
    """Print the cohort table with ``table`` (relay.commands.context.table); return the rest."""
    period = report["period"]
    rows = [_cells(row["cohort"] or "(no cohort)", row) for row in report["cohorts"]]
    if len(rows) != 1:
        rows.append(_cells("all", report["summary"]))
    table(HEADERS, rows)
    lines = []
    summary = report["summary"]
    if summary["ended_early"]:
        lines.append(
            f"ended early: {_counts(summary['ended_early_by_reason'])}"
            f" (ended by: {_counts(summary['ended_early_by_who'])})"
        )
    moderation = report["moderation"]
    lines.append(
        f"moderation: {moderation['held']} held, {moderation['approved']} approved, "
        f"{moderation['approved_redacted']} approved with redaction, "
        f"{moderation['rejected']} rejected, {moderation['discarded']} discarded, "
        f"{moderation['waiting']} waiting; decided in "
        f"{_number(moderation['median_decision_hours'], ' h')} (median), "
        f"{_number(moderation['p90_decision_hours'], ' h')} (90th percentile)"
    )
    if moderation["oldest_waiting_since"]:
        since = moderation["oldest_waiting_since"][:16].replace("T", " ")
        waited = _number(moderation["oldest_waiting_hours"], " h")
        lines.append(f"oldest waiting: since {since} UTC ({waited})")
    for rule in moderation["rules"]:
        share = rule["approved_unchanged_share"]
        eager = (
            "  <- too eager: most of its holds are approved unchanged" if rule["too_eager"] else ""
        )
        shown = "-" if share is None else f"{round(100 * share)}%"
        lines.append(
            f"  rule {rule['rule']}: held {rule['held']}, approved unchanged {shown}{eager}"
        )
    lines.append(
        f"focus: {len(report['focus'])} pair(s) need a coordinator (relay focus lists why)"
    )
    since = period["since"] or "the beginning"
    lines.append(f"period: {since} to {period['until'][:16].replace('T', ' ')} UTC")
    return lines
