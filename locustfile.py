"""Load test of the Pokédex API with Locust: users who mostly send pictures, then browse.

Each simulated user uploads a picture, reads the answer, and sometimes opens the species or
one of its types that the answer named (as the web UI does); now and then it sends a batch.
Pictures come from the folder in ``POKEDEX_LOCUST_IMAGES`` (PNG, JPEG or WebP files), else
the file renders its own sprites. Headless run against a local server (docs/serving.md):

    locust -f locustfile.py --headless --users 20 --spawn-rate 5 --run-time 1m \
        --host http://127.0.0.1:8000

Locust exits non-zero when any request failed.
"""

from __future__ import annotations

import io
import os
import random
from collections import deque
from pathlib import Path

from locust import HttpUser, between, task
from PIL import Image, ImageDraw

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
RENDERED = 32  # sprites rendered when no folder is given
MAX_FOLDER_IMAGES = 500
BATCH_SIZES = (2, 8)
REMEMBERED = 20  # names a user keeps from its latest answers


def _render(seed: int) -> bytes:
    """A 128x128 sprite-like PNG: a few coloured shapes on transparency."""
    rng = random.Random(seed)
    image = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(3, 6)):
        x0, y0 = rng.randint(8, 72), rng.randint(8, 72)
        box = (x0, y0, x0 + rng.randint(16, 48), y0 + rng.randint(16, 48))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256), 255)
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def load_images() -> list[tuple[str, bytes, str]]:
    """(filename, bytes, content type) of each picture users send."""
    folder = os.environ.get("POKEDEX_LOCUST_IMAGES")
    if not folder:
        return [(f"sprite-{i}.png", _render(i), "image/png") for i in range(RENDERED)]
    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise SystemExit(f"POKEDEX_LOCUST_IMAGES={folder}: no PNG, JPEG or WebP files there")
    images = []
    for path in paths[:MAX_FOLDER_IMAGES]:
        data = path.read_bytes()
        fmt = Image.open(io.BytesIO(data)).format or "PNG"
        images.append((path.name, data, MIME.get(fmt, "application/octet-stream")))
    return images


IMAGES = load_images()


class PokedexUser(HttpUser):
    """A player: snaps a picture, reads the answer, sometimes looks closer."""

    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        """What this user has seen so far: species and type names from its answers."""
        self.species: deque[str] = deque(maxlen=REMEMBERED)
        self.types: deque[str] = deque(maxlen=REMEMBERED)

    @task(20)
    def predict(self) -> None:
        """One picture in, top-5 out."""
        name, data, mime = random.choice(IMAGES)
        with self.client.post(
            "/v1/predict", files={"file": (name, data, mime)}, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            body = response.json()
            if not body.get("species"):
                response.failure("answer without species")
                return
            self.species.append(body["species"][0]["name"])
            self.types.extend(body.get("types", []))

    @task(5)
    def species_entry(self) -> None:
        """Open the entry of a species an answer named."""
        if self.species:
            name = random.choice(self.species)
            self.client.get(f"/v1/species/{name}", name="/v1/species/[name]")

    @task(3)
    def type_matchups(self) -> None:
        """Open the matchups of a type an answer named."""
        if self.types:
            name = random.choice(self.types)
            self.client.get(f"/v1/types/{name}", name="/v1/types/[type]")

    @task(1)
    def predict_batch(self) -> None:
        """A few pictures at once, e.g. a whole album page."""
        chosen = random.sample(IMAGES, min(len(IMAGES), random.randint(*BATCH_SIZES)))
        files = [("files", image) for image in chosen]
        with self.client.post("/v1/predict/batch", files=files, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
            elif any(item.get("error") for item in response.json().get("items", [])):
                response.failure("an item of the batch failed")
