"""MPI in one place: communicator wrappers, the chunked k-sum and the abort guard.

This is the only module of the package that imports :mod:`mpi4py`, and it does so lazily
inside :func:`get_comm`, so ``import gme_wannier`` never needs it. Library functions take
``comm`` as an explicit argument; :class:`SerialComm` is the stand-in with the same methods.

Typical driver::

    comm = get_comm()
    with guard(comm):
        sums = chunked_sum(n_chunks, compute_chunk, comm, checkpoint=ckpt, progress=bar)
        if comm.is_root:
            write(sums)
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback as _traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np

if TYPE_CHECKING:
    from .checkpoint import Checkpoint
    from .progress import Progress

__all__ = ["SerialComm", "MPIComm", "Comm", "get_comm", "chunked_sum", "guard"]


class SerialComm:
    """Single-process stand-in with the methods of :class:`MPIComm`."""

    rank = 0
    size = 1
    is_root = True

    def sum(self, array: np.ndarray) -> np.ndarray:
        """Return a copy of ``array`` (the sum over one rank)."""
        return np.array(array, copy=True)

    def bcast(self, obj: Any) -> Any:
        """Return ``obj``."""
        return obj

    def gather(self, obj: Any) -> list[Any]:
        """Return ``[obj]`` (the list on the root)."""
        return [obj]

    def barrier(self) -> None:
        """Do nothing."""

    def abort(self, code: int = 1) -> None:
        """Exit the process with ``code``."""
        raise SystemExit(code)


class MPIComm:
    """Thin wrapper of an ``mpi4py`` intracommunicator.

    Parameters
    ----------
    comm : mpi4py.MPI.Intracomm
        Usually ``MPI.COMM_WORLD``.
    """

    def __init__(self, comm: Any) -> None:
        from mpi4py import MPI

        self._MPI = MPI
        self.comm = comm
        self.rank: int = comm.Get_rank()
        self.size: int = comm.Get_size()
        self.is_root: bool = self.rank == 0

    def sum(self, array: np.ndarray) -> np.ndarray:
        """Allreduce-sum a numeric array (float64 / complex128); a new array on every rank."""
        send = np.asarray(array, order="C")
        recv = np.empty_like(send)
        self.comm.Allreduce(send, recv, op=self._MPI.SUM)
        return recv

    def bcast(self, obj: Any) -> Any:
        """Broadcast a picklable object from rank 0."""
        return self.comm.bcast(obj, root=0)

    def gather(self, obj: Any) -> list[Any] | None:
        """Gather picklable objects on rank 0 (list in rank order there, ``None`` elsewhere)."""
        return self.comm.gather(obj, root=0)

    def barrier(self) -> None:
        """Block until all ranks reach this call."""
        self.comm.Barrier()

    def abort(self, code: int = 1) -> None:
        """Terminate all ranks of the job (``MPI_Abort``); never returns.

        MPICH's ``MPI_Abort`` can return to the caller while the launcher tears the job
        down, so the process then exits at once (``os._exit``, no ``MPI_Finalize``).
        """
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(code)
        os._exit(code)


Comm = Union[SerialComm, MPIComm]

_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")
_FLAG_VARS = ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "MPI_LOCALRANKID")
_warned_fallback = False


def _launcher_size() -> int | None:
    """Process count announced by an MPI launcher; ``-1`` if launched with unknown count,
    ``None`` if no launcher variables are set."""
    for var in _SIZE_VARS:
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    if any(v in os.environ for v in _FLAG_VARS) or any(k.startswith("HYDRA_") for k in os.environ):
        return -1
    return None


def _fallback(reason: str) -> SerialComm:
    global _warned_fallback
    launched = _launcher_size()
    if launched is not None and launched != 1 and not _warned_fallback:
        _warned_fallback = True
        warnings.warn(
            f"started under mpirun but mpi4py is not usable ({reason}): running serially on "
            "every rank — install gme-wannier[mpi] or build mpi4py against your MPI",
            RuntimeWarning,
            stacklevel=3,
        )
    return SerialComm()


def get_comm(mode: str = "auto") -> Comm:
    """Return the communicator to pass to library functions.

    Parameters
    ----------
    mode : {"auto", "serial", "mpi"}
        ``"auto"``: ``MPI.COMM_WORLD`` if mpi4py imports and works, else :class:`SerialComm`;
        if the process was started by mpirun/mpiexec (``PMI_*``, ``OMPI_COMM_WORLD_*``,
        ``HYDRA_*``, ... variables) with more than one process and mpi4py is missing, broken,
        or reports a single process (mpi4py built against another MPI), one
        ``RuntimeWarning`` is issued. ``"serial"``: :class:`SerialComm` without touching
        mpi4py. ``"mpi"``: like ``"auto"`` but raise ``RuntimeError`` instead of falling back.

    Returns
    -------
    SerialComm or MPIComm
    """
    if mode == "serial":
        return SerialComm()
    if mode not in ("auto", "mpi"):
        raise ValueError(f"comm mode must be 'auto', 'serial' or 'mpi', not {mode!r}")
    try:
        from mpi4py import MPI

        world = MPI.COMM_WORLD
        size = world.Get_size()
    except Exception as exc:  # ImportError, or RuntimeError/OSError from a missing libmpi
        if mode == "mpi":
            raise RuntimeError(f"mpi4py is not usable: {type(exc).__name__}: {exc}") from exc
        return _fallback(f"{type(exc).__name__}: {exc}")
    launched = _launcher_size()
    if size == 1 and launched is not None and launched > 1:
        reason = f"MPI reports 1 process but the launcher started {launched}"
        if mode == "mpi":
            raise RuntimeError(f"mpi4py is not usable: {reason}")
        return _fallback(reason)
    return MPIComm(world)


@contextlib.contextmanager
def guard(comm: Comm, *, traceback: bool = False) -> Iterator[None]:
    """Make an error on one rank end the whole MPI job instead of hanging the others.

    Use as ``with guard(comm): ...`` or as a decorator ``@guard(comm)``. With ``comm.size > 1``
    an exception (also ``KeyboardInterrupt`` and ``SystemExit`` with a non-zero code) prints
    ``gme-wannier: rank R: <ExceptionType>: <message>`` to stderr and calls ``MPI_Abort``,
    which kills every rank (exit code 1, 130 for Ctrl-C). Exceptions flagged as raised
    identically on all ranks (attribute ``all_ranks = True``, e.g. a checkpoint mismatch) are
    printed by rank 0 only. With one process the exception propagates unchanged.

    Parameters
    ----------
    comm : SerialComm or MPIComm
    traceback : bool
        Also print the traceback before aborting.
    """
    try:
        yield
    except SystemExit as exc:
        if comm.size == 1 or exc.code in (None, 0):
            raise
        sys.stderr.flush()
        comm.abort(exc.code if isinstance(exc.code, int) else 1)
    except BaseException as exc:
        if comm.size == 1:
            raise
        if getattr(exc, "all_ranks", False) and not comm.is_root:
            comm.barrier()  # never completes: rank 0 raised the same error and aborts
        if traceback:
            _traceback.print_exc()
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        print(f"gme-wannier: rank {comm.rank}: {what}", file=sys.stderr, flush=True)
        comm.abort(130 if isinstance(exc, KeyboardInterrupt) else 1)
        raise  # only reached if abort returned (it does not)


def _as_float(array: np.ndarray) -> np.ndarray:
    """Owned float64 / complex128 copy of a chunk result."""
    array = np.asarray(array)
    return np.array(array, dtype=np.result_type(array.dtype, np.float64), copy=True)


def _accumulate(acc: dict[str, np.ndarray] | None, part: dict[str, np.ndarray],
                chunk: int) -> dict[str, np.ndarray]:
    if acc is None:
        return {k: _as_float(v) for k, v in part.items()}
    if set(part) != set(acc):
        raise ValueError(f"chunk {chunk} returned keys {sorted(part)}, expected {sorted(acc)}")
    for key, value in part.items():
        value = np.asarray(value)
        if value.shape != acc[key].shape:
            raise ValueError(f"chunk {chunk} returned {key!r} with shape {value.shape}, "
                             f"expected {acc[key].shape}")
        if np.result_type(acc[key], value) != acc[key].dtype:
            acc[key] = acc[key].astype(np.result_type(acc[key], value))
        acc[key] += value
    return acc


def chunked_sum(
    n_chunks: int,
    compute_chunk: Callable[[int], dict[str, np.ndarray]],
    comm: Comm | None = None,
    *,
    checkpoint: Checkpoint | None = None,
    progress: Progress | None = None,
    items_per_chunk: Sequence[int] | None = None,
) -> dict[str, np.ndarray]:
    """Sum ``compute_chunk(c)`` over ``c in range(n_chunks)``, distributed over the ranks.

    The chunks still missing (all of them, or those not in the checkpoint) are dealt
    round-robin over the ranks in index order, so any ``n_chunks`` works, also fewer than
    ranks. Each rank adds its chunk results in chunk order (float64 / complex128), then one
    allreduce per key combines the ranks; the result agrees between rank counts to rounding
    (~1e-15 relative) and is reproducible for a fixed rank count. Key names, shapes and
    dtypes are exchanged once after the loop (a gather + bcast of small descriptors), so a
    rank without chunks contributes zeros and no template is needed.

    Parameters
    ----------
    n_chunks : int
        Number of chunks, ``>= 1``.
    compute_chunk : callable ``(int) -> dict[str, ndarray]``
        Result of one chunk; the same keys and shapes for every chunk.
    comm : SerialComm or MPIComm, optional
        Defaults to :class:`SerialComm`. Collective: every rank must call.
    checkpoint : Checkpoint, optional
        Resume from earlier partial sums and save new ones (see :mod:`.checkpoint`).
    progress : Progress, optional
        Driven on rank 0 only. Rank 0 only sees its own chunks, so its fraction done stands
        for the global one (items scaled by the ratio of all missing items to its own).
    items_per_chunk : sequence of int, optional
        k points per chunk for the progress rate; 1 per chunk if omitted.

    Returns
    -------
    dict[str, ndarray]
        The sums, identical on every rank.
    """
    comm = SerialComm() if comm is None else comm
    if n_chunks < 1:
        raise ValueError(f"n_chunks must be >= 1, got {n_chunks}")
    items = [1] * n_chunks if items_per_chunk is None else [int(n) for n in items_per_chunk]
    if len(items) != n_chunks:
        raise ValueError(f"items_per_chunk has {len(items)} entries for {n_chunks} chunks")

    done: set[int] = set()
    acc: dict[str, np.ndarray] | None = None
    if checkpoint is not None:
        done, acc = checkpoint.load(comm, n_chunks)  # acc is not None on rank 0 only
    missing = [c for c in range(n_chunks) if c not in done]
    mine = missing[comm.rank::comm.size]

    scale = 0.0
    if progress is not None and comm.is_root:
        progress.skip(sum(items[c] for c in done))
        my_items = sum(items[c] for c in mine)
        scale = sum(items[c] for c in missing) / my_items if my_items else 0.0

    for c in mine:
        acc = _accumulate(acc, compute_chunk(c), c)
        if checkpoint is not None:
            checkpoint.update(c, acc)
        if progress is not None and comm.is_root:
            progress.advance(items[c] * scale)
    if checkpoint is not None:
        checkpoint.save()

    spec = None if acc is None else {k: (v.shape, v.dtype.str) for k, v in acc.items()}
    specs = [s for s in (comm.bcast(comm.gather(spec)) or []) if s is not None]
    first = specs[0]
    for s in specs[1:]:
        if set(s) != set(first) or any(s[k][0] != first[k][0] for k in first):
            err = ValueError(f"ranks computed different result keys/shapes: {specs}")
            err.all_ranks = True  # type: ignore[attr-defined]
            raise err
    result = {}
    for key in sorted(first):
        dtype = np.result_type(*(np.dtype(s[key][1]) for s in specs))
        local = np.zeros(first[key][0], dtype) if acc is None else acc[key].astype(dtype)
        result[key] = comm.sum(local)

    if checkpoint is not None and not checkpoint.keep:
        checkpoint.remove()
    if progress is not None and comm.is_root:
        if progress.count < progress.total:  # rank 0's share may end before the others'
            progress.count = progress.total
        progress.close()
    return result
