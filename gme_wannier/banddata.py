"""The per-k band data of a chunk of k-points: one frozen object that every quantity reads.

:func:`band_data` evaluates, for a chunk of k-points, the eigensystem of H(k) and the band-basis
*columns* of the other Wannier-gauge matrices for a window of bands (all bands as rows, the
selected bands as columns, :func:`gme_wannier.bands.rotate_columns`), and returns them as a
:class:`BandData`. The quantities (the GME integrand of :mod:`gme_wannier.integrate`, the
gyrotropic family of :mod:`gme_wannier.gyrotropic`, the per-sheet sums of
:mod:`gme_wannier.sheets`) are functions of this object; none of them touches the interpolator.

Two stages keep the Fermi-surface work small (docs/performance.md): H(k) and its eigenvalues at
every point, then the other matrices and the eigenvectors only at the points that have a band in
the energy window, rotated only for the columns of the window.

Units: energies eV, velocities eV Angstrom, D and A Angstrom, B eV Angstrom, CC eV Angstrom^2,
curl A Angstrom^2, spin dimensionless (Pauli matrices). Cartesian components throughout.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional, Union

import numpy as np

from . import moments as mom
from .bands import Interpolator, diagonal_columns, rotate_columns, select_window

__all__ = ["BandData", "BandStats", "band_data", "window_columns"]


@dataclass(frozen=True)
class BandStats:
    """What one call of :func:`band_data` did: k-points seen, kept (a band in the window) and
    band columns rotated. Returned, never accumulated in place; add two with ``+``."""

    n_k: int = 0
    n_active: int = 0
    n_columns: int = 0

    def __add__(self, other: "BandStats") -> "BandStats":
        return BandStats(self.n_k + other.n_k, self.n_active + other.n_active, self.n_columns + other.n_columns)


@dataclass(frozen=True, eq=False)
class BandData:
    """Band-basis data of the kept points of a chunk (na points, nw bands, ns selected columns).

    k_index : int (na,), the kept points as indices into the chunk's k_red.
    cols : int (na, ns), the band index of each column (a contiguous window per point).
    E_all : float (na, nw) eV, all energies, ascending; labels_all : int (na, nw) degenerate
        groups of all bands (consecutive labels, threshold ``degen_thresh``).
    E : float (na, ns) eV and labels : int (na, ns), the same for the selected columns.
    V : complex (na, 3, nw, ns) eV Angstrom, columns of U^+ dH/dk U.
    v : float (na, 3, ns) eV Angstrom, the band velocities dE_n/dk (diagonal of V).
    D : complex (na, 3, nw, ns) Angstrom, columns of D = U^+ dU/dk (WYSV06 Eq. 24): V_mn/(E_n - E_m),
        zero inside a degenerate group.
    A, B : complex (na, 3, nw, ns), columns of U^+ A U (Angstrom) and U^+ B U (eV Angstrom);
        None without the full orbital moment (no .mmn/.uHu terms in the model).
    CC_diag, curlA_diag : complex (na, 3, ns), diagonals of U^+ CC U (eV Angstrom^2) and of
        U^+ (curl A) U (Angstrom^2); None as A.
    S_diag : float (na, 3, ns), <sigma>_n; None without spin matrices.
    S : complex (na, 3, nw, ns), columns of U^+ sigma U, only when asked (``spin_columns``).
    degen_thresh : float eV, the threshold of the labels.
    """

    k_index: np.ndarray
    cols: np.ndarray
    E_all: np.ndarray
    labels_all: np.ndarray
    E: np.ndarray
    labels: np.ndarray
    V: np.ndarray
    v: np.ndarray
    D: np.ndarray
    A: Optional[np.ndarray] = None
    B: Optional[np.ndarray] = None
    CC_diag: Optional[np.ndarray] = None
    curlA_diag: Optional[np.ndarray] = None
    S_diag: Optional[np.ndarray] = None
    S: Optional[np.ndarray] = None
    degen_thresh: float = 0.0

    @property
    def n_points(self) -> int:
        """na, the number of kept points."""
        return int(self.k_index.shape[0])

    @property
    def n_columns(self) -> int:
        """ns, the number of band columns."""
        return int(self.cols.shape[1])

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        return int(sum(getattr(self, f.name).nbytes for f in fields(self)
                       if isinstance(getattr(self, f.name), np.ndarray)))

    def take(self, rows: np.ndarray) -> "BandData":
        """The data of a subset of the points, rows : int (m,) indices into 0 .. na - 1."""
        rows = np.asarray(rows)
        kw = {f.name: (getattr(self, f.name)[rows] if isinstance(getattr(self, f.name), np.ndarray)
                       else getattr(self, f.name)) for f in fields(self)}
        return BandData(**kw)

    def rotation(self, threshold: float) -> np.ndarray:
        """Columns of D with degenerate groups of another threshold (eV), complex (na, 3, nw, ns)."""
        lab_all = mom.degenerate_groups(self.E_all, threshold)
        lab = np.take_along_axis(lab_all, self.cols, axis=1)
        return mom.rotation_D_columns(self.V, self.E_all, self.E, lab_all, lab)


def window_columns(E: np.ndarray, labels: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, int]:
    """The smallest contiguous window of columns holding, at every point, every band in [lo, hi]
    extended to whole degenerate groups.

    E : float (nk, nw) eV ascending; labels : int (nk, nw). Returns start int (nk,) and the width ns.
    """
    nk, nw = E.shape
    first = np.sum(E < lo, axis=1)  # first band >= lo
    last = np.sum(E <= hi, axis=1) - 1  # last band <= hi
    fi = mom.group_first_index(labels)
    li = nw - 1 - mom.group_first_index(labels[:, ::-1])[:, ::-1]  # last band of each band's group
    ar = np.arange(nk)
    first = fi[ar, np.clip(first, 0, nw - 1)]
    last = li[ar, np.clip(last, 0, nw - 1)]
    ns = int(np.max(last - first + 1))
    start = np.clip(np.minimum(first, nw - ns), 0, None)
    return start, ns


def _eigensystems(H: np.ndarray, window, screen_first: bool):
    """Kept points and their eigensystems: act int (na,), E (na, nw), U (na, nw, nw), or None."""
    if window is None:
        E, U = np.linalg.eigh(H)
        return np.arange(len(H)), E, U
    lo, hi = window
    if screen_first:  # eigenvalues everywhere, eigenvectors where a band is in the window
        Eall = np.linalg.eigvalsh(H)
        act = np.nonzero(((Eall >= lo) & (Eall <= hi)).any(axis=1))[0]
        if len(act) == 0:
            return None
        E, U = np.linalg.eigh(H[act])
        return act, E, U
    E, U = np.linalg.eigh(H)
    act = np.nonzero(((E >= lo) & (E <= hi)).any(axis=1))[0]
    if len(act) == 0:
        return None
    return act, E[act], U[act]


def band_data(interp: Interpolator, k_red: np.ndarray, *, degen_thresh: float,
              window: Optional[tuple] = None, columns: Union[str, tuple] = "window",
              screen_first: bool = True, spin_columns: bool = False) -> tuple[Optional[BandData], BandStats]:
    """The :class:`BandData` of a chunk of k-points.

    Parameters
    ----------
    interp : Interpolator (its ``external`` and ``spin`` say which matrices are evaluated).
    k_red : float (nk, 3) reduced coordinates.
    degen_thresh : eV; bands closer than this are one degenerate group.
    window : (lo, hi) eV, optional. Keep only the points with a band in [lo, hi]; None keeps all.
    columns : "window" (the bands in ``window``, extended to whole groups; needs ``window``),
        "all" (every band), or (first, count) (these bands at every point).
    screen_first : with ``window``, compute the eigenvalues of every point first and the
        eigenvectors only where a band is in the window (cheaper when few points are kept);
        False: the eigenvectors of every point at once. Same result either way.
    spin_columns : also rotate the columns of the spin matrices (``S``), not only their diagonal.

    Returns
    -------
    (BandData or None, BandStats): None when no point is kept.
    """
    k_red = np.atleast_2d(k_red)
    if isinstance(columns, str) and columns not in ("window", "all"):
        raise ValueError(f"columns must be 'window', 'all' or (first, count), got {columns!r}")
    if isinstance(columns, str) and columns == "window" and window is None:
        raise ValueError("columns='window' needs an energy window")
    nw = interp.nw
    phase = interp.phase(k_red)
    found = _eigensystems(interp.hamiltonian(phase), window, screen_first and window is not None)
    if found is None:
        return None, BandStats(len(k_red), 0, 0)
    act, E, U = found
    na = len(act)
    labels = mom.degenerate_groups(E, degen_thresh)
    if isinstance(columns, str) and columns == "window":
        start, ns = window_columns(E, labels, *window)
    elif isinstance(columns, str) and columns == "all":
        start, ns = np.zeros(na, dtype=int), nw
    else:
        start, ns = np.full(na, int(columns[0])), int(columns[1])
    cols = start[:, None] + np.arange(ns)[None, :]
    Esel = np.take_along_axis(E, cols, axis=1)
    lab_sel = np.take_along_axis(labels, cols, axis=1)
    Usel = select_window(U, start, ns)

    X = interp.derivatives(phase[act])  # (na, ncomp - 1, nw, nw), components in interp.parts
    part = interp.parts
    full = slice(part["dH"].start, part["B"].stop if interp.external else part["dH"].stop)
    Xbar = rotate_columns(X[:, full], U, Usel)  # dH (and A, B): whole columns
    V = Xbar[:, 0:3]
    v = np.take_along_axis(V, cols[:, None, None, :], axis=2)[:, :, 0, :].real
    D = mom.rotation_D_columns(V, E, Esel, labels, lab_sel)
    kw = {}
    if interp.external:
        diag = diagonal_columns(X[:, part["CC"].start:part["curlA"].stop], Usel)
        kw.update(A=Xbar[:, 3:6], B=Xbar[:, 6:9], CC_diag=diag[:, 0:3], curlA_diag=diag[:, 3:6])
    if interp.spin:
        XS = X[:, part["S"]]
        if spin_columns:
            S = rotate_columns(XS, U, Usel)
            kw.update(S=S, S_diag=np.take_along_axis(S, cols[:, None, None, :], axis=2)[:, :, 0, :].real)
        else:
            kw.update(S_diag=diagonal_columns(XS, Usel).real)
    bd = BandData(k_index=act, cols=cols, E_all=E, labels_all=labels, E=Esel, labels=lab_sel, V=V, v=v, D=D,
                  degen_thresh=float(degen_thresh), **kw)
    return bd, BandStats(len(k_red), na, na * ns)
