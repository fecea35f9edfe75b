"""PostgreSQL advisory locks: so that processes starting together against one database (tuning
workers, cluster jobs) do not all create the same tables at once. Optuna's RDB storage and
MLflow's tracking store each create their schema on first use, and two concurrent `CREATE TABLE`s
of one name fail (`pg_type_typname_nsp_index`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

OPTUNA_SCHEMA_KEY = 0x6D7361_6F7074  # "msa" "opt": Optuna's tables
MLFLOW_SCHEMA_KEY = 0x6D7361_6D6C66  # "msa" "mlf": MLflow's tables


def is_postgresql(url: str) -> bool:
    return url.startswith(("postgresql://", "postgresql+psycopg://"))


@contextmanager
def schema_lock(url: str, key: int) -> Iterator[None]:
    """Hold advisory lock `key` on the database at `url` (a connection of its own) while the
    caller creates or checks its tables."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with holding_advisory_lock(engine, key):
            yield
    finally:
        engine.dispose()


@contextmanager
def holding_advisory_lock(engine, key: int) -> Iterator[None]:
    """Hold PostgreSQL's session-level advisory lock `key` on a connection of its own."""
    from sqlalchemy import text

    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            connection.commit()
