"""The database each app is served on (docs/your-app.md, "The database").

- An app that declares the contract: the contract's tables (``schema.sql``) and its seed
  at ``--scale``, shared by every such app of a run; the app's setup commands run before
  each server (Django's own tables, its staff user). tests/apps/test_migrations.py proves
  each reference app's own migrations make the same tables.
- Any other app, on the embedded PostgreSQL: an empty database created for it
  (``app_<id>``) and made by the app's declared ``schema`` command; nothing is loaded into it.
- With ``DATABASE_URL``: the user's database, as it is, for every app. The harness creates,
  migrates, drops and truncates nothing there; only ``--reseed`` lets it TRUNCATE the
  contract's tables and load the seed when they do not hold it already.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from psycopg import sql

from shared_fixtures.db import Database, DatabaseError
from shared_fixtures.seed import checksum, ensure_seeded, seeded_state
from stackbench.apps import App
from stackbench.server_process import app_env, run_declared
from stackbench.servers import Knobs


class AppDatabases:
    """The run's databases: the contract's, loaded on first use, and one per app of its own."""

    def __init__(self, db: Database, scale: int, *, reseed: bool = False) -> None:
        self.db, self.scale, self.reseed = db, scale, reseed
        self.seed: tuple[str, bool] | None = None  # (checksum, reseeded) once loaded
        self._own: dict[str, str] = {}  # app id -> its database's URL

    def url_for(self, app: App, bin_dir: Path, upstream_url: str = "http://127.0.0.1:9") -> str:
        """The URL ``app`` is served with; its database made first when it is new."""
        if app.contract:
            self.contract()
            return self.db.url
        if not self.db.embedded:
            return self.db.url  # the user's database, as it is
        if app.id not in self._own:
            url = self._create(f"app_{app.id}")
            if app.schema is not None:
                env = app_env(app, None, url, upstream_url, Knobs())
                run_declared(app, app.schema, env, bin_dir)
            self._own[app.id] = url
        return self._own[app.id]

    def makes(self, app: App) -> bool:
        """True when ``url_for(app)`` will create the app's own database (and run its schema
        command there): an app of its own, new to this run, on the embedded PostgreSQL."""
        return not app.contract and self.db.embedded and app.id not in self._own

    def contract(self) -> tuple[str, bool]:
        """The contract's seed verified (loaded when it differs); (checksum, reseeded)."""
        if self.seed is None:
            with self.db.connect() as conn:
                if not self.db.embedded and not self.reseed:
                    state = seeded_state(conn)
                    if state is None or state[0] != self.scale or checksum(conn) != state[1]:
                        raise DatabaseError(
                            f"DATABASE_URL {self.db.display_url} does not hold the contract's "
                            f"seed at scale {self.scale}: --reseed lets stackbench TRUNCATE the "
                            "contract's tables there and load it"
                        )
                self.seed = ensure_seeded(conn, self.scale)
        return self.seed

    def _create(self, name: str) -> str:
        """A new empty database in the embedded PostgreSQL (a new cluster each run)."""
        with self.db.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        parts = urlsplit(self.db.url)
        return urlunsplit(parts._replace(path=f"/{name}"))
