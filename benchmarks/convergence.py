#!/usr/bin/env python3
"""k-points and wall time needed to bring K (alpha) within 1 % of a dense reference.

Target: the orbital K tensor with a Gaussian delta of width w on a list of Fermi levels
(all components, all E_F): error(N) = max |K_N - K_ref| / max |K_ref|. Methods (ours):

* ``smearing``: Gaussian on the uniform N^3 mesh (what WannierBerri and postw90 do);
* ``refine``: the same dense mesh N^3 reached from a coarse mesh by adaptive refinement
  (gme_wannier.refine; equals the uniform N^3 sum up to what the marking misses);
* ``tetra``: linear tetrahedra on N^3 for K_0(E) on a fine energy grid (step w/8), then the
  Gaussian convolution K(E_F) = sum_E delta_w(E - E_F) K_0(E) dE (the Gaussian is integrated
  exactly in k, only E is sampled).

Reference: ``refine`` on a dense mesh (``--ref``). Peers: they evaluate the same smearing sum
(agreement 1e-6 .. 1e-3, benchmarks/compare_peers.py), so they need the same meshes as our
``smearing``; their time is that mesh times their measured cost per k-point (``--peer-us``,
from compare_peers' output on the same machine).

Usage::

    .venv/bin/python benchmarks/convergence.py --set te_tut24
    .venv/bin/python benchmarks/convergence.py --set srsi2
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))

SETS = {
    "te_tut24": dict(seed=f"{DATA}/Te_tut24/Te", kw={}, efermi=(5.90, 6.20, 0.01), w=0.02,
                     meshes=[16, 24, 32, 40, 48, 64], ref=(16, (2, 2, 2)), refine_coarse=8,
                     peer_us={"wannierberri": 126.0, "postw90": None}),
    "srsi2": dict(seed=f"{DATA}/SrSi2/srsi2", kw={"source": "hr"}, efermi=(8.40, 8.60, 0.05), w=0.02,
                  meshes=[8, 12, 16, 24, 32], ref=(12, (2, 2)), refine_coarse=4,
                  peer_us={"wannierberri": None, "postw90": None}),
}


def main():
    import gme_wannier as gw
    from gme_wannier.integrate import GMESettings, sum_over_mesh_tetra, to_ampere
    from gme_wannier.refine import compute_refined

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", default="te_tut24", choices=list(SETS))
    p.add_argument("--meshes", type=int, nargs="*", default=None)
    p.add_argument("--peer-us", type=str, default=None,
                   help='JSON of peer microseconds per k-point, e.g. \'{"wannierberri": 126, "postw90": 350}\'')
    p.add_argument("--tol", type=float, default=0.01)
    p.add_argument("--ref", type=int, nargs="+", default=None,
                   help="reference: coarse mesh then refinement factors, e.g. 16 2 2 2 2 (= 256^3)")
    p.add_argument("--no-tetra", action="store_true")
    args = p.parse_args()
    cfg = SETS[args.set]
    if args.peer_us:
        cfg["peer_us"] = json.loads(args.peer_us)
    meshes = args.meshes or cfg["meshes"]
    print("load average:", os.getloadavg())
    model = gw.load_model(cfg["seed"], **cfg["kw"])
    EF = np.arange(cfg["efermi"][0], cfg["efermi"][1] + 1e-9, cfg["efermi"][2])
    w = cfg["w"]
    sm = gw.Smearing("gaussian", w, max_arg=5.0)
    st = GMESettings(fermi_energies=EF, smearing=sm, degen_thresh=1e-3)

    t0 = time.perf_counter()
    n0, fac = (args.ref[0], tuple(args.ref[1:])) if args.ref else cfg["ref"]
    Kref, info = compute_refined(model, st, (n0,) * 3, fac, chunk_size=2000)
    Kref = Kref["orbital"]
    print(f"reference: refine {n0}^3 x {fac} = {info['dense_mesh'][0]}^3, {info['n_full_evaluations']} full + "
          f"{info['n_energy_evaluations']} energy evaluations, {time.perf_counter() - t0:.1f} s")
    scale = np.abs(Kref).max()

    def err(K):
        return float(np.abs(K - Kref).max() / scale)

    # fine energy grid for tetra + convolution
    dE = w / 8
    Egrid = np.arange(EF.min() - sm.max_arg * w, EF.max() + sm.max_arg * w + dE / 2, dE)
    conv = sm.delta(EF[None, :] - Egrid[:, None]) * dE  # (nEgrid, nE)
    st_t = GMESettings(fermi_energies=Egrid, degen_thresh=1e-3)

    rows = []
    for N in meshes:
        t = time.perf_counter()
        K = gw.compute(model, st, mesh=(N,) * 3, symmetry="off", chunk_size=2000).K["orbital"]
        ts = time.perf_counter() - t
        t = time.perf_counter()
        row = {"N": N, "nk": N**3, "smearing_err": err(K), "smearing_s": ts, "tetra_err": None, "tetra_s": None}
        if not args.no_tetra:
            raw = sum_over_mesh_tetra(model, (N,) * 3, st_t, chunk_size=2000)
            K0 = to_ampere(raw, model, st_t)["orbital"]  # (nEgrid, 3, 3)
            Kt = np.einsum("ge,gij->eij", conv, K0)
            row.update(tetra_err=err(Kt), tetra_s=time.perf_counter() - t)
        c = cfg["refine_coarse"]
        c = 16 if N >= 64 and N % 16 == 0 else c
        if N % c == 0 and N > c:
            f = N // c
            facs = [2] * int(round(np.log2(f))) if (f & (f - 1)) == 0 else [f]
            t = time.perf_counter()
            Kr, inf = compute_refined(model, st, (c,) * 3, facs, chunk_size=2000)
            row.update(refine_err=err(Kr["orbital"]), refine_s=time.perf_counter() - t,
                       refine_evals=inf["n_full_evaluations"] + inf["n_energy_evaluations"])
        rows.append(row)
        tet = (f"tetra+conv err {row['tetra_err']:.2e} ({row['tetra_s']:.1f} s)" if row["tetra_err"] is not None
               else "tetra not run")
        print(f"N={N:3d} ({N**3:7d} k): smearing err {row['smearing_err']:.2e} ({ts:.1f} s) | {tet}" + (f" | refine err {row['refine_err']:.2e} "
                                                          f"({row['refine_s']:.1f} s, {row['refine_evals']} evaluations)"
                                                          if "refine_err" in row else ""), flush=True)

    def first(key):
        for r in rows:
            if r.get(key + "_err") is not None and r[key + "_err"] <= args.tol:
                return r
        return None

    summary = {"set": args.set, "tol": args.tol, "rows": rows, "loadavg": os.getloadavg()}
    for key in ("smearing", "tetra", "refine"):
        r = first(key)
        if r is None:
            print(f"{key}: not within {args.tol:.0%} on the meshes tried")
            continue
        nk = r.get("refine_evals") if key == "refine" else r["nk"]
        print(f"{key}: within {args.tol:.0%} at N = {r['N']} ({nk} k-point evaluations, {r[key + '_s']:.1f} s)")
        summary[key] = {"N": r["N"], "evaluations": nk, "seconds": r[key + "_s"]}
    r = first("smearing")
    for peer, us in cfg["peer_us"].items():
        if r is not None and us:
            print(f"{peer} (same smearing sum, its {us:.0f} us/k): N = {r['N']}, {r['nk'] * us * 1e-6:.1f} s")
            summary[peer] = {"N": r["N"], "seconds_estimated": r["nk"] * us * 1e-6}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
