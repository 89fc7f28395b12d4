"""DeepSpeed tests skip where deepspeed is not installed."""
import pytest


@pytest.fixture(scope="session", autouse=True)
def _needs_deepspeed():
    pytest.importorskip("deepspeed")
