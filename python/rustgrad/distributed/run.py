"""``python -m rustgrad.distributed.run``: starts a data-parallel job, in the spirit of ``torchrun``,
through the MPI runtime's own launcher (``mpiexec``).

    python -m rustgrad.distributed.run --nproc-per-node 2 train.py --epochs 3
    python -m rustgrad.distributed.run --nproc-per-node 4 --hostfile hosts.txt train.py

With ``--hostfile`` (one host per line, as ``mpiexec`` reads it) the processes are spread over
the machines listed, ``--nproc-per-node`` on each; ``--nnodes`` says how many of them to use.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys


def _mpiexec() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = beside if os.path.exists(beside) else shutil.which("mpiexec")
    if found is None:
        raise SystemExit(
            "rustgrad.distributed.run: no mpiexec found; install an MPI runtime: pip install \"rustgrad[distributed]\""
        )
    return found


def command(argv: list[str]) -> list[str]:
    """The ``mpiexec`` command line that runs the job described by ``argv``."""
    parser = argparse.ArgumentParser(prog="python -m rustgrad.distributed.run", description=__doc__.split("\n")[0])
    parser.add_argument("--nproc-per-node", "--nproc_per_node", type=int, default=1,
                        help="processes per machine (default 1)")
    parser.add_argument("--nnodes", type=int, default=1, help="machines to use (with --hostfile)")
    parser.add_argument("--hostfile", default=None, help="a file listing the machines, one per line")
    parser.add_argument("-m", "--module", action="store_true", help="run the script argument as a module")
    parser.add_argument("script", help="the training script (or module, with -m)")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")
    ns = parser.parse_args(argv)
    if ns.nproc_per_node < 1 or ns.nnodes < 1:
        parser.error("--nproc-per-node and --nnodes must be at least 1")
    launch = [_mpiexec(), "-n", str(ns.nproc_per_node * ns.nnodes)]
    if ns.hostfile is not None:
        launch += ["-f", ns.hostfile, "-ppn", str(ns.nproc_per_node)]
    program = [sys.executable, "-m", ns.script] if ns.module else [sys.executable, ns.script]
    return launch + program + ns.args


def main(argv: list[str] | None = None) -> int:
    """Runs the job and returns its exit status."""
    return subprocess.call(command(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
