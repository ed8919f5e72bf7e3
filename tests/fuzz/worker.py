"""The child process: imports the library once, then runs the programs the parent sends.

Run as ``python -m fuzz.worker --module rustgrad`` with ``tests/`` on ``PYTHONPATH``. The protocol
(length-prefixed pickles of plain data) goes over the process's original stdout; fd 1 itself is
pointed at stderr first, so anything the library prints cannot corrupt it. Messages to the parent:

- ``("ready", info)`` once the module is imported (``info`` has its version and public names);
- ``("start", program_id)`` before a program, so a crash or hang is tied to it;
- ``("stmt", program_id, index, outcome)`` after each statement;
- ``("final", program_id, tensors)`` and ``("done", program_id)`` at its end.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pickle
import struct
import sys
import warnings


def read_message(stream) -> object:
    """One length-prefixed pickle from a binary stream (``None`` at end of file)."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    (size,) = struct.unpack("<I", head)
    return pickle.loads(stream.read(size))


def write_message(stream, message: object) -> None:
    """Writes one length-prefixed pickle and flushes."""
    data = pickle.dumps(message, protocol=4)
    stream.write(struct.pack("<I", len(data)) + data)
    stream.flush()


def public_api(mod) -> dict:
    """The public names the fuzzer may call: module functions, ``Tensor`` methods, functional, autograd."""

    def names(path: str) -> list:
        obj = mod
        for part in path.split(".") if path else ():
            obj = getattr(obj, part, None)
        return sorted(n for n in dir(obj) if not n.startswith("_") or n in DUNDERS) if obj is not None else []

    return {
        "module": names(""),
        "Tensor": names("Tensor"),
        "nn.functional": names("nn.functional"),
        "autograd": names("autograd"),
    }


DUNDERS = ("__len__", "__iter__", "__contains__", "__index__", "__bool__", "__float__", "__int__")


def _limit_memory(gib: float) -> None:
    if gib <= 0:
        return
    try:
        import resource

        limit = int(gib * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass


def main(argv: list | None = None) -> None:
    """Worker entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--module", required=True, help="module to run programs against (rustgrad, torch)")
    parser.add_argument("--memory-gib", type=float, default=12.0, help="address-space limit (0: none)")
    opts = parser.parse_args(argv)

    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    proto_in = sys.stdin.buffer
    _limit_memory(opts.memory_gib)
    warnings.simplefilter("ignore")

    mod = importlib.import_module(opts.module)
    from .interpreter import Interpreter

    if hasattr(mod, "set_num_threads") and opts.module == "torch":
        mod.set_num_threads(1)
    info = {"module": opts.module, "version": str(getattr(mod, "__version__", "?")), "api": public_api(mod)}
    write_message(proto_out, ("ready", info))
    while True:
        request = read_message(proto_in)
        if request is None or request[0] == "exit":
            return
        _, program_id, stmts = request
        write_message(proto_out, ("start", program_id))
        interp = Interpreter(mod)

        def report(index: int, outcome: dict, pid=program_id) -> None:
            if index < 0:
                write_message(proto_out, ("final", pid, outcome["tensors"]))
            else:
                write_message(proto_out, ("stmt", pid, index, outcome))

        try:
            interp.run(stmts, report)
        except BaseException as e:  # noqa: BLE001 - an interpreter bug must not kill the worker silently
            write_message(proto_out, ("error", program_id, f"{type(e).__name__}: {e}"))
        del interp
        write_message(proto_out, ("done", program_id))


if __name__ == "__main__":
    main()
