"""The tables of `pokedex benchmark serving`: on the terminal (rich), as markdown and JSON."""

from __future__ import annotations

from pathlib import Path

from pokedex.benchmarks.serving import BATCH, ServingResult
from pokedex.io import write_bytes_atomic, write_json_atomic

P99_CLIENTS = 32  # the load at which issue 20 compares tail latency with LitServe's
_HEADER = (
    "server",
    "clients",
    "req/s",
    "img/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "errors",
    "peak RSS MB",
    "server CPU ms/req",
    "client CPU %",
    "req/s by round",
)


def table_rows(result: ServingResult) -> list[tuple[str, ...]]:
    """One row per server and concurrency level (ours through the batch route last), then
    the ceiling."""

    def ms(value: float | None) -> str:
        return f"{value:.1f}" if value is not None else "–"

    rows = []
    servers = (result.baseline, result.litserve, result.ours, *result.scaled, result.batched)
    for server in servers:
        for lv in server.levels if server else []:
            rows.append(
                (
                    server.name,
                    str(lv.concurrency),
                    f"{lv.requests_per_s:.1f}",
                    f"{lv.images_per_s:.1f}",
                    ms(lv.percentile_ms(50)),
                    ms(lv.percentile_ms(95)),
                    ms(lv.percentile_ms(99)),
                    str(lv.errors),
                    f"{lv.peak_rss_mb:.0f}",
                    ms(lv.server_cpu_ms),
                    f"{100 * lv.client_cpu:.0f}",
                    _spread(lv.round_rps),
                )
            )
    ceiling = ("ceiling", "–", "–", f"{result.ceiling:.1f}")
    rows.append(ceiling + ("–",) * (len(_HEADER) - len(ceiling)))
    return rows


def _spread(round_rps: list[float]) -> str:
    return f"{min(round_rps):.0f}–{max(round_rps):.0f}" if len(round_rps) > 1 else "–"


def summary_lines(result: ServingResult) -> list[str]:
    """Context and ratios under the table, then the verdict."""
    rounds = (
        f"; LitServe and ours measured {result.rounds} times each, alternating, each level "
        "pooled over the rounds (req/s by round: the spread)"
        if result.rounds > 1
        else ""
    )
    lines = [
        f"model {result.model} ({result.variant}); requests: {result.images}; "
        f"{result.window_s:g} s per level{rounds}",
    ]
    lines += [
        f"{s.name}: {s.description}; ready in {s.ready_s:.1f} s, idle RSS {s.idle_rss_mb:.0f} MB, "
        f"peak {s.peak_rps:.1f} req/s"
        for s in (result.baseline, result.litserve, result.ours, *result.scaled)
        if s is not None
    ]
    lines.append(
        f"ceiling: the served model ({result.variant}) at batch {BATCH} in this process, "
        f"no HTTP: {result.ceiling:.1f} img/s"
    )
    if result.batched is not None and result.batched_of_ceiling is not None:
        lines.append(
            f"{result.batched.name}: {result.batched.description} (POST /v1/predict/batch); "
            f"peak {result.batched.peak_images_per_s:.1f} img/s = "
            f"{result.batched_of_ceiling:.2f} of the ceiling, {result.batched.errors} errors "
            "(clients that batch; the targets count single-image requests)"
        )
    runs = [result.ours, *result.scaled, *([result.batched] if result.batched else [])]
    first = next((lv.first_error for r in runs for lv in r.levels if lv.first_error), None)
    lines += [
        f"ours/baseline (peak): {result.speedup:.2f}x; ours/ceiling: {result.of_ceiling:.2f}; "
        f"top-1 agreement on {len(result.ours.top1)} images: {result.agreement:.0%}",
        *(
            [
                f"{result.best_ours.name}/LitServe (peak): {result.over_litserve:.2f}x "
                "(issue 20's target: ≥ 1.5x)"
            ]
            if result.over_litserve is not None
            else []
        ),
        *(
            [
                f"p99 at {P99_CLIENTS} clients: {result.best_ours.name} {p99[0]:.1f} ms, "
                f"LitServe {p99[1]:.1f} ms (issue 20's target: no higher than LitServe's)"
            ]
            if (p99 := result.p99_at(P99_CLIENTS)) is not None
            else []
        ),
        *([f"first error of ours: {first}"] if first else []),
        result.verdict(),
    ]
    return lines


def format_markdown(result: ServingResult) -> str:
    """The table and summary as markdown."""
    lines = [
        "| " + " | ".join(_HEADER) + " |",
        "|---|" + "---:|" * (len(_HEADER) - 1),
        *("| " + " | ".join(row) + " |" for row in table_rows(result)),
        "",
        *(f"- {line}" for line in summary_lines(result)),
    ]
    return "\n".join(lines) + "\n"


def print_table(result: ServingResult) -> None:
    """The table and summary on the terminal."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Serving benchmark (127.0.0.1)")
    for i, name in enumerate(_HEADER):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in table_rows(result):
        table.add_row(*row)
    console = Console(width=max(Console().width, 110))  # not squeezed to 80 in a pipe
    console.print(table)
    for line in summary_lines(result):
        console.print(line, highlight=False, markup=False)


def write_outputs(result: ServingResult, out: Path) -> tuple[Path, Path]:
    """``serving.json`` and ``serving.md`` in the folder ``out``, each written atomically."""
    json_path, md_path = out / "serving.json", out / "serving.md"
    write_json_atomic(json_path, result.to_dict())
    write_bytes_atomic(md_path, format_markdown(result).encode("utf-8"))
    return json_path, md_path
