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
import signal
import sys
import threading
import time
import traceback as _traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np

if TYPE_CHECKING:
    from .checkpoint import Checkpoint
    from .progress import Progress

__all__ = ["SerialComm", "MPIComm", "Comm", "get_comm", "chunked_sum", "distributed_rows", "guard"]


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

    def all_arrive(self, timeout: float) -> bool:
        """True (the only rank has arrived)."""
        return True


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
        # private duplicate for the error-path barrier, so that it never matches a collective
        # of the computation (Dup is collective: done here, where every rank is)
        self._sync = comm.Dup()

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

    def all_arrive(self, timeout: float) -> bool:
        """Non-blocking barrier on a private communicator, given up after ``timeout`` s.

        True when every rank called it within the time (they all hit the same error), False
        otherwise (then the caller aborts the job).
        """
        req = self._sync.Ibarrier()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if req.Test():
                return True
            time.sleep(0.005)
        return False

    def abort(self, code: int = 1) -> None:
        """Terminate all ranks of the job (``MPI_Abort``); never returns.

        MPICH's ``MPI_Abort`` can return to the caller while the launcher tears the job
        down, so the process then exits at once (``os._exit``, no ``MPI_Finalize``).
        """
        sys.stdout.flush()
        sys.stderr.flush()
        # give the launcher time to forward the message: MPI_Abort tears the job down at once,
        # and a line still in the pipe to mpirun's proxy is lost (seen under load: exit code 2,
        # empty stderr)
        time.sleep(ABORT_GRACE)
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


SYNC_TIMEOUT = 10.0
ABORT_GRACE = 1.0  # seconds between the last message and MPI_Abort
"""Seconds the ranks wait for each other on an error raised on all ranks (see :func:`guard`)."""


@contextlib.contextmanager
def guard(comm: Comm, *, traceback: bool = False) -> Iterator[None]:
    """Make an error on one rank end the whole MPI job instead of hanging the others.

    Use as ``with guard(comm): ...`` or as a decorator ``@guard(comm)``. With one process the
    exception propagates unchanged. With ``comm.size > 1``:

    * Errors raised identically on every rank (attribute ``all_ranks = True``: every
      :class:`~gme_wannier.io.errors.GMEError` -- bad options and input files, checkpoint
      mismatches, an interruption by SIGTERM/SIGINT -- and ``KeyboardInterrupt``): the ranks
      meet in a non-blocking barrier (at most :data:`SYNC_TIMEOUT` s); rank 0 prints the one
      line ``gme-wannier: error: <message>`` and every rank exits with the error's
      ``exit_code`` (2; 143 SIGTERM, 130 SIGINT), so mpirun returns that code. If not every
      rank arrives in time, the error is handled as below.
    * Anything else prints ``gme-wannier: rank R: <ExceptionType>: <message>`` and calls
      ``MPI_Abort``, which kills every rank (exit code 1).

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
        interrupted = isinstance(exc, KeyboardInterrupt)
        code = 130 if interrupted else int(getattr(exc, "exit_code", 1))
        if (getattr(exc, "all_ranks", False) or interrupted) and comm.all_arrive(SYNC_TIMEOUT):
            if comm.is_root:
                what = str(exc) if str(exc) else "interrupted"
                print(f"gme-wannier: error: {what}", file=sys.stderr, flush=True)
            sys.stdout.flush()
            raise SystemExit(code) from None
        if traceback:
            _traceback.print_exc()
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        print(f"gme-wannier: rank {comm.rank}: {what}", file=sys.stderr, flush=True)
        comm.abort(code)
        raise  # only reached if abort returned (it does not)


@contextlib.contextmanager
def deferred_signals() -> Iterator[list[int]]:
    """Defer SIGTERM and SIGINT inside the k loop: the handler only records the signal (in the
    list yielded), and the loop stops at the end of the current chunk, so the partial sums in
    the checkpoint are always whole chunks. A second signal interrupts at once
    (``KeyboardInterrupt``). Outside the main thread nothing is changed."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def handler(signum, frame):  # noqa: ARG001
        caught.append(signum)
        if len(caught) > 1:
            raise KeyboardInterrupt

    old = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        prev = signal.getsignal(sig)
        if prev is not None:
            old[sig] = signal.signal(sig, handler)
    try:
        yield caught
    finally:
        for sig, prev in old.items():
            signal.signal(sig, prev)


def sigterm_as_error() -> Any:
    """Outside the k loop, make SIGTERM raise :class:`~gme_wannier.io.errors.Interrupted` (one
    error line, exit code 143) instead of killing the process without a word. Returns the
    previous handler, to restore with ``signal.signal(signal.SIGTERM, previous)``, or None
    when not in the main thread (nothing changed). Inside :func:`chunked_sum` the signal is
    deferred to the end of the chunk and the checkpoint saved (:func:`deferred_signals`)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):  # noqa: ARG001
        from .io.errors import Interrupted

        raise Interrupted(signum, "SIGTERM: terminated outside the k sum (while loading, checking or writing): "
                                  "nothing to resume from; run the command again")

    return signal.signal(signal.SIGTERM, handler)


def _interrupted(signum: int, checkpoint, progress, again: bool = False):
    """The error of a k loop stopped by ``signum``: after the chunk it was in (the checkpoint holds
    the finished chunks), or ``again``, at once by a second signal (inside a chunk, or while
    saving: the sums in memory are not saved, as they may hold part of a chunk; the checkpoint
    file keeps its last save, which was made between chunks, saves being atomic)."""
    from .io.errors import Interrupted

    name = signal.Signals(signum).name
    if progress is not None:
        progress.close()
    if checkpoint is None:
        return Interrupted(signum, f"--checkpoint: interrupted by {name}{' again' if again else ''} before the k sum "
                                   "finished; nothing was saved (give --checkpoint PATH to make a run resumable)")
    if again:
        return Interrupted(signum, f"{checkpoint.path}: interrupted by {name} again: stopped at once; the checkpoint "
                                   f"keeps the chunks of its last save (every {checkpoint.every_seconds:g} s): "
                                   "run the same command again to resume")
    return Interrupted(signum, f"{checkpoint.path}: interrupted by {name}; the checkpoint holds the "
                               "finished chunks: run the same command again to resume")


def distributed_rows(fn: Callable[[np.ndarray], np.ndarray], items: np.ndarray, comm: Comm | None = None,
                     block: int = 2000) -> np.ndarray:
    """``fn(items)`` with the rows dealt over the ranks in blocks; every rank gets the whole result.

    items : ndarray (n, ...); fn maps a block of rows to an array (len(block), ...) that does not
    depend on how the rows are grouped (e.g. band energies of k-points). Collective. The result
    is identical to the serial ``fn(items)`` up to the grouping of rows (bit-for-bit for
    row-independent functions).
    """
    comm = SerialComm() if comm is None else comm
    n = len(items)
    starts = list(range(0, n, block))
    mine = starts[comm.rank::comm.size]
    parts = [(s0, fn(items[s0:s0 + block])) for s0 in mine]
    if comm.size == 1:
        return np.concatenate([p for _, p in parts]) if parts else fn(items[:0])
    gathered = comm.bcast(comm.gather(parts))
    pieces = sorted((s0, p) for rank_parts in gathered for s0, p in rank_parts)
    return np.concatenate([p for _, p in pieces]) if pieces else fn(items[:0])


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
    items_per_chunk: Sequence[float] | None = None,
    close_progress: bool = True,
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
    items_per_chunk : sequence of float, optional
        k points per chunk for the progress rate; 1 per chunk if omitted. May be fractional (a
        pass repeated for g groups of a sum counts 1/g of its points per chunk).
    close_progress : bool
        Fill the bar up and close it at the end (default). False when the caller owns the bar,
        e.g. for several sums drawn on one bar: then the caller closes it.

    Returns
    -------
    dict[str, ndarray]
        The sums, identical on every rank.
    """
    comm = SerialComm() if comm is None else comm
    if n_chunks < 1:
        raise ValueError(f"n_chunks must be >= 1, got {n_chunks}")
    items = [1] * n_chunks if items_per_chunk is None else [float(n) for n in items_per_chunk]
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

    with deferred_signals() as caught:
        try:
            for c in mine:
                if caught:
                    break
                acc = _accumulate(acc, compute_chunk(c), c)
                if checkpoint is not None:
                    checkpoint.update(c, acc)
                if progress is not None and comm.is_root:
                    progress.advance(items[c] * scale)
            if checkpoint is not None:
                checkpoint.save()
            spec = None if acc is None else {k: (v.shape, v.dtype.str) for k, v in acc.items()}
            gathered = comm.bcast(comm.gather((spec, caught[0] if caught else 0))) or []
        except KeyboardInterrupt:
            raise _interrupted(caught[-1] if caught else signal.SIGINT, checkpoint,
                               progress if comm.is_root else None, again=True) from None
    stopped = [g[1] for g in gathered if g[1]]
    if stopped:
        raise _interrupted(stopped[0], checkpoint, progress if comm.is_root else None)
    specs = [g[0] for g in gathered if g[0] is not None]
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
    if progress is not None and comm.is_root and close_progress:
        if progress.count < progress.total:  # rank 0's share may end before the others'
            progress.count = progress.total
        progress.close()
    return result
