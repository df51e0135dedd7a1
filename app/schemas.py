"""Response shapes, named by role; used for the OpenAPI document and its examples."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from training.config import ARCHITECTURE_NAMES  # a plain tuple: no TensorFlow import

Architecture = Literal[ARCHITECTURE_NAMES]  # type: ignore[valid-type]

EXAMPLE_PROBABILITIES = [0.0, 0.0, 0.001, 0.0, 0.0, 0.0, 0.0, 0.998, 0.0, 0.001]


class ModelRef(BaseModel):
    name: str = Field(examples=["lenet5"])
    version: int = Field(examples=[1])


class DigitPrediction(BaseModel):
    digit: int = Field(ge=0, le=9, examples=[7])
    confidence: float = Field(examples=[0.998])
    probabilities: list[float] = Field(min_length=10, max_length=10, examples=[EXAMPLE_PROBABILITIES])
    image: str | None = Field(None, description="base64 PNG of the 28x28 input the model saw (?return_image=true)")


class PredictResponse(BaseModel):
    model: ModelRef
    predictions: list[DigitPrediction]


class ErrorDetail(BaseModel):
    code: str = Field(examples=["bad_image"])
    message: str = Field(examples=["image[0] (digit.png): not a readable image"])


class ErrorResponse(BaseModel):
    error: ErrorDetail


class VersionInfo(BaseModel):
    version: int
    state: str = Field(description="serving | available | refused | rejected")
    test_accuracy: float | None = None
    parameters: int | None = None
    architecture: str | None = None
    created: str | None = None
    refused_reason: str | None = None


class ModelInfo(BaseModel):
    name: str
    serving_version: int | None
    default: bool
    versions: list[VersionInfo]


class ModelsResponse(BaseModel):
    models: list[ModelInfo]


class HealthResponse(BaseModel):
    status: str = Field(examples=["ok"])
    models: dict[str, int] = Field(default_factory=dict, description="model name -> version serving")


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "unreadable image, bad array or bad request",
        404: "no such model or version",
        413: "body too large",
        415: "unsupported media type",
        422: "schema error",
        503: "overloaded (with Retry-After) or not ready",
        504: "waited past the request deadline",
    }.items()
}


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arch: Architecture = Field("lenet5", description="architecture to train")
    model: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                              description="model name in the repository (default: the default model)")
    epochs: int = Field(5, ge=1, le=200)
    batch_size: int = Field(128, ge=8, le=4096)
    learning_rate: float = Field(1e-3, gt=0, le=1)
    augment: bool = False
    seed: int = Field(0, ge=0, le=2**31 - 1)
    train_limit: int | None = Field(None, ge=100, le=60_000, description="train on the first N images only")
    promote: Literal["auto", "never", "force"] = Field(
        "auto", description="auto: only if not worse than the serving version by more than the margin; "
                            "never: keep the candidate only; force: always")


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


class JobPublic(BaseModel):
    job_id: str
    state: str = Field(description="queued | running | succeeded | failed | cancelled | rejected")
    options: dict[str, object]
    created: float
    started: float | None
    finished: float | None
    progress: TrainProgress
    gate_accuracy: float | None = Field(description="test accuracy promote=auto required")
    version: int | None = Field(description="the version this job added to the repository")
    test_accuracy: float | None
    candidate: str | None = Field(description="where a candidate that was not promoted is kept")
    reason: str
    log_tail: list[str] = Field(default_factory=list)


class JobsPublic(BaseModel):
    jobs: list[JobPublic]
