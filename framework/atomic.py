"""Atomic writes: a reader sees the old file or the new one, never half of one.

Every file the framework writes (models, checkpoints, caches, statistics) goes through here, so a
process killed at any point leaves nothing that loads wrong. Temporary copies are named after their
host and process, so the next write to the same path removes those a killed process left behind
(a checkpoint's copy is as large as the model) without touching one that a live process is writing.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, Iterator

from framework.errors import WriteError


def _write_error(path: Path, error: OSError) -> WriteError:
    reason = error.strerror or str(error)
    return WriteError(f"could not write '{path}': {reason}; the previous version, if any, is unchanged")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some filesystems do not allow opening directories
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{socket.gethostname()}-{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def remove_stale_temps(path: Path) -> None:
    """Removes the temporary copies of `path` whose writer, a process on this host, no longer runs."""
    if os.name != "posix" or not path.parent.is_dir():  # os.kill(pid, 0) would end the process on Windows
        return
    owner = re.compile(rf"^{re.escape(f'.{path.name}.{socket.gethostname()}-')}(\d+)\.[^.]+\.tmp$")
    for sibling in path.parent.iterdir():
        found = owner.match(sibling.name)
        if found and not _alive(int(found.group(1))):
            if sibling.is_dir() and not sibling.is_symlink():
                shutil.rmtree(sibling, ignore_errors=True)
            else:
                sibling.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path`; on success it is fsynced and renamed onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    except OSError as error:
        raise _write_error(path, error) from error
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary directory; on success it replaces `path` as a whole.

    The old directory is moved aside before the new one is renamed in, and removed after, so at
    every instant either the complete old or the complete new directory exists under a known name.
    """
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(path)  # else the `.old` copy below, the only complete one after such a crash, is deleted
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        for child in [*tmp.rglob("*"), tmp]:
            if child.is_dir():
                _fsync_dir(child)  # its entries: the names of the files renamed in with it
            else:
                with open(child, "rb+") as handle:
                    os.fsync(handle.fileno())
        old = path.with_name(f".{path.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as error:
        raise _write_error(path, error) from error
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def recover_dir(path: str | os.PathLike) -> None:
    """Restores `path` from its `.old` copy if a crash hit between the two renames of atomic_dir,
    and removes the temporary copies that killed writers left beside it."""
    path = Path(path).absolute()
    if not path.name:  # the filesystem root has no sibling to recover from
        return
    old = path.with_name(f".{path.name}.old")
    if old.exists() and not path.exists():
        os.replace(old, path)
    remove_stale_temps(path)
