"""The problems a bad config is refused with, as {key path: message}, for the config tests to assert on."""
import pytest

from framework.config.resolve import resolve_config
from framework.errors import ConfigError


def problems_of(raw) -> dict[str, str]:
    """{key path: message} of the ConfigError that resolving `raw` raises (the test fails if none is)."""
    with pytest.raises(ConfigError) as caught:
        resolve_config(raw)
    return {problem.path: problem.message for problem in caught.value.problems}
