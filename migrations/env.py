"""Alembic environment: runs migrations on the engine the relay hands over.

`relay db upgrade` (relay.db.upgrade) passes its engine in
``config.attributes["engine"]``; there is no alembic.ini to keep in step.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from relay.store import safeguarding_models  # noqa: F401  (its tables join Base.metadata)
from relay.store.models import Base

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through `relay db upgrade`, not the alembic command")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
