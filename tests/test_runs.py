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


def test_the_newest_run_is_resumed_even_before_its_first_checkpoint(tmp_path):
    assert runs.latest_run_dir(tmp_path, "exp") is None
    for number in (0, 1, 2, 3):
        (tmp_path / f"exp_{number}").mkdir()
    for number in (0, 1, 2):
        (tmp_path / f"exp_{number}" / "config.yaml").write_text("{}")
    (tmp_path / "exp_1" / "checkpoints").mkdir()
    # exp_2 was killed before it checkpointed: it is the run to continue; exp_3 holds no run of ours
    assert runs.latest_run_dir(tmp_path, "exp") == tmp_path / "exp_2"


@pytest.mark.parametrize("name", ["../up", "a/b", "..", ".hidden", "", "a b"])
def test_unsafe_names_are_refused(tmp_path, name):
    with pytest.raises(FrameworkError, match="must be letters, digits"):
        runs.new_run_dir(tmp_path, name)


def test_an_output_dir_that_cannot_be_created(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(FrameworkError, match="cannot be created"):
        runs.new_run_dir(tmp_path / "file" / "results", "exp")
