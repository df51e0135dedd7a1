"""Response shapes, named by role; used for the OpenAPI document and its examples."""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from app.imaging import NO_DIGIT_REASONS
from app.jobs.records import JobState
from training.config import ARCHITECTURE_NAMES, OPTIONS, PROMOTE_POLICIES  # plain data: no TensorFlow import
from training.layout import MODEL_NAME_PATTERN

# Literal[tuple] spreads the tuple's values at run time (pydantic validates them); mypy accepts only literals.
Architecture = Literal[ARCHITECTURE_NAMES]  # type: ignore[valid-type]
PromotePolicy = Literal[PROMOTE_POLICIES]  # type: ignore[valid-type]
NoDigitReason: TypeAlias = Literal[tuple(NO_DIGIT_REASONS)] | None  # type: ignore[valid-type]  # imaging owns the codes

EXAMPLE_PROBABILITIES = [0.0, 0.0, 0.001, 0.0, 0.0, 0.0, 0.0, 0.998, 0.0, 0.001]


class ModelRef(BaseModel):
    name: str = Field(examples=["lenet5"])
    version: int = Field(examples=[1])


NO_DIGIT_NOTE = "null when the image holds no digit (see `reason`)"


class DigitPrediction(BaseModel):
    """One image's answer. An image that holds no digit is answered with `digit`, `confidence` and
    `probabilities` null and a `reason`; the other images of the request are answered as usual."""

    digit: int | None = Field(ge=0, le=9, examples=[7], description=f"the digit recognised; {NO_DIGIT_NOTE}")
    confidence: float | None = Field(examples=[0.998], description=f"its probability; {NO_DIGIT_NOTE}")
    probabilities: list[float] | None = Field(
        min_length=10,
        max_length=10,
        examples=[EXAMPLE_PROBABILITIES],
        description=f"the probability of each digit 0..9; {NO_DIGIT_NOTE}",
    )
    reason: NoDigitReason = Field(
        None,
        description="present only when `digit` is null: why the image holds no digit. "
        + "; ".join(f"`{code}`: {meaning}" for code, meaning in NO_DIGIT_REASONS.items()),
        examples=[next(iter(NO_DIGIT_REASONS))],
        json_schema_extra={"x-reasons": {**NO_DIGIT_REASONS}},  # code -> meaning, for clients (the page shows it)
    )
    image: str | None = Field(None, description="base64 PNG of the 28x28 input the model saw (?return_image=true)")


class PredictResponse(BaseModel):
    model: ModelRef
    predictions: list[DigitPrediction]


class ReadDigit(BaseModel):
    digit: int = Field(ge=0, le=9, examples=[4])
    confidence: float = Field(examples=[0.99], description="its probability")
    box: list[int] = Field(
        min_length=4,
        max_length=4,
        examples=[[12, 30, 40, 61]],
        description="[x, y, width, height] in the image's pixels",
    )


class NumberReading(BaseModel):
    """One image's number. An image that holds no digit is read as `text` "" with a `reason`."""

    text: str = Field(examples=["4021"], description="the digits left to right")
    confidence: float | None = Field(
        examples=[0.97],
        description=(
            "with a line reader (lenet5-read v4 and later), the text's posterior among the texts weighed; "
            "without, that of the least certain digit (null when there is none)"
        ),
    )
    digits: list[ReadDigit]
    reason: NoDigitReason = Field(
        None, description="present only when `text` is empty: why (the codes of /predict's `reason`)"
    )


class ReadResponse(BaseModel):
    model: ModelRef
    readings: list[NumberReading]


class ErrorDetail(BaseModel):
    code: str = Field(examples=["bad_image"])
    message: str = Field(examples=["image[0] (digit.png): not a readable image"])


class ErrorResponse(BaseModel):
    error: ErrorDetail


class VersionInfo(BaseModel):
    version: int
    state: str = Field(
        description="serving | loaded (an older version loaded for pinned requests) | loading | available | "
        "refused | rejected"
    )
    test_accuracy: float | None = None
    parameters: int | None = None
    architecture: str | None = None
    created: str | None = None
    refused_reason: str | None = None


class ModelInfo(BaseModel):
    name: str
    serving_version: int | None
    default: bool
    unloaded: bool = Field(
        False, description="unloaded by an admin (V2 repository extension): serves nothing until loaded"
    )
    versions: list[VersionInfo]


class ModelsResponse(BaseModel):
    models: list[ModelInfo]


class LivenessResponse(BaseModel):
    status: str = Field(examples=["ok"])


class HealthResponse(BaseModel):
    status: str = Field(examples=["ready"])
    models: dict[str, int] = Field(default_factory=dict, description="model name -> version serving")


class V2Error(BaseModel):
    """The Open Inference Protocol's error object: every /v2 route answers errors so."""

    error: str = Field(examples=["unknown input 'x'; this model takes 'image'"])


class V2IndexEntry(BaseModel):
    """One entry of the model repository extension's index."""

    name: str = Field(examples=["lenet5"])
    version: str | None = Field(None, examples=["1"], description="absent for a model folder with no version")
    state: Literal["READY", "UNAVAILABLE", "LOADING", "UNLOADING", "UNKNOWN"] = Field(examples=["READY"])
    reason: str = Field(examples=[""], description="why it is in that state (empty when READY)")


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "unreadable image, bad array, too many digits or bad request",
    404: "no such model or version",
    413: "body too large",
    415: "unsupported media type or content encoding",
    422: "schema error",
    503: "overloaded (with Retry-After) or not ready",
    504: "waited past the request deadline",
}
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse, "description": description} for status, description in ERROR_DESCRIPTIONS.items()
}
V2_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": V2Error, "description": description} for status, description in ERROR_DESCRIPTIONS.items()
}
V2_ADMIN_RESPONSES: dict[int | str, dict[str, object]] = {
    **V2_ERROR_RESPONSES,
    401: {"model": V2Error, "description": "missing or wrong admin token"},
    403: {"model": V2Error, "description": "admin endpoints disabled (no LENET_ADMIN_TOKEN)"},
}


def _train_option(name: str) -> Any:
    """A TrainRequest field with the default, limits and help of training.config.TrainConfig's field."""
    option, bounds = OPTIONS[name], OPTIONS[name].bounds
    return Field(
        option.default,
        description=option.help,
        ge=bounds.get("ge"),
        gt=bounds.get("gt"),
        le=bounds.get("le"),
        lt=bounds.get("lt"),
    )


class TrainRequest(BaseModel):
    """A training job's options: those of training.config.TrainConfig the API offers, with its defaults."""

    model_config = ConfigDict(extra="forbid")

    arch: Architecture = _train_option("arch")
    model: str | None = Field(
        None, pattern=MODEL_NAME_PATTERN, description="model name in the repository (default: the default model)"
    )
    epochs: StrictInt = _train_option("epochs")  # true is not 1 epoch, nor "3" three
    batch_size: StrictInt = _train_option("batch_size")
    learning_rate: StrictFloat = _train_option("learning_rate")
    augment: StrictBool = _train_option("augment")
    seed: StrictInt = _train_option("seed")
    train_limit: StrictInt | None = _train_option("train_limit")
    promote: PromotePolicy = _train_option("promote")


class TrainAccepted(BaseModel):
    job_id: str
    status_url: str


class TrainProgress(BaseModel):
    epoch: int | None = None
    epochs: int | None = None
    step: int | None = None
    steps: int | None = None
    loss: float | None = None
    accuracy: float | None = None
    val_accuracy: float | None = None
    elapsed_s: float | None = None
    eta_s: float | None = None
    fraction: float | None = Field(None, description="share of the planned training steps done")
    skipped_lines: int = Field(0, description="progress-file lines that were not events (torn or garbage)")


class JobPublic(BaseModel):
    job_id: str
    state: JobState
    options: dict[str, object]
    created: float
    started: float | None
    finished: float | None
    progress: TrainProgress
    gate_accuracy: float | None = Field(description="test accuracy promote=auto required")
    version: int | None = Field(description="the version this job added to the repository")
    test_accuracy: float | None
    candidate: str | None = Field(description="where a candidate that was not promoted is kept")
    reason: str = Field(description="why it failed, was rejected or cancelled")
    exit_code: int | None = Field(None, description="the training process's exit status (negative: its signal)")
    log_tail: list[str] = Field(default_factory=list)


class JobsPublic(BaseModel):
    jobs: list[JobPublic]


# OpenAPI request bodies of the V2 routes (they read their bodies themselves: binary data, compression).
V2_INFER_BODY: dict[str, object] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["inputs"],
                "properties": {
                    "id": {"type": "string"},
                    "inputs": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["name", "shape", "datatype"],
                            "properties": {
                                "name": {"type": "string", "enum": ["image"]},
                                "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                                "datatype": {"type": "string", "enum": ["FP32", "FP64", "FP16", "UINT8"]},
                                "data": {"type": "array"},
                                "parameters": {"type": "object"},
                            },
                        },
                    },
                    "outputs": {"type": "array", "items": {"type": "object"}},
                    "parameters": {"type": "object"},
                },
            },
            "example": {
                "inputs": [{"name": "image", "shape": [1, 28, 28, 1], "datatype": "FP32", "data": [0.0] * 784}]
            },
        },
        "application/octet-stream": {
            "schema": {"type": "string", "format": "binary"},
            "description": "binary tensor extension: JSON header of "
            "Inference-Header-Content-Length bytes, then raw tensors",
        },
    },
}
V2_REPOSITORY_BODY: dict[str, dict[str, object]] = {
    "index": {
        "required": False,
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
                "example": {"ready": True},
            }
        },
    },
    "load": {
        "required": False,
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"parameters": {"type": "object", "maxProperties": 0}}},
                "example": {},
            }
        },
    },
    "unload": {
        "required": False,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "parameters": {
                            "type": "object",
                            "properties": {"unload_dependents": {"type": "boolean"}},
                            "additionalProperties": False,
                        }
                    },
                },
                "example": {"parameters": {"unload_dependents": False}},
            }
        },
    },
}
