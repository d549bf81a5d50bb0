# syntax=docker/dockerfile:1
# The Pokédex API: FastAPI + ONNX Runtime serving the committed release bundle (models/release).
#   docker build -f dockerfiles/api.Dockerfile -t pokedex-api .    (context: the repository root)
#   docker run --rm -p 8000:8000 pokedex-api
# Image size target: < 1.3 GB (about 1 GB of packages, OpenVINO and pyarrow the largest, and an
# 80 MB bundle). The runtime stage has no PyTorch: CPU-only torch lives in the export stage
# alone, which adds the ONNX model to a bundle that has none.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
# pinned dependencies first (a layer that survives code changes), then the project itself
COPY dockerfiles/requirements/api.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install --no-cache-dir --no-deps .

FROM build AS export
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# the `export` extra of pyproject.toml, pinned, with CPU-only torch wheels
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" torch==2.14.1 torchvision==0.29.1 \
 && pip install --no-cache-dir safetensors==0.8.0
WORKDIR /app
COPY models/release ./models/release
# Without data the export checks on synthetic images: fp32 parity is enforced; INT8 agreement is
# only recorded (synthetic images have near-ties), and the server runs fp32 unless a benchmark
# recorded in the bundle chose INT8. Release bundles (scripts/release.sh) already carry ONNX.
RUN test -f models/release/model.onnx || pokedex export --model models/release --int8-min-agreement 0

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 pokedex \
 && useradd --system --uid 10001 --gid pokedex --no-create-home --shell /usr/sbin/nologin pokedex
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --from=export /app/models/release ./models/release
# the only writable folder: the default SQLite prediction log and the registry download cache
RUN mkdir var && chown 10001:10001 var
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    POKEDEX_MODEL=models/release \
    POKEDEX_PREDICTION_LOG_URL=sqlite:///var/predictions.db \
    POKEDEX_CACHE=var/cache
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
ENTRYPOINT ["pokedex", "serve"]
CMD ["--host", "0.0.0.0", "--port", "8000"]
