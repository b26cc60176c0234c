"""Where the Fermi level sits: band ranges, bands crossing E_F, and E_F from the electron count.

Pure functions on band energies; :func:`band_energies` samples them with the interpolator
(docs/theory.md, "Fermi level and electron count").

Electron count. ``num_electrons`` is the number of electrons per cell in the *Wannier bands*
(the bands of the model), counted with the spin degeneracy g of the model (2 without spinors,
1 with spinors): N(mu) = g sum_k w_k sum_n f((E_nk - mu)/k_B T). Electrons in bands below the
Wannier subspace (``exclude_bands``, semicore bands below ``dis_win_min``) are not in the
model: subtract g times their number from the DFT valence count
(:func:`bands_below_wannier_window` counts them from the ``.win`` and ``.eig``).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit

from .io.errors import GMEInputError

__all__ = ["band_energies", "band_report", "electron_count", "fermi_level_from_count",
           "bands_below_wannier_window", "material_fermi_level", "dos_at", "fermi_grid", "attach_fermi_info"]


def band_energies(model, mesh: Sequence[int] = (12, 12, 12), sym=None) -> tuple[np.ndarray, np.ndarray]:
    """Band energies on a Gamma-centred mesh (irreducible points when ``sym`` is given).

    Returns
    -------
    E : float ndarray, shape (nk, nw), eV, ascending per k
    w : float ndarray, shape (nk,), weights summing to 1
    """
    from threadpoolctl import threadpool_limits

    from .bands import Interpolator
    from .kmesh import check_mesh, uniform_mesh

    mesh = check_mesh(mesh)
    if sym is not None:
        from .symmetry import irreducible_kpoints

        irr = irreducible_kpoints(mesh, sym)
        k, w = irr.k_red, np.asarray(irr.weights, dtype=float)
    else:
        k = uniform_mesh(mesh, (0, 0, 0))
        w = np.full(len(k), 1.0 / len(k))
    with threadpool_limits(limits=1):
        E = Interpolator(model, external=False, spin=False).energies(k)
    return np.asarray(E), w / w.sum()


def band_report(E: np.ndarray, fermi_energies: Sequence[float]) -> dict:
    """Band range and, per Fermi level, the bands that cross it.

    E : (nk, nb) eV.  Returns dict with ``band_min``/``band_max`` (nb,) eV, ``range_eV`` [lowest,
    highest], and ``fermi_levels``: one dict per E_F with ``E_F``, ``crossing`` (1-based band
    indices whose range contains E_F), ``bands_below`` (bands entirely below), and, when no band
    crosses, ``gap`` = [top of the highest band below, bottom of the lowest band above] (eV;
    None at the edges): such an E_F has no Fermi surface on this mesh.
    """
    E = np.asarray(E)
    lo, hi = E.min(axis=0), E.max(axis=0)
    levels = []
    for ef in np.atleast_1d(np.asarray(fermi_energies, dtype=float)):
        cross = np.nonzero((lo <= ef) & (hi >= ef))[0]
        below = int((hi < ef).sum())
        d = {"E_F": float(ef), "crossing": [int(i) + 1 for i in cross], "bands_below": below}
        if cross.size == 0:
            d["gap"] = [float(hi[hi < ef].max()) if below else None,
                        float(lo[lo > ef].min()) if (lo > ef).any() else None]
        levels.append(d)
    return {"n_bands": int(E.shape[1]), "band_min": lo, "band_max": hi,
            "range_eV": [float(lo.min()), float(hi.max())], "fermi_levels": levels}


def electron_count(E: np.ndarray, w: np.ndarray, mu: float, kT: float, g: int) -> float:
    """N(mu) = g sum_k w_k sum_n f((E_nk - mu)/kT): electrons per cell in these bands.

    E : (nk, nb) eV; w : (nk,) summing to 1; mu, kT : eV (kT > 0); g : 1 or 2.
    """
    return float(g * np.einsum("k,kn->", w, expit(-(np.asarray(E) - mu) / kT)))


def fermi_level_from_count(E: np.ndarray, w: np.ndarray, num_electrons: float, kT: float, g: int,
                           tol: float = 1e-7) -> float:
    """Chemical potential mu (eV) with :func:`electron_count` = ``num_electrons`` (charge neutrality).

    Raises GMEInputError when the count is not between 0 and g x (number of bands).
    """
    nb = E.shape[1]
    if not (0 < num_electrons < g * nb):
        raise GMEInputError(f"--num-electrons: {num_electrons:g} is not between 0 and {g * nb} (= {g} x {nb} "
                            "Wannier bands): count only the electrons in the Wannier bands (docs/user_guide.md)")
    lo, hi = float(E.min()) - 40 * kT - 1.0, float(E.max()) + 40 * kT + 1.0
    return float(brentq(lambda mu: electron_count(E, w, mu, kT, g) - num_electrons, lo, hi, xtol=tol))


def bands_below_wannier_window(win, eig_path: Optional[str]) -> dict:
    """Bands of the DFT calculation below the Wannier subspace (not in the model).

    ``exclude_bands`` of the ``.win`` below the first included band, plus the included bands that
    lie entirely below ``dis_win_min`` at every k of the ``.eig`` (``None`` when there is no
    ``.eig``, or ``dis_win_min`` is not set). Returns dict ``excluded``, ``below_dis_win_min``.
    """
    excl = _excluded_bands(win.keywords.get("exclude_bands", ""))
    below_win = None
    dmin = win.get_float("dis_win_min")
    if eig_path and dmin is not None:
        data = np.loadtxt(eig_path)
        nb = int(data[:, 0].max())
        E = data[:, 2].reshape(-1, nb)
        below_win = int((E.max(axis=0) < dmin).sum())
    first = 1
    while first in excl:
        first += 1
    return {"excluded": first - 1, "below_dis_win_min": below_win}


def _excluded_bands(text: str) -> set:
    out: set = set()
    for part in str(text).replace(",", " ").split():
        if "-" in part:
            a, b = part.split("-", 1)
            out.update(range(int(a), int(b) + 1))
        elif part.strip():
            out.add(int(part))
    return out


# 9 parameters: the model, its .win and the keyword-only options of the Fermi-level flags.
def material_fermi_level(model, *, num_electrons: Optional[float] = None, win_fermi_energy: Optional[float] = None,
                         kT: float = 0.025852, mesh: Sequence[int] = (16, 16, 16), spin_degeneracy: Optional[int] = None,
                         symprec: float = 1e-5, use_symmetry: bool = True, bands: Optional[tuple] = None) -> dict:
    """The material's own Fermi level and the band energies it was found from.

    Parameters
    ----------
    model : TBModel
    num_electrons : float, optional
        Electrons per cell in the Wannier bands (module docstring): E_F by charge neutrality
        at ``kT`` (eV) on ``mesh`` (irreducible points when the model has a structure).
    win_fermi_energy : float, optional, eV
        ``fermi_energy`` of the ``.win``, used when ``num_electrons`` is not given.
    spin_degeneracy : 1, 2 or None (None: 1 with spinors, else 2)
    use_symmetry : bool
        Irreducible points of the structure's point group (False: the whole mesh).
    bands : (E, w), optional
        Band energies already computed (see :func:`band_energies`).

    Returns
    -------
    dict
        ``E_F_eV`` (float or None), ``source`` (str), ``num_electrons``, ``kT_eV``, ``mesh``,
        and the arrays ``E`` (nk, nw) eV and ``w`` (nk,) under ``bands``.
    """
    g = spin_degeneracy or (1 if model.spinors else 2)
    if bands is None:
        sym = None
        if use_symmetry and model.atoms is not None:
            from .symmetry import find_symmetry

            sym = find_symmetry(model.atoms, symprec=symprec, source=model.name)
        bands = band_energies(model, mesh, sym)
    E, w = bands
    out = {"num_electrons": num_electrons, "kT_eV": float(kT), "mesh": [int(n) for n in mesh],
           "spin_degeneracy": int(g), "bands": (E, w)}
    if num_electrons is not None:
        mu = fermi_level_from_count(E, w, float(num_electrons), kT, g)
        out.update(E_F_eV=round(mu, 6), source=f"charge neutrality: {num_electrons:g} electrons in the Wannier "
                   f"bands (x{g} per band) at k_B T = {kT * 1e3:.2f} meV on a {'x'.join(map(str, out['mesh']))} mesh")
    elif win_fermi_energy is not None:
        out.update(E_F_eV=float(win_fermi_energy), source="fermi_energy of the .win")
    else:
        out.update(E_F_eV=None, source="unknown (give --num-electrons, or fermi_energy in the .win)")
    return out


def dos_at(E: np.ndarray, w: np.ndarray, fermi_energies: Sequence[float], kT: float, g: int) -> np.ndarray:
    """DOS g sum_k w_k sum_n (-f'(E_nk - E_F)) in states / eV / cell, (nE,), Fermi-Dirac at kT (eV)."""
    ef = np.atleast_1d(np.asarray(fermi_energies, dtype=float))
    x = (np.asarray(E)[None] - ef[:, None, None]) / kT
    d = expit(x) * expit(-x) / kT
    return g * np.einsum("k,ekn->e", w, d)


def fermi_grid(*, efermi: Optional[Sequence[float]] = None, efermi_range: Optional[Sequence[float]] = None,
               relative: bool = False, material_ef: Optional[float] = None) -> np.ndarray:
    """The Fermi levels of a run, float (nE,), eV, rounded to 1e-10 eV (no 8.360000000000001).

    ``efermi`` (list) or ``efermi_range`` (MIN, MAX, STEP; MAX included); with ``relative`` they
    are offsets from ``material_ef``. Without either: ``[material_ef]``. Raises GMEInputError
    when a level is asked for and cannot be given.
    """
    if efermi is not None:
        ef = np.atleast_1d(np.array(efermi, dtype=float))
    elif efermi_range is not None:
        lo, hi, step = efermi_range
        if step <= 0 or hi < lo:
            raise GMEInputError("--efermi-range needs MIN <= MAX and STEP > 0")
        ef = lo + step * np.arange(int(np.floor((hi - lo) / step + 1e-9)) + 1)
    elif material_ef is not None:
        return np.array([float(material_ef)])
    else:
        raise GMEInputError("no Fermi energy: give --efermi, --efermi-range or --num-electrons "
                            "(the .win has no fermi_energy)")
    if relative:
        if material_ef is None:
            raise GMEInputError("--efermi-relative: the material's Fermi level is unknown: give --num-electrons "
                                "(or fermi_energy in the .win)")
        ef = ef + material_ef
    return np.round(ef, 10)


def attach_fermi_info(result, fermi: Optional[dict]) -> None:
    """Set ``result.info["fermi_level"]`` from :func:`material_fermi_level`'s dict: the material's
    E_F, the band range and, per Fermi level of the result, the bands crossing it."""
    if fermi is None:
        return
    E, _ = fermi["bands"]
    rep = band_report(E, result.fermi_energies)
    result.info["fermi_level"] = {
        "material_E_F_eV": fermi["E_F_eV"], "source": fermi["source"], "num_electrons": fermi["num_electrons"],
        "band_range_eV": rep["range_eV"], "n_bands": rep["n_bands"], "band_mesh": fermi["mesh"],
        "levels": rep["fermi_levels"]}
