# syntax=docker/dockerfile:1
# Training: `pokedex train`, `pokedex data …`, `pokedex registry …` (the Vertex AI job's image).
#   docker build -f dockerfiles/train.Dockerfile -t pokedex-train .    (context: the repo root)
#   docker run --rm -v "$PWD/data:/app/data" pokedex-train train experiment=smoke
# PyPI's Linux torch wheels bundle CUDA (the gpu preset); for a CPU-only image build with
#   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Image size target: < 8 GB with CUDA, < 2.5 GB CPU-only.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL=https://pypi.org/simple
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv \
 && pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" torch==2.14.1 torchvision==0.29.1
COPY dockerfiles/requirements/train.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install --no-cache-dir --no-deps .

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 pokedex \
 && useradd --system --uid 10001 --gid pokedex --create-home --home-dir /home/pokedex \
      --shell /usr/sbin/nologin pokedex
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
RUN chown 10001:10001 /app
# relative paths under /app: mount data/ (or fetch from gs://) and collect runs/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    POKEDEX_PROCESSED=data/processed \
    POKEDEX_RUNS=runs \
    HF_HUB_OFFLINE=1 \
    MLFLOW_DISABLE_TELEMETRY=true
USER 10001:10001
ENTRYPOINT ["pokedex"]
CMD ["train", "experiment=smoke"]
