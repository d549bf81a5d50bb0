"""Alembic migrations of the prediction store; run them with `pokedex db upgrade` (the API
runs them too, before its first write). See :mod:`pokedex.store.migrate`."""
