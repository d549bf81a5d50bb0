"""MLflow registry path traversal (RELIABILITY.md T9).

Two halves:

- fast: our download helper (:func:`pokedex.store.registry.download_bundle`) against a stand-in
  registry on 127.0.0.1 that lies: artifact listings naming ``../`` or absolute paths, a model
  version whose name or version number walks out of the cache, a ``file://`` source. Nothing may
  be written outside the cache folder, and a refused download leaves nothing inside it;
- slow: the installed ``mlflow server`` started on 127.0.0.1 with ``--allowed-hosts``, a bundle
  registered through our own code, then about 70 traversal requests sent as raw request
  targets (no client normalises them) to the artifact and registry routes. A canary file with
  random content sits next to the artifact root: its content must never come back, uploads
  must not land outside the root, and a foreign Host header is refused.

A 5xx from MLflow is its own behaviour, reported and not failed; a leak always fails.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx
import pytest
from mlflow.exceptions import MlflowException

from pokedex.benchmarks.localserver import free_port
from pokedex.errors import PokedexError
from pokedex.store import registry
from tests.figures import Figure
from tests.reliability.conftest import READY_TIMEOUT_S
from tests.serving.conftest import write_bundle

MLFLOW = str(Path(sys.executable).with_name("mlflow"))
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
ESCAPE = b"written by a hostile registry\n"


def files_under(root: Path, but: Path | None = None) -> set[Path]:
    """Every file and folder below ``root``, leaving out those below ``but``."""
    return {p for p in root.rglob("*") if but is None or not p.is_relative_to(but)}


# --- fast: our download helper against a registry that lies ----------------------------------


@dataclass
class Lies:
    """What the stand-in registry answers about version 1 of ``pokedex``."""

    name: str = "pokedex"
    version: str = "1"
    source: str = "mlflow-artifacts:/bundle"
    listed: list[dict[str, Any]] = field(default_factory=list)  # extra entries of the listing


class StandIn(ThreadingHTTPServer):
    """A registry serving one real bundle folder and telling the :class:`Lies` it is given."""

    bundle: Path
    lies: Lies


class _Handler(BaseHTTPRequestHandler):
    server: StandIn

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        lies, bundle = self.server.lies, self.server.bundle
        if url.path.endswith("/registered-models/get"):
            aliases = [{"alias": registry.CANDIDATE, "version": lies.version}]
            self._json({"registered_model": {"name": query["name"], "aliases": aliases}})
        elif url.path.endswith("/model-versions/get"):
            digest = {"key": registry.DIGEST_TAG, "value": registry.bundle_digest(bundle)}
            version = {"name": lies.name, "version": lies.version, "source": lies.source}
            self._json({"model_version": {**version, "status": "READY", "tags": [digest]}})
        elif url.path == ARTIFACTS:
            files = [
                {"path": p.name, "is_dir": False, "file_size": p.stat().st_size}
                for p in sorted(bundle.iterdir())
            ]
            self._json({"files": files + lies.listed if query.get("path") == "bundle" else []})
        elif url.path.startswith(ARTIFACTS + "/bundle/"):
            # a bundle file's bytes; any other name the listing made up gets the hostile bytes
            name = unquote(url.path.removeprefix(ARTIFACTS + "/bundle/"))
            path = bundle / name
            self._bytes(path.read_bytes() if path.parent == bundle and path.is_file() else ESCAPE)
        else:
            self._json({"error_code": "ENDPOINT_NOT_FOUND", "message": url.path}, status=404)

    def _json(self, body: dict[str, Any], status: int = 200) -> None:
        self._bytes(json.dumps(body).encode(), status, "application/json")

    def _bytes(self, body: bytes, status: int = 200, kind: str = "application/octet-stream"):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        """Quiet: the test reports what matters."""


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    """The lying registry on a free 127.0.0.1 port, serving a tiny real bundle."""
    server = StandIn(("127.0.0.1", 0), _Handler)
    server.bundle = write_bundle(tmp_path_factory.mktemp("stand-in") / "bundle")
    server.lies = Lies()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture
def against(stand_in: StandIn, monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    """The stand-in as the tracking server; each test sets its own ``POKEDEX_CACHE``."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{stand_in.server_address[1]}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a refusal is final here
    yield stand_in
    stand_in.lies = Lies()


def test_the_stand_in_serves_a_bundle_that_lands_in_the_cache(
    against: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The honest answer downloads: so the refusals below are the helper's doing."""
    monkeypatch.setenv("POKEDEX_CACHE", str(tmp_path / "cache"))
    folder = registry.download_bundle("models:/pokedex@candidate")
    assert folder.is_relative_to(tmp_path / "cache")
    assert registry.bundle_digest(folder) == registry.bundle_digest(against.bundle)
    assert files_under(tmp_path, but=tmp_path / "cache") == set()


# 4 levels up from the helper's scratch folder (cache/registry/pokedex/.download-x) is the
# scenario's own folder, where an escaped "escape" would show up
UP = "../" * 4
HOSTILE = {
    "listing ../": Lies(listed=[{"path": UP + "escape"}]),
    "listing ..%2f": Lies(listed=[{"path": UP.replace("/", "%2f") + "escape"}]),
    "listing %252e%252e%252f": Lies(listed=[{"path": "%252e%252e%252f" * 4 + "escape"}]),
    "listing ..\\": Lies(listed=[{"path": UP.replace("/", "\\") + "escape"}]),
    "listing absolute": Lies(listed=[{"path": "{tmp}/escape"}]),
    "listing ../ down to absolute": Lies(listed=[{"path": "../" * 40 + "{rel}/escape"}]),
    "listing #": Lies(listed=[{"path": "x#/" + UP + "escape"}]),
    "listing folder ../": Lies(listed=[{"path": UP + "escape", "is_dir": True}]),
    "version name ../": Lies(name="../../escape"),
    "version number ../": Lies(version="../../../escape"),
    "version number 1/../": Lies(version="1/" + UP + "escape"),
    "source ../": Lies(source="mlflow-artifacts:/bundle/" + "../" * 8 + "escape"),
    "source file:// outside": Lies(source="file://{tmp}/outside"),
}


def test_a_lying_registry_writes_nothing_outside_the_cache(
    against: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figure: Figure
) -> None:
    """Each lie is refused (by MLflow's client or by us) and leaves the disk as it was."""
    escaped: dict[str, list[str]] = {}
    downloaded, refusers = [], Counter[str]()
    for case, (label, lie) in enumerate(HOSTILE.items()):
        folder = tmp_path / f"case-{case}"
        cache = folder / "cache"
        outside = folder / "outside"  # a local folder the file:// source points at
        outside.mkdir(parents=True)
        secret = secrets.token_hex(16)
        (outside / "canary.txt").write_text(secret)
        monkeypatch.setenv("POKEDEX_CACHE", str(cache))
        where = {"tmp": folder.as_posix(), "rel": folder.relative_to("/").as_posix()}
        against.lies = Lies(
            name=lie.name,
            version=lie.version,
            source=lie.source.format(**where),
            listed=[{"is_dir": False, **e, "path": e["path"].format(**where)} for e in lie.listed],
        )
        before = files_under(folder, but=cache)
        try:
            downloaded.append(str(registry.download_bundle("models:/pokedex@candidate")))
        except (PokedexError, MlflowException) as exc:
            refusers["ours" if isinstance(exc, PokedexError) else "MLflow's"] += 1
        new = files_under(folder, but=cache) - before
        left = [p for p in files_under(cache) if p.is_file()]  # a refusal leaves nothing either
        if new or left:
            escaped[label] = sorted(str(p.relative_to(folder)) for p in new | set(left))
        assert not any(secret in p.read_text(errors="replace") for p in left), label

    figure(
        "T9",
        f"download helper vs a lying registry: {len(HOSTILE)} hostile answers, "
        f"{sum(refusers.values())} refused ({dict(refusers)}), downloads {len(downloaded)}, "
        f"runs leaving files outside the cache or inside it: {len(escaped)}",
    )
    assert downloaded == []
    assert escaped == {}
    assert sum(refusers.values()) == len(HOSTILE)


# --- slow: a live `mlflow server` against traversal requests ---------------------------------


@dataclass(frozen=True)
class Answer:
    """A status, a body and where a redirect points."""

    status: int
    body: bytes
    location: str | None = None


@dataclass
class LiveMlflow:
    """A running `mlflow server`: its folder holds mlflow.db, artifacts/ and the canary."""

    proc: subprocess.Popen[bytes]
    port: int
    root: Path
    secret: bytes  # the canary's content: it must never come back
    start_s: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def canary(self) -> Path:
        return self.root / f"canary-{self.secret[:8].decode()}.txt"

    def send(
        self, method: str, target: str, body: bytes | None = None, host: str | None = None
    ) -> Answer:
        """One request whose target goes on the wire byte for byte (no normalising client)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", host or f"127.0.0.1:{self.port}")
            if body is not None:
                conn.putheader("Content-Type", "application/json")
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            return Answer(response.status, response.read(), response.getheader("Location"))
        finally:
            conn.close()

    def redirected(self, answer: Answer) -> str | None:
        """The target a 3xx points at, when it points back at this server."""
        if not 300 <= answer.status < 400 or not answer.location:
            return None
        url = urlsplit(answer.location)
        if url.netloc not in ("", f"127.0.0.1:{self.port}", f"localhost:{self.port}"):
            return None
        return url.path + (f"?{url.query}" if url.query else "")

    def leaks(self, answer: Answer) -> bool:
        """The canary's content in any answer, or its name in a success (a listing)."""
        success = 200 <= answer.status < 300
        return self.secret in answer.body or (success and self.canary.name.encode() in answer.body)

    def stop(self) -> None:
        """SIGTERM the server's process group (the CLI and its uvicorn worker), then SIGKILL."""
        for sig, grace_s in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline and _group_alive(self.proc):
                time.sleep(0.2)
            if not _group_alive(self.proc):
                break
        self.proc.wait(10)


def _group_alive(proc: subprocess.Popen[bytes]) -> bool:
    proc.poll()  # reap the leader, so only live members keep the group
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def live_mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveMlflow]:
    """`mlflow server` on a free 127.0.0.1 port with --allowed-hosts, a sqlite store and a
    local artifact root, and a canary of random content next to (outside) that root."""
    root = tmp_path_factory.mktemp("mlflow-live")
    (root / "artifacts").mkdir()
    secret = secrets.token_hex(32).encode()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # no job runner (extra processes and a /dev/shm folder) and no telemetry
    env |= {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    command = [
        MLFLOW, "server",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--allowed-hosts", f"127.0.0.1:{port},localhost:{port}",
    ]  # fmt: skip
    start = time.monotonic()
    with open(root / "server.log", "ab") as log:
        proc = subprocess.Popen(
            command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = LiveMlflow(proc, port, root, secret, 0.0)
    server.canary.write_bytes(secret)
    try:
        while True:
            assert proc.poll() is None, (root / "server.log").read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.url}/health", timeout=5).status_code == 200:
                    break
            assert time.monotonic() - start < READY_TIMEOUT_S, "mlflow server never answered"
            time.sleep(0.5)
        server.start_s = time.monotonic() - start
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Registered:
    """Version 1 of ``pokedex`` on the live server, registered by our own code."""

    bundle: Path
    run_id: str
    version: str
    source: str  # mlflow-artifacts:/<experiment>/<run>/artifacts/bundle-<digest>


@pytest.fixture(scope="module")
def registered(live_mlflow: LiveMlflow, tmp_path_factory: pytest.TempPathFactory) -> Registered:
    bundle = write_bundle(tmp_path_factory.mktemp("live-bundle") / "bundle")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", live_mlflow.url)
        mv = registry.register_bundle(bundle)
    return Registered(bundle, str(mv.run_id), str(mv.version), str(mv.source))


@dataclass(frozen=True)
class Probe:
    """One hostile request: a label, a method and the raw request target."""

    label: str
    method: str
    target: str
    body: bytes | None = None


def path_forms(up: int, name: str, absolute: str) -> dict[str, str]:
    """Ways to write ``../`` * ``up`` + ``name`` in a URL path, from MLflow's fix PRs."""
    return {
        "../": "../" * up + name,
        "..%2f": "..%2f" * up + name,
        "%2e%2e%2f": "%2e%2e%2f" * up + name,
        "%2e%2e/": "%2e%2e/" * up + name,
        "%252e%252e%252f": "%252e%252e%252f" * up + name,
        "..\\": "..\\" * up + name,
        "..%5c": "..%5c" * up + name,
        "..;/": "..;/" * up + name,
        "x/../..": "x/" + "../" * (up + 1) + name,
        "absolute %2f": quote(absolute, safe=""),
        "absolute //": "/" + absolute,
        "file://": "file://" + absolute,
        "#": "x#/" + "../" * up + name,
        "?x=../": "x?x=" + "../" * up + name,
        "..%00": "..%00/" * up + name,
    }


def query_forms(up: int, name: str, absolute: str, valid: str) -> dict[str, str]:
    """Ways to write the same in a query value; ``valid`` is a file the route does serve."""
    return {
        "../": "../" * up + name,
        "..%2f": "..%2f" * up + name,
        "%252e%252e%252f": "%252e%252e%252f" * up + name,
        "..\\": "..\\" * up + name,
        "..%5c": "..%5c" * up + name,
        "absolute": quote(absolute, safe=""),
        "file://": quote("file://" + absolute, safe=""),
        "#": f"{valid}#/" + "../" * up + name,
        "%23": f"{valid}%23/" + "../" * up + name,
        ";": f"{valid};/" + "../" * up + name,
    }


def probes(live: LiveMlflow, reg: Registered) -> list[Probe]:
    """About 70 traversal requests at the canary, through every artifact and registry route."""
    name, absolute = live.canary.name, live.canary.as_posix()
    run_root = reg.source.rsplit("/", 1)[0].removeprefix("mlflow-artifacts:/")  # 1/<run>/artifacts
    up_run = len(run_root.split("/"))  # from the run's artifact root up to the canary
    folder = reg.source.rsplit("/", 1)[1]  # bundle-<digest>, relative to the run root
    out: list[Probe] = []
    for label, path in path_forms(1, name, absolute).items():
        out.append(Probe(f"artifacts/{label}", "GET", f"{ARTIFACTS}/{path}"))
    for label in ("../", "%2e%2e%2f", "%252e%252e%252f"):
        path = path_forms(1, name, absolute)[label]
        out.append(Probe(f"ajax artifacts/{label}", "GET", f"/ajax-{ARTIFACTS[5:]}/{path}"))
    for value in ("..", "../", "%2e%2e", "%252e%252e", quote(live.root.as_posix(), safe="")):
        out.append(Probe(f"artifacts list {value[:12]}", "GET", f"{ARTIFACTS}?path={value}"))
    for label, value in query_forms(up_run, name, absolute, f"{folder}/bundle.json").items():
        target = f"/get-artifact?path={value}&run_id={reg.run_id}"
        out.append(Probe(f"get-artifact/{label}", "GET", target))
    for label, value in query_forms(up_run + 1, name, absolute, "bundle.json").items():
        target = f"/model-versions/get-artifact?path={value}&name=pokedex&version={reg.version}"
        out.append(Probe(f"model-versions/get-artifact/{label}", "GET", target))
    for prefix in ("/api", "/ajax-api"):
        for value in ("../" * up_run, "..%2f" * up_run):
            target = f"{prefix}/2.0/mlflow/artifacts/list?run_id={reg.run_id}&path={value}"
            out.append(Probe(f"{prefix[1:]} runs artifacts/list {value[:5]}", "GET", target))
    escape = f"escape-{live.secret[:8].decode()}"
    for label in ("../", "..%2f", "%2e%2e%2f", "%252e%252e%252f", "..%5c", "absolute %2f"):
        path = path_forms(1, escape, (live.root / escape).as_posix())[label]
        body = b"uploaded through a traversal\n"
        out.append(Probe(f"upload/{label}", "PUT", f"{ARTIFACTS}/{path}", body))
    for label in ("../", "..%2f", "%2e%2e%2f", "absolute %2f"):
        path = path_forms(1, name, absolute)[label]
        out.append(Probe(f"delete/{label}", "DELETE", f"{ARTIFACTS}/{path}"))
    sources = {
        "file:///etc": ("file:///etc", None),
        "file://<canary folder>": (f"file://{live.root}", None),
        "file://<canary folder> + run_id": (f"file://{live.root}", reg.run_id),
        "<canary folder>": (str(live.root), None),
        "<canary folder> + run_id": (str(live.root), reg.run_id),
        "mlflow-artifacts:/../": ("mlflow-artifacts:/../", None),
        "mlflow-artifacts:/..%2f": ("mlflow-artifacts:/..%2f", None),
        "run source/../..": (f"{reg.source}/" + "../" * (up_run + 1), reg.run_id),
        "run source#/../..": (f"{reg.source}#/" + "../" * (up_run + 1), reg.run_id),
        "run source;/../..": (f"{reg.source};/" + "../" * (up_run + 1), reg.run_id),
        "http://server/artifacts/../": (f"{live.url}{ARTIFACTS}/../", None),
    }
    for label, (source, run_id) in sources.items():
        body = json.dumps({"name": "pokedex", "source": source, "run_id": run_id}).encode()
        target = "/api/2.0/mlflow/model-versions/create"
        out.append(Probe(f"create-model-version source={label}", "POST", target, body))
    return out


def follow_up(live: LiveMlflow, body: bytes) -> list[Answer]:
    """A model version created from a hostile source: ask it for the canary (CVE-2023-1177)."""
    number = json.loads(body)["model_version"]["version"]
    return [
        live.send("GET", f"/model-versions/get-artifact?path={path}&name=pokedex&version={number}")
        for path in (live.canary.name, "hostname", quote(live.canary.as_posix(), safe=""))
    ]


@pytest.mark.slow
def test_a_live_mlflow_server_leaks_nothing_to_traversal_requests(
    live_mlflow: LiveMlflow, registered: Registered, figure: Figure
) -> None:
    live, reg = live_mlflow, registered
    # the routes serve a legitimate request, so a refusal below is about the payload
    valid = [
        f"{ARTIFACTS}/{reg.source.removeprefix('mlflow-artifacts:/')}/bundle.json",
        f"/get-artifact?path={reg.source.rsplit('/', 1)[1]}/bundle.json&run_id={reg.run_id}",
        f"/model-versions/get-artifact?path=bundle.json&name=pokedex&version={reg.version}",
    ]
    expected = (reg.bundle / "bundle.json").read_bytes()
    assert [live.send("GET", target).body for target in valid] == [expected] * 3
    # and the leak check sees the canary's content when it does come back
    control = live.artifacts / "control.txt"
    control.write_bytes(live.secret)
    assert live.leaks(live.send("GET", f"{ARTIFACTS}/control.txt"))
    control.unlink()

    sent = probes(live, reg)
    statuses: dict[str, int] = {}
    leaks: list[str] = []
    redirects: dict[str, str] = {}
    follow_ups = 0
    for probe in sent:
        answers = [live.send(probe.method, probe.target, probe.body)]
        statuses[probe.label] = answers[0].status
        if target := live.redirected(answers[0]):  # a client that follows redirects
            answers.append(live.send(probe.method, target, probe.body))
            redirects[probe.label] = f"{answers[0].status}->{answers[-1].status}"
        if probe.method == "POST" and 200 <= answers[0].status < 300:
            answers += follow_up(live, answers[0].body)
            follow_ups += 3
        leaks += [probe.label for answer in answers if live.leaks(answer)]
    classes = Counter(f"{s // 100}xx" for s in statuses.values())
    successes = sorted(label for label, s in statuses.items() if 200 <= s < 300)
    errors = sorted(label for label, s in statuses.items() if s >= 500)
    escaped = sorted(
        str(p.relative_to(live.root))
        for p in files_under(live.root, but=live.artifacts)
        if p.name.startswith("escape-")
    )
    search = "/api/2.0/mlflow/experiments/search?max_results=1"
    bad_host, good_host = live.send("GET", search, host="evil.example"), live.send("GET", search)

    figure(
        "T9",
        f"mlflow {version('mlflow')} on 127.0.0.1 (ready in {live.start_s:.0f} s): "
        f"{len(sent)} traversal payloads -> {dict(sorted(classes.items()))}; "
        f"redirects followed {redirects or 'none'}; hostile model versions followed up "
        f"{follow_ups}x; canary leaks {len(leaks)}; uploads outside the artifact root "
        f"{len(escaped)}; canary intact {live.canary.read_bytes() == live.secret}; "
        f"Host: evil.example -> {bad_host.status}; 2xx: {successes or 'none'}; "
        f"5xx: {errors or 'none'}",
    )
    assert leaks == []
    assert escaped == []
    assert live.canary.read_bytes() == live.secret  # no DELETE reached it
    assert 400 <= bad_host.status < 500, bad_host
    assert good_host.status == 200, good_host


@pytest.mark.slow
def test_our_download_through_the_live_server_stays_in_the_cache(
    live_mlflow: LiveMlflow,
    registered: Registered,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_mlflow.url)
    monkeypatch.setenv("POKEDEX_CACHE", str(tmp_path / "cache"))
    folder = registry.download_bundle("models:/pokedex@candidate")
    assert folder.is_relative_to(tmp_path / "cache")
    assert registry.bundle_digest(folder) == registry.bundle_digest(registered.bundle)
    assert files_under(tmp_path, but=tmp_path / "cache") == set()
