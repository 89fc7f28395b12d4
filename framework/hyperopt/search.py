"""The search: trials sampled by Optuna, each one `Model(config).train(...)` with the sampled values.

The study lives in <output>/study.db (Optuna's SQLite storage): a search started again over the same
directory loads it, runs only the trials still missing and retries, with the same values, a trial
that was interrupted mid-run. Trials read the preprocessed data from the on-disk cache, which the
search fills once before the first trial. Each epoch reports the watched metric to Optuna, whose
pruner may stop the trial there. With `executor.num_workers` > 1 the trials run in that many
processes, which share the study through its storage.
"""
from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from framework.errors import ConfigError, DataError, FrameworkError, ModelDirError, Problem, WriteError

STUDY_FILE = "study.db"
LOCK_FILE = ".hyperopt.lock"
TRIALS_DIR = "trials"
WORKERS_DIR = ".workers"
# errors that every trial would meet again: the search stops on them instead of failing each trial
FATAL = (DataError, WriteError, ModelDirError)


@dataclass
class HyperoptResult:
    best_config: dict  # fully resolved, without the hyperopt section: `framework train` takes it as is
    best_value: float
    best_trial: int
    best_params: dict
    trials: Any  # a DataFrame, one row per trial: what trials.csv holds
    output_dir: Path


def hyperopt(config: Any, dataset: Any, validation: Any = None, test: Any = None, *,
             output_directory: str | os.PathLike = "results/hyperopt", study_name: str = "hyperopt",
             cache_dir: str | os.PathLike | None = None) -> HyperoptResult:
    """Searches the config's `hyperopt.parameters`; writes trials.csv, best_config.yaml and best_model/
    (plus study.db and one run directory per trial under trials/) into `output_directory`.

    Running it again over the same directory resumes the search: finished trials are kept, and
    `num_samples` counts them.
    """
    from framework.config import load_config, read_yaml
    from framework.hyperopt import results

    raw = read_yaml(config) if isinstance(config, (str, os.PathLike)) else copy.deepcopy(config)
    resolved = load_config(raw)
    if resolved.get("hyperopt") is None:
        raise ConfigError([Problem("hyperopt", "required key is missing: the section that names the parameters "
                                               "to search ({parameters: {trainer.learning_rate: {space: loguniform, "
                                               "lower: 0.0001, upper: 0.1}}})")])
    search = resolved["hyperopt"]
    output = _output_dir(output_directory)
    with _exclusive(output):
        study = _open_study(output, study_name, search, resolved)
        _retry_interrupted(study, search)
        _warm_cache(resolved, dataset, validation, test, cache_dir)
        objective = Objective(raw, resolved, dataset, validation, test, output / TRIALS_DIR, cache_dir)
        remaining = search["num_samples"] - _finished(study)
        workers = min(search["executor"]["num_workers"], max(remaining, 0))
        if workers == 1:
            optimize(_storage_url(output), study_name, objective, remaining, worker=0)
        elif workers > 1:
            _optimize_in_processes(output, study_name, objective, remaining, workers)
        return results.write(output, _load(output, study_name), raw, resolved)


# -- one trial --------------------------------------------------------------------------------------
class Objective:
    """Trains one trial; picklable, so worker processes get it whole."""

    def __init__(self, raw: dict, config: dict, dataset: Any, validation: Any, test: Any, trials_dir: Path,
                 cache_dir: Any):
        self.raw, self.config, self.search = raw, config, config["hyperopt"]
        self.dataset, self.validation, self.test = dataset, validation, test
        self.trials_dir, self.cache_dir = trials_dir, cache_dir

    def __call__(self, trial: Any) -> float:
        from framework import runs
        from framework.api import Model
        from framework.hyperopt import spaces
        from framework.hyperopt.config import trial_config

        on_grid = self.search["sampler"]["type"] == "grid"
        values = {path: spaces.suggest(trial, path, spaces.build(settings), on_grid)
                  for path, settings in self.search["parameters"].items()}
        name = f"trial_{trial.number}"
        try:
            model = Model(trial_config(self.raw, self.config, self.search, values))
            result = model.train(self.dataset, self.validation, self.test, output_dir=self.trials_dir,
                                 experiment_name=name, cache_dir=self.cache_dir,
                                 callbacks=[ReportEpochs(trial, self.search)])
            return objective_value(result.training_statistics, self.search)
        except FATAL as error:  # the search stops; a resumed one runs this trial again
            trial.set_user_attr("error", str(error))
            trial.set_user_attr("interrupted", True)
            raise _Abort(error) from None
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        except FrameworkError as error:  # this trial's values (a NaN loss at a high learning rate): the search goes on
            trial.set_user_attr("error", str(error))
            raise
        finally:
            run_dir = runs.latest_run_dir(self.trials_dir, name)
            if run_dir is not None:
                trial.set_user_attr("run_dir", str(run_dir))


class ReportEpochs:
    """The trainer's epoch callback: reports the searched metric to Optuna and prunes when told to."""

    def __init__(self, trial: Any, search: dict):
        self.trial, self.search = trial, search

    def on_epoch_end(self, epoch: int, statistics: dict) -> None:
        search = self.search
        values = statistics.get(search["split"], {}).get(search["output_feature"], {}).get(search["metric"])
        if not values:
            return
        self.trial.report(values[-1], epoch)
        if self.trial.should_prune():
            import optuna

            raise optuna.TrialPruned(f"{search['metric']} {values[-1]:.4g} after epoch {epoch}")


def objective_value(statistics: dict, search: dict) -> float:
    """The metric at the epoch whose weights the trial's model kept (its best checkpoint)."""
    split, output, metric = search["split"], search["output_feature"], search["metric"]
    if split not in statistics:
        raise DataError(f"hyperopt.split is '{split}' but the {split} split has no rows: give it rows in "
                        "preprocessing.split.probabilities (or a separate file), or search another split")
    values = statistics[split][output][metric]
    epoch = statistics.get("best", {}).get("epoch") or len(values)
    return float(values[epoch - 1])


class _Abort(Exception):
    """Carries a fatal error through Optuna, which records every FrameworkError as a failed trial."""

    def __init__(self, error: FrameworkError):
        super().__init__(str(error))
        self.error = error


# -- running trials ---------------------------------------------------------------------------------
def optimize(storage_url: str, study_name: str, objective: Objective, n_trials: int, worker: int) -> None:
    import optuna

    from framework.hyperopt.samplers import build_pruner, build_sampler
    from framework.hyperopt.spaces import Categorical, build

    search = objective.search
    grid = {path: Categorical(build(settings).grid()).encoded for path, settings in search["parameters"].items()} \
        if search["sampler"]["type"] == "grid" else {}
    study = optuna.load_study(study_name=study_name, storage=_storage(storage_url),
                              sampler=build_sampler(search["sampler"], grid, worker),
                              pruner=build_pruner(search["pruner"]))
    with _short_failure_logs():
        try:
            study.optimize(objective, n_trials=n_trials, catch=(FrameworkError,))
        except _Abort as abort:
            raise abort.error from None


def _optimize_in_processes(output: Path, study_name: str, objective: Objective, remaining: int,
                           workers: int) -> None:
    """This process runs one share of the trials and a fresh interpreter each other share (this one has
    torch loaded already). Shares add up to `remaining` exactly, which a shared counter of trials in
    the storage could overshoot when workers start trials at the same moment."""
    import pickle
    import subprocess
    import sys

    from framework import atomic
    from framework.hyperopt import worker

    shares = [remaining // workers + (index < remaining % workers) for index in range(workers)]
    task = output / WORKERS_DIR / "task.pkl"
    for stale in task.parent.glob("*.error.json"):
        stale.unlink()
    atomic.write_bytes(task, pickle.dumps((_storage_url(output), study_name, objective, shares)))
    processes = {index: subprocess.Popen([sys.executable, "-m", "framework.hyperopt.worker", str(task), str(index),
                                          str(workers)]) for index in range(1, workers)}
    try:
        with worker.shared_cores(workers):
            optimize(_storage_url(output), study_name, objective, shares[0], worker=0)
        codes = {index: process.wait() for index, process in processes.items()}
    except BaseException:  # a failed or interrupted search stops its workers; their trials resume with it
        for process in processes.values():
            process.terminate()
        raise
    finally:
        task.unlink(missing_ok=True)  # it holds a copy of the dataset when that was a DataFrame
    for index, code in codes.items():
        report = worker.error_file(task, index)
        if report.is_file():
            error = json.loads(report.read_text())
            raise {cls.__name__: cls for cls in FATAL}.get(error["type"], FrameworkError)(error["message"])
        if code != 0:
            raise FrameworkError(f"hyperopt worker {index} exited with code {code}; its output is above")


# -- the study --------------------------------------------------------------------------------------
def _output_dir(path: str | os.PathLike) -> Path:
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FrameworkError(f"output directory '{path}' cannot be created: {error.strerror}") from None
    return path


@contextlib.contextmanager
def _exclusive(output: Path) -> Iterator[None]:
    """One search per directory: a trial found running in the study can then only be an interrupted one."""
    with open(output / LOCK_FILE, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FrameworkError(f"another search is running in '{output}'; wait for it, or give this one another "
                                 "output directory") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _storage_url(output: Path) -> str:
    return f"sqlite:///{(output / STUDY_FILE).resolve()}"


def _storage(url: str) -> Any:
    import optuna

    # workers write to one SQLite file: wait for its lock rather than fail on it
    return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 120}})


def _load(output: Path, study_name: str) -> Any:
    import optuna

    return optuna.load_study(study_name=study_name, storage=_storage(_storage_url(output)),
                             sampler=optuna.samplers.RandomSampler())


def _identity(resolved: dict) -> dict:
    """What makes trials comparable: the config and the search, less how many trials and how run."""
    config = {k: v for k, v in resolved.items() if k not in ("hyperopt", "framework_version")}
    search = {k: v for k, v in resolved["hyperopt"].items() if k not in ("num_samples", "executor")}
    return json.loads(json.dumps({"config": config, "search": search}))  # as the storage gives it back: no tuples


def _open_study(output: Path, study_name: str, search: dict, resolved: dict) -> Any:
    import optuna

    from framework import runs

    study = optuna.create_study(study_name=study_name, storage=_storage(_storage_url(output)), load_if_exists=True,
                                direction=search["goal"], sampler=optuna.samplers.RandomSampler())
    identity = _identity(resolved)
    saved = study.user_attrs.get("identity")
    if saved is None:
        study.set_user_attr("identity", identity)
        return study
    changed = runs.changed_settings(saved, identity, {f"config.{key}" for key in runs.RESUMABLE_CHANGES})
    if changed:
        shown = ", ".join(f"{k} ({before!r} in the study, {now!r} now)" for k, before, now in changed[:5])
        raise FrameworkError(f"the study '{study_name}' in '{output}' was started with another config: {shown}; "
                             "resume it with its own config (num_samples and executor may change), or give this "
                             "search another output directory")
    return study


def _retry_interrupted(study: Any, search: dict) -> None:
    """Trials cut off before they ended are queued again with the same values, so the search still
    tries those points: one still marked running (its process was killed; the directory lock rules out
    a live one) or one stopped by Ctrl-C or by an error that stopped the whole search."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}
    for trial in trials:
        cut_off = trial.state == TrialState.RUNNING or (trial.state == TrialState.FAIL
                                                         and trial.user_attrs.get("interrupted"))
        if not cut_off or trial.number in retried:
            continue
        if trial.state == TrialState.RUNNING:
            study.tell(trial.number, state=TrialState.FAIL)
        if set(trial.params) == set(search["parameters"]):
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})


def _finished(study: Any) -> int:
    """Trials that count against num_samples: all that ended, except cut-off ones queued again."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}
    ended = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(1 for t in trials if t.state in ended and t.number not in retried)


def _warm_cache(resolved: dict, dataset: Any, validation: Any, test: Any, cache_dir: Any) -> None:
    """Preprocesses once, before any trial: the trials then read the cache (in every worker process),
    and a problem with the data stops the search here rather than failing every trial."""
    from framework.data.pipeline import prepare_training

    config = {k: v for k, v in resolved.items() if k != "hyperopt"}
    if config["model_type"] == "llm":  # prompts are tokenized per run (seconds, against minutes of training)
        return
    if not config["preprocessing"]["cache"]:
        warnings.warn("preprocessing.cache is false: every trial preprocesses the dataset again", stacklevel=3)
        return
    prepare_training(config, dataset, validation, test, cache_dir=cache_dir)


class _WithoutUserTraceback(logging.Filter):
    """Optuna logs a failed trial's exception with its traceback; a user error's message says it all."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], FrameworkError):
            record.exc_info, record.exc_text = None, None
        return True


@contextlib.contextmanager
def _short_failure_logs() -> Iterator[None]:
    import optuna

    optuna.logging.get_verbosity()  # configures Optuna's handler, if it has none yet
    handlers = logging.getLogger("optuna").handlers
    quiet = _WithoutUserTraceback()
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)
