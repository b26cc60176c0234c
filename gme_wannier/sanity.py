"""Checks around a run that protect finished work and flag meaningless settings.

* :func:`check_outputs`: every output path (``-o``, ``--csv``, ``--plot``, ``--w90-dat``,
  ``--table``, the folder of ``--checkpoint``) can be written, checked *before* the k loop by
  creating (and removing) the file, so that a typo does not throw away a night of compute.
* :func:`write_or_rescue`: the writes after the k loop; if one fails, the result is saved to a
  temporary file and the checkpoint is kept, and the error says how to recover.
* :func:`fermi_level_warning`: one line when Fermi levels lie outside the bands or in a gap.
"""

from __future__ import annotations

import os
import shlex
import stat
import tempfile
from typing import Callable, Optional, Sequence

import numpy as np

from .io.errors import GMEError, OptionError

__all__ = ["OutputError", "output_paths", "check_outputs", "write_or_rescue", "fermi_level_warning"]


class OutputError(GMEError):
    """An output file could not be written (after the computation)."""


def output_paths(o: dict, seed: str, command: str) -> list[tuple[str, str]]:
    """(option, path) of every file the command will write, the checkpoint folder last."""
    out: list[tuple[str, str]] = []
    if command == "run":
        out.append(("--output", o.get("output") or (os.path.basename(seed) + "-gme.json")))
        if o.get("w90_dat"):
            out += [("--w90-dat", f"{o['w90_dat']}-gme-K_{t}.dat") for t in ("orb", "spin")]
        for key in ("csv", "plot"):
            if o.get(key):
                out.append(("--" + key, o[key]))
    elif command == "screen":
        out.append(("--table", o.get("table") or "gme-screen.csv"))
    return out


def _check_one(option: str, path: str) -> None:
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OptionError(option, f"{path}: cannot be accessed ({exc.strerror})") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OptionError(option, f"{path} is a directory: give a file name")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OptionError(option, f"{path} is not a regular file (FIFO or device): give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OptionError(option, f"{path}: the folder {folder} does not exist: create it first")
    try:
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise OptionError(option, f"{path} cannot be written ({exc.strerror}): choose another path") from None
    if st is None:
        os.remove(path)


def _check_checkpoint(path: str) -> None:
    probe = f"{path}.write-test{os.getpid()}"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OptionError("--checkpoint", f"{path}: the folder {folder} does not exist: create it first")
    try:
        with open(probe, "wb"):
            pass
        os.remove(probe)
    except OSError as exc:
        raise OptionError("--checkpoint", f"{path}: checkpoint files cannot be written in {folder} "
                                          f"({exc.strerror}): choose another path") from None


def _check_distinct(paths: Sequence[tuple[str, str]], inputs: Sequence[str]) -> None:
    """No output is an input file, and no two outputs are the same file (one would overwrite the
    other, e.g. ``--csv`` the result JSON)."""
    given = {os.path.realpath(p): p for p in inputs if p}
    seen: dict = {}
    for option, path in paths:
        key = os.path.realpath(os.fspath(path))
        if key in given:
            raise OptionError(option, f"{path} is an input file ({given[key]}): writing it would destroy it; "
                                      "choose another name")
        if key in seen:
            raise OptionError(option, f"{path} is also the file of {seen[key]}: one would overwrite the other; "
                                      "give each output its own name")
        seen[key] = option


def check_outputs(paths: Sequence[tuple[str, str]], checkpoint: Optional[str], comm,
                  inputs: Sequence[str] = ()) -> None:
    """Collective: rank 0 checks that every output can be written, is not one of the ``inputs``
    (paths of the files read) and is not another output's file; every rank raises the same
    :class:`~gme_wannier.io.errors.OptionError` if not (before loading or computing)."""
    msg = None
    if comm.is_root:
        try:
            _check_distinct(paths, inputs)
            for option, path in paths:
                _check_one(option, path)
            if checkpoint:
                _check_checkpoint(checkpoint)
        except OptionError as exc:
            msg = (exc.option, exc.problem)
    msg = comm.bcast(msg)
    if msg is not None:
        raise OptionError(*msg)


def write_or_rescue(writes: Sequence[tuple[str, Callable[[], None]]], result_json: Callable[[], str],
                    checkpoint: Optional[str], argv: Sequence[str], comm) -> None:
    """Collective: run the ``(path, write)`` callables on rank 0; on the first failure save the
    result JSON to a temporary file and raise on every rank an :class:`OutputError` that names the
    file, the rescue copy, the kept checkpoint and the command that recovers the result."""
    msg = None
    if comm.is_root:
        for path, write in writes:
            try:
                write()
            except OSError as exc:
                msg = _rescue(path, exc, result_json, checkpoint, argv)
                break
    msg = comm.bcast(msg)
    if msg is not None:
        raise OutputError(msg)


def _rescue(path: str, exc: OSError, result_json: Callable[[], str], checkpoint: Optional[str],
            argv: Sequence[str]) -> str:
    why = exc.strerror or type(exc).__name__
    parts = [f"{path}: cannot be written ({why})"]
    try:
        fd, rescue = tempfile.mkstemp(prefix="gme-wannier-result-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            f.write(result_json())
        parts.append(f"the result JSON was saved to {rescue}")
    except OSError:
        pass
    cmd = shlex.join(["gme-wannier", *argv])
    if checkpoint:
        parts.append(f"the checkpoint {checkpoint} is kept: free space or fix the path and run '{cmd}' "
                     "again (it resumes from the finished checkpoint, no recomputation)")
    else:
        parts.append(f"fix the path and run '{cmd}' again (with --checkpoint PATH a finished sum is never lost)")
    return "; ".join(parts)


def fermi_level_warning(model, fermi_energies: Sequence[float], width: float, n: int = 8,
                        E: Optional[np.ndarray] = None) -> Optional[str]:
    """One-line warning when some Fermi levels have no Fermi surface, or None.

    The bands are sampled on an ``n``^3 Gamma-centred mesh (plus a margin of 5 smearing widths):
    levels below the lowest band, above the highest, or in a gap of the sampled bands give
    alpha = 0 there. A coarse mesh can miss a small pocket, so this is a warning, not an error.

    Parameters
    ----------
    model : TBModel
    fermi_energies : eV
    width : float  smearing width (eV; k_B T for Fermi-Dirac)
    E : float (nk, nw) eV, optional: band energies already computed (the run's band report uses
        them too, so that the warning and the summary agree); default: the ``n``^3 mesh.
    """
    from threadpoolctl import threadpool_limits

    from .bands import Interpolator
    from .kmesh import uniform_mesh

    ef = np.asarray(fermi_energies, dtype=float)
    if E is None:
        with threadpool_limits(limits=1):
            E = Interpolator(model, external=False, spin=False).energies(uniform_mesh((n, n, n)))
    E = np.asarray(E)
    lo, hi = float(E.min()), float(E.max())
    margin = 5 * width
    # per band, the sampled range; a level is covered if some band's range (+margin) holds it
    bmin, bmax = E.min(axis=0) - margin, E.max(axis=0) + margin
    covered = np.any((ef[:, None] >= bmin[None, :]) & (ef[:, None] <= bmax[None, :]), axis=1)
    if covered.all():
        return None
    bad = ef[~covered]
    where = []
    if np.any(bad < lo):
        where.append(f"{int(np.sum(bad < lo))} below the bands")
    if np.any(bad > hi):
        where.append(f"{int(np.sum(bad > hi))} above the bands")
    gap = int(np.sum((bad >= lo) & (bad <= hi)))
    if gap:
        where.append(f"{gap} in a band gap")
    shown = ", ".join(f"{x:g}" for x in bad[:5]) + (", ..." if bad.size > 5 else "")
    return (f"--efermi: {bad.size} of {ef.size} Fermi levels have no Fermi surface ({'; '.join(where)}; "
            f"bands span {lo:.3f}..{hi:.3f} eV): E_F = {shown} eV give alpha = 0")
