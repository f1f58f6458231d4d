"""The page's charts, drawn with matplotlib and kept as inline SVG.

Owns how each series looks: messages per week per cohort, active pairs per
week, reply times by band, check-in scores per week, and moderation
outcomes per rule. Every chart is WIDTH x HEIGHT inches (in the page:
WIDTH*72 x HEIGHT*72 pt, i.e. 768 x 288 CSS px), text as SVG text (the
page's font, a smaller file), ids salted so the same data gives the same
SVG. matplotlib's object API (Figure, no pyplot): no GUI backend, no global
state.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib.backends.backend_svg  # noqa: F401  (else imported by the first chart)
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure

WIDTH, HEIGHT = 8.0, 3.0
OUTCOME_COLOURS = {
    "approved": "#4c9a2a",
    "approved_redacted": "#a4c639",
    "rejected": "#c0392b",
    "discarded": "#7f8c8d",
    "waiting": "#f39c12",
}
RC: Any = {"svg.fonttype": "none", "svg.hashsalt": "mentor-relay-report", "font.size": 9}


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    with rc_context(RC):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _figure(title: str) -> tuple[Figure, Axes]:
    with rc_context(RC):
        figure = Figure(figsize=(WIDTH, HEIGHT), layout="constrained")
        axes = figure.add_subplot()
        axes.set_title(title, loc="left", fontsize=10)
    return figure, axes


def _weeks_axis(axes: Axes, weeks: list[str]) -> None:
    step = max(1, len(weeks) // 10)
    axes.set_xticks(range(0, len(weeks), step), [weeks[i][5:] for i in range(0, len(weeks), step)])
    axes.set_xlabel("week starting (MM-DD, UTC)")


def _nothing(axes: Axes) -> None:
    axes.text(0.5, 0.5, "nothing in this period", ha="center", va="center")
    axes.set_xticks([])
    axes.set_yticks([])


def weekly_lines(title: str, series: dict[str, dict[str, float]], label: str) -> str:
    with rc_context(RC):
        figure, axes = _figure(title)
        weeks = sorted({week for values in series.values() for week in values})
        if not weeks:
            _nothing(axes)
            return _svg(figure)
        for name, values in sorted(series.items()):
            points = [(i, values[week]) for i, week in enumerate(weeks) if week in values]
            axes.plot([x for x, _ in points], [y for _, y in points], marker="o", ms=3, label=name)
        _weeks_axis(axes, weeks)
        axes.set_ylabel(label)
        axes.legend(loc="upper left", fontsize=8)
        return _svg(figure)


def weekly_bars(title: str, values: dict[str, int], label: str) -> str:
    with rc_context(RC):
        figure, axes = _figure(title)
        weeks = sorted(values)
        if not weeks:
            _nothing(axes)
            return _svg(figure)
        axes.bar(range(len(weeks)), [values[week] for week in weeks], color="#2e86c1")
        _weeks_axis(axes, weeks)
        axes.set_ylabel(label)
        return _svg(figure)


def reply_bands(title: str, bands: dict[str, dict[str, int]]) -> str:
    with rc_context(RC):
        figure, axes = _figure(title)
        labels = list(next(iter(bands.values())))
        if not any(sum(counts.values()) for counts in bands.values()):
            _nothing(axes)
            return _svg(figure)
        width = 0.4
        for offset, (side, counts) in enumerate(bands.items()):
            xs = [i + (offset - 0.5) * width for i in range(len(labels))]
            axes.bar(xs, [counts[label] for label in labels], width, label=f"{side} replies")
        axes.set_xticks(range(len(labels)), labels)
        axes.set_ylabel("replies")
        axes.legend(fontsize=8)
        return _svg(figure)


def rule_outcomes(title: str, rules: list[dict[str, Any]]) -> str:
    with rc_context(RC):
        figure, axes = _figure(title)
        if not rules:
            _nothing(axes)
            return _svg(figure)
        names = [rule["rule"] for rule in rules]
        left = [0] * len(rules)
        for outcome, colour in OUTCOME_COLOURS.items():
            counts = [rule[outcome] for rule in rules]
            axes.barh(names, counts, left=left, color=colour, label=outcome.replace("_", " "))
            left = [a + b for a, b in zip(left, counts, strict=True)]
        axes.invert_yaxis()
        axes.set_xlabel("held messages")
        axes.legend(fontsize=8, loc="lower right")
        return _svg(figure)


def all_charts(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(id, SVG) of every chart of the page, in page order."""
    series = report["series"]
    return [
        (
            "messages",
            weekly_lines("Messages per week, per cohort", series["messages_per_week"], "messages"),
        ),
        (
            "active",
            weekly_bars(
                "Active pairs (wrote that week or the week before)",
                series["active_pairs"],
                "pairs",
            ),
        ),
        ("replies", reply_bands("Reply times", series["reply_bands"])),
        (
            "checkins",
            weekly_lines(
                "Check-in scores (mean of the week's answers, 1–5)",
                series["checkin_scores"],
                "score",
            ),
        ),
        (
            "moderation",
            rule_outcomes("Moderation decisions per rule", report["moderation"]["rules"]),
        ),
    ]
