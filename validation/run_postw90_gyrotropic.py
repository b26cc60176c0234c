#!/usr/bin/env python3
"""Run postw90.x (Wannier90 3.1, gyrotropic module) with every task of the natural-gyrotropy
family on a whole-BZ mesh, and store its output files as arrays in validation/reference/.

The data directory is never written to (inputs are symlinked into a scratch directory, see
run_postw90.py). The .win keeps the model lines and gets

    gyrotropic_task = -C -dos -D0 -Dw -K -NOA [-spin]
    gyrotropic_box_center = 0.5 0.5 0.5, unit box vectors  (the Gamma-centred mesh i/N, weight 1/N^3)
    gyrotropic_kmesh = N N N, Gaussian smearing, smr_max_arg, degen_thresh,
    gyrotropic_freq_min/max/step (postw90 adds i*smr_width to every frequency),
    gyrotropic_eigval_max, fermi_energy_min/max/step, use_ws_distance.

The arrays saved in <out>.npz are what validation/compare_gyrotropic.py reads: efermi (nE,),
omega (nomega,), and for each file SEED-gyrotropic-X.dat the key X with the layout of
gme_wannier.io.writers.read_w90_gyrotropic (nomega, nE, 3, 3), or (1, nE) for DOS.

  python validation/run_postw90_gyrotropic.py ../shared/data/Te_tut24/Te --mesh 24 24 24 \
      --smr 0.02 --efermi 5.9 6.2 0.1 --freq 0.05 0.15 0.05 --out validation/reference/gyro_Te_tut24_full24
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from run_postw90 import prepare_scratch, str2bool, strip_model_lines, win_is_spinor  # noqa: E402

from gme_wannier.io.writers import read_w90_gyrotropic  # noqa: E402

FILES = ("C", "D", "tildeD", "K_orb", "K_spin", "NOA_orb", "NOA_spin", "DOS")


def write_win(orig, out, a, spin):
    lines = strip_model_lines(open(orig).read())
    (e0, e1, de), (f0, f1, df) = a.efermi, a.freq
    lines += ["", "! ---- written by validation/run_postw90_gyrotropic.py ----", "gyrotropic = true",
              "gyrotropic_task = " + a.task + (" -spin" if spin else ""),
              "gyrotropic_box_center = 0.5 0.5 0.5", "gyrotropic_box_b1 = 1.0 0.0 0.0",
              "gyrotropic_box_b2 = 0.0 1.0 0.0", "gyrotropic_box_b3 = 0.0 0.0 1.0",
              "gyrotropic_kmesh = %d %d %d" % tuple(a.mesh), "gyrotropic_smr_type = gauss",
              "gyrotropic_smr_fixed_en_width = %.10g" % a.smr, "gyrotropic_smr_max_arg = %.10g" % a.smr_max_arg,
              "gyrotropic_degen_thresh = %.10g" % a.degen_thresh,
              "gyrotropic_freq_min = %.10g" % f0, "gyrotropic_freq_max = %.10g" % f1,
              "gyrotropic_freq_step = %.10g" % df, "gyrotropic_eigval_max = %.10g" % a.eigval_max,
              "fermi_energy_min = %.10g" % e0, "fermi_energy_max = %.10g" % e1, "fermi_energy_step = %.10g" % de,
              "use_ws_distance = %s" % (".true." if a.ws else ".false."), "timing_level = 2"]
    open(out, "w").write("\n".join(lines) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("seed")
    p.add_argument("--mesh", type=int, nargs=3, default=[24, 24, 24])
    p.add_argument("--smr", type=float, default=0.02)
    p.add_argument("--smr-max-arg", type=float, default=5.0)
    p.add_argument("--degen-thresh", type=float, default=1e-3)
    p.add_argument("--efermi", type=float, nargs=3, default=[5.9, 6.2, 0.1], metavar=("MIN", "MAX", "STEP"))
    p.add_argument("--freq", type=float, nargs=3, default=[0.05, 0.15, 0.05], metavar=("MIN", "MAX", "STEP"))
    p.add_argument("--eigval-max", type=float, default=100.0, help="gyrotropic_eigval_max (eV)")
    p.add_argument("--ws", type=str2bool, default=True)
    p.add_argument("--task", default="-C -dos -D0 -Dw -K -NOA", help="gyrotropic_task (without -spin)")
    p.add_argument("--out", help="write <out>.npz (default: do not save)")
    a = p.parse_args(argv)
    seed_path = os.path.abspath(a.seed)
    spin = win_is_spinor(open(seed_path + ".win").read()) and os.path.exists(seed_path + ".spn")
    tag = "gyro_%s_%dx%dx%d%s" % (os.path.basename(os.path.dirname(seed_path)), *a.mesh,
                                  "" if a.task == p.get_default("task") else a.task.replace(" ", ""))
    work = os.path.abspath(os.path.join(HERE, "..", "scratch", "postw90", tag))
    seed = prepare_scratch(seed_path, work)
    for fn in os.listdir(work):
        if "gyrotropic" in fn or fn.endswith((".wpout", ".werr")):
            os.remove(os.path.join(work, fn))
    write_win(seed_path + ".win", os.path.join(work, seed + ".win"), a, spin)
    t0 = time.time()
    r = subprocess.run([shutil.which("postw90.x") or "postw90.x", seed], cwd=work, capture_output=True, text=True)
    wall = time.time() - t0
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-3000:] + r.stderr[-3000:])
        raise SystemExit("postw90.x failed in %s" % work)
    res = {}
    for name in FILES:
        fn = os.path.join(work, "%s-gyrotropic-%s.dat" % (seed, name))
        if os.path.exists(fn):
            ef, om, T = read_w90_gyrotropic(fn)
            res[name] = T
            if T.ndim == 4:
                res["efermi"], res["omega"] = ef, om
    wp = open(os.path.join(work, seed + ".wpout")).read()
    m = re.search(r"gyrotropic: k-interpolation\s*:\s*\d+\s+([0-9.Ee+-]+)", wp)
    t_k = float(m.group(1)) if m else None
    info = dict(code="postw90.x (Wannier90 3.1, Debian)", seed=seed_path, mesh=a.mesh, smr=a.smr,
                smr_max_arg=a.smr_max_arg, degen_thresh=a.degen_thresh, eigval_max=a.eigval_max,
                use_ws_distance=a.ws, spin=spin, wall_seconds=wall, kinterp_seconds=t_k, task=a.task, workdir=work,
                command="python validation/run_postw90_gyrotropic.py " + " ".join(argv or sys.argv[1:]))
    if a.out:
        np.savez(a.out + ".npz", **res, info=repr(info))
    print("postw90 %.1f s (k loop %s s); files %s; wrote %s" % (wall, t_k, sorted(k for k in res if k not in ("efermi", "omega")),
                                                           (a.out + ".npz") if a.out else "nothing"))
    return res, info


if __name__ == "__main__":
    main()
