"""The model learns simple rules through set, bag, date, vector and timeseries features, with pinned
floors on held-out test metrics (synthetic data, a few seconds each on a CPU)."""
import numpy as np
import pandas as pd

from framework import Model

LABELS = np.array(list("abcdefgh"))


def structured_frame(n: int, seed: int) -> pd.DataFrame:
    """Columns of every structured type and targets that follow simple rules on them."""
    rng = np.random.default_rng(seed)
    tags = [" ".join(rng.choice(LABELS, size=rng.integers(1, 4), replace=False)) for _ in range(n)]
    words = [" ".join(rng.choice(LABELS[:4], size=rng.integers(1, 7))) for _ in range(n)]
    when = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 3 * 365 * 24, size=n), unit="h")
    x = rng.normal(size=(n, 3))
    level = rng.choice([-1.0, 1.0], size=n)
    series = [" ".join(f"{v:.3f}" for v in rng.normal(loc=m, scale=0.5, size=rng.integers(3, 12))) for m in level]
    return pd.DataFrame({
        "tags": tags, "has_a": np.where([" a" in f" {t}" for t in tags], "yes", "no"),
        "words": words, "many_a": np.where([w.split().count("a") >= 2 for w in words], "yes", "no"),
        "when": when.astype(str), "weekend": np.where(when.day_of_week >= 5, "weekend", "weekday"),
        "x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2],
        "vec": [" ".join(map(str, row)) for row in x],
        "target": [" ".join(map(str, row)) for row in np.stack([x[:, 0] + x[:, 1], 2 * x[:, 1], -x[:, 2]], 1)],
        "signs": [" ".join(label for label, on in zip("pqr", row > 0) if on) or "none" for row in x],
        "series": series, "level": np.where(level > 0, "high", "low"),
    })


def train(inputs, outputs, epochs: int = 15, output_dir=None) -> tuple[Model, dict]:
    config = {"input_features": [{"name": name, "type": kind} for name, kind in inputs],
              "output_features": [{"name": name, "type": kind} for name, kind in outputs],
              "combiner": {"type": "concat", "output_size": 32},
              "trainer": {"epochs": epochs, "batch_size": 32, "learning_rate": 0.01, "progress_bar": False,
                          "early_stop": 0}}
    model = Model(config)
    result = model.train(structured_frame(500, 0), validation=structured_frame(100, 2),
                         test=structured_frame(300, 1), output_dir=output_dir)
    return model, result.test_metrics


def test_set_input_carries_whether_a_label_is_in_the_set():
    _, metrics = train([("tags", "set")], [("has_a", "category")])
    assert metrics["has_a"]["accuracy"] >= 0.95


def test_bag_input_carries_label_counts():
    _, metrics = train([("words", "bag")], [("many_a", "category")])
    assert metrics["many_a"]["accuracy"] >= 0.9


def test_date_input_carries_the_weekday():
    _, metrics = train([("when", "date")], [("weekend", "category")])
    assert metrics["weekend"]["accuracy"] >= 0.9


def test_vector_input_to_a_number():
    _, metrics = train([("vec", "vector")], [("x0", "number")])
    assert metrics["x0"]["r2"] >= 0.9


def test_vector_output_is_learnt_and_predicted_as_lists():
    model, metrics = train([("x0", "number"), ("x1", "number"), ("x2", "number")], [("target", "vector")])
    assert metrics["target"]["r2"] >= 0.9 and metrics["target"]["cosine_similarity"] >= 0.9
    frame = structured_frame(20, 3)
    predicted = np.array(model.predict(frame)["target_predictions"].tolist())
    expected = np.array([list(map(float, row.split())) for row in frame["target"]])
    assert predicted.shape == (20, 3) and np.abs(predicted - expected).mean() < 0.3


def test_set_output_is_learnt_and_survives_save_and_load(tmp_path):
    model, metrics = train([("x0", "number"), ("x1", "number"), ("x2", "number")], [("signs", "set")],
                           epochs=25, output_dir=tmp_path)
    assert metrics["signs"]["jaccard"] >= 0.9 and metrics["signs"]["f1"] >= 0.9
    frame = structured_frame(50, 3)
    predicted = model.predict(frame)
    right = [sorted(p) == sorted(t.split()) for p, t in zip(predicted["signs_predictions"], frame["signs"])]
    assert np.mean(right) >= 0.8
    loaded = Model.load(next(tmp_path.glob("*/model")))
    pd.testing.assert_frame_equal(loaded.predict(frame), predicted)


def test_timeseries_input_carries_the_level_of_the_series():
    _, metrics = train([("series", "timeseries")], [("level", "category")], epochs=5)
    assert metrics["level"]["accuracy"] >= 0.9
