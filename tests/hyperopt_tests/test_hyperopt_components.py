"""The search's registries follow the components' contract, and its libraries load only when used."""
import inspect
import subprocess
import sys

import pytest
from marshmallow import fields

from framework.hyperopt.samplers import pruners, samplers
from framework.hyperopt.spaces import spaces

ENTRIES = [(registry.kind, entry) for registry in (spaces, samplers, pruners) for entry in registry.entries()]


@pytest.mark.parametrize("kind, entry", ENTRIES, ids=[f"{kind}:{entry.name}" for kind, entry in ENTRIES])
def test_schema_fields_are_the_constructor_keywords(kind, entry):
    keywords = set(inspect.signature(entry.cls).parameters)
    assert set(entry.schema().fields) == keywords
    required = {key: [1] if isinstance(field, fields.List) else 1
                for key, field in entry.schema().fields.items() if field.required}
    entry.cls(**entry.schema().load(required))  # every default the schema fills is a keyword it takes


def test_every_registry_is_documented_in_the_config_reference():
    from framework.config.reference import reference

    text = reference()
    for kind, entry in ENTRIES:
        assert f"### `{entry.name}`" in text, (kind, entry.name)


def test_checking_a_config_with_a_search_loads_neither_optuna_nor_matplotlib():
    code = ("import sys; sys.path.insert(0, 'tests'); from synthetic import tiny_config; "
            "from framework.config import load_config; import framework.visualize, framework.hyperopt; "
            "c = tiny_config(); c['hyperopt'] = {'parameters': {'trainer.learning_rate': "
            "{'space': 'uniform', 'lower': 0.001, 'upper': 0.1}}}; load_config(c); "
            "print(sorted(m for m in ('optuna', 'matplotlib', 'sqlalchemy') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"
