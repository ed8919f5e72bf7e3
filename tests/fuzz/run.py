"""``python tests/fuzz/run.py ...``: the same as ``python -m tests.fuzz ...``."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz.cli import main

if __name__ == "__main__":
    sys.exit(main())
