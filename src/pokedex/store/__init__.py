"""Where things are kept: the prediction log, which the API writes and the drift check reads, the
feedback on it (verdicts, kept images) with the schema's migrations, and the model registry
(MLflow), which turns a model REF into a bundle folder. Nothing here imports serving or
monitoring (the layer contracts in pyproject.toml)."""

import logging

# Alembic logs one INFO line per built-in plugin when it is first imported: noise in a server's
# log. Set here, before any module of this package imports Alembic.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
