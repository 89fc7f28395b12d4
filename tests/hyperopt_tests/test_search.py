"""Searches on a tiny synthetic task: what they find, what they write, how they resume, prune and
spread over processes."""
import itertools
import json

import optuna
import pandas as pd
import pytest
import yaml

from framework.api import Model
from framework.cli import main
from framework.data import pipeline
from framework.errors import ConfigError, DataError, FrameworkError
from framework.hyperopt import hyperopt
from framework.hyperopt.search import ReportEpochs, objective_value
from framework.models.model_dir import dump_config
from synthetic import synthetic_frame, tiny_config

LEARNING_RATE = {"space": "loguniform", "lower": 1e-3, "upper": 0.1}
LAYER_SIZE = {"space": "int", "lower": 4, "upper": 48}


@pytest.fixture(scope="module")
def frame():
    return synthetic_frame(300)


def searched(parameters=None, **section) -> dict:
    config = tiny_config()
    config["hyperopt"] = {"parameters": parameters or {"trainer.learning_rate": LEARNING_RATE,
                                                       "combiner.output_size": LAYER_SIZE},
                          "sampler": {"type": "random", "seed": 1}, **section}
    return config


def test_a_random_search_beats_a_poor_baseline_and_writes_its_results(frame, tmp_path, monkeypatch):
    fits = []
    fit = pipeline._fit
    monkeypatch.setattr(pipeline, "_fit", lambda *args: fits.append(1) or fit(*args))
    poor = tiny_config(learning_rate=1e-5)
    baseline = Model(poor).train(frame, output_dir=None, cache_dir=tmp_path / "cache")
    assert len(fits) == 1
    fits.clear()

    result = hyperopt(searched(num_samples=4), frame, output_directory=tmp_path / "search",
                      cache_dir=tmp_path / "cache")

    assert len(fits) == 0  # every trial read the baseline's preprocessed data from the cache
    assert result.best_value <= baseline.validation_metrics["label"]["loss"]
    out = tmp_path / "search"
    trials = pd.read_csv(out / "trials.csv")
    assert list(trials["trial"]) == [0, 1, 2, 3] and set(trials["state"]) == {"COMPLETE"}
    assert {"value", "duration_s", "epochs", "params.trainer.learning_rate", "params.combiner.output_size"} \
        <= set(trials.columns)
    assert (trials["duration_s"] > 0).all() and trials["params.trainer.learning_rate"].between(1e-3, 0.1).all()
    assert trials["value"].min() == pytest.approx(result.best_value)
    best = trials.loc[trials["value"].idxmin()]
    assert result.best_trial == best["trial"]

    config = yaml.safe_load((out / "best_config.yaml").read_text())  # fully resolved, ready for `framework train`
    assert config["trainer"]["learning_rate"] == pytest.approx(best["params.trainer.learning_rate"])
    assert config["combiner"]["output_size"] == best["params.combiner.output_size"]
    assert "hyperopt" not in config and config["trainer"]["eval_batch_size"] == 1024
    assert yaml.safe_load(dump_config(result.best_config)) == config

    model = Model.load(out / "best_model")
    assert model.config == result.best_config
    metrics = model.evaluate(frame)
    assert metrics["label"]["loss"] < baseline.validation_metrics["label"]["loss"] + 0.05
    summary = json.loads((out / "hyperopt_summary.json").read_text())
    assert summary["best_trial"] == result.best_trial and summary["goal"] == "minimize"


def test_preprocessing_runs_once_for_the_whole_search(frame, tmp_path, monkeypatch):
    fits = []
    fit = pipeline._fit
    monkeypatch.setattr(pipeline, "_fit", lambda *args: fits.append(1) or fit(*args))
    hyperopt(searched(num_samples=3), frame, output_directory=tmp_path / "search", cache_dir=tmp_path / "cache")
    assert len(fits) == 1


def test_an_interrupted_search_resumes_without_rerunning_finished_trials(frame, tmp_path):
    out = tmp_path / "search"
    first = hyperopt(searched(num_samples=2), frame, output_directory=out)
    second = hyperopt(searched(num_samples=4), frame, output_directory=out)
    before, after = first.trials, second.trials
    assert list(after["trial"]) == [0, 1, 2, 3]
    # the two first trials are the same records, not runs again
    pd.testing.assert_frame_equal(after.iloc[:2].reset_index(drop=True), before.reset_index(drop=True))
    assert sorted(p.name for p in (out / "trials").iterdir()) == [f"trial_{n}_0" for n in range(4)]
    third = hyperopt(searched(num_samples=4), frame, output_directory=out)  # nothing left to do
    assert len(third.trials) == 4


def test_a_trial_cut_off_mid_run_is_run_again_with_its_values(frame, tmp_path):
    out = tmp_path / "search"
    hyperopt(searched(num_samples=1), frame, output_directory=out)
    study = optuna.load_study(study_name="hyperopt", storage=f"sqlite:///{out / 'study.db'}")
    killed = study.ask()  # what a killed process leaves behind: a trial marked running forever
    killed.suggest_float("trainer.learning_rate", 1e-3, 0.1, log=True)
    killed.suggest_int("combiner.output_size", 4, 48)

    result = hyperopt(searched(num_samples=2), frame, output_directory=out)

    trials = result.trials.set_index("trial")
    assert list(trials["state"]) == ["COMPLETE", "FAIL", "COMPLETE"]
    assert trials.loc[1, "error"] == "interrupted; retried as trial 2"
    assert trials.loc[2, "params.trainer.learning_rate"] == killed.params["trainer.learning_rate"]
    assert trials.loc[2, "params.combiner.output_size"] == killed.params["combiner.output_size"]


def test_a_trial_stopped_by_ctrl_c_is_run_again(frame, tmp_path, monkeypatch):
    report = ReportEpochs.on_epoch_end

    def interrupt_trial_1(self, epoch, statistics):
        if self.trial.number == 1:
            raise KeyboardInterrupt
        report(self, epoch, statistics)

    monkeypatch.setattr(ReportEpochs, "on_epoch_end", interrupt_trial_1)
    with pytest.raises(KeyboardInterrupt):
        hyperopt(searched(num_samples=3), frame, output_directory=tmp_path)
    monkeypatch.setattr(ReportEpochs, "on_epoch_end", report)
    trials = hyperopt(searched(num_samples=3), frame, output_directory=tmp_path).trials.set_index("trial")
    assert list(trials["state"]) == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert trials.loc[1, "error"] == "interrupted; retried as trial 2"
    assert trials.loc[2, "params.trainer.learning_rate"] == trials.loc[1, "params.trainer.learning_rate"]


def test_an_error_every_trial_would_meet_stops_the_search(frame, tmp_path):
    config = searched(num_samples=3, split="test")
    config["preprocessing"] = {"split": {"probabilities": [0.8, 0.2, 0.0]}}
    with pytest.raises(DataError, match="hyperopt.split is 'test' but the test split has no rows"):
        hyperopt(config, frame, output_directory=tmp_path)
    study = optuna.load_study(study_name="hyperopt", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert len(study.trials) == 1 and study.trials[0].user_attrs["interrupted"]


def test_resuming_with_another_search_is_refused(frame, tmp_path):
    hyperopt(searched(num_samples=1), frame, output_directory=tmp_path)
    changed = searched(num_samples=2)
    changed["trainer"]["epochs"] = 2
    with pytest.raises(FrameworkError, match=r"started with another config: config\.trainer\.epochs \(3 in the study"):
        hyperopt(changed, frame, output_directory=tmp_path)


def test_the_median_pruner_stops_a_clearly_bad_trial(frame, tmp_path):
    config = searched({"trainer.learning_rate": {"space": "choice", "categories": [0.03, 1e-7]}}, num_samples=4,
                      pruner={"type": "median", "n_startup_trials": 2})
    config["trainer"]["epochs"] = 4
    # the order of the trials is fixed through Optuna's own queue: three good ones, then the bad one
    study = optuna.create_study(study_name="hyperopt", storage=f"sqlite:///{tmp_path / 'study.db'}")
    for rate in (0.03, 0.03, 0.03, 1e-7):
        study.enqueue_trial({"trainer.learning_rate": rate})

    trials = hyperopt(config, frame, output_directory=tmp_path).trials

    assert list(trials["state"]) == ["COMPLETE", "COMPLETE", "COMPLETE", "PRUNED"]
    assert trials.loc[3, "epochs"] == 1 and (trials.loc[:2, "epochs"] == 4).all()
    assert trials.loc[3, "value"] > trials.loc[:2, "value"].max()  # Optuna keeps a pruned trial's last report


def test_the_grid_sampler_covers_the_grid(frame, tmp_path):
    config = searched({"trainer.learning_rate": {"space": "grid", "values": [0.01, 0.05]},
                       "combiner.output_size": {"space": "int", "lower": 8, "upper": 16, "step": 8},
                       "combiner.num_fc_layers": {"space": "choice", "categories": [0, 1]}},
                      sampler={"type": "grid", "seed": 0})
    config["trainer"]["epochs"] = 1
    trials = hyperopt(config, frame, output_directory=tmp_path).trials
    points = set(zip(trials["params.trainer.learning_rate"], trials["params.combiner.output_size"],
                     trials["params.combiner.num_fc_layers"]))
    assert len(trials) == 8 and points == set(itertools.product([0.01, 0.05], [8, 16], [0, 1]))


def test_choices_of_lists_and_mappings_reach_the_trial_configs(frame, tmp_path):
    optimizers = [{"type": "adam", "amsgrad": True}, {"type": "adamw"}]
    config = searched({"trainer.optimizer": {"space": "choice", "categories": optimizers},
                       "trainer.optimizer.betas": {"space": "choice", "categories": [[0.9, 0.999], [0.5, 0.9]]}},
                      num_samples=2, sampler="grid")
    config["trainer"]["epochs"] = 1
    result = hyperopt(config, frame, output_directory=tmp_path)
    assert set(result.trials["state"]) == {"COMPLETE"}
    for _, trial in result.trials.iterrows():
        optimizer = json.loads(trial["params.trainer.optimizer"])
        assert optimizer in optimizers
        resolved = yaml.safe_load((tmp_path / "trials" / f"trial_{trial['trial']}_0" / "config.yaml").read_text())
        assert resolved["trainer"]["optimizer"]["type"] == optimizer["type"]
        assert resolved["trainer"]["optimizer"]["amsgrad"] == optimizer.get("amsgrad", False)
        assert resolved["trainer"]["optimizer"]["betas"] == json.loads(trial["params.trainer.optimizer.betas"])


def conflicting(optimizers):
    """Each value is valid alone, but sgd takes no betas: a trial of that pair fails on its config."""
    config = searched({"trainer.optimizer": {"space": "choice", "categories": optimizers},
                       "trainer.optimizer.betas": {"space": "choice", "categories": [[0.8, 0.99]]}}, sampler="grid")
    config["trainer"]["epochs"] = 1
    return config


def test_failed_trials_are_recorded_and_the_search_goes_on(frame, tmp_path):
    result = hyperopt(conflicting([{"type": "adam"}, {"type": "sgd"}]), frame, output_directory=tmp_path)
    trials = result.trials.set_index("params.trainer.optimizer")
    failed = trials.loc['{"type": "sgd"}']
    assert failed["state"] == "FAIL" and "trainer.optimizer.betas: unknown key" in failed["error"]
    assert trials.loc['{"type": "adam"}', "state"] == "COMPLETE"
    assert result.best_params["trainer.optimizer"] == {"type": "adam"}


def test_a_search_where_no_trial_completes_says_why(frame, tmp_path):
    with pytest.raises(FrameworkError, match=r"no trial of the search completed \(1 fail\); first error: trial 0: "
                                             r"Invalid config: 1 problem\n  - trainer.optimizer.betas: unknown key"):
        hyperopt(conflicting([{"type": "sgd"}]), frame, output_directory=tmp_path)


def test_data_problems_stop_the_search_before_any_trial(frame, tmp_path):
    with pytest.raises(FrameworkError, match="column 'x' of feature 'x' is not in the dataset"):
        hyperopt(searched(num_samples=2), frame.drop(columns="x"), output_directory=tmp_path)
    with pytest.raises(ConfigError, match="hyperopt: required key is missing"):
        hyperopt(tiny_config(), frame, output_directory=tmp_path)


def test_two_workers_share_the_study(frame, tmp_path):
    config = searched(num_samples=3, executor={"num_workers": 2})
    config["trainer"]["epochs"] = 1
    result = hyperopt(config, frame, output_directory=tmp_path)
    assert sorted(result.trials["trial"]) == [0, 1, 2] and set(result.trials["state"]) == {"COMPLETE"}
    assert len(set(result.trials["params.trainer.learning_rate"])) == 3  # the workers drew different points
    assert (tmp_path / "best_model" / "weights.safetensors").is_file()
    assert not list((tmp_path / ".workers").iterdir())  # the task file with its copy of the data is gone


def test_objective_is_the_metric_of_the_kept_epoch():
    statistics = {"validation": {"label": {"loss": [0.5, 0.3, 0.4]}}, "best": {"epoch": 2}}
    search = {"split": "validation", "output_feature": "label", "metric": "loss"}
    assert objective_value(statistics, search) == 0.3
    with pytest.raises(FrameworkError, match="the test split has no rows"):
        objective_value(statistics, {**search, "split": "test"})


def test_the_command_line(frame, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    frame.to_csv("data.csv", index=False)
    config = searched(num_samples=2)
    config["trainer"]["epochs"] = 1
    (tmp_path / "search.yaml").write_text(yaml.safe_dump(config))
    assert main(["hyperopt", "--config", "search.yaml", "--dataset", "data.csv"]) == 0
    out = capsys.readouterr().out
    assert "2 trials (2 complete); best: trial" in out
    assert (tmp_path / "results" / "search_hyperopt" / "best_model" / "weights.safetensors").is_file()

    config["hyperopt"]["parameters"]["trainer.learning_rat"] = LEARNING_RATE
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    assert main(["hyperopt", "--config", "bad.yaml", "--dataset", "data.csv", "--output-directory", "x"]) == 2
    err = capsys.readouterr().err
    assert "hyperopt.parameters.trainer.learning_rat: no such setting in the config; did you mean " \
           "'trainer.learning_rate' or" in err and "Traceback" not in err


def test_a_frozen_llm_encoder_embeds_the_texts_once_for_the_whole_search(tmp_path, monkeypatch):
    from embedding_counts import count_embedded_rows
    from tiny_llm import build_tiny_llm, capitals_frame

    computed = count_embedded_rows(monkeypatch)
    model = build_tiny_llm(tmp_path / "llm")
    encoder = {"type": "llm", "base_model": str(model)}
    config = {"input_features": [{"name": "country", "type": "text", "encoder": encoder}],
              "output_features": [{"name": "capital", "type": "category"}],
              "trainer": {"epochs": 1, "batch_size": 16, "progress_bar": False},
              "hyperopt": {"parameters": {"trainer.learning_rate": LEARNING_RATE}, "num_samples": 2,
                           "sampler": {"type": "random", "seed": 0}}}
    result = hyperopt(config, capitals_frame(), output_directory=tmp_path / "search")
    assert set(result.trials["state"]) == {"COMPLETE"}
    assert computed == [12]  # the 12 distinct texts, embedded once, before the first trial


def test_an_llm_search_tunes_the_learning_rate_and_lora_rank_and_keeps_a_loadable_adapter(tmp_path):
    """model_type llm: trials are LoRA fine-tunes; the metric is one each epoch reports (perplexity here,
    minimized), and the best trial's model/ holds a peft adapter that Model.load reads."""
    from tiny_llm import build_tiny_llm, capitals_frame, llm_config

    config = llm_config(build_tiny_llm(tmp_path / "llm"), trainer={"epochs": 4})
    config["preprocessing"] = {"split": {"probabilities": [0.75, 0.25, 0.0]}}
    config["hyperopt"] = {"parameters": {"trainer.learning_rate": {"space": "choice", "categories": [1e-5, 0.02]},
                                         "adapter.r": {"space": "choice", "categories": [4, 8]}},
                          "metric": "perplexity", "sampler": {"type": "grid"}}
    result = hyperopt(config, capitals_frame(), output_directory=tmp_path / "search")
    trials = result.trials
    assert len(trials) == 4 and set(trials["state"]) == {"COMPLETE"}
    assert result.best_params["trainer.learning_rate"] == 0.02  # 1e-5 barely moves the random model
    slow = trials[trials["params.trainer.learning_rate"] == 1e-5]["value"]
    assert result.best_value < slow.min()
    assert result.best_config["adapter"]["r"] == result.best_params["adapter.r"]
    model = Model.load(tmp_path / "search" / "best_model")
    assert model.config["adapter"]["r"] == result.best_params["adapter.r"]
    assert len(model.predict(capitals_frame().head(3))) == 3


@pytest.mark.parametrize("metric, says", [("exact_match", "an llm's epochs report the teacher-forced metrics"),
                                          ("accuracy", "unknown metric")])
def test_an_llm_search_optimizes_only_what_its_epochs_report(tmp_path, metric, says):
    from tiny_llm import llm_config

    config = llm_config(tmp_path)
    config["hyperopt"] = {"parameters": {"trainer.learning_rate": LEARNING_RATE}, "metric": metric}
    with pytest.raises(ConfigError) as raised:
        from framework.config import load_config

        load_config(config)
    [problem] = raised.value.problems
    assert problem.path == "hyperopt.metric" and says in problem.message, problem.message
