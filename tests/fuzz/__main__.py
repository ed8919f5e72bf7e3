"""``python -m tests.fuzz``: see ``cli``. The package is imported as ``fuzz`` (``tests/`` on the path),
the name its worker processes use."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz.cli import main

sys.exit(main())
