"""Prometheus metrics of one app, on its own registry (so apps in one process never collide).

Under several workers (``PROMETHEUS_MULTIPROC_DIR`` set by `pokedex serve --workers`), every
process writes its values to that folder and a scrape, whichever worker answers it, adds them
up: counters and histograms sum, the queue depth sums over live workers, readiness is the
least ready worker, drift gauges show the most recent check.

Names follow ``pokedex_<thing>_<unit>``; labels are low-cardinality: route templates, never
paths; species names come from the model's class list and are capped at 1,000 values.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from pokedex.monitoring.features import DRIFT_FEATURES, EMBEDDING

if TYPE_CHECKING:
    from pokedex.monitoring.drift import DriftReport

MAX_SPECIES_LABELS = 1000
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH = (1, 2, 4, 8, 16, 32, 64, 128)
_CONFIDENCE = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
FEEDBACK_VERDICTS = ("correct", "species", "not_pokemon")
FEEDBACK_REFUSALS = ("rate_limited", "unknown_prediction", "not_recorded_yet", "duplicate",
                     "unknown_species", "store_error")  # fmt: skip
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client reads it when it is imported


class Metrics:
    """Every metric the API exports."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        http = ["route", "method", "status"]
        self.requests = Counter("pokedex_http_requests", "HTTP requests.", http, registry=r)
        self.request_latency = Histogram(
            "pokedex_http_request_duration_seconds",
            "HTTP request latency.",
            http,
            buckets=_LATENCY,
            registry=r,
        )
        self.inference_latency = Histogram(
            "pokedex_inference_duration_seconds",
            "Model run time per batch.",
            buckets=_LATENCY,
            registry=r,
        )
        self.batch_size = Histogram(
            "pokedex_batch_size_images", "Images per model run.", buckets=_BATCH, registry=r
        )
        self.queue_depth = Gauge(
            "pokedex_queue_depth_images",
            "Images waiting for the model.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.confidence = Histogram(
            "pokedex_prediction_confidence_ratio",
            "Top-1 probability.",
            buckets=_CONFIDENCE,
            registry=r,
        )
        self.species = Counter(
            "pokedex_predictions_by_species",
            "Predictions by top-1 species.",
            ["species"],
            registry=r,
        )
        self.types = Counter(
            "pokedex_predictions_by_type",
            "Predictions by type of the top-1 species.",
            ["type"],
            registry=r,
        )
        self.unknown = Counter(
            "pokedex_predictions_unknown", "Predictions flagged as no known species.", registry=r
        )
        self.model_info = Info("pokedex_model", "The model being served.", registry=r)
        self.ready = Gauge(
            "pokedex_model_ready",
            "1 while a model is loaded and serving, else 0.",
            registry=r,
            multiprocess_mode="livemin",
        )
        self.reloads = Counter(
            "pokedex_model_reloads", "Admin model reloads by result.", ["result"], registry=r
        )
        self.log_dropped = Counter(
            "pokedex_prediction_log_dropped",
            "Prediction-log rows lost, by reason.",
            ["reason"],
            registry=r,
        )
        self.log_unconfirmed = Counter(
            "pokedex_prediction_log_unconfirmed",
            "Predictions answered before their log row was committed (the log was too slow).",
            registry=r,
        )
        self._drift_gauges(r)
        self._feedback_metrics(r)
        self._species_seen: set[str] = set()
        self._lock = threading.Lock()

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format: this app's registry, or under several
        workers the sum over all of them (and this worker's model info, the same in each)."""
        folder = os.environ.get(MULTIPROC_DIR)
        if not folder:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=folder)
        info = self.registry.restricted_registry(["pokedex_model_info"])
        return generate_latest(merged) + generate_latest(info)

    def observe_prediction(
        self, species: str, probability: float, types: Sequence[str], known: bool
    ) -> None:
        """Count one prediction by species, type, confidence and open-set flag."""
        with self._lock:
            if species not in self._species_seen and len(self._species_seen) >= MAX_SPECIES_LABELS:
                species = "other"
            else:
                self._species_seen.add(species)
        self.species.labels(species=species).inc()
        for t in types:
            self.types.labels(type=t).inc()
        self.confidence.observe(probability)
        if not known:
            self.unknown.inc()

    def set_model(self, name: str, version: str, variant: str) -> None:
        """Publish which model is being served."""
        self.model_info.info({"name": name, "version": version, "variant": variant})
        self.ready.set(1)

    def _feedback_metrics(self, r: CollectorRegistry) -> None:
        # label values are fixed sets, every series exists from the start (verdicts at 0,
        # the accuracy NaN until verdicts arrive): a flood of bad verdicts adds no series
        self.feedback = Counter(
            "pokedex_feedback_verdicts",
            "Verdicts recorded, by kind: correct, species (another one) or not_pokemon.",
            ["verdict"],
            registry=r,
        )
        self.feedback_refused = Counter(
            "pokedex_feedback_refused",
            "Verdicts refused, by reason.",
            ["reason"],
            registry=r,
        )
        self.feedback_accuracy = Gauge(
            "pokedex_feedback_accuracy_ratio",
            "Share of the verdicts in the feedback window that agree with the model.",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.feedback_window = Gauge(
            "pokedex_feedback_window_verdicts",
            "Verdicts in the feedback window the accuracy is computed over.",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.images_kept = Counter(
            "pokedex_kept_images", "Images asked to be kept, by result.", ["result"], registry=r
        )
        for verdict in FEEDBACK_VERDICTS:
            self.feedback.labels(verdict=verdict)
        for reason in FEEDBACK_REFUSALS:
            self.feedback_refused.labels(reason=reason)
        for result in ("kept", "refused"):
            self.images_kept.labels(result=result)
        self.feedback_accuracy.set(math.nan)
        self.feedback_window.set(0)

    def publish_feedback(self, verdicts: int, accuracy: float | None) -> None:
        """Export the accuracy-by-feedback of the window (NaN with no verdict in it)."""
        self.feedback_window.set(verdicts)
        self.feedback_accuracy.set(math.nan if accuracy is None else accuracy)

    def _drift_gauges(self, r: CollectorRegistry) -> None:
        # label values: the 8 fixed DRIFT_FEATURES. Every series exists from the start (NaN
        # until a check measures it), so a check never changes which series a scrape shows.
        self.drift_detected = Gauge(
            "pokedex_drift_detected",
            "1 when the last drift check found drift, else 0.",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.drift_feature = Gauge(
            "pokedex_drift_feature_detected",
            "1 when the feature drifted in the last drift check, else 0.",
            ["feature"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.drift_p_value = Gauge(
            "pokedex_drift_feature_p_value",
            "P-value of the feature's drift test in the last check.",
            ["feature"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.drift_psi = Gauge(
            "pokedex_drift_feature_psi",
            "Population Stability Index of the feature in the last check.",
            ["feature"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.drift_window = Gauge(
            "pokedex_drift_window_predictions",
            "Predictions compared in the last drift check.",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.drift_checked = Gauge(
            "pokedex_drift_last_check_timestamp_seconds",
            "Unix time of the last drift check.",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.reference_confidence = Gauge(
            "pokedex_drift_reference_confidence_ratio",
            "Mean top-1 probability of the served model on its reference profile.",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.reference_confidence.set(math.nan)
        self._clear_features()

    def _clear_features(self) -> None:
        for name in DRIFT_FEATURES:
            self.drift_feature.labels(feature=name).set(0)
            self.drift_p_value.labels(feature=name).set(math.nan)
            if name != EMBEDDING:  # the joint embedding test has no PSI
                self.drift_psi.labels(feature=name).set(math.nan)

    def publish_drift(self, report: DriftReport, reference_confidence: float) -> None:
        """Export a drift check; features it did not test (too few predictions) read NaN."""
        self.drift_detected.set(1 if report.verdict == "drift" else 0)
        self.drift_window.set(report.predictions)
        self.drift_checked.set(report.checked_at.timestamp())
        self.reference_confidence.set(reference_confidence)
        self._clear_features()
        for f in report.features:
            self.drift_feature.labels(feature=f.name).set(1 if f.drifted else 0)
            self.drift_p_value.labels(feature=f.name).set(f.p_value)
            if f.psi is not None:
                self.drift_psi.labels(feature=f.name).set(f.psi)
