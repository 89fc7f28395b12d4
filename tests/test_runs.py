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


def test_resume_refuses_a_different_config_and_names_what_changed(tmp_path):
    first = runs.open_run(tmp_path, "exp", "trainer:\n  epochs: 3\n  progress_bar: true\n", resume=False)
    assert (first / "config.yaml").read_text().startswith("trainer:")
    # the progress bar does not change what is computed: resuming with it off continues the same run
    again = runs.open_run(tmp_path, "exp", "trainer:\n  epochs: 3\n  progress_bar: false\n", resume=True)
    assert again == first
    with pytest.raises(FrameworkError, match=r"trainer\.epochs \(3 in the run, 5 now\)"):
        runs.open_run(tmp_path, "exp", "trainer:\n  epochs: 5\n", resume=True)
    assert runs.open_run(tmp_path, "exp", "trainer:\n  epochs: 5\n", resume=False) == tmp_path / "exp_1"


def test_an_empty_run_directory_is_not_resumed(tmp_path):
    (tmp_path / "exp_0").mkdir()
    run_dir = runs.open_run(tmp_path, "exp", "seed: 1\n", resume=True)
    assert run_dir == tmp_path / "exp_1"  # exp_0 holds no run: a resume with nothing to resume starts a new one
    assert (run_dir / "config.yaml").read_text() == "seed: 1\n"
