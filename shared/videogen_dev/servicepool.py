"""The connection pool a local platform service (the Storage and Auth APIs) opens on first
use: one per service and process, its connections checked on checkout so a Postgres
restart under a running dev server costs nothing but a reconnect."""

from __future__ import annotations

import threading
from typing import Any


class LazyPool:
    """A psycopg pool to ``dsn`` (default: ``DATABASE_URL``), opened on first use."""

    def __init__(self, name: str, dsn: str | None = None, max_size: int = 8) -> None:
        self.name, self.dsn, self.max_size = name, dsn, max_size
        self._pool: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        """The pool, opened the first time."""
        with self._lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                from videogen.config import get_settings

                self._pool = ConnectionPool(
                    self.dsn or get_settings().database_url,
                    min_size=1,
                    max_size=self.max_size,
                    kwargs={"prepare_threshold": None, "connect_timeout": 5},
                    check=ConnectionPool.check_connection,
                    name=self.name,
                    open=True,  # psycopg_pool's current default, said so (it will change)
                )
            return self._pool

    def close(self) -> None:
        """Close the pool if it was opened (it opens again on the next use)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
