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
import time
from datetime import UTC, datetime
from typing import Any

from relay.settings import LogFormat


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._second = -1
        self._second_text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # The date and time to the second, worked out once a second, not once a line.
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
            self._second = second
        return f"{self._second_text},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            line += " " + " ".join([f"{key}={_text(value)}" for key, value in fields.items()])
        return line


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def _time(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second_text = datetime.fromtimestamp(second, UTC).isoformat()
            self._second = second
        # isoformat(timespec="milliseconds") truncates; so does int() here.
        text = self._second_text
        return f"{text[:19]}.{int((created - second) * 1000):03d}{text[19:]}"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
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
    if type(value) is str:  # most fields: as they are
        return value
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "-"
    return str(value)


def configure(level: str, log_format: LogFormat) -> None:
    # No line shows the thread, the process or the calling line: LogRecord need not work
    # them out (findCaller walks the stack) for every line, a message's decision included.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
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
