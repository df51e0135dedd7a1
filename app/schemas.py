"""Response shapes, named by role; used for the OpenAPI document and its examples."""
from __future__ import annotations

from pydantic import BaseModel, Field

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
