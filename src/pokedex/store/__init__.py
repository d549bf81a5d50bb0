"""Stores below serving and monitoring: the prediction log, which the API writes and the drift
check reads. Nothing here imports either of them (the layer contracts in pyproject.toml)."""
