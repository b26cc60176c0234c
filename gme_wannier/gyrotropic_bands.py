"""Band-basis data of a block of k-points for the natural-gyrotropy quantities
(:mod:`gme_wannier.gyrotropic`), and the per-band pieces built from it: velocities, the Berry
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
    None when no point is kept, else a dict: ``act`` int (na,) indices into k_red; ``E`` float
    (na, nw) eV; ``V`` complex (na, 3, nw, nw) U^+ dH U (eV Angstrom); ``Abar`` complex
    (na, 3, nw, nw) U^+ A U (Angstrom; zeros without external terms); ``curlA`` complex
    (na, 3, nw) diagonal of U^+ curl A U (Angstrom^2) or None; ``S`` complex (na, 3, nw, nw)
    U^+ sigma U or None. The arrays are shared with the cache: do not modify them.
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
    b = _evaluate(interp, k_red, None if all_k else window)
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
    size = 0 if b is None else sum(v.nbytes for v in b.values() if isinstance(v, np.ndarray))
    if size > _CACHE_BYTES:
        return
    _CACHE[key] = (weakref.ref(interp), k_red.copy(), b, size)
    while sum(e[3] for e in _CACHE.values()) > _CACHE_BYTES:
        _CACHE.popitem(last=False)


def _select(b: Optional[dict], window) -> Optional[dict]:
    """The points of a whole block with a band inside the energy window (lo, hi), eV."""
    if b is None:
        return None
    keep = np.nonzero(((b["E"] >= window[0]) & (b["E"] <= window[1])).any(axis=1))[0]
    if len(keep) == 0:
        return None
    return {key: (b["act"][keep] if key == "act" else (v[keep] if isinstance(v, np.ndarray) else v))
            for key, v in b.items()}


def _evaluate(interp, k_red: np.ndarray, window) -> Optional[dict]:
    """:func:`band_block` without the cache; window None: every point."""
    phase = interp.phase(k_red)
    H = interp.hamiltonian(phase)
    if window is None:
        act = np.arange(len(k_red))
    else:
        Eall = np.linalg.eigvalsh(H)
        act = np.nonzero(((Eall >= window[0]) & (Eall <= window[1])).any(axis=1))[0]
    if len(act) == 0:
        return None
    E, U = np.linalg.eigh(H[act])
    X = interp.derivatives(phase[act])
    start = np.cumsum([0] + list(interp.rest_widths))
    comp = {n: slice(start[i], start[i + 1]) for i, n in enumerate(interp.rest_names)}
    Ud = np.conj(np.swapaxes(U, -1, -2))[:, None]

    def rot(name):
        return Ud @ X[:, comp[name]] @ U[:, None]

    out = {"act": act, "E": E, "V": rot("dH"), "curlA": None, "S": None}
    if "A" in comp:
        out["Abar"] = rot("A")
        XU = X[:, comp["curlA"]] @ U[:, None]
        out["curlA"] = np.einsum("kin,kcin->kcn", np.conj(U), XU)
    else:
        out["Abar"] = np.zeros_like(out["V"])
    if "S" in comp:
        out["S"] = rot("S")
    return out


def rotation(b: dict, labels: np.ndarray) -> np.ndarray:
    """D_a = U^+ d_a U (Angstrom), complex (nk, 3, nw, nw), zero inside the groups ``labels``."""
    return mom.rotation_D(b["V"], b["E"], labels)


def velocity(b: dict) -> np.ndarray:
    """dE_n/dk_a = V_a,nn, float (nk, 3, nw), eV Angstrom."""
    return np.einsum("kcnn->kcn", b["V"]).real


def berry_curvature(b: dict, labels: np.ndarray) -> np.ndarray:
    """Omega_n (Angstrom^2), float (nk, 3, nw): LVTS12's curvature, = -Phi of moments.py."""
    D = rotation(b, labels)
    A = b["Abar"] if b["curlA"] is not None else None
    _, Phi = mom.orbital_parts_columns(b["E"], D, A=A, Omega_bar_diag=b["curlA"])
    return -Phi


def full_connection(b: dict, labels: np.ndarray) -> np.ndarray:
    """A = U^+ A^(W) U + i D (WYSV06 Eq. 25), complex (nk, 3, nw, nw), Angstrom."""
    return b["Abar"] + 1j * rotation(b, labels)


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
