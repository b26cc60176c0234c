#!/usr/bin/env python3
"""Does WannierBerri compute our quantity on the bundled SrSi2 model? (issue 11, internal terms)

``benchmarks/convergence.py`` hands our SrSi2 model to WannierBerri 26.10 as a ``_tb.dat``
(``write_tb``). This script checks, on that same system, in three steps:

1. per k-point (random points and k = (0, 0, 0.2), next to a Weyl node on Gamma-X): band
   energies, velocities, internal Berry curvature and internal orbital moment of WannierBerri
   (``evaluate_k``: ``energy``, ``band_gradients``, ``berry_curvature_internal_terms``,
   ``tabulate.OrbitalMoment``) against ours (``gme_wannier.banddata`` / ``moments``);
2. the Fermi-surface sum of that one point at 300 K for both WannierBerri calculators, the stock
   ``GME_orb_FermiSurf`` (E_F of its internal grid in the moment) and the band-moment calculator
   of ``convergence.wb_band_moment_calculator``, against ours, as the internal E_F step shrinks;
3. K_orb on whole-zone N^3 meshes without symmetry (``--meshes``): max over components and E_F
   of |K_WB - K_ours| / max|K_ours|, and the same for the trace;
4. (``--wedges N``) why no symmetric run can be compared: our irreducible points of N^3 carried
   to another wedge by each rotation g of the point group, k -> K_g k with the same weights. For a
   model with the crystal's symmetry every g gives the same symmetrized K; SrSi2's Wannier bands
   break the point group by 16 meV, and the sums differ. Printed: the true error of each, of our
   own wedge (g = identity) and of their average (= the whole-zone sum, symmetrized) against
   the cached reference of ``convergence.py --cases srsi2-300K`` (our wedge, 281^3).

Usage::

    python benchmarks/wb_same_quantity.py                      # 11^3 and 15^3, about 5 min
    python benchmarks/wb_same_quantity.py --meshes 11 --per-kt 20 100 400
    python benchmarks/wb_same_quantity.py --meshes --moments --wedges 125   # step 4 only, about 13 min

The symmetric comparison is the first row of the WannierBerri ladder of ``convergence.py``
(``WannierBerri vs ours on that grid``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convergence as cv  # noqa: E402

HBAR2_OVER_ME = 7.619964221937  # eV Angstrom^2: WannierBerri's OrbitalMoment is in mu_B, ours G in eV Angstrom^2


def ours_per_k(model, k):
    """Our E, v (3, nw), Omega (3, nw) and internal moment G (3, nw, eV Angstrom^2) at one k."""
    from gme_wannier import moments as mom
    from gme_wannier.banddata import band_data
    from gme_wannier.bands import Interpolator

    bd, _ = band_data(Interpolator(model, external=False, spin=False), np.asarray(k)[None], degen_thresh=1e-4,
                      columns="all")
    Gc, Phi = mom.orbital_parts_columns(bd.E_all, bd.D)
    E = bd.E_all[0]
    return E, bd.v[0], -Phi[0], (Gc - E * Phi)[0]


def per_k_check(model, system, ks):
    """Step 1: the largest relative difference of each per-k quantity over the points ``ks``."""
    from wannierberri.calculators import tabulate
    from wannierberri.evaluate_k import evaluate_k

    worst = {"E": 0.0, "v": 0.0, "Omega": 0.0, "m": 0.0}
    for k in ks:
        E, v, Om, m = ours_per_k(model, k)
        res = evaluate_k(system, k=tuple(k), quantities=["energy", "band_gradients", "berry_curvature_internal_terms"],
                         calculators={"m": tabulate.OrbitalMoment(kwargs_formula={"external_terms": False},
                                                                  print_comment=False)})
        mw = np.asarray(res["m"].data).reshape(-1, 3) * HBAR2_OVER_ME
        for key, a, b in (("E", res["energy"], E), ("v", res["band_gradients"], v.T),
                          ("Omega", res["berry_curvature_internal_terms"], Om.T), ("m", mw, m.T)):
            worst[key] = max(worst[key], float(np.abs(a - b).max() / np.abs(b).max()))
    return worst


def point_sum(case, model, st, system, k, per_kt, moment):
    """Step 2: K_orb of the single point k (weight 1), WannierBerri against ours: max rel. diff."""
    from gme_wannier.bands import Interpolator
    from gme_wannier.integrate import fermi_surface_points, to_ampere
    from wannierberri.data_K import get_data_k_class_from_system
    from wannierberri.grid import Grid
    from wannierberri.smoother import FermiDiracSmoother

    pts = fermi_surface_points(Interpolator(model, external=False, spin=False), np.asarray(k)[None], st)
    K_ours = to_ampere({"orb": pts["orb"]}, model, st)["orbital"][0]
    e_int, idx = cv.wb_energy_grid(case, per_kt)
    sm = FermiDiracSmoother(e_int, case["T"], maxdE=cv.WB_MAXDE)
    c = cv.wb_gme_calculator(moment, Efermi=e_int, smoother=sm, kwargs_formula={"external_terms": False})
    data_k = get_data_k_class_from_system(system)(system, grid=Grid(system=system, NKdiv=1, NKFFT=1), dK=tuple(k))
    raw = np.asarray(c(data_k).data)  # unsmoothed, on the internal grid; smooth only the requested levels
    ker = sm.smt / sm.smt.sum()
    K_wb = np.array([np.tensordot(raw[i - sm.NE1:i + sm.NE1 + 1], ker, axes=(0, 0)) for i in idx])
    return float(np.abs(K_wb - K_ours).max() / np.abs(K_ours).max())


def whole_zone(case, model, st, system, n, per_kt, moment, work):
    """Step 3: (max component diff, max trace diff) relative to ours, and WannierBerri's seconds."""
    import gme_wannier as gw
    import wannierberri as wb
    from wannierberri.smoother import FermiDiracSmoother

    K_ours = np.asarray(gw.compute(model, st, gw.Sampling(mesh=(n, n, n)), symmetry="off", estimate_error=False,
                                   run=gw.RunControl(progress=None)).K["total"])
    e_int, idx = cv.wb_energy_grid(case, per_kt)
    sm = FermiDiracSmoother(e_int, case["T"], maxdE=cv.WB_MAXDE)
    calcs = {"gme": cv.wb_gme_calculator(moment, Efermi=e_int, smoother=sm, kwargs_formula={"external_terms": False})}
    grid = wb.grid.Grid(system, NKdiv=[1] * 3, NKFFT=[n] * 3, use_symmetry=False)
    with cv._cwd(os.path.join(work, f"zone_{n}_{moment}_{per_kt:g}")):
        t = time.perf_counter()
        res = wb.run(system, grid=grid, calculators=calcs, parallel=False, use_irred_kpt=False, symmetrize=False,
                     fout_name="wb", print_progress_step_time=600)
        s = time.perf_counter() - t
    K = np.array(res.results["gme"].dataSmooth)[idx]
    tr, tr_ours = np.trace(K, axis1=1, axis2=2), np.trace(K_ours, axis1=1, axis2=2)
    return cv.rel_error(K, K_ours), float(np.abs(tr - tr_ours).max() / np.abs(tr_ours).max()), s


def wedges(model, st, n, ref_path):
    """Step 4: the symmetrized K_total of our irreducible points of n^3 moved by each proper
    k-space rotation (isotropic part a(E_F) = tr K / 3, the only allowed form of 432), against
    the reference of ``ref_path``; prints a line per rotation and a summary."""
    from gme_wannier.integrate import sum_over_kpoints, to_ampere
    from gme_wannier.irreducible import irreducible_kpoints, kspace_operations
    from gme_wannier.symmetry import find_symmetry

    sym = find_symmetry(model.atoms)
    irr = irreducible_kpoints((n, n, n), sym)
    kops = np.unique(kspace_operations(sym)[0], axis=0)
    kops = [g for g in kops if round(np.linalg.det(g)) == 1]  # rotations (with T, -g is the same sum)
    a_ref = np.trace(np.load(ref_path)["K"], axis1=1, axis2=2) / 3
    scale = np.abs(a_ref).max()
    vals = []
    for g in kops:
        raw = sum_over_kpoints(model, (irr.k_red @ g.T) % 1.0, irr.weights, st)
        a = np.trace(to_ampere(raw, model, st)["total"], axis1=1, axis2=2) / 3
        vals.append(a)
        cv.say(f"4. {n}^3, our irreducible points moved by {g.tolist()}: true error "
               f"{100 * np.abs(a - a_ref).max() / scale:.2f} %")
    vals = np.array(vals)
    ident = next(i for i, g in enumerate(kops) if np.array_equal(g, np.eye(3, dtype=int)))
    cv.say(f"4. {n}^3 over the {len(kops)} rotations: spread max_E (max - min) {100 * (vals.max(0) - vals.min(0)).max() / scale:.1f} %"
           f" of max|K_ref|; our wedge {100 * np.abs(vals[ident] - a_ref).max() / scale:.2f} %, their average (the "
           f"whole zone, symmetrized) {100 * np.abs(vals.mean(0) - a_ref).max() / scale:.2f} %")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--meshes", type=int, nargs="*", default=[11, 15], help="whole-zone meshes N^3 of step 3")
    p.add_argument("--per-kt", type=float, nargs="+", default=[20, 100],
                   help="internal E_F steps k_BT/x of WannierBerri tried in steps 2 and 3")
    p.add_argument("--moments", nargs="*", choices=["band", "fermi"], default=["band", "fermi"])
    p.add_argument("--wedges", type=int, default=None, metavar="N", help="step 4 on N^3 (needs the cached reference)")
    args = p.parse_args(argv)
    case = cv.CASES["srsi2-300K"]
    model, st = cv.load_case(case)
    work = os.path.join(tempfile.gettempdir(), "gme_wb_same_quantity")
    system = cv.wb_system(case, model, work)
    cv.say(f"SrSi2 bundled example, 300 K, E_F {case['efermi']}: {model.nR} R vectors (ours), {system.rvec.nRvec} "
           f"(WannierBerri); centres differ by {np.abs(system.wannier_centers_cart - model.centres_cart).max():.1e} A")
    if args.wedges:
        ref = os.path.join(tempfile.gettempdir(), "gme_conv11_srsi2-300K_281x281x281.npz")
        if not os.path.exists(ref):
            raise SystemExit(f"{ref}: not found; run benchmarks/convergence.py --cases srsi2-300K first")
        wedges(model, st, args.wedges, ref)
    if not (args.meshes or args.moments):
        return
    ks = np.vstack([np.random.default_rng(1).random((4, 3)), [[0.0, 0.0, 0.2]]])
    worst = per_k_check(model, system, ks)
    cv.say("1. per k (4 random points and (0, 0, 0.2)), max |WB - ours| / max |ours|: "
           + ", ".join(f"{key} {val:.1e}" for key, val in worst.items()))
    E, v, Om, m = ours_per_k(model, ks[-1])
    cv.say(f"   at (0, 0, 0.2): bands near E_F at {np.round(E[(E > 8.4) & (E < 8.6)], 5)} eV, max|Omega| "
           f"{np.abs(Om[:, (E > 8.4) & (E < 8.6)]).max():.3g} A^2, max|m| {np.abs(m[:, (E > 8.4) & (E < 8.6)]).max():.3g} eV A^2")
    for moment in args.moments:
        cv.say(f"2. K_orb of the point (0, 0, 0.2), moment {moment}: "
               + ", ".join(f"dE = kT/{x:g}: {point_sum(case, model, st, system, ks[-1], x, moment):.1e}"
                           for x in args.per_kt))
    for n in args.meshes:
        for moment in args.moments:
            for x in args.per_kt:
                comp, trace, s = whole_zone(case, model, st, system, n, x, moment, work)
                cv.say(f"3. whole zone {n}^3, no symmetry, moment {moment}, dE = kT/{x:g}: max component {comp:.2e}, "
                       f"trace {trace:.2e} of max|K_ours| (WannierBerri {s:.1f} s)")


if __name__ == "__main__":
    main()
