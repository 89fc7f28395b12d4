"""Every adapter type on the tiny Llama: it trains (the loss falls on the memorizable capitals task),
saves as a peft directory, reloads to identical generations, and merges into a plain transformers model
with the same logits (the weight-delta types) or refuses to (the prompt-learning types). Then what is
particular to LoRA+ (learning-rate ratio at every step), AdaLoRA (rank reallocation each step over the
trainer's real step count), DoRA / rsLoRA (their peft flags), IA3 (default modules on architectures peft
knows and does not know), and the config errors, each with its key path."""
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from framework import Model
from framework.config import load_config
from framework.errors import ConfigError, FrameworkError
from tiny_llm import capitals_frame, llm_config

# type -> (settings beside the defaults, learning rate, final / first epoch training loss must be below)
TYPES = {
    "lora": ({}, 0.01, 0.5),
    "dora": ({}, 0.01, 0.5),
    "rslora": ({}, 0.01, 0.5),
    "lora+": ({}, 0.002, 0.5),  # the B matrices at 16 x 0.002
    "adalora": ({}, 0.02, 0.5),
    "loha": ({}, 0.01, 0.5),
    "lokr": ({}, 0.01, 0.6),
    "ia3": ({}, 1.0, 0.6),
    "prompt_tuning": ({}, 1.0, 0.7),
    "prefix_tuning": ({}, 0.3, 0.6),
    "p_tuning": ({"encoder_hidden_size": 32}, 0.01, 0.7),
    "none": ({}, 0.001, 0.6),
}
PEFT_TYPES = {"lora": "LORA", "dora": "LORA", "rslora": "LORA", "lora+": "LORA", "adalora": "ADALORA", "loha": "LOHA",
              "lokr": "LOKR", "ia3": "IA3", "prompt_tuning": "PROMPT_TUNING", "prefix_tuning": "PREFIX_TUNING",
              "p_tuning": "P_TUNING"}
PROMPT_LEARNING = ["prompt_tuning", "prefix_tuning", "p_tuning"]
WEIGHT_DELTA = [name for name in PEFT_TYPES if name not in PROMPT_LEARNING]
ADAPTER_PARAMETERS = ("lora_", "hada_", "lokr_", "ia3_", "prompt_encoder", "prefix")
EPOCHS = 6


def adapter_config(tiny_llm, adapter: dict, **trainer) -> dict:
    config = llm_config(tiny_llm, trainer={"epochs": EPOCHS, **trainer})
    config["adapter"] = adapter
    return config


def adapter_errors(tiny_llm, adapter) -> dict[str, str]:
    config = llm_config(tiny_llm)
    config["adapter"] = adapter
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    return {problem.path: problem.message for problem in caught.value.problems}


def logits(module, ids: torch.Tensor) -> torch.Tensor:
    module.eval()
    with torch.no_grad():
        return module(input_ids=ids).logits


@pytest.fixture(scope="module", params=list(TYPES))
def trained(request, tiny_llm):
    name = request.param
    settings, rate, _ = TYPES[name]
    model = Model(adapter_config(tiny_llm, {"type": name, **settings}, learning_rate=rate))
    result = model.train(capitals_frame(2), output_dir=None)
    return name, model, result.training_statistics["train"]["capital"]["loss"]


def test_every_adapter_type_learns_the_task(trained):
    name, model, losses = trained
    assert len(losses) == EPOCHS
    assert losses[-1] < TYPES[name][2] * losses[0], losses
    trained_names = list(model.module.saved_state())
    if name == "none":
        assert all(p.requires_grad for p in model.module.model.parameters())
    else:  # the adapter's tensors only
        assert trained_names and all(any(k in n for k in ADAPTER_PARAMETERS) for n in trained_names), trained_names


def test_a_saved_adapter_reloads_to_identical_generations(trained, tmp_path):
    _, model, _ = trained
    model.save(tmp_path / "saved")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = Model.load(tmp_path / "saved")
    assert not [w for w in caught if "rank_pattern" in str(w.message)]  # AdaLoRA's learned ranks are applied
    frame = capitals_frame(1)
    pd.testing.assert_frame_equal(loaded.predict(frame), model.predict(frame))
    ids = model.tokenizer(["country : peru capital :"], return_tensors="pt")["input_ids"]
    torch.testing.assert_close(logits(loaded.module.model, ids), logits(model.module.model, ids))


def test_a_saved_adapter_is_a_peft_directory_of_the_base_model(trained, tiny_llm, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    name, model, _ = trained
    if name == "none":
        pytest.skip("a full fine-tune saves a whole model (test_llm_model)")
    model.save(tmp_path / "saved")
    adapter = tmp_path / "saved" / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_llm)
    assert config["peft_type"] == PEFT_TYPES[name] and config["task_type"] == "CAUSAL_LM"
    assert (adapter / "adapter_model.safetensors").is_file()
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llm), adapter)
    ids = model.tokenizer(["country : chile capital :"], return_tensors="pt")["input_ids"]
    torch.testing.assert_close(logits(peft_model, ids), logits(model.module.model, ids))


def test_weight_delta_adapters_merge_and_prompt_learning_ones_refuse(trained, tmp_path):
    from transformers import AutoModelForCausalLM

    name, model, _ = trained
    if name == "none":
        pytest.skip("a full fine-tune is saved merged already")
    target = tmp_path / "saved"
    if name in PROMPT_LEARNING:
        with pytest.raises(FrameworkError, match=f"{name} adapter adds virtual tokens.*cannot be merged"):
            model.save(target, merged=True)
        assert not target.exists()
        return
    model.save(target, merged=True)
    merged = AutoModelForCausalLM.from_pretrained(target / "merged")
    assert not any(k in n for n, _ in merged.named_parameters() for k in ADAPTER_PARAMETERS)
    ids = model.tokenizer(["country : peru capital :", "country : fiji capital :"], return_tensors="pt")["input_ids"]
    torch.testing.assert_close(logits(merged, ids), logits(model.module.model, ids), rtol=1e-4, atol=1e-4)


def test_a_loaded_adapter_trains_on_from_what_was_saved(trained, tmp_path):
    """peft refuses to load prompt-learning adapters as trainable; they still train on after Model.load."""
    name, model, _ = trained
    model.save(tmp_path / "saved")
    loaded = Model.load(tmp_path / "saved")
    frame = capitals_frame(1)
    before_loss = loaded.evaluate(frame)["capital"]["loss"]
    before = {k: v.clone() for k, v in loaded.module.saved_state().items()}
    assert before
    loaded.config["trainer"].update(epochs=2, learning_rate=TYPES[name][1] / 4)  # a fresh optimizer: gently
    loaded.train(frame, output_dir=None)
    after = loaded.module.saved_state()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert loaded.evaluate(frame)["capital"]["loss"] < before_loss * 1.05


def test_the_peft_config_carries_the_variant_flags(trained):
    name, model, _ = trained
    if name not in ("lora", "dora", "rslora", "lora+"):
        pytest.skip("LoRA variants only")
    config = model.module.model.peft_config["default"]
    assert (config.use_dora, config.use_rslora) == (name == "dora", name == "rslora")
    # all-linear: peft lists every linear layer of attention and MLP, not the output layer
    assert {name.rsplit(".", 1)[-1] for name in config.target_modules} == {"q_proj", "k_proj", "v_proj", "o_proj",
                                                                           "gate_proj", "up_proj", "down_proj"}


# -- LoRA+ -----------------------------------------------------------------------------------------------
def test_loraplus_keeps_its_learning_rate_ratio_at_every_step_of_a_schedule(tiny_llm, monkeypatch):
    from framework.training import trainer

    seen = []

    def build_and_watch(*args, **kwargs):
        optimizer = build(*args, **kwargs)
        optimizer.register_step_pre_hook(lambda opt, *_: seen.append([(g["lr"], g["params"]) for g in opt.param_groups]))
        seen.append(optimizer)
        return optimizer

    build = trainer.build_optimizer
    monkeypatch.setattr(trainer, "build_optimizer", build_and_watch)
    schedule = {"warmup_steps": 4, "decay": "cosine"}
    model = Model(adapter_config(tiny_llm, {"type": "lora+", "loraplus_lr_ratio": 8},
                                 learning_rate=0.002, weight_decay=0.01, epochs=3, learning_rate_scheduler=schedule))
    model.train(capitals_frame(2), output_dir=None)

    optimizer, steps = seen[0], seen[1:]
    names = {id(p): n for n, p in model.module.named_parameters()}
    kinds = [{("B" if "lora_B" in names[id(p)] else "A") for p in group["params"]} for group in optimizer.param_groups]
    assert sorted(map(sorted, kinds)) == [["A"], ["B"]]  # empty groups (no adapted embeddings) dropped
    assert all(group["weight_decay"] == 0.01 for group in optimizer.param_groups)  # the trainer's, not peft's 0
    assert len(steps) == 9
    rates_a = [next(lr for (lr, params), kind in zip(step, kinds) if kind == {"A"}) for step in steps]
    rates_b = [next(lr for (lr, params), kind in zip(step, kinds) if kind == {"B"}) for step in steps]
    assert rates_a[:4] == pytest.approx([0.0005, 0.001, 0.0015, 0.002])  # warmup, then cosine decay
    assert rates_a[4] > rates_a[-1] > 0
    assert [b / a for a, b in zip(rates_a, rates_b)] == pytest.approx([8.0] * 9)


# -- AdaLoRA ---------------------------------------------------------------------------------------------
def test_adalora_reallocates_ranks_every_step_of_the_real_schedule(tiny_llm, monkeypatch):
    from peft.tuners.adalora import AdaLoraModel

    steps = []
    update = AdaLoraModel.update_and_allocate
    monkeypatch.setattr(AdaLoraModel, "update_and_allocate",
                        lambda self, step: (steps.append(step), update(self, step))[1])
    # 24 rows in batches of 4, 2 batches per step: 3 steps an epoch
    model = Model(adapter_config(tiny_llm, {"type": "adalora", "init_r": 6, "target_r": 3}, learning_rate=0.02,
                                 epochs=4, batch_size=4, gradient_accumulation_steps=2))
    model.train(capitals_frame(2), output_dir=None)
    config = model.module.model.peft_config["default"]
    assert steps == list(range(12)) and config.total_step == 12
    # the budget fell from init_r to target_r per layer on average, unevenly: ranks moved between layers
    kept = {name: sum(mask) for name, mask in config.rank_pattern.items()}
    assert len(kept) == 14 and sum(kept.values()) == 3 * 14
    assert len(set(kept.values())) > 1
    for name, module in model.module.model.named_modules():
        if hasattr(module, "lora_E") and "default" in module.lora_E:
            key = next(k for k in kept if name.endswith(k.removesuffix(".default").removesuffix(".lora_E")))
            assert int((module.lora_E["default"] != 0).sum()) <= kept[key]


def test_adalora_total_step_matches_the_trainer_when_a_single_row_is_folded(tiny_llm, monkeypatch):
    from peft.tuners.adalora import AdaLoraModel

    steps = []
    update = AdaLoraModel.update_and_allocate
    monkeypatch.setattr(AdaLoraModel, "update_and_allocate",
                        lambda self, step: (steps.append(step), update(self, step))[1])
    model = Model(adapter_config(tiny_llm, {"type": "adalora"}, epochs=2))
    model.train(capitals_frame(2).head(17), output_dir=None)  # batches of 8, 8 + 1
    assert model.module.model.peft_config["default"].total_step == len(steps) == 4


def test_adalora_total_step_counts_each_process_share_of_the_rows(monkeypatch):
    """Under 2 processes each steps over half the rows: the schedule is as long as one process's run."""
    from framework.data.dataset import ArrayDataset
    from framework.llm.runner import total_steps
    from framework.training import distributed

    config = {"trainer": {"batch_size": 8, "gradient_accumulation_steps": 1, "epochs": 3, "train_steps": None}}
    train = ArrayDataset({"input_ids": np.zeros(40)})
    assert total_steps(config, train) == 3 * 5
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    assert total_steps(config, train) == 3 * 3  # 20 rows each: batches of 8, 8, 4


def test_adalora_schedule_longer_than_the_run_is_a_config_error(tiny_llm):
    model = Model(adapter_config(tiny_llm, {"type": "adalora", "tinit": 10, "tfinal": 5}, epochs=2))
    with pytest.raises(ConfigError, match=r"adapter\.tinit: .*tinit \(10\) \+ tfinal \(5\).*run of 6 optimizer steps"):
        model.train(capitals_frame(2), output_dir=None)


# -- IA3 and target modules ------------------------------------------------------------------------------
def test_ia3_uses_peft_defaults_for_llama(trained):
    name, model, _ = trained
    if name != "ia3":
        pytest.skip("IA3 only")
    config = model.module.model.peft_config["default"]
    assert config.target_modules == {"k_proj", "v_proj", "down_proj"} and config.feedforward_modules == {"down_proj"}


def base(tiny_llm):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_llm)


def test_ia3_on_an_architecture_peft_has_no_defaults_for_targets_every_linear_layer(tiny_llm, monkeypatch):
    from peft.utils import (TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING,
                            TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING)

    from framework.llm.adapters import apply_adapter

    monkeypatch.delitem(TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING, "llama")
    monkeypatch.delitem(TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING, "llama")
    model = apply_adapter(base(tiny_llm), load_config(adapter_config(tiny_llm, {"type": "ia3"}))["adapter"], None)
    config = model.peft_config["default"]
    assert config.target_modules == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert config.feedforward_modules == {"down_proj"}  # reads the 64-wide intermediate, writes the 32-wide hidden
    shapes = {n.split(".")[-3]: tuple(p.shape) for n, p in model.named_parameters() if p.requires_grad}
    assert shapes == {"q_proj": (32, 1), "k_proj": (16, 1), "v_proj": (16, 1), "o_proj": (32, 1),
                      "gate_proj": (64, 1), "up_proj": (64, 1), "down_proj": (1, 64)}
    ids = torch.tensor([[2, 5, 6]])
    model(input_ids=ids, labels=ids).loss.backward()


def test_ia3_feedforward_modules_default_to_the_targeted_down_projection(tiny_llm, monkeypatch):
    from peft.utils import TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING

    from framework.llm.adapters import apply_adapter

    monkeypatch.delitem(TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING, "llama")
    adapter = load_config(adapter_config(tiny_llm, {"type": "ia3", "target_modules": ["v_proj", "down_proj"]}))
    config = apply_adapter(base(tiny_llm), adapter["adapter"], None).peft_config["default"]
    assert config.target_modules == {"v_proj", "down_proj"} and config.feedforward_modules == {"down_proj"}


@pytest.mark.parametrize("name", ["lora", "adalora", "loha", "lokr", "ia3"])
def test_target_modules_naming_no_module_is_an_error_listing_the_linear_layers(tiny_llm, name):
    from framework.llm.adapters import apply_adapter

    adapter = load_config(adapter_config(tiny_llm, {"type": name, "target_modules": ["q_proj", "qq_proj"]}))["adapter"]
    with pytest.raises(ConfigError) as caught:
        apply_adapter(base(tiny_llm), adapter, 10)
    (problem,) = caught.value.problems
    assert problem.path == "adapter.target_modules"
    assert "named 'qq_proj'" in problem.message and "'q_proj'" not in problem.message
    assert "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj" in problem.message


def test_a_target_pattern_matching_nothing_is_an_error_with_its_key(tiny_llm):
    from framework.llm.adapters import apply_adapter

    adapter = load_config(adapter_config(tiny_llm, {"type": "lora", "target_modules": r".*\.attn\.q"}))["adapter"]
    with pytest.raises(ConfigError, match=r"adapter\.target_modules: peft cannot apply the lora adapter .*"
                                          r"not found.*linear layers are named q_proj"):
        apply_adapter(base(tiny_llm), adapter, 10)


# -- config errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("adapter, path, message", [
    ({"type": "lora", "lora_alhpa": 32}, "adapter.lora_alhpa", "unknown key for adapter 'lora'; did you mean 'lora_alpha'"),
    ({"type": "loha", "lora_alpha": 32}, "adapter.lora_alpha", "did you mean 'alpha'"),
    ({"type": "lroa"}, "adapter.type", "unknown adapter 'lroa'; did you mean 'lora'"),
    ({"type": "prefix"}, "adapter.type", "did you mean 'prefix_tuning'"),
    ({"type": "lora", "r": 0}, "adapter.r", "must be an integer >= 1 (got 0)"),
    ({"type": "adalora", "init_r": 0}, "adapter.init_r", "must be an integer >= 1"),
    ({"type": "prompt_tuning", "num_virtual_tokens": 0}, "adapter.num_virtual_tokens", "must be an integer >= 1"),
    ({"type": "lora", "lora_dropout": 2}, "adapter.lora_dropout", "between 0 and 1 (got 2)"),
    ({"type": "lora", "lora_alpha": "high"}, "adapter.lora_alpha", "must be an integer (got 'high')"),
    ({"type": "lora", "use_rslora": "yes"}, "adapter.use_rslora", "must be true or false"),
    ({"type": "lora", "bias": "some"}, "adapter.bias", "must be one of 'none', 'all', 'lora_only'"),
    ({"type": "lora", "target_modules": 3}, "adapter.target_modules", "a list of strings or a string or null"),
    ({"type": "lora", "layers_pattern": "layers"}, "adapter.layers_pattern",
     "peft refuses the lora settings: `layers_pattern` cannot be used when `target_modules` is a str"),
    ({"type": "ia3", "target_modules": ["k_proj"], "feedforward_modules": ["down_proj"]}, "adapter.feedforward_modules",
     "should be a subset of `target_modules`"),
    ({"type": "prompt_tuning", "prompt_tuning_init": "WORDS"}, "adapter.prompt_tuning_init",
     "must be one of 'TEXT', 'SAMPLE_VOCAB', 'RANDOM' (got 'WORDS')"),
    ({"type": "lora", "total_step": 5}, "adapter.total_step", "(the framework sets it)"),
    ({"type": "lora", "task_type": "SEQ_CLS"}, "adapter.task_type", "(the framework sets it)"),
    ({"type": "dora", "use_dora": False}, "adapter.use_dora", "adapter 'dora' sets use_dora: True"),
    ({"type": "lora+", "loraplus_lr_ratio": 0}, "adapter.loraplus_lr_ratio", "must be a number > 0"),
    ({"type": "lora", "loraplus_lr_ratio": 4}, "adapter.loraplus_lr_ratio", "unknown key for adapter 'lora'"),
    ({"type": "adalora", "r": 16}, "adapter.r", "AdaLoRA does not use r: set init_r"),
    ({"type": "adalora", "init_r": 4, "target_r": 8}, "adapter.target_r", "must not exceed init_r (4)"),
    ({"type": "none", "r": 8}, "adapter.r", "adapter 'none' (full fine-tuning) takes no settings"),
    (["lora"], "adapter", "expected a mapping"),
])
def test_adapter_config_errors_name_their_key(tiny_llm, adapter, path, message):
    errors = adapter_errors(tiny_llm, adapter)
    assert path in errors, errors
    assert message in errors[path]


def test_every_problem_is_reported_at_once(tiny_llm):
    errors = adapter_errors(tiny_llm, {"type": "lora", "r": 0, "lora_dropout": -1, "rank": 4})
    assert set(errors) == {"adapter.r", "adapter.lora_dropout", "adapter.rank"}


@pytest.mark.parametrize("adapter, expected", [
    (None, {"type": "none"}),
    ("none", {"type": "none"}),
    ("lora", {"type": "lora", "r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": "all-linear"}),
    ({"r": 4}, {"type": "lora", "r": 4, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": "all-linear"}),
    ({"type": "ia3"}, {"type": "ia3"}),
    ({"type": "p_tuning"}, {"type": "p_tuning", "num_virtual_tokens": 8, "encoder_hidden_size": 128}),
    ({"type": "adalora", "tinit": 50, "tfinal": 50}, {"type": "adalora", "init_r": 12, "target_r": 8, "lora_alpha": 16,
                                                      "target_modules": "all-linear", "tinit": 50, "tfinal": 50}),
    ({"type": "lora", "init_lora_weights": "pissa_niter_4", "layers_to_transform": [0], "target_modules": ["q_proj"]},
     {"type": "lora", "r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ["q_proj"],
      "init_lora_weights": "pissa_niter_4", "layers_to_transform": [0]}),
])
def test_valid_adapter_sections_resolve_with_their_defaults(tiny_llm, adapter, expected):
    config = llm_config(tiny_llm)
    config["adapter"] = adapter
    assert load_config(config)["adapter"] == expected


def test_prompt_tuning_text_init_reads_the_base_models_tokenizer(tiny_llm):
    from transformers import AutoTokenizer

    from framework.llm.adapters import apply_adapter

    adapter = {"type": "prompt_tuning", "num_virtual_tokens": 3, "prompt_tuning_init": "TEXT",
               "prompt_tuning_init_text": "the capital of"}
    model = apply_adapter(base(tiny_llm), load_config(adapter_config(tiny_llm, adapter))["adapter"], None)
    assert model.peft_config["default"].tokenizer_name_or_path == str(tiny_llm)
    # the virtual tokens start as the embeddings of the init text's first tokens (peft tokenizes with specials)
    tokens = AutoTokenizer.from_pretrained(tiny_llm)("the capital of")["input_ids"][:3]
    torch.testing.assert_close(model.prompt_encoder["default"].embedding.weight,
                               model.get_input_embeddings().weight[tokens])
