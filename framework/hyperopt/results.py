"""What a search leaves in its output directory: trials.csv, hyperopt_summary.json, best_config.yaml,
best_model/. Rewritten whole at the end of every run, resumed ones included."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from framework import atomic
from framework.errors import FrameworkError

TRIALS_CSV = "trials.csv"
SUMMARY = "hyperopt_summary.json"
BEST_CONFIG = "best_config.yaml"
BEST_MODEL = "best_model"
PARAM_PREFIX = "params."


def write(output: Path, study: Any, raw: dict, resolved: dict):
    from framework.config import load_config
    from framework.hyperopt.config import trial_config
    from framework.hyperopt.search import HyperoptResult
    from framework.models.model_dir import dump_config

    search = resolved["hyperopt"]
    trials = study.get_trials(deepcopy=False)
    frame = trials_frame(trials, search)
    with atomic.atomic_path(output / TRIALS_CSV) as tmp:
        frame.to_csv(tmp, index=False)
    best = _best(trials, search)
    params = decoded_params(best, search)
    best_config = load_config(trial_config(raw, resolved, search, params))
    atomic.write_text(output / BEST_CONFIG, dump_config(best_config))
    _copy_model(Path(best.user_attrs.get("run_dir", "")) / "model", output / BEST_MODEL, best.number)
    states = frame["state"].value_counts().to_dict()
    atomic.write_json(output / SUMMARY, {
        "metric": search["metric"], "output_feature": search["output_feature"], "split": search["split"],
        "goal": search["goal"], "best_trial": best.number, "best_value": best.value, "best_params": params,
        "parameters": list(search["parameters"]), "spaces": search["parameters"], "trials": len(trials),
        "states": states})
    return HyperoptResult(best_config, best.value, best.number, params, frame, output)


def decoded_params(trial: Any, search: dict) -> dict:
    """The trial's values as the user writes them (a list of layers, not its JSON text)."""
    from framework.hyperopt.spaces import build, decode

    on_grid = search["sampler"]["type"] == "grid"
    return {path: decode(trial.params[path], build(settings), on_grid)
            for path, settings in search["parameters"].items() if path in trial.params}


def trials_frame(trials: list, search: dict):
    import pandas as pd

    retried = {t.user_attrs["retry_of"]: t.number for t in trials if "retry_of" in t.user_attrs}
    rows = []
    for trial in trials:
        start, end = trial.datetime_start, trial.datetime_complete
        row = {"trial": trial.number, "state": trial.state.name, "value": trial.value,
               "epochs": len(trial.intermediate_values),
               "duration_s": (end - start).total_seconds() if start and end else None}
        params = decoded_params(trial, search)
        for path in search["parameters"]:
            value = params.get(path)
            row[PARAM_PREFIX + path] = json.dumps(value) if isinstance(value, (list, dict)) else value
        error = trial.user_attrs.get("error", "")
        if trial.number in retried:
            error = f"interrupted; retried as trial {retried[trial.number]}"
        row.update(run_dir=trial.user_attrs.get("run_dir", ""), error=error)
        rows.append(row)
    return pd.DataFrame(rows, columns=["trial", "state", "value", "epochs", "duration_s",
                                       *(PARAM_PREFIX + p for p in search["parameters"]), "run_dir", "error"])


def _best(trials: list, search: dict) -> Any:
    complete = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None]
    if not complete:
        counts = {}
        for trial in trials:
            counts[trial.state.name.lower()] = counts.get(trial.state.name.lower(), 0) + 1
        errors = [f"trial {t.number}: {t.user_attrs['error']}" for t in trials if t.user_attrs.get("error")]
        shown = ", ".join(f"{n} {state}" for state, n in counts.items()) or "none ran"
        hint = f"; first error: {errors[0]}" if errors else ""
        raise FrameworkError(f"no trial of the search completed ({shown}){hint}")
    pick = min if search["goal"] == "minimize" else max
    return pick(complete, key=lambda t: t.value)


def _copy_model(source: Path, target: Path, number: int) -> None:
    if not source.is_dir():
        raise FrameworkError(f"the model of the best trial ({number}) is missing: '{source}' is not a directory")
    with atomic.atomic_dir(target) as tmp:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
