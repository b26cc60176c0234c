"""Weyl nodes: band touchings between consecutive bands, their chirality, dispersion and stars.

Search (docs/theory.md, "Weyl nodes and Fermi sheets"):

1. Coarse scan: the band energies on a uniform mesh of the whole zone (only its irreducible
   points when the crystal symmetry is used); for every pair of consecutive bands (n, n+1), the
   mesh points where the gap E_{n+1} - E_n is a local minimum (26 neighbours, periodic), below
   ``scan_gap`` and with the mid-gap energy in the window, are starting points.
2. Local minimisation of gap^2 (smooth at a linear touching) with scipy's BFGS and the
   Hellmann-Feynman gradient 2 gap (v_{n+1} - v_n), Nelder-Mead on the gap as a fallback.
3. A minimum with gap < ``gap_tol`` is a touching. Its chirality is the Berry flux of bands
   1..n through a small sphere around it, from the overlaps of the occupied eigenvectors on a
   theta-phi grid (a lattice-gauge formula, gauge invariant and integer once the grid resolves
   the curvature), divided by 2 pi: chi = +1 for H = +hbar v k.sigma. A flux that is not within
   0.1 of an integer is a failure; a sphere on which the gap can be minimised to zero means the
   touching is not isolated (nodal line), reported as such.
4. The symmetry images K k of a new node (point operations, and time reversal for a
   non-magnetic crystal; chirality multiplied by det R) are each refined by the same
   minimisation, so that the listed nodes are nodes of this Wannier Hamiltonian; an image that
   does not converge to a node is a failure. Found nodes are deduplicated against the known stars.

The ZMS Eqs. 16-17 estimate alpha = (e^2/3h^2) sum_nu chi_nu eps_nu is given per band pair and
star (isotropic linear nodes; per spin channel unless ``spin_degeneracy`` = 2).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from . import units
from .io.errors import GMEInputError
from .model import TBModel
from .touching import _analyse, _Bands, _minimize_gap, _periodic_distance, _wrap
from .units import E2_OVER_H2_EV


@dataclass(frozen=True)
class Node:
    """One band touching (Weyl node) of bands n, n+1 (1-based).

    k_reduced, k_cartesian : float (3,), reduced and 1/Angstrom (k_cart = k_red @ recip_lattice).
    energy_eV : mid-gap energy at the node; gap_eV : remaining gap (< gap_tol).
    chirality : int, the Berry-flux charge (|chi| = 2 for a double Weyl node); flux : its raw value.
    velocity_eV_A : float (3,), principal values of the cone, sqrt(eig M) with
        (E_{n+1} - E_n)^2 / 4 = q^T M q (eV Angstrom; v_F = velocity / hbar).
    tilt_eV_A : float (3,), Cartesian tilt t with (E_{n+1} + E_n)/2 - energy = t . q.
    tilt_ratio : sqrt(t^T M^-1 t): < 1 type I, > 1 type II.  radius : sphere radius, 1/Angstrom.
    flux_stable : the same charge on the sphere of radius/3 (False: that sphere was not gapped).
    star : index of its symmetry star in :attr:`NodeSearch.stars`.
    """

    k_reduced: tuple
    k_cartesian: tuple
    energy_eV: float
    bands: tuple
    chirality: int
    flux: float
    gap_eV: float
    velocity_eV_A: tuple
    tilt_eV_A: tuple
    tilt_ratio: float
    radius: float
    flux_stable: bool = True
    star: int = -1

    def to_dict(self) -> dict:
        """The node as a JSON-able dict (the ``nodes`` block of the output)."""
        return {"k_reduced": list(self.k_reduced), "k_cartesian": list(self.k_cartesian),
                "energy_eV": self.energy_eV, "bands": list(self.bands), "chirality": self.chirality,
                "charge": self.chirality, "flux_over_2pi": self.flux, "gap_eV": self.gap_eV,
                "velocity_eV_A": list(self.velocity_eV_A),
                "fermi_velocity_m_s": [v * units.eV * units.angstrom / units.hbar for v in self.velocity_eV_A],
                "tilt_eV_A": list(self.tilt_eV_A),
                "tilt_ratio": self.tilt_ratio, "type": "I" if self.tilt_ratio < 1 else "II",
                "double_weyl": abs(self.chirality) == 2, "sphere_radius_inv_A": self.radius,
                "flux_same_on_smaller_sphere": self.flux_stable,
                "star": self.star}


@dataclass(frozen=True)
class NodeSearch:
    """Result of :func:`find_nodes`.

    nodes : tuple of Node, every member of every star, sorted by bands, star, k.
    stars : tuple of dict (bands, size, n_images, chirality, energy range, first k, and the ZMS term
        of the star, (e^2/3h^2) sum chi (eps - eps_ref) with eps_ref the mean energy of the pair's nodes).
    nodal_lines : tuple of dict, touchings that are not isolated (not nodes).
    failures : tuple of dict, minima or images that did not give an integer-charge node.
    zms : dict, ZMS Eq. 17 alpha per band pair and in total (A m^-2 T^-1).
    info : dict, search settings, symmetry, counts, timing.
    """

    nodes: tuple
    stars: tuple
    nodal_lines: tuple
    failures: tuple
    zms: dict
    info: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The search result as a JSON-able dict: nodes, stars, nodal lines, failures, record."""
        return {"nodes": [n.to_dict() for n in self.nodes], "stars": list(self.stars),
                "nodal_lines": list(self.nodal_lines), "failures": list(self.failures),
                "zms_estimate": self.zms, "total_chirality": int(sum(n.chirality for n in self.nodes)),
                "search": self.info}


def scan_starts(bands: _Bands, mesh: Sequence[int], window: tuple, sym=None, scan_gap: float = 0.3,
                dense_gap: float = 0.1) -> list:
    """Starting points of the minimisation: the local gap minima (below ``scan_gap``) of each
    band pair on a mesh, and every point with a gap below ``dense_gap`` (eV; close pairs of
    nodes share one minimum of the coarse mesh).

    Returns a list of (upper band, 0-based; reduced k (3,); gap eV), one per symmetry star of
    mesh points, sorted by band and gap.
    """
    from .kmesh import uniform_mesh

    mesh = tuple(int(x) for x in mesh)
    k_full = uniform_mesh(mesh)
    if sym is not None:
        from .symmetry import irreducible_kpoints

        irr = irreducible_kpoints(mesh, sym)
        E = bands.interp.energies(irr.k_red)[irr.full_to_irr]
        rep = irr.irr_index[irr.full_to_irr]  # representative (flat index) of each point's star
    else:
        E = bands.interp.energies(k_full)
        rep = np.arange(len(k_full))
    bands.n_eval += len(E)
    lo, hi = window
    starts = []
    for n in range(1, bands.nw):
        if E[:, n].min() > hi or E[:, n - 1].max() < lo:
            continue
        G = (E[:, n] - E[:, n - 1]).reshape(mesh)
        mid = (0.5 * (E[:, n] + E[:, n - 1])).reshape(mesh)
        is_min = np.ones(mesh, bool)
        for s in np.indices((3, 3, 3)).reshape(3, -1).T - 1:
            if s.any():
                is_min &= G <= np.roll(G, tuple(s), axis=(0, 1, 2))
        ok = ((is_min & (G < scan_gap)) | (G < dense_gap)) & (mid + 0.5 * G >= lo) & (mid - 0.5 * G <= hi)
        flat = np.nonzero(ok.reshape(-1))[0]
        for r in np.unique(rep[flat]):
            starts.append((n, k_full[r], float(G.reshape(-1)[r])))
    starts.sort(key=lambda s: (s[0], s[2], tuple(s[1])))
    return starts


def _images(k_red: np.ndarray, kops: np.ndarray, dets: np.ndarray, B: np.ndarray, tol: float):
    """Distinct images K k (wrapped) of a reduced k and the chirality factor det R of each."""
    out, fac = [], []
    for K, d in zip(kops, dets):
        k2 = _wrap(K @ k_red)
        if not out or _periodic_distance(B, k2, np.array(out)).min() > tol:
            out.append(k2)
            fac.append(int(d))
    return np.array(out), np.array(fac)


def _known(B, k_red, n, found, tol) -> bool:
    """Whether k lies within ``tol`` (1/Angstrom) of a known node of the same bands."""
    same = [f["k_red"] for f in found if f["n"] == n]
    return bool(same) and bool(_periodic_distance(B, k_red, np.array(same)).min() < tol)


def _room(B, k_red, n, found, radius: float, skip=None) -> float:
    """Flux-sphere radius: ``radius``, or 0.45 x the distance to the nearest other node of the
    same bands when that is smaller (a sphere must hold one node)."""
    others = [f["k_red"] for f in found if f["n"] == n and f is not skip]
    if not others:
        return radius
    return float(min(radius, 0.45 * _periodic_distance(B, k_red, np.array(others)).min()))


def _recheck(bands: _Bands, found: list, failures: list, radius: float, gap_tol: float) -> None:
    """Redo the flux of nodes whose sphere reaches another node found later (in place)."""
    B = bands.B
    for f in list(found):
        r = _room(B, f["k_red"], f["n"], found, radius, skip=f)
        if r >= f["radius"] * 0.999:
            continue
        kind, inf = _analyse(bands, f["k_red"] @ B, f["n"], f["energy"], r, gap_tol)
        if kind == "node":
            f.update(inf)
        else:
            found.remove(f)
            failures.append({"bands": [f["n"], f["n"] + 1], "k_reduced": f["k_red"].tolist(),
                             "energy_eV": f["energy"], "star": f["star"], **inf})


def _symmetry(model: TBModel, symmetry):
    """CrystalSymmetry or None, and the k-space operations with det R of each."""
    from .symmetry import CrystalSymmetry, find_symmetry, kspace_operations, no_structure_message

    if symmetry is None or symmetry is False or symmetry == "off":
        return None, np.eye(3, dtype=int)[None], np.ones(1)
    if isinstance(symmetry, CrystalSymmetry):
        sym = symmetry
    elif model.atoms is None:
        raise GMEInputError(no_structure_message(model.name))
    else:
        sym = find_symmetry(model.atoms, source=model.name)
    kops, rots = kspace_operations(sym)
    return sym, kops, np.rint(np.linalg.det(rots))


# 11 parameters: keyword-only options that mirror the flags of `gme-wannier nodes` one to one.
def find_nodes(model: TBModel, window: Sequence[float], *, scan_mesh: Sequence[int] = (24, 24, 24),
               symmetry="auto", scan_gap: float = 0.3, dense_gap: float = 0.1, gap_tol: float = 1e-5, radius: float = 0.01,
               same_tol: float = 1e-3, image_tol: float = 0.05, spin_degeneracy: Optional[int] = None) -> NodeSearch:
    """Find the band touchings of consecutive bands with mid-gap energy in ``window``.

    Parameters
    ----------
    model : TBModel
    window : (EMIN, EMAX), eV
    scan_mesh : 3 ints, the coarse mesh of the whole zone (see the module docstring).
    symmetry : "auto" (spglib on ``model.atoms``; time reversal for non-magnetic crystals),
        "off", or a :class:`gme_wannier.symmetry.CrystalSymmetry`.
    scan_gap : eV, largest gap at a mesh minimum that is followed.
    dense_gap : eV, every mesh point with a smaller gap is a starting point too.
    gap_tol : eV, a minimum with a smaller gap is a touching.
    radius : 1/Angstrom, the flux sphere (shrunk by 3 and 9 when needed).
    same_tol : 1/Angstrom, touchings closer than this are the same node.
    image_tol : 1/Angstrom, how far the refined node may lie from its symmetry image (failed images
        closer than image_tol / 2 to a node or to each other count as one place of the star).
    spin_degeneracy : 1 or 2, multiplies the ZMS estimate (default as compute: 1 with spinors, else 2,
        each node of a spinless model standing for two spin copies).

    Returns
    -------
    NodeSearch (frozen); deterministic (no random numbers; sorted starting points).
    """
    from threadpoolctl import threadpool_limits

    from .kmesh import check_mesh

    lo, hi = (float(x) for x in window)
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise GMEInputError("--window: give two finite energies EMIN < EMAX (eV)")
    try:
        scan_mesh = check_mesh(scan_mesh)
    except GMEInputError as exc:
        raise GMEInputError(f"--scan-mesh: {exc}") from None
    for name, val in (("--radius", radius), ("--gap-tol", gap_tol)):
        if not (np.isfinite(val) and val > 0):
            raise GMEInputError(f"{name}: must be a positive number, got {val}")
    bmin = float(np.linalg.norm(model.recip_lattice, axis=1).min())
    if radius > 0.25 * bmin:  # a sphere that big holds other nodes and their images: no flux of one node
        raise GMEInputError(f"--radius: {radius:g} 1/Angstrom is more than a quarter of the shortest reciprocal "
                            f"vector ({bmin:.3g} 1/Angstrom): give a small sphere (default 0.01)")
    if gap_tol > 0.1:
        raise GMEInputError(f"--gap-tol: {gap_tol:g} eV would count gapped bands as touching: give at most 0.1 eV "
                            "(default 1e-5)")
    from .options import check_memory

    check_memory(model.num_wann, 1, kernel="tetra", n_kpoints_full=int(np.prod(scan_mesh)), mesh_option="--scan-mesh")
    t0 = time.perf_counter()
    if spin_degeneracy is None:
        spin_degeneracy = 1 if model.spinors else 2
    sym, kops, dets = _symmetry(model, symmetry)
    sym_err = None
    if sym is not None:
        from .calculate import band_symmetry_error

        sym_err = band_symmetry_error(model, sym, emax=hi + 1.0)
        if sym_err > 0.05:
            raise GMEInputError(f"--symmetry: the bands of {model.name} break the symmetry of its structure "
                                f"({sym.international}) by {sym_err:.3f} eV (> 0.05 eV): use --symmetry off")
    bands = _Bands(model)
    B = bands.B
    found, lines, failures, stars = [], [], [], []
    with threadpool_limits(limits=1):  # small matrices: threaded BLAS only adds overhead
        starts = scan_starts(bands, scan_mesh, (lo, hi), sym=sym, scan_gap=scan_gap, dense_gap=dense_gap)
        n_gapped, n_scan = 0, len(starts)
        for n, k0_red, _ in starts:  # grows: nodes hidden inside a first flux sphere are looked for
            k, g, dg, e = _minimize_gap(bands, k0_red @ B, n, gap_tol)
            k_red = _wrap(k @ bands.Binv)
            if g >= gap_tol:
                if dg > 0.05:  # still on the slope of a cone: the minimisation did not converge
                    failures.append({"reason": "minimisation did not converge", "bands": [n, n + 1],
                                     "k_reduced": k_red.tolist(), "gap_eV": g, "grad_gap_eV_A": dg})
                else:
                    n_gapped += 1
                continue
            if not (lo <= e <= hi) or _known(B, k_red, n, found, same_tol):
                continue
            if any(ln["n"] == n and _periodic_distance(B, k_red, np.array([ln["k_red"]])).min() < 10 * radius
                   for ln in lines):
                continue
            starts += _new_star(bands, model, n, k_red, e, kops, dets, found, lines, failures, stars,
                                gap_tol=gap_tol, radius=radius, same_tol=same_tol, image_tol=image_tol)
        _recheck(bands, found, failures, radius, gap_tol)
    return _assemble(model, found, lines, failures, stars, sym, spin_degeneracy, {
        "window_eV": [lo, hi], "scan_mesh": list(scan_mesh), "scan_gap_eV": scan_gap, "dense_gap_eV": dense_gap, "gap_tol_eV": gap_tol,
        "sphere_radius_inv_A": radius, "symmetry": sym.international if sym is not None else "off",
        "n_kspace_operations": int(len(kops)), "n_starts": n_scan, "n_extra_starts": len(starts) - n_scan, "n_gapped_minima": n_gapped,
        "n_band_evaluations": bands.n_eval, "band_symmetry_error_eV": sym_err, "seconds": time.perf_counter() - t0})


def _new_star(bands, model, n, k_red, e, kops, dets, found, lines, failures, stars, *, gap_tol, radius,
              same_tol, image_tol) -> list:
    """Analyse a new touching and its symmetry images; append to found / lines / failures / stars.

    Returns extra starting points (band, k_red, 0) around the node when a larger sphere had a
    different charge (other nodes close by)."""
    B = bands.B
    kind, info = _analyse(bands, k_red @ B, n, e, _room(B, k_red, n, found, radius), gap_tol)
    if kind == "nodal_line":
        lines.append({"n": n, "k_red": k_red, "bands": [n, n + 1], "k_reduced": k_red.tolist(),
                      "energy_eV": e, "kind": "nodal line: the touching is not isolated", **info})
        return []
    if kind == "failure":
        failures.append({"bands": [n, n + 1], "k_reduced": k_red.tolist(), "energy_eV": e, **info})
        return []
    sid = len(stars)
    imgs, fac = _images(k_red, kops, dets, B, same_tol)
    members, missed = [], []
    for k_img, f in zip(imgs, fac):
        if members:
            k, g, _, e_img = _minimize_gap(bands, k_img @ B, n, gap_tol, fallback=False)
            k2 = _wrap(k @ bands.Binv)
            if g >= gap_tol or _periodic_distance(B, k2, k_img[None])[0] > image_tol:
                why = "symmetry image is not a node of this Hamiltonian" + (
                    "" if g >= gap_tol else f" (the minimisation ends at a node farther than {image_tol} 1/A)")
                failures.append({"reason": why, "bands": [n, n + 1], "k_reduced": k_img.tolist(), "gap_eV": g,
                                 "star": sid})
                missed.append(k_img)
                continue
            if _known(B, k2, n, found, same_tol):
                continue
            kind, inf = _analyse(bands, k, n, e_img, _room(B, k2, n, found, radius), gap_tol)
            if kind != "node":
                failures.append({"bands": [n, n + 1], "k_reduced": k2.tolist(), "energy_eV": e_img, "star": sid,
                                 **inf})
                continue
        else:
            k2, g, e_img, inf = k_red, bands.gap(k_red @ B, n)[0], e, info
        if members and inf["chirality"] != f * members[0]["chirality"]:
            failures.append({"reason": "chirality differs from det(R) times that of the star's first node",
                             "bands": [n, n + 1], "k_reduced": k2.tolist(), "chirality": inf["chirality"],
                             "star": sid})
        rec = {"n": n, "k_red": k2, "energy": e_img, "gap": float(g), "star": sid, **inf}
        members.append(rec)
        found.append(rec)
    stars.append({"id": sid, "bands": [n, n + 1], "n_images": _n_images(B, members, missed, 0.5 * image_tol),
                  "size": len(members),
                  "chirality": int(members[0]["chirality"]),
                  "energy_eV": [min(m["energy"] for m in members), max(m["energy"] for m in members)],
                  "k_reduced_first": members[0]["k_red"].tolist()})
    return _neighbour_starts(B, n, k_red, info)


def _n_images(B, members: list, missed: list, tol: float) -> int:
    """Distinct places of a star: its nodes, plus the images that gave no node, counted once per
    tol (1/Angstrom; the Wannier symmetry error moves nodes a little, so the exact images of a
    node next to a symmetry element are several points that refine to one node)."""
    places = [m["k_red"] for m in members]
    for k in missed:
        if _periodic_distance(B, k, np.array(places)).min() > tol:
            places.append(k)
    return len(places)


def _neighbour_starts(B: np.ndarray, n: int, k_red: np.ndarray, info: dict) -> list:
    """Starts on shells around a node whose charge changed between the largest sphere and the
    reported one: 26 directions at each sphere radius beyond the reported one and between them."""
    hist = info["history"]
    if all(abs(f - info["chirality"]) < 0.1 for _, f in hist):
        return []
    radii = [r for r, _ in hist if r > info["radius"] * 1.01]
    radii += [np.sqrt(a * b) for a, b in zip(radii, radii[1:] + [info["radius"]])]
    dirs = np.indices((3, 3, 3)).reshape(3, -1).T - 1
    dirs = dirs[np.any(dirs != 0, axis=1)]
    dirs = dirs / np.linalg.norm(dirs, axis=1)[:, None]
    k_cart = k_red @ B
    Binv = np.linalg.inv(B)
    return [(n, (k_cart + r * d) @ Binv, 0.0) for r in sorted(radii) for d in dirs]


def zms_estimate(nodes: Sequence[Node], spin_degeneracy: int = 1) -> dict:
    """ZMS Eq. 17, alpha = (e^2/3h^2) sum_nu chi_nu eps_nu (A m^-2 T^-1), per band pair and summed.

    The sum is independent of the energy zero only when the charges of a pair add to zero
    (``balanced``); each node's own term (Eq. 16) is chi (eps - E_F), see theory.md.
    """
    pairs: dict = {}
    for nd in nodes:
        p = pairs.setdefault(tuple(nd.bands), {"bands": list(nd.bands), "n_nodes": 0, "total_chirality": 0,
                                               "sum_chi_eps_eV": 0.0})
        p["n_nodes"] += 1
        p["total_chirality"] += nd.chirality
        p["sum_chi_eps_eV"] += nd.chirality * nd.energy_eV
    for p in pairs.values():
        p["balanced"] = p["total_chirality"] == 0
        p["alpha_A_m2_T"] = spin_degeneracy * E2_OVER_H2_EV / 3.0 * p["sum_chi_eps_eV"]
    total = sum(p["alpha_A_m2_T"] for p in pairs.values())
    return {"formula": "alpha = (e^2/3h^2) sum_nu chi_nu eps_nu (ZMS Eq. 17), isotropic linear nodes",
            "spin_degeneracy": spin_degeneracy, "per_band_pair": list(pairs.values()),
            "alpha_iso_A_m2_T": total, "balanced": all(p["balanced"] for p in pairs.values())}


def _assemble(model, found, lines, failures, stars, sym, spin_degeneracy, info) -> NodeSearch:
    """Sorted, renumbered Node objects, stars and the ZMS estimate."""
    B = model.recip_lattice
    for st in stars:  # after _recheck: members and charges as finally found
        mem = [f for f in found if f["star"] == st["id"]]
        if mem:
            st.update(size=len(mem), chirality=int(mem[0]["chirality"]), k_reduced_first=mem[0]["k_red"].tolist(),
                      energy_eV=[min(m["energy"] for m in mem), max(m["energy"] for m in mem)],
                      uniform_chirality=len({m["chirality"] for m in mem}) == 1)
    stars = [st for st in stars if any(f["star"] == st["id"] for f in found)]
    order = sorted(range(len(stars)), key=lambda i: (stars[i]["bands"], round(stars[i]["energy_eV"][0], 6),
                                                     -stars[i]["chirality"], tuple(np.round(stars[i]["k_reduced_first"], 6))))
    new_id = {stars[old]["id"]: new for new, old in enumerate(order)}
    nodes = []
    for f in sorted(found, key=lambda f: (new_id[f["star"]], tuple(np.round(f["k_red"], 6)))):
        k = np.asarray(f["k_red"], float)
        nodes.append(Node(k_reduced=tuple(float(x) for x in k), k_cartesian=tuple(float(x) for x in k @ B),
                          energy_eV=float(f["energy"]), bands=(f["n"], f["n"] + 1), chirality=int(f["chirality"]),
                          flux=float(f["flux"]), gap_eV=float(f["gap"]), velocity_eV_A=f["velocity_eV_A"],
                          tilt_eV_A=f["tilt_eV_A"], tilt_ratio=float(f["tilt_ratio"]), radius=float(f["radius"]),
                          flux_stable=f["flux_stable"], star=new_id[f["star"]]))
    zms = zms_estimate(nodes, spin_degeneracy)
    star_out = []
    for old in order:
        s = dict(stars[old], id=new_id[stars[old]["id"]])
        members = [nd for nd in nodes if nd.star == s["id"]]
        pair = [nd.energy_eV for nd in nodes if nd.bands == members[0].bands]
        ref = float(np.mean(pair))  # per star: chi (eps - mean node energy of the pair); sums to the pair's Eq. 17
        s["alpha_zms_A_m2_T"] = spin_degeneracy * E2_OVER_H2_EV / 3.0 * sum(nd.chirality * (nd.energy_eV - ref)
                                                                             for nd in members)
        s["alpha_zms_reference_energy_eV"] = ref
        star_out.append(s)
    for f in failures:
        if "star" in f:
            f["star"] = new_id.get(f["star"], f["star"])
    lines_out = [{k: v for k, v in ln.items() if k not in ("n", "k_red")} for ln in lines]
    return NodeSearch(nodes=tuple(nodes), stars=tuple(star_out), nodal_lines=tuple(lines_out),
                      failures=tuple(failures), zms=zms, info=info)


def nodes_text(search: NodeSearch) -> str:
    """A table of the stars (one line each; size = nodes found / distinct symmetry images) and the
    ZMS estimate."""
    rows = [f"{'star':>4} {'bands':>7} {'size':>7} {'chi':>4} {'E (eV)':>15} {'first k (reduced)':>26} "
            f"{'|v| (eV A)':>10} {'tilt':>5}"]
    for s in search.stars:
        m = [nd for nd in search.nodes if nd.star == s["id"]]
        e0, e1 = s["energy_eV"]
        k = ", ".join(f"{x:6.3f}" for x in m[0].k_reduced)
        rows.append(f"{s['id']:4d} {m[0].bands[0]:3d}-{m[0].bands[1]:<3d} {s['size']:3d}/{s['n_images']:<3d} {s['chirality']:+4d} "
                    f"{e0:7.4f}-{e1:7.4f} ({k}) {np.mean(m[0].velocity_eV_A):10.3f} {m[0].tilt_ratio:5.2f}")
    z = search.zms
    rows.append(f"{len(search.nodes)} nodes in {len(search.stars)} stars, total chirality "
                f"{sum(nd.chirality for nd in search.nodes):+d}; {len(search.nodal_lines)} nodal-line points; "
                f"{len(search.failures)} failures")
    rows.append(f"ZMS Eq. 17 (x{z['spin_degeneracy']} spin): alpha_iso = {z['alpha_iso_A_m2_T']:.3e} A m^-2 T^-1"
                + ("" if z["balanced"] else "  (charges do not balance: the estimate depends on the energy zero)"))
    return "\n".join(rows)
