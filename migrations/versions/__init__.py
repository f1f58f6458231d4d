"""The migrations, one file per schema revision, in one linear chain (see docs/operations.md)."""
