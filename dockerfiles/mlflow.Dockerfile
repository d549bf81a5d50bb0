# syntax=docker/dockerfile:1
# The MLflow tracking server and model registry of the compose stack (with a PostgreSQL driver).
#   docker build -f dockerfiles/mlflow.Dockerfile -t pokedex-mlflow .
# Every setting is an MLFLOW_* variable (see `mlflow server --help`); compose points the backend
# store at PostgreSQL and mounts a volume on the artifact folder.
# Image size target: < 1 GB.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
COPY dockerfiles/requirements/mlflow.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
 && pip install --no-cache-dir -r /tmp/requirements.txt

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 mlflow \
 && useradd --system --uid 10001 --gid mlflow --no-create-home --shell /usr/sbin/nologin mlflow
COPY --from=build /opt/venv /opt/venv
WORKDIR /mlflow
RUN mkdir mlartifacts && chown -R 10001:10001 /mlflow
# allowed Host headers: the compose service name and loopback, on any port
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MLFLOW_HOST=0.0.0.0 \
    MLFLOW_PORT=5000 \
    MLFLOW_BACKEND_STORE_URI=sqlite:///mlflow.db \
    MLFLOW_ARTIFACTS_DESTINATION=./mlartifacts \
    MLFLOW_SERVER_ALLOWED_HOSTS=mlflow,mlflow:*,localhost,localhost:*,127.0.0.1,127.0.0.1:* \
    MLFLOW_DISABLE_TELEMETRY=true
USER 10001:10001
EXPOSE 5000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ['MLFLOW_PORT'], timeout=4)"]
CMD ["mlflow", "server"]
