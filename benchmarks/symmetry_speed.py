"""Speed-up of the irreducible k-points (symmetry="auto") over the whole mesh ("off").

    .venv/bin/python benchmarks/symmetry_speed.py [--seed ../shared/data/Te_tut24/Te]
        [--mesh 60] [--check-mesh 40] [--temperature 300] [--repeat 3] [--bse-one-thread]

Runs both modes with identical settings on one model, prints wall times, k-point counts, |G|
(point group, and the k-space group with time reversal), the speed-up against the target
|G_k|/1.5, the relative difference of the results, and the cost of each symmetry overhead
(spglib, irreducible mesh, band-symmetry diagnostic, symmetrization). ``--check-mesh`` adds a
second auto/off comparison (accuracy only) on a smaller mesh. Serial, one BLAS thread.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

from gme_wannier.calculate import band_symmetry_error, compute
from gme_wannier.integrate import GMESettings
from gme_wannier.load import load_model
from gme_wannier.settings import Sampling
from gme_wannier.smearing import Smearing
from gme_wannier.symmetry import find_symmetry, irreducible_kpoints, symmetrize_tensor

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SEED = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data", "Te_tut24", "Te"))


def _timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def compare(model, settings: GMESettings, n: int, repeat: int = 1) -> dict:
    """Both modes, alternating, ``repeat`` times; the fastest wall time of each (shared machine)."""
    mesh = (n, n, n)
    t_auto = t_off = np.inf
    for _ in range(repeat):
        auto, t = _timed(compute, model, settings, mesh=mesh, symmetry="auto")
        t_auto = min(t_auto, t)
        off, t = _timed(compute, model, settings, mesh=mesh, symmetry="off")
        t_off = min(t_off, t)
    return {"mesh": n, "auto": auto, "off": off, "t_auto": t_auto, "t_off": t_off,
            "rel": _rel(auto.alpha["total"], off.alpha["total"])}


def report(c: dict) -> None:
    sym = c["auto"].info["symmetry"]
    n_kops = sym["n_kspace_operations"]
    n_auto, n_off = c["auto"].info["mesh"]["n_evaluated"], c["off"].info["mesh"]["n_evaluated"]
    speedup = c["t_off"] / c["t_auto"]
    target = n_kops / 1.5
    print(f"mesh {c['mesh']}^3: |G| = {sym['order']} ({sym['pointgroup']}), with time reversal {n_kops}")
    print(f"  symmetry=off : {n_off:7d} k  {c['t_off']:8.2f} s")
    print(f"  symmetry=auto: {n_auto:7d} k  {c['t_auto']:8.2f} s   (k-point ratio {n_off / n_auto:.2f})")
    print(f"  speed-up {speedup:.2f} (target |G_k|/1.5 = {target:.1f}: {'met' if speedup >= target else 'MISSED'})")
    print(f"  max|alpha_auto - alpha_off| / max|alpha_off| = {c['rel']:.2e}; "
          f"tensor_symmetry_breaking (off) = {c['off'].info['symmetry']['tensor_symmetry_breaking']:.2e}; "
          f"band_symmetry_error = {sym['band_symmetry_error_eV']:.2e} eV")
    print("  alpha_total (auto), A m^-2 T^-1, per E_F: diag =",
          np.array2string(np.diagonal(c["auto"].alpha["total"], axis1=1, axis2=2), precision=4))


def overheads(model, settings: GMESettings, n: int) -> None:
    """The pieces symmetry="auto" adds to the k loop, timed one by one."""
    sym, t_spg = _timed(find_symmetry, model.atoms)
    _, t_irr = _timed(irreducible_kpoints, (n, n, n), sym)
    emax = max(settings.fermi_energies) + 1.0
    _, t_bse = _timed(band_symmetry_error, model, sym, emax=emax)
    with threadpool_limits(1):
        _, t_bse1 = _timed(band_symmetry_error, model, sym, emax=emax)
    K = np.random.default_rng(0).random((len(settings.fermi_energies), 3, 3))
    _, t_sym = _timed(symmetrize_tensor, K, sym)
    print(f"overheads at {n}^3: spglib {t_spg:.3f} s, irreducible mesh {t_irr:.3f} s, "
          f"band_symmetry_error {t_bse:.3f} s (one BLAS thread: {t_bse1:.3f} s), "
          f"symmetrize {t_sym * 1e3:.2f} ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", default=DEFAULT_SEED)
    p.add_argument("--mesh", type=int, default=60)
    p.add_argument("--check-mesh", type=int, default=40, help="0 to skip")
    p.add_argument("--temperature", type=float, default=300.0)
    p.add_argument("--efermi", type=float, nargs="+", default=[5.9, 5.95, 6.0, 6.05, 6.1])
    p.add_argument("--repeat", type=int, default=1, help="runs per mode; the fastest is reported")
    p.add_argument("--bse-one-thread", action="store_true",
                   help="run compute()'s band-symmetry diagnostic with one BLAS thread (proposed fix)")
    a = p.parse_args()
    if a.bse_one_thread:
        import gme_wannier.calculate as calc

        def bse_one_thread(*args, **kw):
            with threadpool_limits(1):
                return band_symmetry_error(*args, **kw)

        calc.band_symmetry_error = bse_one_thread
        print("band_symmetry_error patched to one BLAS thread")

    model, t_load = _timed(load_model, a.seed)
    print(f"{model.name}: {model.num_wann} WFs, {model.nR} R vectors, loaded in {t_load:.1f} s; "
          f"E_F = {a.efermi} eV, T = {a.temperature} K; {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}")
    settings = GMESettings(fermi_energies=a.efermi, smearing=Smearing.from_temperature(a.temperature))
    compute(model, settings, Sampling(mesh=(4, 4, 4)), symmetry="auto")  # warm-up (imports, caches)
    overheads(model, settings, a.mesh)
    report(compare(model, settings, a.mesh, a.repeat))
    if a.check_mesh:
        report(compare(model, settings, a.check_mesh))


if __name__ == "__main__":
    main()
