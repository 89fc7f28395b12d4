"""Models trained once per session for the serving, export and upload tests: a small ECD over the
synthetic columns (number, category and binary inputs; binary, category and number outputs) and a
tiny Llama with a LoRA adapter, both saved the way `framework train` saves them."""
import pytest

from synthetic import synthetic_frame, tiny_config

INPUTS = ("x", "z", "color", "flag")
OUTPUTS = (("label", "binary"), ("tier", "category"), ("amount", "number"))


@pytest.fixture(scope="session")
def ecd_model_dir(tmp_path_factory):
    from framework.api import Model

    model = Model(tiny_config(inputs=INPUTS, outputs=OUTPUTS, epochs=2))
    result = model.train(synthetic_frame(120), output_dir=tmp_path_factory.mktemp("ecd"), experiment_name="tabular")
    return result.output_dir / "model"


@pytest.fixture(scope="session")
def ecd_model(ecd_model_dir):
    from framework.api import Model

    return Model.load(ecd_model_dir)


@pytest.fixture(scope="session")
def llm_model_dir(tmp_path_factory):
    from framework.api import Model
    from tiny_llm import build_tiny_llm, capitals_frame, llm_config

    base = build_tiny_llm(tmp_path_factory.mktemp("tiny-llama"))
    model = Model(llm_config(base, trainer={"epochs": 1}))
    result = model.train(capitals_frame(1), output_dir=tmp_path_factory.mktemp("llm"), experiment_name="capitals")
    return result.output_dir / "model"
