"""The curricula a relay is using: the default one and each cohort's, loaded once.

Owns keeping every curriculum checked and in memory. ``reload`` reads them
all again (SIGHUP); if any is broken, it keeps the ones it had and says why.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from relay.config import Config
from relay.programme.curriculum import Curriculum, CurriculumError, load_curriculum, resolve_folder
from relay.store.models import Cohort

log = logging.getLogger(__name__)


def default_folder(config: Config) -> Path:
    return resolve_folder(config.programme.curriculum, config.source.parent)


def cohort_folder(config: Config, stored: str) -> Path:
    """A cohort's curriculum folder: stored absolute; '' means the relay's default."""
    return Path(stored) if stored else default_folder(config)


class Curricula:
    def __init__(self) -> None:
        self.loaded: dict[str, Curriculum] = {}  # by the cohort's stored folder ("" default)

    def get(self, config: Config, stored: str) -> Curriculum | None:
        """A cohort's curriculum, loaded on first use (a cohort made while running)."""
        found = self.loaded.get(stored)
        if found is not None:
            return found
        try:
            found = load_curriculum(cohort_folder(config, stored))
        except CurriculumError as error:
            log.error("cannot use a cohort's curriculum: %s", error)
            return None
        self.loaded[stored] = found
        return found

    def load(self, session: Session, config: Config) -> None:
        """Load the default and every cohort's curriculum; raise CurriculumError if one is bad."""
        folders = {""} | set(session.scalars(select(Cohort.curriculum).distinct()))
        loaded = {stored: load_curriculum(cohort_folder(config, stored)) for stored in folders}
        self.loaded = loaded

    def reload(self, session: Session, config: Config) -> bool:
        try:
            self.load(session, config)
        except CurriculumError as error:
            log.error("curriculum reload failed, keeping the old ones: %s", error)
            return False
        return True
