#!/usr/bin/env python3
"""gme_wannier's natural-gyrotropy tensors (C, D, tildeD, NOA_orb, NOA_spin, DOS, K) against
postw90 configured the same way, printed as max|T - T_ref| / max|T_ref| per tensor (the maximum
over all Fermi levels, frequencies and components).

Cases
-----
* Te_toy (Wannier90 test suite): the box of its Te.win (0.2^3 around H, 5^3 points, Gaussian
  0.1 eV, E_F 2..10 eV, hbar omega 0, 0.05, 0.1 eV, use_ws_distance false, eigval_max 8.6667 eV)
  against validation/reference/w90_testsuite_te_gyrotropic/ (Wannier90's own benchmarks).
* Te_tut24, whole BZ 24^3, and Te_soc, whole BZ 16^3 (spin parts): against postw90 3.1 runs
  stored by validation/run_postw90_gyrotropic.py (validation/reference/gyro_*.npz).

Both sides use postw90's conventions: the model built as postw90 builds it
(``convention="postw90"``), degeneracy "skip", Gaussian smearing cut at 5 widths.

  python validation/compare_gyrotropic.py [--data ../shared/data] [--only NAME] [--cli]

--cli also runs `gme-wannier run ... --quantities K,C,D,Dw,NOA,DOS --w90-dat PREFIX` on Te_tut24 20^3 and Te_soc 16^3
and compares its files with postw90's, column by column.
"""
import argparse
import ast
import inspect
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

from compare_te import model_for  # noqa: E402

from gme_wannier.io.writers import read_w90_gyrotropic  # noqa: E402

TOY_REF = os.path.join(HERE, "reference", "w90_testsuite_te_gyrotropic")
KEYS = {"C": "C", "D": "D", "tildeD": "Dw", "NOA_orb": "NOA_orb", "NOA_spin": "NOA_spin", "DOS": "DOS",
        "K_orb": "K_orb", "K_spin": "K_spin"}


def toy_reference():
    ref = {}
    for name in ("C", "D", "tildeD", "NOA_orb", "DOS", "K_orb"):
        ef, om, T = read_w90_gyrotropic(os.path.join(TOY_REF, "Te-gyrotropic-%s.dat" % name))
        ref[name] = T
        if name == "tildeD":
            ref["omega"] = om
        ref["efermi"] = ef
    return ref


def run_ours(model, ref, *, box=None, mesh=None, eigval_max=None, smr=0.02):
    """Our tensors with the settings of the reference; returns dict name -> array like ref."""
    from gme_wannier import gyrotropic as gy
    from gme_wannier.calculate import compute
    from gme_wannier.settings import Sampling
    from gme_wannier.integrate import GMESettings
    from gme_wannier.smearing import Smearing

    st = GMESettings(fermi_energies=ref["efermi"], smearing=Smearing("gaussian", smr, max_arg=5.0),
                     degen_thresh=1e-3, degeneracy="skip")
    qs = gy.make_quantities(["C", "D", "Dw", "NOA", "DOS"], omega=ref["omega"], eigval_max=eigval_max)
    t0 = time.perf_counter()
    kw = dict(box=box) if box is not None else dict(mesh=mesh)
    out = {}
    if "quantities" in inspect.signature(compute).parameters:
        res = compute(model, st, Sampling(**kw), symmetry="off", quantities=qs)
        out = {"K_orb": res.K["orbital"][None], "K_spin": res.K["spin"][None]}
        for q in qs:
            out.update(res.extra[q.name])
    else:  # until compute() takes extra_quantities: the same sums in a plain loop
        from gme_wannier.bands import Interpolator
        from gme_wannier.kmesh import box_mesh, uniform_mesh

        if box is not None:
            k, w = box_mesh(box["center"], box["b1"], box["b2"], box["b3"], box["mesh"])
            w = np.full(len(k), w)
        else:
            k = uniform_mesh(mesh)
            w = np.full(len(k), 1.0 / len(k))
        interp = Interpolator(model, external=st.external, spin=st.spin)
        for q in qs:
            raw = {}
            for i in range(0, len(k), 500):
                part = q.chunk(interp, k[i:i + 500], w[i:i + 500], st)
                raw = {key: raw.get(key, 0) + v for key, v in part.items()}
            out.update(q.finish(raw, model, st, None))
    out["DOS"] = out["DOS"][None]
    return out, time.perf_counter() - t0


def compare(label, ours, ref, seconds):
    rows = []
    for name, key in KEYS.items():
        if name not in ref or key not in ours:
            continue
        r, o = np.asarray(ref[name]), np.asarray(ours[key]).reshape(np.shape(ref[name]))
        g = np.abs(r).max()
        rows.append((label, name, np.abs(o - r).max() / g if g > 0 else np.abs(o).max(), g))
    for label, name, rel, g in rows:
        print(f"| {label} | {name} | {rel:.1e} | {g:.3e} | {seconds:.1f} |", flush=True)


def cli_case(data, N, ref):
    """The command line: gme-wannier run ... --quantities K,C,D,Dw,NOA,DOS --w90-dat PREFIX, then
    PREFIX-gme-X.dat against postw90's SEED-gyrotropic-X.dat (as parsed into the reference)."""
    import subprocess
    import tempfile

    info = ast.literal_eval(str(ref["info"]))
    e, om = ref["efermi"], ref["omega"]
    with tempfile.TemporaryDirectory() as tmp:
        pre = os.path.join(tmp, "Te")
        cmd = [os.path.join(os.path.dirname(sys.executable), "gme-wannier"), "run", os.path.join(data, "Te"),
               "--convention", "postw90", "--degeneracy", "skip", "--degen-thresh", str(info["degen_thresh"]),
               "--smearing", "gaussian", "--smearing-width", str(info["smr"]), "--max-arg", str(info["smr_max_arg"]),
               "--mesh", str(N), str(N), str(N), "--symmetry", "off", "--efermi", *map(str, e),
               "--quantities", "K,C,D,Dw,NOA,DOS", "--omega", *map(str, om), "--eigval-max", str(info["eigval_max"]),
               "--w90-dat", pre, "-o", pre + ".json", "--quiet"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        s = time.perf_counter() - t0
        ours = {}
        for name, key in KEYS.items():
            if os.path.exists(f"{pre}-gme-{name}.dat"):
                ours[key] = read_w90_gyrotropic(f"{pre}-gme-{name}.dat")[2]
    return ours, s


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    p.add_argument("--only", default=None)
    p.add_argument("--cli", action="store_true", help="also run the command line on Te_tut24 20^3 and compare its files")
    a = p.parse_args(argv)
    print("| case | file | max abs diff / max abs ref | max abs ref | our seconds |")
    print("|---|---|---|---|---|")
    if not a.only or a.only in "Te_toy":
        seed = os.path.join(a.data, "Te_toy_w90testsuite", "Te")
        ref = toy_reference()
        box = {"center": [0.33333, 0.33333, 0.5], "b1": [0.2, 0, 0], "b2": [0, 0.2, 0], "b3": [0, 0, 0.2],
               "mesh": [5, 5, 5]}
        ours, s = run_ours(model_for(seed, "postw90", False), ref, box=box, eigval_max=8.0 + 0.6667, smr=0.1)
        compare("Te_toy box vs W90 test suite", ours, ref, s)
    for data, N in (("Te_tut24", 20), ("Te_tut24", 24), ("Te_soc", 16)):
        if a.only and a.only not in data:
            continue
        d = np.load(os.path.join(HERE, "reference", "gyro_%s_full%d.npz" % (data, N)))
        ref = {k: d[k] for k in d.files if k != "info"}
        info = ast.literal_eval(str(d["info"]))
        model = model_for(os.path.join(a.data, data, "Te"), "postw90", info["use_ws_distance"])
        ours, s = run_ours(model, ref, mesh=(N, N, N), eigval_max=info["eigval_max"], smr=info["smr"])
        compare(f"{data} {N}^3 vs postw90 3.1", ours, ref, s)
        if a.cli and (data, N) in (("Te_tut24", 20), ("Te_soc", 16)):
            ours, s = cli_case(os.path.join(a.data, data), N, d)
            compare(f"{data} {N}^3, gme-wannier run files vs postw90 files", ours, ref, s)


if __name__ == "__main__":
    main()
