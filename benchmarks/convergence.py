#!/usr/bin/env python3
"""Automatic convergence (``--tolerance``) against the best uniform mesh and WannierBerri (issue 11).

For each case (a model, a temperature, a list of Fermi levels) the script measures:

1. ours, ``compute(..., convergence=ConvergenceOptions(tolerance))``: wall time of the whole
   sequence of meshes, k-points evaluated, the final mesh and the reported estimated error;
2. the true error of that result against a dense reference, a symmetric uniform mesh
   ``--ref-factor`` times denser per axis than the final mesh (N = +-1 mod 6, so that it holds
   no point with a coordinate 1/2, 1/3, 2/3 such as Te's H). The reference is cached in
   ``/tmp/gme_conv11_<case>_<mesh>.npz``, so reruns are cheap;
3. the smallest symmetric uniform mesh of a candidate list (spacings shrinking by
   ``--candidate-ratio``, N = +-1 mod 6) whose true error is at most ours: its wall time and
   the ratio to ours. This mesh is chosen in hindsight, knowing the reference; the automatic
   sequence cannot know it in advance;
4. WannierBerri 26.10 (same model, same Fermi-Dirac temperature, its point group with irreducible
   K-points, adaptive refinement iterations, optionally its tetrahedra; K_orb from its own formula
   classes with the moment at the band energy, as ours and postw90, see
   ``wb_band_moment_calculator``; ``--wb-moment fermi`` for its stock GME_orb_FermiSurf) on
   a ladder of grids NKdiv x NKFFT (both +-1 mod 6): the wall time of ``wannierberri.run`` for
   the first setting whose true error is at most ours, and the ratio.

Error measure (as ``result.info["convergence"]["estimated_error"]``): max over components and
Fermi levels of |K - K_ref|, divided by max |K_ref|, on the symmetrized K_total (Ampere).
Wall times: the k-point work only (``compute`` / ``wannierberri.run``), not the loading.

Usage::

    python benchmarks/convergence.py                          # every case (long: see docs/performance.md)
    python benchmarks/convergence.py --cases te-300K srsi2-300K
    python benchmarks/convergence.py --cases te-300K --quick  # coarser tolerance and reference
    python benchmarks/convergence.py --cases te-tetra --tolerance 0.07   # T -> 0, tetrahedra
    python benchmarks/convergence.py --cases srsi2-30K --no-wannierberri --max-time 1200
    python benchmarks/convergence.py --cases srsi2-tetra --tolerance 0.05 --no-wannierberri

Cases: srsi2-* is the bundled SrSi2 example, te-* is ../shared/data/Te_tut24. The suffix gives
the Fermi-Dirac temperature, and "tetra" means T -> 0 by linear tetrahedra (with the crystal symmetry),
whose reference is a denser tetrahedron mesh. A reference predicted to exceed
``--ref-max-seconds`` (or ``--ref-max-gb``) is not computed; the output then says so and the
case reports no true error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))
K_B = 8.617333262e-5  # eV/K

_SRSI2 = dict(seed=os.path.join(ROOT, "examples", "wannier90_inputs", "SrSi2", "srsi2"), efermi=(8.40, 8.60, 0.02),
              wb_kind="tb", wb_fft=(13, 13, 13), wb_divs=(5, 7, 11),
              wb_note="NOT COMPARABLE: this model breaks its point group by 16 meV, so a symmetric sum depends on "
                      "which points it evaluates (up to 75 % of max|K| at 65^3 between rotated copies of our "
                      "irreducible points: benchmarks/wb_same_quantity.py --wedges 65), and WannierBerri's "
                      "irreducible K-points with their FFT combs are not ours; its true error below measures that. "
                      "Whole zone, no symmetry, the two codes agree to 8e-4 (wb_same_quantity.py)")
_TE = dict(seed=os.path.join(DATA, "Te_tut24", "Te"), efermi=(5.85, 6.15, 0.02), wb_kind="w90", wb_fft=(19, 19, 13),
           wb_divs=(5, 7, 11))
CASES = {
    "srsi2-300K": dict(_SRSI2, T=300.0, ref_factor=1.5),
    "te-300K": dict(_TE, T=300.0, ref_factor=1.5),
    "te-100K": dict(_TE, T=100.0, ref_factor=1.5),
    "srsi2-100K": dict(_SRSI2, T=100.0, ref_factor=1.5),
    "srsi2-30K": dict(_SRSI2, T=30.0, ref_factor=1.5),
    # T -> 0: linear tetrahedra (kernel "tetra", crystal symmetry, no smearing), the same sequence of meshes;
    # the reference is a denser tetrahedron mesh (the same T = 0 quantity), never a smeared sum.
    # max_kpoints 3e7 stops the sequence before 467x467x305 (66 M points, about 25 min on this machine,
    # and > 20 GB with the whole-mesh tetrahedra before commit c44e462).
    "te-tetra": dict(_TE, T=0.0, kernel="tetra", ref_factor=1.5, max_kpoints=30_000_000),
    # SrSi2 at T -> 0: affordable with the symmetric tetrahedra (48 operations, tetra_sym.py)
    "srsi2-tetra": dict(_SRSI2, T=0.0, kernel="tetra", ref_factor=1.5, max_kpoints=30_000_000),
}


def efermi_list(emin, emax, step):
    """Fermi levels emin, emin + step, ..., emax (included), rounded to 1e-9 eV."""
    n = int(round((emax - emin) / step)) + 1
    return np.round(emin + step * np.arange(n), 9)


def rel_error(K, K_ref):
    """max |K - K_ref| / max |K_ref| over components and Fermi levels."""
    return float(np.abs(np.asarray(K) - K_ref).max() / np.abs(K_ref).max())


def say(line):
    print(line, flush=True)


# ------------------------------------------------------------------------------------ ours
def load_case(case):
    import gme_wannier as gw
    from gme_wannier.integrate import GMESettings

    model = gw.load_model(case["seed"], cache=True)
    # kernel "tetra" (T -> 0) does not use the smearing: any temperature will do there
    T = case["T"] if case["T"] > 0 else 300.0
    st = GMESettings(fermi_energies=efermi_list(*case["efermi"]), smearing=gw.Smearing.from_temperature(T))
    return model, st


def peak_rss_gb():
    """Peak resident memory of this process so far, GB (Linux ru_maxrss is in kB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def _compute(model, st, estimate_error=True, **sampling):
    """gme_wannier.compute with the sampling options ``mesh``, ``kernel``, ``convergence``: as a
    ``Sampling`` object where the package has one, as keywords otherwise (older API)."""
    import gme_wannier as gw

    if hasattr(gw, "Sampling"):
        return gw.compute(model, st, gw.Sampling(**sampling), estimate_error=estimate_error,
                          run=gw.RunControl(progress=None))
    return gw.compute(model, st, estimate_error=estimate_error, progress=None, **sampling)


def run_auto(model, st, tolerance, kernel="surface", max_time=None, max_kpoints=None):
    """Ours with --tolerance: (K_total, record)."""
    from gme_wannier.convergence import ConvergenceOptions

    t = time.perf_counter()
    opts = ConvergenceOptions(tolerance=tolerance, max_time=max_time, max_kpoints=max_kpoints)
    res = _compute(model, st, kernel=kernel, convergence=opts)
    wall = time.perf_counter() - t
    conv, mesh = res.info["convergence"], res.info["mesh"]
    return np.asarray(res.K["total"]), {
        "wall_s": wall, "estimated_error": conv["estimated_error"], "converged": conv["converged"],
        "stop_reason": conv.get("stop_reason"),
        "n_kpoints": conv["n_kpoints_evaluated"], "final_mesh": mesh["meshes"][-1]["mesh"],
        "meshes": [(m["mesh"], m["n_kpoints"], round(m["seconds"], 2)) for m in mesh["meshes"]],
        "final_mesh_s": mesh["meshes"][-1]["seconds"], "peak_rss_gb": peak_rss_gb()}


def run_uniform(model, st, mesh, kernel="surface"):
    """Ours on one uniform mesh (symmetric, tetrahedra included), no error estimate:
    (K_total, seconds, k-points)."""
    t = time.perf_counter()
    res = _compute(model, st, mesh=tuple(mesh), kernel=kernel, estimate_error=False)
    return np.asarray(res.K["total"]), time.perf_counter() - t, int(res.info["convergence"]["n_kpoints_evaluated"])


def reference(name, case, model, st, mesh, predicted_s=None, predicted_gb=None, max_s=None, max_gb=None):
    """The dense reference K_total, from the cache file if present: (K, seconds, k-points), or
    None when it is not cached and its predicted wall time or memory exceeds ``max_s`` / ``max_gb``
    (then nothing is computed and the line printed says so)."""
    kernel = case.get("kernel", "surface")
    tag = "x".join(map(str, mesh))
    path = os.path.join(tempfile.gettempdir(), f"gme_conv11_{name}_{tag}.npz")
    key = {"seed": case["seed"], "T": case["T"], "efermi": list(case["efermi"]), "mesh": list(mesh)}
    if kernel != "surface":
        key["kernel"] = kernel
        key["symmetric"] = True  # tetrahedra with the crystal symmetry since tetra_sym.py
    key = json.dumps(key)
    how = ("linear tetrahedra with the crystal symmetry (T = 0, like the result)" if kernel == "tetra" else
           f"Fermi-surface sum at {case['T']:.0f} K on the irreducible points, symmetrized (like the result)")
    if os.path.exists(path):
        d = np.load(path)
        if str(d["key"]) == key:
            say(f"  reference {tag} ({how}): cached in {path} ({float(d['seconds']):.0f} s when made)")
            return d["K"], float(d["seconds"]), int(d["nk"])
    over = [f"{predicted_s:.0f} s > {max_s:.0f} s" for _ in [0] if max_s and predicted_s and predicted_s > max_s]
    over += [f"{predicted_gb:.1f} GB > {max_gb:.1f} GB" for _ in [0] if max_gb and predicted_gb and predicted_gb > max_gb]
    if over:
        say(f"  reference {tag} ({how}): NOT computed, predicted {' and '.join(over)} (--ref-max-seconds / "
            "--ref-max-gb); no true error, no uniform comparison for this case")
        return None
    say(f"  reference {tag} ({how}): computing (predicted {predicted_s or 0:.0f} s, {predicted_gb or 0:.1f} GB) ...")
    K, s, nk = run_uniform(model, st, mesh, kernel)
    np.savez(path, K=K, seconds=s, nk=nk, key=key)
    say(f"  reference {tag}: {nk} k-points, {s:.0f} s, peak RSS of the process {peak_rss_gb():.1f} GB, cached in {path}")
    return K, s, nk


def candidate_meshes(recip, first, last, ratio):
    """Symmetric uniform meshes N_a = avoid_special(round(|b_a| / s)), s shrinking by ``ratio``,
    from about ``first`` to ``last`` (3-tuples), strictly growing."""
    from gme_wannier.convergence import avoid_special

    lengths = np.linalg.norm(np.asarray(recip, dtype=float), axis=1)
    s = lengths[0] / first[0]
    out, prev = [], np.zeros(3, dtype=int)
    while True:
        n = np.array([avoid_special(int(x)) for x in np.maximum(np.rint(lengths / s).astype(int), prev + 1)])
        if n[0] > last[0]:
            return out
        out.append(tuple(int(x) for x in n))
        prev, s = n, s / ratio


# ------------------------------------------------------------------------------------ WannierBerri
@contextmanager
def _cwd(path):
    old = os.getcwd()
    os.makedirs(path, exist_ok=True)
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def write_tb(model, path):
    """Our model (H_R on its R list, Wigner-Seitz images already expanded) as a Wannier90 _tb.dat
    with degeneracies 1 and the centres on the diagonal of A(R=0).

    WannierBerri's ``System_R.from_tb_file`` (system/system_tb.py, ``get_system_tb``) keeps this R
    list as it is (no MDRS search of its own: ``do_ws_dist`` is not called) and takes the centres
    from the diagonal of A(R=0) as the ``shifts_left_red`` of its ``Rvectors``, so its derivatives
    use R + t_n - t_m (``Rvectors.cRvec_shifted``): the same H(k), velocities, Berry curvature and
    internal orbital moment as ours (convention I), equal to 1e-12 at any k (checked by
    ``benchmarks/wb_same_quantity.py``)."""
    nw = model.H_R.shape[1]
    with open(path, "w") as f:
        f.write("written by benchmarks/convergence.py from gme_wannier's model\n")
        for a in model.real_lattice:
            f.write(" ".join(f"{x:.12f}" for x in a) + "\n")
        f.write(f"{nw}\n{len(model.iRvec)}\n")
        for i in range(0, len(model.iRvec), 15):
            f.write(" ".join("1" for _ in range(min(15, len(model.iRvec) - i))) + "\n")
        for R, H in zip(model.iRvec, model.H_R):
            f.write("\n%d %d %d\n" % tuple(R))
            f.writelines(f"{m + 1} {n + 1} {H[m, n].real:.16e} {H[m, n].imag:.16e}\n" for n in range(nw) for m in range(nw))
        for R in model.iRvec:
            f.write("\n%d %d %d\n" % tuple(R))
            for n in range(nw):
                for m in range(nw):
                    a = model.centres_cart[n] if (m == n and not np.any(R)) else np.zeros(3)
                    f.write(f"{m + 1} {n + 1} " + " ".join(f"{x:.12e} 0.0" for x in a) + "\n")


def wb_system(case, model, work):
    """WannierBerri's System_R of the case, with its point group from our structure."""
    import wannierberri as wb

    os.makedirs(work, exist_ok=True)
    if case["wb_kind"] == "tb":
        tb = os.path.join(work, "model_tb.dat")
        if not os.path.exists(tb):
            write_tb(model, tb)
        system = wb.system.System_R.from_tb_file(tb_file=tb)
    else:
        sys.path.insert(0, os.path.join(ROOT, "validation"))
        import run_wannierberri

        system, _ = run_wannierberri.build_system(argparse.Namespace(npz=False, seed=case["seed"], spin=False))
    system.set_structure(positions=model.atoms.get_scaled_positions(), atom_labels=model.atoms.get_chemical_symbols())
    system.set_pointgroup_from_structure()
    return system


def wb_band_moment_calculator():
    """WannierBerri's Fermi-surface calculator of sum_n (-f'(E_n)) v_n m_n with the orbital moment
    at the band energy, m_n = Morb_H - E_n Omega (its formula ``covariant.morb``, the moment its
    ``tabulate.OrbitalMoment`` prints and postw90's ``orb_nk``): the class, built from its own
    ``StaticCalculator`` and ``FormulaProduct`` as its ``GME_orb_FermiSurf`` is.

    ``GME_orb_FermiSurf`` (calculators/static.py, ``__call__``) computes VelHplus - 2 E_F VelOmega
    with E_F the point of its internal E_F grid (``BerryDipole(...).mul_array(self.Efermi)``),
    before smoothing: each state's moment is taken at the grid points around E_n, off by up to
    dE/2 times 2 |Omega|. Near SrSi2's Weyl nodes |Omega| reaches 2e5 Angstrom^2 (k = (0, 0, 0.2)),
    so with dE = k_BT/20 one such point is off by 19 % and the 15^3 sum by 16 % of max|K|; the
    limit dE -> 0 is this calculator's quantity (benchmarks/wb_same_quantity.py)."""
    from wannierberri import factors
    from wannierberri.calculators.static import StaticCalculator
    from wannierberri.formula import FormulaProduct
    from wannierberri.formula.covariant import morb

    class VelMorb(FormulaProduct):
        def __init__(self, data_K, **kwargs_formula):
            super().__init__([data_K.covariant("Ham", commader=1), morb(data_K, **kwargs_formula)], name="VelMorb")

    class GMEOrbBandMoment(StaticCalculator):
        def __init__(self, constant_factor=factors.factor_gme_orb, **kwargs):
            self.Formula = VelMorb
            self.fder = 1
            super().__init__(constant_factor=constant_factor, **kwargs)

    return GMEOrbBandMoment


def wb_gme_calculator(moment, **kwargs):
    """The K_orb calculator: ``moment`` "band" (:func:`wb_band_moment_calculator`, our quantity) or
    "fermi" (WannierBerri's stock ``GME_orb_FermiSurf``, E_F of its internal grid in the moment)."""
    from wannierberri import calculators as calc

    cls = wb_band_moment_calculator() if moment == "band" else calc.static.GME_orb_FermiSurf
    return cls(degen_thresh=1e-4, **kwargs)


def wb_energy_grid(case, per_kt):
    """WannierBerri's internal E_F grid at finite T: step k_BT/``per_kt`` or finer with the requested
    levels on it, padded by its smoother's cut (20 k_BT): (energies, indices of the levels)."""
    efermi = efermi_list(*case["efermi"])
    kT, step = K_B * case["T"], case["efermi"][2]
    m = int(np.ceil(step / (kT / per_kt)))
    dE = step / m
    npad = int(np.ceil(WB_MAXDE * kT / dE)) + 2
    e_int = efermi[0] + dE * np.arange(-npad, (len(efermi) - 1) * m + npad + 1)
    return e_int, npad + m * np.arange(len(efermi))


WB_MAXDE = 20.0  # WannierBerri's Fermi-Dirac smoother cut, in k_BT


def wb_run(case, system, efermi, div, adpt, tetra, work, moment="band", per_kt=None):
    """One WannierBerri run: (K_orb (nE, 3, 3) Ampere, seconds of wannierberri.run). At T = 0
    (kernel tetra cases) its tetrahedra on the requested levels, without a smoother. ``moment``
    as :func:`wb_gme_calculator`; ``per_kt``: internal E_F step k_BT/per_kt (default 100 for
    "band", 20 for "fermi", the setting of the Te numbers in docs/performance.md)."""
    from wannierberri.smoother import FermiDiracSmoother

    kw = {"external_terms": False} if case["wb_kind"] == "tb" else {}
    if case["T"] == 0:  # T -> 0: its tetrahedra on the requested levels, no smoother
        calcs = {"gme": wb_gme_calculator(moment, Efermi=efermi, tetra=True, kwargs_formula=kw)}
        return _wb_timed(system, div, case["wb_fft"], adpt, tetra, calcs, work, np.arange(len(efermi)))
    e_int, idx = wb_energy_grid(case, per_kt or (100 if moment == "band" else 20))
    smoother = FermiDiracSmoother(e_int, case["T"], maxdE=WB_MAXDE)
    calcs = {"gme": wb_gme_calculator(moment, Efermi=e_int, smoother=smoother, tetra=tetra, kwargs_formula=kw)}
    return _wb_timed(system, div, case["wb_fft"], adpt, tetra, calcs, work, idx)


def _wb_timed(system, div, fft, adpt, tetra, calcs, work, idx):
    """wannierberri.run on NKdiv x NKFFT with symmetry: (K at the E_F indices ``idx``, seconds)."""
    import wannierberri as wb

    grid = wb.grid.Grid(system, NKdiv=[div] * 3, NKFFT=list(fft), use_symmetry=True)
    with _cwd(os.path.join(work, f"run_{div}_{adpt}_{int(tetra)}")):
        t = time.perf_counter()
        res = wb.run(system, grid=grid, calculators=calcs, parallel=False, use_irred_kpt=True, symmetrize=True,
                     adpt_num_iter=adpt, fout_name="wb", print_progress_step_time=600)
        wall = time.perf_counter() - t
    return np.array(res.results["gme"].dataSmooth)[idx], wall


def wb_ladder(case, model, st, K_ref, target, work, quick, adpt_iter=4, divs=None, moment="band", per_kt=None):
    """WannierBerri grids in order of cost until one reaches ``target``; list of rows. The first
    grid runs the plain symmetric sum, its tetrahedra and ``adpt_iter`` adaptive refinement
    iterations; the denser ones the plain sum, and the tetrahedra if they did better there.
    ``moment``, ``per_kt``: as :func:`wb_run`."""
    efermi = efermi_list(*case["efermi"])
    system = wb_system(case, model, work)
    say(f"  WannierBerri: point group of {system.pointgroup.size} operations, NKFFT {case['wb_fft']}, orbital moment "
        f"at the {'band energy (m_n at E_n, as ours)' if moment == 'band' else 'E_F grid (stock GME_orb_FermiSurf)'}"
        + ("" if case["T"] == 0 else f", internal E_F step k_BT/{per_kt or (100 if moment == 'band' else 20):g}"))
    if case.get("wb_note"):
        say(f"  WannierBerri on this case: {case['wb_note']}")
    divs = divs or (case["wb_divs"][:2] if quick else case["wb_divs"])
    rows = []
    t0 = case["T"] == 0  # T -> 0: tetrahedra only (its smoother needs T > 0)
    configs = ((0, t0), (0, True)) if not t0 else ((0, True),)
    configs += ((adpt_iter, t0),) if adpt_iter else ()
    for i, div in enumerate(divs):
        if i == 1 and t0:
            configs = ((0, True),)
        elif i == 1:  # on the denser grids: the plain sum, and the tetrahedra if they did better on the first
            configs = ((0, False),) + (((0, True),) if rows[1]["true_error"] < rows[0]["true_error"] else ())
        for adpt, tetra in configs:
            K, s = wb_run(case, system, efermi, div, adpt, tetra, work, moment, per_kt)
            nk = [d * f for d, f in zip((div,) * 3, case["wb_fft"])]
            row = {"NK": nk, "adpt_num_iter": adpt, "tetra": tetra, "moment": moment, "wall_s": s,
                   "true_error": rel_error(K, K_ref)}
            rows.append(row)
            say(f"    NKdiv {div} x NKFFT {case['wb_fft']} = {'x'.join(map(str, nk))}, adpt_num_iter {adpt}, "
                f"tetra {tetra}: {s:.1f} s, true error {100 * row['true_error']:.2f} %")
            if len(rows) == 1:  # same grid, same model: how far apart the two codes are before convergence
                K_ours = run_uniform(model, st, nk, case.get("kernel", "surface"))[0]
                row["vs_ours_same_grid"] = rel_error(K, K_ours)
                say(f"    (WannierBerri vs ours on that grid {'x'.join(map(str, nk))}: {100 * row['vs_ours_same_grid']:.2f} % "
                    "of max|K|; " + ("at T = 0 the two tetrahedron sums differ by their discretization error)"
                                     if case["T"] == 0 else "a floor for its true error)"))
            if row["true_error"] <= target:
                return rows
    return rows


def run_case(name, args):
    """One case: ours with the tolerance, the reference, the uniform candidates, WannierBerri."""
    from gme_wannier.convergence import avoid_special

    case = CASES[name]
    kernel = case.get("kernel", "surface")
    tol = 0.03 if args.quick else args.tolerance
    temp = "T -> 0 (kernel tetra: linear tetrahedra with the crystal symmetry)" if kernel == "tetra" else f"T = {case['T']:.0f} K"
    say(f"== {name}: {case['seed']}, {temp}, E_F {case['efermi'][0]:.2f}..{case['efermi'][1]:.2f} "
        f"step {case['efermi'][2]}, tolerance {tol}, load average {os.getloadavg()[0]:.1f}")
    model, st = load_case(case)
    K, auto = run_auto(model, st, tol, kernel, args.max_time, case.get("max_kpoints"))
    say(f"  ours --tolerance {tol}{' --kernel tetra' if kernel == 'tetra' else ''}: {auto['wall_s']:.1f} s, "
        f"{auto['n_kpoints']} k-points, meshes "
        + ", ".join(f"{'x'.join(map(str, m))} ({n} k, {s} s)" for m, n, s in auto["meshes"])
        + f"; estimated error {100 * auto['estimated_error']:.2f} %, converged {auto['converged']} "
        f"({auto['stop_reason']}); peak RSS {auto['peak_rss_gb']:.1f} GB")
    f = 1.5 if args.quick else (args.ref_factor or case["ref_factor"])
    ref_mesh = tuple(avoid_special(int(np.ceil(f * n))) for n in auto["final_mesh"])
    scale = np.prod(ref_mesh) / np.prod(auto["final_mesh"])
    ref = reference(name + ("-quick" if args.quick else ""), case, model, st, ref_mesh,
                    predicted_s=auto["final_mesh_s"] * scale, max_s=args.ref_max_seconds,
                    predicted_gb=auto["peak_rss_gb"] * scale if kernel == "tetra" else None, max_gb=args.ref_max_gb)
    out = {"case": name, "kernel": kernel, "tolerance": tol, "ours": auto, "loadavg": os.getloadavg()}
    if ref is None:
        out["reference"] = {"mesh": ref_mesh, "computed": False}
        say(json.dumps(out, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
        return out
    K_ref, ref_s, ref_nk = ref
    true = rel_error(K, K_ref)
    out.update(reference={"mesh": ref_mesh, "seconds": ref_s, "nk": ref_nk}, true_error=true)
    say(f"  true error (vs {'x'.join(map(str, ref_mesh))}): {100 * true:.2f} %; estimated {100 * auto['estimated_error']:.2f} % "
        f"({'bounds' if auto['estimated_error'] >= true else 'BELOW'} the true error)")
    out["uniform"] = uniform_comparison(model, st, kernel, auto, K_ref, true, args)
    if not args.no_wannierberri:
        out["wannierberri"] = wb_comparison(name, case, model, st, K_ref, true, auto, args)
    say(json.dumps(out, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
    return out


def uniform_comparison(model, st, kernel, auto, K_ref, target, args):
    """The smallest uniform candidate mesh with a true error <= ``target`` (the candidates run
    in order of size until one does, or until ``--uniform-max-seconds`` are spent)."""
    first = auto["meshes"][0][0]
    cands = candidate_meshes(model.recip_lattice, first, auto["final_mesh"], args.candidate_ratio)
    uni, spent = None, 0.0
    for mesh in cands:
        if spent > args.uniform_max_seconds:
            say(f"  uniform candidates stopped after {spent:.0f} s (--uniform-max-seconds); the larger ones not run")
            break
        Ku, s, nk = run_uniform(model, st, mesh, kernel)
        spent += s
        e = rel_error(Ku, K_ref)
        say(f"  uniform {'x'.join(map(str, mesh))}: {nk} k-points, {s:.1f} s, true error {100 * e:.2f} %")
        if e <= target:
            uni = {"mesh": mesh, "nk": nk, "wall_s": s, "true_error": e}
            break
    if uni is None:  # the final mesh of the sequence is itself a uniform mesh with that error
        uni = {"mesh": auto["final_mesh"], "nk": auto["meshes"][-1][1], "wall_s": auto["final_mesh_s"], "true_error": target,
               "note": "no smaller candidate reached it: the sequence's own final mesh"}
    say(f"  smallest uniform mesh with true error <= {100 * target:.2f} %: {'x'.join(map(str, uni['mesh']))}, "
        f"{uni['wall_s']:.1f} s -> ours / uniform wall time = {auto['wall_s'] / uni['wall_s']:.2f}")
    return uni


def wb_comparison(name, case, model, st, K_ref, target, auto, args):
    """WannierBerri's ladder to the same true error; its rows."""
    work = os.path.join(tempfile.gettempdir(), f"gme_conv11_wb_{name}")
    rows = wb_ladder(case, model, st, K_ref, target, work, args.quick, args.wb_adpt, args.wb_divs, args.wb_moment,
                     args.wb_de_per_kt)
    ok = [r for r in rows if r["true_error"] <= target]
    if ok:
        say(f"  WannierBerri reaches {100 * target:.2f} % in {ok[0]['wall_s']:.1f} s -> WannierBerri / ours wall "
            f"time = {ok[0]['wall_s'] / auto['wall_s']:.1f}")
    else:
        best = min(rows, key=lambda r: r["true_error"])
        spent = sum(r["wall_s"] for r in rows)
        say(f"  WannierBerri does not reach {100 * target:.2f} % on the settings tried (best {100 * best['true_error']:.2f} % "
            f"in {best['wall_s']:.1f} s; {spent:.0f} s spent): WannierBerri / ours wall time > "
            f"{best['wall_s'] / auto['wall_s']:.1f}")
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--quick", action="store_true", help="tolerance 0.03, reference 1.5x, two WannierBerri grids")
    p.add_argument("--tolerance", type=float, default=0.01)
    p.add_argument("--ref-factor", type=float, default=None, help="reference mesh / final mesh per axis (default per case)")
    p.add_argument("--candidate-ratio", type=float, default=1.15, help="spacing ratio of the uniform candidates")
    p.add_argument("--no-wannierberri", action="store_true")
    p.add_argument("--wb-adpt", type=int, default=4, help="WannierBerri adpt_num_iter tried on its first grid")
    p.add_argument("--wb-divs", type=int, nargs="+", default=None,
                   help="WannierBerri NKdiv ladder (default per case); the adaptive iterations run on the first")
    p.add_argument("--wb-moment", choices=["band", "fermi"], default="band",
                   help="WannierBerri's orbital moment: band (m_n at E_n, ours and postw90's; default) or fermi "
                        "(its stock GME_orb_FermiSurf, E_F of its internal grid in the moment)")
    p.add_argument("--wb-de-per-kt", type=float, default=None,
                   help="WannierBerri's internal E_F step is k_BT / this (default 100 with band, 20 with fermi)")
    p.add_argument("--max-time", type=float, default=None, help="ours: ConvergenceOptions.max_time (s), none by default")
    p.add_argument("--ref-max-seconds", type=float, default=600.0,
                   help="do not compute a reference predicted to take longer (s; from the final mesh's time)")
    p.add_argument("--ref-max-gb", type=float, default=8.0,
                   help="kernel tetra: do not compute a reference predicted to need more memory (GB)")
    p.add_argument("--uniform-max-seconds", type=float, default=1200.0,
                   help="stop the uniform candidates after this much wall time (s)")
    args = p.parse_args(argv)
    say(f"benchmarks/convergence.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    for name in args.cases:
        run_case(name, args)


if __name__ == "__main__":
    main()
