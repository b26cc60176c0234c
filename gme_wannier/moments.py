"""Band velocities and magnetic moments: pure functions on band-basis arrays of a k chunk.

Orbital moment (ZMS Eq. (10); LVTS12 for the Wannier-interpolated form), for a band n:

    m_n,c = (e / 2 hbar) eps_cab Im <d_a u_n| (H - E_n) |d_b u_n>  =  (e / 2 hbar) G_c[n]

With |d_a u_n> split into the Wannier-basis part and the rotation D_a = U^+ d_a U
(D_mn = V_mn / (E_n - E_m), zero inside a degenerate group), the Hermitian combination
G_c = -i eps_cab (C~_ab - E_n F~_ab) is

    G_c = i eps_cab D_a (E - E_n) D_b                                  (internal, sum over states)
          - CC_c + eps_cab (B_a^+ D_b + D_a B_b)                       (external: uHu and B terms)
          - E_n [ -Omega_bar_c + eps_cab (A_a D_b + D_a A_b) ]          (external: Berry connection)

with A, B, CC, Omega_bar = curl A rotated to the band basis (WannierBerri/Wannier90 conventions:
A = i<u|du>, B = i<u|H|du>, CC_c = i eps_cab <d_a u|H|d_b u>). The internal term alone is the
sum-over-states formula of docs/theory.md section 2.

Spin moment: m^spin_n = -(g_s/2) mu_B <sigma>_n.

Degenerate groups (|E_n - E_m| < threshold, consecutive bands) are treated as one state: D is
zero inside the group, and the group's moments and velocities are summed / averaged, which is
gauge invariant.
"""

from __future__ import annotations

import numpy as np

# cyclic (a, b) pairs for c = x, y, z
_ALPHA = (1, 2, 0)
_BETA = (2, 0, 1)


def degenerate_groups(E: np.ndarray, threshold: float) -> np.ndarray:
    """Group labels of bands.

    Parameters
    ----------
    E : float (nk, nw), eV, ascending along the last axis.
    threshold : float, eV.  Consecutive bands closer than this are in one group.

    Returns
    -------
    labels : int (nk, nw): 0, 0, 1, 2, 2, ... (the group index of each band).
    """
    gaps = np.diff(E, axis=-1) > threshold
    return np.concatenate([np.zeros(E.shape[:-1] + (1,), dtype=int), np.cumsum(gaps, axis=-1)], axis=-1)


def group_first_mask(labels: np.ndarray) -> np.ndarray:
    """bool (nk, nw): True at the first band of each degenerate group."""
    nk = labels.shape[0]
    return np.concatenate([np.ones((nk, 1), bool), labels[:, 1:] != labels[:, :-1]], axis=1)


def group_mean(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean of a per-band quantity over its group, stored at the group's first band."""
    cnt = group_sum(np.ones(labels.shape), labels)
    s = group_sum(x, labels)
    return np.where(cnt.reshape((cnt.shape[0],) + (1,) * (x.ndim - 2) + (cnt.shape[1],)) > 0,
                    s / np.maximum(cnt, 1).reshape((cnt.shape[0],) + (1,) * (x.ndim - 2) + (cnt.shape[1],)), 0)


# ----------------------------------------------------------------------------------------------
# Column forms: the same quantities for a window of ns bands (columns), all nw bands as rows.
# D is anti-Hermitian (D_nm = -conj(D_mn)) and A is Hermitian, so every sum over states above
# needs only the columns X[:, n] of the selected bands n (rows are conjugated columns), e.g.
#   i eps_cab (D_a E D_b)_nn = 2 sum_l E_l Im(conj(D_a,ln) D_b,ln).
# B is not Hermitian, but both of its terms use its columns: (B_a^+)_nl = conj(B_a,ln).


def rotation_D_columns(Vcols: np.ndarray, E: np.ndarray, Esel: np.ndarray, labels: np.ndarray,
                       labels_sel: np.ndarray) -> np.ndarray:
    """Columns of D_a = U^+ d_a U for the selected bands (WYSV06 Eq. 24).

    Vcols : complex (nk, 3, nw, ns) eV Angstrom, columns of U^+ dH U; E : float (nk, nw) eV;
    Esel : float (nk, ns) eV, the energies of the selected columns; labels : int (nk, nw) and
    labels_sel : int (nk, ns) degenerate-group labels. Returns complex (nk, 3, nw, ns), Angstrom:
    D_mn = V_mn / (E_n - E_m), 0 within a group.
    """
    dE = Esel[:, None, :] - E[:, :, None]  # [k, m, n] = E_n - E_m
    same = labels[:, :, None] == labels_sel[:, None, :]
    inv = np.where(same, 0.0, 1.0 / np.where(same, 1.0, dE))
    return Vcols * inv[:, None]


def _im_cross(X: np.ndarray, Y: np.ndarray, w: np.ndarray = None) -> np.ndarray:
    """sum_l w_l [Im(conj(X_a,ln) Y_b,ln) - Im(conj(X_b,ln) Y_a,ln)] for c = (a, b) cyclic.

    X, Y : complex (nk, 3, nw, ns); w : float (nk, nw) or None (all ones).
    Returns float (nk, 3, ns).
    """
    Xc = np.conj(X)
    out = np.empty((X.shape[0], 3, X.shape[-1]))
    for c, (a, b) in enumerate(zip(_ALPHA, _BETA)):
        z = (Xc[:, a] * Y[:, b]).imag - (Xc[:, b] * Y[:, a]).imag  # (nk, nw, ns)
        out[:, c] = np.einsum("kl,kln->kn", w, z) if w is not None else z.sum(axis=1)
    return out


def _re_cross(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """sum_l Re(conj(X_a,ln) Y_b,ln - conj(X_b,ln) Y_a,ln), float (nk, 3, ns)."""
    Xc = np.conj(X)
    out = np.empty((X.shape[0], 3, X.shape[-1]))
    for c, (a, b) in enumerate(zip(_ALPHA, _BETA)):
        out[:, c] = ((Xc[:, a] * Y[:, b]).real - (Xc[:, b] * Y[:, a]).real).sum(axis=1)
    return out


def orbital_parts_columns(E: np.ndarray, D: np.ndarray, *, A: np.ndarray = None, B: np.ndarray = None,
                          CC_diag: np.ndarray = None, Omega_bar_diag: np.ndarray = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`orbital_parts` for the selected bands only (same result, from columns).

    E : float (nk, nw) eV; D : complex (nk, 3, nw, ns) columns of D (Angstrom);
    A, B : complex (nk, 3, nw, ns) columns of U^+ A U (Angstrom) and U^+ B U (eV Angstrom);
    CC_diag, Omega_bar_diag : complex (nk, 3, ns) diagonals of U^+ CC U and U^+ (curl A) U.
    Returns Gc (eV Angstrom^2) and Phi (Angstrom^2), float (nk, 3, ns).

    Internal:  i eps_cab (D_a E D_b)_nn = 2 sum_l E_l Im(conj(D_a,ln) D_b,ln)  (D anti-Hermitian).
    External:  eps_cab (B_a^+ D_b + D_a B_b)_nn = 2 Re sum_l [conj(B_a,ln) D_b,ln - conj(B_b,ln) D_a,ln]
               and the same with A (Hermitian) for Phi; LVTS12 Eqs. (43)-(49), WannierBerri Morb.
    """
    Gc = _im_cross(D, D, E)  # = 2 sum_l E_l Im(conj(D_a) D_b)
    Phi = _im_cross(D, D)
    if B is not None:
        Gc = Gc + 2.0 * _re_cross(B, D) - CC_diag.real
    if A is not None:
        Phi = Phi + 2.0 * _re_cross(A, D) - Omega_bar_diag.real
    return Gc, Phi


def group_first_index(labels: np.ndarray) -> np.ndarray:
    """int (nk, nw): index of the first band of each band's degenerate group."""
    nk, nw = labels.shape
    first = group_first_mask(labels)
    return np.maximum.accumulate(np.where(first, np.arange(nw)[None, :], 0), axis=1)


def group_sum(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Sum a per-band quantity over degenerate groups, stored at the group's first band, 0 elsewhere.

    x : float (nk, ..., ns); labels : int (nk, ns), consecutive within each row. Exact
    (no cumulative-sum cancellation); costs one pass per extra member of the largest group.
    """
    first = group_first_mask(labels)
    fi = group_first_index(labels)
    ns = labels.shape[1]
    shape = (labels.shape[0],) + (1,) * (x.ndim - 2) + (ns,)
    out = np.where(first.reshape(shape), x, 0.0)
    offset = np.arange(ns)[None, :] - fi  # 0 for first bands, d for the d-th member
    for d in range(1, int(offset.max()) + 1 if offset.size else 1):
        m = (offset[:, d:] == d).reshape(shape[:-1] + (ns - d,))
        out[..., :-d] += np.where(m, x[..., d:], 0.0)
    return out
