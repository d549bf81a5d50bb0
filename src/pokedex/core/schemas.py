"""Response and request bodies of the HTTP API: the single source of truth for its JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pokedex.dex.catalog import Ability
from pokedex.dex.evolution import EvolutionStage


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer."""

    detail: str


class UnprocessableBody(BaseModel):
    """A 422 of a route that can refuse in its own words or by the request's validation."""

    detail: str | list[dict[str, Any]] = Field(
        description="a message, or the list of fields that failed validation"
    )


class SpeciesScore(BaseModel):
    """One of the top-k species."""

    name: str
    display_name: str
    national_number: int | None
    probability: float = Field(ge=0, le=1)


class Weakness(BaseModel):
    """An attack type that hits for more than x1, with the combined multiplier (dual types)."""

    type: str
    multiplier: float


class ModelRef(BaseModel):
    """Which model answered."""

    name: str
    version: str
    variant: str


class Prediction(BaseModel):
    """What the Pokédex says about one image."""

    species: list[SpeciesScore]
    known: bool = Field(description="false when the image is probably none of the known species")
    types: list[str]
    stats: dict[str, int] | None
    weaknesses: list[Weakness]
    id: str | None = Field(
        None, description="this prediction's id: what POST /v1/feedback takes (a UUID)"
    )
    image_sha256: str | None = Field(
        None,
        description="sha256 of the cleaned copy kept when the request asked keep_image=true "
        "(null when not asked, or when it could not be kept)",
    )


class PredictResponse(Prediction):
    """``POST /v1/predict``."""

    request_id: str
    model: ModelRef
    latency_ms: float


class ItemError(BaseModel):
    """Why one item of a batch has no prediction."""

    status: int
    detail: str


class BatchItem(BaseModel):
    """One file of a batch, in request order: a prediction or an error."""

    index: int
    filename: str | None = None
    prediction: Prediction | None = None
    error: ItemError | None = None


class BatchResponse(BaseModel):
    """``POST /v1/predict/batch``."""

    request_id: str
    model: ModelRef
    items: list[BatchItem]
    latency_ms: float


class SpeciesInfo(BaseModel):
    """``GET /v1/species/{name}``."""

    name: str
    display_name: str
    national_number: int
    generation: int
    types: list[str]
    stats: dict[str, int]
    description: str | None = None
    weaknesses: list[Weakness]
    height_m: float | None = Field(None, description="absent when the bundle's catalog predates it")
    weight_kg: float | None = None
    abilities: list[Ability] = Field(default_factory=list, description="hidden ones flagged")
    evolution: list[EvolutionStage] = Field(
        default_factory=list, description="the whole line, earliest first; empty when unknown"
    )
    multipliers: list[Weakness] = Field(
        default_factory=list,
        description="every attack type that does not hit it for x1 (x4 to x0), strongest first",
    )


class SpeciesSummary(BaseModel):
    """One search hit: enough to list a species and look it up."""

    name: str
    display_name: str
    national_number: int
    types: list[str]


class SpeciesList(BaseModel):
    """``GET /v1/species``: matches in national-number order, name prefixes first."""

    total: int = Field(description="how many species match, before the limit")
    items: list[SpeciesSummary]


class TypeMatchups(BaseModel):
    """``GET /v1/types/{type}``: buckets ``x2``, ``x0.5`` and ``x0`` for attack and defense."""

    type: str
    attack: dict[str, list[str]] = Field(description="defending types this type hits")
    defense: dict[str, list[str]] = Field(description="attack types that hit this type")


class OpenSetInfo(BaseModel):
    """How "known" is decided, as `pokedex evaluate` fits it: known when score >= threshold.

    ``msp``: the largest calibrated probability; ``energy``: the negative free energy
    ``T * logsumexp(logits / T)``; ``cosine``: the largest cosine similarity of the embedding to
    the species centroids; ``energy+cosine``: the sum of those two, each standardised by the
    ``standardize`` mean and deviation (see :mod:`pokedex.core.openset`).
    """

    score: Literal["msp", "energy", "cosine", "energy+cosine"]
    threshold: float
    standardize: dict[str, tuple[float, float]] | None = None
    false_accept: float | None = Field(
        None, ge=0, le=1, description="share of generated non-Pokémon pictures the rule accepted"
    )
    false_reject: float | None = Field(
        None, ge=0, le=1, description="share of test images of known species the rule refused"
    )

    @model_validator(mode="after")
    def _parts_standardised(self) -> OpenSetInfo:
        if self.score == "energy+cosine" and set(self.standardize or {}) != {"energy", "cosine"}:
            raise ValueError("the energy+cosine score needs standardize for energy and cosine")
        return self


class ConfusedPair(BaseModel):
    """Two species the model mixes up on the test split, as `pokedex evaluate` counted them."""

    a: str
    b: str
    a_as_b: int = Field(ge=0, description="images of a predicted as b")
    b_as_a: int = Field(ge=0, description="images of b predicted as a")
    total: int = Field(ge=0)


class ModelInfo(ModelRef):
    """``GET /v1/model``."""

    num_classes: int
    input_size: int
    background: tuple[int, int, int] = Field(
        description="RGB the model flattens transparency onto before resizing to input_size"
    )
    runtime: str = Field("unknown", description="onnxruntime or openvino")
    precision: str = Field(
        "unknown",
        description="precision the runtime computes the float operations in (f32 everywhere: "
        "OpenVINO is told so, rather than picking bf16 where the CPU has it)",
    )
    flip_average: bool = Field(
        False,
        description="each answer is for the mean of the picture's and its mirror image's "
        "features (`pokedex export --flip-average`: twice the network's work)",
    )
    open_set: OpenSetInfo | None
    metrics: dict[str, float]
    confused_pairs: list[ConfusedPair] = Field(default_factory=list)
    loaded_at: datetime


class EmbeddingMap(BaseModel):
    """``GET /v1/model/embeddings``: the 2-D projection `pokedex evaluate --embeddings` stored.

    One entry per image of the evaluated split, in columns of equal length.
    """

    split: str
    x: list[float]
    y: list[float]
    species: list[str] = Field(description="true species of each image")
    predicted: list[str] = Field(description="the model's top-1 for each image")
    types: list[list[str]] = Field(description="types of the true species")

    @model_validator(mode="after")
    def _columns_align(self) -> EmbeddingMap:
        lengths = {len(c) for c in (self.x, self.y, self.species, self.predicted, self.types)}
        if len(lengths) != 1:
            raise ValueError(f"embedding columns differ in length: {sorted(lengths)}")
        return self


class Health(BaseModel):
    """``GET /healthz``."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """``GET /readyz``: 200 when a model serves, 503 with the reason otherwise."""

    status: Literal["ready", "unavailable"]
    model: ModelRef | None = None
    detail: str | None = None


class ReloadRequest(BaseModel):
    """``POST /v1/admin/reload``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=1024, description="bundle folder or models:/ URI")


class ReloadResponse(BaseModel):
    """The model before and after a successful reload."""

    previous: ModelRef | None
    current: ModelRef


class FeedbackRequest(BaseModel):
    """``POST /v1/feedback``: what the picture behind one prediction really shows."""

    model_config = ConfigDict(extra="forbid")

    prediction_id: UUID = Field(description="the id of the prediction answer")
    verdict: str = Field(
        min_length=1,
        max_length=100,
        description='"correct" (the top-1 species is right), "not_pokemon", or the name of '
        "the species it shows (any name GET /v1/species knows)",
    )


class FeedbackResponse(BaseModel):
    """A recorded verdict."""

    prediction_id: UUID
    verdict: Literal["correct", "species", "not_pokemon"]
    species: str | None = Field(description="the species the verdict says it shows, if any")
    agrees: bool = Field(description="whether the verdict agrees with the model's answer")
    received_at: datetime


class FeedbackAccuracy(BaseModel):
    """``GET /v1/monitoring/feedback``: how often recent verdicts agree with the model."""

    window: str
    verdicts: int
    agreeing: int
    accuracy: float | None = Field(description="agreeing / verdicts; null with no verdict")
    by_verdict: dict[str, int]


class ReviewRequest(BaseModel):
    """``POST /v1/admin/feedback/{prediction_id}/review``."""

    model_config = ConfigDict(extra="forbid")

    review: Literal["accepted", "rejected"]


class ReviewResponse(BaseModel):
    """The review now stored on a verdict."""

    prediction_id: UUID
    review: Literal["accepted", "rejected"]


class ImageDeleted(BaseModel):
    """``DELETE /v1/admin/images/{key}``: what deleting one image removed."""

    sha256: str | None = Field(description="the kept image's hash, when one was kept")
    kept_images: int = Field(description="kept copies deleted (0 or 1: one per hash)")
    links: int = Field(description="predictions that no longer point at it")
    logged_images: int = Field(description="raw uploads cleared from the prediction log")
