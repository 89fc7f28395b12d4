"""A tiny Llama saved once per session; the tests load it by path like any base model."""
import pytest

from tiny_llm import build_tiny_llm


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory):
    return build_tiny_llm(tmp_path_factory.mktemp("tiny-llama"))
