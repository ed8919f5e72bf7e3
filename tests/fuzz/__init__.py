"""Differential fuzzer for rustgrad: seeded random programs run under rustgrad and PyTorch.

Modules (imported as the package ``fuzz``, with ``tests/`` on ``sys.path``):

- ``program``: programs as data (statements over variables) and their rendering as Python source;
- ``interpreter``: runs a program against a module (``rustgrad`` or ``torch``) and summarizes outcomes;
- ``worker``: the child process loop (one library import, many programs);
- ``generator``: seeded random programs over rustgrad's public API (about 1 statement in 10 bad);
- ``runner``: worker pools, crash/hang handling, comparison, classification and shrinking;
- ``cli``: ``python -m tests.fuzz --programs N --seed S [--oracle-python PATH]``.

Nothing here imports rustgrad or torch at import time: only the worker processes do.
"""
