"""The report as one self-contained HTML page: figures, charts, focus list, pairs.

Owns the page: templates/report/page.html.j2 rendered with jinja2
(autoescaped), the charts from relay.reports.charts inlined as SVG, the
style and the table-sorting script inline, and a Content-Security-Policy
that lets nothing load from anywhere, so the file opens offline and can be
sent on as it is.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup, escape

from relay.reports.charts import all_charts

TEMPLATE = "report/page.html.j2"

# (key in the pair row, heading, numeric)
PAIR_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("address", "pair", False),
    ("cohort", "cohort", False),
    ("mentor", "mentor", False),
    ("mentee", "mentee", False),
    ("state", "state", False),
    ("days_since_matched", "days since matched", True),
    ("mentor_days_to_first", "days to mentor's first", True),
    ("mentee_days_to_first", "days to mentee's first", True),
    ("mentor_messages", "mentor messages", True),
    ("mentee_messages", "mentee messages", True),
    ("mentor_per_30_days", "mentor per 30 days", True),
    ("mentee_per_30_days", "mentee per 30 days", True),
    ("mentor_share", "mentor's share", True),
    ("mentor_median_reply_hours", "mentor median reply (h)", True),
    ("mentee_median_reply_hours", "mentee median reply (h)", True),
    ("mentor_days_silent", "days since mentor wrote", True),
    ("mentee_days_silent", "days since mentee wrote", True),
    ("prompts_answered", "prompts answered", True),
    ("prompts_unanswered", "prompts unanswered", True),
    ("mentor_checkin", "mentor check-in", True),
    ("mentee_checkin", "mentee check-in", True),
    ("held", "held", True),
    ("rejected", "rejected", True),
    ("focus", "focus", False),
)
ADDRESS_COLUMNS = (
    ("mentor_address", "mentor address", False),
    ("mentee_address", "mentee address", False),
)


def _number(value: Any, unit: str = "") -> str:
    return "–" if value is None else f"{value:g}{unit}"


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{round(100 * share)}%"


def _counts(found: dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in found.items()) or "–"


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, list):
        return "; ".join(str(item) for item in value)
    return str(value)


def _pair_rows(pairs: list[dict[str, Any]], columns: list[tuple[str, str, bool]]) -> Markup:
    """The pairs table's rows, escaped (tens of thousands of rows: a jinja loop per cell
    was most of the page's time). One format string per row; numbers need no escaping."""
    row_format = "<tr>{}</tr>\n".format(
        "".join('<td class="n">{}</td>' if numeric else "<td>{}</td>" for _, _, numeric in columns)
    )
    keyed = [(key, numeric) for key, _, numeric in columns]
    lines = [
        row_format.format(
            *[
                ("–" if row[key] is None else row[key]) if numeric else escape(_cell(row[key]))
                for key, numeric in keyed
            ]
        )
        for row in pairs
    ]
    return Markup("".join(lines))


def _focus_rows(focus: list[dict[str, Any]]) -> Markup:
    """The focus table's rows, one per reason (thousands of them in a large programme)."""
    lines = []
    for entry in focus:
        pair, cohort = escape(entry["pair"]), escape(entry["cohort"])
        for reason in entry["reasons"]:
            lines.append(
                f"<tr><td>{pair}</td><td>{cohort}</td><td>{escape(reason['reason'])}</td>"
                f"<td>{escape(reason['since'][:10])}</td><td>{escape(reason['detail'])}</td></tr>\n"
            )
    return Markup("".join(lines))


def render_page(report: dict[str, Any], programme: str) -> str:
    columns = list(PAIR_COLUMNS)
    if report["pairs"] and "mentor_address" in report["pairs"][0]:
        columns[4:4] = ADDRESS_COLUMNS
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    source = resources.files("relay.templates").joinpath(TEMPLATE).read_text(encoding="utf-8")
    template = environment.from_string(source)
    period = report["period"]
    since = period["since"] or "the beginning"
    cohort = f", cohort {period['cohort']}" if period["cohort"] else ""
    period_text = f"From {since} to {period['until'][:16].replace('T', ' ')} UTC{cohort}."
    # For the page, the focus rows keep their reasons list; the pairs' "focus" cell joins them.
    return template.render(
        programme=programme,
        period_text=period_text,
        summary=report["summary"],
        cohorts=report["cohorts"],
        moderation=report["moderation"],
        focus=report["focus"],
        focus_rows=_focus_rows(report["focus"]),
        pair_columns=columns,
        pair_rows=_pair_rows(report["pairs"], columns),
        charts=all_charts(report),
        number=_number,
        percent=_percent,
        counts=_counts,
        cell=_cell,
    )
