#!/usr/bin/env python3
"""Te (Te_tut24, no SOC): interband rotatory power rho(omega) from the infrared to the gap, the
intraband GME part for p-doping, and the current-induced magnetization per unit current
M_z / j_z = -K_zz / (2 pi C_zz) (docs/theory.md section 10). Writes docs/figures/te_rotatory_power.png
and prints the numbers quoted in docs/gyrotropy_te.md.

* NOA: whole BZ N^3 (default 24), symmetrized with the point group 32, Gaussian 0.01 eV
  (eta = 0.01 eV), E_F in the gap (intrinsic) and below the valence-band top (p-doped).
* K and C: two boxes around H and H' (0.2 reduced units wide, M^3 points each, default 40), which
  contain the pockets of the p-doped levels (M^3 = 60^3 by default); Fermi-Dirac at 300 K (K_orb as in
  Wannier90, each band once; the spinless model describes both spins: rho, K and C are doubled
  in the physical crystal, and K/C is not).

  python validation/te_natural_gyrotropy.py [--data ../shared/data] [--mesh 24] [--refine 12] [--box-mesh 60]   (~6 min)
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)


def loop(model, qs, k, w, st, sym=None, chunk=300):
    from threadpoolctl import threadpool_limits

    from gme_wannier.bands import Interpolator

    interp = Interpolator(model, external=st.external, spin=st.spin)
    out = {}
    with threadpool_limits(limits=1):
        for q in qs:
            raw = {}
            for i in range(0, len(k), chunk):
                part = q.chunk(interp, k[i:i + chunk], w[i:i + chunk], st)
                raw = {key: raw.get(key, 0) + v for key, v in part.items()}
            out.update(q.finish(raw, model, st, sym))
    return out


def refined_mesh(N, f, half=2):
    """The Gamma-centred N^3 mesh (each point the centre of its cell) with the 5^3 cells around
    H = (1/3, 1/3, 1/2) and H' = (2/3, 2/3, 1/2) (N divisible by 6) replaced by f^3 sub-cells
    each: points (nk, 3) and weights (nk,), sum 1. The NOA integrand of Te peaks within ~0.01
    (reduced) of H, where the valence top sits 0.1 eV below the conduction band."""
    from gme_wannier.kmesh import uniform_mesh

    k = uniform_mesh((N,) * 3)
    idx = np.rint(k * N).astype(int) % N
    keep = np.ones(len(k), bool)
    fine = []
    sub = (np.indices((f,) * 3).reshape(3, -1).T + 0.5) / f - 0.5  # offsets inside a cell
    for c in (np.array([N // 3, N // 3, N // 2]), np.array([2 * N // 3, 2 * N // 3, N // 2])):
        d = (idx - c + N // 2) % N - N // 2
        inbox = np.all(np.abs(d) <= half, axis=1)
        keep &= ~inbox
        fine.append(((idx[inbox][:, None, :] + sub[None]) / N).reshape(-1, 3))
    fine = np.concatenate(fine)
    kk = np.concatenate([k[keep], fine])
    w = np.concatenate([np.full(keep.sum(), 1.0 / N ** 3), np.full(len(fine), 1.0 / (N ** 3 * f ** 3))])
    return kk, w


def k_and_c(model, ef, box_mesh_n):
    """K_orb (A) and C (A/cm) summed over the boxes around H and H' (the pockets)."""
    from gme_wannier import gyrotropic as gy
    from gme_wannier.bands import Interpolator
    from gme_wannier.integrate import GMESettings, fermi_surface_chunk, to_ampere
    from gme_wannier.kmesh import box_mesh
    from gme_wannier.smearing import Smearing

    st = GMESettings(fermi_energies=ef, smearing=Smearing.from_temperature(300.0, max_arg=20.0), degen_thresh=1e-4)
    interp = Interpolator(model)
    K = 0.0
    C = 0.0
    for centre in ([1 / 3, 1 / 3, 0.5], [2 / 3, 2 / 3, 0.5]):
        k, w = box_mesh(centre, [0.2, 0, 0], [0, 0.2, 0], [0, 0, 0.2], [box_mesh_n] * 3)
        wt = np.full(len(k), w)
        raw = {}
        for i in range(0, len(k), 2000):
            part = fermi_surface_chunk(interp, k[i:i + 2000], wt[i:i + 2000], st)
            raw = {key: raw.get(key, 0) + v for key, v in part.items()}
        K = K + to_ampere(raw, model, st)["orbital"]
        C = C + loop(model, [gy.C()], k, wt, st, chunk=2000)["C"]
    return K, C


def main(argv=None):
    from gme_wannier import gyrotropic as gy
    from gme_wannier.integrate import GMESettings
    from gme_wannier.load import load_model
    from gme_wannier.smearing import Smearing
    from gme_wannier.symmetry import find_symmetry
    from gme_wannier.units import E_OVER_HBAR

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    p.add_argument("--mesh", type=int, default=24)
    p.add_argument("--box-mesh", type=int, default=60)
    p.add_argument("--refine", type=int, default=12, help="sub-cells per coarse cell near H, H' (NOA)")
    p.add_argument("--plot", default=os.path.join(ROOT, "docs", "figures", "te_rotatory_power.png"))
    a = p.parse_args(argv)
    model = load_model(os.path.join(a.data, "Te_tut24", "Te"))
    sym = find_symmetry(model.atoms)
    ef = np.array([5.98, 5.92, 5.90, 5.88])  # gap (VBM 5.929, CBM 6.036 eV on 24^3), then p-doped
    omega = np.round(np.linspace(0.005, 0.10, 20), 4)
    st = GMESettings(fermi_energies=ef, smearing=Smearing("gaussian", 0.01, max_arg=5.0), degen_thresh=1e-4)
    k, wk = refined_mesh(a.mesh, a.refine)
    t0 = time.perf_counter()
    noa = loop(model, gy.make_quantities(["NOA"], omega=omega), k, wk, st, sym=sym)
    t_noa = time.perf_counter() - t0
    t0 = time.perf_counter()
    K, C = k_and_c(model, ef, a.box_mesh)
    t_kc = time.perf_counter() - t0
    alpha0 = E_OVER_HBAR * K
    rho = gy.rotatory_power(omega, noa["NOA_orb"], alpha0)
    print(f"# NOA {a.mesh}^3 whole BZ, {a.refine}^3 sub-cells in 5^3 cells at H, H' ({len(k)} points, {t_noa:.0f} s), K and C in two {a.box_mesh}^3 boxes at H, H' ({t_kc:.0f} s)")
    print("# rho along z (rad/mm, this package's sign: > 0 dextrorotatory), model counting (x2 for spin)")
    print("# hbar*omega(eV) " + " ".join(f"inter(EF={e:.2f})" for e in ef))
    for i, om in enumerate(omega):
        print(f"  {om:7.4f}        " + " ".join(f"{x:14.4e}" for x in rho["inter"][i]))
    print("# E_F  K_zz(A)  C_zz(A/cm)  M_z/j_z = -K_zz/(2 pi C_zz) (m)  rho_GME clean limit (rad/mm)")
    for j, e in enumerate(ef):
        Czz = C[j, 2, 2] * 100.0  # A/m
        ratio = -K[j, 2, 2] / (2 * np.pi * Czz) if Czz > 0 else float("nan")
        print(f"  {e:5.2f} {K[j, 2, 2]:11.3e} {C[j, 2, 2]:11.3e} {ratio:11.3e} {rho['gme'][0, j]:11.3e}")
    if a.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        os.makedirs(os.path.dirname(a.plot), exist_ok=True)
        fig, ax = plt.subplots(figsize=(6, 4))
        for j, e in enumerate(ef):
            ax.plot(omega, rho["inter"][:, j], marker="o", ms=3, label=f"interband, E_F = {e:.2f} eV")
        for j in (1, 2):
            ax.plot(omega, rho["total"][:, j], ls="--", label=f"+ GME (clean limit), E_F = {ef[j]:.2f} eV")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xlabel("hbar omega (eV)")
        ax.set_ylabel("rho along c (rad/mm; > 0 dextrorotatory)")
        ax.set_title(f"Te (Te_tut24, no SOC, each band once), {a.mesh}^3, eta = 0.01 eV")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(a.plot, dpi=120)
        print("wrote", a.plot)


if __name__ == "__main__":
    main()
