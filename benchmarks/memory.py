#!/usr/bin/env python3
"""Peak resident memory of a serial run for two mesh sizes: it must not grow with the mesh.

Each run is a fresh subprocess (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` after it
ends, and the child's own peak printed by itself); the model is loaded, then
``gme_wannier.compute`` runs on the full mesh without symmetry (smearing kernel, chunked).
A baseline child that only imports and loads the model is measured too.

Usage::

    .venv/bin/python benchmarks/memory.py                      # Te_tut24, 16^3 and 48^3
    .venv/bin/python benchmarks/memory.py --seed ../shared/data/SrSi2/srsi2 --source hr \
        --efermi 8.2 8.8 0.05 --meshes 8 24
"""
import argparse
import json
import os
import resource
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CHILD = r'''
import json, resource, sys, time
import numpy as np
import gme_wannier as gw
from gme_wannier.integrate import GMESettings
a = json.loads(sys.argv[1])
m = gw.load_model(a["seed"], **({"source": a["source"]} if a["source"] else {}))
rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if a["mesh"]:
    EF = np.arange(a["efermi"][0], a["efermi"][1] + 1e-9, a["efermi"][2])
    st = GMESettings(fermi_energies=EF, smearing=gw.Smearing("gaussian", 0.02))
    gw.compute(m, st, gw.Sampling(mesh=(a["mesh"],) * 3), symmetry="off", run=gw.RunControl(chunk_size=a["chunk"]))
print(json.dumps({"rss_after_load_kB": rss_loaded, "peak_kB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "seconds": time.perf_counter() - t}))
'''


def child(args, mesh):
    spec = {"seed": args.seed, "source": args.source, "mesh": mesh, "efermi": args.efermi, "chunk": args.chunk}
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    r = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True, env=env)
    if r.returncode:
        sys.exit(r.stderr)
    d = json.loads(r.stdout.strip().splitlines()[-1])
    d["children_maxrss_kB"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    d["children_maxrss_before_kB"] = before
    return d


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", default=os.path.join(ROOT, "..", "shared", "data", "Te_tut24", "Te"))
    p.add_argument("--source", default="")
    p.add_argument("--efermi", type=float, nargs=3, default=[5.9, 6.2, 0.01])
    p.add_argument("--meshes", type=int, nargs="+", default=[16, 48])
    p.add_argument("--chunk", type=int, default=1000)
    args = p.parse_args()
    print("load average:", os.getloadavg())
    base = child(args, 0)
    print(f"baseline (import + load): peak {base['peak_kB'] / 1024:.0f} MB")
    out = {"baseline_MB": base["peak_kB"] / 1024}
    for n in args.meshes:
        d = child(args, n)
        print(f"mesh {n}^3 ({n**3} k, chunk {args.chunk}): peak RSS {d['peak_kB'] / 1024:.0f} MB "
              f"(+{(d['peak_kB'] - d['rss_after_load_kB']) / 1024:.0f} MB over the loaded model), {d['seconds']:.1f} s")
        out[f"peak_MB_{n}"] = d["peak_kB"] / 1024
    print(json.dumps(out))


if __name__ == "__main__":
    main()
