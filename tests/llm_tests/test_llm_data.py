"""The prompt and data side of model_type: llm on a tiny Llama: templates, the task, fixed and retrieved
few-shot examples, chat templates, label masking, packing without cross-attention, batch-max padding,
the truncation rule, bad responses and base models, and the CLI round trip."""
import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from framework import Model
from framework.config import load_config
from framework.errors import ConfigError, DataError, FrameworkError
from framework.llm import data as D
from framework.llm import prompts as P
from framework.llm.loading import ModelLoadError, load_tokenizer
from tiny_llm import build_tiny_llm, capitals_frame, llm_config

CHAT = ("{{ bos_token }}{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} \n{% endfor %}"
        "{% if add_generation_prompt %}assistant :{% endif %}")


def resolved(base, **overrides) -> dict:
    return load_config(llm_config(base, **overrides))


@pytest.fixture(scope="module")
def tokenizer(tiny_llm):
    return load_tokenizer(resolved(tiny_llm))


@pytest.fixture(scope="module")
def chat_llm(tmp_path_factory):
    return build_tiny_llm(tmp_path_factory.mktemp("tiny-chat"), chat_template=CHAT)


def rows(ragged) -> list[list[int]]:
    return [ragged.values[a:b].tolist() for a, b in zip(ragged.offsets[:-1], ragged.offsets[1:])]


def words(tokenizer, ids) -> str:
    return tokenizer.decode(ids)


# -- templates and the task ---------------------------------------------------------------------------
def test_a_template_fills_its_slots_from_several_columns(tiny_llm, tokenizer):
    config = resolved(tiny_llm, input_features=[{"name": "country", "type": "text"}, {"name": "q", "column": "kind"}],
                      prompt={"template": "what is the {q} of {country} ?"})
    frame = pd.DataFrame({"country": ["peru", "fiji"], "kind": ["capital", "country"], "capital": ["lima", "suva"]})
    assert D.prompt_texts(config, frame, tokenizer) == ["what is the capital of peru ?",
                                                        "what is the country of fiji ?"]


def test_the_default_template_names_each_input_and_says_the_task_once(tiny_llm, tokenizer):
    one = resolved(tiny_llm, prompt={"template": None})
    assert one["prompt"]["template"] == "{country}"
    two = resolved(tiny_llm, input_features=[{"name": "country"}, {"name": "question"}],
                   prompt={"template": None, "task": "answer the question", "examples": [
                       {"country": "peru", "question": "capital", "capital": "lima"}]})
    assert two["prompt"]["template"] == "country: {country}\nquestion: {question}"
    frame = pd.DataFrame({"country": ["fiji"], "question": ["capital"], "capital": ["suva"]})
    assert D.prompt_texts(two, frame, tokenizer) == [
        "answer the question\n\ncountry: peru\nquestion: capital" "lima\n\ncountry: fiji\nquestion: capital"]


def test_a_task_slot_puts_the_task_where_the_template_says(tiny_llm, tokenizer):
    config = resolved(tiny_llm, prompt={"template": "country : {country} {task} :", "task": "capital"})
    assert D.prompt_texts(config, capitals_frame(1).head(1), tokenizer) == ["country : france capital :"]


def test_a_slot_naming_no_input_is_a_config_error_naming_the_inputs(tiny_llm):
    with pytest.raises(ConfigError) as error:
        Model(llm_config(tiny_llm, prompt={"template": "country : {contry} capital :"}))
    assert "prompt.template" in str(error.value) and "'contry'" in str(error.value)
    assert "country" in str(error.value).split("'contry'")[1]  # the slots there are, and the closest


def test_an_input_whose_column_is_missing_is_a_data_error_naming_the_columns(tiny_llm, tokenizer):
    config = resolved(tiny_llm)
    frame = capitals_frame(1).rename(columns={"country": "nation"})
    with pytest.raises(DataError) as error:
        D.prepare_llm_training(config, tokenizer, frame)
    assert "'country'" in str(error.value) and "nation" in str(error.value) and "capital" in str(error.value)


# -- few-shot examples ---------------------------------------------------------------------------------
def test_fixed_examples_come_before_every_row(tiny_llm, tokenizer):
    config = resolved(tiny_llm, prompt={"examples": [{"country": "peru", "capital": "lima"},
                                                     {"country": "cuba", "capital": "havana"}]})
    texts = D.prompt_texts(config, capitals_frame(1).head(2), tokenizer)
    shots = "country : peru capital :lima\n\ncountry : cuba capital :havana\n\n"
    assert texts == [shots + "country : france capital :", shots + "country : spain capital :"]


def reference_nearest(pool: list[list[int]], queries: list[list[int]], k: int, exclude=None) -> list[list[int]]:
    """TF-IDF cosine by hand, one pair at a time (the order nearest() promises: most similar last)."""
    vocabulary = sorted({t for doc in pool for t in doc})
    idf = {t: np.log((1 + len(pool)) / (1 + sum(t in doc for doc in pool))) for t in vocabulary}

    def vector(doc):
        v = np.array([doc.count(t) * idf[t] for t in vocabulary])
        return v / np.linalg.norm(v) if np.linalg.norm(v) > 0 else v

    docs = [vector(doc) for doc in pool]
    result = []
    for i, query in enumerate(queries):
        scores = [float(vector(query) @ doc) for doc in docs]
        candidates = [j for j in range(len(pool)) if exclude is None or j != exclude[i]]
        best = sorted(candidates, key=lambda j: (-round(scores[j], 5), j))[:k]
        result.append(best[::-1])
    return result


def test_retrieval_matches_a_hand_computed_tf_idf_ranking(tokenizer):
    rng = np.random.default_rng(0)
    vocabulary = ["france", "spain", "italy", "japan", "peru", "chile", "kenya", "egypt", "the", "of", "is"]
    texts = [" ".join(rng.choice(vocabulary, size=rng.integers(1, 7))) for _ in range(60)]
    texts = list(dict.fromkeys(texts))
    pool = P.ShotPool(tokenizer).fit(texts, [f"r{i}" for i in range(len(texts))])
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    queries = ["france spain", "the of is", "kenya kenya egypt", "fiji"]  # fiji: no word in the pool
    query_ids = [tokenizer(q, add_special_tokens=False)["input_ids"] for q in queries]
    assert pool.nearest(queries, 3).tolist() == reference_nearest(ids, query_ids, 3)
    own = np.arange(len(texts))
    assert pool.nearest(texts, 2, exclude=own).tolist() == reference_nearest(ids, ids, 2, exclude=own)


def test_a_training_row_never_retrieves_itself_nor_a_duplicate_of_itself(tiny_llm, tokenizer):
    config = resolved(tiny_llm, prompt={"retrieve": 3, "task": "capital"})
    frame = capitals_frame(3)  # every pair three times
    texts = D.prompt_texts(config, frame, tokenizer, D.shot_pool(config, frame, tokenizer), pool_source=True)
    for text, country, capital in zip(texts, frame["country"], frame["capital"]):
        blocks = text.split("\n\n")
        assert blocks[0] == "capital" and blocks[-1] == f"country : {country} capital :" and len(blocks) == 5
        assert not any(country in block or capital in block for block in blocks[1:-1])


def test_retrieval_picks_the_most_similar_training_rows(tiny_llm, tokenizer):
    config = resolved(tiny_llm, input_features=[{"name": "q"}], prompt={"template": "{q} ?", "retrieve": 1})
    train = pd.DataFrame({"q": ["the capital of peru", "the capital of kenya", "what is a b c", "what is a b"],
                          "capital": ["lima", "nairobi", "c", "b"]})
    pool = D.shot_pool(config, train, tokenizer)
    texts = D.prompt_texts(config, pd.DataFrame({"q": ["kenya", "what is b c"]}), tokenizer, pool)
    assert texts == ["the capital of kenya ?nairobi\n\nkenya ?", "what is a b c ?c\n\nwhat is b c ?"]
    own = D.prompt_texts(config, train, tokenizer, pool, pool_source=True)
    assert own[2] == "what is a b ?b\n\nwhat is a b c ?"  # its twin, not itself


@pytest.fixture(scope="module")
def cli_run(tiny_llm, tmp_path_factory):
    """`framework train` then `framework predict` on jsonl, with retrieval, packing and a validation split."""
    from framework.cli import main

    directory = tmp_path_factory.mktemp("cli")
    config = llm_config(tiny_llm, prompt={"retrieve": 2}, trainer={"epochs": 2, "packing": True,
                                                                   "max_sequence_length": 32},
                        preprocessing={"split": {"probabilities": [0.75, 0.25, 0.0]}})
    (directory / "llm.yaml").write_text(yaml.safe_dump(config))
    capitals_frame(2).to_json(directory / "d.jsonl", orient="records", lines=True)
    new = pd.DataFrame({"country": ["peru", "japan", "fiji"]})
    new.to_json(directory / "new.jsonl", orient="records", lines=True)
    assert main(["train", "--config", str(directory / "llm.yaml"), "--dataset", str(directory / "d.jsonl"),
                 "--output-dir", str(directory / "results"), "--experiment-name", "e", "--no-progress"]) == 0
    model_dir = directory / "results" / "e_0" / "model"
    assert main(["predict", "--model", str(model_dir), "--dataset", str(directory / "new.jsonl"),
                 "--output", str(directory / "p.csv")]) == 0
    return model_dir, directory / "p.csv"


def test_the_cli_trains_and_predicts_on_jsonl(cli_run):
    model_dir, predictions = cli_run
    frame = pd.read_csv(predictions, keep_default_na=False)
    assert list(frame.columns) == ["capital_predictions"] and len(frame) == 3
    statistics = json.loads((model_dir.parent / "training_statistics.json").read_text())
    assert "validation" in statistics  # packed training evaluates an unpacked validation split


def test_prediction_retrieves_from_the_training_set_saved_with_the_model(cli_run):
    model_dir, _ = cli_run
    saved = json.loads((model_dir / "training_set_metadata.json").read_text())["llm"]["retrieval"]
    assert len(saved["prompts"]) == len(set(saved["prompts"])) <= 12  # distinct pairs only: small
    assert set(saved) == {"prompts", "responses"}
    model = Model.load(model_dir)
    pool = D.saved_pool(model.config, model.metadata, model.tokenizer)
    texts = D.prompt_texts(model.config, pd.DataFrame({"country": ["peru"]}), model.tokenizer, pool)
    shots = texts[0].split("\n\n")[:-1]
    assert len(shots) == 2 and all(shot.split(":")[-1] in saved["responses"] for shot in shots)


def test_a_loaded_model_fits_its_retrieval_pool_once_for_all_its_predictions(cli_run, monkeypatch):
    model_dir, _ = cli_run
    fits = []
    fit = P.ShotPool.fit
    monkeypatch.setattr(P.ShotPool, "fit", lambda self, *args: fits.append(1) or fit(self, *args))
    model = Model.load(model_dir)
    first = model.predict(pd.DataFrame({"country": ["peru", "japan"]}))
    assert model.predict(pd.DataFrame({"country": ["peru", "japan"]})).equals(first)
    assert len(fits) == 1
    Model.load(model_dir).predict(pd.DataFrame({"country": ["fiji"]}))
    assert len(fits) == 2  # another model object (its own metadata) fits its own


def test_zero_shot_prediction_with_retrieval_warns_and_predicts(tiny_llm, caplog):
    model = Model(llm_config(tiny_llm, prompt={"retrieve": 2, "examples": [{"country": "peru", "capital": "lima"}]},
                             generation={"max_new_tokens": 2}))
    with caplog.at_level(logging.WARNING):
        predictions = model.predict(capitals_frame(1).head(3))
    assert len(predictions) == 3
    assert "prompt.retrieve is 2 but this model has no training set" in caplog.text


# -- chat templates ---------------------------------------------------------------------------------------
def test_a_chat_template_wraps_the_prompt_with_a_generation_prompt(chat_llm):
    config = resolved(chat_llm, prompt={"task": "capital", "examples": [{"country": "peru", "capital": "lima"}]})
    tokenizer = load_tokenizer(config)
    frame = capitals_frame(1).head(1)
    expected = ("<s>user : capital\n\ncountry : peru capital : \nassistant : lima \n"
                "user : country : france capital : \nassistant :")
    assert D.prompt_texts(config, frame, tokenizer) == [expected]
    encoded = D.encode(config, frame, tokenizer, with_responses=True)
    assert encoded.prompt_ids[0] == tokenizer(expected, add_special_tokens=False)["input_ids"]
    assert encoded.prompt_ids[0].count(tokenizer.bos_token_id) == 1  # the template's BOS, not a second one


def test_chat_template_false_keeps_the_plain_prompt_and_true_needs_one(chat_llm, tiny_llm, tokenizer):
    config = resolved(chat_llm, prompt={"chat_template": False})
    assert D.prompt_texts(config, capitals_frame(1).head(1), load_tokenizer(config)) == ["country : france capital :"]
    with pytest.raises(ConfigError, match="prompt.chat_template: is true but the base model's tokenizer has no"):
        D.prompt_texts(resolved(tiny_llm, prompt={"chat_template": True}), capitals_frame(1), tokenizer)


# -- labels ------------------------------------------------------------------------------------------------
def test_prompt_tokens_are_masked_and_response_tokens_and_eos_are_labels(tiny_llm, tokenizer):
    from framework.llm.loading import load_base_model
    from framework.models.llm import LLM

    config = resolved(tiny_llm, prompt={"task": "capital"})
    frame = pd.DataFrame({"country": ["peru", "fiji", "cuba"], "capital": ["lima", "suva havana", "havana"]})
    splits, _ = D.prepare_llm_training(config, tokenizer, frame)
    encoded = D.encode(config, frame, tokenizer, with_responses=True)
    arrays = splits["train"].arrays
    ids, labels = rows(arrays.columns["input_ids"]), rows(arrays.columns["capital"])
    for row_ids, row_labels, prompt, capital in zip(ids, labels, encoded.prompt_ids, frame["capital"]):
        response = tokenizer(capital, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        assert row_ids == prompt + response
        assert row_labels == [-100] * len(prompt) + response
    module = LLM(config, load_base_model(config, torch.device("cpu")), {"type": "none"})
    batch = next(arrays.batches(3, names=module.input_names + ["capital"]))
    with torch.no_grad():
        outputs = module(batch)
    # the loss by hand: every response token and each EOS, predicted from the position before it
    log_probs = torch.log_softmax(outputs.logits.double(), -1)
    terms = [-log_probs[r, t - 1, label] for r, row in enumerate(labels)
             for t, label in enumerate(row) if label != -100]
    assert len(terms) == 1 + 2 + 1 + 3  # lima, suva havana, havana, and three EOS
    assert outputs.loss.item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-5)


# -- packing and padding ------------------------------------------------------------------------------------
def test_packed_examples_attend_only_to_themselves(tiny_llm, tokenizer):
    from framework.llm.loading import load_base_model
    from framework.models.llm import LLM

    config = resolved(tiny_llm, trainer={"packing": True, "max_sequence_length": 24})
    frame = pd.DataFrame({"country": ["peru", "france spain italy", "fiji", "japan india nepal cuba", "kenya"],
                          "capital": ["lima", "paris madrid", "suva", "tokyo", "nairobi"]})
    encoded = D.encode(config, frame, tokenizer, with_responses=True)
    packed = D.packed_arrays(encoded, "capital", 24, tokenizer.pad_token_id)
    sizes = sorted(len(p) + len(r) for p, r in zip(encoded.prompt_ids, encoded.response_ids))
    assert len(packed) < len(frame) and sum(packed.columns["input_ids"].lengths) == sum(sizes)
    model = load_base_model(config, torch.device("cpu")).eval()  # as training loads it: no KV cache
    module = LLM(config, model, {"type": "none"})
    assert module.input_names == ["input_ids", "position_ids"]
    batch = next(packed.batches(len(packed), names=module.input_names + ["capital"]))
    with torch.no_grad():
        logits = module(batch, labels=False).logits
        unmasked = model(input_ids=batch["input_ids"]).logits  # the same rows with no example boundaries
    alone = {tuple(p + r) for p, r in zip(encoded.prompt_ids, encoded.response_ids)}
    seen, leaks = 0, 0
    for row in range(len(packed)):
        positions = batch["position_ids"][row].tolist()
        length = int(packed.columns["input_ids"].lengths[row])
        starts = [i for i in range(length) if positions[i] == 0] + [length]
        for start, stop in zip(starts, starts[1:]):
            example = batch["input_ids"][row, start:stop]
            assert tuple(example.tolist()) in alone and positions[start:stop] == list(range(stop - start))
            assert batch["capital"][row, start:stop].tolist()[-1] == tokenizer.eos_token_id
            with torch.no_grad():
                reference = model(input_ids=example[None]).logits[0]
            torch.testing.assert_close(logits[row, start:stop], reference, rtol=1e-4, atol=1e-4)
            leaks += start > 0 and not torch.allclose(unmasked[row, start:stop], reference, atol=1e-4)
            seen += 1
    assert seen == len(frame)
    assert leaks > 0  # without the position restarts later examples would see earlier ones


def test_unpacked_batches_are_padded_to_their_own_longest_example(tiny_llm, tokenizer):
    config = resolved(tiny_llm)
    frame = pd.DataFrame({"country": ["peru", "france spain italy japan india", "fiji", "kenya egypt"],
                          "capital": ["lima", "paris", "suva", "nairobi"]})
    splits, _ = D.prepare_llm_training(config, tokenizer, frame)
    arrays = splits["train"].arrays
    lengths = arrays.columns["input_ids"].lengths.tolist()
    batches = list(arrays.batches(2, names=["input_ids", "attention_mask", "capital"]))
    assert [b["input_ids"].shape[1] for b in batches] == [max(lengths[:2]), max(lengths[2:])]
    second = batches[1]
    assert second["attention_mask"].sum(1).tolist() == lengths[2:]
    assert (second["capital"][second["attention_mask"] == 0] == -100).all()
    assert (second["input_ids"][second["attention_mask"] == 0] == tokenizer.pad_token_id).all()


# -- truncation -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prompt, response, limit, kept_prompt, kept_response", [
    (5, 3, 8, 5, 3),      # fits: untouched
    (10, 3, 8, 5, 3),     # a long prompt loses its start; the response is whole
    (3, 20, 8, 3, 5),     # a response longer than the limit alone keeps its start after the whole short prompt
    (10, 20, 8, 4, 4),    # both long: half each
    (10, 20, 7, 3, 4),    # an odd limit gives the response the larger half
    (1, 20, 2, 1, 1),     # the smallest limit still keeps a response token
    (0, 5, 4, 0, 4),
])
def test_the_truncation_rule(prompt, response, limit, kept_prompt, kept_response):
    p, r = list(range(prompt)), list(range(100, 100 + response))
    new_prompt, new_response = D.truncate(p, r, limit)
    assert (new_prompt, new_response) == (p[prompt - kept_prompt:], r[:kept_response])


def test_truncated_examples_are_counted_once_and_keep_their_response(tiny_llm, tokenizer, caplog):
    config = resolved(tiny_llm, trainer={"max_sequence_length": 8},
                      preprocessing={"split": {"probabilities": [0.5, 0.5, 0.0]}})
    long_country = "france spain italy japan india"
    long_capital = "paris madrid rome tokyo lima santiago nairobi cairo delhi"
    frame = pd.DataFrame({"country": ["peru", long_country] * 4 + ["fiji", "cuba"],
                          "capital": ["lima", "paris"] * 4 + [long_capital, "havana"]})
    with caplog.at_level(logging.WARNING):
        splits, _ = D.prepare_llm_training(config, tokenizer, frame)
    notes = [r.getMessage() for r in caplog.records if "longer than max_sequence_length" in r.getMessage()]
    assert notes == ["5 of 10 examples were longer than max_sequence_length 8 tokens (the longest had 16): 5 lost "
                     "the start of their prompt, 1 the end of their response (and its EOS)"]
    eos, capital_ids = tokenizer.eos_token_id, tokenizer(long_capital, add_special_tokens=False)["input_ids"]
    examples = [(ids, labels) for role in ("train", "validation") for ids, labels in
                zip(rows(splits[role].arrays.columns["input_ids"]), rows(splits[role].arrays.columns["capital"]))]
    assert len(examples) == 10 and all(len(ids) <= 8 for ids, _ in examples)
    assert all(any(label != -100 for label in labels) for _, labels in examples)  # none leaves the loss
    cut_prompt = [ids for ids, _ in examples if tokenizer.decode(ids).startswith("spain italy japan india capital :")]
    assert len(cut_prompt) == 4 and all(ids[-2:] == [tokenizer.convert_tokens_to_ids("paris"), eos]
                                        for ids in cut_prompt)
    (ids, labels), = [e for e in examples if tokenizer.convert_tokens_to_ids("madrid") in e[0]]
    prompt = tokenizer("country : fiji capital :")["input_ids"]
    assert ids == prompt[-4:] + capital_ids[:4] and labels == [-100] * 4 + capital_ids[:4]  # no EOS: cut short


# -- bad input -------------------------------------------------------------------------------------------------
def test_rows_with_an_empty_response_are_named_and_left_out(tiny_llm, tokenizer, caplog):
    frame = capitals_frame(1)
    frame.loc[3, "capital"] = "  "
    frame.loc[7, "capital"] = None
    with caplog.at_level(logging.WARNING):
        splits, _ = D.prepare_llm_training(resolved(tiny_llm), tokenizer, frame)
    assert len(splits["train"]) == 10
    assert "the response column 'capital' of output feature 'capital' is empty in 2 rows (at index 3, 7;" in caplog.text


def test_a_response_column_empty_in_every_row_is_a_data_error(tiny_llm, tokenizer):
    frame = capitals_frame(1).assign(capital="")
    with pytest.raises(DataError, match="'capital' of output feature 'capital' is empty in every row of the dataset"):
        D.prepare_llm_training(resolved(tiny_llm), tokenizer, frame)


def test_a_base_model_that_is_missing_or_no_causal_lm_says_which(tmp_path):
    from tiny_llm import build_tiny_bert

    with pytest.raises(ModelLoadError, match="the directory '.*no-such-model' does not exist"):
        load_tokenizer(resolved(tmp_path / "no-such-model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="holds no config.json"):
        load_tokenizer(resolved(tmp_path / "empty"))
    bert = build_tiny_bert(tmp_path / "bert")
    with pytest.raises(ModelLoadError, match=r"is a bert model \(BertModel\), not a causal language model"):
        load_tokenizer(resolved(bert))
    assert issubclass(ModelLoadError, FrameworkError)
