"""All service configuration: one settings class, read from LENET_* environment variables.
Nothing else in the service reads the environment."""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from training.config import TrainConfig  # plain data: no TensorFlow import


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LENET_", env_file=None, extra="ignore")

    models_dir: Path = Field(Path("models"), description="model repository: <name>/<integer version>/")
    default_model: str = Field("lenet5", description="model served when a request names none")
    read_model: str = Field(
        "lenet5-read",
        description="model POST /read uses when a request names none, while the repository serves it (else the default model)",
    )
    mnist_path: Path | None = Field(None, description="MNIST .npz or IDX folder, for /train")
    admin_token: SecretStr | None = Field(None, description="bearer token for the admin endpoints; unset disables them")

    # Batching (names after TensorFlow Serving's batching knobs).
    max_batch_size: int = Field(64, ge=1, le=4096, description="images per model call, at most")
    # 0 (as TensorFlow Serving advises for CPUs): a batch closes as soon as the model is free, and
    # the images that arrive while it computes form the next one. bench/load.py measured 1.0 ms p50
    # at one client against 3.3 ms with 2 ms, and the same c=64 throughput (2,001 vs 2,140 req/s).
    max_delay_ms: float = Field(0.0, ge=0, le=1000, description="how long a batch waits for more after its first image")
    # 16,384: the in-flight limit already bounds single-image requests; this bounds big ones. With 2,048,
    # 64 clients sending 256-image requests were shed after their bodies were parsed, and the parsing of
    # shed bodies left 702 images/s served; with 16,384, 12,504 images/s at p99 1.9 s
    # (bench/protocol.py --only service --vus-256 64 --env LENET_MAX_QUEUE_IMAGES=..., 2026-11-29).
    max_queue_images: int = Field(16384, ge=1, description="images waiting at most; beyond it requests get 503")
    request_timeout_s: float = Field(
        10.0,
        gt=0,
        description="a request still queued (for the model, or for a reading slot) this long after it arrived gets 504",
    )
    max_inflight_requests: int = Field(
        256, ge=1, description="requests being handled at once; beyond it 503 at once (health and metrics exempt)"
    )
    # /read's images are CPU work (tens to hundreds of ms each), not the model's batches: bounded apart, so that a
    # burst is turned away at once rather than queued to max_inflight_requests and answered after its timeout.
    read_slots: int = Field(0, ge=0, description="/read requests reading their images at once (0: one per CPU core)")
    max_read_queue: int = Field(
        16, ge=0, description="/read requests waiting for a reading slot at most; beyond it 503 at once"
    )

    # Input limits.
    max_body_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="request body limit (413 above)")
    max_instances: int = Field(1024, ge=1, description="images or instances in one request, at most")
    max_image_pixels: int = Field(16_000_000, ge=1, description="decoded pixels per image, at most (bomb guard)")
    body_timeout_s: float = Field(10.0, gt=0, description="a request body not fully received by then gets 408")
    max_read_digits: int = Field(32, ge=1, le=1000, description="digits (or separate marks) in one image /read reads")

    # Repository watching.
    poll_interval_s: float = Field(2.0, gt=0, description="how often the repository is scanned for new versions")
    warmup_batches: int = Field(3, ge=0, description="warm-up calls of each batch size before a version serves")

    # Training jobs (/train).
    jobs_dir: Path = Field(Path("jobs"), description="training job records, logs and rejected candidates")
    train_gate_margin: float = Field(
        TrainConfig.gate_margin,
        ge=0,
        le=1,
        description="promote=auto accepts a new version at most this much less accurate than the serving one",
    )
    train_threads: int = Field(1, ge=1, description="TensorFlow threads of a training job")
    train_nice: int = Field(10, ge=0, le=19, description="CPU niceness of a training job")
    train_timeout_s: float = Field(
        6 * 3600.0,
        gt=0,
        description="a training job still running after this many seconds is stopped and marked failed",
    )
    train_stall_s: float = Field(
        600.0,
        gt=0,
        description="a training job that writes no progress for this many seconds is stopped and marked failed",
    )

    host: str = Field("127.0.0.1", description="address to listen on (0.0.0.0: every interface)")
    port: int = Field(8000, ge=1, le=65535, description="TCP port, 1-65535")
    # KServe V2 over gRPC (app.grpc_v2), in the same process, on the same repository and batchers.
    grpc_port: int = Field(8001, ge=0, le=65535, description="gRPC port of the V2 inference service (0: no gRPC)")
    grpc_max_message_bytes: int | None = Field(
        None,
        ge=1024,
        description="largest gRPC request message (RESOURCE_EXHAUSTED above); unset: LENET_MAX_BODY_BYTES",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        "info", description="debug also shows TensorFlow's native start-up lines"
    )
    access_log: bool = Field(False, description="uvicorn access log (costs throughput)")
    keep_alive_s: int = Field(
        5,
        ge=1,
        description="an idle keep-alive connection is closed after this; keep it above "
        "the idle timeout of any proxy or load balancer in front",
    )
    graceful_shutdown_s: float = Field(20.0, ge=0, description="on SIGTERM, how long in-flight requests get to finish")
    # asyncio's own loop by default: uvloop's libuv accepts one connection per loop iteration (libuv#3696),
    # so under overload new connections waited up to 30 s in the listen queue (bench/overload.py
    # --env LENET_LOOP=uvloop); asyncio accepts every waiting one each time, for ~3% less peak throughput.
    loop: Literal["asyncio", "uvloop"] = Field("asyncio", description="event loop of `python -m app`")

    @property
    def max_delay_s(self) -> float:
        return self.max_delay_ms / 1000.0

    @property
    def reading_slots(self) -> int:
        if self.read_slots:
            return self.read_slots
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

    @property
    def grpc_max_receive_bytes(self) -> int:
        return self.grpc_max_message_bytes or self.max_body_bytes

    @field_validator("admin_token")
    @classmethod
    def _token_without_whitespace(cls, token: SecretStr | None) -> SecretStr | None:
        # A secret mounted from a file keeps the file's last newline (kubectl create secret --from-file):
        # the token is what is between the whitespace, as a client sends it. Whitespace only: no token.
        stripped = None if token is None else token.get_secret_value().strip()
        return SecretStr(stripped) if stripped else None

    @field_validator("grpc_port")
    @classmethod
    def _ports_differ(cls, grpc_port: int, info: ValidationInfo) -> int:
        if grpc_port == info.data.get("port"):
            raise ValueError(f"LENET_PORT is {grpc_port} too; give gRPC another port, or 0 to turn it off")
        return grpc_port


def environment_without_secrets() -> dict[str, str]:
    """This process's environment less the settings that hold secrets (LENET_ADMIN_TOKEN): what a child
    process (a training job) is given. It never needs them, and its environment is readable in /proc."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    secrets = {
        f"{prefix}{name}".upper()
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
    }
    return {name: value for name, value in os.environ.items() if name.upper() not in secrets}


def settings_error_lines(error: ValidationError) -> list[str]:
    """One line per bad variable, named as the user set it, with what it accepts."""
    lines = []
    for problem in error.errors():
        name = str(problem["loc"][0]) if problem["loc"] else ""
        field = Settings.model_fields.get(name)
        variable = f"{Settings.model_config.get('env_prefix', '')}{name}".upper()
        hint = f" ({field.description})" if field is not None and field.description else ""
        lines.append(f"error: {variable}={problem.get('input')!r}: {problem['msg']}{hint}")
    return lines


@lru_cache
def get_settings() -> Settings:
    """The settings of this process; a bad LENET_* value ends it with status 2 and one line per variable."""
    try:
        return Settings()
    except ValidationError as error:
        print("\n".join(settings_error_lines(error)), file=sys.stderr)
        raise SystemExit(2) from None
