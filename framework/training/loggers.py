"""Per-epoch training statistics sent to experiment trackers (`trainer.loggers`).

The numbers are those of training_statistics.json: every split/output/metric value of the epoch just
finished, tagged `<split>/<output>/<metric>` at step = the epoch number. Each call is self-contained
(nothing is held open between epochs), so a killed and resumed run goes on writing to the same
TensorBoard file and MLflow run. TensorBoard and MLflow load only when a run names them.
"""
from __future__ import annotations

import contextlib
import os
import re
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator

from framework.errors import FrameworkError

TENSORBOARD_DIR = "tensorboard"
MLFLOW_DIR = "mlruns"
# one events file per run, appended each epoch (a TFRecord file is a sequence of self-delimiting records)
EVENTS_FILE = "events.out.tfevents.0.framework"
RUN_TAG = "framework.run_dir"


def epoch_scalars(statistics: dict) -> tuple[int, dict[str, float]]:
    """(epoch number, {"split/output/metric": value}) of the last epoch recorded in `statistics`."""
    epoch = statistics["epochs"][-1]
    scalars = {}
    for split, by_output in statistics.items():
        if not isinstance(by_output, dict) or split == "best":
            continue
        for output, by_metric in by_output.items():
            for metric, values in by_metric.items():
                if isinstance(values, list) and len(values) == len(statistics["epochs"]) and values[-1] is not None:
                    scalars[f"{split}/{output}/{metric}"] = float(values[-1])
    return epoch, scalars


class TrackerUnavailable(Exception):
    """A tracker refused or could not be reached; the run goes on without it."""


def _missing(package: str, name: str) -> FrameworkError:
    return FrameworkError(f"trainer.loggers: '{name}' needs the {package} package: "
                          "pip install 'framework[tracking]'")


# -- TensorBoard -------------------------------------------------------------------------------------
def log_tensorboard(run_dir: Path, settings: dict, epoch: int, scalars: dict[str, float], final: bool) -> None:
    try:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.summary.writer.record_writer import RecordWriter
    except ImportError:
        raise _missing("tensorboard", "tensorboard") from None
    directory = run_dir / TENSORBOARD_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / EVENTS_FILE
    now = time.time()
    events = [] if path.exists() else [Event(wall_time=now, file_version="brain.Event:2")]
    events.append(Event(wall_time=now, step=epoch, summary=Summary(
        value=[Summary.Value(tag=tag, simple_value=value) for tag, value in scalars.items()])))
    buffer = _Buffer()
    writer = RecordWriter(buffer)
    for event in events:
        writer.write(event.SerializeToString())
    with open(path, "ab") as handle:  # one write: a kill cannot leave half an epoch's records behind
        handle.write(bytes(buffer.data))
        handle.flush()
        os.fsync(handle.fileno())


class _Buffer:
    """The file-like object RecordWriter frames records into."""

    def __init__(self):
        self.data = bytearray()

    def write(self, chunk: bytes) -> None:
        self.data += chunk

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


# -- MLflow --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _file_store_allowed() -> Iterator[None]:
    """MLflow 3 refuses a ./mlruns file store unless MLFLOW_ALLOW_FILE_STORE is set; it is set only while
    the client opens its store, then restored."""
    before = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if before is None:
            del os.environ["MLFLOW_ALLOW_FILE_STORE"]
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = before


def tracking_uri(run_dir: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or (run_dir / MLFLOW_DIR).resolve().as_uri()


def _metric_key(tag: str) -> str:
    return re.sub(r"[^\w\-. /:]", "_", tag)  # MLflow's allowed characters; feature names may hold others


def _flat(settings: dict, prefix: str = "trainer") -> dict[str, str]:
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}.{key}"))
        else:
            flat[f"{prefix}.{key}"] = str(value)[:500]
    return flat


def _mlflow_run(client, run_dir: Path, settings: dict) -> str:
    """The id of this run directory's MLflow run (found by tag, so a resumed run continues it), created
    with the trainer settings as parameters on the first epoch."""
    from mlflow.entities import Param

    name = re.sub(r"_\d+$", "", run_dir.name) or run_dir.name  # results/<name>_<n> -> experiment <name>
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    key = str(run_dir.resolve())
    quoted = key.replace("\\", "\\\\").replace("'", "\\'")
    found = client.search_runs([experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{quoted}'", max_results=1)
    if found:
        return found[0].info.run_id
    run = client.create_run(experiment_id, run_name=run_dir.name, tags={RUN_TAG: key})
    params = [Param(k, v) for k, v in _flat(settings).items()]
    for start in range(0, len(params), 100):  # MLflow takes at most 100 parameters per call
        client.log_batch(run.info.run_id, params=params[start:start + 100])
    return run.info.run_id


def log_mlflow(run_dir: Path, settings: dict, epoch: int, scalars: dict[str, float], final: bool) -> None:
    try:
        from mlflow.entities import Metric
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise _missing("mlflow (or mlflow-skinny)", "mlflow") from None
    try:
        with _file_store_allowed():
            client = MlflowClient(tracking_uri=tracking_uri(run_dir))
            run_id = _mlflow_run(client, run_dir, settings)
        stamp = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(_metric_key(tag), value, stamp, epoch) for tag, value in scalars.items()])
        if final:
            client.set_terminated(run_id)
    except MlflowException as error:  # a tracking server that is down or refuses the request
        raise TrackerUnavailable(f"{tracking_uri(run_dir)}: {error.message}") from error


LOGGERS: dict[str, Callable[[Path, dict, int, dict, bool], None]] = {
    "tensorboard": log_tensorboard,
    "mlflow": log_mlflow,
}


def log_epoch(run_dir: Path | None, settings: dict, statistics: dict, final: bool = False) -> None:
    """Sends the last epoch of `statistics` to every logger in `settings["loggers"]`; `final` marks the
    run's end. A tracker that cannot be reached warns and training goes on: the same numbers are in
    training_statistics.json."""
    names = settings.get("loggers") or []
    if run_dir is None or not names:
        return
    epoch, scalars = epoch_scalars(statistics)
    for name in names:
        try:
            LOGGERS[name](Path(run_dir), settings, epoch, scalars, final)
        except (TrackerUnavailable, OSError) as error:  # an outage must not end a training run
            # one message per tracker and cause (no epoch in it): Python shows a repeated warning once
            warnings.warn(f"trainer.loggers: {name} is not recording this run's statistics: {error}", stacklevel=2)
