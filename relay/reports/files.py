"""The report as data: one JSON object, or one CSV file per table.

Owns the flat shape of the CSV files (pairs.csv, cohorts.csv,
moderation.csv): nested figures become columns named `figure.key`, lists
are joined with "; ", and moderation.csv has one row per rule after the
"(all)" row of totals.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any


def to_json(report: dict[str, Any]) -> str:
    shown = {key: value for key, value in report.items() if key != "series"}
    return json.dumps(shown, indent=2, ensure_ascii=False)


def flat(row: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            for inner, item in value.items():
                found[f"{key}.{inner}"] = item
        elif isinstance(value, list):
            found[key] = "; ".join(str(item) for item in value)
        else:
            found[key] = value
    return found


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    flattened = [flat(row) for row in rows]
    columns: list[str] = []
    for row in flattened:
        columns += [key for key in row if key not in columns]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(flattened)


def write_csv_folder(folder: Path, report: dict[str, Any]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    moderation = dict(report["moderation"])
    rules = moderation.pop("rules")
    tables = {
        "pairs.csv": report["pairs"],
        "cohorts.csv": [*report["cohorts"], {"cohort": "(all)", **report["summary"]}],
        "moderation.csv": [{"rule": "(all)", **moderation}, *rules],
    }
    written = []
    for name, rows in tables.items():
        path = folder / name
        write_csv(path, rows)
        written.append(path)
    return written
