"""Alembic's entry point: migrate the connection :mod:`pokedex.store.migrate` hands over.

That connection is already inside a transaction (a write-locking one on SQLite, one holding an
advisory lock on PostgreSQL), so every step of an upgrade commits together or not at all.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
