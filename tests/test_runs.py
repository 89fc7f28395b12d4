"""Run directories: numbered, never reused, found again for resume; names cannot escape."""
import pytest

from framework import runs
from framework.errors import FrameworkError


def test_runs_are_numbered_in_order(tmp_path):
    assert runs.new_run_dir(tmp_path, "exp") == tmp_path / "exp_0"
    assert runs.new_run_dir(tmp_path, "exp") == tmp_path / "exp_1"
    (tmp_path / "exp_7").mkdir()
    assert runs.new_run_dir(tmp_path, "exp") == tmp_path / "exp_8"
    assert runs.new_run_dir(tmp_path, "other") == tmp_path / "other_0"


def test_the_latest_run_with_a_checkpoint_is_resumed(tmp_path):
    assert runs.latest_run_dir(tmp_path, "exp") is None
    for number in (0, 1, 2):
        (tmp_path / f"exp_{number}").mkdir()
    (tmp_path / "exp_1" / "checkpoints").mkdir()
    assert runs.latest_run_dir(tmp_path, "exp") == tmp_path / "exp_1"  # exp_2 never checkpointed


@pytest.mark.parametrize("name", ["../up", "a/b", "..", ".hidden", "", "a b"])
def test_unsafe_names_are_refused(tmp_path, name):
    with pytest.raises(FrameworkError, match="must be letters, digits"):
        runs.new_run_dir(tmp_path, name)


def test_an_output_dir_that_cannot_be_created(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(FrameworkError, match="cannot be created"):
        runs.new_run_dir(tmp_path / "file" / "results", "exp")
