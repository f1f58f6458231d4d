"""What the daemon checks now and then for safeguarding.

Owns one call, `run(session, config, notices)`, that the daemon's periodic
task makes every [safeguarding] check_interval: overdue holds (leads told
once per message) and background-check expiry (warnings, pauses). It is a
plain function so that a programme scheduler can call it instead.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from relay.config import Config
from relay.delivery.notices import Notices
from relay.safeguarding.consent_checks import check_expiries
from relay.safeguarding.overdue import alert_overdue


def run(session: Session, config: Config, notices: Notices) -> bool:
    """True if a notice was queued (so the delivery worker should wake)."""
    overdue = alert_overdue(session, config, notices)
    checks = check_expiries(session, config, notices)
    return bool(overdue and config.safeguarding.leads) or bool(checks)
