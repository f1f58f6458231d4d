"""How the relay logs: one line per event, as text or JSON, never a real address at INFO.

Owns the handler and formatter `relay serve` installs (``--log-format
text|json``, ``[logging] level``, ``[logging] format``), and quiets the
libraries that would log envelope addresses at INFO (aiosmtpd's mail.log)
or chatter at every start (Alembic).
Structured fields passed as ``extra={"fields": {...}}`` become JSON keys, or
``key=value`` pairs at the end of a text line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from relay.settings import LogFormat


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            line += " " + " ".join(f"{key}={_text(value)}" for key, value in fields.items())
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _text(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "-"
    return str(value)


def configure(level: str, log_format: LogFormat) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiosmtpd logs every envelope address at INFO; addresses stay out of our logs.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    # Alembic says "Context impl SQLiteImpl" at INFO whenever the schema is checked.
    logging.getLogger("alembic").setLevel(logging.WARNING)
