# The one task vocabulary: README, CI and docs call these targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

# Where the raw data comes from (see README): a local zip, a URL, gs:// or kaggle://owner/name.
export POKEDEX_DATA_SOURCE ?= kaggle://noodulz/pokemon-dataset-1000
export MLFLOW_DISABLE_TELEMETRY := true
export HF_HUB_OFFLINE := 1

.PHONY: setup test test-slow test-all lint format data report train train-smoke clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP) ## create .venv with the package and its dev tools

test: setup ## the whole default test suite (fast; what CI runs)
	$(BIN)/pytest -m "not slow" --cov --cov-report=term --cov-report=xml

test-slow: setup ## only the slow tests (full dataset, long runs)
	$(BIN)/pytest -m slow

test-all: setup ## every test, the slow ones included
	$(BIN)/pytest --cov --cov-report=term

lint: setup
	$(BIN)/ruff check src tests locustfile.py
	$(BIN)/ruff format --check src tests locustfile.py

format: setup
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

data: setup ## fetch + prepare the dataset (set POKEDEX_DATA_SOURCE and POKEDEX_METADATA)
	$(BIN)/pokedex data fetch
	$(BIN)/pokedex data prepare
	$(BIN)/pokedex data report

# Photographs behind the sprites for augment=photo (docs/data.md): Debian's mate-backgrounds when
# apt-get can install it, scikit-image's sample photos (the train extra) in any case.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
.PHONY: backgrounds
backgrounds: setup ## data/backgrounds: photo tiles with their sources and licences
	@test -d /usr/share/backgrounds/mate/nature || ! command -v apt-get >/dev/null || \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq mate-backgrounds || \
	  echo "mate-backgrounds not installed: the tiles come from scikit-image's photos only"
	$(BIN)/pokedex data backgrounds

report: setup
	$(BIN)/pokedex data report

# Users' reviewed corrections (docs/feedback.md) into the next data version: export them from
# the prediction store ($POKEDEX_PREDICTION_LOG_URL), then prepare and describe the data with them.
.PHONY: feedback
feedback: setup ## data/feedback from the reviewed verdicts, then prepare + report with it
	$(BIN)/pokedex data feedback export --out data/feedback
	$(BIN)/pokedex data prepare --feedback data/feedback
	$(BIN)/pokedex data report

train-smoke: setup
	$(BIN)/pokedex train experiment=smoke

train: setup ## the release recipe for this machine's CPUs
	$(BIN)/pokedex train experiment=cpu

# The API on the committed release bundle and the web UI on that API;
# override e.g. `make serve API_PORT=9000 UI_PORT=9001 MODEL=dir`.
MODEL ?= models/release
API_HOST ?= 127.0.0.1
API_PORT ?= 8000
API_URL ?= http://$(if $(filter 0.0.0.0,$(API_HOST)),127.0.0.1,$(API_HOST)):$(API_PORT)
UI_HOST ?= 127.0.0.1
UI_PORT ?= 8501
.PHONY: serve screenshots
serve: setup ## the HTTP API and the web UI (Ctrl-C stops both)
	@echo "Pokédex API on http://$(API_HOST):$(API_PORT) (docs: http://$(API_HOST):$(API_PORT)/docs)"
	@echo "Pokédex UI  on http://$(UI_HOST):$(UI_PORT)"
	@$(BIN)/pokedex serve --host $(API_HOST) --port $(API_PORT) --model $(MODEL) & api=$$!; \
	trap 'kill $$api 2>/dev/null; wait $$api' EXIT INT TERM; \
	$(BIN)/pokedex ui --host $(UI_HOST) --port $(UI_PORT) --api-url $(API_URL)

screenshots: setup ## docs/img/ui-*.png, taken by the UI's browser test against a live API
	POKEDEX_UI_SCREENSHOTS=docs/img $(BIN)/pytest -m slow -p no:randomly tests/ui/test_e2e.py \
	  tests/ui/test_dex_e2e.py tests/ui/test_bad_files_e2e.py tests/ui/test_explore_e2e.py \
	  tests/ui/test_recognize_e2e.py tests/ui/test_feedback_e2e.py

# docs/reliability.md: hostile input, fuzzing, crashes, load; the long tests included.
# Shorten them with POKEDEX_SOAK_S, POKEDEX_OVERLOAD_S, POKEDEX_FUZZ_EXAMPLES (see that page).
.PHONY: reliability
reliability: setup ## the reliability suite, long tests too; figures in reports/reliability.jsonl
	mkdir -p reports && rm -f reports/reliability.jsonl
	POKEDEX_FIGURES=reports/reliability.jsonl $(BIN)/pytest -p no:randomly \
	  tests/reliability tests/serving/test_schemathesis.py

# The documentation site (mkdocs.yml): strict, so a broken link or a page left out of the nav fails.
.PHONY: docs docs-serve
docs: setup ## build the site into site/
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

docs-serve: setup ## preview the site with live reload on 127.0.0.1:8001
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict --dev-addr 127.0.0.1:8001

# Container images (dockerfiles/, docs/deploy.md); skipped with a message where Docker is absent.
IMAGES := api ui train mlflow
IMAGE_TAG ?= dev
.PHONY: images locks
images: ## docker build every image as pokedex-<name>:$(IMAGE_TAG)
	@if ! command -v docker >/dev/null 2>&1; then \
	  echo "docker not found: skipping the image builds (see docs/deploy.md)"; exit 0; fi; \
	for image in $(IMAGES); do \
	  docker build --file dockerfiles/$$image.Dockerfile --tag pokedex-$$image:$(IMAGE_TAG) . \
	    || exit 1; \
	done

locks: setup ## regenerate dockerfiles/requirements/ and deploy/gcp/monitoring/ after a change
	$(BIN)/python scripts/lock_images.py
	$(BIN)/python scripts/alert_policies.py

clean:
	rm -rf runs reports .pytest_cache .ruff_cache coverage.xml .coverage
