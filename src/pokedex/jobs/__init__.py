"""The jobs: one module per lifecycle step a command runs (train, sweep, evaluate, export,
predict, promote, the GPU run and ablation), with the helpers only they use (checkpoint
writing, training curves, the model card).

Jobs sit on top: serving and the UI never import them (the layer contracts in pyproject.toml).
"""
