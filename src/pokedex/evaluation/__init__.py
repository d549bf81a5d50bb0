"""The parts of `pokedex evaluate`: metrics, calibration, gate, robustness, the
metrics report, embeddings.

The entry point is :func:`pokedex.jobs.evaluate.evaluate`; these modules are numpy-only except
``metrics_report`` and ``embeddings`` (matplotlib, plotly, umap-learn).
"""
