"""The programme's fixed words and limits, importable without loading anything heavy.

The command line names them in its options (`--reason`, `--weeks`) before any
command runs, so this module imports nothing.
"""

from __future__ import annotations

#: Why a pair ended (`relay pair end --reason`); stored in pairs.ended_reason.
END_REASONS = ("completed", "mentor-left", "mentee-left", "no-contact", "safeguarding", "other")
MAX_WEEKS = 520
