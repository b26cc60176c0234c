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
4. WannierBerri 26.10 (GME_orb_FermiSurf, same model, same Fermi-Dirac temperature, its point
   group with irreducible K-points, adaptive refinement iterations, optionally its tetrahedra) on
   a ladder of grids NKdiv x NKFFT (both +-1 mod 6): the wall time of ``wannierberri.run`` for
   the first setting whose true error is at most ours, and the ratio.

Error measure (as ``result.info["convergence"]["estimated_error"]``): max over components and
Fermi levels of |K - K_ref|, divided by max |K_ref|, on the symmetrized K_total (Ampere).
Wall times: the k-point work only (``compute`` / ``wannierberri.run``), not the loading.

Usage::

    python benchmarks/convergence.py                          # every case (long: see docs/performance.md)
    python benchmarks/convergence.py --cases te-300K srsi2-300K
    python benchmarks/convergence.py --cases te-300K --quick  # coarser tolerance and reference
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
              wb_kind="tb", wb_fft=(13, 13, 13), wb_divs=(5, 7, 11))
_TE = dict(seed=os.path.join(DATA, "Te_tut24", "Te"), efermi=(5.85, 6.15, 0.02), wb_kind="w90", wb_fft=(19, 19, 13),
           wb_divs=(5, 7, 11))
CASES = {
    "srsi2-300K": dict(_SRSI2, T=300.0, ref_factor=1.5),
    "te-300K": dict(_TE, T=300.0, ref_factor=1.5),
    "te-100K": dict(_TE, T=100.0, ref_factor=1.5),
    "srsi2-100K": dict(_SRSI2, T=100.0, ref_factor=1.5),
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
    st = GMESettings(fermi_energies=efermi_list(*case["efermi"]), smearing=gw.Smearing.from_temperature(case["T"]))
    return model, st


def run_auto(model, st, tolerance):
    """Ours with --tolerance: (K_total, record)."""
    import gme_wannier as gw
    from gme_wannier.convergence import ConvergenceOptions

    t = time.perf_counter()
    res = gw.compute(model, st, convergence=ConvergenceOptions(tolerance=tolerance))
    wall = time.perf_counter() - t
    conv, mesh = res.info["convergence"], res.info["mesh"]
    return np.asarray(res.K["total"]), {
        "wall_s": wall, "estimated_error": conv["estimated_error"], "converged": conv["converged"],
        "n_kpoints": conv["n_kpoints_evaluated"], "final_mesh": mesh["meshes"][-1]["mesh"],
        "meshes": [(m["mesh"], m["n_kpoints"], round(m["seconds"], 2)) for m in mesh["meshes"]],
        "final_mesh_s": mesh["meshes"][-1]["seconds"]}


def run_uniform(model, st, mesh):
    """Ours on one symmetric uniform mesh, no error estimate: (K_total, seconds, k-points)."""
    import gme_wannier as gw

    t = time.perf_counter()
    res = gw.compute(model, st, mesh=tuple(mesh), estimate_error=False)
    return np.asarray(res.K["total"]), time.perf_counter() - t, int(res.info["convergence"]["n_kpoints_evaluated"])


def reference(name, case, model, st, mesh):
    """The dense reference K_total, from the cache file if present."""
    path = os.path.join(tempfile.gettempdir(), f"gme_conv11_{name}_{'x'.join(map(str, mesh))}.npz")
    key = json.dumps({"seed": case["seed"], "T": case["T"], "efermi": list(case["efermi"]), "mesh": list(mesh)})
    if os.path.exists(path):
        d = np.load(path)
        if str(d["key"]) == key:
            say(f"  reference {'x'.join(map(str, mesh))}: cached in {path} ({float(d['seconds']):.0f} s when made)")
            return d["K"], float(d["seconds"]), int(d["nk"])
    say(f"  reference {'x'.join(map(str, mesh))}: computing ...")
    K, s, nk = run_uniform(model, st, mesh)
    np.savez(path, K=K, seconds=s, nk=nk, key=key)
    say(f"  reference {'x'.join(map(str, mesh))}: {nk} k-points, {s:.0f} s, cached in {path}")
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
    with degeneracies 1 and the centres on the diagonal of A(R=0): WannierBerri then evaluates the
    same H(k), its internal orbital terms need nothing else.

    Not yet faithful for the internal orbital moment: on SrSi2 at 300 K the two codes differ by
    10 % of max|K| on the same symmetric 65^3 grid (trace within 0.4 % at 11^3 without symmetry,
    components up to 3 %); the phase convention of the centres is the suspect. The ladder prints
    this same-grid difference; read the SrSi2 WannierBerri errors with it."""
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


def wb_run(case, system, efermi, div, adpt, tetra, work):
    """One WannierBerri run: (K_orb (nE, 3, 3) Ampere, seconds of wannierberri.run)."""
    import wannierberri as wb
    from wannierberri import calculators as calc
    from wannierberri.smoother import FermiDiracSmoother

    kT = K_B * case["T"]
    step = case["efermi"][2]
    m = int(np.ceil(step / (kT / 20)))  # internal E_F grid: kT/20 or finer, the requested levels on it
    dE, maxde = step / m, 20.0
    npad = int(np.ceil(maxde * kT / dE)) + 2
    e_int = efermi[0] + dE * np.arange(-npad, (len(efermi) - 1) * m + npad + 1)
    idx = npad + m * np.arange(len(efermi))
    smoother = FermiDiracSmoother(e_int, case["T"], maxdE=maxde)
    kw = {"external_terms": False} if case["wb_kind"] == "tb" else {}
    calcs = {"gme": calc.static.GME_orb_FermiSurf(Efermi=e_int, smoother=smoother, tetra=tetra, kwargs_formula=kw,
                                                  degen_thresh=1e-4)}
    grid = wb.grid.Grid(system, NKdiv=[div] * 3, NKFFT=list(case["wb_fft"]), use_symmetry=True)
    with _cwd(os.path.join(work, f"run_{div}_{adpt}_{int(tetra)}")):
        t = time.perf_counter()
        res = wb.run(system, grid=grid, calculators=calcs, parallel=False, use_irred_kpt=True, symmetrize=True,
                     adpt_num_iter=adpt, fout_name="wb", print_progress_step_time=600)
        wall = time.perf_counter() - t
    return np.array(res.results["gme"].dataSmooth)[idx], wall


def wb_ladder(case, model, st, K_ref, target, work, quick, adpt_iter=4):
    """WannierBerri grids in order of cost until one reaches ``target``; list of rows. The first
    grid runs the plain symmetric sum, its tetrahedra and ``adpt_iter`` adaptive refinement
    iterations; the denser ones the plain sum, and the tetrahedra if they did better there."""
    efermi = efermi_list(*case["efermi"])
    system = wb_system(case, model, work)
    say(f"  WannierBerri: point group of {system.pointgroup.size} operations, "
        f"NKFFT {case['wb_fft']}")
    divs = case["wb_divs"][:2] if quick else case["wb_divs"]
    rows = []
    configs = ((0, False), (0, True)) + (((adpt_iter, False),) if adpt_iter else ())
    for i, div in enumerate(divs):
        if i == 1:  # on the denser grids: the plain sum, and the tetrahedra if they did better on the first
            configs = ((0, False),) + (((0, True),) if rows[1]["true_error"] < rows[0]["true_error"] else ())
        for adpt, tetra in configs:
            K, s = wb_run(case, system, efermi, div, adpt, tetra, work)
            nk = [d * f for d, f in zip((div,) * 3, case["wb_fft"])]
            row = {"NK": nk, "adpt_num_iter": adpt, "tetra": tetra, "wall_s": s, "true_error": rel_error(K, K_ref)}
            rows.append(row)
            say(f"    NKdiv {div} x NKFFT {case['wb_fft']} = {'x'.join(map(str, nk))}, adpt_num_iter {adpt}, "
                f"tetra {tetra}: {s:.1f} s, true error {100 * row['true_error']:.2f} %")
            if len(rows) == 1:  # same grid, same model: how far apart the two codes are before convergence
                K_ours = run_uniform(model, st, nk)[0]
                row["vs_ours_same_grid"] = rel_error(K, K_ours)
                say(f"    (WannierBerri vs ours on that grid {'x'.join(map(str, nk))}: {100 * row['vs_ours_same_grid']:.2f} % "
                    "of max|K|; a floor for its true error)")
            if row["true_error"] <= target:
                return rows
    return rows


def run_case(name, args):
    from gme_wannier.convergence import avoid_special

    case = CASES[name]
    tol = 0.03 if args.quick else args.tolerance
    say(f"== {name}: {case['seed']}, T = {case['T']:.0f} K, E_F {case['efermi'][0]:.2f}..{case['efermi'][1]:.2f} "
        f"step {case['efermi'][2]}, tolerance {tol}, load average {os.getloadavg()[0]:.1f}")
    model, st = load_case(case)
    K, auto = run_auto(model, st, tol)
    say(f"  ours --tolerance {tol}: {auto['wall_s']:.1f} s, {auto['n_kpoints']} k-points, meshes "
        + ", ".join(f"{'x'.join(map(str, m))} ({n} k, {s} s)" for m, n, s in auto["meshes"])
        + f"; estimated error {100 * auto['estimated_error']:.2f} %")
    f = 1.5 if args.quick else (args.ref_factor or case["ref_factor"])
    ref_mesh = tuple(avoid_special(int(np.ceil(f * n))) for n in auto["final_mesh"])
    K_ref, ref_s, ref_nk = reference(name + ("-quick" if args.quick else ""), case, model, st, ref_mesh)
    true = rel_error(K, K_ref)
    out = {"case": name, "tolerance": tol, "ours": auto, "reference": {"mesh": ref_mesh, "seconds": ref_s, "nk": ref_nk},
           "true_error": true, "loadavg": os.getloadavg()}
    say(f"  true error (vs {'x'.join(map(str, ref_mesh))}): {100 * true:.2f} %; estimated {100 * auto['estimated_error']:.2f} % "
        f"({'bounds' if auto['estimated_error'] >= true else 'BELOW'} the true error)")
    target = true
    first = auto["meshes"][0][0]
    cands = candidate_meshes(model.recip_lattice, first, auto["final_mesh"], args.candidate_ratio)
    uni = None
    for mesh in cands:
        Ku, s, nk = run_uniform(model, st, mesh)
        e = rel_error(Ku, K_ref)
        say(f"  uniform {'x'.join(map(str, mesh))}: {nk} k-points, {s:.1f} s, true error {100 * e:.2f} %")
        if e <= target:
            uni = {"mesh": mesh, "nk": nk, "wall_s": s, "true_error": e}
            break
    if uni is None:  # the final mesh of the sequence is itself a uniform mesh with that error
        uni = {"mesh": auto["final_mesh"], "nk": auto["meshes"][-1][1], "wall_s": auto["final_mesh_s"], "true_error": true,
               "note": "no smaller candidate reached it: the sequence's own final mesh"}
    out["uniform"] = uni
    say(f"  smallest uniform mesh with true error <= {100 * target:.2f} %: {'x'.join(map(str, uni['mesh']))}, "
        f"{uni['wall_s']:.1f} s -> ours / uniform wall time = {auto['wall_s'] / uni['wall_s']:.2f}")
    if not args.no_wannierberri:
        work = os.path.join(tempfile.gettempdir(), f"gme_conv11_wb_{name}")
        rows = wb_ladder(case, model, st, K_ref, target, work, args.quick, args.wb_adpt)
        out["wannierberri"] = rows
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
    say(json.dumps(out, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--quick", action="store_true", help="tolerance 0.03, reference 1.5x, two WannierBerri grids")
    p.add_argument("--tolerance", type=float, default=0.01)
    p.add_argument("--ref-factor", type=float, default=None, help="reference mesh / final mesh per axis (default per case)")
    p.add_argument("--candidate-ratio", type=float, default=1.15, help="spacing ratio of the uniform candidates")
    p.add_argument("--no-wannierberri", action="store_true")
    p.add_argument("--wb-adpt", type=int, default=4, help="WannierBerri adpt_num_iter tried on its first grid")
    args = p.parse_args(argv)
    say(f"benchmarks/convergence.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    for name in args.cases:
        run_case(name, args)


if __name__ == "__main__":
    main()
