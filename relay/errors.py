"""The exception tree of mentor-relay.

Every error the relay raises on purpose derives from ``RelayError``; the CLI
prints ``str(error)`` and exits non-zero, the SMTP source turns the ones that
carry an SMTP reply into that reply, and anything else becomes a 451.

    RelayError
    ├── ConfigError            relay.toml is missing, unreadable or wrong
    │   └── RulesConfigError   the [rules] table is wrong (relay.rules)
    ├── ImapError              the mailbox cannot be reached or used right now
    ├── DatabaseError
    │   └── SchemaBehindError  the database needs `relay db upgrade`
    ├── InvalidInputError      a name, address or value given by the user is malformed
    ├── NotFoundError          an address, participant, pair or message id
    │                          named on the command line does not exist
    ├── ConflictError          the operation contradicts the current state
    │                          (a duplicate participant, an ended pair ...)
    └── RefusedError           intake refuses a message; carries the SMTP reply

Outside the tree on purpose: relay.transports' TemporaryFailure and
PermanentFailure (a delivery attempt's outcome, never shown to a user as an
error), and matching's ProfileError, SettingsError and ProposalError
(matching never imports relay; the CLI turns them into messages).
"""

from __future__ import annotations

from relay.mail.replies import Reply


class RelayError(Exception):
    """Base of every error the relay raises on purpose."""


class ConfigError(RelayError):
    """The configuration file, or an environment override, is invalid."""


class ImapError(RelayError):
    """The IMAP server cannot be used right now (refused login, dropped connection ...)."""


class DatabaseError(RelayError):
    """The database cannot be used as it is."""


class SchemaBehindError(DatabaseError):
    """The database schema is older than this version of the relay."""


class InvalidInputError(RelayError):
    """A name, address or other value given by the user cannot be used as it is."""


class NotFoundError(RelayError):
    """Something named by the user does not exist."""


class ConflictError(RelayError):
    """The request contradicts the current state of the store."""


class RefusedError(RelayError):
    """Intake refuses a message; ``reply`` is what the SMTP client is told."""

    def __init__(self, reply: Reply, detail: str = "") -> None:
        super().__init__(detail or reply.text)
        self.reply = reply
