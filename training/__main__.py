"""Command line: python -m training {train,evaluate,summary,export,combine,fetch-mnist} ..."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the log

from training.config import PROGRESS_FILE, LineReaderConfig, TrainConfig, add_arguments


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    defaults = TrainConfig()

    train = sub.add_parser(
        "train",
        help="train an architecture, evaluate it, export a new version",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Every option is a field of training.config.TrainConfig, with its default. "
        "By default a new version is added only if it is not worse than the newest "
        "one (--promote auto); --promote force adds it whatever its accuracy.",
    )
    add_arguments(train)

    evaluate = sub.add_parser("evaluate", help="score an exported version on the test set")
    evaluate.add_argument("version_dir", type=Path)
    evaluate.add_argument("--data", default=None)
    evaluate.add_argument("--report-dir", type=Path, default=None, help="also draw the figures there")
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")

    summary = sub.add_parser("summary", help="Keras summary and the per-layer parameter explanation")
    summary.add_argument("--arch", default=defaults.arch)

    export = sub.add_parser("export", help="export a checkpoint (weights file) as a new version")
    export.add_argument("--arch", required=True)
    export.add_argument("--weights", required=True, type=Path, help="e.g. runs/lenet5/best.weights.h5")
    export.add_argument("--data", default=None, help="test data for the metadata's accuracy")
    export.add_argument("--repository", default=defaults.repository)
    export.add_argument("--name", default=None)
    export.add_argument(
        "--promote",
        choices=("auto", "force"),
        default="auto",
        help="auto: export only if its test accuracy reaches the gate, as `train` does (the newest version's accuracy "
        "minus --gate-margin); force: always",
    )
    export.add_argument("--gate-margin", type=float, default=defaults.gate_margin)

    combine = sub.add_parser(
        "combine",
        help="exported versions answering as one (the geometric mean of their probabilities), as a new version",
    )
    combine.add_argument("members", nargs="+", type=Path, help="version folders, e.g. models/lenet5-read/2")
    combine.add_argument("--name", required=True, help="the model the ensemble is a new version of")
    combine.add_argument("--data", default=None, help="test data for the metadata's accuracy")
    combine.add_argument("--repository", default=defaults.repository)
    combine.add_argument(
        "--line-reader",
        type=Path,
        default=None,
        help="a line reader the version also serves: a .keras file (`line-reader`), or a version folder serving one",
    )
    line = sub.add_parser(
        "line-reader",
        help="train POST /read's line reader (a CTC model over whole number lines) into a .keras file",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    line_defaults = LineReaderConfig()
    line.add_argument("--out", type=Path, default=Path("runs/line_reader.keras"))
    line.add_argument("--data", default=None, help="mnist.npz or IDX folder (default: LENET_MNIST_PATH, else download)")
    for name in ("count", "epochs", "batch_size", "seed", "processes"):
        line.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(line_defaults, name))
    line.add_argument("--learning-rate", type=float, default=line_defaults.learning_rate)
    line.add_argument(
        "--init", default=None, help="start from this line reader: a .keras file, or a version folder that serves one"
    )
    fetch = sub.add_parser(
        "fetch-mnist",
        help="write mnist.npz where the containers read it (data/, mounted by "
        "the compose files): keras' download, or --from a local copy",
    )
    fetch.add_argument(
        "--to", type=Path, default=Path("data/mnist.npz"), help="where to write it (default: %(default)s)"
    )
    fetch.add_argument(
        "--from",
        dest="source",
        default=None,
        help="offline: an mnist.npz or a folder of the four IDX files, checked and copied",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from training.data import DataError

    try:
        return COMMANDS[args.command](args)
    except (DataError, ValueError, OSError) as exc:  # a user's mistake (a path, an option): one line, no traceback
        _record_failure(args, str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: what happened and what to do, not a traceback through Keras
        _record_failure(args, "interrupted")
        print(
            "interrupted: run the same command again to resume after the last finished epoch (runs/NAME, --work-dir)",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:
        _record_failure(args, f"{type(exc).__name__}: {exc}")
        raise


def _record_failure(args: argparse.Namespace, error: str) -> None:
    """The cause as the last progress event, for whoever watches the job (the log has TensorFlow's lines too)."""
    job_dir = getattr(args, "job_dir", None)
    if job_dir is None:
        return
    from training.progress import append_event

    append_event(Path(job_dir) / PROGRESS_FILE, "failed", error=error)


def cmd_train(args: argparse.Namespace) -> int:
    config = TrainConfig.from_arguments(args)
    if config.threads:
        import tensorflow as tf  # threads must be set before TensorFlow starts any work

        tf.config.threading.set_intra_op_parallelism_threads(config.threads)
        tf.config.threading.set_inter_op_parallelism_threads(config.threads)
    from training.pipeline import train_evaluate_export

    outcome = train_evaluate_export(config)
    print(
        f"test accuracy {outcome.evaluation.accuracy:.4f}  {outcome.state}"
        + (f" {outcome.path}" if outcome.path else "")
        + (f" ({outcome.reason})" if outcome.reason else "")
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from training.data import load_mnist
    from training.evaluate import evaluate, format_evaluation, saved_model_predictor
    from training.layout import read_metadata
    from training.reports import write_reports

    if not (args.version_dir / "saved_model.pb").exists():
        raise FileNotFoundError(f"{args.version_dir}: no saved_model.pb (expected models/NAME/VERSION)")
    mnist = load_mnist(args.data)
    result = evaluate(saved_model_predictor(args.version_dir), mnist.x_test, mnist.y_test)
    if args.report_dir:
        history = read_metadata(args.version_dir).get("history")
        curves = history if isinstance(history, dict) else None  # metadata is JSON: a malformed history draws none
        write_reports(args.report_dir, result, mnist.x_test, mnist.y_test, curves)
    print(json.dumps(result.to_dict()) if args.json else format_evaluation(result))
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from training.architectures import build_model, format_explanation

    model = build_model(args.arch)
    model.summary()
    print()
    print(format_explanation(model))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from training.architectures import build_model
    from training.data import load_mnist
    from training.evaluate import evaluate, keras_predictor
    from training.export import export_version
    from training.layout import REPORT_DIR
    from training.reports import write_reports

    model = build_model(args.arch)
    model.load_weights(str(args.weights))
    mnist = load_mnist(args.data)
    result = evaluate(keras_predictor(model), mnist.x_test, mnist.y_test)
    from training.pipeline import layer_table, promotion_gate

    name = args.name or args.arch
    gate = promotion_gate(TrainConfig(repository=str(args.repository), name=name, gate_margin=args.gate_margin))
    if args.promote == "auto" and gate is not None and result.accuracy < gate:
        print(
            f"test accuracy {result.accuracy:.4f}  not exported: below the gate {gate:.4f} (the newest version of "
            f"{name!r} less the margin); --promote force exports it anyway"
        )
        return 1

    metadata = {
        "architecture": args.arch,
        "parameters": int(model.count_params()),
        "layers": layer_table(model),
        **result.to_dict(),
        "exported_from": str(args.weights),
        "training_data_sha256": mnist.sha256(),
    }
    target = export_version(
        model,
        args.repository,
        name,
        metadata,
        lambda folder: write_reports(folder / REPORT_DIR, result, mnist.x_test, mnist.y_test, None),
    )
    print(f"test accuracy {result.accuracy:.4f}  exported {target}")
    return 0


def cmd_line_reader(args: argparse.Namespace) -> int:
    from training.data import load_mnist
    from training.line_reader import train_line_reader

    config = LineReaderConfig(
        count=args.count,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        processes=args.processes,
        init=args.init,
    )
    mnist = load_mnist(args.data)
    print(f"saved {train_line_reader(config, mnist.x_train, mnist.y_train, args.out)}")
    return 0


def cmd_combine(args: argparse.Namespace) -> int:
    from training.data import load_mnist
    from training.evaluate import evaluate, serving_predictor
    from training.export import Ensemble, export_version
    from training.layout import REPORT_DIR, read_metadata
    from training.reports import write_reports

    if len(args.members) < 2:
        raise ValueError("an ensemble needs at least two versions")
    reader_folder = args.line_reader is not None and args.line_reader.suffix != ".keras"  # a version serving one
    for folder in [*args.members, *([args.line_reader] if reader_folder else [])]:
        if not (folder / "saved_model.pb").exists():
            raise FileNotFoundError(f"{folder}: no saved_model.pb (expected models/NAME/VERSION)")
    members = [read_metadata(folder) for folder in args.members]
    line_reader = None
    if args.line_reader is not None:
        from training.line_reader import build_line_reader, load_weights

        line_reader = build_line_reader()
        load_weights(line_reader, args.line_reader)
    ensemble = Ensemble(args.members, line_reader)
    mnist = load_mnist(args.data)
    result = evaluate(serving_predictor(ensemble.serve), mnist.x_test, mnist.y_test)
    metadata = {
        "architecture": "ensemble",
        "parameters": sum(int(str(member.get("parameters", 0))) for member in members),
        "layers": [  # each member's, named by its version: what the page shows learners
            {**layer, "name": f"{member.get('name')}/{member.get('version')} {layer.get('name')}"}
            for member in members
            for layer in _listed(member.get("layers"))
        ],
        "members": [
            {key: member.get(key) for key in ("name", "version", "architecture", "parameters", "test_accuracy")}
            | {"training_config": member.get("training_config")}
            for member in members
        ],
        **result.to_dict(),
        "test_size": len(mnist.y_test),
        "data_source": mnist.source,
        "training_data_sha256": mnist.sha256(),
    }
    if line_reader is not None:
        from training.line_reader import LINE_TEST_COUNT, LINE_TEST_SEED, line_accuracy

        metadata["line_reader"] = {
            "parameters": int(line_reader.count_params()),
            "file": "/".join(args.line_reader.parts[-2 if reader_folder else -1 :]),
            # lines written with the test digits, read by the line reader alone
            "test_line_accuracy": line_accuracy(
                line_reader, mnist.x_test, mnist.y_test, LINE_TEST_COUNT, LINE_TEST_SEED
            ),
            "test_lines": LINE_TEST_COUNT,
        }
    target = export_version(
        ensemble,
        args.repository,
        args.name,
        metadata,
        lambda folder: write_reports(folder / REPORT_DIR, result, mnist.x_test, mnist.y_test, None),
    )
    print(f"test accuracy {result.accuracy:.4f}  exported {target}")
    return 0


def _listed(value: object) -> list[dict[str, object]]:
    """The dicts of a metadata list (JSON: anything else is passed over)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def cmd_fetch_mnist(args: argparse.Namespace) -> int:
    from training.data import download_mnist, load_mnist, save_mnist

    offline = "pass --from PATH to mnist.npz or a folder of the four IDX files"
    mnist = load_mnist(args.source) if args.source else download_mnist(offline)
    target = save_mnist(mnist, args.to)
    print(f"{target}: {len(mnist.x_train)} training and {len(mnist.x_test)} test digits from {mnist.source}")
    return 0


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "summary": cmd_summary,
    "export": cmd_export,
    "combine": cmd_combine,
    "line-reader": cmd_line_reader,
    "fetch-mnist": cmd_fetch_mnist,
}

if __name__ == "__main__":
    sys.exit(main())
