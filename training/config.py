"""Training options in one place, and the one environment variable training reads.

TrainConfig is the one owner of the options, their defaults and their limits: the CLI's flags
(`add_arguments`), the service's /train schema (`OPTIONS`) and the job runner's command line
(`TrainConfig.to_argv`) are all derived from it. No TensorFlow here: the service imports this module."""

from __future__ import annotations

import argparse
import os
import typing
from dataclasses import Field, asdict, dataclass, field, fields
from pathlib import Path

from training.layout import check_model_name

# Buildable architectures (training.architectures builds them; kept here so the service can validate
# names without importing TensorFlow).
ARCHITECTURE_NAMES = ("lenet5", "lenet5-sigmoid", "lenet5-compact", "lenet5-wide", "cnn-dropout", "lenet5-plus")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
LR_SCHEDULES = ("plateau", "cosine", "constant")
# auto: promote only if not worse than the newest version by more than the margin (the gate);
# never: keep a candidate outside the repository; force: always add a new version.
PROMOTE_POLICIES = ("auto", "never", "force")
# Which epoch's weights a run keeps: the best validation accuracy's, or the final epoch's.
KEEP_WEIGHTS = ("best", "last")

# In a job dir: JSON-lines progress written by the CLI, read by the service (the last line is
# {"event": "finished", ...}). Here, not in training.pipeline, so the service needs no TensorFlow.
PROGRESS_FILE = "progress.jsonl"

# The only environment variable the training package reads (the service passes it on explicitly).
MNIST_PATH_ENV = "LENET_MNIST_PATH"


def mnist_path_from_env() -> Path | None:
    value = os.environ.get(MNIST_PATH_ENV, "").strip()
    return Path(value) if value else None


def _option(
    default: object, help: str, *, choices: tuple[str, ...] = (), metavar: str | None = None, **bounds: float
) -> typing.Any:
    """A TrainConfig field with what the CLI and the API show and check: help, choices, bounds (ge/gt/le/lt)."""
    return field(default=default, metadata={"help": help, "choices": choices, "metavar": metavar, "bounds": bounds})


@dataclass
class TrainConfig:
    arch: str = _option("lenet5", "architecture to train", choices=ARCHITECTURE_NAMES)
    epochs: int = _option(12, "training epochs", ge=1, le=200)
    batch_size: int = _option(128, "images per training step", ge=8, le=4096)
    learning_rate: float = _option(1e-3, "initial learning rate", gt=0, le=1)
    optimizer: str = _option("adam", "optimizer", choices=OPTIMIZERS)
    augment: bool = _option(False, "random shifts and rotations of the training images")
    augment_rotation: float = _option(10.0, "with --augment: largest rotation, in degrees (0: none)", ge=0, le=90)
    augment_shift: float = _option(
        0.1, "with --augment: largest shift, as a share of the image's height and width (0: none)", ge=0, lt=1
    )
    augment_zoom: float = _option(0.1, "with --augment: largest zoom in or out, as a share (0: none)", ge=0, lt=1)
    seed: int = _option(0, "random seed (weights, validation split, shuffling)", ge=0, le=2**31 - 1)
    validation_split: float = _option(0.1, "share of the training images held out for validation", gt=0, lt=1)
    train_limit: int | None = _option(None, "train on the first N images only (quick runs)", ge=100, le=60_000)
    early_stopping: int | None = _option(
        None, "stop after this many epochs without a better validation accuracy", metavar="PATIENCE", ge=1
    )
    lr_schedule: str = _option("plateau", "learning-rate schedule", choices=LR_SCHEDULES)
    weight_decay: float = _option(
        0.0, "decoupled weight decay, any optimizer (with adam: AdamW); 0: none", ge=0, le=0.1
    )
    label_smoothing: float = _option(
        0.0, "share of each target spread over all classes in the loss; 0: none", ge=0, lt=1
    )
    wrong_cuts: int = _option(
        0,
        "add this many training images cut from numbers written with the training digits: cuts holding one "
        "digit keep its label, cuts holding part of a digit or most of two are trained toward every class "
        "equally (so the model doubts what is not one digit, which POST /read relies on); 0: none",
        ge=0,
        le=500_000,
    )
    keep: str = _option(
        "best",
        "weights to evaluate and export: best: the epoch with the best validation accuracy; last: the final "
        "epoch (suits --lr-schedule cosine, whose last epochs are best while a small validation split is noisy)",
        choices=KEEP_WEIGHTS,
    )
    data: str | None = _option(
        None, f"mnist.npz or a folder of IDX files (None: ${MNIST_PATH_ENV}, then keras' download)"
    )
    repository: str = _option("models", "model repository folder")
    name: str | None = _option(None, "model name in the repository (None: the arch)")
    tensorboard: bool = _option(False, "write TensorBoard logs under the work dir")
    work_dir: str | None = _option(None, "checkpoints and resume state (None: runs/NAME)")
    threads: int | None = _option(None, "TensorFlow threads (None: all cores; the service's jobs use 1)", ge=1)
    export: bool = _option(True, "export after evaluating (--no-export: train and evaluate only)")
    promote: str = _option(
        "auto",
        "auto: add a new version only if its test accuracy reaches the gate; never: keep "
        "a candidate outside the repository; force: always add a new version",
        choices=PROMOTE_POLICIES,
    )
    gate_accuracy: float | None = _option(
        None,
        "the test accuracy promote=auto needs (None: the newest version's "
        "recorded accuracy minus the gate margin; no version yet: no gate)",
        ge=0,
        le=1,
    )
    gate_margin: float = _option(
        0.002, "how much less accurate than the newest version promote=auto accepts", ge=0, le=1
    )
    job_dir: str | None = _option(
        None, f"write {PROGRESS_FILE} here, and keep candidates that are not promoted (the service sets it)"
    )

    def __post_init__(self) -> None:
        for name, option in OPTIONS.items():
            problem = option.problem(getattr(self, name))
            if problem:
                raise ValueError(f"{name}: {problem}")
        check_model_name(self.model_name)  # the repository's one rule for names (never a path)

    @property
    def model_name(self) -> str:
        return self.name or self.arch

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def to_argv(self) -> list[str]:
        """The `python -m training train` arguments that give back this configuration."""
        argv: list[str] = []
        for name, option in OPTIONS.items():
            value = getattr(self, name)
            if isinstance(value, bool):
                argv.append(option.flag if value else f"--no-{option.flag[2:]}")
            elif value is not None:  # None is every optional field's default
                argv += [option.flag, str(value)]
        return argv

    @classmethod
    def from_arguments(cls, args: argparse.Namespace) -> TrainConfig:
        return cls(**{name: getattr(args, name) for name in OPTIONS})


@dataclass(frozen=True)
class Option:
    """One TrainConfig field as the CLI and the API see it."""

    name: str
    kind: type  # int, float, str or bool (None allowed when the default is None)
    default: object
    help: str
    choices: tuple[str, ...]
    metavar: str | None
    bounds: dict[str, float]

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def problem(self, value: object) -> str | None:
        """Why `value` is not allowed, or None."""
        if value is None:
            return None if self.default is None else "a value is required"
        if self.choices and value not in self.choices:
            return f"unknown {self.name} {value!r}; choose {', '.join(self.choices[:-1])} or {self.choices[-1]}"
        checks = {
            "ge": (float.__ge__, ">="),
            "gt": (float.__gt__, ">"),
            "le": (float.__le__, "<="),
            "lt": (float.__lt__, "<"),
        }
        for key, limit in self.bounds.items():
            holds, sign = checks[key]
            # value is untyped here; every option with bounds holds an int or a float.
            if not holds(float(value), float(limit)):  # type: ignore[arg-type]
                return f"must be {sign} {limit:g}, got {value}"
        return None

    def parse(self, text: str) -> object:
        """argparse `type=`: convert, then check the bounds (so a bad value stops the CLI before any work)."""
        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a valid {self.kind.__name__}: {text!r}") from None
        problem = None if self.choices else self.problem(value)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value


def _option_of(spec: Field[object], hint: object) -> Option:
    kind = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
    meta = spec.metadata
    return Option(
        spec.name,
        typing.cast(type, kind),
        spec.default,
        meta["help"],
        meta["choices"],
        meta["metavar"],
        dict(meta["bounds"]),
    )


_HINTS = typing.get_type_hints(TrainConfig)
OPTIONS: dict[str, Option] = {spec.name: _option_of(spec, _HINTS[spec.name]) for spec in fields(TrainConfig)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (--batch-size for batch_size) with its default, choices and limits."""
    for option in OPTIONS.values():
        if option.kind is bool:
            parser.add_argument(
                option.flag,
                dest=option.name,
                action=argparse.BooleanOptionalAction,
                default=option.default,
                help=option.help,
            )
        else:
            parser.add_argument(
                option.flag,
                dest=option.name,
                type=option.parse,
                default=option.default,
                choices=option.choices or None,
                metavar=option.metavar,
                help=option.help,
            )


@dataclass(frozen=True)
class LineReaderConfig:
    """One run of `python -m training line-reader` (training.line_reader): POST /read's line reader."""

    count: int = 80_000  # training lines written
    epochs: int = 16
    batch_size: int = 128
    learning_rate: float = 2e-3  # the peak, after a warm-up, then a cosine decay
    seed: int = 0
    processes: int = 2  # writing the lines: one process per core
    init: str | None = None  # start from this line reader (.keras) or version folder's, not from random weights
