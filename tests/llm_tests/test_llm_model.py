"""model_type: llm end to end on a tiny Llama: a LoRA fine-tune memorizes a small task, predicts and
evaluates, saves in peft's format and loads back to identical generations; zero-shot prediction needs
no training; a full fine-tune and a merged model are plain transformers models."""
import json

import pandas as pd
import pytest
import torch

from framework import Model
from tiny_llm import capitals_frame, llm_config


@pytest.fixture(scope="module")
def trained(tiny_llm, tmp_path_factory):
    model = Model(llm_config(tiny_llm))
    result = model.train(capitals_frame(), output_dir=tmp_path_factory.mktemp("runs"))
    return model, result


def test_lora_memorizes_the_task_and_predicts_text(trained):
    model, result = trained
    losses = result.training_statistics["train"]["capital"]["loss"]
    assert losses[-1] < 0.1 < losses[0]
    predictions = model.predict(capitals_frame(1))
    assert list(predictions.columns) == ["capital_predictions"]
    assert predictions["capital_predictions"].tolist() == capitals_frame(1)["capital"].tolist()


def test_evaluate_reports_teacher_forced_and_generated_metrics(trained):
    model, _ = trained
    metrics = model.evaluate(capitals_frame(1))["capital"]
    assert set(metrics) == {"loss", "perplexity", "token_accuracy", "sequence_accuracy", "exact_match", "bleu", "rouge"}
    assert metrics["exact_match"] == metrics["sequence_accuracy"] == metrics["token_accuracy"] == 1.0
    assert metrics["perplexity"] == pytest.approx(float(torch.exp(torch.tensor(metrics["loss"]))), rel=1e-5)


def test_a_run_writes_statistics_and_an_adapter_peft_loads(trained, tiny_llm):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    _, result = trained
    model_dir = result.output_dir / "model"
    assert (result.output_dir / "training_statistics.json").is_file()
    assert json.loads((model_dir / "adapter" / "adapter_config.json").read_text())["peft_type"] == "LORA"
    assert (model_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert (model_dir / "tokenizer" / "tokenizer.json").is_file()
    base = AutoModelForCausalLM.from_pretrained(tiny_llm)
    assert isinstance(PeftModel.from_pretrained(base, model_dir / "adapter"), PeftModel)


def test_save_and_load_give_identical_generations(trained, tmp_path):
    model, _ = trained
    model.save(tmp_path / "saved")
    loaded = Model.load(tmp_path / "saved")
    frame = capitals_frame(1)
    pd.testing.assert_frame_equal(loaded.predict(frame), model.predict(frame))


def test_merged_model_is_a_plain_transformers_model_with_the_same_output(trained, tmp_path):
    from transformers import AutoModelForCausalLM

    model, _ = trained
    model.save(tmp_path / "saved", merged=True)
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "saved" / "merged")
    assert not any("lora" in name for name, _ in merged.named_parameters())
    ids = model.tokenizer(["country : peru capital :"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = model.module.model(input_ids=ids).logits
        torch.testing.assert_close(merged(input_ids=ids).logits, expected, rtol=1e-4, atol=1e-4)


def test_zero_shot_prediction_needs_no_training(tiny_llm):
    model = Model(llm_config(tiny_llm, generation={"max_new_tokens": 3}))
    predictions = model.predict(capitals_frame(1).head(5))
    assert len(predictions) == 5 and all(isinstance(text, str) for text in predictions["capital_predictions"])


def test_a_full_fine_tune_saves_a_whole_model(tiny_llm, tmp_path):
    config = llm_config(tiny_llm, adapter={"type": "none"}, trainer={"epochs": 2, "learning_rate": 1e-3})
    config["adapter"] = "none"
    model = Model(config)
    model.train(capitals_frame(1), output_dir=None)
    assert all(p.requires_grad for p in model.module.model.parameters())
    model.save(tmp_path / "full")
    assert (tmp_path / "full" / "merged" / "config.json").is_file() and not (tmp_path / "full" / "adapter").exists()
    loaded = Model.load(tmp_path / "full")
    pd.testing.assert_frame_equal(loaded.predict(capitals_frame(1)), model.predict(capitals_frame(1)))


def test_training_continues_from_a_loaded_adapter(trained, tmp_path):
    model, _ = trained
    model.save(tmp_path / "saved")
    loaded = Model.load(tmp_path / "saved")
    before = {k: v.clone() for k, v in loaded.module.saved_state().items()}
    loaded.config["trainer"]["epochs"] = 1
    loaded.train(capitals_frame(1), output_dir=None)
    after = loaded.module.saved_state()
    assert before.keys() == after.keys() and any(not torch.equal(before[k], after[k]) for k in before)
    assert loaded.evaluate(capitals_frame(1))["capital"]["exact_match"] >= 0.9
