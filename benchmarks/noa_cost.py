#!/usr/bin/env python3
"""Per-k cost of the interband natural optical activity (NOA) against postw90 on the same mesh.

NOA is interband: every k-point and every (occupied, empty) band pair contributes, so the
Fermi-window shortcut of the Fermi-surface quantities does not apply. What keeps it fast here:

* one Fourier transform per block of k-points (BLAS-3 phase x matrices, as for K), one batched
  eigensolver call per block;
* the per-pair quantities are whole-matrix products over the block: B_ac = -i(v_a A_c + A_c v_a)
  + E (A_a A_c) - A_a E A_c - (A_c A_a) E + A_c E A_a, 9 (a, c) pairs of batched nw x nw matmuls,
  instead of postw90's four nested loops with the sum over m innermost (nw^3 scalar operations per
  component and Fermi level);
* the pair terms P, Q do not depend on E_F or omega: they are built once per block, and each
  (E_F, omega) costs one (n_pairs x n_omega)^T (n_pairs x 9) product over the pairs that E_F
  selects (postw90 rebuilds B for every Fermi level).

Both codes run serially on the same Gamma-centred whole-BZ mesh; postw90's time is its own
"gyrotropic: k-interpolation" timer (timing_level = 2), ours the k loop alone. The K-free task
"-C" of postw90 gives its baseline (Fourier transform + diagonalisation per k).

  python benchmarks/noa_cost.py [--data ../shared/data] [--mesh 20] [--nfermi 4] [--nfreq 3]
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "validation"))
sys.path.insert(0, ROOT)


def ours(model, k, st, omega, names):
    from threadpoolctl import threadpool_limits

    from gme_wannier import gyrotropic as gy
    from gme_wannier.bands import Interpolator

    interp = Interpolator(model, external=st.external, spin=st.spin)
    w = np.full(len(k), 1.0 / len(k))
    q = gy.make_quantities(names, omega=omega)[0]
    with threadpool_limits(limits=1):
        t0 = time.perf_counter()
        for i in range(0, len(k), 200):
            q.chunk(interp, k[i:i + 200], w[i:i + 200], st)
        return time.perf_counter() - t0


def main(argv=None):
    from compare_te import model_for
    from run_postw90_gyrotropic import main as run_pw

    from gme_wannier.integrate import GMESettings
    from gme_wannier.kmesh import uniform_mesh
    from gme_wannier.smearing import Smearing

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    p.add_argument("--mesh", type=int, default=20)
    p.add_argument("--nfermi", type=int, default=4)
    p.add_argument("--nfreq", type=int, default=3)
    a = p.parse_args(argv)
    ef = np.round(5.9 + 0.1 * np.arange(a.nfermi), 6)
    om = np.round(0.05 + 0.05 * np.arange(a.nfreq), 6)
    N = a.mesh
    nk = N ** 3
    print(f"| data | task | postw90 us/k | gme_wannier us/k | ratio |  (mesh {N}^3, {a.nfermi} E_F, {a.nfreq} omega)")
    print("|---|---|---|---|---|")
    for data in ("Te_tut24", "Te_soc"):
        seed = os.path.join(a.data, data, "Te")
        model = model_for(seed, "postw90", True)
        st = GMESettings(fermi_energies=ef, smearing=Smearing("gaussian", 0.02, max_arg=5.0), degen_thresh=1e-3,
                         degeneracy="skip")
        k = uniform_mesh((N, N, N))
        for task, names in (("-C", ["C"]), ("-NOA", ["NOA"])):
            common = [seed, "--mesh", str(N), str(N), str(N), "--efermi", str(ef[0]), str(ef[-1] + 1e-6), "0.1",
                      "--freq", str(om[0]), str(om[-1] + 1e-6), "0.05", f"--task={task}"]
            _, info = run_pw(common)
            t_pw = info["kinterp_seconds"]
            t_us = ours(model, k, st, om, names)
            print(f"| {data} ({model.num_wann} WF) | {task} | {1e6 * t_pw / nk:.0f} | {1e6 * t_us / nk:.0f} | "
                  f"{t_pw / t_us:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
