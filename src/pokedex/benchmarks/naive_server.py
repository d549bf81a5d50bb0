"""The baseline of `pokedex benchmark serving`: a server the way a first prototype is written.

FastAPI + uvicorn, the PyTorch model in eager fp32, one image per request: read the upload,
decode it with PIL, preprocess, run the net on a batch of one, answer the top-5 as JSON.
It uses the bundle's own preprocessing, so it answers like the real API and only the way it
runs the model differs. Run it with ``python -m pokedex.benchmarks.naive_server BUNDLE PORT``.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
import uvicorn
from fastapi import FastAPI, File, UploadFile

from pokedex.core.bundle import read_bundle
from pokedex.core.preprocess import decode, image_to_input
from pokedex.models.net import load_net

TOP_K = 5


def create_naive_app(bundle_path: str) -> FastAPI:
    """A FastAPI app with ``POST /predict`` (multipart ``file``) and ``GET /healthz``."""
    bundle = read_bundle(bundle_path)
    net = load_net(bundle)  # eval mode, fp32
    app = FastAPI(title="naive baseline")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(file: UploadFile = File(...)) -> dict[str, Any]:
        image = decode(await file.read())
        x = torch.from_numpy(image_to_input(image, bundle.preprocess))  # (1, 3, S, S)
        with torch.no_grad():
            logits, _ = net(x)  # species (1, C), types (1, 18)
        probs = torch.softmax(logits[0], dim=0)
        top = torch.topk(probs, min(TOP_K, len(bundle.classes)))
        return {
            "species": [
                {"name": bundle.classes[int(i)], "probability": float(p)}
                for p, i in zip(top.values, top.indices, strict=True)
            ]
        }

    return app


def main() -> None:
    """Serve the baseline on 127.0.0.1 until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", help="model bundle folder (with weights.safetensors)")
    parser.add_argument("port", type=int)
    args = parser.parse_args()
    uvicorn.run(create_naive_app(args.bundle), host="127.0.0.1", port=args.port)  # defaults


if __name__ == "__main__":
    main()
