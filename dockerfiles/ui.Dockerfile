# syntax=docker/dockerfile:1
# The Pokédex web UI (Streamlit); it reaches the API over HTTP at $POKEDEX_API_URL.
#   docker build -f dockerfiles/ui.Dockerfile -t pokedex-ui .    (context: the repository root)
#   docker run --rm -p 8501:8501 -e POKEDEX_API_URL=http://host.docker.internal:8000 pokedex-ui
# Image size target: < 900 MB (no PyTorch, no model: the API holds it).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
COPY dockerfiles/requirements/ui.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install --no-cache-dir --no-deps .

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 pokedex \
 && useradd --system --uid 10001 --gid pokedex --no-create-home --shell /usr/sbin/nologin pokedex
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# HOME=/tmp: Streamlit may write a config folder in $HOME, and the root file system is read-only
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    POKEDEX_API_URL=http://api:8000
USER 10001:10001
EXPOSE 8501
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]
ENTRYPOINT ["pokedex", "ui"]
CMD ["--host", "0.0.0.0", "--port", "8501"]
