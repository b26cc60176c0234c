#!/usr/bin/env python3
"""Compute the GME K tensor with WannierBerri (GME_orb_FermiSurf, GME_spin_FermiSurf) on a
Gamma-centred full-BZ grid with no symmetry, in Ampere, as K[E][i][j] (i = velocity,
j = moment), for comparison with run_postw90.py.

Input: either a Wannier90 seed (needs <seed>.chk, .eig, .mmn, .uHu, optionally .spn;
the data directory is only read) or, with --npz, a directory written by System_R.save_npz
(loaded with legacy=True, e.g. ../shared/data/Te_qe_wannierberri/system).

How the Fermi-surface delta is applied (WannierBerri 26.10, calculators/static.py,
StaticCalculator.__call__ with fder=1, no tetrahedra):
  * on a uniform E_F grid extended by one point at each end, each band group (n..n') adds its
    value to every E_F >= E_n  (a step function theta(E_F - E_n));
  * fder=1 takes the central difference (S[i+1]-S[i-1])/(2 dE), so each state puts weight
    1/(2 dE) on the two grid points that straddle E_n;
  * the EnergyResult is then convolved with the smoother (GaussianSmoother: kernel
    exp(-(E/w)^2)/(w sqrt(pi)), i.e. the same Gaussian as Wannier90's w0gauss with
    width w, cut at maxdE*w and renormalised to unit discrete sum, also at the grid edges).
This script therefore evaluates WannierBerri on an internal E_F grid that is much finer than
the requested step (default dE <= w/400; each state is effectively placed at the midpoint of the two grid points around it, so dE must be small against w, and against w^2/(2 distance to the band edge) in the tails) and wider by maxdE*w on both sides (so the smoother is
never truncated in the reported window), and then picks the requested E_F values.

Orbital moment: GME_orb_FermiSurf = VelHplus - 2*E_F*BerryDipole, where the E_F
multiplication acts on the *unsmoothed* data (EnergyResult.mul_array), so after smoothing
the moment is effectively the band moment at E_n (up to the grid spacing dE), see PEERS.md.

Usage example
-------------
  python validation/run_wannierberri.py ../shared/data/Te_tut24/Te --mesh 24 24 24 \
      --smr 0.02 --efermi 5.90 6.20 0.01 --out validation/reference/xxx
"""
import argparse
import math
import os
import sys
import time

import numpy as np


def str2bool(s):
    if s.lower() in ("t", "true", "1", "yes", ".true."):
        return True
    if s.lower() in ("f", "false", "0", "no", ".false."):
        return False
    raise argparse.ArgumentTypeError("expected true/false, got %r" % s)


def default_nkfft(n, nmax=24):
    """largest divisor of n not above nmax (so that NKdiv*NKFFT = n exactly)."""
    for f in range(min(n, nmax), 0, -1):
        if n % f == 0:
            return f
    return 1


def build_system(args):
    import wannierberri as wb
    if args.npz:
        system = wb.system.System_R.from_npz(os.path.abspath(args.seed), legacy=True)
        has_spin = "SS" in system._XX_R if hasattr(system, "_XX_R") else os.path.exists(
            os.path.join(args.seed, "_XX_R_SS.npz"))
        return system, has_spin
    seed = os.path.abspath(args.seed)
    d = os.path.dirname(seed)
    files = ["chk", "eig", "mmn", "uhu"]
    has_spin = os.path.exists(seed + ".spn")
    spin = has_spin if args.spin is None else args.spin
    if spin:
        files.append("spn")
    # formatted flags: .uHu / .spn are formatted in the shared data sets if the .win says so
    win = open(seed + ".win").read().lower().replace(" ", "")
    formatted = []
    if "uhu_formatted=.true." in win or "uhu_formatted=true" in win:
        formatted.append("uhu")
    if "spn_formatted=.true." in win or "spn_formatted=true" in win:
        formatted.append("spn")
    if not os.path.exists(seed + ".chk") and os.path.exists(seed + ".chk.fmt"):
        # WannierBerri reads the binary checkpoint; convert in scratch
        raise SystemExit("binary .chk needed; run w90chk2chk.x -import in a scratch copy and pass that seed")
    cwd = os.getcwd()
    os.chdir(d)  # WannierBerri opens <seedname>.xxx relative to cwd if seedname is relative
    try:
        wd = wb.w90files.WannierData.from_w90_files(os.path.basename(seed), files=files,
                                                    formatted=formatted, readnnkp=False)
        system = wb.system.System_R.from_wannierdata(wd, berry=True, morb=True, spin=spin)
    finally:
        os.chdir(cwd)
    return system, spin


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("seed", help="Wannier90 seed path, or (with --npz) the System_R npz directory")
    p.add_argument("--npz", action="store_true", help="seed is a System_R.save_npz directory (legacy layout)")
    p.add_argument("--mesh", type=int, nargs=3, metavar=("N1", "N2", "N3"), default=[24, 24, 24])
    p.add_argument("--nkfft", type=int, nargs=3, default=None,
                   help="FFT grid (must divide the mesh; default: largest divisor <= 24)")
    p.add_argument("--smr", type=float, default=0.02, help="Gaussian width w (eV), kernel exp(-(E/w)^2)")
    p.add_argument("--maxde", type=float, default=8.0, help="smoother cut-off in units of w (WB default 8)")
    p.add_argument("--efermi", type=float, nargs=3, metavar=("MIN", "MAX", "STEP"), default=[5.9, 6.2, 0.01])
    p.add_argument("--de-internal", type=float, default=None,
                   help="internal E_F grid step (default: the largest step/m <= w/400)")
    p.add_argument("--degen-thresh", type=float, default=1e-3, help="degen_thresh of the calculators (eV)")
    p.add_argument("--spin", type=str2bool, default=None, help="also GME_spin_FermiSurf (default: if spin data exist)")
    p.add_argument("--extra-tasks", nargs="*", default=[], choices=["C", "D"],
                   help="diagnostics: C = Ohmic_FermiSurf with factor 1 (sum delta v_i v_j / (N V), eV/Ang), "
                        "D = BerryDipole_FermiSurf (sum delta v_i Omega_j / (N V), dimensionless), "
                        "to compare with postw90's -C (divided by 1e8 e^2/h) and -D0")
    p.add_argument("--workdir", default=None, help="scratch dir for WannierBerri's own output files")
    p.add_argument("--save-internal", action="store_true",
                   help="also store K_orb on the fine internal E_F grid in the .npz (large)")
    p.add_argument("--out", default=None, help="output prefix: writes <out>.npz and <out>.txt")
    args = p.parse_args(argv)

    import wannierberri as wb
    from wannierberri import calculators as calc
    from wannierberri.smoother import GaussianSmoother

    emin, emax, estep = args.efermi
    nE = int(round((emax - emin) / estep)) + 1
    efermi_out = emin + estep * np.arange(nE)  # same list as Wannier90 (min + i*step)
    if args.de_internal is None:
        m = max(1, int(math.ceil(estep / (args.smr / 400.0))))
        dE = estep / m
    else:
        dE = args.de_internal
        m = int(round(estep / dE))
        assert abs(m * dE - estep) < 1e-9, "--de-internal must divide the E_F step"
    npad = int(math.ceil(args.maxde * args.smr / dE)) + 2
    efermi_int = emin + dE * np.arange(-npad, (nE - 1) * m + npad + 1)
    idx_out = npad + m * np.arange(nE)
    assert np.allclose(efermi_int[idx_out], efermi_out)

    t0 = time.time()
    system, spin = build_system(args)
    if args.spin is not None:
        spin = spin and args.spin
    t_sys = time.time() - t0

    mesh = np.array(args.mesh)
    nkfft = np.array(args.nkfft) if args.nkfft else np.array([default_nkfft(n) for n in mesh])
    assert np.all(mesh % nkfft == 0), "NKFFT must divide the mesh"
    nkdiv = mesh // nkfft
    grid = wb.grid.Grid(system, NKdiv=nkdiv, NKFFT=nkfft, use_symmetry=False)

    smoother = GaussianSmoother(efermi_int, smear=args.smr, maxdE=args.maxde)
    calcs = {"gme_orb": calc.static.GME_orb_FermiSurf(Efermi=efermi_int, smoother=smoother,
                                                      degen_thresh=args.degen_thresh)}
    if spin:
        calcs["gme_spin"] = calc.static.GME_spin_FermiSurf(Efermi=efermi_int, smoother=smoother,
                                                           degen_thresh=args.degen_thresh)

    if "C" in args.extra_tasks:
        calcs["C"] = calc.static.Ohmic_FermiSurf(Efermi=efermi_int, smoother=smoother,
                                                 degen_thresh=args.degen_thresh, constant_factor=1.0)
    if "D" in args.extra_tasks:
        calcs["D"] = calc.static.BerryDipole_FermiSurf(Efermi=efermi_int, smoother=smoother,
                                                       degen_thresh=args.degen_thresh)

    workdir = args.workdir or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scratch", "wannierberri",
                                           "%s_%dx%dx%d" % (os.path.basename(os.path.dirname(os.path.abspath(args.seed)))
                                                            if not args.npz else "npz_" + os.path.basename(os.path.dirname(os.path.abspath(args.seed).rstrip("/"))),
                                                            *mesh))
    os.makedirs(workdir, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        t1 = time.time()
        result = wb.run(system, grid=grid, calculators=calcs, parallel=False, use_irred_kpt=False,
                        symmetrize=False, fout_name="wb", print_progress_step_time=60)
        t_run = time.time() - t1
    finally:
        os.chdir(cwd)

    nk = int(np.prod(mesh))
    res = dict(efermi=efermi_out)
    res["K_orb"] = np.array(result.results["gme_orb"].dataSmooth)[idx_out]
    if spin:
        res["K_spin"] = np.array(result.results["gme_spin"].dataSmooth)[idx_out]
    for name in args.extra_tasks:
        res[name] = np.array(result.results[name].dataSmooth)[idx_out]
    # unsmoothed band moments are not exposed; keep the internal-grid smoothed data for checks
    res["efermi_internal"] = efermi_int
    res["K_orb_internal"] = np.array(result.results["gme_orb"].dataSmooth)
    info = dict(code="WannierBerri %s" % wb.__version__, seed=os.path.abspath(args.seed), npz=args.npz,
                mesh=mesh.tolist(), NKdiv=nkdiv.tolist(), NKFFT=nkfft.tolist(), nk=nk,
                smr=args.smr, smoother="GaussianSmoother(maxdE=%g)" % args.maxde, dE_internal=dE,
                degen_thresh=args.degen_thresh, spin=bool(spin), MDRS="always (WannierBerri Rvectors)",
                system_seconds=t_sys, run_seconds=t_run, seconds_per_kpoint=t_run / nk,
                command="python validation/run_wannierberri.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    print("WannierBerri finished: system %.1f s, run %.1f s, Nk=%d, %.3g s/k-point" % (t_sys, t_run, nk, t_run / nk))
    if args.out:
        from run_postw90 import save_result
        save_result(args.out, {k: v for k, v in res.items() if not k.endswith("internal")}, info)
        if not args.save_internal:
            res = {k: v for k, v in res.items() if not k.endswith("internal")}
        np.savez(args.out + ".npz", **res, info=repr(info))
    return res, info


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
