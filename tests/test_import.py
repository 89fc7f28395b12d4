"""`import framework` stays light: torch and pandas load when a Model is first used."""
import subprocess
import sys


def run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_import_framework_does_not_import_torch():
    assert run("import framework, sys; print('torch' in sys.modules)") == "False"


def test_import_framework_imports_no_heavy_library():
    code = ("import framework, sys; "
            "print(sorted(m for m in ('torch', 'pandas', 'numpy', 'pyarrow', 'transformers', 'marshmallow', "
            "'encoders', 'decoders', 'combiners') if m in sys.modules))")
    assert run(code) == "[]"


def test_the_model_class_is_reachable_from_the_package():
    assert run("import framework; from framework.api import Model; print(framework.Model is Model, "
               "framework.__version__ != '')") == "True True"
