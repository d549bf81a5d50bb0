"""Learning-curve figures: one run's history, and several runs side by side."""

from __future__ import annotations

from pathlib import Path

from pokedex.jobs.curves import csv_history, plot_comparison, plot_history

PNG = b"\x89PNG\r\n\x1a\n"


def test_a_csv_history_plots_as_one_png(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv").write_text(
        "epoch,step,train/loss,val/loss,val/acc_top1\n0,9,2.5,,\n0,9,,2.0,0.25\n1,19,1.5,1.2,0.5\n"
    )
    history = csv_history(tmp_path / "metrics.csv")
    assert history["val/acc_top1"] == [(9, 0.25), (19, 0.5)]
    assert plot_history(history, tmp_path / "curves.png").read_bytes().startswith(PNG)


def test_runs_of_different_lengths_share_one_figure(tmp_path: Path) -> None:
    short = {"val/acc_top1": [(10, 0.2), (20, 0.4)], "photos/acc_top1": [(20, 0.1)]}
    long = {"val/acc_top1": [(50, 0.1), (100, 0.3), (150, 0.5)]}  # no photo metric: skipped
    out = plot_comparison({"a": short, "b": long}, tmp_path / "sub" / "cmp.png")
    assert out.read_bytes().startswith(PNG)
