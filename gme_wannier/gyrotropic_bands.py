"""Band-basis data of a block of k-points for the natural-gyrotropy quantities
(:mod:`gme_wannier.gyrotropic`), and the per-band pieces built from it: the Berry
curvature of LVTS12, the full Berry connection A = U^+ A^(W) U + i D (WYSV06 Eq. 25) and the
finite-frequency curvature of TPS18 Eq. 12.

The data of the last blocks are kept (a few, bounded in memory) so that the quantities of one
k loop, which are called one after the other on the same chunk, share one Fourier transform and
one eigensolve per block; a block evaluated at every k (for NOA) also serves the Fermi-surface
quantities.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Optional

import numpy as np

from . import moments as mom
from .banddata import BandData, band_data

_ALPHA = (1, 2, 0)  # (a, b) cyclic pair of d = x, y, z
_BETA = (2, 0, 1)
_D_CUT = 1e-7  # eV, postw90's wham_get_D_h
_CACHE: "OrderedDict[tuple, tuple]" = OrderedDict()
_CACHE_BYTES = 128e6


def band_block(interp, k_red: np.ndarray, st, *, all_k: bool) -> Optional[dict]:
    """Band-basis data of a block of k-points for the gyrotropic kernels (cached, see above).

    Parameters
    ----------
    interp : :class:`gme_wannier.bands.Interpolator`
    k_red : float (nk, 3) reduced.
    st : GMESettings (its energy window selects the Fermi-surface points).
    all_k : keep every point (NOA) instead of those with a band inside the Fermi window.

    Returns
    -------
    None when no point is kept, else a :class:`~gme_wannier.banddata.BandData` with every band
    as a column (so ``E`` is (na, nw), ``V``, ``A``, ``S`` are whole matrices (na, 3, nw, nw)),
    degenerate groups of ``st.degen_thresh``. The arrays are shared with the cache: do not
    modify them.
    """
    from .integrate import energy_window

    k_red = np.ascontiguousarray(k_red, dtype=float)
    window = energy_window(st, interp.nw)
    base = (id(interp), k_red.shape, hash(k_red.tobytes()))
    hit = _lookup(base + ("all",), interp, k_red)
    if hit is not None and not all_k:
        return _select(hit, window)
    if hit is None and not all_k:
        hit = _lookup(base + window, interp, k_red)
    if hit is not None:
        return hit
    b = _evaluate(interp, k_red, None if all_k else window, st.degen_thresh)
    _store(base + (("all",) if all_k else window), interp, k_red, b)
    return b


def _lookup(key, interp, k_red):
    entry = _CACHE.get(key)
    if entry is None or entry[0]() is not interp or not np.array_equal(entry[1], k_red):
        return None
    _CACHE.move_to_end(key)
    return entry[2]


def _store(key, interp, k_red, b) -> None:
    for old in [k for k, e in _CACHE.items() if e[0]() is None]:  # blocks of finished loops
        del _CACHE[old]
    size = 0 if b is None else b.nbytes
    if size > _CACHE_BYTES:
        return
    _CACHE[key] = (weakref.ref(interp), k_red.copy(), b, size)
    while sum(e[3] for e in _CACHE.values()) > _CACHE_BYTES:
        _CACHE.popitem(last=False)


def _select(b: Optional[BandData], window) -> Optional[BandData]:
    """The points of a whole block with a band inside the energy window (lo, hi), eV."""
    if b is None:
        return None
    keep = np.nonzero(((b.E >= window[0]) & (b.E <= window[1])).any(axis=1))[0]
    if len(keep) == 0:
        return None
    return b.take(keep)


def _evaluate(interp, k_red: np.ndarray, window, degen_thresh: float) -> Optional[BandData]:
    """:func:`band_block` without the cache; window None: every point. Every band is a column."""
    return band_data(interp, k_red, degen_thresh=degen_thresh, window=window, columns="all",
                     spin_columns=True)[0]


def berry_curvature(b: BandData, D: np.ndarray) -> np.ndarray:
    """Omega_n (Angstrom^2), float (nk, 3, nw): LVTS12's curvature, = -Phi of moments.py, from the
    columns of D (``b.D``, or ``b.rotation(threshold)`` for other degenerate groups)."""
    _, Phi = mom.orbital_parts_columns(b.E, D, A=b.A, Omega_bar_diag=b.curlA_diag)
    return -Phi


def full_connection(b: BandData, D: np.ndarray) -> np.ndarray:
    """A = U^+ A^(W) U + i D (WYSV06 Eq. 25), complex (nk, 3, nw, nw), Angstrom; D as in
    :func:`berry_curvature`."""
    return 1j * D if b.A is None else b.A + 1j * D


def curvature_omega(A: np.ndarray, E: np.ndarray, labels: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Omega~_n,c(omega), float (nk, nw_freq, 3, nw), Angstrom^2 (module docstring)."""
    w = E[:, None, :] - E[:, :, None]  # [k, n, m] = E_m - E_n
    other = labels[:, :, None] != labels[:, None, :]
    w2 = (w * w)[..., None]
    F = np.where(other[..., None], (w2 / (w2 - z[None, None, None, :] ** 2)).real, 0.0)  # (k, n, m, nf)
    out = np.empty((len(E), len(z), 3, E.shape[1]))
    for c, (a, bb) in enumerate(zip(_ALPHA, _BETA)):
        P = (A[:, a] * np.swapaxes(A[:, bb], -1, -2)).imag  # [k, n, m] = Im(A_a,nm A_b,mn)
        out[:, :, c, :] = -2.0 * np.einsum("knm,knmf->kfn", P, F)
    return out
