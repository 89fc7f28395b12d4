"""`trainer.loggers`: TensorBoard event files and an MLflow store hold exactly the numbers of
training_statistics.json, per epoch; a resumed run continues the same file and run; names are checked
at config time."""
import json
import warnings

import pytest

from framework.api import Model
from framework.config import load_config
from framework.errors import ConfigError
from framework.training.loggers import EVENTS_FILE, LOGGERS, epoch_scalars, log_epoch
from synthetic import synthetic_frame, tiny_config


@pytest.fixture(autouse=True)
def _mlflow_reads_file_stores(monkeypatch):
    """MLflow 3 opens a ./mlruns store only with this set (the logger sets it while it writes)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def tensorboard_scalars(directory) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(directory))
    accumulator.Reload()
    return {tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}


def mlflow_runs(uri):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiments = client.search_experiments()
    return client, client.search_runs([e.experiment_id for e in experiments])


def expected_series(statistics: dict) -> dict[str, list[tuple[int, float]]]:
    series = {}
    for split in ("train", "validation", "test"):
        for output, metrics in statistics.get(split, {}).items():
            for metric, values in metrics.items():
                series[f"{split}/{output}/{metric}"] = list(zip(statistics["epochs"], values))
    return series


def test_training_writes_every_epoch_statistic_to_tensorboard_and_mlflow(tmp_path):
    config = tiny_config(outputs=(("label", "binary"), ("amount", "number")), loggers=["tensorboard", "mlflow"])
    result = Model(config).train(synthetic_frame(100), output_dir=tmp_path, experiment_name="tracked")
    statistics = json.loads((result.output_dir / "training_statistics.json").read_text())
    expected = expected_series(statistics)
    assert len(statistics["epochs"]) == 3 and "validation/amount/loss" in expected

    written = tensorboard_scalars(result.output_dir / "tensorboard")
    assert list((result.output_dir / "tensorboard").iterdir()) == [result.output_dir / "tensorboard" / EVENTS_FILE]
    assert set(written) == set(expected)
    for tag, series in expected.items():
        assert [step for step, _ in written[tag]] == [step for step, _ in series]
        assert [value for _, value in written[tag]] == pytest.approx([value for _, value in series], rel=1e-6)

    client, runs = mlflow_runs((result.output_dir / "mlruns").resolve().as_uri())
    assert [(run.info.run_name, run.info.status) for run in runs] == [("tracked_0", "FINISHED")]
    run = runs[0]
    assert client.get_experiment(run.info.experiment_id).name == "tracked"
    assert run.data.params["trainer.batch_size"] == "32" and run.data.params["trainer.optimizer.type"] == "adam"
    for tag, series in expected.items():
        history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, tag))
        assert history == [(step, pytest.approx(value, rel=1e-12)) for step, value in series]


def test_each_epoch_is_appended_so_a_resumed_run_continues_the_same_file_and_run(tmp_path, monkeypatch):
    other_store = tmp_path / "elsewhere"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", other_store.as_uri())
    run_dir = tmp_path / "demo_3"
    settings = {"loggers": ["tensorboard", "mlflow"], "batch_size": 8, "optimizer": {"type": "sgd"}}
    first = {"epochs": [1], "steps": [5], "train": {"y": {"loss": [0.9]}}, "validation": {"y": {"loss": [1.0]}},
             "best": {"epoch": 1, "value": 1.0}, "skipped_batches": 0}
    log_epoch(run_dir, settings, first)
    # a new process after a resume: nothing carried over in memory
    second = {**first, "epochs": [1, 2], "steps": [5, 10], "train": {"y": {"loss": [0.9, 0.7]}},
              "validation": {"y": {"loss": [1.0, 0.8]}}}
    log_epoch(run_dir, settings, second, final=True)

    assert tensorboard_scalars(run_dir / "tensorboard")["validation/y/loss"] == [(1, 1.0), (2, pytest.approx(0.8))]
    assert not (run_dir / "mlruns").exists()  # MLFLOW_TRACKING_URI wins
    client, runs = mlflow_runs(other_store.as_uri())
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    history = client.get_metric_history(runs[0].info.run_id, "train/y/loss")
    assert sorted((m.step, m.value) for m in history) == [(1, 0.9), (2, 0.7)]
    assert client.get_experiment(runs[0].info.experiment_id).name == "demo"


def test_the_last_epoch_scalars_leave_out_bookkeeping():
    statistics = {"epochs": [1, 2], "steps": [3, 6], "train": {"y": {"loss": [2.0, 1.0]}},
                  "best": {"epoch": 2, "split": "train", "field": "y", "metric": "loss", "value": 1.0},
                  "skipped_batches": 0}
    assert epoch_scalars(statistics) == (2, {"train/y/loss": 1.0})


def test_logger_names_are_checked_at_config_time_with_the_closest_name():
    assert load_config(tiny_config())["trainer"]["loggers"] == []
    assert load_config(tiny_config(loggers=list(LOGGERS)))["trainer"]["loggers"] == ["tensorboard", "mlflow"]
    with pytest.raises(ConfigError) as error:
        load_config(tiny_config(loggers=["tensorbord"]))
    assert "trainer.loggers[0]: must be one of: tensorboard, mlflow; did you mean 'tensorboard'?" in str(error.value)


def test_an_unreachable_tracker_warns_and_training_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "unknown-scheme://nowhere")
    statistics = {"epochs": [1], "train": {"y": {"loss": [0.5]}}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log_epoch(tmp_path / "run_0", {"loggers": ["mlflow", "tensorboard"]}, statistics)
    assert any("mlflow is not recording" in str(w.message) for w in caught)
    assert tensorboard_scalars(tmp_path / "run_0" / "tensorboard")["train/y/loss"] == [(1, 0.5)]
