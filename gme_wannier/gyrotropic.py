"""The natural-gyrotropy family of Wannier90's ``gyrotropic`` module (TPS18), from the same k loop.

Quantities (each an object with ``name``, ``chunk`` and ``finish``; see
:func:`gme_wannier.calculate.compute`, ``quantities``), in postw90's units and signs:

* ``C``    ohmic tensor (TPS18 Eq. B6), A/cm:
  C_ij = (e/h) (1/V) sum_k w_k sum_n (-f'_n) (dE_n/dk_i) (dE_n/dk_j)   (factor 1e8 e^2/(h V) from eV A^2)
* ``D``    Berry-curvature dipole (TPS18 Eq. 2), dimensionless:
  D_ij = (1/V) sum_k w_k sum_n (-f'_n) (dE_n/dk_i) Omega_n,j
* ``Dw``   its finite-frequency form D~(omega) (TPS18 Eq. 12), with Omega_n replaced by
  Omega~_n,c(omega) = -2 sum_{m not in g(n)} Im(A_nm,a A_mn,b) Re[w_mn^2 / (w_mn^2 - z^2)],
  w_mn = E_m - E_n, z = hbar omega + i eta, (a, b, c) cyclic, A = U^+ A^(W) U + i D the full
  Berry connection (WYSV06 Eq. 25).
* ``DOS``  (1/V) sum_k w_k sum_n (-f'_n), 1/(eV Angstrom^3).
* ``NOA``  interband natural optical activity gamma_abc(omega) (TPS18 Eqs. C12, C14, C15;
  Malashevich and Souza PRB 82, 245118), orbital and, with spin matrices, spin parts, Angstrom.
  gamma is antisymmetric in (a, b); it is stored as G[d, c] = gamma_{a b c} with (a, b, d)
  cyclic (d = x for yz, y for zx, z for xy), the array postw90 fills, an axial rank-2 tensor.

All Fermi-surface weights -f' are the settings' smearing; bands degenerate within
``degen_thresh`` are left out with ``degeneracy="skip"`` (postw90) or taken as a group
(velocity averaged, curvature summed) with ``"group"``. NOA uses the T = 0 occupations of
postw90 (n occupied if E_n < E_F, l empty if E_F <= E_l < ``eigval_max``), frequencies
z = hbar omega + i eta with eta the smearing width unless given; with "skip" the rotation D
with postw90's 1e-7 eV cut (``wham_get_D_h``) and diagonal velocities (postw90 verbatim, not
gauge invariant at exact degeneracies), with "group" the gauge-covariant form (D cut inside
degenerate groups, their velocity block kept; docs/theory.md section 10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional, Sequence

import numpy as np

from .banddata import BandData
from .gyrotropic_bands import (_ALPHA, _BETA, _D_CUT, band_block, berry_curvature as _berry_curvature,
                               curvature_omega as _curvature_omega, full_connection as _full_connection)
from .integrate import SurfaceWeights, surface_weights
from .io.errors import GMEInputError
from .tensorform import AXIAL_EVEN, POLAR_EVEN, TensorCharacter, project
from .units import e, eps0, hbar, m_e

__all__ = ["C", "D", "Dw", "DOS", "NOA", "make_quantities", "QUANTITY_NAMES",
           "project_rank2", "gamma_tensor", "quantities_from_options", "win_frequencies", "rotatory_power"]

QUANTITY_NAMES = ("C", "D", "Dw", "NOA", "DOS")


def _contract(W: np.ndarray, X: np.ndarray) -> np.ndarray:
    """sum_{k,n} W[k, n, E] X[k, ..., n] -> (nE, ...)."""
    n, nw, nE = W.shape
    Xm = np.moveaxis(X, -1, 1).reshape(n * nw, -1)
    return (W.reshape(n * nw, nE).T @ Xm).reshape((nE,) + X.shape[1:-1])


def _blocks(interp, k_red, weights, fn):
    """Apply fn(k, w) to cache-sized blocks of a chunk and add the dict results."""
    from .integrate import block_size

    weights = np.asarray(weights, dtype=float).reshape(-1)
    k_red = np.atleast_2d(np.asarray(k_red, dtype=float))
    bs = block_size(interp)
    total: dict = {}
    for i in range(0, len(weights), bs):
        part = fn(k_red[i:i + bs], weights[i:i + bs])
        for key, val in (part or {}).items():
            total[key] = total[key] + val if key in total else val
    return total


# ---------------------------------------------------------------------------------------------
# symmetry


def project_rank2(T: np.ndarray, sym, *, axial: bool) -> np.ndarray:
    """Group average of rank-2 time-reversal-even tensors T (..., 3, 3), axial or polar: see
    :func:`gme_wannier.tensorform.project`."""
    return project(T, sym, AXIAL_EVEN if axial else POLAR_EVEN)


def _sym(T, sym, character: TensorCharacter):
    return T if sym is None else project(T, sym, character)


# ---------------------------------------------------------------------------------------------
# the quantities


class _Quantity:
    """The protocol of :func:`gme_wannier.calculate.compute` ``quantities``.

    ``chunk(interp, k_red, weights, st) -> dict``: interp a :class:`gme_wannier.bands.Interpolator`,
    k_red float (nk, 3) reduced, weights float (nk,) fractions of the BZ (sum 1 over the zone),
    st :class:`gme_wannier.integrate.GMESettings`; returns the raw weighted sums of the chunk
    (float arrays, keys named after the output; the k loop adds them over chunks and ranks).
    ``finish(raw, model, st, sym) -> dict``: raw the summed dict, model the TBModel (for the
    cell volume), sym a CrystalSymmetry or None; returns the tensors in postw90's units,
    projected on the symmetry-allowed form when sym is given (irreducible k-points).
    """

    @property
    def fingerprint(self) -> str:
        """Every parameter of the quantity (checkpoints of the k loop key on it)."""
        return repr(self)


class _SurfaceQuantity(_Quantity):
    """A Fermi-surface sum sum_k w_k sum_n (-f'_n) X_n(k): a subclass gives ``term`` (X of a
    block of band data, float (na, ..., nw), per band or per degenerate group as the weights
    expect), ``character`` (how its tensor transforms, for the symmetry projection) and
    ``finish`` (the unit factor). ``arrange`` orders the axes of the sum (default (nE, ...))."""

    character: ClassVar[Optional[TensorCharacter]] = None

    def term(self, b: BandData, sw: SurfaceWeights, st) -> np.ndarray:
        """X_n of a block: b the band data (every band a column), sw its Fermi-surface weights
        (:func:`gme_wannier.integrate.surface_weights`: group-mean velocities ``sw.v``, group sums
        ``sw.per_column``, states per group ``sw.count``), st the settings. Returns (na, ..., nw)."""
        raise NotImplementedError

    def arrange(self, total: np.ndarray) -> np.ndarray:
        """The raw sum (nE, ...) in the axis order of the output (default unchanged)."""
        return total

    def chunk(self, interp, k_red, weights, st) -> dict:
        """Raw sums of one chunk, {name: float array} (see the class)."""
        def fn(k, w):
            b = band_block(interp, k, st, all_k=False)
            if b is None:
                return None
            sw = surface_weights(b, st).scaled(w[b.k_index])  # the weights of the GME sums
            return {self.name: self.arrange(_contract(sw.W, self.term(b, sw, st)))}

        out = _blocks(interp, k_red, weights, fn)
        return out if out else {self.name: np.zeros(self.shape(st))}

    def shape(self, st) -> tuple:
        """Shape of the raw sum: (nE, 3, 3) unless a subclass says otherwise."""
        return (len(st.EF), 3, 3)

    def projected(self, T: np.ndarray, sym) -> np.ndarray:
        """T (..., 3, 3) projected on the allowed form of ``character`` (unchanged if sym is None)."""
        return _sym(T, sym, self.character)


@dataclass(frozen=True)
class C(_SurfaceQuantity):
    """Ohmic tensor C_ij (A/cm), polar, symmetric (TPS18 Eq. B6); sigma = (2 pi e tau/hbar) C.

    Raw sum_k w sum_n (-f') v_i v_j, (nE, 3, 3) eV Angstrom^2; C = 1e8 e^2/(h V) x raw."""

    name: str = "C"
    character: ClassVar[TensorCharacter] = POLAR_EVEN

    def term(self, b, sw, st):
        """v_i v_j summed over each degenerate group (block trace of Re V_i V_j), float (na, 3, 3, nw) eV^2 Angstrom^2."""
        same = b.labels[:, :, None] == b.labels[:, None, :]
        # sum over the group of Re(V_i,nm V_j,mn): the block trace, v_i v_j when isolated
        return sw.per_column(np.einsum("kinm,kjmn,knm->kijn", b.V, b.V, same).real)

    def finish(self, raw, model, st, sym) -> dict:
        """C = 1e8 e^2 / (h V) x raw, A/cm, projected as a polar tensor."""
        fac = 1e8 * e ** 2 / (2 * np.pi * hbar * model.cell_volume)
        return {"C": self.projected(raw["C"] * fac, sym)}


@dataclass(frozen=True)
class D(_SurfaceQuantity):
    """Berry-curvature dipole D_ij (dimensionless), axial (TPS18 Eq. 2).

    Raw sum_k w sum_n (-f') v_i Omega_j, (nE, 3, 3) Angstrom^3; D = raw / V."""

    name: str = "D"
    character: ClassVar[TensorCharacter] = AXIAL_EVEN

    def term(self, b, sw, st):
        """Group-mean velocity times the group's Berry curvature, float (na, 3, 3, nw) eV Angstrom^3."""
        Om = sw.per_column(_berry_curvature(b, b.D))
        return sw.v[:, :, None, :] * Om[:, None, :, :]

    def finish(self, raw, model, st, sym) -> dict:
        """D = raw / V, dimensionless, projected as an axial tensor."""
        return {"D": self.projected(raw["D"] / model.cell_volume, sym)}


@dataclass(frozen=True)
class DOS(_SurfaceQuantity):
    """Density of states (1/(eV Angstrom^3)) with the smearing and degeneracy of the others:
    raw sum_k w sum_n (-f') (states of the group), (nE,) 1/eV; DOS = raw / V."""

    name: str = "DOS"

    def term(self, b, sw, st):
        """The states of each degenerate group, float (na, nw)."""
        return sw.count

    def shape(self, st):
        """(nE,): one number per Fermi level."""
        return (len(st.EF),)

    def finish(self, raw, model, st, sym) -> dict:
        """DOS = raw / V, 1/(eV Angstrom^3)."""
        return {"DOS": raw["DOS"] / model.cell_volume}


def _frequencies(omega, eta, st) -> np.ndarray:
    om = np.atleast_1d(np.asarray(omega, dtype=float))
    if om.ndim != 1 or om.size == 0 or not np.all(np.isfinite(om)):
        raise GMEInputError("omega must be a non-empty list of frequencies hbar*omega (eV)")
    et = st.smearing.width if eta is None else float(eta)
    return om + 1j * et


@dataclass(frozen=True)
class Dw(_SurfaceQuantity):
    """D~_ij(omega) (dimensionless), axial (TPS18 Eq. 12), one tensor per frequency.

    omega : hbar omega values (eV); eta : broadening (eV) of z = hbar omega + i eta, None for
    the smearing width (postw90). Raw sum_k w sum_n (-f') v_i Omega~_j(omega),
    (nomega, nE, 3, 3) Angstrom^3; D~ = raw / V.
    """

    omega: tuple = (0.0,)
    eta: Optional[float] = None
    name: str = "Dw"
    character: ClassVar[TensorCharacter] = AXIAL_EVEN

    def term(self, b, sw, st):
        """Group-mean velocity times Omega~(omega) of the group, float (na, nomega, 3, 3, nw) eV Angstrom^3."""
        z = _frequencies(self.omega, self.eta, st)
        A = _full_connection(b, b.rotation(_D_CUT))
        Om = sw.per_column(_curvature_omega(A, b.E, b.labels, z))  # (k, f, 3, n)
        return sw.v[:, None, :, None, :] * Om[:, :, None, :, :]  # (k, f, 3, 3, n)

    def arrange(self, total):
        """(nE, nomega, 3, 3) -> (nomega, nE, 3, 3)."""
        return np.moveaxis(total, 1, 0)

    def shape(self, st):
        """(nomega, nE, 3, 3)."""
        return (len(self.omega), len(st.EF), 3, 3)

    def finish(self, raw, model, st, sym) -> dict:
        """D~ = raw / V per frequency, projected as an axial tensor; with the frequencies (eV)."""
        return {"Dw": self.projected(raw["Dw"] / model.cell_volume, sym),
                "omega_eV": np.array(self.omega, dtype=float)}


def _noa_pair_terms(b: BandData, A: np.ndarray, vmat: np.ndarray, spin: bool, o: slice, u: slice) -> tuple:
    """Pair arrays of the NOA sum for rows n in ``o`` (bands that can be occupied) and columns
    l in ``u`` (bands that can be empty), float (nk, 9, no, nu) indexed [k, 3 d + c, n, l]:
    P_orb = Re(A_b,ln B_nl,ac - A_a,ln B_nl,bc), Q = Im(A_b,ln (v_c A_a)_nl + A_a,nl (v_c A_b)_ln)
    and, with spin, P_spin (the same with B^spin), for (a, b, d) cyclic. B as in TPS18 Eq. C14:
    B_nl,ac = -i (v_a A_c + A_c v_a)_nl + sum_m [(E_n - E_m) A_nm,a A_ml,c - (E_l - E_m) A_nm,c A_ml,a],
    B^spin_nl,ac = -i eps_abc <n|sigma_b|l> (TPS18 Eq. C15). vmat (nk, 3, nw, nw): the velocity
    matrix, diagonal (v_n delta_nl, postw90) or block-diagonal over degenerate groups (gauge
    covariant); with a diagonal vmat, Q = (v_n,c + v_l,c) Im(A_a,nl A_b,ln)."""
    E = b.E
    EA = E[:, None, :, None] * A  # [k, a, m, l] = E_m A_a,ml
    Ao, Au = A[:, :, o, :], A[:, :, :, u]  # rows n, columns l
    vo, vu = vmat[:, :, o, :], vmat[:, :, :, u]
    Eo, Eu = E[:, o], E[:, u]
    B = np.empty(A.shape[:2] + (3,) + Ao.shape[2:3] + Au.shape[3:], dtype=complex)  # [k, a, c, n, l]
    for a in range(3):
        for c in range(3):
            B[:, a, c] = (-1j * (vo[:, a] @ Au[:, c] + Ao[:, c] @ vu[:, a])
                          + Eo[:, :, None] * (Ao[:, a] @ Au[:, c]) - Ao[:, a] @ EA[:, c][:, :, u]
                          - (Ao[:, c] @ Au[:, a]) * Eu[:, None, :] + Ao[:, c] @ EA[:, a][:, :, u])
    AT = np.swapaxes(A[:, :, u, o], -1, -2)  # [k, a, n, l] = A_a,ln
    Aol = A[:, :, o, u]  # [k, a, n, l] = A_a,nl
    vA = vo[:, :, None] @ Au[:, None]  # [k, c, a, n, l] = (v_c A_a)_nl
    vAT = np.swapaxes(vmat[:, :, None][..., u, :] @ A[:, None][..., o], -1, -2)  # (v_c A_b)_ln at [n, l]
    nk, no, nu = B.shape[0], B.shape[3], B.shape[4]
    P = np.empty((nk, 9, no, nu))
    Q = np.empty((nk, 9, no, nu))
    Ps = np.empty((nk, 9, no, nu)) if spin else None
    if spin:
        Bs = np.zeros_like(B)
        for bb in range(3):  # B^spin_ac = -i S_b for (a, b, c) cyclic
            Bs[:, _BETA[bb], _ALPHA[bb]] = -1j * b.S[:, bb][:, o, u]
    for d, (a, bb) in enumerate(zip(_ALPHA, _BETA)):
        for c in range(3):
            P[:, 3 * d + c] = (AT[:, bb] * B[:, a, c] - AT[:, a] * B[:, bb, c]).real
            Q[:, 3 * d + c] = (AT[:, bb] * vA[:, c, a] + Aol[:, a] * vAT[:, c, bb]).imag
            if spin:
                Ps[:, 3 * d + c] = (AT[:, bb] * Bs[:, a, c] - AT[:, a] * Bs[:, bb, c]).real
    return P, Q, Ps


@dataclass(frozen=True)
class NOA(_Quantity):
    """Interband natural optical activity gamma (Angstrom), orbital and spin (TPS18 Eq. C12).

    omega : hbar omega values (eV); eta : broadening of z = hbar omega + i eta (eV), None for
    the smearing width (postw90); eigval_max : empty bands above this energy (eV) are left
    out (postw90's ``gyrotropic_eigval_max``), None for all bands.
    Output ``NOA_orb``, ``NOA_spin``: (nomega, nE, 3, 3) arrays G[d, c] = gamma_{a b c},
    (a, b, d) cyclic; :func:`gamma_tensor` gives the full gamma_abc.
    """

    omega: tuple = (0.0,)
    eta: Optional[float] = None
    eigval_max: Optional[float] = None
    name: str = "NOA"
    character: ClassVar[TensorCharacter] = AXIAL_EVEN

    def chunk(self, interp, k_red, weights, st) -> dict:
        """Raw sums (nomega, nE, 3, 3): ``NOA_orb`` Angstrom^3/eV, ``NOA_spin`` Angstrom/eV^2."""
        z = _frequencies(self.omega, self.eta, st)
        EF = st.EF
        emax = np.inf if self.eigval_max is None else float(self.eigval_max)
        spin = interp.spin

        def fn(k, w):
            b = band_block(interp, k, st, all_k=True)
            if st.degeneracy == "skip":  # postw90 verbatim: D cut at 1e-7 eV, diagonal velocity
                A = _full_connection(b, b.rotation(_D_CUT))
                vmat = np.einsum("kcn,nm->kcnm", b.v, np.eye(interp.nw))
            else:  # gauge covariant: D cut inside degenerate groups, their velocity block kept
                labels = b.labels
                A = _full_connection(b, b.D)
                vmat = b.V * (labels[:, :, None] == labels[:, None, :])[:, None]
            out = {"NOA_orb": np.zeros((len(z), len(EF), 3, 3))}
            if spin:
                out["NOA_spin"] = np.zeros((len(z), len(EF), 3, 3))
            E = b.E
            # only bands below the highest E_F can be occupied, only bands above the lowest empty
            o = slice(0, int((E < EF.max()).sum(axis=1).max()))
            u = slice(int((E < EF.min()).sum(axis=1).min()), interp.nw)
            if o.stop == 0 or u.start == interp.nw:
                return out
            P, Q, Ps = _noa_pair_terms(b, A, vmat, spin, o, u)
            E_o, E = E[:, o], E[:, u]
            wln = E[:, None, :] - E_o[:, :, None]  # [k, n, l] = E_l - E_n
            M1 = 1.0 / (wln[..., None] ** 2 - z ** 2)  # (k, n, l, f)
            Wm = M1.real * w[:, None, None, None]
            We = (-M1 * (2 * wln[..., None] ** 2 * M1 + 1)).real * w[:, None, None, None]
            for ie, ef in enumerate(EF):
                occ = E_o < ef
                emp = (E >= ef) & (E < emax)
                kk, n, l = np.nonzero(occ[:, :, None] & emp[:, None, :])
                if len(kk) == 0:
                    continue
                wm, we = Wm[kk, n, l], We[kk, n, l]  # (npair, f)
                out["NOA_orb"][:, ie] = (wm.T @ P[kk, :, n, l] + we.T @ Q[kk, :, n, l]).reshape(-1, 3, 3)
                if spin:
                    out["NOA_spin"][:, ie] = (wm.T @ Ps[kk, :, n, l]).reshape(-1, 3, 3)
            return out
        return _blocks(interp, k_red, weights, fn)

    def finish(self, raw, model, st, sym) -> dict:
        """gamma's orbital (Angstrom) and spin parts from the raw sums (TPS18 Eq. C12 factors), projected as axial tensors."""
        V = model.cell_volume
        out = {"NOA_orb": _sym(raw["NOA_orb"] * 1e10 * e / (V * eps0), sym, self.character),
               "omega_eV": np.array(self.omega, dtype=float)}
        if "NOA_spin" in raw:
            out["NOA_spin"] = _sym(raw["NOA_spin"] * 1e30 * hbar ** 2 / (V * eps0 * m_e), sym, self.character)
        return out


def gamma_tensor(G: np.ndarray) -> np.ndarray:
    """Full gamma_abc = eps_abd G[d, c] from the stored array G (..., 3, 3) -> (..., 3, 3, 3)."""
    eps = np.zeros((3, 3, 3))
    for d, (a, b) in enumerate(zip(_ALPHA, _BETA)):
        eps[a, b, d], eps[b, a, d] = 1.0, -1.0
    return np.einsum("abd,...dc->...abc", eps, G)


def make_quantities(names: Sequence[str], *, omega: Sequence[float] = (0.0,), eta: Optional[float] = None,
                    eigval_max: Optional[float] = None) -> list:
    """Quantity objects for the names in :data:`QUANTITY_NAMES` (others, e.g. ``K``, ignored).

    NOA comes first so that the per-block work it needs (every k) is done once.
    """
    omega = tuple(float(x) for x in omega)
    made = {"C": C(), "D": D(), "DOS": DOS(), "Dw": Dw(omega=omega, eta=eta),
            "NOA": NOA(omega=omega, eta=eta, eigval_max=eigval_max)}
    unknown = [n for n in names if n not in made and n != "K"]
    if unknown:
        raise GMEInputError(f"unknown quantities {unknown} (choose from K, {', '.join(QUANTITY_NAMES)})")
    order = ["NOA", "C", "D", "Dw", "DOS"]
    return [made[n] for n in order if n in names]


def quantities_from_options(o: dict, win=None) -> list:
    """The quantity objects asked for by the CLI options ``quantities`` ("K,C,D,Dw,NOA,DOS"),
    ``omega`` (hbar omega, eV) and ``eigval_max`` (eV); [] for K alone (always computed).
    With ``win_box``, the frequencies and eigval_max not given come from the .win (``win``, a
    :class:`gme_wannier.io.win.WinData`, or SEED.win of ``o["seed"]``) as postw90 reads them
    (:func:`win_frequencies`)."""
    text = o.get("quantities") or "K"
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    bad = [n for n in names if n not in QUANTITY_NAMES + ("K",)]
    if bad or not names:
        raise GMEInputError(f"--quantities: unknown {', '.join(bad) or 'empty list'}; give a comma-separated "
                            f"list from K,{','.join(QUANTITY_NAMES)} (e.g. K,C,NOA)")
    omega, emax = o.get("omega"), o.get("eigval_max")
    if omega is not None and any(not np.isfinite(x) or x < 0 or x > 1e4 for x in omega):
        raise GMEInputError("--omega: frequencies hbar*omega must be finite, >= 0 and <= 1e4 eV")
    if omega is not None and not ({"Dw", "NOA"} & set(names)):
        raise GMEInputError("--omega: only Dw and NOA depend on the frequency; add them to --quantities")
    if emax is not None and "NOA" not in names:
        raise GMEInputError("--eigval-max: only NOA uses it (empty bands left out); add NOA to --quantities")
    if o.get("win_box") and win is None and o.get("seed"):  # the run command's .win
        import os

        from .io.win import read_win
        from .load import _seed_from

        path = _seed_from(o["seed"]) + ".win"
        win = read_win(path) if os.path.exists(path) else None
    if o.get("win_box") and win is not None:
        w_omega, w_emax = win_frequencies(win)
        omega = w_omega if omega is None else omega
        emax = w_emax if emax is None else emax
    return make_quantities(names, omega=[0.0] if omega is None else omega, eigval_max=emax)


def win_frequencies(win) -> tuple:
    """postw90's frequency list and gyrotropic_eigval_max from a .win (WinData).

    Returns (omega list (eV) or None without gyrotropic_freq_max, eigval_max (eV) or None):
    nfreq = nint((max - min)/step) + 1 (at least 2), omega_i = min + i (max - min)/(nfreq - 1);
    eigval_max = gyrotropic_eigval_max, else dis_froz_max + 0.6667 eV, else None (all bands).
    """
    emax = win.get_float("gyrotropic_eigval_max")
    if emax is None and win.get_float("dis_froz_max") is not None:
        emax = win.get_float("dis_froz_max") + 0.6667
    fmax = win.get_float("gyrotropic_freq_max")
    if fmax is None:
        return None, emax
    fmin = win.get_float("gyrotropic_freq_min", 0.0)
    step = win.get_float("gyrotropic_freq_step", 0.01)
    n = max(2, int(np.rint((fmax - fmin) / step)) + 1)
    return [fmin + i * (fmax - fmin) / (n - 1) for i in range(n)], emax


def rotatory_power(omega_eV, G_inter, alpha0=None, tau: Optional[float] = None, axis: int = 2) -> dict:
    """Natural optical rotatory power for light along the Cartesian axis ``axis`` (an optic axis).

    rho_inter = -(omega^2 / 2 c^2) Re gamma_abn(omega)            ((a, b, n) cyclic, gamma_abn = G[n, n])
    rho_gme   = (mu0 / 2) Re D(omega tau) (alpha0_aa + alpha0_bb)   (ZMS; D = 1 for tau None)

    Sign: this package's convention (docs/theory.md section 4, rho > 0 dextrorotatory, rho = mu0 a
    for alpha = a 1); the first line is the interband NOA in that convention (Wannier90's manual
    writes rho_0 = +(omega^2/2c^2) Re gamma_xyz for the opposite sense).

    Parameters
    ----------
    omega_eV : (nw,) hbar omega, eV (> 0).
    G_inter : (nw, nE, 3, 3) the NOA arrays G[d, c] (``NOA_orb`` plus ``NOA_spin``), Angstrom.
    alpha0 : (nE, 3, 3) clean-limit GME tensor, A m^-2 T^-1 (``GMEResult.alpha``), optional.
    tau : relaxation time, s (None: clean limit).

    Returns
    -------
    dict of float (nw, nE) arrays in rad/mm: ``inter``, ``gme`` (zeros without alpha0), ``total``.
    """
    from .tensor import dynamic_factor
    from .units import mu_0

    om = np.asarray(omega_eV, dtype=float) * e / hbar  # rad/s
    c2 = 1.0 / (mu_0 * eps0)
    a, b = _ALPHA[axis], _BETA[axis]
    gam = np.asarray(G_inter)[:, :, axis, axis] * 1e-10  # m
    inter = -(om[:, None] ** 2) / (2 * c2) * gam * 1e-3
    gme = np.zeros_like(inter)
    if alpha0 is not None:
        al = np.asarray(alpha0)
        Dw = np.ones_like(om, dtype=complex) if tau is None else dynamic_factor(om * tau)
        gme = 0.5 * mu_0 * Dw.real[:, None] * (al[:, a, a] + al[:, b, b])[None, :] * 1e-3
    return {"inter": inter, "gme": gme, "total": inter + gme}
