"""Atomic writes: a reader sees the old content or the new, never half, even after a crash."""
import errno
import json
import os
import socket
import subprocess
import sys

import pytest
import safetensors.torch
import torch

from framework import atomic
from framework.errors import WriteError
from framework.models.weights import save_weights


def test_write_json_replaces_the_file(tmp_path):
    path = tmp_path / "sub" / "stats.json"
    atomic.write_json(path, {"a": 1})
    atomic.write_json(path, {"a": 2})
    assert path.read_text() == '{\n  "a": 2\n}\n'
    assert [p.name for p in path.parent.iterdir()] == ["stats.json"]  # no temporary files left


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "f.txt"
    atomic.write_text(path, "old")
    with pytest.raises(RuntimeError), atomic.atomic_path(path) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_atomic_dir_replaces_a_directory_whole(tmp_path):
    target = tmp_path / "checkpoint"
    with atomic.atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
        (tmp / "b").write_text("1")
    with atomic.atomic_dir(target) as tmp:
        (tmp / "a").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["a"] and (target / "a").read_text() == "2"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint"]


def test_a_failed_directory_write_keeps_the_old_directory(tmp_path):
    target = tmp_path / "checkpoint"
    with atomic.atomic_dir(target) as tmp:
        (tmp / "a").write_text("old")
    with pytest.raises(RuntimeError), atomic.atomic_dir(target) as tmp:
        (tmp / "a").write_text("new")
        raise RuntimeError("killed")
    assert (target / "a").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint"]


def test_recover_dir_restores_after_a_crash_between_the_renames(tmp_path):
    target = tmp_path / "checkpoint"
    old = tmp_path / ".checkpoint.old"
    old.mkdir()
    (old / "a").write_text("complete old copy")
    atomic.recover_dir(target)
    assert (target / "a").read_text() == "complete old copy" and not old.exists()


def test_a_full_disk_is_a_clear_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "stats.json"
    atomic.write_json(target, {"epoch": 1})

    def full_disk(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(type(target), "write_bytes", full_disk)
    with pytest.raises(WriteError, match="could not write .*stats.json.*No space left on device"):
        atomic.write_json(target, {"epoch": 2})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["stats.json"]  # no temp file left behind


def test_a_full_disk_while_saving_a_model_keeps_the_old_model(tmp_path, monkeypatch):
    with atomic.atomic_dir(tmp_path / "model") as tmp:
        (tmp / "weights").write_text("old")

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_model", full_disk)
    with pytest.raises(WriteError, match="No space left on device"):
        with atomic.atomic_dir(tmp_path / "model") as tmp:
            save_weights(torch.nn.Linear(1, 1), tmp / "weights.safetensors")
    assert (tmp_path / "model" / "weights").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_temporary_copies_left_by_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    host = socket.gethostname()
    left_behind = tmp_path / f".model.bin.{host}-{dead_pid}.abc123.tmp"
    left_behind.write_bytes(b"x" * 1000)
    live = tmp_path / f".model.bin.{host}-{os.getpid()}.def456.tmp"  # a write in progress in a live process
    live.write_bytes(b"y")
    atomic.write_text(tmp_path / "model.bin", "new")
    assert not left_behind.exists()
    assert live.exists()
    assert (tmp_path / "model.bin").read_text() == "new"
