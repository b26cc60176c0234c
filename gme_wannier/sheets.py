"""Where alpha comes from: per-band and per-Fermi-sheet parts of alpha, their Chern numbers, CME.

ZMS Eq. 11 writes alpha as a sum over the Fermi sheets S_na of band n; Eqs. 2-3 give the chiral
magnetic effect of a chemical-potential imbalance between sheets through their Chern numbers
C_na = (1/2 pi) oint_S Omega_n . dS. On a mesh of the whole zone (periodic) or of a box:

1. Sheets (pass 1, energies only): for each band n and Fermi level E_F, the mesh cells whose
   corners lie on both sides of E_F; their face-connected components (scipy.ndimage.label,
   with the components that meet across the zone boundary merged) are the sheets. Every mesh
   point is then given to the nearest crossed cell's sheet (Euclidean distance transform on the
   mesh, periodic images included), so that the smeared Fermi-surface weight of every point
   belongs to exactly one sheet; a band with no crossing at that E_F keeps its (smearing-tail)
   weight in one "no Fermi surface" entry.
2. Contributions (pass 2): the summand of :func:`gme_wannier.integrate.fermi_surface_chunk`,
   w (-f') v_i m_j per band column, summed per sheet (np.bincount): the sheets add up to the
   whole-mesh alpha of :func:`gme_wannier.calculate.compute` (symmetry off, same mesh and
   smearing) to rounding.
3. Chern number, two ways. ``chern_surface``: the Berry flux of band n through the closed lattice
   surface made of the mesh faces between cells with all corners occupied (E_n < E_F) and the
   sheet's crossed cells, from the plaquette products of the band's eigenvectors at the face
   corners (normal out of the occupied region, along grad E_n): an integer by construction,
   equal to the charge enclosed once the surface is gapped and the band smooth on it (every
   plaquette's phase below pi/2: ``chern_reliable``, else a node is too close); 0 when no
   cell of the sheet's occupied side is whole (a pocket smaller than the mesh). ``chern``: the
   smeared Fermi-surface sum C = (1/2 pi) (2 pi)^3/V_cell sum_k w_k (-f') v . Omega_n, the flux
   averaged over the smearing window, which tends to the same integer as the mesh resolves the
   sheet but is dominated by single mesh points next to a Weyl node otherwise.
4. CME: alpha^CME = -(e^2/h^2) sum mu_na C_na with mu = +dmu/2 on sheets of positive and -dmu/2
   on sheets of negative Chern number (isotropic, A m^-2 T^-1; dmu in eV).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from .banddata import BandData
from .bands import Interpolator
from .integrate import GMESettings, band_data_of, block_size, energy_window, gme_moments, surface_weights, to_ampere
from .io.errors import GMEInputError
from .model import TBModel
from .sheetmesh import find_sheets, surface_chern
from .units import E2_OVER_H2_EV, E_OVER_HBAR


@dataclass(frozen=True)
class SheetDecomposition:
    """Per-sheet and per-band parts of alpha at each Fermi level.

    fermi_energies : float (nE,) eV.
    sheets : tuple (one per E_F) of tuples of dict: ``band`` (1-based), ``sheet`` (index within
        the band, 0 = no Fermi surface), ``n_cells``, ``center_reduced`` (3,), ``alpha``
        (3, 3, total) and ``alpha_orbital``, ``alpha_spin`` (A m^-2 T^-1), ``alpha_iso``,
        ``chern_surface`` (lattice flux through the mesh faces next to the sheet, an integer),
        ``chern_integer`` (its value as int) and ``chern`` (the smeared Fermi-surface flux, float).
    alpha : float (nE, 3, 3), the sum over sheets (total, A m^-2 T^-1).
    chern_total : float (nE,), the sum of the sheets' smeared fluxes ``chern``.
    info : dict, mesh, method, CME settings.
    """

    fermi_energies: np.ndarray
    sheets: tuple
    alpha: np.ndarray
    chern_total: np.ndarray
    info: dict = field(default_factory=dict)

    def bands(self, e: int) -> list:
        """Per-band sums at Fermi level index e: list of dict band, alpha_iso, chern."""
        out: dict = {}
        for s in self.sheets[e]:
            b = out.setdefault(s["band"], {"band": s["band"], "alpha_iso": 0.0, "chern": 0.0, "chern_surface": 0,
                                           "n_sheets": 0})
            b["alpha_iso"] += s["alpha_iso"]
            b["chern"] += s["chern"]
            b["chern_surface"] += s["chern_integer"]
            b["n_sheets"] += int(s["sheet"] > 0)
        return [out[k] for k in sorted(out)]

    def cme(self, mu_imbalance: float, e: int) -> float:
        """alpha^CME (isotropic, A m^-2 T^-1) of the imbalance mu_imbalance (eV) at level e (ZMS Eq. 3)."""
        deg = self.info["spin_degeneracy"]
        return float(-deg * E2_OVER_H2_EV * sum(0.5 * mu_imbalance * np.sign(s["chern_integer"]) * s["chern_integer"]
                                              for s in self.sheets[e]))

    def dominant(self, e: int, n: int = 3) -> list:
        """The n sheets with the largest |alpha_iso| at level e, with their share of the total."""
        tot = float(np.trace(self.alpha[e]) / 3)
        ranked = sorted(self.sheets[e], key=lambda s: -abs(s["alpha_iso"]))[:n]
        return [dict(s, share=s["alpha_iso"] / tot if tot else float("nan")) for s in ranked]

    def to_dict(self, mu_imbalance: Optional[float] = None) -> dict:
        """The decomposition as the JSON-able dict of the ``fermi_sheets`` block."""
        levels = []
        for e, ef in enumerate(self.fermi_energies):
            lev = {"fermi_energy_eV": float(ef), "alpha_iso_sum": float(np.trace(self.alpha[e]) / 3),
                   "chern_total": float(self.chern_total[e]),
                   "chern_surface_total": int(sum(s["chern_integer"] for s in self.sheets[e])), "bands": self.bands(e),
                   "sheets": [_plain(s) for s in self.sheets[e]]}
            if mu_imbalance is not None:
                lev["alpha_cme_iso"] = self.cme(mu_imbalance, e)
            levels.append(lev)
        out = {"method": self.info.get("method"), "mesh": self.info.get("mesh"), "levels": levels,
               "spin_degeneracy": self.info["spin_degeneracy"]}
        if mu_imbalance is not None:
            out["cme"] = {"mu_imbalance_eV": mu_imbalance, "formula": "alpha_CME = -(e^2/h^2) sum mu_na C_na, "
                          "mu = +dmu/2 on sheets with C > 0, -dmu/2 on C < 0 (ZMS Eq. 3)"}
        return out


def _plain(s: dict) -> dict:
    return {k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v) for k, v in s.items()}


# ----------------------------------------------------------------------------------------------
# pass 2: contributions per sheet


def _column_terms(b: BandData, st: GMESettings, weights: np.ndarray):
    """Per band column of one chunk: weight (na, ns, nE) 1/eV (k weights included, group-first
    columns only), group velocity (na, ns, 3), orbital moment part (na, ns, nE, 3) eV A^2, spin
    (na, ns, 3) or None, Berry curvature Omega (na, ns, 3) A^2 - as in fermi_surface_chunk."""
    sw = surface_weights(b, st).scaled(weights[b.k_index])  # the weights of fermi_surface_chunk
    W, vg, group = sw.W, sw.v, sw.per_column
    Gc_n, Phi_n = gme_moments(b)
    Gc, Phi = group(Gc_n), group(Phi_n)
    if st.moment_energy == "band":
        m = (Gc - group(b.E[:, None, :] * Phi_n))[:, :, :, None] + 0 * st.EF
    else:
        m = Gc[:, :, :, None] - st.EF[None, None, None, :] * Phi[:, :, :, None]
    sig = None if b.S_diag is None else np.swapaxes(group(b.S_diag), 1, 2)
    return W, np.swapaxes(vg, 1, 2), np.moveaxis(m, 1, 3), sig, -np.swapaxes(Phi, 1, 2)


def _accumulate(sums: dict, gid: np.ndarray, W, v, m, sig, Om) -> None:
    """Add w (-f') v_i m_j, v_i sigma_j, (-f') and (-f') v.Omega of each column to its sheet."""
    nz = W != 0
    g = gid[nz]
    Wn = W[nz]
    na, ns, nE = W.shape
    vb = np.broadcast_to(v[:, :, None, :], (na, ns, nE, 3))[nz]
    mb = m[nz]
    G = len(sums["dos"])
    for i in range(3):
        for j in range(3):
            sums["orb"][:, i, j] += np.bincount(g, Wn * vb[:, i] * mb[:, j], minlength=G)
            if sig is not None:
                sb = np.broadcast_to(sig[:, :, None, :], (na, ns, nE, 3))[nz]
                sums["spin"][:, i, j] += np.bincount(g, Wn * vb[:, i] * sb[:, j], minlength=G)
    sums["dos"] += np.bincount(g, Wn, minlength=G)
    ob = np.broadcast_to(Om[:, :, None, :], (na, ns, nE, 3))[nz]
    sums["flux"] += np.bincount(g, Wn * np.einsum("na,na->n", vb, ob), minlength=G)


def _mesh(model: TBModel, mesh, box):
    """k_red (nk, 3), weights (nk,), grid shape, periodic flag, Cartesian step lengths (3,)."""
    from .kmesh import box_mesh, check_mesh, uniform_mesh

    B = model.recip_lattice
    if box is None:
        grid = check_mesh(mesh)
        k = uniform_mesh(grid)
        return k, np.full(len(k), 1.0 / len(k)), grid, True, np.linalg.norm(B, axis=1) / np.array(grid)
    grid = check_mesh(box["mesh"])
    edges = np.array([box.get("b1", (1, 0, 0)), box.get("b2", (0, 1, 0)), box.get("b3", (0, 0, 1))], float)
    k, w = box_mesh(box.get("center", (0, 0, 0)), edges[0], edges[1], edges[2], grid)
    return k, np.full(len(k), w), grid, False, np.linalg.norm(edges @ B, axis=1) / np.array(grid)


def decompose(model: TBModel, settings: GMESettings, mesh: Sequence[int] = (20, 20, 20), *,
              box: Optional[dict] = None, spin_degeneracy: Optional[int] = None,
              chunk: Optional[int] = None, symmetry=None) -> SheetDecomposition:
    """alpha at each Fermi level split into Fermi sheets of each band, with their Chern numbers.

    Parameters
    ----------
    model : TBModel
    settings : GMESettings (Fermi levels, smearing, degeneracy and moment options as for compute).
    mesh : 3 ints, the uniform Gamma-centred mesh of the whole zone (periodic sheets).
    box : dict center, b1, b2, b3 (reduced), mesh, optional: a box instead (sheets cut at its faces).
    spin_degeneracy : 1 or 2 (default: 1 with spinors, else 2, as compute).
    chunk : k-points per evaluation (default: the kernel's cache-sized block).
    symmetry : None/"off", "auto" (spglib on ``model.atoms``) or a CrystalSymmetry: label the
        symmetry-equivalent sheets of a band (sizes within 25 %, centres mapped onto each other by a
        k-space operation within 1.5 mesh steps) with a common ``star``; the sums are not affected.

    Returns
    -------
    SheetDecomposition; its ``alpha`` equals compute(model, settings, mesh=mesh, symmetry="off")
    .alpha["total"] (or the same box) to rounding.
    """
    from threadpoolctl import threadpool_limits

    deg = spin_degeneracy if spin_degeneracy is not None else (1 if model.spinors else 2)
    if deg not in (1, 2):
        raise GMEInputError("spin_degeneracy must be 1 or 2")
    st = settings
    k_red, w, grid, periodic, spacing = _mesh(model, mesh, box)
    interp = Interpolator(model, external=st.external, spin=st.spin)
    chunk = chunk or block_size(interp)
    lo, hi = energy_window(st, model.num_wann)
    with threadpool_limits(limits=1):
        E = interp.energies(k_red)
        rel = [n for n in range(model.num_wann) if E[:, n].min() <= hi + 1e-6 and E[:, n].max() >= lo - 1e-6]
        meta, lookup, faces = find_sheets(E, k_red, grid, periodic, spacing, st.fermi_energies, rel)
        rel_index = np.full(model.num_wann, -1)
        rel_index[rel] = np.arange(len(rel))
        G = len(meta)
        sums = {"orb": np.zeros((G, 3, 3)), "spin": np.zeros((G, 3, 3)), "dos": np.zeros(G), "flux": np.zeros(G)}
        for c in range(0, len(k_red), chunk):
            b, _ = band_data_of(interp, k_red[c:c + chunk], st)
            if b is None:
                continue
            W, v, m, sig, Om = _column_terms(b, st, w[c:c + chunk])
            bi = rel_index[b.cols]  # (na, ns)
            if np.any((bi < 0)[:, :, None] & (W != 0)):
                raise RuntimeError("a band with Fermi-surface weight was not labelled")
            pts = c + b.k_index
            gid = lookup[np.arange(len(st.EF))[None, None, :], np.maximum(bi, 0)[:, :, None], pts[:, None, None]]
            _accumulate(sums, gid, W, v, m, sig, Om)
        sums["surface"], sums["worst_phase"] = surface_chern(interp, k_red, faces, G)
    out = _finish(model, st, meta, sums, deg, periodic, grid, box)
    if symmetry not in (None, False, "off"):
        from .nodes import _symmetry

        _, kops, _ = _symmetry(model, symmetry)
        if box is None:
            tol = 1.5 / np.array(grid)
        else:
            edges = np.array([box.get(f"b{a + 1}", np.eye(3)[a]) for a in range(3)], float)
            tol = 1.5 * float(np.max(np.linalg.norm(edges, axis=1) / np.array(grid)))
        for lv in out.sheets:
            _sheet_stars(lv, kops, tol)
    return out


def _sheet_stars(sheets: tuple, kops: np.ndarray, tol) -> None:
    """Give symmetry-equivalent sheets of a band a common ``star`` index (in place)."""
    n = 0
    for i, a in enumerate(sheets):
        if "star" in a:
            continue
        a["star"] = n
        if a["sheet"]:
            images = np.einsum("gij,j->gi", kops, np.asarray(a["center_reduced"]))
            for b in sheets[i + 1:]:
                if "star" in b or not b["sheet"] or b["band"] != a["band"] or \
                        abs(b["n_cells"] - a["n_cells"]) > 0.25 * a["n_cells"]:
                    continue
                d = images - np.asarray(b["center_reduced"])
                if np.any(np.all(np.abs(d - np.rint(d)) <= tol, axis=1)):
                    b["star"] = n
        n += 1


def _finish(model, st, meta, sums, deg, periodic, grid, box) -> SheetDecomposition:
    """Unit conversion, Chern numbers, the per-level tuples."""
    raw = {"orb": sums["orb"], "spin": sums["spin"]} if st.spin and model.has_spin else {"orb": sums["orb"]}
    K = to_ampere(raw, model, st)
    alpha = {p: deg * E_OVER_HBAR * K[p] for p in ("orbital", "spin", "total")}
    chern = sums["flux"] * (2 * np.pi) ** 2 / model.cell_volume
    nE = len(st.EF)
    levels = [[] for _ in range(nE)]
    for g, mt in enumerate(meta):
        if mt["sheet"] == 0 and sums["dos"][g] == 0:
            continue
        a = alpha["total"][g]
        levels[mt["e"]].append({"band": mt["band"], "sheet": mt["sheet"], "n_cells": mt["n_cells"],
                                "center_reduced": mt["center_reduced"],
                                "kind": "sheet" if mt["sheet"] else "no Fermi surface (smearing tail)",
                                "alpha": a.tolist(), "alpha_orbital_iso": float(np.trace(alpha["orbital"][g]) / 3),
                                "alpha_spin_iso": float(np.trace(alpha["spin"][g]) / 3),
                                "alpha_iso": float(np.trace(a) / 3), "dos_per_eV": float(sums["dos"][g]),
                                "chern": float(chern[g]), "chern_surface": float(sums["surface"][g]),
                                "chern_integer": int(np.rint(sums["surface"][g])),
                                "max_plaquette_phase": float(sums["worst_phase"][g]),
                                "chern_reliable": bool(sums["worst_phase"][g] < 0.5 * np.pi)})
    total = np.zeros((nE, 3, 3))
    ctot = np.zeros(nE)
    for g, mt in enumerate(meta):
        total[mt["e"]] += alpha["total"][g]
        ctot[mt["e"]] += chern[g]
    info = {"method": "sheets: face-connected cells crossed by each band (periodic), every point's weight to "
                      "the nearest sheet; Chern number: lattice Berry flux of the band through the mesh faces "
                      "between fully occupied cells and the sheet's cells (chern_surface, integer), and the "
                      "smeared Fermi-surface sum of v.Omega / 2 pi (chern)",
            "mesh": {"type": "uniform" if box is None else "box", "grid": list(grid), "periodic": periodic,
                     **({"box": {k: np.asarray(v).tolist() for k, v in box.items()}} if box else {})},
            "spin_degeneracy": deg}
    return SheetDecomposition(fermi_energies=st.EF, sheets=tuple(tuple(lv) for lv in levels), alpha=total,
                              chern_total=ctot, info=info)


def _sheet_name(s: dict) -> str:
    if not s["sheet"]:
        return f"band {s['band']} (no Fermi surface)"
    c = ", ".join(f"{x:.2f}" for x in s["center_reduced"])
    return f"band {s['band']} sheet {s['sheet']} near ({c})"


def _levels_to_show(d: SheetDecomposition) -> list:
    """All levels when there are at most 3, else the one with the largest |alpha_iso|."""
    if len(d.fermi_energies) <= 3:
        return list(range(len(d.fermi_energies)))
    return [int(np.argmax(np.abs(np.trace(d.alpha, axis1=1, axis2=2))))]


def sheets_summary(d: SheetDecomposition, n: int = 3, mu_imbalance: Optional[float] = None) -> str:
    """Lines naming the sheets that dominate alpha_iso (share of the total, Chern number)."""
    rows = []
    for e in _levels_to_show(d):
        tot = float(np.trace(d.alpha[e]) / 3)
        parts = [f"{_sheet_name(s)} {100 * s['share']:.0f} % (C = {s['chern_integer']:+d}"
                 f"{'' if s['chern_reliable'] else '?'}, smeared flux "
                 f"{s['chern']:+.2f})" for s in d.dominant(e, n)]
        if any("star" in s for s in d.sheets[e]):
            parts = [f"{g['size']} x {_sheet_name(g['first'])} {100 * g['alpha_iso'] / tot:.0f} % "
                     f"(C = {g['first']['chern_integer']:+d}{'' if g['first']['chern_reliable'] else '?'} each)"
                     for g in _stars_ranked(d.sheets[e])[:n]]
        csum = sum(s["chern_integer"] for s in d.sheets[e])
        line = (f"Fermi sheets at E_F = {d.fermi_energies[e]:.3f} eV: whole-mesh alpha_iso = {tot:.3e} from "
                f"{sum(1 for s in d.sheets[e] if s['sheet'])} sheets (Chern sum {csum:+d}); "
                "dominant: " + "; ".join(parts) + ("" if all(s["chern_reliable"] for s in d.sheets[e]) else
                                                   " (C?: a node within about a mesh step of the sheet)"))
        if mu_imbalance is not None:
            line += f"; CME alpha for dmu = {mu_imbalance:g} eV: {d.cme(mu_imbalance, e):.3e} A m^-2 T^-1"
        rows.append(line)
    return "\n".join(rows)


def _stars_ranked(sheets: tuple) -> list:
    """Symmetry stars of sheets: size, summed alpha_iso and first member, largest |alpha_iso| first."""
    groups: dict = {}
    for s in sheets:
        g = groups.setdefault(s.get("star", id(s)), {"size": 0, "alpha_iso": 0.0, "first": s})
        g["size"] += 1
        g["alpha_iso"] += s["alpha_iso"]
    return sorted(groups.values(), key=lambda g: -abs(g["alpha_iso"]))


def sheets_figure(d: SheetDecomposition, e: Optional[int] = None, top: int = 12):
    """matplotlib Figure (no pyplot, the global backend untouched): the largest sheet contributions
    to alpha_iso at level e (bars coloured by the sign of the Chern number, C written on each) and
    alpha_iso of each band against E_F."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise GMEInputError("the sheet plot needs matplotlib: pip install 'gme-wannier[plot]'") from None
    if e is None:
        e = _levels_to_show(d)[-1]
    fig = Figure(figsize=(8, 7), layout="constrained")
    ax, bx = fig.subplots(2, 1)
    ranked = sorted(d.sheets[e], key=lambda s: -abs(s["alpha_iso"]))[:top]
    colours = ["grey" if not s["sheet"] else ("tab:blue" if s["chern_integer"] > 0 else
                                              "tab:red" if s["chern_integer"] < 0 else "tab:green") for s in ranked]
    x = np.arange(len(ranked))
    ax.bar(x, [s["alpha_iso"] / 1e9 for s in ranked], color=colours)
    for i, s in enumerate(ranked):
        ax.annotate(f"C={s['chern_integer']:+d}", (i, s["alpha_iso"] / 1e9), ha="center", fontsize=7,
                    va="bottom" if s["alpha_iso"] >= 0 else "top")
    ax.set_xticks(x, [_sheet_name(s).replace(" near ", "\n").replace("sheet", "s") for s in ranked],
                  rotation=60, fontsize=7)
    ax.set_ylabel(r"$\alpha_{\rm iso}$ ($10^9$ A m$^{-2}$ T$^{-1}$)")
    ax.set_title(f"Fermi sheets at E_F = {d.fermi_energies[e]:.3f} eV (blue C>0, red C<0, grey: no sheet)")
    bands = sorted({s["band"] for lv in d.sheets for s in lv})
    for b in bands:
        bx.plot(d.fermi_energies, [sum(s["alpha_iso"] for s in lv if s["band"] == b) / 1e9 for lv in d.sheets],
                marker=".", label=f"band {b}")
    bx.plot(d.fermi_energies, np.trace(d.alpha, axis1=1, axis2=2) / 3e9, "k-", lw=2, label="sum")
    bx.set_xlabel("E_F (eV)")
    bx.set_ylabel(r"$\alpha_{\rm iso}$ per band ($10^9$ A m$^{-2}$ T$^{-1}$)")
    bx.legend(fontsize=7, ncol=2)
    return fig
