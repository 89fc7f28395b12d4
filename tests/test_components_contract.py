"""The contract every registered component keeps, checked over the registries (so a new component
is tested the moment it registers): schema fields are the constructor's keyword-only parameters with
the same defaults, positional parameters are data-derived context, outputs have the right shapes, and
weights survive a safetensors round trip."""
import functools
import inspect
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from framework.config.fields import defaults_of
from framework.data.dataset import ArrayDataset
from framework.models.build import build, context_parameters, setting_parameters
from framework.models.weights import load_weights, save_weights
from framework.models.encoded import Encoded, as_encoded
from framework.registry import combiners, decoders, encoders, feature_types, losses, metrics, optimizers
from framework.training.optimizers import build_optimizer
from tiny_llm import build_tiny_bert
from tiny_vision import build_tiny_vit

MODULE_REGISTRIES = (encoders, combiners, decoders, losses)
CONTEXT_NAMES = {"input_size", "vocab_size", "num_outputs", "vocab", "frequencies", "input_sizes", "pad_id",
                 "sos_id", "eos_id", "max_length", "embeddings_cached", "num_channels", "height", "width",
                 "pixel_mean", "pixel_std"}
ROWS = 6
COLUMNS = {
    "number": pd.Series([0.5, -1.0, 2.0, 3.5, 0.0, 1.0]),
    "binary": pd.Series([True, False, True, True, False, False]),
    "category": pd.Series(["a", "b", "c", "a", "a", "b"]),
    "text": pd.Series(["the cat sat", "a dog!", "", "cats and dogs, all of them", "no", "the end"]),
    "sequence": pd.Series(["A B C", "B", "C C A B", "", "A", "B C"]),
    "set": pd.Series(["a b", "b", "", "c a", "a", "b c"]),
    "bag": pd.Series(["a a b", "b", "c", "c a a a", "a", "b c"]),
    "vector": pd.Series(["0.1 0.2 0.3", "1 0 0", "0 1 0", "-1 2 0.5", "3 3 3", "0 0 0"]),
    "date": pd.Series(["2024-01-05", "2023-12-31 10:30", "2020-02-29", "1999-07-04", "2024-06-01", "2010-10-10"]),
    "timeseries": pd.Series(["1 2 3", "4 5", "6", "7 8 9 10", "0.5 0.25", "1"]),
    "image": pd.Series([np.full((32, 32, 3), 40 * i, dtype=np.uint8) for i in range(6)]),
    "audio": pd.Series([[(i * k % 13) / 13 - 0.5 for i in range(400 + 160 * k)] for k in range(1, 7)]),  # samples
}
# combiners that need names of the inputs they are given
COMBINER_SETTINGS = {"comparator": {"entity_1": ["a"], "entity_2": ["b"]}}


@functools.lru_cache(maxsize=None)
def _tiny_bert() -> str:
    return str(build_tiny_bert(Path(tempfile.mkdtemp(prefix="contract-bert-"))))


@functools.lru_cache(maxsize=None)
def _tiny_vit() -> str:
    return str(build_tiny_vit(Path(tempfile.mkdtemp(prefix="contract-vit-"))))


def required_settings(registry, entry) -> dict:
    """Settings without a default: the base model of an llm encoder (a tiny BERT saved for these tests) or of
    a huggingface image encoder (a tiny ViT)."""
    if registry is encoders and entry.name == "llm":
        return {"base_model": _tiny_bert()}
    if registry is encoders and entry.name == "huggingface":
        return {"base_model": _tiny_vit()}
    return {}


def entry_id(entry) -> str:
    return f"{entry.name}[{','.join(entry.types)}]" if entry.types else entry.name


def entries_of(*registries):
    return [pytest.param(r, e, id=f"{r.kind}:{entry_id(e)}") for r in registries for e in r.entries()]


def typed_entries(*registries):
    """(registry, entry, data type) for each type an entry serves, or None for untyped ones."""
    return [pytest.param(r, e, t, id=f"{r.kind}:{e.name}:{t}") for r in registries for e in r.entries()
            for t in (e.types or (None,))]


def keyword_defaults(cls) -> dict:
    return {name: p.default for name, p in inspect.signature(cls).parameters.items() if p.kind == p.KEYWORD_ONLY}


def feature(type_name: str):
    """(feature type class, fitted metadata, transformed batch) for a small column of that type."""
    kind = feature_types.get(type_name).cls
    settings = defaults_of(kind.preprocessing_schema)
    metadata = kind.fit(COLUMNS[type_name], settings, "f")
    column = kind.transform(COLUMNS[type_name], settings, metadata, "f")
    return kind, metadata, next(ArrayDataset({"f": column}).batches(ROWS))["f"]


def sequence_input() -> Encoded:
    """What a sequence encoder hands on: states of 4 tokens, the last two rows shorter."""
    mask = torch.ones(ROWS, 4, dtype=torch.bool)
    mask[-2:, 2:] = False
    return Encoded(torch.randn(ROWS, 7), torch.randn(ROWS, 4, 7), mask)


def variants(registry, entry) -> list[dict]:
    """Default settings, and where the schema has fc-stack settings, a deeper stack with batch norm
    (whose running statistics are buffers that must round trip too)."""
    schema = entry.schema
    fields = schema().fields
    rich = {k: v for k, v in {"num_fc_layers": 2, "norm": "batch", "dropout": 0.1, "residual": True,
                              "embedding_size": 2}.items() if k in fields}
    given = {**(COMBINER_SETTINGS.get(entry.name, {}) if registry is combiners else {}),
             **required_settings(registry, entry)}
    return [schema().load(given)] + ([schema().load({**given, **rich})] if rich else [])


def make_case(registry, entry, type_name, settings):
    """The module built as the model would build it, and an input batch."""
    if registry is combiners:
        sizes = {"a": 3, "b": 5}
        mask = torch.ones(ROWS, 4, dtype=torch.bool)
        mask[0, 1:] = False
        encoded = {"a": Encoded(torch.randn(ROWS, 3), torch.randn(ROWS, 4, 3), mask), "b": Encoded(torch.randn(ROWS, 5))}
        return build(entry, {"input_sizes": sizes}, settings), (encoded,)
    kind, metadata, values = feature(type_name)
    if registry is encoders:
        return build(entry, kind.input_context(metadata), settings), (values,)
    context = {"input_size": 7, **kind.output_context(metadata)}
    module = build(entry, context, settings)
    if registry is decoders:
        if getattr(module, "input_kind", "pooled") == "encoded":
            return module, (sequence_input(),)
        return module, (torch.randn(ROWS, 7),)
    if getattr(kind, "per_token", False):  # a loss: logits and targets
        return module, (torch.randn(ROWS, values.shape[1], context["num_outputs"]), values)
    return module, (torch.randn(ROWS, context["num_outputs"]), values)


def pooled(output):
    """Encoders and combiners may return Encoded (pooled vector + per-token states); losses a scalar."""
    return as_encoded(output).pooled if isinstance(output, (torch.Tensor, Encoded)) else output


def expected_shape(registry, module, type_name) -> tuple:
    if registry in (encoders, combiners):
        return (ROWS, module.output_size)
    if registry is decoders:
        kind, metadata, _ = feature(type_name)
        if getattr(kind, "per_token", False):  # [rows, tokens, vocabulary], as many tokens as it decodes
            return (ROWS, None, kind.output_context(metadata)["num_outputs"])
        return (ROWS, kind.output_context(metadata)["num_outputs"])
    return ()  # a loss is one number


def shape_matches(shape: tuple, expected: tuple) -> bool:
    return len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))


@pytest.mark.parametrize("registry, entry", entries_of(*MODULE_REGISTRIES))
def test_schema_fields_are_the_keyword_only_parameters_with_the_same_defaults(registry, entry):
    assert entry.schema is not None
    assert list(entry.schema().fields) == setting_parameters(entry.cls)
    required = required_settings(registry, entry)
    assert entry.schema().load(required) == {**keyword_defaults(entry.cls), **required}


@pytest.mark.parametrize("registry, entry", entries_of(*MODULE_REGISTRIES))
def test_positional_parameters_are_data_derived_context(registry, entry):
    assert set(context_parameters(entry.cls)) <= CONTEXT_NAMES


@pytest.mark.parametrize("registry, entry, type_name", typed_entries(*MODULE_REGISTRIES))
def test_output_shapes(registry, entry, type_name):
    for settings in variants(registry, entry):
        module, inputs = make_case(registry, entry, type_name, settings)
        module.train()
        output = pooled(module(*inputs))
        assert shape_matches(tuple(output.shape), expected_shape(registry, module, type_name)), (output.shape, settings)
        assert output.dtype == torch.float32 and torch.isfinite(output).all()


@pytest.mark.parametrize("registry, entry, type_name", typed_entries(*MODULE_REGISTRIES))
def test_state_dict_round_trip_through_safetensors(registry, entry, type_name, tmp_path):
    for settings in variants(registry, entry):
        torch.manual_seed(0)
        original, inputs = make_case(registry, entry, type_name, settings)
        original.train()
        original(*inputs)  # updates batch-norm running statistics, so buffers differ from a fresh module
        original.eval()
        save_weights(original, tmp_path / "weights.safetensors")
        torch.manual_seed(1)
        restored, _ = make_case(registry, entry, type_name, settings)
        load_weights(restored, tmp_path / "weights.safetensors")
        restored.eval()
        torch.testing.assert_close(pooled(restored(*inputs)), pooled(original(*inputs)), rtol=0, atol=0)


@pytest.mark.parametrize("registry, entry", entries_of(optimizers))
def test_optimizer_schemas_match_the_constructor(registry, entry):
    parameters = inspect.signature(entry.cls).parameters
    fields = list(entry.schema().fields)
    assert not {"lr", "weight_decay", "params"} & set(fields)  # those come from the trainer and the model
    for name, value in defaults_of(entry.schema).items():
        assert name in parameters, name
        assert value == parameters[name].default, name


@pytest.mark.parametrize("registry, entry", entries_of(optimizers))
def test_optimizer_state_round_trip_gives_the_same_next_step(registry, entry, tmp_path):
    settings = {"type": entry.name, **defaults_of(entry.schema)}

    def model_and_optimizer():
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 2)
        return model, build_optimizer(model, settings, learning_rate=0.1, weight_decay=0.01)

    def step(model, optimizer):
        optimizer.zero_grad()
        model(torch.ones(3, 4)).pow(2).sum().backward()
        optimizer.step()

    model, optimizer = model_and_optimizer()
    step(model, optimizer)
    torch.save(optimizer.state_dict(), tmp_path / "state.pt")
    save_weights(model, tmp_path / "weights.safetensors")
    step(model, optimizer)

    resumed, resumed_optimizer = model_and_optimizer()
    load_weights(resumed, tmp_path / "weights.safetensors")
    resumed_optimizer.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    step(resumed, resumed_optimizer)
    for a, b in zip(model.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("name", feature_types.names())
def test_feature_type_defaults_are_registered_for_that_type(name):
    kind = feature_types.get(name).cls
    defaults_of(kind.preprocessing_schema)  # an empty section is valid
    assert kind.default_encoder in encoders.names(name)
    if kind.default_decoder is None:  # an input-only type (date, bag, timeseries)
        assert kind.default_loss is None and not kind.default_metrics
        return
    assert kind.default_decoder in decoders.names(name)
    assert kind.default_loss in losses.names(name)
    assert kind.default_metrics[0] == "loss"
    assert set(kind.default_metrics) <= set(metrics.names(name))


def test_registering_a_name_twice_for_the_same_type_is_an_error():
    from framework.registry import Registry

    registry = Registry("widget")
    registry.register("w", types=("number",))(type("A", (), {}))
    registry.register("w", types=("category",))(type("B", (), {}))  # another type: allowed
    with pytest.raises(ValueError, match="widget 'w' is already registered by A"):
        registry.register("w", types=("number",))(type("C", (), {}))
    with pytest.raises(ValueError, match="widget 'w' is already registered by A"):
        registry.register("w")(type("D", (), {}))  # an untyped entry clashes with every type
    assert registry.names("number") == ["w"] and registry.types_of("w") == ["category", "number"]
