"""`framework ...` for a process a launcher starts in a test: one CPU thread, then the real command line.
Commands separated by `::` run one after the other in the same processes (each process start costs seconds
of imports on a 2-core machine)."""
import sys

import torch

torch.set_num_threads(1)

from framework.cli import main  # noqa: E402 - after the thread setting

commands, current = [], []
for arg in sys.argv[1:] + ["::"]:
    if arg == "::":
        commands.append(current)
        current = []
    else:
        current.append(arg)
for command in commands:
    code = main(command)
    if code:
        sys.exit(code)
