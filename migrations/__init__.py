"""Alembic migrations of the relay's store (shipped as package data)."""
