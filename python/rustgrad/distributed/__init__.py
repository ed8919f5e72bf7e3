"""``rustgrad.distributed``: PyTorch's ``torch.distributed`` API, on MPI through ``mpi4py``.

Install with ``pip install "rustgrad[distributed]"`` (``mpi4py`` and the ``mpich`` runtime wheel)
and launch with ``mpiexec -n N python prog.py`` or ``python -m rustgrad.distributed.run``.
Every rank of the MPI job is a rank of the default process group; ``backend="gloo"`` is accepted
as a name for the same MPI backend, so PyTorch programs run unchanged.

Collectives work in place on the tensors' own memory (no copies for contiguous tensors) and
``mpi4py`` releases the GIL while MPI communicates. A watchdog thread ends the whole job when
a collective outlasts the group's ``timeout``, and an exception that reaches the top of a rank
ends every rank with a message naming it (Note [Failing ranks]).
"""

from __future__ import annotations

import datetime
import enum
import os
import sys
from typing import Any

import numpy as np

from ._work import Work, _Watchdog

__all__ = [
    "Backend",
    "GroupMember",
    "ProcessGroup",
    "ReduceOp",
    "Work",
    "all_gather",
    "all_gather_into_tensor",
    "all_gather_object",
    "all_reduce",
    "barrier",
    "broadcast",
    "broadcast_object_list",
    "destroy_process_group",
    "gather",
    "get_backend",
    "get_rank",
    "get_world_size",
    "init_process_group",
    "irecv",
    "is_available",
    "is_gloo_available",
    "is_initialized",
    "is_mpi_available",
    "is_nccl_available",
    "is_torchelastic_launched",
    "isend",
    "new_group",
    "recv",
    "reduce",
    "reduce_scatter_tensor",
    "scatter",
    "send",
]


class RedOpType(enum.Enum):
    """The reduction of a collective (PyTorch prints them as ``RedOpType.SUM``)."""

    SUM = 0
    AVG = 1
    PRODUCT = 2
    MIN = 3
    MAX = 4
    BAND = 5
    BOR = 6
    BXOR = 7


class ReduceOp:
    """The reductions ``all_reduce``, ``reduce`` and ``reduce_scatter_tensor`` accept."""

    SUM = RedOpType.SUM
    AVG = RedOpType.AVG
    PRODUCT = RedOpType.PRODUCT
    MIN = RedOpType.MIN
    MAX = RedOpType.MAX
    BAND = RedOpType.BAND
    BOR = RedOpType.BOR
    BXOR = RedOpType.BXOR
    RedOpType = RedOpType


class Backend(str):
    """A backend name; ``Backend.MPI`` and ``Backend.GLOO`` both run on MPI here."""

    UNDEFINED = "undefined"
    GLOO = "gloo"
    NCCL = "nccl"
    MPI = "mpi"

    def __new__(cls, name: str) -> Backend:  # noqa: PYI034
        """The backend called ``name`` (lower-cased)."""
        return super().__new__(cls, name.lower())


class ProcessGroup:
    """A group of ranks with its own MPI communicator (``None`` on a rank outside it)."""

    def __init__(self, comm: Any, ranks: list[int], backend: str, timeout: datetime.timedelta) -> None:
        self._comm = comm
        self._ranks = ranks
        self._backend = backend
        self._timeout = timeout

    def rank(self) -> int:
        """This process's rank in the group."""
        return self._comm.Get_rank()

    def size(self) -> int:
        """The number of ranks in the group."""
        return len(self._ranks)

    def name(self) -> str:
        """The backend's name."""
        return self._backend

    def __repr__(self) -> str:
        return f"<rustgrad.distributed.ProcessGroup ranks={self._ranks} backend={self._backend}>"


class GroupMember:
    """``GroupMember.WORLD`` (the default group) and ``GroupMember.NON_GROUP_MEMBER``."""

    WORLD: ProcessGroup | None = None
    NON_GROUP_MEMBER = object()


_state: dict[str, Any] = {"world": None, "watchdog": None, "excepthook": None, "detail": False}
_NOT_INITIALIZED = "Default process group has not been initialized, please make sure to call init_process_group."
_DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)


def is_available() -> bool:
    """Whether distributed training can run: ``mpi4py`` (with an MPI runtime) imports."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def is_mpi_available() -> bool:
    """Whether the MPI backend is available (``mpi4py`` imports)."""
    return is_available()


def is_gloo_available() -> bool:
    """Whether ``backend="gloo"`` works: it names the MPI backend here."""
    return is_available()


def is_nccl_available() -> bool:
    """NCCL needs CUDA: never available here."""
    return False


def is_torchelastic_launched() -> bool:
    """Whether the process was started by ``torchrun`` (its ``TORCHELASTIC_RUN_ID`` is set)."""
    return os.getenv("TORCHELASTIC_RUN_ID") is not None


def is_initialized() -> bool:
    """Whether ``init_process_group`` has run (and ``destroy_process_group`` has not)."""
    return _state["world"] is not None


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise RuntimeError(
            "rustgrad.distributed needs mpi4py and an MPI runtime: pip install \"rustgrad[distributed]\""
        ) from e
    return MPI


def _backend_name(backend: str | None) -> str:
    if backend is None:
        return Backend.GLOO
    name = str(backend).lower().removeprefix("cpu:")
    if name in (Backend.GLOO, Backend.MPI):
        return name
    if name == Backend.NCCL or "cuda:" in name:
        raise RuntimeError("Distributed package doesn't have NCCL built in")
    raise ValueError(f"Invalid backend: '{backend}'")


def init_process_group(
    backend: str | None = None,
    init_method: str | None = None,
    timeout: datetime.timedelta | None = None,
    world_size: int = -1,
    rank: int = -1,
    store: Any = None,
    group_name: str = "",
    pg_options: Any = None,
    device_id: Any = None,
) -> None:
    """Joins the default process group: every rank of the MPI job (``mpiexec -n N``).

    ``world_size`` and ``rank``, if given, must be MPI's; ``init_method`` and ``store`` are
    accepted and unused (MPI's launcher already connected the ranks)."""
    if is_initialized():
        raise ValueError("trying to initialize the default process group twice!")
    name = _backend_name(backend)
    mpi = _mpi()
    comm = mpi.COMM_WORLD.Dup()
    if world_size not in (-1, comm.Get_size()):
        raise ValueError(
            f"world_size={world_size} does not match the MPI job's {comm.Get_size()} processes "
            "(start it with mpiexec -n <world_size>)"
        )
    if rank not in (-1, comm.Get_rank()):
        raise ValueError(f"rank={rank} does not match this process's MPI rank {comm.Get_rank()}")
    timeout = _DEFAULT_TIMEOUT if timeout is None else timeout
    world = ProcessGroup(comm, list(range(comm.Get_size())), name, timeout)
    _state["world"] = world
    GroupMember.WORLD = world
    _state["watchdog"] = _Watchdog(comm)
    _state["detail"] = os.environ.get("TORCH_DISTRIBUTED_DEBUG", "").upper() == "DETAIL"
    _install_excepthook(comm)


def destroy_process_group(group: ProcessGroup | None = None) -> None:
    """Leaves ``group`` (by default every group: the package returns to its initial state)."""
    world = _state["world"]
    if world is None:
        raise ValueError(_NOT_INITIALIZED)
    if group is not None and group is not world:
        if group is not GroupMember.NON_GROUP_MEMBER:
            group._comm.Free()
        return
    _state["watchdog"].stop()
    world._comm.Free()
    _state.update(world=None, watchdog=None)
    GroupMember.WORLD = None
    if _state["excepthook"] is not None:
        sys.excepthook = _state["excepthook"]
        _state["excepthook"] = None


def _world() -> ProcessGroup:
    world = _state["world"]
    if world is None:
        raise ValueError(_NOT_INITIALIZED)
    return world


def _group(group: Any) -> ProcessGroup | None:
    world = _world()
    if group is None or group is GroupMember.WORLD:
        return world
    if group is GroupMember.NON_GROUP_MEMBER:
        return None
    return group


def get_rank(group: ProcessGroup | None = None) -> int:
    """This process's rank in ``group`` (the default group if None); -1 outside it."""
    g = _group(group)
    return -1 if g is None else g.rank()


def get_world_size(group: ProcessGroup | None = None) -> int:
    """The number of ranks in ``group`` (the default group if None); -1 outside it."""
    g = _group(group)
    return -1 if g is None else g.size()


def get_backend(group: ProcessGroup | None = None) -> str:
    """The name the group's backend was asked for (``"gloo"`` or ``"mpi"``)."""
    g = _group(group)
    if g is None:
        raise ValueError("Invalid process group specified")
    return g.name()


def new_group(
    ranks: list[int] | None = None,
    timeout: datetime.timedelta | None = None,
    backend: str | None = None,
    pg_options: Any = None,
    use_local_synchronization: bool = False,
    group_desc: str | None = None,
    device_id: Any = None,
) -> Any:
    """A group of the given global ``ranks`` (all if None). Every rank of the default group must
    call it; a rank outside ``ranks`` gets ``GroupMember.NON_GROUP_MEMBER``."""
    world = _world()
    size = world.size()
    members = sorted(set(range(size) if ranks is None else ranks))
    for r in members:
        if not 0 <= r < size:
            raise ValueError(f"Invalid rank {r}: the default group has {size} ranks")
    mpi_group = world._comm.Get_group().Incl(members)
    comm = world._comm.Create(mpi_group)
    mpi_group.Free()
    if comm == _mpi().COMM_NULL:
        return GroupMember.NON_GROUP_MEMBER
    name = world.name() if backend is None else _backend_name(backend)
    return ProcessGroup(comm, members, name, world._timeout if timeout is None else timeout)


# ----------------------------------------------------------------------------- buffers


def _buffer(tensor: Any, what: str = "tensor") -> np.ndarray:
    """The tensor's own memory as a writable numpy array (collectives work in place)."""
    from .. import Tensor

    if not isinstance(tensor, Tensor):
        raise TypeError(f"{what} must be a Tensor, got {type(tensor).__name__}")
    if not tensor.is_contiguous():
        raise ValueError("Tensors must be contiguous")
    try:
        array = tensor.detach().numpy()
    except TypeError as e:
        raise TypeError(f"{what}: {e} has no MPI datatype") from e
    return array


def _written(tensor: Any) -> None:
    """Marks ``tensor`` as changed in place (its version counter), as PyTorch's collectives do."""
    from ..autograd.graph import increment_version

    increment_version(tensor)


def _mpi_op(op: Any) -> Any:
    mpi = _mpi()
    table = {
        RedOpType.SUM: mpi.SUM,
        RedOpType.AVG: mpi.SUM,
        RedOpType.PRODUCT: mpi.PROD,
        RedOpType.MIN: mpi.MIN,
        RedOpType.MAX: mpi.MAX,
        RedOpType.BAND: mpi.BAND,
        RedOpType.BOR: mpi.BOR,
        RedOpType.BXOR: mpi.BXOR,
    }
    if op not in table:
        raise ValueError(f"Unsupported reduction {op!r}")
    return table[op]


def _averaged(op: Any, array: np.ndarray, size: int) -> None:
    if op is RedOpType.AVG:
        if array.dtype.kind in "fc":
            array /= size
        else:
            np.floor_divide(array, size, out=array)


def _root(g: ProcessGroup, rank: int, what: str) -> int:
    """The group rank of global rank ``rank``."""
    try:
        return g._ranks.index(rank)
    except ValueError:
        raise ValueError(f"{what} rank {rank} is not part of the group") from None


def _check_same(g: ProcessGroup, name: str, array: np.ndarray) -> None:
    """With ``TORCH_DISTRIBUTED_DEBUG=DETAIL`` (read at ``init_process_group``), as in PyTorch:
    every rank first shares what it is about to run, and all raise the same ``RuntimeError`` when
    the collectives, shapes or dtypes differ (MPI itself would hang or read past a buffer)."""
    if not _state["detail"]:
        return
    mine = f"{name}(shape={list(array.shape)}, dtype={array.dtype})"
    every = g._comm.allgather(mine)
    for rank, theirs in enumerate(every):
        if theirs != every[0]:
            raise RuntimeError(
                f"Detected mismatch between collectives on ranks. Rank {g._ranks[0]} is running collective: "
                f"{every[0]}, but Rank {g._ranks[rank]} is running collective: {theirs}"
            )


def _run(g: ProcessGroup, call: str, args: tuple, finish: Any, async_op: bool, name: str, **kwargs: Any) -> Work | None:
    """Runs MPI's ``call`` on the group's communicator: blocking (under the group's timeout) and then
    ``finish()``, or with ``async_op`` its nonblocking form (``I`` + ``call``), returning the ``Work``
    whose ``wait()`` runs ``finish``. The blocking form is MPI's own, as fast as calling mpi4py."""
    watchdog = _state["watchdog"]
    if async_op:
        request = getattr(g._comm, "I" + call.lower())(*args, **kwargs)
        return Work(request, finish, name, g._timeout, watchdog)
    token = watchdog.watch(name, g._timeout)
    try:
        getattr(g._comm, call)(*args, **kwargs)
    finally:
        watchdog.done(token)
    finish()
    return None


# ----------------------------------------------------------------------------- collectives


def all_reduce(tensor: Any, op: Any = ReduceOp.SUM, group: Any = None, async_op: bool = False) -> Work | None:
    """Reduces ``tensor`` over every rank of ``group``, in place, on every rank."""
    g = _group(group)
    if g is None:
        return None
    array, mpi_op = _buffer(tensor), _mpi_op(op)
    _check_same(g, "all_reduce", array)

    def finish() -> None:
        _averaged(op, array, g.size())
        _written(tensor)

    return _run(g, "Allreduce", (_mpi().IN_PLACE, array, mpi_op), finish, async_op, "all_reduce")


def broadcast(tensor: Any, src: int | None = None, group: Any = None, async_op: bool = False,
              group_src: int | None = None) -> Work | None:
    """Copies ``tensor`` of rank ``src`` (a global rank) into ``tensor`` on every other rank."""
    g = _group(group)
    if g is None:
        return None
    root = group_src if group_src is not None else _root(g, 0 if src is None else src, "src")
    array = _buffer(tensor)
    _check_same(g, "broadcast", array)
    return _run(g, "Bcast", (array,), lambda: _written(tensor), async_op, "broadcast", root=root)


def reduce(tensor: Any, dst: int | None = None, op: Any = ReduceOp.SUM, group: Any = None,
           async_op: bool = False, group_dst: int | None = None) -> Work | None:
    """Reduces ``tensor`` over every rank into ``tensor`` of rank ``dst`` (the others keep theirs)."""
    g = _group(group)
    if g is None:
        return None
    root = group_dst if group_dst is not None else _root(g, 0 if dst is None else dst, "dst")
    array, mpi_op, mine = _buffer(tensor), _mpi_op(op), g.rank() == root
    _check_same(g, "reduce", array)
    mpi = _mpi()

    args = (mpi.IN_PLACE, array) if mine else (array, None)

    def finish() -> None:
        if mine:
            _averaged(op, array, g.size())
            _written(tensor)

    return _run(g, "Reduce", args, finish, async_op, "reduce", op=mpi_op, root=root)


def all_gather(tensor_list: list[Any], tensor: Any, group: Any = None, async_op: bool = False) -> Work | None:
    """Fills ``tensor_list[r]`` with ``tensor`` of rank ``r``, on every rank."""
    g = _group(group)
    if g is None:
        return None
    if len(tensor_list) != g.size():
        raise ValueError(
            f"all_gather: tensor_list has {len(tensor_list)} tensors, the group has {g.size()} ranks"
        )
    send = np.ascontiguousarray(_buffer(tensor))
    outs = [_buffer(t, "tensor_list") for t in tensor_list]
    for out in outs:
        if out.shape != send.shape or out.dtype != send.dtype:
            raise ValueError(
                f"all_gather: every tensor of tensor_list must have the input's shape {list(send.shape)} "
                f"and dtype, got {list(out.shape)} {out.dtype}"
            )
    _check_same(g, "all_gather", send)
    gathered = np.empty((g.size(),) + send.shape, dtype=send.dtype)

    def finish() -> None:
        for t, out, piece in zip(tensor_list, outs, gathered):
            out[...] = piece
            _written(t)

    return _run(g, "Allgather", (send, gathered), finish, async_op, "all_gather")


def all_gather_into_tensor(output_tensor: Any, input_tensor: Any, group: Any = None,
                           async_op: bool = False) -> Work | None:
    """Writes every rank's ``input_tensor``, in rank order, into ``output_tensor`` (its first
    dimension is the world size times the input's, or it has one more dimension of that size)."""
    g = _group(group)
    if g is None:
        return None
    send, out = _buffer(input_tensor, "input_tensor"), _buffer(output_tensor, "output_tensor")
    if out.size != send.size * g.size() or out.dtype != send.dtype:
        raise ValueError(
            f"output tensor size must be equal to world_size times input tensor size: output "
            f"{list(out.shape)}, input {list(send.shape)}, world_size {g.size()}"
        )
    _check_same(g, "all_gather_into_tensor", send)
    return _run(g, "Allgather", (send, out), lambda: _written(output_tensor), async_op, "all_gather_into_tensor")


def reduce_scatter_tensor(output: Any, input: Any, op: Any = ReduceOp.SUM, group: Any = None,
                          async_op: bool = False) -> Work | None:
    """Reduces ``input`` over every rank and gives rank ``r`` the ``r``-th equal part in ``output``."""
    g = _group(group)
    if g is None:
        return None
    send, out, mpi_op = _buffer(input, "input"), _buffer(output, "output"), _mpi_op(op)
    if send.size != out.size * g.size() or out.dtype != send.dtype:
        raise ValueError(
            f"input tensor size must be equal to world_size times output tensor size: input "
            f"{list(send.shape)}, output {list(out.shape)}, world_size {g.size()}"
        )

    _check_same(g, "reduce_scatter_tensor", send)

    def finish() -> None:
        _averaged(op, out, g.size())
        _written(output)

    return _run(g, "Reduce_scatter_block", (send, out), finish, async_op, "reduce_scatter_tensor", op=mpi_op)


def gather(tensor: Any, gather_list: list[Any] | None = None, dst: int | None = None, group: Any = None,
           async_op: bool = False, group_dst: int | None = None) -> Work | None:
    """Sends ``tensor`` to rank ``dst``, which receives every rank's in ``gather_list``."""
    g = _group(group)
    if g is None:
        return None
    root = group_dst if group_dst is not None else _root(g, 0 if dst is None else dst, "dst")
    send = np.ascontiguousarray(_buffer(tensor))
    mine = g.rank() == root
    if mine and (gather_list is None or len(gather_list) != g.size()):
        raise ValueError("Argument ``gather_list`` must be specified on destination rank.")
    if not mine and gather_list:
        raise ValueError("Argument ``gather_list`` must NOT be specified on non-destination ranks.")
    gathered = np.empty((g.size(),) + send.shape, dtype=send.dtype) if mine else None

    def finish() -> None:
        if gather_list is not None and gathered is not None:
            for t, piece in zip(gather_list, gathered):
                _buffer(t, "gather_list")[...] = piece
                _written(t)

    return _run(g, "Gather", (send, gathered), finish, async_op, "gather", root=root)


def scatter(tensor: Any, scatter_list: list[Any] | None = None, src: int | None = None, group: Any = None,
            async_op: bool = False, group_src: int | None = None) -> Work | None:
    """Rank ``src`` sends ``scatter_list[r]`` to rank ``r``, which receives it in ``tensor``."""
    g = _group(group)
    if g is None:
        return None
    root = group_src if group_src is not None else _root(g, 0 if src is None else src, "src")
    out = _buffer(tensor)
    mine = g.rank() == root
    if mine and (scatter_list is None or len(scatter_list) != g.size()):
        raise ValueError("Argument ``scatter_list`` must be specified on source rank.")
    if not mine and scatter_list:
        raise ValueError("Argument ``scatter_list`` must NOT be specified on non-source ranks.")
    send = np.stack([_buffer(t, "scatter_list") for t in scatter_list]) if scatter_list and mine else None
    return _run(g, "Scatter", (send, out), lambda: _written(tensor), async_op, "scatter", root=root)


def barrier(group: Any = None, async_op: bool = False, device_ids: Any = None) -> Work | None:
    """Waits until every rank of ``group`` has reached it."""
    g = _group(group)
    if g is None:
        return None
    return _run(g, "Barrier", (), lambda: None, async_op, "barrier")


# ----------------------------------------------------------------------------- point to point


def isend(tensor: Any, dst: int | None = None, group: Any = None, tag: int = 0,
          group_dst: int | None = None) -> Work | None:
    """Starts sending ``tensor`` to rank ``dst``; returns the ``Work`` to wait on."""
    g = _group(group)
    if g is None:
        return None
    peer = group_dst if group_dst is not None else _root(g, dst if dst is not None else -1, "dst")
    array = _buffer(tensor)
    return Work(g._comm.Isend(array, dest=peer, tag=tag), lambda: None, "send", g._timeout, _state["watchdog"])


def irecv(tensor: Any, src: int | None = None, group: Any = None, tag: int = 0,
          group_src: int | None = None) -> Work | None:
    """Starts receiving into ``tensor`` from rank ``src`` (any rank if None)."""
    g = _group(group)
    if g is None:
        return None
    mpi = _mpi()
    if group_src is not None:
        peer = group_src
    else:
        peer = mpi.ANY_SOURCE if src is None else _root(g, src, "src")
    array = _buffer(tensor)
    status = mpi.Status()
    return Work(g._comm.Irecv(array, source=peer, tag=tag), lambda: _written(tensor), "recv", g._timeout,
                _state["watchdog"], status=status, source_of=lambda: g._ranks[status.Get_source()])


def send(tensor: Any, dst: int | None = None, group: Any = None, tag: int = 0,
         group_dst: int | None = None) -> None:
    """Sends ``tensor`` to rank ``dst`` and waits until it is sent."""
    work = isend(tensor, dst, group, tag, group_dst)
    if work is not None:
        work.wait()


def recv(tensor: Any, src: int | None = None, group: Any = None, tag: int = 0,
         group_src: int | None = None) -> int:
    """Receives into ``tensor`` from rank ``src`` (any rank if None); returns the sender's rank."""
    work = irecv(tensor, src, group, tag, group_src)
    if work is None:
        return -1
    work.wait()
    return work._source()


# ----------------------------------------------------------------------------- objects


def broadcast_object_list(object_list: list[Any], src: int | None = None, group: Any = None,
                          device: Any = None, group_src: int | None = None) -> None:
    """Replaces ``object_list``'s items, on every rank, with rank ``src``'s (pickled)."""
    g = _group(group)
    if g is None:
        return
    root = group_src if group_src is not None else _root(g, 0 if src is None else src, "src")
    items = g._comm.bcast(list(object_list) if g.rank() == root else None, root=root)
    object_list[:] = items


def all_gather_object(object_list: list[Any], obj: Any, group: Any = None) -> None:
    """Fills ``object_list[r]`` with rank ``r``'s ``obj`` (pickled), on every rank."""
    g = _group(group)
    if g is None:
        return
    object_list[:] = g._comm.allgather(obj)


# ----------------------------------------------------------------------------- failures

# Note [Failing ranks]: an exception that reaches the top of one rank would leave the others
# waiting in their next collective forever. The hook installed by `init_process_group` prints
# the traceback with the rank's number, then aborts the MPI job, which ends every rank; the
# watchdog does the same for a collective that outlasts the group's timeout.


def _install_excepthook(comm: Any) -> None:
    previous = sys.excepthook
    _state["excepthook"] = previous

    def abort_job(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        rank = comm.Get_rank()
        sys.stderr.write(f"rustgrad.distributed: rank {rank} failed with an uncaught exception; "
                         "ending every rank of the job\n")
        previous(kind, value, tb)
        sys.stderr.flush()
        comm.Abort(1)

    sys.excepthook = abort_job

