"""The third server of `pokedex benchmark serving`: LitServe over the same model.

The same upload checks and preprocessing (:func:`pokedex.serving.images.prepare`) and the same
predictor (:class:`~pokedex.core.predictor.OnnxPredictor`, the bundle's served variant) as
`pokedex serve`, inside a ``LitAPI`` that batches as LitServe documents it (``max_batch_size``
and ``batch_timeout`` on the API; ``batch``/``unbatch`` stack and split the arrays). LitServe
runs inference in a worker process beside its HTTP process. Its answer is the top-5 species,
like the baseline's: none of the prediction log, metrics or drift statistics `pokedex serve`
keeps per answer. Run it with
``python -m pokedex.benchmarks.litserve_server BUNDLE PORT [--variant V] [--threads N]``.
"""

from __future__ import annotations

import argparse
from typing import Any

import litserve as ls
import numpy as np
from fastapi import HTTPException

from pokedex.core.predictor import OnnxPredictor
from pokedex.serving.errors import ApiError
from pokedex.serving.images import prepare

MAX_BATCH = 32  # as `pokedex serve` batches
BATCH_TIMEOUT_S = 0.005
MAX_PIXELS = 25_000_000
TOP_K = 5


class PokedexAPI(ls.LitAPI):
    """Multipart ``file`` in, top-5 species out."""

    def __init__(self, bundle: str, variant: str, threads: int) -> None:
        super().__init__(max_batch_size=MAX_BATCH, batch_timeout=BATCH_TIMEOUT_S)
        self.bundle_path, self.variant, self.threads = bundle, variant, threads

    def setup(self, device: str) -> None:
        self.predictor = OnnxPredictor(self.bundle_path, variant=self.variant, threads=self.threads)
        self.classes = self.predictor.bundle.classes

    def decode_request(self, request) -> np.ndarray:
        # left unannotated: LitServe reads the annotation as the request's type, and without
        # one it passes the parsed form of a multipart upload
        upload = request["file"]
        data = upload.file.read() if hasattr(upload, "file") else bytes(upload)
        try:
            return prepare(data, self.predictor, MAX_PIXELS).x  # (3, S, S)
        except ApiError as exc:  # LitServe answers an HTTPException with its status
            raise HTTPException(exc.status, exc.detail) from exc

    def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.stack(inputs)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predictor.run(x).probabilities  # (N, C), calibrated

    def unbatch(self, output: np.ndarray) -> list[np.ndarray]:
        return list(output)

    def encode_response(self, output: np.ndarray) -> dict[str, Any]:
        top = np.argsort(output)[::-1][:TOP_K]
        return {
            "species": [
                {"name": self.classes[int(i)], "probability": float(output[i])} for i in top
            ]
        }


def main() -> None:
    """Serve on 127.0.0.1 until interrupted: ``POST /predict``, ``GET /health``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", help="model bundle folder (with its ONNX variants)")
    parser.add_argument("port", type=int)
    parser.add_argument("--variant", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    api = PokedexAPI(args.bundle, args.variant, args.threads)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1, timeout=30)
    server.run(host="127.0.0.1", port=args.port, generate_client_file=False)


if __name__ == "__main__":
    main()
