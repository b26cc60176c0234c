#!/usr/bin/env python3
"""Run gme_wannier on the Te data sets configured like each peer and print
max|dK|/max|K| per data set and setting, against the stored peer references
(validation/reference/, made by run_postw90.py / run_wannierberri.py; --regenerate reruns
them first with the commands stored in each file's ``info``).

Columns: global = max_{E,ij}|K - K_peer| / max_{E,ij}|K_peer|;
         peak   = max over E_F with max|K_peer| > 0.5 global max of the per-E_F ratio;
         perEF  = max over E_F with max|K_peer| > 1e-6 global max of the per-E_F ratio.

  .venv/bin/python validation/compare_te.py [--data ../shared/data] [--regenerate] [--only NAME]
"""
import argparse
import ast
import os
import shlex
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REF = os.path.join(HERE, "reference")
sys.path.insert(0, HERE)


def cases(data):
    toy, tut, soc = (os.path.join(data, d, "Te") for d in ("Te_toy_w90testsuite", "Te_tut24", "Te_soc"))
    qe = os.path.join(data, "Te_qe_wannierberri", "system")
    pw = dict(degeneracy="skip", max_arg=5.0)
    wb = dict(degeneracy="group", max_arg=8.0)
    out = [
        ("Te_toy winbox vs W90 benchmark", toy, "postw90", None, None, 0.1, pw, "w90bench", ("K_orb",)),
        ("Te_toy winbox vs W90 benchmark [wannierberri conv.]", toy, "wannierberri", None, None, 0.1, pw,
         "w90bench", ("K_orb",)),
    ]
    for N in (24, 30, 32, 40):
        for ws in "TF":
            out.append((f"Te_tut24 {N}^3 postw90 ws={ws}", tut, "postw90", ws == "T", N, 0.02, pw,
                        f"Te_tut24_full{N}_smr0.02_ws{ws}_postw90", ("K_orb",)))
        out.append((f"Te_tut24 {N}^3 WannierBerri", tut, "wannierberri", None, N, 0.02, wb,
                    f"Te_tut24_full{N}_smr0.02_wannierberri", ("K_orb",)))
    out.append(("Te_tut24 20^3 WannierBerri (no H on mesh)", tut, "wannierberri", None, 20, 0.02, wb,
                "Te_tut24_full20_smr0.02_wannierberri", ("K_orb",)))
    for ws in "TF":
        out.append((f"Te_toy 12^3 postw90 ws={ws}", toy, "postw90", ws == "T", 12, 0.1, pw,
                    f"Te_toy_w90testsuite_full12_smr0.1_ws{ws}_postw90", ("K_orb",)))
        out.append((f"Te_soc 16^3 postw90 ws={ws}", soc, "postw90", ws == "T", 16, 0.02, pw,
                    f"Te_soc_full16_smr0.02_ws{ws}_postw90", ("K_orb", "K_spin")))
    out.append(("Te_toy 12^3 WannierBerri", toy, "wannierberri", None, 12, 0.1, wb,
                "Te_toy_w90testsuite_full12_smr0.1_wannierberri", ("K_orb",)))
    out.append(("Te_soc 16^3 WannierBerri", soc, "wannierberri", None, 16, 0.02, wb,
                "Te_soc_full16_smr0.02_wannierberri", ("K_orb", "K_spin")))
    out.append(("Te_qe_wannierberri 16^3 WannierBerri (npz)", qe, "wbnpz", None, 16, 0.02, wb,
                "Te_qe_wannierberri_full16_smr0.02_wannierberri", ("K_orb", "K_spin")))
    return out


def load_reference(name, data):
    if name == "w90bench":
        from run_postw90 import parse_gyro_tensor_file

        ef, _, K = parse_gyro_tensor_file(os.path.join(data, "Te_toy_w90testsuite",
                                                       "reference_postw90_Te-gyrotropic-K_orb.dat"))
        return {"efermi": ef, "K_orb": K}
    d = np.load(os.path.join(REF, name + ".npz"))
    return {k: d[k] for k in d.files}


def regenerate(name):
    if name == "w90bench":
        return
    info = ast.literal_eval(str(np.load(os.path.join(REF, name + ".npz"))["info"]))
    cmd = shlex.split(info["command"])
    cmd[0] = sys.executable
    subprocess.run(cmd, cwd=ROOT, check=True)


def model_for(seed, conv, ws):
    from gme_wannier.postw90_model import load_postw90_model, load_wannierberri_npz
    from gme_wannier.io.win import read_win
    from gme_wannier.load import load_model

    if conv == "wbnpz":
        return load_wannierberri_npz(seed)
    if conv == "postw90":
        win = read_win(seed + ".win")

        model = load_model(seed, convention="postw90")
        if ws is not None and ("=true" in model.provenance["ws_distance"]) != ws:
            model = load_postw90_model(seed, win, use_ws_distance=ws, atoms=model.atoms)
        return model
    return load_model(seed)


def run_case(case, data):
    from gme_wannier.calculate import compute
    from gme_wannier.settings import Sampling
    from gme_wannier.integrate import GMESettings
    from gme_wannier.smearing import Smearing

    label, seed, conv, ws, N, w, opt, refname, keys = case
    ref = load_reference(refname, data)
    ef = ref["efermi"]
    st = GMESettings(fermi_energies=ef, smearing=Smearing("gaussian", w, max_arg=opt["max_arg"]),
                     degen_thresh=1e-3, degeneracy=opt["degeneracy"])
    model = model_for(seed, conv, ws)
    if N is None:
        box = {"center": [0.33333, 0.33333, 0.5], "b1": [0.2, 0, 0], "b2": [0, 0.2, 0], "b3": [0, 0, 0.2],
               "mesh": [5, 5, 5]}
        res = compute(model, st, Sampling(box=box), symmetry="off")
    else:
        res = compute(model, st, Sampling(mesh=(N, N, N)), symmetry="off")
    rows = []
    for key in keys:
        K = res.K["orbital" if key == "K_orb" else "spin"]
        Kr = ref[key]
        g = np.abs(Kr).max()
        mx = np.abs(Kr).max(axis=(1, 2))
        per = np.abs(K - Kr).max(axis=(1, 2)) / np.where(mx > 0, mx, 1)
        rows.append((label, key, np.abs(K - Kr).max() / g, per[mx > 0.5 * g].max(), per[mx > 1e-6 * g].max(), g))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    p.add_argument("--regenerate", action="store_true", help="rerun the peer codes first (slow)")
    p.add_argument("--only", default=None, help="substring of the case labels to run")
    args = p.parse_args(argv)
    print("| data set / setting | K | global | peak E_F | every E_F above 1e-6 | max|K_peer| (A) |")
    print("|---|---|---|---|---|---|")
    for case in cases(args.data):
        if args.only and args.only not in case[0]:
            continue
        if args.regenerate:
            regenerate(case[7])
        for label, key, glob, peak, per, g in run_case(case, args.data):
            print(f"| {label} | {key} | {glob:.1e} | {peak:.1e} | {per:.1e} | {g:.2e} |", flush=True)


if __name__ == "__main__":
    main()
