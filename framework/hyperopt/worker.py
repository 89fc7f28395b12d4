"""One worker process of a parallel search: `python -m framework.hyperopt.worker TASK INDEX WORKERS`.

Workers are started as fresh interpreters rather than through multiprocessing, which would re-run
the user's main script in each one (an unguarded script would start a search per worker). TASK is
a pickle the search itself wrote into its own output directory: the objective and its share of
trials. A user error is written beside it as JSON for the parent to raise; a bug keeps its traceback.
"""
from __future__ import annotations

import contextlib
import json
import os
import pickle
import sys
from pathlib import Path
from typing import Iterator

EXIT_USER_ERROR = 2


def error_file(task: Path, index: int) -> Path:
    return task.with_name(f"{task.stem}.{index}.error.json")


@contextlib.contextmanager
def shared_cores(workers: int) -> Iterator[None]:
    """Torch's intra-op threads of this process, set to its share of the cores, restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, min(before, (os.cpu_count() or 1) // workers)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def main(argv: list[str]) -> int:
    from framework.errors import FrameworkError
    from framework.hyperopt.search import optimize

    task, index, workers = Path(argv[0]), int(argv[1]), int(argv[2])
    with open(task, "rb") as handle:
        storage_url, study_name, objective, shares = pickle.load(handle)
    try:
        with shared_cores(workers):
            optimize(storage_url, study_name, objective, shares[index], worker=index)
    except FrameworkError as error:
        error_file(task, index).write_text(json.dumps({"type": type(error).__name__, "message": str(error)}))
        return EXIT_USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
