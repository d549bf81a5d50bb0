"""The parts of `pokedex evaluate`: metrics, calibration, open-set rejection, report, embeddings.

The entry point is :func:`pokedex.jobs.evaluate.evaluate`; these modules are numpy-only except
``report`` and ``embeddings`` (matplotlib, plotly, umap-learn).
"""
