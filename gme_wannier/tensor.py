"""Decomposition of alpha, frequency dependence and optical rotation (docs/theory.md sections 1, 4, 7)."""

from __future__ import annotations

import numpy as np

from .units import mu_0

_EPS = np.zeros((3, 3, 3))
_EPS[0, 1, 2] = _EPS[1, 2, 0] = _EPS[2, 0, 1] = 1.0
_EPS[0, 2, 1] = _EPS[2, 1, 0] = _EPS[1, 0, 2] = -1.0


def decompose(alpha: np.ndarray) -> dict:
    """alpha = alpha_iso 1 + alpha_S + alpha_A.

    alpha : (..., 3, 3). Returns dict with ``iso`` (...,), ``sym`` traceless symmetric (..., 3, 3),
    ``antisym`` (..., 3, 3), ``delta`` polar vector (..., 3) with alpha_A,ij = eps_ijk delta_k,
    ``sym_eigenvalues`` (..., 3) and ``sym_axes`` (..., 3, 3) (columns = principal axes).
    """
    a = np.asarray(alpha, dtype=float)
    iso = np.trace(a, axis1=-2, axis2=-1) / 3.0
    sym = 0.5 * (a + np.swapaxes(a, -1, -2)) - iso[..., None, None] * np.eye(3)
    anti = 0.5 * (a - np.swapaxes(a, -1, -2))
    delta = 0.5 * np.einsum("kij,...ij->...k", _EPS, a)
    w, v = np.linalg.eigh(sym)
    return {"iso": iso, "sym": sym, "antisym": anti, "delta": delta, "sym_eigenvalues": w, "sym_axes": v}


def dynamic_factor(omega_tau: np.ndarray) -> np.ndarray:
    """D(omega tau) = i w t / (i w t - 1) (ZMS Eqs. 9, 11): -> 1 clean limit, -> 0 static."""
    wt = np.asarray(omega_tau, dtype=float)
    return 1j * wt / (1j * wt - 1.0)


def rotatory_power(alpha: np.ndarray, n: np.ndarray) -> np.ndarray:
    """rho(n) = (mu0/2) [tr alpha - n.alpha.n]  in rad/m (docs/theory.md section 4).

    alpha : (..., 3, 3) in A m^-2 T^-1; n : (3,) unit propagation direction (Cartesian).
    Positive rho: see docs/theory.md (sign convention).
    """
    n = np.asarray(n, dtype=float)
    n = n / np.linalg.norm(n)
    a = np.asarray(alpha)
    tr = np.trace(a, axis1=-2, axis2=-1)
    nan = np.einsum("i,...ij,j->...", n, a, n)
    return 0.5 * mu_0 * (tr - nan)


def rotatory_power_axes(alpha: np.ndarray, real_lattice: np.ndarray) -> dict:
    """rho (rad/mm) along x, y, z and along the three lattice vectors.

    Returns dict name -> (...,) array. (Only meaningful along optic axes; along other
    directions linear birefringence mixes in.)"""
    out = {}
    for name, n in (("x", [1, 0, 0]), ("y", [0, 1, 0]), ("z", [0, 0, 1])):
        out[name] = rotatory_power(alpha, np.array(n)) * 1e-3
    for i, name in enumerate(("a1", "a2", "a3")):
        out[name] = rotatory_power(alpha, real_lattice[i]) * 1e-3
    return out

