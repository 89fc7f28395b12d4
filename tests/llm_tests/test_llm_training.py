"""The training-side extras of model_type: llm on the tiny Llama, for real on the CPU: QLoRA and 8-bit
weights (bitsandbytes' own layers, trained, saved as a peft adapter, reloaded to the same generations),
bitsandbytes optimizers (imported only when asked for), NEFTune noise (training mode only, never saved),
activation checkpointing (recomputes, same losses), the model's dtype, and the clear errors, each with its
key path and raised before any data is read, for what the machine cannot do. The GPU-only paths (flash
attention, fp16, paged optimizer state, a 7B QLoRA within 12 GB) are marked `gpu`."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from framework import Model
from framework.config import load_config
from framework.errors import ConfigError
from framework.llm import loading
from tiny_llm import COUNTRIES, build_tiny_llm, capitals_frame, llm_config

MISSING_DATA = "/nonexistent/capitals.csv"  # a machine check that reads this first fails with ConfigError
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def losses_of(result) -> list[float]:
    return result.training_statistics["train"]["capital"]["loss"]


def base_linears(model: Model) -> dict[str, torch.nn.Module]:
    """The decoder's projections under their LoRA wrappers: the layers that hold the base weights."""
    found = {}
    for name, module in model.module.base_model.named_modules():
        if name.split(".")[-1] in TARGETS:
            found[name] = getattr(module, "base_layer", module)
    return found


def config_problems(config: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        Model(config).train(MISSING_DATA, output_dir=None)
    return {problem.path: problem.message for problem in caught.value.problems}


# -- quantization ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def qlora(tiny_llm, tmp_path_factory):
    config = llm_config(tiny_llm, quantization={"bits": 4}, trainer={"epochs": 10})
    model = Model(config)
    result = model.train(capitals_frame(), output_dir=tmp_path_factory.mktemp("qlora-runs"))
    return model, result


def test_qlora_trains_lora_on_frozen_nf4_layers(qlora):
    import bitsandbytes as bnb

    model, result = qlora
    losses = losses_of(result)
    assert losses[-1] < 0.1 * losses[0], losses
    layers = base_linears(model)
    assert len(layers) == 2 * len(TARGETS)
    for layer in layers.values():
        assert isinstance(layer, bnb.nn.Linear4bit)
        assert layer.weight.dtype == torch.uint8 and not layer.weight.requires_grad
        state = layer.weight.quant_state
        assert state.quant_type == "nf4" and state.nested  # double_quant is on by default
        assert layer.compute_dtype == torch.float32  # auto: the model's dtype, float32 on the CPU
    trained = model.module.trained_parameters()
    assert trained and all("lora_" in name and p.dtype == torch.float32 for name, p in trained.items())


def test_qlora_adapters_keep_learning_after_an_evaluation_pass(tmp_path):
    """bitsandbytes would repack 4-bit weights for its AVX512-BF16 kernel at the first eval-mode pass, after
    which no gradient crosses a 4-bit layer: the LoRA of q/k/v/gate/up (whose outputs reach the loss only
    through o_proj and down_proj) would stop learning after the first validation."""
    from framework.llm.adapters import apply_adapter

    config = load_config(llm_config(build_tiny_llm(tmp_path, hidden=64), quantization={"bits": 4}))
    model = loading.prepare_for_training(loading.load_base_model(config, torch.device("cpu")), config)
    model = apply_adapter(model, config["adapter"], total_steps=10)
    ids = torch.randint(3, 20, (2, 6))
    model.eval()
    with torch.no_grad():
        model(input_ids=ids)
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters() if "lora_B" in name}
    assert len(grads) == 2 * len(TARGETS)
    assert all(grad is not None and grad.abs().sum() > 0 for grad in grads.values()), grads.keys()


def test_qlora_saves_a_peft_adapter_and_reloads_to_the_same_generations(qlora, tiny_llm, tmp_path):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    model, result = qlora
    adapter = result.output_dir / "model" / "adapter"
    assert json.loads((adapter / "adapter_config.json").read_text())["peft_type"] == "LORA"
    saved = load_file(adapter / "adapter_model.safetensors")
    assert saved and all("lora_" in name for name in saved)  # no quantized base weights in the adapter
    assert all(value.dtype == torch.float32 for value in saved.values())
    assert isinstance(PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llm), adapter), PeftModel)

    frame = capitals_frame(1)
    predictions = model.predict(frame)["capital_predictions"].tolist()
    assert predictions == frame["capital"].tolist()
    model.save(tmp_path / "saved")
    loaded = Model.load(tmp_path / "saved")
    assert all(type(layer).__name__ == "Linear4bit" for layer in base_linears(loaded).values())
    assert loaded.predict(frame)["capital_predictions"].tolist() == predictions


@pytest.mark.parametrize("quantization, expected", [
    ({"bits": 4, "quant_type": "fp4"}, {"quant_type": "fp4", "nested": True, "compute_dtype": torch.float32}),
    ({"bits": 4, "double_quant": False, "compute_dtype": "bfloat16"},
     {"quant_type": "nf4", "nested": False, "compute_dtype": torch.bfloat16}),
])
def test_4bit_settings_reach_bitsandbytes_and_train(tiny_llm, quantization, expected):
    model = Model(llm_config(tiny_llm, quantization=quantization, trainer={"epochs": 3}))
    losses = losses_of(model.train(capitals_frame(), output_dir=None))
    assert losses[-1] < 0.5 * losses[0], losses
    for layer in base_linears(model).values():
        state = layer.weight.quant_state
        assert (state.quant_type, state.nested, layer.compute_dtype) == tuple(expected.values())


def test_8bit_lora_trains_on_int8_layers(tiny_llm, caplog):
    import bitsandbytes as bnb

    model = Model(llm_config(tiny_llm, quantization={"bits": 8, "llm_int8_threshold": 5.0}, trainer={"epochs": 3}))
    with caplog.at_level("WARNING", logger="bitsandbytes"):
        losses = losses_of(model.train(capitals_frame(), output_dir=None))
    assert losses[-1] < 0.5 * losses[0], losses
    for layer in base_linears(model).values():
        assert isinstance(layer, bnb.nn.Linear8bitLt)
        assert layer.weight.dtype == torch.int8 and layer.state.threshold == 5.0
    # bitsandbytes logs its float16 input cast at every matmul; the user hears it once
    assert sum("MatMul8bitLt" in record.getMessage() for record in caplog.records) <= 1


def test_bitsandbytes_that_cannot_run_is_a_config_error_before_data_is_read(tiny_llm, monkeypatch):
    monkeypatch.setattr(loading, "bitsandbytes_problem", lambda device: "its CUDA library did not load (simulated)")
    problems = config_problems(llm_config(tiny_llm, quantization={"bits": 4}, trainer={"device": "cpu"}))
    message = problems["quantization"]
    assert "4-bit weights need bitsandbytes" in message and "(simulated)" in message  # what and why
    assert "pip install" in message and "drop the quantization section" in message  # the ways out


def test_bitsandbytes_that_cannot_be_imported_is_named_for_weights_and_optimizer(tiny_llm, monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # what a failed import looks like
    config = load_config(llm_config(tiny_llm, quantization={"bits": 8}, trainer={"optimizer": {"type": "adamw_8bit"}}))
    problems = {p.path: p.message for p in loading.machine_problems(config, torch.device("cpu"))}
    assert set(problems) == {"quantization", "trainer.optimizer.type"}
    assert all("bitsandbytes cannot be imported" in message for message in problems.values())
    assert "use adamw" in problems["trainer.optimizer.type"]


def test_a_device_bitsandbytes_has_no_kernels_for_is_named():
    assert "no kernels for meta devices" in loading.bitsandbytes_problem(torch.device("meta"))
    assert loading.bitsandbytes_problem(torch.device("cpu")) is None


@pytest.mark.parametrize("adapter", ["none", None])
def test_quantized_full_fine_tune_is_refused(tiny_llm, adapter):
    config = llm_config(tiny_llm, quantization={"bits": 4})
    config["adapter"] = adapter
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    (problem,) = caught.value.problems
    assert problem.path == "quantization" and "cannot be trained directly" in problem.message
    assert "add an adapter" in problem.message


# -- bitsandbytes optimizers ----------------------------------------------------------------------
BNB_OPTIMIZERS = {"adamw_8bit": "AdamW8bit", "paged_adamw_8bit": "PagedAdamW8bit",
                  "paged_adamw_32bit": "PagedAdamW32bit", "paged_adamw": "PagedAdamW", "lion_8bit": "Lion8bit",
                  "paged_lion_8bit": "PagedLion8bit"}


def test_import_framework_and_the_registry_leave_bitsandbytes_unimported():
    code = ("import sys, framework; from framework.registry import optimizers; "
            "assert {'adamw_8bit', 'paged_lion_8bit'} <= set(optimizers.names()); "
            "print('bitsandbytes' in sys.modules)")
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"
    assert "bitsandbytes" not in done.stderr  # -X importtime lists every module imported


def linear_and_optimizer(name: str, **settings):
    from framework.training.optimizers import build_optimizer

    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 32)
    return layer, build_optimizer(layer, {"type": name, **settings}, learning_rate=0.01, weight_decay=0.0)


def take_steps(layer: torch.nn.Module, optimizer, steps: int = 3) -> None:
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        optimizer.zero_grad()
        layer(torch.randn(8, 64, generator=generator)).pow(2).mean().backward()
        optimizer.step()


@pytest.mark.parametrize("name", list(BNB_OPTIMIZERS))
def test_each_bitsandbytes_optimizer_is_the_bitsandbytes_class_with_its_state(name, recwarn):
    import bitsandbytes.optim

    settings = load_config({"input_features": [{"name": "x", "type": "number"}],
                            "output_features": [{"name": "y", "type": "number"}],
                            "trainer": {"optimizer": {"type": name}}})["trainer"]["optimizer"]
    settings.update({"min_8bit_size": 1} if "min_8bit_size" in settings else {})
    layer, optimizer = linear_and_optimizer(settings.pop("type"), **settings)
    assert type(optimizer) is getattr(bitsandbytes.optim, BNB_OPTIMIZERS[name])
    take_steps(layer, optimizer)
    state = optimizer.state[layer.weight]
    assert state["state1"].dtype == (torch.uint8 if "8bit" in name else torch.float32)
    paging = [str(w.message) for w in recwarn if "paged" in str(w.message).lower() or "paging" in str(w.message)]
    if name.startswith("paged"):  # one warning, ours, naming the setting; bitsandbytes' own is not repeated
        assert len(paging) == 1 and paging[0].startswith(f"trainer.optimizer.type {name}: paging")
    else:
        assert not paging


@pytest.mark.parametrize("paged, plain", [("paged_adamw_8bit", "adamw_8bit"), ("paged_lion_8bit", "lion_8bit")])
def test_a_paged_optimizer_on_the_cpu_makes_the_unpaged_updates(paged, plain):
    with pytest.warns(UserWarning, match="runs unpaged"):
        layer, optimizer = linear_and_optimizer(paged, min_8bit_size=1)
    take_steps(layer, optimizer)
    reference, reference_optimizer = linear_and_optimizer(plain, min_8bit_size=1)
    take_steps(reference, reference_optimizer)
    torch.testing.assert_close(layer.weight, reference.weight, rtol=0, atol=0)


def test_an_unimportable_optimizer_library_is_a_config_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes.optim", None)
    with pytest.raises(ConfigError) as caught:
        linear_and_optimizer("adamw_8bit")
    (problem,) = caught.value.problems
    assert problem.path == "trainer.optimizer.type" and "needs bitsandbytes" in problem.message


def test_lora_trains_with_adamw_8bit_and_keeps_8bit_state(tiny_llm, monkeypatch):
    from framework.training import trainer

    built = []

    def keep(*args, **kwargs):
        built.append(build_optimizer(*args, **kwargs))
        return built[-1]

    build_optimizer = trainer.build_optimizer
    monkeypatch.setattr(trainer, "build_optimizer", keep)
    optimizer = {"type": "adamw_8bit", "min_8bit_size": 1}  # LoRA matrices are below the 4096 default
    model = Model(llm_config(tiny_llm, trainer={"epochs": 6, "optimizer": optimizer}))
    losses = losses_of(model.train(capitals_frame(), output_dir=None))
    assert losses[-1] < 0.3 * losses[0], losses
    (optimizer,) = built
    assert type(optimizer).__name__ == "AdamW8bit"
    states = [optimizer.state[p] for p in model.module.trained_parameters().values()]
    assert states and all(state["state1"].dtype == torch.uint8 for state in states)


# -- NEFTune --------------------------------------------------------------------------------------
ALPHA = 1.0  # 5 is typical for 4096-wide models; on 32 dimensions it would drown the signal


@pytest.fixture(scope="module")
def neftune(tiny_llm):
    model = Model(llm_config(tiny_llm, trainer={"epochs": 10, "neftune_noise_alpha": ALPHA}))
    result = model.train(capitals_frame(), output_dir=None)
    return model, result


def test_neftune_adds_bounded_uniform_noise_in_training_mode_only(neftune):
    model, _ = neftune
    embeddings = model.module.model.get_input_embeddings()
    ids = torch.randint(0, embeddings.num_embeddings, (4, 16), generator=torch.Generator().manual_seed(0))
    clean = torch.nn.functional.embedding(ids, embeddings.weight).detach()
    bound = ALPHA / (16 * embeddings.embedding_dim) ** 0.5  # alpha / sqrt(length * width)
    model.module.train()
    try:
        with torch.no_grad():
            first, second = embeddings(ids) - clean, embeddings(ids) - clean
    finally:
        model.module.eval()
    assert first.abs().max() <= bound * (1 + 1e-5) and first.abs().max() > 0.9 * bound  # uniform up to the bound
    assert abs(first.mean()) < 0.05 * bound and not torch.equal(first, second)  # centred, fresh each call
    with torch.no_grad():
        assert torch.equal(embeddings(ids), clean)  # eval mode: the hook changes nothing


def test_neftune_changes_training_but_not_generation_or_the_saved_adapter(neftune, tiny_llm, tmp_path):
    from safetensors.torch import load_file

    model, result = neftune
    plain = Model(llm_config(tiny_llm, trainer={"epochs": 1}))
    plain_losses = losses_of(plain.train(capitals_frame(), output_dir=None))
    assert losses_of(result)[0] != pytest.approx(plain_losses[0], rel=1e-6)  # the noise reached training
    frame = capitals_frame(1)
    with_hook = model.predict(frame)
    assert (with_hook["capital_predictions"] == frame["capital"]).mean() >= 0.75  # learned through the noise
    model.save(tmp_path / "saved")
    saved = load_file(tmp_path / "saved" / "adapter" / "adapter_model.safetensors")
    plain.save(tmp_path / "plain")
    assert saved.keys() == load_file(tmp_path / "plain" / "adapter" / "adapter_model.safetensors").keys()
    assert "neftune" not in (tmp_path / "saved" / "adapter" / "adapter_config.json").read_text()
    model.module.neftune.remove()
    embeddings = model.module.model.get_input_embeddings()
    assert not embeddings._forward_hooks
    assert model.predict(frame).equals(with_hook)  # generation never saw the noise


# -- activation checkpointing ---------------------------------------------------------------------
def recomputes(model: Model) -> int:
    """Forward calls of the first decoder layer's first module in one training step: 2 when checkpointed
    (the backward pass runs the layer again, stopping early once it has what it needs), 1 otherwise."""
    module = model.module
    layer = module.base_model.model.layers[0].input_layernorm
    calls = []
    handle = layer.register_forward_hook(lambda *_: calls.append(1))
    ids = torch.tensor([[2, 5, 6, 7, 8]])
    module.train()
    try:
        module.model(input_ids=ids, labels=ids).loss.backward()
    finally:
        handle.remove()
        module.eval()
        module.zero_grad(set_to_none=True)
    return len(calls)


@pytest.mark.parametrize("quantization", [None, {"bits": 4}])
def test_gradient_checkpointing_recomputes_and_keeps_the_loss_trajectory(tiny_llm, quantization):
    runs = {}
    for checkpointing in (False, True):
        config = llm_config(tiny_llm, trainer={"epochs": 4, "gradient_checkpointing": checkpointing},
                            quantization=quantization)
        model = Model(config)
        runs[checkpointing] = model, losses_of(model.train(capitals_frame(), output_dir=None))
    for checkpointing, (model, _) in runs.items():
        base = model.module.base_model
        assert base.is_activation_checkpointing is checkpointing
        assert all(layer.gradient_checkpointing is checkpointing for layer in base.model.layers)
        assert recomputes(model) == (2 if checkpointing else 1)
    assert runs[True][1] == pytest.approx(runs[False][1], rel=1e-4)
    assert runs[True][1][-1] < 0.5 * runs[True][1][0]


def test_group_by_length_batches_examples_of_similar_length_and_learns(tiny_llm):
    from framework.llm.data import prepare_llm_training
    from framework.training.length_grouping import row_lengths

    config = llm_config(tiny_llm, trainer={"epochs": 20, "group_by_length": True})
    model = Model(config)
    losses = losses_of(model.train(capitals_frame(), output_dir=None))
    assert losses[-1] < 0.1 * losses[0], losses
    resolved = load_config(config)
    splits, _ = prepare_llm_training(resolved, loading.load_tokenizer(resolved), capitals_frame())
    arrays = splits["train"].arrays
    np.testing.assert_array_equal(row_lengths(arrays, list(arrays.columns)), arrays.columns["input_ids"].lengths)


# -- the model's dtype ----------------------------------------------------------------------------
def test_the_default_dtype_on_the_cpu_is_float32(tiny_llm):
    from framework.llm.runner import build

    config = load_config(llm_config(tiny_llm, trainer={"device": "cpu"}))
    assert config["model_dtype"] == "auto"
    module = build(config, torch.device("cpu"), None)
    assert {p.dtype for p in module.parameters()} == {torch.float32}


def test_bfloat16_loads_bfloat16_weights_and_trains_on_the_cpu(tiny_llm):
    model = Model(llm_config(tiny_llm, model_dtype="bfloat16", trainer={"epochs": 6, "device": "cpu"}))
    losses = losses_of(model.train(capitals_frame(), output_dir=None))
    assert losses[-1] < 0.3 * losses[0], losses
    frozen = {p.dtype for p in model.module.parameters() if not p.requires_grad}
    assert frozen == {torch.bfloat16}
    assert model.module.base_model.dtype == torch.bfloat16
    assert {p.dtype for p in model.module.trained_parameters().values()} == {torch.float32}  # peft's adapter dtype


@pytest.mark.parametrize("top, path, says", [
    ({"model_dtype": "float16"}, "model_dtype", "use bfloat16"),
    ({"attention": "flash_attention_2"}, "attention", "use attention: sdpa"),
])
def test_what_the_cpu_cannot_run_is_refused_before_data_is_read(tiny_llm, top, path, says):
    problems = config_problems(llm_config(tiny_llm, trainer={"device": "cpu"}, **top))
    assert set(problems) == {path}
    assert "needs a CUDA GPU and this run is on cpu" in problems[path] and says in problems[path]


def test_every_machine_problem_is_reported_at_once(tiny_llm, monkeypatch):
    monkeypatch.setattr(loading, "bitsandbytes_problem", lambda device: "simulated")
    config = llm_config(tiny_llm, model_dtype="float16", attention="flash_attention_2", quantization={"bits": 4},
                        trainer={"device": "cpu", "optimizer": {"type": "paged_adamw_8bit"}})
    assert set(config_problems(config)) == {"model_dtype", "attention", "quantization", "trainer.optimizer.type"}


# -- GPU only -------------------------------------------------------------------------------------
def gpu_config(tiny_llm, **overrides) -> dict:
    config = llm_config(tiny_llm, **overrides)
    config["trainer"]["device"] = "cuda"
    return config


@pytest.mark.gpu
def test_flash_attention_2_trains_on_a_gpu(tiny_llm):
    pytest.importorskip("flash_attn", reason="flash_attention_2 needs the flash-attn package")
    model = Model(gpu_config(tiny_llm, attention="flash_attention_2", model_dtype="bfloat16",
                             trainer={"epochs": 6}))
    losses = losses_of(model.train(capitals_frame(), output_dir=None))
    assert model.module.base_model.config._attn_implementation == "flash_attention_2"
    assert losses[-1] < 0.3 * losses[0], losses


@pytest.mark.gpu
def test_fp16_training_on_a_gpu(tiny_llm):
    model = Model(gpu_config(tiny_llm, model_dtype="float16", trainer={"epochs": 6, "precision": "fp16"}))
    losses = losses_of(model.train(capitals_frame(), output_dir=None))
    assert model.module.base_model.dtype == torch.float16
    assert losses[-1] < 0.3 * losses[0], losses


@pytest.mark.gpu
def test_paged_optimizer_state_is_paged_on_a_gpu(tiny_llm, recwarn):
    from framework.training.optimizers import build_optimizer

    layer = torch.nn.Linear(512, 512, device="cuda")  # bitsandbytes pages tensors of 1e5 elements and more
    optimizer = build_optimizer(layer, {"type": "paged_adamw_8bit", "betas": (0.9, 0.999), "eps": 1e-8,
                                        "min_8bit_size": 4096}, learning_rate=0.01, weight_decay=0.0)
    layer(torch.randn(4, 512, device="cuda")).pow(2).mean().backward()
    optimizer.step()
    assert getattr(optimizer.state[layer.weight]["state1"], "is_paged", False)
    assert not [w for w in recwarn if "unpaged" in str(w.message)]
    model = Model(gpu_config(tiny_llm, trainer={"epochs": 6, "optimizer": {"type": "paged_adamw_32bit"}}))
    losses = losses_of(model.train(capitals_frame(), output_dir=None))
    assert losses[-1] < 0.3 * losses[0], losses


@pytest.mark.gpu
@pytest.mark.slow
def test_qlora_of_a_7b_llama_at_512_tokens_fits_in_12_gb(tmp_path):
    """Llama-2-7B's architecture with random weights: 4-bit NF4 + LoRA, batch 1 x 512 tokens, activation
    checkpointing; the peak of allocated GPU memory over loading and training stays under 12 GB."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(build_tiny_llm(tmp_path / "tiny"))
    architecture = LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                               num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
                               bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                               pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    with torch.device("cuda"):  # random init on the GPU takes seconds, on the CPU minutes
        big = LlamaForCausalLM(architecture).to(torch.bfloat16)
    big.save_pretrained(tmp_path / "llama-7b", max_shard_size="4GB")
    tokenizer.save_pretrained(tmp_path / "llama-7b")
    del big
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()

    long_country = " ".join(COUNTRIES * 45)  # ~540 words: each row is cut to 512 tokens
    frame = capitals_frame(1).head(4).assign(country=long_country)
    config = gpu_config(tmp_path / "llama-7b", quantization={"bits": 4, "compute_dtype": "bfloat16"},
                        model_dtype="bfloat16",
                        trainer={"epochs": 1, "batch_size": 1, "eval_batch_size": 1, "max_sequence_length": 512,
                                 "gradient_checkpointing": True, "learning_rate": 1e-4})
    model = Model(config)
    losses = losses_of(model.train(frame, output_dir=None))
    peak = torch.cuda.max_memory_allocated()
    assert all(math.isfinite(loss) for loss in losses)
    assert model.metadata["max_sequence_length"] == 512
    assert model.module.base_model.is_activation_checkpointing
    assert all(type(layer).__name__ == "Linear4bit" for layer in base_linears(model).values())
    assert peak < 12 * 1024 ** 3, f"peak {peak / 1024 ** 3:.1f} GiB"
