"""`framework export`: an ECD's torch.export program and ONNX graph compute what the eager model computes
at batch sizes other than the traced one; an LLM's merged directory is the adapted model without peft;
formats a model cannot take are refused with the reason."""
import json

import numpy as np
import pytest
import torch

from framework.cli import main
from framework.data.pipeline import prepare_inference
from framework.errors import FrameworkError
from framework.export import _graph_module, _unsupported_reasons, export_model
from synthetic import synthetic_frame


def preprocessed(model, rows):
    """The model's input tensors for `rows`, in input order, as a served batch would have them."""
    arrays, _ = prepare_inference(model.config, model.metadata, rows, with_targets=False)
    batch = next(arrays.batches(len(arrays), names=model.module.input_names))
    return tuple(batch[name] for name in model.module.input_names)


def test_torch_export_program_matches_the_eager_model_at_any_batch_size(ecd_model_dir, ecd_model, tmp_path):
    out = export_model(ecd_model_dir, "torch_export", tmp_path / "program")
    manifest = json.loads((out / "export.json").read_text())
    assert [i["name"] for i in manifest["inputs"]] == ["x", "z", "color", "flag"]
    assert manifest["inputs"][2]["dtype"] == "int64" and manifest["inputs"][0]["dims"] == ["batch"]
    assert (out / "training_set_metadata.json").is_file() and (out / "config.yaml").is_file()

    program = torch.export.load(out / "model.pt2").module()
    graph, names = _graph_module(ecd_model.module, preprocessed(ecd_model, synthetic_frame(2)))
    assert names == manifest["outputs"] == ["label_logits", "label_predictions", "label_probabilities",
                                            "tier_logits", "tier_predictions", "tier_probabilities",
                                            "amount_logits", "amount_predictions"]
    for size in (5, 13):  # neither is the traced batch size
        rows = synthetic_frame(size, seed=size)
        inputs = preprocessed(ecd_model, rows)
        with torch.no_grad():
            for got, want in zip(program(*inputs), graph(*inputs)):
                torch.testing.assert_close(got, want)
        # and the unscaled regression output is what Model.predict reports
        with torch.no_grad():
            amount = program(*inputs)[names.index("amount_predictions")].numpy()
        np.testing.assert_allclose(amount, ecd_model.predict(rows)["amount_predictions"].to_numpy(), rtol=1e-5)


def test_onnx_graph_passes_the_checker_and_computes_the_eager_outputs(ecd_model_dir, ecd_model, tmp_path):
    import onnx
    from onnx.reference import ReferenceEvaluator

    rows = synthetic_frame(20, seed=1)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    assert main(["export", "--model", str(ecd_model_dir), "--format", "onnx", "--output", str(tmp_path / "onnx"),
                 "--dataset", str(tmp_path / "rows.csv")]) == 0
    path = tmp_path / "onnx" / "model.onnx"
    onnx.checker.check_model(str(path), full_check=True)
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["x", "z", "color", "flag"]
    assert all(i.type.tensor_type.shape.dim[0].dim_param for i in graph.input)  # a symbolic batch dimension
    names = [o.name for o in graph.output]
    assert names == json.loads((tmp_path / "onnx" / "export.json").read_text())["outputs"]

    inputs = preprocessed(ecd_model, synthetic_frame(7, seed=2))  # 7 rows: not the 8 traced
    outputs = ReferenceEvaluator(str(path)).run(None, {name: t.numpy() for name, t in zip(graph_inputs(graph), inputs)})
    eager, _ = _graph_module(ecd_model.module, inputs)
    with torch.no_grad():
        for name, got, want in zip(names, outputs, eager(*inputs)):
            np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want.numpy().astype(np.float64),
                                       rtol=1e-4, atol=1e-5, err_msg=name)


def graph_inputs(graph) -> list[str]:
    return [i.name for i in graph.input]


def test_formats_a_model_cannot_take_are_refused_with_the_reason(ecd_model_dir, tmp_path):
    with pytest.raises(FrameworkError, match="format 'merged' applies to llm models.*--format torch_export or onnx"):
        export_model(ecd_model_dir, "merged", tmp_path / "out")
    with pytest.raises(FrameworkError, match="unknown export format 'onx'; did you mean 'onnx'"):
        export_model(ecd_model_dir, "onx", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_step_by_step_decoder_is_named_as_the_reason_a_graph_cannot_be_exported():
    class Decoder:
        teacher_forced = True

    class Output:
        generates = True
        config = {"decoder": {"type": "generator"}}

    class Module:
        output_features = {"summary": Output()}

    reasons = _unsupported_reasons(Module())
    assert reasons == ["output feature 'summary' decodes step by step (decoder 'generator'): how many steps run "
                       "depends on the data"]


def test_llm_merged_export_is_a_plain_transformers_model_equal_to_the_adapted_one(llm_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from framework.api import Model

    out = export_model(llm_model_dir, "merged", tmp_path / "merged")
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    ids = tokenizer(["country : france capital :"], return_tensors="pt")["input_ids"]
    adapted = Model.load(llm_model_dir).module.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, adapted(input_ids=ids).logits, rtol=1e-4, atol=1e-4)

    with pytest.raises(FrameworkError, match="format 'onnx' applies to ecd models.*--format merged"):
        export_model(llm_model_dir, "onnx", tmp_path / "graph")


def test_a_text_input_exports_with_a_dynamic_token_dimension(tmp_path):
    from framework.api import Model

    frame = synthetic_frame(60)
    frame["words"] = frame["tier"] + " " + frame["color"] + np.where(frame["flag"], " and more", "")
    config = {"input_features": [{"name": "words", "type": "text"}, {"name": "x", "type": "number"}],
              "output_features": [{"name": "label", "type": "binary"}],
              "trainer": {"epochs": 1, "batch_size": 32, "progress_bar": False}}
    model = Model(config)
    run = model.train(frame, output_dir=tmp_path, experiment_name="text").output_dir
    out = export_model(run / "model", "torch_export", tmp_path / "program")  # missing-value rows: 1 token wide
    assert json.loads((out / "export.json").read_text())["inputs"][0]["dims"] == ["batch", "words_tokens"]
    program = torch.export.load(out / "model.pt2").module()
    for rows in (frame.iloc[:3], frame.iloc[10:19]):
        inputs = preprocessed(model, rows)
        graph, _ = _graph_module(model.module, inputs)
        with torch.no_grad():
            for got, want in zip(program(*inputs), graph(*inputs)):
                torch.testing.assert_close(got, want)
