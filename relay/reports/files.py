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
    """The report as json.dumps(..., indent=2, ensure_ascii=False) writes it, byte for byte.

    The pairs table is most of it (tens of thousands of rows), and json.dumps
    with an indent writes it with the pure-Python encoder; each row here is
    one call to the C encoder, whose item separator carries the newline and
    the row's indentation. Everything else goes through json.dumps.
    """
    shown = {key: value for key, value in report.items() if key != "series"}
    parts = []
    for key, value in shown.items():
        if key == "pairs" and value:
            text = "[\n" + ",\n".join(_pair_row(row) for row in value) + "\n  ]"
        else:
            text = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        parts.append(f"  {json.dumps(key, ensure_ascii=False)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}" if parts else "{}"


# One pair row's items, one per line, at the depth a row of the "pairs" list has.
_ROW_ITEMS = json.JSONEncoder(ensure_ascii=False, separators=(",\n      ", ": "))
_CONTAINERS = (dict, list)


def _pair_row(row: dict[str, Any]) -> str:
    """A row as json.dumps(report, indent=2) writes it inside the "pairs" list."""
    nested = [key for key, value in row.items() if type(value) in _CONTAINERS and value]
    if nested == ["focus"] and next(reversed(row)) == "focus":
        # Plain values, then the list of focus reasons last: the row with an empty list
        # in one call, then the list as indent=2 writes it at that depth.
        text = _ROW_ITEMS.encode({**row, "focus": []})
        reasons = ",\n        ".join(json.dumps(item, ensure_ascii=False) for item in row["focus"])
        text = text[: -len("[]}")] + "[\n        " + reasons + "\n      ]}"
    elif not nested:
        text = _ROW_ITEMS.encode(row)
    else:
        return "    " + json.dumps(row, indent=2, ensure_ascii=False).replace("\n", "\n    ")
    if text == "{}":
        return "    {}"
    return "    {\n      " + text[1:-1] + "\n    }"


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
