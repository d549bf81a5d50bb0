"""The torch-free core that jobs, serving, monitoring and the UI all point down to.

It imports none of them, nor torch, Lightning or Hydra (the layer contracts in pyproject.toml).
"""
