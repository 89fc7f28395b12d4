"""The LLM path under DeepSpeed: a LoRA adapter trained under ZeRO 2 (and 3) learns like local training and
is saved in peft's own format, loadable by peft and by Model.load."""
import pytest
import torch

from framework import Model
from tiny_llm import build_tiny_llm, capitals_frame, llm_config

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    return build_tiny_llm(tmp_path_factory.mktemp("tiny-llama"))


def config(base, **trainer):
    return llm_config(base, trainer={"epochs": 4, "device": "cpu", **trainer})


@pytest.fixture(scope="module")
def local_run(tiny_llm, tmp_path_factory):
    model = Model(config(tiny_llm))
    return model, model.train(capitals_frame(), output_dir=tmp_path_factory.mktemp("local"))


@pytest.mark.parametrize("stage", [2, 3])
def test_lora_under_zero_trains_and_saves_an_adapter(stage, tiny_llm, local_run, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    local, local_result = local_run
    model = Model(config(tiny_llm, strategy="deepspeed", deepspeed={"zero_stage": stage}))
    result = model.train(capitals_frame(), output_dir=tmp_path)
    losses = result.training_statistics["train"]["combined"]["loss"]
    assert losses[-1] < losses[0]
    # ZeRO-3 gathers and reduces in other orders than one process's autograd: rounding grows over the steps
    torch.testing.assert_close(losses, local_result.training_statistics["train"]["combined"]["loss"],
                               rtol=2e-3, atol=1e-5)

    saved = result.output_dir / "model"
    assert (saved / "adapter" / "adapter_model.safetensors").is_file() and not (saved / "merged").exists()
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llm), str(saved / "adapter"))
    trained = {name: p for name, p in model.module.model.named_parameters() if "lora_" in name}
    for name, value in peft_model.named_parameters():
        if "lora_" in name:
            torch.testing.assert_close(value, trained[name].detach(), rtol=0, atol=0)
    rows = capitals_frame(1).head(4)
    assert Model.load(saved).predict(rows).equals(model.predict(rows))
