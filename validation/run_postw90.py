#!/usr/bin/env python3
"""Run Wannier90's postw90.x (gyrotropic module, task -K) on a Wannier90 data set and
collect the K tensor as an array K[E][i][j] in Ampere (i = velocity/current, j = moment).

The data directory is never written to: every input file is symlinked into a scratch
directory (default scratch/postw90/<tag> in the repository), a new <seed>.win is written there
(the model lines of the original .win are kept, every gyrotropic/Fermi-level/ws setting is
replaced by ours), postw90.x runs there, and <seed>-gyrotropic-K_orb.dat (and K_spin.dat)
are parsed.

Mesh modes
----------
* default ("full BZ"): gyrotropic_box_center = 0.5 0.5 0.5, box_b1..b3 = unit vectors,
  gyrotropic_kmesh = N1 N2 N3.  postw90 then puts the k-points at the box corner (0,0,0)
  plus i/N1 b1 + j/N2 b2 + l/N3 b3 (see gyrotropic_main: kpt = box_corner + (i*db1, ...)·box,
  box_corner = center - (b1+b2+b3)/2), i.e. exactly the Gamma-centred grid i/N, weight
  1/(N1 N2 N3).
* --win-box: keep the gyrotropic box/kmesh/smearing/Fermi settings of the original .win
  (used to reproduce the reference files shipped with the data).

Reconstruction of the 3x3 tensor from the printed columns
---------------------------------------------------------
gyrotropic_outprint_tensor_w (symmetrize=.true., which is what K_orb/K_spin use) prints
  xx=K11 yy=K22 zz=K33, xy=(K12+K21)/2, xz=(K13+K31)/2, yz=(K23+K32)/2,
  x=(K23-K32)/2, y=(K31-K13)/2, z=(K12-K21)/2
with K(i,j,:) accumulated as del_eig(n,i)*m(n,j)*delta, so the inverse is
  K12 = xy + z, K21 = xy - z, K13 = xz - y, K31 = xz + y, K23 = yz + x, K32 = yz - x.

Usage example
-------------
  python validation/run_postw90.py ../shared/data/Te_tut24/Te --mesh 24 24 24 \
      --smr 0.02 --efermi 5.90 6.20 0.01 --ws true --out validation/reference/xxx
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np

# keys that we set ourselves (anything starting with these is dropped from the original .win)
OVERRIDE_PREFIXES = (
    "gyrotropic",
    "fermi_energy",
    "use_ws_distance",
    "timing_level",
    "berry",
    "dos",
    "kpath",
    "kslice",
    "boltzwann",
    "geninterp",
    "spin_moment",
    "spin_decomp",
)


def strip_model_lines(win_text):
    """Return the lines of a .win that are kept (everything but the postw90 task settings)."""
    kept = []
    for line in win_text.splitlines():
        s = line.strip().lower()
        key = re.split(r"[\s=:]", s, maxsplit=1)[0] if s else ""
        if key and key.startswith(OVERRIDE_PREFIXES):
            continue
        kept.append(line)
    return kept


def get_win_setting(win_text, key):
    for line in win_text.splitlines():
        s = line.split("!")[0].split("#")[0].strip()
        m = re.match(r"^\s*%s\s*[=:\s]\s*(.*)$" % re.escape(key), s, re.IGNORECASE)
        if m:
            return m.group(1).strip()
    return None


def win_is_spinor(win_text):
    v = get_win_setting(win_text, "spinors")
    return v is not None and v.strip(". ").lower().startswith("t")


def parse_gyro_tensor_file(path):
    """Parse a <seed>-gyrotropic-K_*.dat file.

    Returns (efermi[nE], omega[nE], K[nE,3,3]) with K[E][i][j], i = velocity, j = moment.
    """
    rows = []
    with open(path) as f:
        for line in f:
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            vals = s.split()
            if len(vals) != 11:
                continue
            rows.append([float(v) for v in vals])
    a = np.array(rows)
    ef, om = a[:, 0], a[:, 1]
    xx, yy, zz, xy, xz, yz, x, y, z = (a[:, 2 + c] for c in range(9))
    K = np.zeros((len(a), 3, 3))
    K[:, 0, 0], K[:, 1, 1], K[:, 2, 2] = xx, yy, zz
    K[:, 0, 1], K[:, 1, 0] = xy + z, xy - z
    K[:, 0, 2], K[:, 2, 0] = xz - y, xz + y
    K[:, 1, 2], K[:, 2, 1] = yz + x, yz - x
    return ef, om, K


def prepare_scratch(seed_path, workdir):
    src_dir = os.path.dirname(os.path.abspath(seed_path))
    seed = os.path.basename(seed_path)
    os.makedirs(workdir, exist_ok=True)
    for fn in os.listdir(src_dir):
        if not fn.startswith(seed):
            continue
        rest = fn[len(seed):]
        if rest in (".win", ".wout", ".werr") or "gyrotropic" in rest or rest.endswith(".gz"):
            continue
        dst = os.path.join(workdir, fn)
        if os.path.lexists(dst):
            os.remove(dst)
        os.symlink(os.path.join(src_dir, fn), dst)
    chk = os.path.join(workdir, seed + ".chk")
    if not os.path.exists(chk) and os.path.exists(chk + ".fmt"):
        # formatted checkpoint -> unformatted (postw90 3.1 reads only the binary one)
        subprocess.run(["w90chk2chk.x", "-import", seed], cwd=workdir, check=True,
                       stdout=subprocess.DEVNULL)
    return seed


def write_win(orig_win, out_win, args, spin):
    text = open(orig_win).read()
    if args.win_box:
        # keep the original file verbatim, only force the task / ws choice if asked
        lines = []
        for line in text.splitlines():
            s = line.strip().lower()
            key = re.split(r"[\s=:]", s, maxsplit=1)[0] if s else ""
            if args.ws is not None and key.startswith("use_ws_distance"):
                continue
            if key.startswith("gyrotropic_task"):
                continue
            lines.append(line)
        block = ["", "! ---- settings written by validation/run_postw90.py ----",
                 "gyrotropic_task = -K" + (" -spin" if spin else "") + (" " + args.extra_tasks if args.extra_tasks else "")]
        if args.ws is not None:
            block.append("use_ws_distance = %s" % (".true." if args.ws else ".false."))
        if get_win_setting(text, "timing_level") is None:
            block.append("timing_level = 2")
        open(out_win, "w").write("\n".join(lines + block) + "\n")
        return
    lines = strip_model_lines(text)
    emin, emax, estep = args.efermi
    n1, n2, n3 = args.mesh
    block = [
        "",
        "! ---- settings written by validation/run_postw90.py ----",
        "gyrotropic = true",
        "gyrotropic_task = -K" + (" -spin" if spin else "") + (" " + args.extra_tasks if args.extra_tasks else ""),
        "gyrotropic_box_center = 0.5 0.5 0.5",
        "gyrotropic_box_b1 = 1.0 0.0 0.0",
        "gyrotropic_box_b2 = 0.0 1.0 0.0",
        "gyrotropic_box_b3 = 0.0 0.0 1.0",
        "gyrotropic_kmesh = %d %d %d" % (n1, n2, n3),
        "gyrotropic_smr_type = gauss",
        "gyrotropic_smr_fixed_en_width = %.10g" % args.smr,
        "gyrotropic_smr_max_arg = %.10g" % args.smr_max_arg,
        "gyrotropic_degen_thresh = %.10g" % args.degen_thresh,
        "gyrotropic_freq_min = 0.0",
        "gyrotropic_freq_max = 0.0",
        "gyrotropic_freq_step = 0.01",
        "fermi_energy_min = %.10g" % emin,
        "fermi_energy_max = %.10g" % emax,
        "fermi_energy_step = %.10g" % estep,
        "use_ws_distance = %s" % (".true." if args.ws else ".false."),
        "timing_level = 2",
    ]
    open(out_win, "w").write("\n".join(lines + block) + "\n")


def str2bool(s):
    if s.lower() in ("t", "true", "1", "yes", ".true."):
        return True
    if s.lower() in ("f", "false", "0", "no", ".false."):
        return False
    raise argparse.ArgumentTypeError("expected true/false, got %r" % s)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("seed", help="path of the data set's seed, e.g. ../shared/data/Te_tut24/Te")
    p.add_argument("--mesh", type=int, nargs=3, metavar=("N1", "N2", "N3"), default=[24, 24, 24],
                   help="full-BZ Gamma-centred mesh (ignored with --win-box)")
    p.add_argument("--smr", type=float, default=0.02, help="Gaussian width (eV)")
    p.add_argument("--smr-max-arg", type=float, default=5.0, help="gyrotropic_smr_max_arg")
    p.add_argument("--degen-thresh", type=float, default=1e-3, help="gyrotropic_degen_thresh (eV)")
    p.add_argument("--efermi", type=float, nargs=3, metavar=("MIN", "MAX", "STEP"),
                   default=[5.9, 6.2, 0.01], help="Fermi energies (eV)")
    p.add_argument("--ws", type=str2bool, default=None,
                   help="use_ws_distance true/false (default: true in full-BZ mode, "
                        "unchanged from the .win with --win-box)")
    p.add_argument("--spin", type=str2bool, default=None,
                   help="also compute K_spin (default: yes if the .win says spinors=true and a .spn exists)")
    p.add_argument("--win-box", action="store_true",
                   help="use the gyrotropic box/mesh/smearing/E_F settings of the original .win")
    p.add_argument("--workdir", default=None, help="scratch directory (default scratch/postw90/<tag> in the repository)")
    p.add_argument("--out", default=None, help="output prefix: writes <out>.npz and <out>.txt")
    p.add_argument("--postw90", default="postw90.x", help="postw90 executable")
    p.add_argument("--extra-tasks", default="",
                   help="extra gyrotropic tasks for diagnostics, e.g. '-C -D0' (their tensors are parsed too)")
    args = p.parse_args(argv)
    if not args.win_box and args.ws is None:
        args.ws = True

    seed_path = os.path.abspath(args.seed)
    src_dir = os.path.dirname(seed_path)
    seed = os.path.basename(seed_path)
    win_text = open(seed_path + ".win").read()
    spin = args.spin
    if spin is None:
        spin = win_is_spinor(win_text) and os.path.exists(seed_path + ".spn")

    tag = os.path.basename(src_dir)
    if args.win_box:
        tag += "_winbox"
    else:
        tag += "_%dx%dx%d_smr%g_ws%s" % (*args.mesh, args.smr, "T" if args.ws else "F")
    workdir = args.workdir or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scratch",
                                           "postw90", tag)
    workdir = os.path.abspath(workdir)
    prepare_scratch(seed_path, workdir)
    for fn in os.listdir(workdir):
        if "gyrotropic" in fn or fn.endswith((".wpout", ".werr")):
            os.remove(os.path.join(workdir, fn))
    write_win(seed_path + ".win", os.path.join(workdir, seed + ".win"), args, spin)

    exe = shutil.which(args.postw90) or args.postw90
    t0 = time.time()
    r = subprocess.run([exe, seed], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.time() - t0
    wpout = os.path.join(workdir, seed + ".wpout")
    if r.returncode != 0 or not os.path.exists(os.path.join(workdir, seed + "-gyrotropic-K_orb.dat")):
        sys.stderr.write(r.stdout)
        if os.path.exists(wpout):
            sys.stderr.write(open(wpout).read()[-3000:])
        werr = os.path.join(workdir, seed + ".werr")
        if os.path.exists(werr):
            sys.stderr.write(open(werr).read())
        raise SystemExit("postw90.x failed (rc=%d) in %s" % (r.returncode, workdir))

    # k-interpolation time as reported by postw90 itself (timing_level=2)
    t_interp = None
    nk = None
    wp = open(wpout).read()
    m = re.search(r"gyrotropic: k-interpolation\s*:\s*\d+\s+([0-9.Ee+-]+)", wp)
    if m:
        t_interp = float(m.group(1))
    m = re.search(r"Interpolation grid:\s+(\d+)\s+(\d+)\s+(\d+)", wp)
    if m:
        nk = int(m.group(1)) * int(m.group(2)) * int(m.group(3))

    ef, _, K_orb = parse_gyro_tensor_file(os.path.join(workdir, seed + "-gyrotropic-K_orb.dat"))
    res = dict(efermi=ef, K_orb=K_orb)
    if spin:
        ef2, _, K_spin = parse_gyro_tensor_file(os.path.join(workdir, seed + "-gyrotropic-K_spin.dat"))
        assert np.allclose(ef, ef2)
        res["K_spin"] = K_spin

    for name in ("C", "D"):
        fn = os.path.join(workdir, seed + "-gyrotropic-%s.dat" % name)
        if os.path.exists(fn):
            res[name] = parse_gyro_tensor_file(fn)[2]

    info = dict(
        code="postw90.x (Wannier90 3.1.0, Debian)", seed=seed_path,
        mode="win-box" if args.win_box else "full-BZ box, centre 0.5 0.5 0.5, unit box vectors",
        mesh=None if args.win_box else list(args.mesh), nk=nk,
        smr=None if args.win_box else args.smr, smr_max_arg=None if args.win_box else args.smr_max_arg,
        degen_thresh=None if args.win_box else args.degen_thresh,
        use_ws_distance=args.ws, spin=bool(spin), wall_seconds=wall, kinterp_seconds=t_interp,
        seconds_per_kpoint=(t_interp / nk) if (t_interp and nk) else (wall / nk if nk else None),
        command="python validation/run_postw90.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        workdir=workdir,
    )
    print("postw90 finished: wall %.1f s, k-interpolation %s s, Nk=%s, %.3g s/k-point"
          % (wall, t_interp, nk, info["seconds_per_kpoint"] or float("nan")))
    if args.out:
        save_result(args.out, res, info)
    return res, info


def save_result(out, res, info):
    """Write <out>.npz (arrays + info as a string) and a human-readable <out>.txt."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    np.savez(out + ".npz", **res, info=repr(info))
    with open(out + ".txt", "w") as f:
        for k, v in info.items():
            f.write("# %s: %s\n" % (k, v))
        f.write("# K tensor in Ampere, K[i][j]: i = velocity (current) direction, j = moment direction\n")
        comps = ["%s%s" % (a, b) for a in "xyz" for b in "xyz"]
        for name in [k for k in res if k.startswith("K_")]:
            f.write("# %s\n# %-10s %s\n" % (name, "E_F(eV)", " ".join("%15s" % c for c in comps)))
            for e, K in zip(res["efermi"], res[name]):
                f.write("  %-10.5f %s\n" % (e, " ".join("%15.6e" % x for x in K.reshape(-1))))
    print("wrote", out + ".npz", out + ".txt")


if __name__ == "__main__":
    main()
