"""The database: engines and column types for SQLite and PostgreSQL (``engine``), the
models' base (``model``) and Alembic migrations run from code (``migrate``)."""
