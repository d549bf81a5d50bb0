"""Where things are kept: the prediction log, which the API writes and the drift check reads,
and the model registry (MLflow), which turns a model REF into a bundle folder. Nothing here
imports serving or monitoring (the layer contracts in pyproject.toml)."""
