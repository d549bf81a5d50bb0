"""`pokedex benchmark serving`: both real servers answer, the table and verdict add up."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from pokedex.benchmarks.loadgen import (
    LevelResult,
    multipart_body,
    pool_levels,
    request_bodies,
    run_level,
)
from pokedex.benchmarks.serving import CONCURRENCY, ServerRun, ServingResult, request_images, run
from pokedex.benchmarks.serving_report import format_markdown
from pokedex.cli import app
from pokedex.core.bundle import read_bundle
from pokedex.core.predictor import VARIANTS
from pokedex.errors import PokedexError
from pokedex.jobs.export import export_onnx
from pokedex.models.net import load_net
from tests.jobs.test_export import make_processed, make_tiny_bundle

LEVELS = (1, 4)


def _level(concurrency: int, ok: int, errors: int = 0, per_request: int = 1) -> LevelResult:
    latencies = list(np.linspace(5.0, 50.0, ok))
    first = "HTTP 503" if errors else None
    return LevelResult(
        concurrency, 1.0, latencies, errors, first, 300.0, images_per_request=per_request
    )


def _result(
    baseline_ok: list[int], ours_ok: list[int], ceiling: float, errors: int = 0
) -> ServingResult:
    baseline = ServerRun("baseline", "naive", top1=["a", "b"])
    baseline.levels = [_level(c, n) for c, n in zip(CONCURRENCY, baseline_ok, strict=False)]
    ours = ServerRun("ours", "ours", top1=["a", "c"])
    ours.levels = [_level(c, n) for c, n in zip(CONCURRENCY, ours_ok, strict=False)]
    ours.levels[-1].errors = errors
    return ServingResult("m", "fp32", "synthetic", 1.0, baseline, ours, ceiling)


def test_ratios_use_each_servers_peak_and_errors_fail_the_verdict() -> None:
    result = _result([100, 120, 110], [150, 400, 420], ceiling=600.0)
    assert result.speedup == pytest.approx(420 / 120)
    assert result.of_ceiling == pytest.approx(420 / 600)
    assert result.agreement == 0.5
    assert result.passed
    assert result.verdict().startswith("PASS")
    assert not _result([100, 120, 110], [150, 400, 420], 600.0, errors=1).passed
    assert not _result([100, 150, 110], [150, 400, 420], 600.0).passed  # 2.8x
    slow = _result([100, 120, 110], [150, 400, 420], ceiling=800.0)  # 0.525 of the ceiling
    assert slow.verdict().startswith("FAIL")


def test_markdown_has_a_row_per_level_the_ceiling_and_the_verdict() -> None:
    result = _result([100, 120], [150, 400], ceiling=600.0)
    lines = format_markdown(result).splitlines()
    rows = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert [r.split(" | ")[0] for r in rows] == ["| baseline"] * 2 + ["| ours"] * 2 + ["| ceiling"]
    assert "| 600.0 |" in rows[4]
    assert "| 400.0 |" in rows[3]
    assert lines[-1].startswith("- PASS: ours/baseline 3.33x")


def test_the_batched_run_counts_images_and_is_reported_beside_not_instead_of_the_target() -> None:
    result = _result([100, 120], [150, 200], ceiling=600.0)
    result.batched = ServerRun("ours ×32", "32 per request")
    result.batched.levels = [_level(1, 10, per_request=32), _level(4, 14, per_request=32)]
    assert result.batched.peak_rps == 14
    assert result.batched.peak_images_per_s == 14 * 32
    assert result.batched_of_ceiling == pytest.approx(448 / 600)
    assert result.of_ceiling == pytest.approx(200 / 600)  # the target: single-image requests
    assert not result.passed
    lines = format_markdown(result).splitlines()
    rows = [line for line in lines if line.startswith("| ours ×32 |")]
    assert [r.split(" | ")[1:4] for r in rows] == [["1", "10.0", "320.0"], ["4", "14.0", "448.0"]]
    assert any("peak 448.0 img/s = 0.75 of the ceiling" in line for line in lines)
    assert [s["name"] for s in result.to_dict()["servers"]] == ["baseline", "ours", "ours ×32"]


def test_litserve_sits_between_the_baseline_and_ours_and_ours_is_measured_against_it() -> None:
    result = _result([100, 120], [150, 300], ceiling=600.0)
    assert result.over_litserve is None  # not installed, or not run
    result.litserve = ServerRun("litserve", "LitServe")
    result.litserve.levels = [_level(1, 60), _level(8, 200)]
    assert result.over_litserve == pytest.approx(300 / 200)
    lines = format_markdown(result).splitlines()
    rows = [line.split(" | ")[0] for line in lines if line.startswith("| ") and "---" not in line]
    assert rows[1:] == ["| baseline"] * 2 + ["| litserve"] * 2 + ["| ours"] * 2 + ["| ceiling"]
    assert any(line.startswith("- ours/LitServe (peak): 1.50x") for line in lines)
    names = [s["name"] for s in result.to_dict()["servers"]]
    assert names == ["baseline", "litserve", "ours"]


def test_the_litserve_api_answers_like_ours_and_refuses_bad_files_with_4xx(
    tmp_path: Path,
) -> None:
    pytest.importorskip("litserve", reason="the bench extra is not installed")
    from fastapi import HTTPException

    from pokedex.benchmarks.litserve_server import TOP_K, PokedexAPI
    from pokedex.core.predictor import OnnxPredictor
    from tests.serving.conftest import write_bundle

    path = write_bundle(tmp_path / "bundle")
    api = PokedexAPI(str(path), "fp32", 1)
    api.setup("cpu")
    _, bodies, _ = request_images(None, 3)
    inputs = [api.decode_request({"file": body}) for body in bodies]
    answers = [api.encode_response(o) for o in api.unbatch(api.predict(api.batch(inputs)))]
    ours = OnnxPredictor(path, variant="fp32", threads=1).run(np.stack(inputs)).probabilities
    for answer, probabilities in zip(answers, ours, strict=True):
        assert len(answer["species"]) == min(TOP_K, len(probabilities))
        best = answer["species"][0]
        assert best["name"] == api.classes[int(probabilities.argmax())]
        assert best["probability"] == pytest.approx(float(probabilities.max()))
    with pytest.raises(HTTPException) as bad:
        api.decode_request({"file": b"not an image"})
    assert bad.value.status_code == 400


def test_request_bodies_hold_one_or_n_images_and_wrap_around() -> None:
    images = [bytes([i]) * 10 for i in range(5)]
    assert request_bodies(images, 1) == [multipart_body(image) for image in images]
    bodies = request_bodies(images[:2], 3)  # fewer images than a request holds: they repeat
    assert len(bodies) == 1
    assert bodies[0].count(b'name="files"') == 3
    assert bodies[0].count(images[0]) == 2


class _SlowPhotoHandler(BaseHTTPRequestHandler):
    """Answers at once, except to a body holding a "photo": 20 ms later."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the load generator's connections expect
    seen: Counter[str]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        kind = "photo" if b"photo" in body else "sprite"
        self.seen[kind] += 1
        if kind == "photo":
            time.sleep(0.02)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def test_closed_loop_clients_send_a_slow_image_its_share_of_the_mix() -> None:
    _SlowPhotoHandler.seen = Counter()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowPhotoHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    images = [b"sprite-%d" % i for i in range(3)] + [b"photo"]  # a quarter of the mix
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/predict"
        level = run_level(url, images, 8, 1.5, 0.2, os.getpid())  # 8 clients: twice 4 images
    finally:
        server.shutdown()
        server.server_close()
    assert level.errors == 0
    share = _SlowPhotoHandler.seen["photo"] / sum(_SlowPhotoHandler.seen.values())
    assert 0.2 < share < 0.3, _SlowPhotoHandler.seen  # pinned clients: about 2 %


def test_request_images_are_pngs_of_the_test_split_or_say_they_are_synthetic(
    tmp_path: Path,
) -> None:
    processed = make_processed(tmp_path / "processed", train=4, test=6)
    canvases, bodies, source = request_images(processed, 4)
    assert len(bodies) == 4
    assert "test-split" in source
    decoded = np.asarray(Image.open(io.BytesIO(bodies[0])))
    np.testing.assert_array_equal(decoded, canvases[0])  # lossless: the pixels of the data
    _, bodies, source = request_images(None, 3)
    assert len(bodies) == 3
    assert "synthetic" in source


def test_a_bundle_without_pytorch_weights_is_refused(tmp_path: Path) -> None:
    from tests.serving.conftest import write_bundle  # ONNX only, no safetensors

    bundle = read_bundle(write_bundle(tmp_path / "bundle"))
    with pytest.raises(PokedexError, match=r"weights\.safetensors.*pokedex export"):
        run(bundle, None, window_s=0.1)


@pytest.mark.slow
@pytest.mark.timeout(1200)  # two servers start: importing torch is slow on a loaded machine
def test_both_servers_answer_every_request_and_the_table_is_complete(tmp_path: Path) -> None:
    bundle = make_tiny_bundle(tmp_path / "bundle")
    processed = make_processed(tmp_path / "processed", train=4, test=12)
    # the fp32 ONNX file alone: parity checks and INT8 are `pokedex export`'s tests
    export_onnx(load_net(bundle), bundle.preprocess.size, bundle.path / VARIANTS["fp32"])
    out = tmp_path / "report"
    args = ["benchmark", "serving", "--model", str(bundle.path), "--processed", str(processed)]
    args += [a for c in LEVELS for a in ("--concurrency", str(c))]
    args += ["--batch-clients", "1"]
    args += ["--duration", "2", "--warmup", "0.5", "--images", "12", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert re.search(r"^(PASS|FAIL): ours/baseline", result.output, re.MULTILINE)
    report = json.loads((out / "serving.json").read_text())
    assert report["variant"] == "fp32"  # exported, never benchmarked: what serve loads
    assert report["images"].startswith("12 test-split images")
    assert report["top1_agreement"] == 1.0  # same weights: same answers from both servers
    assert report["ceiling_images_per_s"] > 0
    servers = {s["name"]: s for s in report["servers"]}
    litserve = {"litserve"} if importlib.util.find_spec("litserve") else set()
    assert set(servers) == {"baseline", "ours", "ours ×32"} | litserve
    batched = servers.pop("ours ×32")
    assert batched["errors"] == 0
    [level] = batched["levels"]
    assert level["images_per_s"] == pytest.approx(32 * level["requests_per_s"])
    assert report["batched_of_ceiling"] == pytest.approx(
        batched["peak_images_per_s"] / report["ceiling_images_per_s"]
    )
    for server in servers.values():
        assert [lv["concurrency"] for lv in server["levels"]] == list(LEVELS)
        assert server["errors"] == 0
        assert 0 < server["ready_s"] < 180
        assert server["idle_rss_mb"] > 20
        # a starved CI box may answer nothing inside one short window, but not in all of them
        assert sum(lv["ok"] for lv in server["levels"]) > 0
        for lv in server["levels"]:
            assert lv["requests_per_s"] == pytest.approx(lv["ok"] / lv["window_s"])
            if lv["ok"]:
                assert 0 < lv["p50_ms"] <= lv["p95_ms"] <= lv["p99_ms"]
                # decoding and running a model cannot be free, nor cost more than the window
                assert 0 < lv["server_cpu_ms"] * lv["ok"] / 1000 <= 16 * lv["window_s"]
            assert lv["peak_rss_mb"] >= server["idle_rss_mb"] * 0.9
    ours_peak = max(lv["requests_per_s"] for lv in servers["ours"]["levels"])
    assert report["of_ceiling"] == pytest.approx(ours_peak / report["ceiling_images_per_s"])
    markdown = (out / "serving.md").read_text()
    assert markdown.count("| baseline |") == len(LEVELS)
    assert markdown.count("| ours |") == len(LEVELS)


def test_rounds_pool_into_one_level_each_and_the_table_shows_their_spread() -> None:
    first, second = _level(32, 300), _level(32, 500)
    second.latencies_ms = [100.0] * 500  # the second round was slower per answer
    pooled = pool_levels([_level(1, 50), first, _level(1, 70), second])
    assert [(lv.concurrency, lv.window_s) for lv in pooled] == [(1, 2.0), (32, 2.0)]
    at32 = pooled[1]
    assert at32.requests_per_s == 400.0  # 800 answers over two 1 s windows
    assert at32.round_rps == [300.0, 500.0]
    assert at32.percentile_ms(99) == 100.0  # over every answer of both rounds
    assert pool_levels(pooled)[1].round_rps == [300.0, 500.0]  # pooling again keeps the rounds
    result = _result([100, 120], [150, 400], ceiling=600.0)
    result.ours.levels = pooled
    result.litserve = ServerRun("litserve", "LitServe")
    result.litserve.levels = [_level(1, 60), _level(32, 200)]
    result.rounds = 2
    assert result.p99_at(32) == (100.0, pytest.approx(49.55))  # linspace(5, 50, 200)
    assert result.p99_at(64) is None
    markdown = format_markdown(result)
    assert "| ours | 32 | 400.0 |" in markdown
    assert markdown.count("| 300–500 |") == 1
    assert "measured 2 times each, alternating" in markdown
    assert "p99 at 32 clients: ours 100.0 ms, LitServe 49.5 ms" in markdown
