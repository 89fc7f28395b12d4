"""`python -m framework ...` is the same as the `framework` command (launchers start modules this way)."""
import sys

from framework.cli import main

sys.exit(main())
