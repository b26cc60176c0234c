"""One band touching: the gap and its minimisation, the Berry flux through a sphere, the cone.

Pure per-k work for :mod:`gme_wannier.nodes` (which drives the search over the zone):
:class:`_Bands` evaluates energies, eigenvectors and band velocities at single k or batches;
:func:`_minimize_gap` finds a touching of bands (n, n+1) from a starting point (Newton on the
two-band d-vector, scipy BFGS as fallback); :func:`sphere_flux` is the lattice-gauge Berry flux
of the bands below through a sphere; :func:`_analyse` shrinks the sphere until the charge is
stable, checks that the touching is isolated, and fits the cone (:func:`cone_fit`).
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

from .bands import Interpolator
from .model import TBModel

#: chirality = _CHI_SIGN * (outward flux of the lower bands' Berry phase) / 2 pi, fixed so that
#: H = +k.sigma has chi = +1 (checked in tests/test_nodes.py on the two-node model)
_CHI_SIGN = 1.0


class _Bands:
    """Energies, eigenvectors and band velocities of one model at single k or batches."""

    def __init__(self, model: TBModel):
        self.interp = Interpolator(model, external=False, spin=False)
        self.B = model.recip_lattice
        self.Binv = np.linalg.inv(self.B)
        self.nw = model.num_wann
        self.n_eval = 0

    def eig(self, k_cart: np.ndarray):
        """E (nk, nw) eV and U (nk, nw, nw) at Cartesian k (nk, 3)."""
        ph = self.interp.phase(np.atleast_2d(k_cart) @ self.Binv)
        self.n_eval += len(ph)
        return np.linalg.eigh(self.interp.hamiltonian(ph))

    def gap(self, k_cart: np.ndarray, n: int):
        """Gap E_n - E_{n-1} (0-based upper band n), its gradient (eV Angstrom) and mid energy."""
        W = self.interp.wannier_gauge(np.atleast_2d(k_cart) @ self.Binv)
        self.n_eval += 1
        H = W["H"][0, 0]
        E, U = np.linalg.eigh(0.5 * (H + H.conj().T))
        u = U[:, n - 1:n + 1]
        v = np.einsum("in,aij,jn->an", u.conj(), W["dH"][0], u).real  # (3, 2)
        return E[n] - E[n - 1], v[:, 1] - v[:, 0], 0.5 * (E[n] + E[n - 1])


def _newton(bands: _Bands, k: np.ndarray, n: int, gap_tol: float, max_iter: int = 25, max_step: float = 0.05):
    """Newton steps on the two-band d-vector: in the basis of bands (n-1, n) at k, H(k + dk) ~
    E_mean + (d0 + sum_a dk_a d_a) . sigma with d_a the Pauli components of u^+ dH_a u; solve
    d0 + J dk = 0. Converges quadratically onto a linear touching. Returns (k, gap)."""
    g, best = np.inf, (k, np.inf)
    for _ in range(max_iter):
        W = bands.interp.wannier_gauge(np.atleast_2d(k) @ bands.Binv)
        bands.n_eval += 1
        H = W["H"][0, 0]
        E, U = np.linalg.eigh(0.5 * (H + H.conj().T))
        g = E[n] - E[n - 1]
        if g < best[1]:
            best = (k, g)
        if g < gap_tol:
            break
        u = U[:, n - 1:n + 1]
        M = np.einsum("im,aij,jn->amn", u.conj(), W["dH"][0], u)  # (3, 2, 2)
        J = np.stack([M[:, 0, 1].real, -M[:, 0, 1].imag, 0.5 * (M[:, 0, 0] - M[:, 1, 1]).real])  # [comp, a]
        d0 = np.array([0.0, 0.0, -0.5 * g])
        try:
            dk = np.linalg.solve(J, -d0)
        except np.linalg.LinAlgError:
            break
        step = np.linalg.norm(dk)
        if not np.isfinite(step):
            break
        k = k + dk * min(1.0, max_step / step)
    return best[0], float(best[1])


def _minimize_gap(bands: _Bands, k0: np.ndarray, n: int, gap_tol: float, fallback: bool = True):
    """Local minimum of the gap of bands (n-1, n) (0-based) from Cartesian k0: Newton on the
    d-vector (:func:`_newton`), then, if that did not reach a touching, scipy's BFGS on gap^2
    (gradient 2 gap (v_n - v_{n-1}), Hellmann-Feynman) and Newton again from its minimum
    (``fallback``).

    Returns (k_cart (3,), gap eV, |grad gap| eV Angstrom, mid energy eV)."""
    k, g = _newton(bands, np.asarray(k0, float), n, gap_tol)
    if g >= gap_tol and fallback:
        def f(x):
            gg, dg, _ = bands.gap(x, n)
            return gg * gg, 2.0 * gg * dg

        res = optimize.minimize(f, k0, jac=True, method="BFGS", options={"gtol": 1e-12, "maxiter": 100})
        k2, g2 = _newton(bands, res.x, n, gap_tol)
        if g2 < g:
            k = k2
    g, dg, e = bands.gap(k, n)
    return k, float(g), float(np.linalg.norm(dg)), float(e)


def _sphere_grid(n_theta: int, n_phi: int) -> np.ndarray:
    """Unit vectors on a theta-phi grid, float (n_theta + 1, n_phi, 3), poles included."""
    th = np.linspace(0.0, np.pi, n_theta + 1)[:, None]
    ph = 2 * np.pi * np.arange(n_phi)[None, :] / n_phi
    return np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th) + 0 * ph], axis=-1)


def sphere_flux(bands: _Bands, k_cart: np.ndarray, n: int, radius: float, n_theta: int = 10,
                n_phi: int = 20) -> dict:
    """Berry flux of bands 0..n-1 (0-based) out of a sphere around Cartesian ``k_cart``.

    Returns dict: ``flux`` (/2 pi, with the chirality sign convention), ``q`` (npts, 3) sphere
    offsets (1/Angstrom), ``E_lo``/``E_hi`` (npts,) the two bands on the sphere (eV).
    """
    nhat = _sphere_grid(n_theta, n_phi)
    q = radius * nhat.reshape(-1, 3)
    E, U = bands.eig(k_cart[None, :] + q)
    occ = U[:, :, :n].reshape(n_theta + 1, n_phi, bands.nw, n)

    def link(a, b):  # det <u_a|u_b>, complex (..)
        return np.linalg.det(np.conj(np.swapaxes(a, -1, -2)) @ b)

    u00 = occ[:-1]
    u10 = occ[1:]
    u11 = np.roll(occ[1:], -1, axis=1)
    u01 = np.roll(occ[:-1], -1, axis=1)
    loop = link(u00, u10) * link(u10, u11) * link(u11, u01) * link(u01, u00)
    flux = -np.angle(loop).sum() / (2 * np.pi)  # Berry phase = -arg of the loop product
    return {"flux": float(_CHI_SIGN * flux), "q": q, "E_lo": E[:, n - 1], "E_hi": E[:, n]}


def cone_fit(q: np.ndarray, E_lo: np.ndarray, E_hi: np.ndarray, E0: float):
    """Linear cone E = E0 + t.q +- sqrt(q^T M q) fitted to the two bands on a sphere.

    q : float (npts, 3) 1/Angstrom; E_lo, E_hi : float (npts,) eV. Returns the principal
    velocities (3,) and the tilt t (3,) in eV Angstrom, and the tilt ratio sqrt(t^T M^-1 t).
    """
    t, *_ = np.linalg.lstsq(q, 0.5 * (E_lo + E_hi) - E0, rcond=None)
    cols = np.stack([q[:, 0] ** 2, q[:, 1] ** 2, q[:, 2] ** 2, 2 * q[:, 0] * q[:, 1],
                     2 * q[:, 0] * q[:, 2], 2 * q[:, 1] * q[:, 2]], axis=1)
    m, *_ = np.linalg.lstsq(cols, (0.5 * (E_hi - E_lo)) ** 2, rcond=None)
    M = np.array([[m[0], m[3], m[4]], [m[3], m[1], m[5]], [m[4], m[5], m[2]]])
    w, P = np.linalg.eigh(M)
    vel = np.sqrt(np.clip(w, 0, None))
    inv = P @ np.diag(1.0 / np.where(w > 1e-12, w, 1e-12)) @ P.T
    return vel, t, float(np.sqrt(max(t @ inv @ t, 0.0)))


def _wrap(k_red: np.ndarray) -> np.ndarray:
    """Reduced k into [-0.5, 0.5), rounded at 1e-10 so that the boundary is stable."""
    k = np.round(np.asarray(k_red, float), 10)
    return k - np.floor(k + 0.5)


def _periodic_distance(B: np.ndarray, k1_red: np.ndarray, k2_red: np.ndarray) -> np.ndarray:
    """Cartesian distance (1/Angstrom) between k1 (3,) and each of k2 (m, 3), modulo G."""
    d = _wrap(np.atleast_2d(k2_red) - k1_red)
    best = None
    for s in np.indices((3, 3, 3)).reshape(3, -1).T - 1:  # neighbouring cells for skew lattices
        dist = np.linalg.norm((d + s) @ B, axis=1)
        best = dist if best is None else np.minimum(best, dist)
    return best


def _isolated(bands: _Bands, s: dict, k_cart: np.ndarray, n: int, r: float, gap_tol: float) -> bool:
    """False when the gap of bands (n-1, n) can be minimised to zero on the sphere (nodal line)."""
    half = 0.5 * (s["E_hi"] - s["E_lo"])
    i_min = int(np.argmin(half))
    if half[i_min] >= 0.2 * np.median(half):
        return True
    q0 = s["q"][i_min]

    def on_sphere(x):
        d = np.array([np.sin(x[0]) * np.cos(x[1]), np.sin(x[0]) * np.sin(x[1]), np.cos(x[0])])
        E = bands.eig(k_cart + r * d)[0][0]
        return E[n] - E[n - 1]

    x0 = [np.arccos(np.clip(q0[2] / r, -1, 1)), np.arctan2(q0[1], q0[0])]
    res = optimize.minimize(on_sphere, x0, method="Nelder-Mead",
                            options={"xatol": 1e-8, "fatol": gap_tol * 1e-2, "maxiter": 300})
    return bool(res.fun >= gap_tol)


def _analyse(bands: _Bands, k_cart: np.ndarray, n: int, energy: float, radius: float, gap_tol: float,
             n_shrink: int = 5):
    """Chirality and cone of a touching of bands (n-1, n) at Cartesian k_cart.

    The flux is taken on spheres of radius r, r/3, r/9, ... until two successive ones give the
    same non-zero integer (no other node between them); the larger of the two is reported.
    Returns ("node", fields), ("nodal_line", info) or ("failure", info).
    """
    prev, history = None, []
    for j in range(n_shrink):
        r = radius / 3 ** j
        s = sphere_flux(bands, k_cart, n, r)
        history.append((r, s["flux"]))
        if not _isolated(bands, s, k_cart, n, r, gap_tol):
            return "nodal_line", {"sphere_radius_inv_A": r}
        chi = int(np.rint(s["flux"]))
        ok = abs(s["flux"] - chi) < 0.1 and chi != 0
        stable = ok and prev is not None and prev[0] == chi
        last = np.min(s["E_hi"] - s["E_lo"]) < 30 * gap_tol  # a smaller sphere would not be gapped
        if stable or (ok and last):
            s, r = (prev[1], prev[2]) if stable else (s, r)
            vel, tilt, ratio = cone_fit(s["q"], s["E_lo"], s["E_hi"], energy)
            return "node", {"chirality": chi, "flux": s["flux"], "velocity_eV_A": tuple(float(x) for x in vel),
                            "tilt_eV_A": tuple(float(x) for x in tilt), "tilt_ratio": ratio, "radius": r,
                            "flux_stable": bool(stable), "history": history}
        prev = (chi, s, r) if ok else None
        if last:
            break
    return "failure", {"reason": "Berry flux through the sphere is not a non-zero integer stable under "
                                 "shrinking the sphere", "flux_over_2pi": s["flux"], "sphere_radius_inv_A": r}
