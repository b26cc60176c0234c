"""Checkpoints of a chunked sum: completed chunk indices plus the partial sums over them.

Each rank writes its own file ``<path>.rank<r>of<size>.npz`` (atomically: temporary file +
``os.replace``) holding the chunks it completed and their sum. On resume, with any number
of ranks, rank 0 reads every ``<path>.rank*of*.npz``, checks the fingerprint, merges them
(union of chunk sets, partial sums added once), immediately rewrites the merged state as
its own file and deletes the others, so files never double count. Files whose chunk set is
contained in an already merged one (left over by a crash during that rewrite) are skipped.

After a successful :func:`~gme_wannier.parallel.chunked_sum` the files are removed unless
``keep=True`` (then a rerun with the same fingerprint returns at once from the files).
Nothing is printed; :attr:`Checkpoint.n_resumed` tells rank 0 how many chunks were reused.
"""

from __future__ import annotations

import glob
import os
import re
import time
from typing import Any

import numpy as np

from .io.errors import GMEError

__all__ = ["Checkpoint", "CheckpointError", "CheckpointMismatch", "remove_checkpoint"]

_SUFFIX = re.compile(r"\.rank(\d+)of(\d+)\.npz$")


class CheckpointError(GMEError):
    """A checkpoint file that cannot be used (unreadable, truncated or inconsistent)."""


class CheckpointMismatch(CheckpointError):
    """A checkpoint file written for different inputs or options."""


class Checkpoint:
    """Periodic per-rank checkpoint of a chunked sum.

    Parameters
    ----------
    path : str or os.PathLike
        Base name; files are ``<path>.rank<r>of<size>.npz``.
    fingerprint : str
        Identifies the calculation (built by the caller from inputs and options that change
        the result); files with another fingerprint are refused with
        :class:`CheckpointMismatch`.
    every_seconds : float
        Minimum time between saves of a rank's file (0: after every chunk). A final save
        happens after the rank's last chunk.
    keep : bool
        Keep the files after a successful sum instead of removing them.
    """

    def __init__(self, path: str | os.PathLike[str], fingerprint: str,
                 every_seconds: float = 60.0, *, keep: bool = False) -> None:
        self.path = os.fspath(path)
        self.fingerprint = fingerprint
        self.every_seconds = float(every_seconds)
        self.keep = keep
        self.n_resumed = 0
        self._file: str | None = None
        self._n_chunks = 0
        self._done: set[int] = set()
        self._sums: dict[str, np.ndarray] | None = None
        self._last_save = 0.0
        self._dirty = False

    def files(self) -> list[str]:
        """Existing checkpoint files of this path (any rank count)."""
        return sorted(f for f in glob.glob(glob.escape(self.path) + ".rank*of*.npz")
                      if _SUFFIX.search(f))

    def _read(self, fname: str, n_chunks: int) -> tuple[set[int], dict[str, np.ndarray]]:
        try:
            with np.load(fname, allow_pickle=False) as data:
                fingerprint = str(data["fingerprint"])
                n_file = int(data["n_chunks"])
                done = {int(c) for c in data["done"]}
                sums = {str(k): data[f"sum{i}"] for i, k in enumerate(data["keys"])}
        except Exception as exc:  # noqa: BLE001 - zipfile.BadZipFile, EOFError, OSError, ...
            raise CheckpointError(f"{fname}: checkpoint file is corrupt or truncated "
                                  f"({type(exc).__name__}); delete it (the run restarts from zero) "
                                  "or choose another --checkpoint path") from None
        if (any(not np.all(np.isfinite(v)) for v in sums.values())
                or any(c < 0 or c >= n_file for c in done)):
            raise CheckpointError(f"{fname}: checkpoint file holds invalid data (NaN/Inf sums or "
                                  "chunk indices out of range); delete it or choose another --checkpoint path")
        if fingerprint != self.fingerprint or n_file != n_chunks:
            what = _differences(fingerprint, self.fingerprint)
            if n_file != n_chunks:
                what.append(f"{n_file} chunks, this run {n_chunks} chunks")
            raise CheckpointMismatch(
                f"{fname}: checkpoint file was made with different inputs/options "
                f"({'; '.join(what) or 'fingerprint differs'}); delete it or choose another "
                "checkpoint path")
        return done, sums

    def _merge(self, n_chunks: int) -> tuple[set[int], dict[str, np.ndarray] | None]:
        entries = [(f, *self._read(f, n_chunks)) for f in self.files()]
        entries.sort(key=lambda e: -len(e[1]))
        done: set[int] = set()
        sums: dict[str, np.ndarray] | None = None
        for fname, chunks, part in entries:
            if chunks <= done:
                continue  # stale: already contained in a merged file
            if chunks & done:
                raise CheckpointError(f"{fname}: checkpoint file overlaps the others in chunks "
                                      f"{sorted(chunks & done)[:5]}; delete the checkpoint files")
            done |= chunks
            sums = ({k: v.copy() for k, v in part.items()} if sums is None
                    else {k: sums[k] + part[k] for k in sums})
        return done, sums

    def load(self, comm: Any, n_chunks: int) -> tuple[set[int], dict[str, np.ndarray] | None]:
        """Collective: merge existing files on rank 0 and broadcast the completed chunks.

        Returns
        -------
        done : set of int
            Completed chunk indices (every rank).
        sums : dict[str, ndarray] or None
            Merged partial sums on rank 0 (``None`` if nothing to resume), ``None`` elsewhere.

        Raises
        ------
        CheckpointMismatch, CheckpointError
            On every rank (flagged ``all_ranks`` for :func:`~gme_wannier.parallel.guard`).
        """
        self._n_chunks = n_chunks
        self._file = f"{self.path}.rank{comm.rank}of{comm.size}.npz"
        self._done, self._sums, self._dirty = set(), None, False
        payload: Any = None
        if comm.is_root:
            try:
                done, sums = self._merge(n_chunks)
                if done:
                    self._done, self._sums = set(done), sums
                    self.save(force=True)
                    for fname in self.files():
                        if fname != self._file:
                            os.remove(fname)
                payload = done
            except Exception as exc:  # sent to every rank, raised everywhere below
                payload = exc
        payload = comm.bcast(payload)
        if isinstance(payload, BaseException):
            payload.all_ranks = True  # type: ignore[attr-defined]
            raise payload
        self.n_resumed = len(payload)
        self._last_save = time.monotonic()
        return set(payload), (self._sums if comm.is_root else None)

    def update(self, chunk: int, sums: dict[str, np.ndarray]) -> None:
        """Record that ``chunk`` is done and ``sums`` now includes it; save if due."""
        self._done.add(chunk)
        self._sums = sums
        self._dirty = True
        if time.monotonic() - self._last_save >= self.every_seconds:
            self.save()

    def save(self, force: bool = False) -> None:
        """Write this rank's file atomically if anything changed (or ``force``)."""
        if self._file is None or self._sums is None or not (self._dirty or force):
            return
        keys = list(self._sums)
        arrays = {f"sum{i}": self._sums[k] for i, k in enumerate(keys)}
        tmp = f"{self._file}.tmp{os.getpid()}"
        with open(tmp, "wb") as fh:
            np.savez(fh, fingerprint=np.str_(self.fingerprint), n_chunks=self._n_chunks,
                     done=np.array(sorted(self._done), dtype=np.int64),
                     keys=np.array(keys, dtype=str), **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._file)
        self._dirty = False
        self._last_save = time.monotonic()

    def remove(self) -> None:
        """Delete this rank's file (called on every rank after a successful sum)."""
        if self._file is not None and os.path.exists(self._file):
            os.remove(self._file)


def _differences(old: str, new: str, limit: int = 4) -> list[str]:
    """Which entries of two JSON fingerprints differ (dotted names), without dumping them."""
    import json

    try:
        a, b = json.loads(old), json.loads(new)
    except ValueError:
        return [] if old == new else [f"fingerprint {old[:40]!r}, this run {new[:40]!r}"]
    out: list[str] = []

    def walk(x, y, name):
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y)):
                walk(x.get(k), y.get(k), f"{name}.{k}" if name else str(k))
        elif x != y:
            out.append(name or "fingerprint")

    walk(a, b, "")
    names = out[:limit] + (["..."] if len(out) > limit else [])
    return [f"{', '.join(names)} differ" if len(out) > 1 else f"{names[0]} differs"] if out else []


def remove_checkpoint(path: str | os.PathLike[str]) -> list[str]:
    """Delete every file of the checkpoint ``path`` (all ranks' ``<path>.rank*of*.npz``, those of the
    moments pass of the symmetric tetrahedra, ``<path>.moments.rank*of*.npz``, of its groups of
    representatives, ``<path>.group*.rank*of*.npz``, and those of the meshes of an automatic
    convergence, ``<path>.mesh*.rank*of*.npz``).

    The command line calls this on rank 0 after all the outputs are written (the checkpoint is
    made with ``keep=True``), so that a failed write never loses the finished sum. Returns the
    paths removed.
    """
    files = Checkpoint(path, "").files() + Checkpoint(f"{os.fspath(path)}.moments", "").files()  # tetra_sym
    # the meshes of an automatic convergence (gme_wannier.convergence): <path>.mesh<N1xN2xN3>.rank*
    # and the groups of representatives of the symmetric tetrahedra: <path>.group<g>of<n>[.moments].rank*
    for tail in (".mesh*.rank*of*.npz", ".group*.rank*of*.npz"):
        files += sorted(f for f in glob.glob(glob.escape(os.fspath(path)) + tail) if _SUFFIX.search(f))
    for f in files:
        os.remove(f)
    return files
