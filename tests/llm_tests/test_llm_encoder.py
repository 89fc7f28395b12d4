"""The llm encoder: any Hugging Face model as a text encoder under ECD heads. Each pooling against a hand
computation, the model's own tokenizer, the frozen + cached path equal to the uncached one, the cache
reused and repaired, a LoRA-adapted encoder that trains and round-trips, saved models without the
frozen base weights, and the config errors."""
import logging

import numpy as np
import pandas as pd
import pytest
import torch

from framework import Model
from framework.config import load_config
from framework.errors import ConfigError
from embedding_counts import count_embedded_rows
from tiny_llm import build_tiny_bert, build_tiny_llm


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    words = ["the", "cat", "sat", "a", "dog", "and", "all", "of", "them", "movie", "film", "great", "awful",
             "country", ":", "peru", "capital", "lima"]
    return build_tiny_llm(tmp_path_factory.mktemp("tiny-llama-encoder"), words=words)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAMEWORK_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "embeddings"


def reviews(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """A sentiment keyword among filler words decides the label; x is noise."""
    rng = np.random.default_rng(seed)
    filler = ["the", "cat", "sat", "a", "dog", "and", "all", "of", "them", "movie", "film"]
    rows = []
    for i in range(n):
        words = list(rng.choice(filler, size=int(rng.integers(2, 8))))
        label = "pos" if i % 2 else "neg"
        words.insert(int(rng.integers(0, len(words) + 1)), "great" if label == "pos" else "awful")
        rows.append({"review": " ".join(words), "label": label, "x": float(rng.normal())})
    return pd.DataFrame(rows)


def config(base_model, epochs: int = 15, **encoder) -> dict:
    return {"input_features": [{"name": "review", "type": "text",
                                "encoder": {"type": "llm", "base_model": str(base_model), **encoder}},
                               {"name": "x", "type": "number"}],
            "output_features": [{"name": "label", "type": "category"}],
            "trainer": {"epochs": epochs, "batch_size": 32, "learning_rate": 0.01, "progress_bar": False},
            "preprocessing": {"cache": False}}


def hidden_states(base_model, texts: list[str], layer: int = -1):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    model = AutoModel.from_pretrained(base_model).eval()
    rows = [tokenizer(t)["input_ids"] for t in texts]
    with torch.no_grad():
        return [model(input_ids=torch.tensor([r]), output_hidden_states=True).hidden_states[layer][0] for r in rows]


@pytest.mark.parametrize("pooling, reduce", [
    ("mean", lambda h: h.mean(dim=0)), ("cls", lambda h: h[0]), ("first", lambda h: h[0]),
    ("max", lambda h: h.max(dim=0).values), ("last", lambda h: h[-1])])
def test_each_pooling_matches_a_hand_computation_on_unpadded_rows(bert, cache_dir, pooling, reduce):
    texts = ["the cat sat", "a dog", "all of them and the movie"]
    model = Model(config(bert, epochs=1, pooling=pooling, cache=False))
    model.train(reviews(40), output_dir=None)
    embeddings = model.embed(pd.DataFrame({"review": texts, "x": 0.0}))
    expected = torch.stack([reduce(h) for h in hidden_states(bert, texts)])
    np.testing.assert_allclose(embeddings, expected.numpy(), rtol=1e-4, atol=1e-5)


def test_a_decoder_pools_its_last_real_token_of_a_chosen_layer(llama, cache_dir):
    texts = ["country : peru", "capital : lima lima lima"]
    model = Model(config(llama, epochs=1, layer=1, cache=False))
    model.train(reviews(40), output_dir=None)
    assert model.module.input_features["review"].encoder.pooling == "last"  # auto, for a decoder-only model
    embeddings = model.embed(pd.DataFrame({"review": texts, "x": 0.0}))
    # the framework appends the tokenizer's EOS to each text (a decoder's usual sentence-embedding token)
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(llama)
    base = AutoModel.from_pretrained(llama).eval()
    for text, row in zip(texts, embeddings):
        ids = torch.tensor([tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]])
        with torch.no_grad():
            expected = base(input_ids=ids, output_hidden_states=True).hidden_states[1][0, -1]
        np.testing.assert_allclose(row, expected.numpy(), rtol=1e-4, atol=1e-5)


def test_the_feature_uses_the_models_own_tokenizer_and_length(bert):
    resolved = load_config(config(bert, max_sequence_length=12))
    preprocessing = resolved["input_features"][0]["preprocessing"]
    assert preprocessing["tokenizer"] == "pretrained" and preprocessing["pretrained_tokenizer"] == str(bert)
    assert preprocessing["max_sequence_length"] == 12


def test_frozen_and_cached_predicts_as_the_uncached_model(bert, cache_dir):
    frame = reviews()
    results = {}
    for cache in (True, False):
        model = Model(config(bert, cache=cache))
        model.train(frame, output_dir=None)
        assert bool(model.metadata["review"].get("embeddings_cached")) is cache
        results[cache] = model.predict(frame.head(50))
    pd.testing.assert_frame_equal(results[True], results[False], rtol=1e-4, atol=1e-5)
    assert (results[True]["label_predictions"] == frame.head(50)["label"]).mean() >= 0.9


def test_the_preprocessing_cache_tells_encoder_settings_apart(bert, cache_dir, tmp_path):
    """The preprocessed arrays of a frozen encoder's column are its embeddings, so a config that pools
    differently, or trains the encoder, must not be served another config's arrays."""
    from framework.config import load_config
    from framework.data.pipeline import prepare_training

    frame = reviews(40)

    def prepared(**encoder):
        settings = config(bert, **encoder)
        settings["preprocessing"] = {"cache": True}
        return prepare_training(load_config(settings), frame, cache_dir=tmp_path / "data-cache")

    mean = prepared(pooling="mean")
    assert prepared(pooling="mean").cache_hit
    first = prepared(pooling="first")
    assert not first.cache_hit
    assert not np.allclose(first.splits["train"].columns["review"], mean.splits["train"].columns["review"])
    trainable = prepared(pooling="mean", trainable=True)
    assert not trainable.cache_hit and not trainable.metadata["review"].get("embeddings_cached")


def test_the_cache_is_reused_by_another_head_and_computes_only_new_rows(bert, cache_dir, monkeypatch):
    computed = count_embedded_rows(monkeypatch)
    frame = reviews(120)
    Model(config(bert, epochs=1)).train(frame, output_dir=None)
    assert sum(computed) == frame["review"].nunique()
    computed.clear()
    other_head = config(bert, epochs=1)
    other_head["output_features"][0]["decoder"] = {"type": "classifier", "num_fc_layers": 1}
    model = Model(other_head)
    model.train(frame, output_dir=None)
    assert computed == []
    model.predict(pd.concat([frame.head(10), pd.DataFrame({"review": ["a brand new dog film"], "x": [0.0]})]))
    assert computed == [1]


def test_a_damaged_shard_is_removed_and_its_rows_computed_again(bert, cache_dir, caplog):
    frame = reviews(60)
    first = Model(config(bert, epochs=1))
    first.train(frame, output_dir=None)
    shards = list(cache_dir.rglob("shard-*.npz"))
    assert len(shards) == 1
    shards[0].write_bytes(shards[0].read_bytes()[:200])  # a truncated write
    caplog.set_level(logging.WARNING)
    second = Model(config(bert, epochs=1))
    second.train(frame, output_dir=None)
    assert any("is damaged" in r.getMessage() for r in caplog.records)
    assert not shards[0].exists() and len(list(cache_dir.rglob("shard-*.npz"))) == 1
    np.testing.assert_allclose(second.embed(frame.head(5)), first.embed(frame.head(5)), rtol=1e-5)


def test_a_saved_frozen_model_holds_the_head_not_the_base_weights(bert, cache_dir, tmp_path):
    from safetensors.torch import load_file

    model = Model(config(bert, epochs=2, cache=False))
    model.train(reviews(60), output_dir=None)
    model.save(tmp_path / "m")
    saved = load_file(tmp_path / "m" / "weights.safetensors")
    assert saved and not any(".encoder.model." in key for key in saved)
    loaded = Model.load(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.predict(reviews(20, seed=3)), model.predict(reviews(20, seed=3)))


def test_a_lora_adapted_encoder_trains_and_round_trips(llama, cache_dir, tmp_path):
    from safetensors.torch import load_file

    cfg = config(llama, epochs=6, adapter={"type": "lora", "r": 4, "lora_dropout": 0.0})
    model = Model(cfg)
    assert model.config["input_features"][0]["encoder"]["trainable"] is True  # the adapter trains
    result = model.train(reviews(), output_dir=None)
    losses = result.training_statistics["train"]["label"]["loss"]
    assert losses[-1] < 0.5 * losses[0]
    encoder = model.module.input_features["review"].encoder
    trainable = {n for n, p in encoder.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    model.save(tmp_path / "m")
    saved = load_file(tmp_path / "m" / "weights.safetensors")
    assert {k for k in saved if ".encoder.model." in k} == {f"input_features.review.encoder.model.{n}" for n in trainable}
    loaded = Model.load(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.predict(reviews(20, seed=5)), model.predict(reviews(20, seed=5)))


def test_an_8bit_encoder_runs_on_the_cpu(bert, cache_dir):
    model = Model(config(bert, epochs=2, quantization={"bits": 8}, cache=False))
    model.train(reviews(60), output_dir=None)
    import bitsandbytes as bnb

    encoder = model.module.input_features["review"].encoder
    assert any(isinstance(m, bnb.nn.Linear8bitLt) for m in encoder.model.modules())
    assert len(model.predict(reviews(5))) == 5


@pytest.mark.parametrize("encoder, path, message", [
    ({"trainable": False, "adapter": {"type": "lora"}}, "encoder.trainable", "contradicts the adapter"),
    ({"adapter": {"type": "lora", "r": 0}}, "encoder.adapter", "must be an integer >= 1"),
    ({"pooling": "maen"}, "encoder.pooling", "did you mean 'mean'"),
    ({"trainable": True, "quantization": {"bits": 4}}, "encoder.quantization", "cannot be trained directly"),
])
def test_contradictory_or_wrong_settings_are_config_errors(bert, encoder, path, message):
    with pytest.raises(ConfigError) as error:
        load_config(config(bert, **encoder))
    assert f"input_features[0].{path}" in str(error.value) and message in str(error.value)


def test_a_tokenizer_other_than_the_models_is_refused(bert):
    raw = config(bert)
    raw["input_features"][0]["preprocessing"] = {"tokenizer": "space"}
    with pytest.raises(ConfigError, match=r"input_features\[0\]\.preprocessing\.tokenizer: the llm encoder sets it"):
        load_config(raw)


def test_cls_pooling_on_a_decoder_warns_and_uses_the_first_token(llama, cache_dir):
    with pytest.warns(UserWarning, match="decoder-only model: it has no CLS token"):
        model = Model(config(llama, epochs=1, pooling="cls", cache=False))
        model.train(reviews(40), output_dir=None)
    assert model.module.input_features["review"].encoder.pooling == "first"


def test_a_decoder_loads_without_the_head_drop_report_but_missing_weights_are_reported(llama, cache_dir, tmp_path):
    """A causal LM's lm_head is always left out of its base model, so that report is noise; a checkpoint that
    lacks weights of the base itself runs partly random, and transformers' report of it still shows."""
    import shutil

    from safetensors.torch import load_file, save_file

    class Collect(logging.Handler):
        def emit(self, record):
            reports.append(record.getMessage())

    reports, handler, logger = [], Collect(), logging.getLogger("transformers.modeling_utils")
    logger.addHandler(handler)
    try:
        Model(config(llama, epochs=1, cache=False)).train(reviews(20), output_dir=None)
        assert not [r for r in reports if "LOAD REPORT" in r]
        damaged = tmp_path / "damaged"
        shutil.copytree(llama, damaged)
        weights = load_file(damaged / "model.safetensors")
        save_file({k: v for k, v in weights.items() if k != "model.norm.weight"}, damaged / "model.safetensors",
                  metadata={"format": "pt"})
        Model(config(damaged, epochs=1, cache=False)).train(reviews(20), output_dir=None)
    finally:
        logger.removeHandler(handler)
    [report] = [r for r in reports if "LOAD REPORT" in r]
    assert "MISSING" in report and "norm.weight" in report
