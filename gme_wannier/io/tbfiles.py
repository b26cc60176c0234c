"""Readers and writers of Wannier90's formatted real-space files.

``SEED_hr.dat``, ``SEED_tb.dat``, ``SEED_wsvec.dat``, ``SEED_centres.xyz`` (optionally gzipped).
Plain data in, plain data out; the Wigner-Seitz expansion (``apply_wsvec``) is index
book-keeping, no physics.

WannierBerri has line-by-line readers of ``_hr.dat``/``_tb.dat`` without ``_wsvec.dat``
support or error reporting; these numpy readers parse the numbers in one pass (SrSi2's 20 MB
``_tb.dat.gz`` in a few seconds, see docs/performance.md) and name the file and the problem
when something is wrong.
"""

from __future__ import annotations

import gzip
import io
import os
from dataclasses import dataclass
from typing import IO, Optional, Union

import numpy as np

from .errors import InputFileError, check_input_file, decode_text

PathOrStream = Union[str, os.PathLike, IO[str]]


def _read_text(source: PathOrStream, path: Optional[str] = None) -> tuple[str, str]:
    if isinstance(source, (str, os.PathLike)):
        path = str(source)
        check_input_file(path)
        try:
            if path.endswith(".gz"):
                with gzip.open(path, "rb") as f:
                    return decode_text(f.read(), path), path
            with open(path, "rb") as f:
                return decode_text(f.read(), path), path
        except (OSError, EOFError) as exc:
            raise InputFileError(path, f"cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    return source.read(), path or "<stream>"


def _check_finite(path: str, what: str, *arrays) -> None:
    for a in arrays:
        if a is not None and not np.all(np.isfinite(a)):
            n = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
            raise InputFileError(path, f"{what}: {n} entries are NaN or infinite: the file is corrupt "
                                       "(regenerate it with Wannier90)")


def _numbers(text: str, path: str, what: str) -> np.ndarray:
    tokens = text.split()
    try:
        return np.array(tokens, dtype=float)
    except ValueError:
        bad = next(x for x in tokens if not _isfloat(x))
        raise InputFileError(path, f"{what}: non-numeric entry '{bad}'") from None


def _isfloat(x: str) -> bool:
    try:
        float(x)
        return True
    except ValueError:
        return False


def _header_ints(lines: list[str], start: int, path: str) -> tuple[int, int, np.ndarray, int]:
    """num_wann, nrpts, ndegen and the index of the first line after ndegen."""
    try:
        num_wann = int(lines[start].split()[0])
        nrpts = int(lines[start + 1].split()[0])
    except (IndexError, ValueError):
        raise InputFileError(path, "truncated or malformed header (expected num_wann and nrpts)") from None
    if num_wann <= 0 or nrpts <= 0:
        raise InputFileError(path, f"num_wann={num_wann} and nrpts={nrpts} must be positive")
    ndeg: list[int] = []
    i = start + 2
    while len(ndeg) < nrpts:
        if i >= len(lines):
            raise InputFileError(path, "truncated in the list of Wigner-Seitz degeneracies")
        try:
            ndeg += [int(x) for x in lines[i].split()]
        except ValueError:
            raise InputFileError(path, f"line {i + 1}: expected integer degeneracies ({len(ndeg)} of nrpts = {nrpts} "
                                       f"read; is nrpts on line {start + 2} right?)") from None
        i += 1
    if len(ndeg) != nrpts:
        raise InputFileError(path, f"expected {nrpts} degeneracies, found {len(ndeg)}")
    ndegen = np.array(ndeg, dtype=int)
    if np.any(ndegen <= 0):
        raise InputFileError(path, "Wigner-Seitz degeneracies must be positive")
    return num_wann, nrpts, ndegen, i


@dataclass
class RealSpaceData:
    """Matrices as in the file (convention II), already divided by the degeneracies.

    iRvec : int (nR, 3); H_R : complex (nR, nw, nw) eV; r_R : complex (nR, nw, nw, 3)
    Angstrom or None; real_lattice : (3, 3) Angstrom or None (hr.dat has none).
    """

    path: str
    iRvec: np.ndarray
    H_R: np.ndarray
    r_R: Optional[np.ndarray] = None
    real_lattice: Optional[np.ndarray] = None
    ndegen: Optional[np.ndarray] = None  # int (nR,), the Wigner-Seitz degeneracies of the file

    @property
    def num_wann(self) -> int:
        """Number of Wannier functions."""
        return self.H_R.shape[1]


def read_hr(source: PathOrStream, path: Optional[str] = None) -> RealSpaceData:
    """Read ``SEED_hr.dat``."""
    text, path = _read_text(source, path)
    lines = text.split("\n")
    num_wann, nrpts, ndegen, i0 = _header_ints(lines, 1, path)
    nw2 = num_wann * num_wann
    vals = _numbers("\n".join(lines[i0:]), path, "Hamiltonian block")
    expected = nrpts * nw2 * 7
    if vals.size != expected:
        raise InputFileError(path, f"truncated or inconsistent: expected {nrpts}x{num_wann}^2 lines of 7 numbers "
                                   f"({expected} numbers), found {vals.size}")
    vals = vals.reshape(nrpts, num_wann, num_wann, 7)  # [R][n][m][...], m fastest
    iRvec = vals[:, 0, 0, :3].astype(int)
    if not np.all(vals[:, :, :, :3] == iRvec[:, None, None, :]):
        raise InputFileError(path, "R vectors change inside one block: the file is corrupt")
    m_idx, n_idx = vals[0, :, :, 3].astype(int), vals[0, :, :, 4].astype(int)
    if not (np.all(m_idx == np.arange(1, num_wann + 1)[None, :]) and np.all(n_idx == np.arange(1, num_wann + 1)[:, None])):
        raise InputFileError(path, "orbital indices are not in Wannier90 order")
    _check_finite(path, "Hamiltonian block", vals)
    H = (vals[..., 5] + 1j * vals[..., 6]).transpose(0, 2, 1) / ndegen[:, None, None]
    return RealSpaceData(path=path, iRvec=iRvec, H_R=H, ndegen=ndegen)


def read_tb(source: PathOrStream, path: Optional[str] = None) -> RealSpaceData:
    """Read ``SEED_tb.dat`` (lattice, H(R) and position matrices r(R))."""
    text, path = _read_text(source, path)
    lines = text.split("\n")
    try:
        lat = np.array([[float(x) for x in lines[k].split()[:3]] for k in (1, 2, 3)])
    except (IndexError, ValueError):
        raise InputFileError(path, "truncated or malformed lattice vectors (lines 2-4)") from None
    if lat.shape != (3, 3):
        raise InputFileError(path, "malformed lattice vectors (lines 2-4)")
    num_wann, nrpts, ndegen, i0 = _header_ints(lines, 4, path)
    nw2 = num_wann * num_wann
    vals = _numbers("\n".join(lines[i0:]), path, "matrix blocks")
    nH = nrpts * (3 + nw2 * 4)
    nr = nrpts * (3 + nw2 * 8)
    if vals.size not in (nH, nH + nr):
        raise InputFileError(path, f"truncated or inconsistent: expected {nH + nr} numbers for "
                                   f"num_wann={num_wann}, nrpts={nrpts}, found {vals.size}")
    _check_finite(path, "lattice vectors", lat)
    _check_finite(path, "matrix blocks", vals)
    hb = vals[:nH].reshape(nrpts, 3 + nw2 * 4)
    iRvec = hb[:, :3].astype(int)
    h = hb[:, 3:].reshape(nrpts, num_wann, num_wann, 4)  # [R][n][m][m n re im]
    H = (h[..., 2] + 1j * h[..., 3]).transpose(0, 2, 1) / ndegen[:, None, None]
    r_R = None
    if vals.size == nH + nr:
        rb = vals[nH:].reshape(nrpts, 3 + nw2 * 8)
        if not np.array_equal(rb[:, :3].astype(int), iRvec):
            raise InputFileError(path, "R vectors of the position block differ from the Hamiltonian block")
        r = rb[:, 3:].reshape(nrpts, num_wann, num_wann, 8)
        r_R = (r[..., 2:8:2] + 1j * r[..., 3:8:2]).transpose(0, 2, 1, 3) / ndegen[:, None, None, None]
    return RealSpaceData(path=path, iRvec=iRvec, H_R=H, r_R=r_R, real_lattice=lat, ndegen=ndegen)


def read_wsvec(source: PathOrStream, num_wann: int, path: Optional[str] = None) -> Optional[dict]:
    """Read ``SEED_wsvec.dat``.

    Returns None if the file says ``use_ws_distance=.false.``, else a dict of flat arrays
    (one row per shift): ``R`` int (E, 3), ``m``, ``n`` int (E,) 0-based, ``T`` int (E, 3)
    shift in lattice units, ``ndeg`` int (E,) number of shifts of that (R, m, n).
    """
    text, path = _read_text(source, path)
    first, _, rest = text.partition("\n")
    if "use_ws_distance=.false." in first.replace(" ", "").lower():
        return None
    vals = _numbers(rest, path, "shift list").astype(int)
    rows_R = []  # (start in vals, number of shifts) of each (R, m, n) record
    i, size = 0, vals.size
    try:
        while i < size:
            nd = int(vals[i + 5])
            if nd <= 0 or i + 6 + 3 * nd > size:
                raise IndexError
            rows_R.append((i, nd))
            i += 6 + 3 * nd
    except IndexError:
        raise InputFileError(path, "truncated or malformed") from None
    starts = np.array([r[0] for r in rows_R], dtype=int)
    nds = np.array([r[1] for r in rows_R], dtype=int)
    head = vals[starts[:, None] + np.arange(5)[None, :]]
    rep = np.repeat(np.arange(len(starts)), nds)
    offs = np.arange(rep.size) - np.repeat(np.cumsum(nds) - nds, nds)
    tpos = starts[rep] + 6 + 3 * offs
    T = vals[tpos[:, None] + np.arange(3)[None, :]]
    m, n = head[rep, 3] - 1, head[rep, 4] - 1
    if m.size and (m.min() < 0 or n.min() < 0 or m.max() >= num_wann or n.max() >= num_wann):
        raise InputFileError(path, f"orbital indices exceed num_wann={num_wann}")
    return {"R": head[rep, :3], "m": m, "n": n, "T": T, "ndeg": nds[rep]}


def apply_wsvec(iRvec: np.ndarray, mats: list, wsvec: Optional[dict], path: str = "wsvec") -> tuple[np.ndarray, list]:
    """Spread each matrix element X_mn(R) over R + T_i with weight 1/ndeg (MDRS, Wannier90's
    ``use_ws_distance``). ``mats``: arrays (nR, nw, nw, ...). Returns the new R list and matrices."""
    if wsvec is None:
        return iRvec, mats
    nw = mats[0].shape[1]
    index = {tuple(R): i for i, R in enumerate(iRvec.tolist())}
    try:
        ir = np.array([index[tuple(R)] for R in wsvec["R"].tolist()], dtype=int)
    except KeyError as exc:
        raise InputFileError(path, f"R vector {exc.args[0]} is not in the Hamiltonian file") from None
    covered = np.zeros((len(iRvec), nw, nw), dtype=bool)
    covered[ir, wsvec["m"], wsvec["n"]] = True
    # elements without an entry keep their R with weight 1
    r0, m0, n0 = np.nonzero(~covered)
    src_ir = np.concatenate([ir, r0])
    src_m = np.concatenate([wsvec["m"], m0])
    src_n = np.concatenate([wsvec["n"], n0])
    newvec = np.concatenate([iRvec[ir] + wsvec["T"], iRvec[r0]])
    weight = np.concatenate([1.0 / wsvec["ndeg"], np.ones(r0.size)])
    return place_matrices(mats, src_ir, src_m, src_n, newvec, weight)


def place_matrices(mats: list, src: np.ndarray, m: np.ndarray, n: np.ndarray, newvec: np.ndarray,
           weight: np.ndarray) -> tuple[np.ndarray, list]:
    """Put weight * X[src, m, n] at the lattice vectors newvec (one row per placement; rows
    with the same vector add up). Returns the new R list and the new matrices."""
    iR_new, where = np.unique(newvec, axis=0, return_inverse=True)
    where = where.reshape(-1)
    out = []
    for X in mats:
        Y = np.zeros((len(iR_new),) + X.shape[1:], dtype=complex)
        np.add.at(Y, (where, m, n), X[src, m, n] * weight.reshape((-1,) + (1,) * (X.ndim - 3)))
        out.append(Y)
    return iR_new, out


def read_centres(source: PathOrStream, num_wann: int, path: Optional[str] = None) -> np.ndarray:
    """Wannier centres (Angstrom, Cartesian) from ``SEED_centres.xyz``: the first num_wann 'X' lines."""
    text, path = _read_text(source, path)
    rows = [ln.split() for ln in text.split("\n")[2:] if ln.strip().startswith("X")]
    if len(rows) != num_wann:
        raise InputFileError(path, f"{len(rows)} Wannier centres ('X' lines) but the model has num_wann = "
                                   f"{num_wann}: this centres file belongs to another calculation")
    try:
        c = np.array([[float(x) for x in r[1:4]] for r in rows])
    except (ValueError, IndexError):
        raise InputFileError(path, "malformed centre coordinates") from None
    if c.shape != (num_wann, 3):
        raise InputFileError(path, "malformed centre coordinates (expected 'X x y z')")
    _check_finite(path, "centres", c)
    return c


def format_hr(H_R: np.ndarray, iRvec: np.ndarray, header: str = "written by gme_wannier") -> str:
    """Text of a ``SEED_hr.dat`` with all degeneracies 1 (H_R in eV, shape (nR, nw, nw))."""
    nR, nw, _ = H_R.shape
    out = io.StringIO()
    out.write(header.strip() + "\n")
    out.write(f"{nw:12d}\n{nR:12d}\n")
    for i in range(0, nR, 15):
        out.write("".join(f"{1:5d}" for _ in range(min(15, nR - i))) + "\n")
    for ir in range(nR):
        R = iRvec[ir]
        for n in range(nw):
            for m in range(nw):
                h = H_R[ir, m, n]
                out.write(f"{R[0]:5d}{R[1]:5d}{R[2]:5d}{m + 1:5d}{n + 1:5d}{h.real:20.12f}{h.imag:20.12f}\n")
    return out.getvalue()


def format_centres(centres_cart: np.ndarray, symbols: list, positions_cart: np.ndarray) -> str:
    """Text of a ``SEED_centres.xyz``."""
    lines = [f"{len(centres_cart) + len(symbols)}", "Wannier centres, written by gme_wannier"]
    lines += [f"X {c[0]:18.10f}{c[1]:18.10f}{c[2]:18.10f}" for c in centres_cart]
    lines += [f"{s:2s}{p[0]:18.10f}{p[1]:18.10f}{p[2]:18.10f}" for s, p in zip(symbols, positions_cart)]
    return "\n".join(lines) + "\n"


def fold_consistency(iRvec: np.ndarray, ndegen: Optional[np.ndarray], mp_grid) -> Optional[str]:
    """Whether the R list of a file is a Wigner-Seitz supercell of ``mp_grid``.

    :func:`mdrs_fold` sums each residue class of R modulo mp_grid; that reproduces the model
    only when, in every class present, the weights 1/ndegen(R) add up to one (each Fourier
    coefficient is shared out once among its images). A hand-written model, or an ``mp_grid``
    that is not the one of the file, breaks this and the fold would change the Hamiltonian.

    Parameters
    ----------
    iRvec : int (nR, 3); ndegen : int (nR,) or None (all 1); mp_grid : 3 ints

    Returns
    -------
    None if consistent, else a short description of the first bad residue class.
    """
    N = np.asarray(mp_grid, dtype=int).reshape(3)
    if np.any(N < 1):
        return f"mp_grid {N.tolist()} is not positive"
    w = 1.0 / (np.ones(len(iRvec)) if ndegen is None else np.asarray(ndegen, dtype=float))
    classes, inv = np.unique(np.mod(iRvec, N), axis=0, return_inverse=True)
    tot = np.zeros(len(classes))
    np.add.at(tot, inv.reshape(-1), w)
    bad = np.nonzero(np.abs(tot - 1.0) > 1e-6)[0]
    if bad.size == 0:
        return None
    c = bad[0]
    return (f"R vectors congruent to {classes[c].tolist()} modulo mp_grid {N.tolist()} have total weight "
            f"sum(1/ndegen) = {tot[c]:g}, not 1")


def mdrs_fold(iRvec: np.ndarray, mats: list, centres_cart: np.ndarray, real_lattice: np.ndarray,
              mp_grid, tolerance: float = 1e-3, search: int = 2) -> tuple[np.ndarray, list]:
    """Redo the Wigner-Seitz choice of images from the centres (MDRS), with a tie tolerance.

    The matrices of ``_hr.dat``/``_tb.dat`` (already divided by their degeneracies) are
    periodic in R modulo the Monkhorst-Pack supercell: summing each residue class gives the
    Fourier coefficient X_mn(R mod N). Each element is then placed at the images R + N T that
    minimise |R + N T + t_n - t_m| (Cartesian, Angstrom), shared equally between images within
    ``tolerance`` of the minimum. Wannier90's own ``_wsvec.dat`` uses a 1e-5 tolerance, which
    splits ties unevenly when the centres are symmetric only to ~1e-5 Angstrom (Te with SOC:
    28 meV C3 breaking from _wsvec.dat, 0.3 meV with this fold at 1e-3 Angstrom).

    Parameters
    ----------
    iRvec : int (nR, 3); mats : list of arrays (nR, nw, nw, ...); centres_cart : (nw, 3) Angstrom;
    real_lattice : (3, 3) Angstrom rows; mp_grid : 3 ints; tolerance : Angstrom.
    """
    N = np.asarray(mp_grid, dtype=int).reshape(3)
    nw = mats[0].shape[1]
    res = np.mod(iRvec, N)
    classes, inv = np.unique(res, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    folded = []
    for X in mats:
        Y = np.zeros((len(classes),) + X.shape[1:], dtype=complex)
        np.add.at(Y, inv, X)
        folded.append(Y)
    rng = np.arange(-search, search + 1)
    T = np.array(np.meshgrid(rng, rng, rng, indexing="ij")).reshape(3, -1).T  # (nT, 3)
    dt = centres_cart[None, :, :] - centres_cart[:, None, :]  # [m, n] = t_n - t_m

    def dist(t):  # (nc, nw, nw) distances of the images R + N t
        cart = (classes + t * N) @ real_lattice
        return np.linalg.norm(cart[:, None, None, :] + dt[None], axis=-1)

    dmin = np.full((len(classes), nw, nw), np.inf)
    for t in T:
        np.minimum(dmin, dist(t), out=dmin)
    picks = []
    nsel = np.zeros((len(classes), nw, nw), dtype=int)
    for it, t in enumerate(T):
        sel = dist(t) <= dmin + tolerance
        if sel.any():
            picks.append((it, np.nonzero(sel)))
            nsel += sel
    c_idx = np.concatenate([p[1][0] for p in picks])
    m_idx = np.concatenate([p[1][1] for p in picks])
    n_idx = np.concatenate([p[1][2] for p in picks])
    t_idx = np.concatenate([np.full(len(p[1][0]), p[0]) for p in picks])
    newvec = classes[c_idx] + T[t_idx] * N
    return place_matrices(folded, c_idx, m_idx, n_idx, newvec, 1.0 / nsel[c_idx, m_idx, n_idx])
