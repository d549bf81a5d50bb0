"""The API image installs no PyTorch: the serving app runs with only its lock file's packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import encode, sprite
from tests.delivery.conftest import DOCKERFILES, REPO

# Runs in a fresh interpreter: a finder refuses every import whose distribution is not in the
# API image's lock file (and torch by name), then the app starts and answers a prediction.
_CHECK = """
import importlib.abc, importlib.metadata, sys
from packaging.utils import canonicalize_name

lock, bundle, image, log = sys.argv[1:5]
allowed = {canonicalize_name(line.split("==")[0])
           for line in open(lock) if line.strip() and not line.startswith("#")}
owners = importlib.metadata.packages_distributions()
refused = set()

class ImageOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        dists = {canonicalize_name(d) for d in owners.get(top, ())}
        if top in ("torch", "torchvision", "lightning") or (
            dists and top != "pokedex" and not dists & allowed
        ):
            refused.add(top)
            raise ModuleNotFoundError(f"No module named {top!r} (not in the API image)", name=top)
        return None

sys.meta_path.insert(0, ImageOnly())
from fastapi.testclient import TestClient
from pokedex.serving.app import create_app
from pokedex.serving.settings import Settings

settings = Settings(model=bundle, prediction_log_url=log, threads=1)
with TestClient(create_app(settings)) as client:
    assert client.get("/readyz").status_code == 200, client.get("/readyz").text
    png = open(image, "rb").read()
    reply = client.post("/v1/predict", files={"file": ("x.png", png, "image/png")})
    assert reply.status_code == 200, reply.text
assert "torch" not in sys.modules
print("refused:", sorted(refused))
"""


def test_the_api_serves_with_only_its_image_packages(tmp_path: Path) -> None:
    from tests.serving.conftest import write_bundle

    bundle = write_bundle(tmp_path / "bundle")
    lock = DOCKERFILES / "requirements" / "api.txt"
    image = tmp_path / "sprite.png"
    image.write_bytes(encode(sprite(3), "PNG"))
    log = f"sqlite:///{tmp_path / 'predictions.db'}"
    result = subprocess.run(
        [sys.executable, "-c", _CHECK, str(lock), str(bundle), str(image), log],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "refused:" in result.stdout  # optional speed-ups (orjson, brotli) stay absent
