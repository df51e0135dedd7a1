"""The command line, run as a user would: a real subprocess."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import BUNDLED_MODELS, FIXTURE_MNIST, REPO_ROOT, wait_until
from training.data import load_mnist, to_model_input
from training.evaluate import saved_model_predictor


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "training", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_summary_prints_keras_total_and_explanation():
    done = run_cli("summary", "--arch", "lenet5")
    assert done.returncode == 0, done.stderr
    assert "Total params: 61,706" in done.stdout
    assert "6 filters x (5x5x1 weights + 1 bias) = 156" in done.stdout
    assert "total: 61,706 parameters" in done.stdout


def test_evaluate_bundled_model_as_json():
    done = run_cli("evaluate", str(BUNDLED_MODELS / "lenet5" / "1"), "--data", str(FIXTURE_MNIST), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["test_accuracy"] >= 0.98
    assert sum(map(sum, result["confusion_matrix"])) == 500


def test_train_exports_a_version_with_metadata_and_figures(tmp_path):
    done = run_cli(
        "train",
        "--arch",
        "lenet5-compact",
        "--epochs",
        "1",
        "--train-limit",
        "500",
        "--data",
        str(FIXTURE_MNIST),
        "--repository",
        str(tmp_path / "models"),
        "--work-dir",
        str(tmp_path / "run"),
    )
    assert done.returncode == 0, done.stderr
    version = tmp_path / "models" / "lenet5-compact" / "1"
    meta = json.loads((version / "metadata.json").read_text())
    assert meta["architecture"] == "lenet5-compact" and meta["parameters"] == 51_902
    assert meta["epochs_run"] == 1 and meta["train_size"] == 450
    assert meta["training_config"]["train_limit"] == 500
    assert (version / "saved_model.pb").exists()
    assert (version / "report" / "confusion_matrix.png").exists()
    assert f"promoted {version}" in done.stdout


def test_bad_data_path_is_a_clear_error(tmp_path):
    done = run_cli("train", "--data", str(tmp_path / "missing.npz"), "--epochs", "1")
    assert done.returncode == 2
    assert "missing.npz: no such file" in done.stderr


@pytest.mark.parametrize("option", ["--repository", "--work-dir"])
def test_a_folder_that_cannot_be_written_is_refused_before_training(tmp_path, option):
    # An outside check: a repository that could not be written was found only at the export, after the whole run,
    # with a traceback (a run dir, before training, with one too). A path through a file: no one can write there.
    (tmp_path / "a-file").write_text("not a folder")
    folder = tmp_path / "a-file" / "models"
    done = run_cli(
        "train", "--data", str(FIXTURE_MNIST), "--epochs", "1", "--work-dir", str(tmp_path / "run"), option, str(folder)
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: ") and str(tmp_path / "a-file") in done.stderr
    assert "Traceback" not in done.stderr and "Epoch 1/1" not in done.stdout + done.stderr


def test_ctrl_c_says_how_to_resume_rather_than_a_traceback(tmp_path):
    # An outside check: Ctrl-C printed ~40 lines of KeyboardInterrupt traceback through Keras and no word on resuming.
    work = tmp_path / "run"
    arguments = ["train", "--data", str(FIXTURE_MNIST), "--epochs", "200", "--work-dir", str(work)]
    arguments += ["--repository", str(tmp_path / "models")]
    # `python -m training` as from a terminal: a shell runs a background job (as CI's) with SIGINT ignored, and its
    # children inherit that, so Python would not turn Ctrl-C into KeyboardInterrupt; its own handler set again here.
    program = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        f"sys.argv = ['training', *{arguments!r}]; runpy.run_module('training', run_name='__main__')"
    )
    command = [sys.executable, "-c", program]
    with subprocess.Popen(command, cwd=REPO_ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True) as run:
        wait_until(lambda: (work / "history.csv").exists() or run.poll() is not None, 240, "no epoch finished")
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted: run the same command again to resume")
    assert "Traceback" not in stderr


def test_gate_rejects_a_worse_candidate_and_keeps_it_outside_the_repository(tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    done = run_cli(
        "train",
        "--arch",
        "lenet5",
        "--epochs",
        "1",
        "--train-limit",
        "200",
        "--threads",
        "1",
        "--data",
        str(FIXTURE_MNIST),
        "--repository",
        str(tmp_path / "models"),
        "--work-dir",
        str(tmp_path / "run"),
        "--promote",
        "auto",
        "--gate-accuracy",
        "0.99",
        "--job-dir",
        str(job),
    )
    assert done.returncode == 0, done.stderr
    assert "rejected" in done.stdout and not (tmp_path / "models" / "lenet5").exists()
    meta = json.loads((job / "candidate" / "1" / "metadata.json").read_text())
    assert meta["rejected"] is True and "below the gate 0.9900" in meta["reason"]
    events = [json.loads(line) for line in (job / "progress.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and "epoch" in kinds and kinds[-2:] == ["evaluated", "finished"]
    assert events[-1]["state"] == "rejected" and events[-1]["version"] is None
    # An outside check: the README's `export` of the rejected run's weights put them in the repository, served within
    # a poll: "a quick or poor run never replaces a better model" did not hold for it. It is gated as `train` is.
    weights = ["--arch", "lenet5", "--weights", str(tmp_path / "run" / "best.weights.h5"), "--data", str(FIXTURE_MNIST)]
    models = tmp_path / "models"
    shutil.copytree(BUNDLED_MODELS / "lenet5" / "1", models / "lenet5" / "1")
    refused = run_cli("export", *weights, "--repository", str(models))
    assert refused.returncode == 1 and "not exported" in refused.stdout and "--promote force" in refused.stdout
    assert sorted(p.name for p in (models / "lenet5").iterdir()) == ["1"]
    forced = run_cli("export", *weights, "--repository", str(models), "--promote", "force")
    assert forced.returncode == 0, forced.stderr
    assert (models / "lenet5" / "2" / "saved_model.pb").exists()


def test_fetch_mnist_from_a_local_copy_writes_a_loadable_npz(tmp_path):
    from training.data import load_mnist

    target = tmp_path / "data" / "mnist.npz"
    done = run_cli("fetch-mnist", "--from", str(FIXTURE_MNIST), "--to", str(target))
    assert done.returncode == 0, done.stderr
    copied, original = load_mnist(target), load_mnist(FIXTURE_MNIST)
    assert copied.sha256() == original.sha256()
    assert (copied.x_test == original.x_test).all() and (copied.y_test == original.y_test).all()
    assert not list(target.parent.glob(".*partial"))


def test_fetch_mnist_refuses_a_file_that_is_not_mnist(tmp_path):
    bogus = tmp_path / "bogus.npz"
    bogus.write_bytes(b"not an npz")
    done = run_cli("fetch-mnist", "--from", str(bogus), "--to", str(tmp_path / "out.npz"))
    assert done.returncode == 2 and "bogus.npz" in done.stderr
    assert not (tmp_path / "out.npz").exists()


def test_train_help_shows_the_defaults_of_the_training_config():
    from training.config import TrainConfig

    done = run_cli("train", "--help", timeout=60)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert f"(default: {TrainConfig().epochs})" in text and "(default: auto)" in text, done.stdout


def test_a_default_run_never_replaces_a_better_served_model(tmp_path):
    """Default options (promote=auto: gated by the newest version's accuracy) and a deliberately poor model."""
    models = tmp_path / "models"
    shutil.copytree(BUNDLED_MODELS / "lenet5" / "1", models / "lenet5" / "1")
    done = run_cli(
        "train",
        "--epochs",
        "1",
        "--train-limit",
        "200",
        "--threads",
        "1",
        "--data",
        str(FIXTURE_MNIST),
        "--repository",
        str(models),
        "--work-dir",
        str(tmp_path / "run"),
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (models / "lenet5").iterdir() if p.name.isdigit()) == ["1"], done.stdout
    assert "rejected" in done.stdout and "below the gate" in done.stdout, done.stdout


def test_a_failed_run_writes_its_cause_as_the_last_progress_event(tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    done = run_cli("train", "--data", str(tmp_path / "missing.npz"), "--epochs", "1", "--job-dir", str(job))
    assert done.returncode == 2
    events = [json.loads(line) for line in (job / "progress.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "failed" and "missing.npz: no such file" in events[-1]["error"], events


@pytest.mark.parametrize(
    "args,message",
    [
        pytest.param(["--epochs", "0"], "--epochs", id="epochs-below-1"),
        pytest.param(["--batch-size", "100000"], "--batch-size", id="batch-too-large"),
        pytest.param(["--promote", "sometimes"], "--promote", id="unknown-policy"),
    ],
)
def test_out_of_range_options_are_refused_before_training(tmp_path, args, message):
    done = run_cli("train", *args, "--data", str(FIXTURE_MNIST), "--repository", str(tmp_path / "models"), timeout=60)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (tmp_path / "models").exists()


def test_combine_exports_an_ensemble_answering_the_geometric_mean_of_its_members(tmp_path):
    members = [BUNDLED_MODELS / "lenet5" / "1", BUNDLED_MODELS / "lenet5-plus" / "1"]
    done = run_cli(
        "combine",
        *map(str, members),
        "--name",
        "pair",
        "--data",
        str(FIXTURE_MNIST),
        "--repository",
        str(tmp_path / "models"),
    )
    assert done.returncode == 0, done.stderr
    version = tmp_path / "models" / "pair" / "1"
    meta = json.loads((version / "metadata.json").read_text())
    assert meta["architecture"] == "ensemble" and meta["parameters"] == 61_706 + 468_778
    assert [(m["name"], m["version"]) for m in meta["members"]] == [("lenet5", 1), ("lenet5-plus", 1)]
    assert meta["layers"][0]["name"] == "lenet5/1 c1" and meta["test_size"] == 500
    assert (version / "report" / "confusion_matrix.png").exists()

    x = to_model_input(load_mnist(FIXTURE_MNIST).x_test[:64])
    first, second = (saved_model_predictor(m)(x) for m in members)
    expected = np.sqrt(first * second)
    expected /= expected.sum(axis=1, keepdims=True)
    answered = saved_model_predictor(version)(x)
    np.testing.assert_allclose(answered, expected, atol=1e-5)
    assert meta["test_accuracy"] >= 0.98


def test_a_line_reader_is_trained_and_served_beside_an_ensemble(tmp_path):
    # a few lines and one epoch: the command runs end to end, writes lines with the service's own code, and
    # the version `combine --line-reader` exports answers both signatures through the service's model class
    reader = tmp_path / "line_reader.keras"
    done = run_cli(
        "line-reader",
        "--data",
        str(FIXTURE_MNIST),
        "--count",
        "64",
        "--epochs",
        "1",
        "--processes",
        "1",
        "--out",
        str(reader),
    )
    assert done.returncode == 0, done.stderr
    members = [BUNDLED_MODELS / "lenet5" / "1", BUNDLED_MODELS / "lenet5-plus" / "1"]
    done = run_cli(
        "combine",
        *map(str, members),
        "--name",
        "pair",
        "--data",
        str(FIXTURE_MNIST),
        "--repository",
        str(tmp_path / "models"),
        "--line-reader",
        str(reader),
    )
    assert done.returncode == 0, done.stderr
    version = tmp_path / "models" / "pair" / "1"
    meta = json.loads((version / "metadata.json").read_text())
    assert meta["line_reader"]["parameters"] > 100_000 and meta["line_reader"]["file"] == "line_reader.keras"
    assert 0 <= meta["line_reader"]["test_line_accuracy"] <= 1 and meta["line_reader"]["test_lines"] == 500

    import keras

    from app.model import SavedModelDigits

    served = SavedModelDigits(version)
    lines = np.random.default_rng(0).uniform(0, 1, (3, 32, 320, 1)).astype(np.float32)
    frames = served.read_lines(lines)
    assert frames is not None and frames.shape == (3, 80, 11)
    expected = keras.ops.log_softmax(keras.models.load_model(reader, compile=False)(lines, training=False), axis=-1)
    np.testing.assert_allclose(frames, np.asarray(expected), atol=1e-5)
    x = to_model_input(load_mnist(FIXTURE_MNIST).x_test[:16])
    np.testing.assert_allclose(served.predict(x), saved_model_predictor(version)(x), atol=1e-6)
    assert SavedModelDigits(members[0]).read_lines(lines) is None  # a version without one


def test_combine_takes_the_line_reader_a_version_serves(tmp_path):
    # `combine ... --line-reader models/lenet5-read/6`: new classifiers beside a bundled version's line reader
    # (how lenet5-read/8 was made), which the new version answers exactly as the old one does
    from app.model import SavedModelDigits

    members = [BUNDLED_MODELS / "lenet5" / "1", BUNDLED_MODELS / "lenet5-plus" / "1"]
    source = BUNDLED_MODELS / "lenet5-read" / "6"
    done = run_cli(
        "combine",
        *map(str, members),
        "--name",
        "pair",
        "--data",
        str(FIXTURE_MNIST),
        "--repository",
        str(tmp_path / "models"),
        "--line-reader",
        str(source),
    )
    assert done.returncode == 0, done.stderr
    version = tmp_path / "models" / "pair" / "1"
    assert json.loads((version / "metadata.json").read_text())["line_reader"]["file"] == "lenet5-read/6"
    lines = np.random.default_rng(1).uniform(0, 1, (2, 32, 320, 1)).astype(np.float32)
    np.testing.assert_allclose(
        SavedModelDigits(version).read_lines(lines), SavedModelDigits(source).read_lines(lines), atol=1e-5
    )


def test_combine_refuses_a_folder_that_is_not_a_version(tmp_path):
    done = run_cli(
        "combine",
        str(BUNDLED_MODELS / "lenet5" / "1"),
        str(tmp_path),
        "--name",
        "pair",
        "--repository",
        str(tmp_path / "models"),
    )
    assert done.returncode == 2 and "no saved_model.pb" in done.stderr
    members = [str(BUNDLED_MODELS / "lenet5" / "1"), str(BUNDLED_MODELS / "lenet5-plus" / "1")]
    done = run_cli(
        "combine", *members, "--name", "pair", "--repository", str(tmp_path / "models"), "--line-reader", str(tmp_path)
    )  # a line reader's folder that is not a version
    assert done.returncode == 2 and f"{tmp_path}: no saved_model.pb" in done.stderr, done.stderr


def test_a_line_reader_starts_from_the_one_a_version_serves(tmp_path):
    # `line-reader --init models/lenet5-read/5` goes on training the bundled reader: before its first step it
    # answers as the served version does (a build with random weights does not)
    import keras

    from app.model import SavedModelDigits
    from training.line_reader import build_line_reader, load_weights

    version = BUNDLED_MODELS / "lenet5-read" / "5"
    lines = np.random.default_rng(0).uniform(0, 1, (3, 32, 320, 1)).astype(np.float32)
    served = SavedModelDigits(version).read_lines(lines)
    model = build_line_reader()
    fresh = np.asarray(keras.ops.log_softmax(model(lines, training=False), axis=-1))
    assert np.abs(fresh - served).max() > 0.1
    load_weights(model, version)
    np.testing.assert_allclose(
        np.asarray(keras.ops.log_softmax(model(lines, training=False), axis=-1)), served, atol=1e-5
    )
    model.save(tmp_path / "reader.keras")  # and from a .keras file, as `line-reader --out` writes it
    again = build_line_reader()
    load_weights(again, tmp_path / "reader.keras")
    np.testing.assert_allclose(
        np.asarray(keras.ops.log_softmax(again(lines, training=False), axis=-1)), served, atol=1e-5
    )
