"""Stores below serving and monitoring: the prediction log, which the API writes and the drift
check reads, and the feedback on it (verdicts, kept images), with the schema's migrations.
Nothing here imports either of them (the layer contracts in pyproject.toml)."""

import logging

# Alembic logs one INFO line per built-in plugin when it is first imported: noise in a server's
# log. Set here, before any module of this package imports Alembic.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
