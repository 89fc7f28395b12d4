"""Exports a saved model for runtimes without framework: an ECD as a torch.export program or an ONNX
graph, an LLM as one merged Hugging Face model directory.

An exported ECD graph maps preprocessed input tensors (one per input feature, batch first) to each
output's logits and predictions; preprocessing (vocabularies, normalisation) stays outside the graph,
so config.yaml and training_set_metadata.json are copied beside it and export.json lists the tensors.
Every graph is checked before it is written: its outputs must equal the eager model's on the example
batch and on a batch of another size (the batch dimension is dynamic), and an ONNX file must pass
onnx.checker.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from framework import atomic
from framework.errors import FrameworkError
from framework.version import __version__

EXAMPLE_ROWS = 8  # rows of the user's dataset traced and checked (at least 2: a batch of 1 would be specialised)
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def export_model(model_dir: str | os.PathLike, format: str, output: str | os.PathLike,
                 dataset: Any = None) -> Path:
    """Writes `output` (a directory) and returns it. `dataset` gives real rows to trace and check with;
    without it the rows are made of each input's missing-value fill, varied with noise where numeric."""
    if format not in FORMATS:
        from framework.config.problems import did_you_mean

        raise FrameworkError(f"unknown export format '{format}'; {did_you_mean(format, FORMATS)}")
    writer, wants_llm = FORMATS[format]
    model_dir = Path(model_dir)
    is_llm = _holds_llm(model_dir)
    if is_llm:  # not built: merging reads the saved adapter onto an unquantized base of its own
        source = _llm_config(model_dir)
    else:
        from framework.api import Model

        source = Model.load(model_dir)  # an ECD, or the error of a directory that holds no saved model
    if wants_llm != is_llm:
        raise FrameworkError(f"format '{format}' applies to {'llm' if wants_llm else 'ecd'} models; export an "
                             f"{'llm' if is_llm else 'ecd'} model with --format "
                             f"{' or '.join(name for name, (_, llm) in FORMATS.items() if llm == is_llm)}")
    output = Path(output)
    with atomic.atomic_dir(output) as tmp:
        writer(source, model_dir, tmp, dataset)
    return output


def _holds_llm(model_dir: Path) -> bool:
    """Whether `model_dir` holds a saved LLM: the test Model.load makes (after finishing an interrupted save)."""
    from framework.llm import runner
    from framework.models.model_dir import WEIGHTS

    atomic.recover_dir(model_dir)
    return (model_dir / runner.TOKENIZER).is_dir() and not (model_dir / WEIGHTS).is_file()


def _llm_config(model_dir: Path) -> dict:
    """A saved LLM's resolved config, read as framework.llm.runner.load reads it, without building the model."""
    import yaml

    from framework.config import load_config
    from framework.llm import runner

    return load_config(yaml.safe_load((model_dir / runner.CONFIG).read_text()))


# -- ECD graphs ----------------------------------------------------------------------------------------
def _unsupported_reasons(module) -> list[str]:
    """Parts of an ECD that torch.export cannot capture as one graph, each with the reason."""
    reasons = []
    for name, feature in module.output_features.items():
        if feature.generates:
            reasons.append(f"output feature '{name}' decodes step by step (decoder "
                           f"'{feature.config['decoder']['type']}'): how many steps run depends on the data")
    return reasons


def _graph_module(module, inputs: tuple):
    """The ECD as a module of positional tensors in, a flat tuple out (what torch.export and ONNX take),
    and the names of those outputs, read from one eager run on `inputs`."""
    import torch

    class Graph(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.ecd = module

        def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
            logits = self.ecd(dict(zip(self.ecd.input_names, tensors)))
            flat = []
            for name, feature in self.ecd.output_features.items():
                flat.append(logits[name])
                flat.extend(feature.predict(logits[name]).values())
            return tuple(flat)

    graph = Graph().eval()
    with torch.no_grad():
        logits = module(dict(zip(module.input_names, inputs)))
    names = []
    for name, feature in module.output_features.items():
        names += [f"{name}_logits", *(f"{name}_{key}" for key in feature.predict(logits[name]))]
    return graph, names


def _example_inputs(model, dataset: Any):
    """(tensors in input order, {ragged input: (pad value, pads on the left)}): a batch of real or
    missing-value rows; ragged inputs at least 2 tokens wide, since a width of 1 would be traced as fixed."""
    import pandas as pd
    import torch

    from framework.data.pipeline import prepare_inference
    from framework.data.ragged import Ragged
    from framework.data.readers import read_dataset

    columns = [feature["column"] for feature in model.config["input_features"]]
    if dataset is not None:
        frame = read_dataset(dataset).head(EXAMPLE_ROWS)
        if len(frame) < 2:
            raise FrameworkError("the export dataset needs at least 2 rows (a batch of 1 fixes the batch size)")
    else:
        frame = pd.DataFrame({column: [None] * 3 for column in columns})
    arrays, _ = prepare_inference(model.config, model.metadata, frame, with_targets=False)
    names = model.module.input_names
    batch = next(arrays.batches(len(arrays), names=names))
    ragged = {name: (arrays.columns[name].pad_value, arrays.columns[name].pad_left)
              for name in names if isinstance(arrays.columns[name], Ragged)}
    inputs = []
    generator = torch.Generator().manual_seed(0)
    for name in names:
        tensor = batch[name]
        if dataset is None and tensor.is_floating_point():  # rows of one fill value would hide row mix-ups
            tensor = tensor + torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
        if name in ragged and tensor.shape[1] < 2:
            tensor = _pad(tensor, *ragged[name])
        inputs.append(tensor)
    return tuple(inputs), ragged


def _pad(tensor, value, left: bool):
    """One more padding position on every row: the same rows, one token wider."""
    import torch

    column = torch.full((tensor.shape[0], 1, *tensor.shape[2:]), value, dtype=tensor.dtype)
    return torch.cat([column, tensor] if left else [tensor, column], dim=1)


def _variants(inputs: tuple, names: list[str], ragged: dict) -> dict[str, tuple]:
    """The example batch, and the same rows at another batch size and token width: what the dynamic
    dimensions are checked with."""
    import torch

    variants = {"the traced batch": inputs,
                "another batch size": tuple(torch.cat([tensor, tensor[:1]]) for tensor in inputs)}
    if ragged:
        variants["another token length"] = tuple(_pad(t, *ragged[n]) if n in ragged else t for n, t in zip(names, inputs))
    return variants


def _check_same(expected, actual, what: str) -> None:
    import torch

    for index, (want, got) in enumerate(zip(expected, actual)):
        try:
            torch.testing.assert_close(got, want, **TOLERANCE)
        except AssertionError as error:
            raise FrameworkError(f"the exported {what} disagrees with the model on output {index}: "
                                 f"{str(error).splitlines()[0]}") from None


def _export_program(model, inputs: tuple, ragged: dict):
    """A checked torch.export program with a dynamic batch dimension (and token dimension for ragged inputs)."""
    import torch

    reasons = _unsupported_reasons(model.module)
    if reasons:
        raise FrameworkError("this model cannot be exported as one graph: " + "; ".join(reasons))
    graph, output_names = _graph_module(model.module, inputs)
    batch = torch.export.Dim("batch")
    shapes = tuple({0: batch, **({1: torch.export.Dim.AUTO} if name in ragged else {})}
                   for name in model.module.input_names)
    with torch.no_grad():
        try:
            program = torch.export.export(graph, inputs, dynamic_shapes=(shapes,))
        except Exception as error:  # torch raises many types here; each means "not traceable", not a bug of ours
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise FrameworkError(f"torch.export cannot capture this model as one graph: {first} "
                                 "(run with --debug for torch's full explanation)") from error
        exported = program.module()
        for what, variant in _variants(inputs, model.module.input_names, ragged).items():
            try:
                outputs = exported(*variant)
            except Exception as error:  # a guard of the program: a dimension it traced as fixed
                raise FrameworkError(f"the exported program does not accept {what}: "
                                     f"{str(error).strip().splitlines()[0]}") from error
            _check_same(graph(*variant), outputs, f"program, on {what},")
    return program, output_names


def _dimension_names(name: str, tensor, ragged: dict) -> list:
    return ["batch", *([f"{name}_tokens"] if name in ragged else []), *tensor.shape[1 + (name in ragged):]]


def _manifest(model, format: str, files: list[str], inputs: tuple, ragged: dict, output_names: list[str]) -> dict:
    features = {feature["name"]: feature for feature in model.config["input_features"]}
    return {
        "format": format, "framework_version": __version__, "files": files,
        "inputs": [{"name": name, "feature_type": features[name]["type"], "column": features[name]["column"],
                    "dtype": str(tensor.dtype).removeprefix("torch."),
                    "dims": _dimension_names(name, tensor, ragged)}
                   for name, tensor in zip(model.module.input_names, inputs)],
        "outputs": output_names,
        "preprocessing": "inputs are preprocessed tensors: see training_set_metadata.json and config.yaml",
    }


def _copy_preprocessing(model_dir: Path, target: Path) -> None:
    for name in ("config.yaml", "training_set_metadata.json"):
        shutil.copy2(model_dir / name, target / name)


def _write_torch_export(model, model_dir: Path, target: Path, dataset: Any) -> None:
    import torch

    inputs, ragged = _example_inputs(model, dataset)
    program, output_names = _export_program(model, inputs, ragged)
    torch.export.save(program, target / "model.pt2")
    _copy_preprocessing(model_dir, target)
    manifest = _manifest(model, "torch_export", ["model.pt2"], inputs, ragged, output_names)
    (target / "export.json").write_text(json.dumps(manifest, indent=1))


def _write_onnx(model, model_dir: Path, target: Path, dataset: Any) -> None:
    import onnx
    import torch

    inputs, ragged = _example_inputs(model, dataset)
    program, output_names = _export_program(model, inputs, ragged)
    path = target / "model.onnx"
    weight_bytes = sum(p.numel() * p.element_size() for p in model.module.parameters())
    try:
        # one file unless the weights approach protobuf's 2 GiB limit
        torch.onnx.export(program, (), f=str(path), dynamo=True, input_names=model.module.input_names,
                          output_names=output_names, verbose=False, external_data=weight_bytes > (1 << 30))
    except Exception as error:  # an operator without an ONNX translation, most often
        raise FrameworkError(f"the model has no ONNX translation: {str(error).strip().splitlines()[0]}") from error
    _name_dimensions(path, model.module.input_names, inputs, ragged, weight_bytes > (1 << 30))
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as error:
        raise FrameworkError(f"the exported ONNX graph is invalid: {str(error).splitlines()[0]}") from error
    _copy_preprocessing(model_dir, target)
    files = sorted(p.name for p in target.iterdir() if p.name.startswith("model.onnx"))  # + external data
    manifest = _manifest(model, "onnx", files, inputs, ragged, output_names)
    (target / "export.json").write_text(json.dumps(manifest, indent=1))


def _name_dimensions(path: Path, names: list[str], inputs: tuple, ragged: dict, external: bool) -> None:
    """Renames the exporter's symbolic dimensions (s0, s1, ...) to those of export.json: batch, <input>_tokens."""
    import onnx

    graph_model = onnx.load(str(path))
    graph = graph_model.graph
    renames = {}
    for value, name, tensor in zip(graph.input, names, inputs):
        for dim, wanted in zip(value.type.tensor_type.shape.dim, _dimension_names(name, tensor, ragged)):
            if dim.dim_param and isinstance(wanted, str):
                renames.setdefault(dim.dim_param, wanted)
    for value in [*graph.input, *graph.output, *graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in renames:
                dim.dim_param = renames[dim.dim_param]
    onnx.save(graph_model, str(path), save_as_external_data=external)


# -- LLM -----------------------------------------------------------------------------------------------
def _write_merged(config: dict, model_dir: Path, target: Path, dataset: Any) -> None:
    """A transformers model directory (weights with the adapter folded in, plus the tokenizer) that
    AutoModelForCausalLM.from_pretrained loads with neither framework nor peft."""
    from framework.llm import runner

    if (model_dir / runner.ADAPTER).is_dir():
        # from the saved adapter directly, into the export itself (atomic_dir's temporary directory):
        # Model.save(merged=True) would write the adapter again first
        runner._save_merged(config, model_dir / runner.ADAPTER, target)
    elif (model_dir / runner.MERGED).is_dir():  # a full fine-tune: already a transformers model
        for path in (model_dir / runner.MERGED).iterdir():
            shutil.copy2(path, target / path.name)
    else:
        raise FrameworkError(f"'{model_dir}' holds no adapter/ or merged/ model to export")
    for path in (model_dir / runner.TOKENIZER).iterdir():
        shutil.copy2(path, target / path.name)


# name -> (writer, whether it applies to llm models). A writer gets the loaded model (ecd) or the saved
# config (llm), the model directory, the directory to write and the dataset.
FORMATS: dict[str, tuple[Callable, bool]] = {
    "torch_export": (_write_torch_export, False),
    "onnx": (_write_onnx, False),
    "merged": (_write_merged, True),
}
