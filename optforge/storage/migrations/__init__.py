"""Alembic migrations of optforge's tables, applied by ``optforge.storage.migrate.upgrade``."""
