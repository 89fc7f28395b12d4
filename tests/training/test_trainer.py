"""The training loop: gradient accumulation, early stopping, statistics, checkpoints, user errors."""
import json
import re

import pytest
import torch

from framework import Model
from framework.errors import FrameworkError


def train(config, frame, **kwargs):
    model = Model(config)
    return model, model.train(frame, **kwargs)


def test_gradient_accumulation_equals_one_large_batch(make_frame, make_config):
    """batch 8 x 4 accumulation steps is the same SGD update as batch 32 (mean losses, no dropout)."""
    frame, validation = make_frame(128, seed=0), make_frame(32, seed=1)

    def weights(batch_size, accumulation):
        config = make_config(epochs=3, batch_size=batch_size, gradient_accumulation_steps=accumulation,
                             early_stop=0, learning_rate=0.1, optimizer={"type": "sgd"})
        model, _ = train(config, frame, validation=validation, output_dir=None)
        return model.module.state_dict()

    accumulated, large, small = weights(8, 4), weights(32, 1), weights(8, 1)
    for name in large:
        torch.testing.assert_close(accumulated[name], large[name], rtol=1e-5, atol=1e-6)
    assert any(not torch.allclose(small[name], large[name], atol=1e-3) for name in large)  # the test can tell


def test_train_steps_overrides_epochs(make_frame, make_config):
    config = make_config(epochs=50, train_steps=7, batch_size=32)  # 70 training rows: 3 steps an epoch
    _, result = train(config, make_frame(100), output_dir=None)
    assert result.training_statistics["steps"] == [3, 6, 7]
    assert result.training_statistics["epochs"] == [1, 2, 3]


def test_early_stopping_stops_before_epochs(make_frame, make_config):
    frame = make_frame(200)
    frame["label"] = frame.index % 2 == 0  # no signal: validation loss stops improving at once
    config = make_config(epochs=40, early_stop=2, learning_rate=0.05)
    _, result = train(config, frame, output_dir=None)
    statistics = result.training_statistics
    epochs = statistics["epochs"]
    assert len(epochs) < 40
    assert epochs[-1] == statistics["best"]["epoch"] + 2  # stopped after 2 evaluations without improvement
    losses = statistics["validation"]["label"]["loss"]
    assert min(losses) == losses[statistics["best"]["epoch"] - 1] == statistics["best"]["value"]


def test_training_ends_on_the_best_weights(make_frame, make_config, tmp_path):
    frame = make_frame(200)
    frame["label"] = frame.index % 2 == 0
    config = make_config(epochs=40, early_stop=3, learning_rate=0.05)
    model, result = train(config, frame, output_dir=tmp_path)
    best = result.training_statistics["best"]
    assert best["epoch"] < result.training_statistics["epochs"][-1]
    assert result.validation_metrics["label"]["loss"] == pytest.approx(best["value"], rel=1e-5)


def test_training_statistics_json_has_a_list_per_epoch(make_frame, make_config, tmp_path):
    config = make_config(epochs=4, early_stop=0)
    _, result = train(config, make_frame(200), output_dir=tmp_path)
    written = json.loads((result.output_dir / "training_statistics.json").read_text())
    assert written == result.training_statistics
    assert written["epochs"] == [1, 2, 3, 4]
    assert written["steps"] == [5, 10, 15, 20]  # 140 training rows at batch 32
    for split in ("train", "validation", "test"):
        for output in ("label", "combined"):
            assert len(written[split][output]["loss"]) == 4, (split, output)
    assert len(written["validation"]["label"]["roc_auc"]) == 4
    assert set(written["train"]["label"]) == {"loss"}  # cheap per-batch losses unless asked for more
    assert written["best"]["split"] == "validation" and written["best"]["metric"] == "loss"


def test_evaluate_training_set_records_full_metrics(make_frame, make_config):
    _, result = train(make_config(epochs=2, evaluate_training_set=True), make_frame(200), output_dir=None)
    assert len(result.training_statistics["train"]["label"]["accuracy"]) == 2


def test_validation_metric_with_goal_max(make_frame, make_config):
    config = make_config(epochs=5, early_stop=0, validation_metric="accuracy")
    _, result = train(config, make_frame(200), output_dir=None)
    accuracies = result.training_statistics["validation"]["label"]["accuracy"]
    best = result.training_statistics["best"]
    assert best["metric"] == "accuracy" and best["value"] == max(accuracies)
    assert best["epoch"] == accuracies.index(max(accuracies)) + 1  # the first epoch reaching the maximum


def test_fp16_on_the_cpu_is_refused_before_anything_is_written(make_frame, make_config, tmp_path):
    config = make_config(precision="fp16", device="cpu")
    with pytest.raises(FrameworkError, match="fp16 needs a CUDA GPU and this run is on cpu; use bf16"):
        train(config, make_frame(100), output_dir=tmp_path / "results")
    assert not (tmp_path / "results").exists()


def test_bf16_trains_on_the_cpu(make_frame, make_config):
    _, result = train(make_config(epochs=1, precision="bf16", device="cpu"), make_frame(100), output_dir=None)
    assert result.test_metrics["label"]["loss"] > 0


def test_a_diverging_loss_raises_with_a_hint(make_frame, make_config):
    config = make_config(outputs=(("amount", "number"),), learning_rate=1e12, optimizer={"type": "sgd"})
    with pytest.raises(FrameworkError) as caught:
        train(config, make_frame(200), output_dir=None)
    message = str(caught.value)
    # detected at the step it happens (inf), before it turns into nan a step later
    assert re.search(r"training loss became (nan|inf) in epoch 1 \(step \d+\)", message)
    assert "lower trainer.learning_rate" in message and "max_grad_norm" in message


def test_the_same_seed_trains_the_same_weights(make_frame, make_config):
    config = make_config(epochs=2)
    config["combiner"]["dropout"] = 0.3
    first, _ = train(config, make_frame(150), output_dir=None)
    second, _ = train(config, make_frame(150), output_dir=None)
    for name, value in first.module.state_dict().items():
        torch.testing.assert_close(value, second.module.state_dict()[name], rtol=0, atol=0)


def test_training_leaves_the_global_rng_alone(make_frame, make_config):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(make_config(epochs=1), make_frame(100), output_dir=None)
    torch.testing.assert_close(torch.rand(3), expected)


def test_without_a_validation_split_the_training_split_is_watched(make_frame, make_config):
    config = make_config(epochs=2)
    config["preprocessing"] = {"split": {"probabilities": [0.8, 0.0, 0.2]}}
    with pytest.warns(UserWarning, match="the validation split is empty: early stopping and the best checkpoint "
                                         "use the training split's metrics"):
        _, result = train(config, make_frame(100), output_dir=None)
    assert result.training_statistics["best"]["split"] == "train"
    assert len(result.training_statistics["train"]["label"]["accuracy"]) == 2  # full metrics, evaluated
    assert "validation" not in result.training_statistics and result.validation_metrics == {}


def test_nonfinite_batches_are_skipped_when_asked(make_frame, make_config, monkeypatch):
    """With nonfinite_loss: skip, a batch whose loss is inf leaves the weights alone and is counted."""
    import torch

    from framework.models.ecd import ECD

    original = ECD.losses
    calls = {"n": 0}

    def sometimes_infinite(self, logits, batch):
        total, each = original(self, logits, batch)
        calls["n"] += 1
        return (total * float("inf"), each) if calls["n"] % 3 == 0 else (total, each)

    monkeypatch.setattr(ECD, "losses", sometimes_infinite)
    config = make_config(epochs=2, nonfinite_loss="skip")
    with pytest.warns(UserWarning, match="non-finite training loss"):
        model, result = train(config, make_frame(200), output_dir=None)
    assert result.training_statistics["skipped_batches"] > 0
    assert all(torch.isfinite(p).all() for p in model.module.parameters())


def test_out_of_memory_names_the_settings_that_reduce_memory(make_frame, make_config, monkeypatch):
    import torch

    from framework.models.ecd import ECD

    def out_of_memory(self, batch):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(ECD, "forward", out_of_memory)
    with pytest.raises(FrameworkError, match="out of GPU memory with trainer.batch_size .*effective_batch_size"):
        train(make_config(epochs=1), make_frame(100), output_dir=None)
