"""Fermi-Dirac smeared linear tetrahedra, measured and not kept (docs/convergence.md).

alpha(mu, T) = int de (-df/de)(e - mu) alpha_0(e), so the smeared tetrahedron sum is the T = 0
sum (the symmetric tetrahedra of the package) on an internal grid of levels, convolved with -f'.
The script prints, mesh by mesh, its wall time and its change from the previous mesh, for the
bundled SrSi2 (E_F 8.40-8.60 eV):

    python benchmarks/fd_tetra.py --temperature 30 --meshes 83 125     # about 5 min
"""

import argparse
import os
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = os.path.join(ROOT, "examples", "wannier90_inputs", "SrSi2", "srsi2")
K_B = 8.617333262e-5  # eV/K


def main():
    import gme_wannier as gw
    from gme_wannier.calculate import _crystal
    from gme_wannier.integrate import GMESettings, to_ampere
    from gme_wannier.settings import Sampling, SymmetryOptions
    from gme_wannier.tetra_sym import sum_over_mesh_tetra_sym

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--temperature", type=float, default=30.0)
    p.add_argument("--step", type=float, default=0.5, help="internal level spacing / k_B T")
    p.add_argument("--meshes", type=int, nargs="+", default=[83, 125])
    args = p.parse_args()
    kT = K_B * args.temperature
    EF = np.round(np.arange(8.40, 8.601, 0.02), 9)
    delta = args.step * kT
    grid = np.arange(EF.min() - 30 * kT, EF.max() + 30 * kT + delta / 2, delta)
    x = (grid[:, None] - EF[None, :]) / kT
    C = delta / kT * 0.25 / np.cosh(x / 2) ** 2  # (-f'(e_j - mu)) de, trapezoid
    model = gw.load_model(SEED, cache=True)
    st_int = GMESettings(fermi_energies=tuple(grid))
    crystal = _crystal(model, st_int, SymmetryOptions(), Sampling(kernel="tetra"))
    print(f"{len(grid)} internal levels, step {delta * 1e3:.2f} meV", flush=True)
    prev = None
    for n in args.meshes:
        t = time.perf_counter()
        raw = sum_over_mesh_tetra_sym(model, (n, n, n), st_int, crystal.sym)
        K = crystal.project(np.einsum("je,jab->eab", C, to_ampere(raw, model, st_int)["total"]))
        change = "" if prev is None else f", change from the previous mesh {np.abs(K - prev).max() / np.abs(K).max():.1%}"
        print(f"{n}^3: {time.perf_counter() - t:.1f} s{change}", flush=True)
        prev = K


if __name__ == "__main__":
    main()
