#!/usr/bin/env python3
"""Time gme_wannier, WannierBerri and postw90.x on the same inputs, mesh and smearing.

Serial, identical work: the same Gamma-centred full-BZ mesh, no symmetry on any side, the same
Fermi levels and Gaussian width; every code runs in its own subprocess with one BLAS/OpenMP
thread. Each code is run ``--repeat`` times and the fastest run is kept. For each data set:

* **ours** is configured like the peer it is compared with (docs/validation.md): like
  WannierBerri (default convention, degenerate groups, Gaussian cut at 8 w) and like postw90
  (``convention="postw90"``, degenerate bands skipped, cut at 5 w);
* **WannierBerri** (GME_orb_FermiSurf [+ GME_spin_FermiSurf]) through
  ``validation/run_wannierberri.py``: timed on its natural E_F grid (the requested one), and run
  once more on the fine internal grid that makes its delta the same Gaussian, for the agreement;
* **postw90.x** (``gyrotropic_task = -K [-spin]``) through ``validation/run_postw90.py``.
  SrSi2 has no .mmn/.uHu, which postw90 needs for -K: it is timed on ``-C`` (H and velocities
  only, less work than -K), so the speedup against it is a lower bound.
* **bound**: in our process, the bare cost of the Fourier transforms (one phase-matrix GEMM of
  every matrix the moment needs) plus the eigensolver (``numpy.linalg.eigh``) at every k-point,
  and the same for H alone.

Printed per data set: start-up (imports + reading files), k-loop time, microseconds per
k-point, max relative difference of K (max |K_ours - K_peer| / max |K_peer|), ratios. The last
line is a JSON object (``speedup_vs_wannierberri``, ``speedup_vs_postw90``: the smallest k-loop
ratio over the data sets; the per-set values and totals with start-up are in it too).

Usage::

    .venv/bin/python benchmarks/compare_peers.py                 # all sets, repeat 2
    .venv/bin/python benchmarks/compare_peers.py --sets te_tut24 --repeat 3
"""

from __future__ import annotations

import argparse
import ast
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VALID = os.path.join(ROOT, "validation")
DATA = os.environ.get("GME_DATA", os.path.normpath(os.path.join(ROOT, "..", "shared", "data")))
PY = sys.executable
SERIAL_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "NUMBA_NUM_THREADS": "1"}


def efermi_list(emin, emax, step):
    n = int(round((emax - emin) / step)) + 1
    return emin + step * np.arange(n)


# data sets: seed, how each code reads it, mesh, Fermi levels
SETS = {
    "te_tut24": dict(seed=f"{DATA}/Te_tut24/Te", mesh=32, efermi=(5.90, 6.20, 0.01), smr=0.02,
                     ours_wb={"kind": "w90"}, ours_pw={"kind": "w90", "convention": "postw90"},
                     wb={"kind": "w90"}, pw={"task": "-K"},
                     note="32^3 (24^3 and 30^3 hold H, where WB's group trace and postw90's skip differ "
                          "completely: docs/validation.md)"),
    "te_qe_npz": dict(seed=f"{DATA}/Te_qe_wannierberri/system", mesh=16, efermi=(5.80, 6.10, 0.01), smr=0.02,
                      ours_wb={"kind": "npz"}, ours_pw=None, wb={"kind": "npz"}, pw=None,
                      note="WannierBerri System_R npz: postw90 cannot read it"),
    "srsi2": dict(seed=f"{DATA}/SrSi2/srsi2", mesh=15, efermi=(8.20, 8.80, 0.05), smr=0.02,
                  ours_wb={"kind": "tb"}, ours_pw={"kind": "w90", "source": "hr"}, wb={"kind": "tb"},
                  pw={"task": "-C"},
                  note="odd mesh: the k_a = 1/2 faces of P4_332 carry degenerate bands, where WB's group "
                       "trace and our group sum differ (docs/validation.md); _tb.dat without _wsvec.dat for WB "
                       "and ours-like-WB (WB's from_tb_file does no MDRS); postw90 only -C (no .mmn/.uHu for "
                       "-K); internal orbital moment"),
}


# ------------------------------------------------------------------------------------ helpers
def run(cmd, env=None, cwd=None):
    e = dict(os.environ)
    e.update(SERIAL_ENV)
    e["PYTHONPATH"] = ROOT + os.pathsep + VALID + os.pathsep + e.get("PYTHONPATH", "")
    if env:
        e.update(env)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=e, cwd=cwd)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-4000:])
        raise RuntimeError(f"command failed: {' '.join(cmd)}")
    return r.stdout, wall


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("no JSON line in output:\n" + text[-2000:])


def tb_scratch(seed, work):
    """SEED_tb.dat (gunzipped) + SEED.win in a scratch folder, without _wsvec.dat."""
    d = os.path.join(work, "tb_" + os.path.basename(seed))
    os.makedirs(d, exist_ok=True)
    name = os.path.basename(seed)
    tb = os.path.join(d, name + "_tb.dat")
    if not os.path.exists(tb):
        src = seed + "_tb.dat.gz" if os.path.exists(seed + "_tb.dat.gz") else seed + "_tb.dat"
        opener = gzip.open if src.endswith(".gz") else open
        with opener(src, "rb") as f, open(tb, "wb") as g:
            shutil.copyfileobj(f, g)
    shutil.copy(seed + ".win", os.path.join(d, name + ".win"))
    return os.path.join(d, name)


def rel_diff(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


# ------------------------------------------------------------------------------------ ours
def ours_main(spec):
    """Subprocess body: import, load, compute (repeat), bound; prints one JSON line."""
    t0 = time.perf_counter()
    import gme_wannier as gw
    from gme_wannier.bands import Interpolator
    from gme_wannier.integrate import GMESettings
    t_import = time.perf_counter() - t0

    t0 = time.perf_counter()
    kind = spec["kind"]
    if kind == "npz":
        from gme_wannier.postw90_model import load_wannierberri_npz
        model = load_wannierberri_npz(spec["seed"])
    else:
        kw = {k: spec[k] for k in ("source", "convention") if k in spec}
        if kind == "tb":  # like WannierBerri's from_tb_file: the R list of the file, no MDRS images
            kw.update(source="tb", ws_images="wsvec")
        model = gw.load_model(spec["seed"], **kw)
    t_load = time.perf_counter() - t0

    EF = efermi_list(*spec["efermi"])
    st = GMESettings(fermi_energies=EF, smearing=gw.Smearing("gaussian", spec["smr"], max_arg=spec["max_arg"]),
                     degen_thresh=1e-3, degeneracy=spec["degeneracy"])
    mesh = (spec["mesh"],) * 3
    times, res = [], None
    for _ in range(spec["repeat"]):
        t0 = time.perf_counter()
        res = gw.compute(model, st, gw.Sampling(mesh=mesh), symmetry="off", run=gw.RunControl(chunk_size=spec["chunk"]))
        times.append(time.perf_counter() - t0)
    nk = int(np.prod(mesh))

    # the bound: phase GEMM of every matrix the moment uses + eigh of H, at every k-point
    from threadpoolctl import threadpool_limits
    from gme_wannier.kmesh import uniform_mesh

    it = Interpolator(model, external=st.external, spin=st.spin)
    k = uniform_mesh(mesh)
    bare_all, bare_H = [], []
    with threadpool_limits(1):
        for _ in range(spec["repeat"]):
            tA = tH = 0.0
            for i in range(0, nk, spec["chunk"]):
                kk = k[i:i + spec["chunk"]]
                t0 = time.perf_counter()
                ph = np.exp(2j * np.pi * (kk @ it.model.iRvec.T))
                X = (ph @ it.XR).reshape(len(kk), it.ncomp, it.nw, it.nw)
                np.linalg.eigh(X[:, 0])
                t1 = time.perf_counter()
                H = (ph @ it.XR[:, :it.nw * it.nw]).reshape(len(kk), it.nw, it.nw)
                np.linalg.eigh(H)
                t2 = time.perf_counter()
                tA += t1 - t0
                tH += t2 - t1
            bare_all.append(tA)
            bare_H.append(tH)
    ref_time = None
    if spec.get("reference"):
        # the straightforward kernel: every band of every k-point as a column, no energy window
        from gme_wannier.banddata import band_data
        from gme_wannier.bands import Interpolator
        from gme_wannier.integrate import gme_sums, surface_weights

        interp = Interpolator(model, external=st.external, spin=st.spin)
        t0 = time.perf_counter()
        for i in range(0, nk, 200):
            bd, _ = band_data(interp, k[i:i + 200], degen_thresh=st.degen_thresh, columns="all")
            gme_sums(surface_weights(bd, st).scaled(np.full(bd.n_points, 1.0 / nk)), bd, st)
        ref_time = time.perf_counter() - t0
    out = {"t_import": t_import, "t_load": t_load, "t_compute": min(times), "t_compute_all": times, "nk": nk,
           "nR": model.nR, "nw": model.num_wann, "t_bare_all": min(bare_all), "t_bare_H": min(bare_H),
           "t_reference_kernel_chunk200": ref_time, "ef": EF.tolist(),
           "K_orb": res.K["orbital"].tolist(), "K_spin": res.K["spin"].tolist()}
    print(json.dumps(out))


def run_ours(setname, cfg, spec_extra, repeat, chunk, reference=False, work=None):
    seed = cfg["seed"]
    if spec_extra.get("kind") == "tb":  # the same _tb.dat as WannierBerri, no _wsvec.dat
        seed = tb_scratch(seed, work or tempfile.gettempdir())
    spec = {"seed": seed, "mesh": cfg["mesh"], "efermi": cfg["efermi"], "smr": cfg["smr"],
            "repeat": repeat, "chunk": chunk, "reference": reference, **spec_extra}
    out, wall = run([PY, os.path.abspath(__file__), "--_ours", json.dumps(spec)])
    d = last_json(out)
    d["wall"] = wall
    return d


# ------------------------------------------------------------------------------------ WannierBerri
_WB_TB_PATCH = r'''
import json, sys, os
sys.path.insert(0, {valid!r})
import run_wannierberri as r
import wannierberri as wb
import wannierberri.calculators.static as S
_orig = S.GME_orb_FermiSurf
S.GME_orb_FermiSurf = lambda **kw: _orig(kwargs_formula={{"external_terms": False}}, **kw)
def build_system(args):
    system = wb.system.System_R.from_tb_file(tb_file=os.path.abspath(args.seed) + "_tb.dat")
    return system, False
r.build_system = build_system
r.main({argv!r})
'''


def run_wb(cfg, work, fine, tag):
    kind = cfg["wb"]["kind"]
    efmin, efmax, step = cfg["efermi"]
    out_prefix = os.path.join(work, f"wb_{tag}_{'fine' if fine else 'natural'}")
    argv = ["--mesh", *(str(cfg["mesh"]),) * 3, "--smr", str(cfg["smr"]), "--efermi", str(efmin), str(efmax),
            str(step), "--out", out_prefix, "--workdir", os.path.join(work, "wbscratch_" + tag)]
    if not fine:
        argv += ["--de-internal", str(step)]
    if kind == "npz":
        argv = [cfg["seed"], "--npz"] + argv
    elif kind == "tb":
        argv = [tb_scratch(cfg["seed"], work)] + argv
    else:
        argv = [cfg["seed"]] + argv
    if kind == "tb":
        code = _WB_TB_PATCH.format(valid=VALID, argv=argv)
        out, wall = run([PY, "-c", code])
    else:
        out, wall = run([PY, os.path.join(VALID, "run_wannierberri.py")] + argv)
    m = re.search(r"system ([0-9.]+) s, run ([0-9.]+) s", out)
    d = np.load(out_prefix + ".npz", allow_pickle=True)
    info = ast.literal_eval(str(d["info"]))  # full-precision timings (the printed ones have 0.1 s)
    res = {"wall": wall, "t_system": info.get("system_seconds", float(m.group(1))),
           "t_run": info.get("run_seconds", float(m.group(2))), "K_orb": d["K_orb"]}
    if "K_spin" in d:
        res["K_spin"] = d["K_spin"]
    return res


# ------------------------------------------------------------------------------------ postw90
def run_pw(cfg, work, tag):
    efmin, efmax, step = cfg["efermi"]
    task = cfg["pw"]["task"]
    if task == "-K":
        prefix = os.path.join(work, f"pw_{tag}")
        argv = [cfg["seed"], "--mesh", *(str(cfg["mesh"]),) * 3, "--smr", str(cfg["smr"]), "--efermi",
                str(efmin), str(efmax), str(step), "--ws", "true", "--out", prefix,
                "--workdir", os.path.join(work, "pwscratch_" + tag)]
        out, wall = run([PY, os.path.join(VALID, "run_postw90.py")] + argv)
        m = re.search(r"k-interpolation ([0-9.]+) s", out)
        d = np.load(prefix + ".npz", allow_pickle=True)
        res = {"wall": wall, "t_kloop": float(m.group(1)), "K_orb": d["K_orb"]}
        if "K_spin" in d:
            res["K_spin"] = d["K_spin"]
        return res
    # -C only: our own .win block, run_postw90's scratch preparation
    sys.path.insert(0, VALID)
    import run_postw90 as rp

    wd = os.path.join(work, "pwscratch_" + tag)
    seed = rp.prepare_scratch(cfg["seed"], wd)
    for fn in os.listdir(wd):
        if "gyrotropic" in fn or fn.endswith((".wpout", ".werr")):
            os.remove(os.path.join(wd, fn))
    lines = rp.strip_model_lines(open(cfg["seed"] + ".win").read())
    n = cfg["mesh"]
    lines += ["gyrotropic = true", f"gyrotropic_task = {task}", "gyrotropic_box_center = 0.5 0.5 0.5",
              "gyrotropic_box_b1 = 1 0 0", "gyrotropic_box_b2 = 0 1 0", "gyrotropic_box_b3 = 0 0 1",
              f"gyrotropic_kmesh = {n} {n} {n}", "gyrotropic_smr_type = gauss",
              f"gyrotropic_smr_fixed_en_width = {cfg['smr']}", "gyrotropic_smr_max_arg = 5",
              "gyrotropic_degen_thresh = 0.001", "gyrotropic_freq_min = 0.0", "gyrotropic_freq_max = 0.0",
              "gyrotropic_freq_step = 0.01", f"fermi_energy_min = {efmin}", f"fermi_energy_max = {efmax}",
              f"fermi_energy_step = {step}", "use_ws_distance = .true.", "timing_level = 2"]
    open(os.path.join(wd, seed + ".win"), "w").write("\n".join(lines) + "\n")
    out, wall = run([shutil.which("postw90.x") or "postw90.x", seed], cwd=wd)
    wp = open(os.path.join(wd, seed + ".wpout")).read()
    m = re.search(r"gyrotropic: k-interpolation\s*:\s*\d+\s+([0-9.Ee+-]+)", wp)
    return {"wall": wall, "t_kloop": float(m.group(1)), "K_orb": None}


# ------------------------------------------------------------------------------------ main
def bench_set(name, cfg, repeat, chunk, work, reference):
    print(f"\n=== {name}: {cfg['seed']}  mesh {cfg['mesh']}^3, Gaussian {cfg['smr']} eV, "
          f"E_F {cfg['efermi']}  ({cfg['note']})", flush=True)
    nk = cfg["mesh"] ** 3
    out = {"set": name, "nk": nk}

    def line(label, startup, kloop, extra=""):
        print(f"  {label:34s} start-up {startup:7.2f} s  k-loop {kloop:8.3f} s  {kloop / nk * 1e6:9.1f} us/k  "
              f"total {startup + kloop:7.2f} s  {extra}", flush=True)

    # --- vs WannierBerri
    o = run_ours(name, cfg, {**cfg["ours_wb"], "max_arg": 8.0, "degeneracy": "group"}, repeat, chunk, reference,
                 work)
    o_start = o["t_import"] + o["t_load"]
    line("ours (like WannierBerri)", o_start, o["t_compute"],
         f"[import {o['t_import']:.2f} + load {o['t_load']:.2f}; nR {o['nR']}, nw {o['nw']}]")
    bound = o["t_compute"] / o["t_bare_all"]
    print(f"  bound: FT(all matrices)+eigh {o['t_bare_all'] / nk * 1e6:.1f} us/k, FT(H)+eigh "
          f"{o['t_bare_H'] / nk * 1e6:.1f} us/k -> ours / bare(all) = {bound:.2f}, ours / bare(H) = "
          f"{o['t_compute'] / o['t_bare_H']:.2f}")
    if o.get("t_reference_kernel_chunk200"):
        print(f"  all bands at every k, no energy window (chunk 200): "
              f"{o['t_reference_kernel_chunk200'] / nk * 1e6:.1f} us/k -> "
              f"{o['t_reference_kernel_chunk200'] / o['t_compute']:.1f}x the windowed kernel's time")
    out.update(ours_wb_kloop=o["t_compute"], ours_wb_startup=o_start, bound_ratio=bound,
               bound_ratio_H=o["t_compute"] / o["t_bare_H"], us_per_k_ours=o["t_compute"] / nk * 1e6)
    wbs = [run_wb(cfg, work, False, name) for _ in range(repeat)]
    wb = min(wbs, key=lambda r: r["t_run"])
    wb_fine = run_wb(cfg, work, True, name)
    wb_start = wb["wall"] - wb["t_run"]
    line("WannierBerri (natural E grid)", wb_start, wb["t_run"], f"[system {wb['t_system']:.2f}]")
    line("WannierBerri (fine E grid, agreement)", wb_fine["wall"] - wb_fine["t_run"], wb_fine["t_run"])
    d_orb = rel_diff(o["K_orb"], wb_fine["K_orb"])
    msg = f"  agreement with WannierBerri: max rel diff K_orb {d_orb:.2e}"
    out["maxrel_wb_orb"] = d_orb
    if "K_spin" in wb_fine:
        d_spin = rel_diff(o["K_spin"], wb_fine["K_spin"])
        msg += f", K_spin {d_spin:.2e} (|K_spin| max {np.abs(wb_fine['K_spin']).max():.1e} A)"
        out["maxrel_wb_spin"] = d_spin
    print(msg)
    s_wb = wb["t_run"] / o["t_compute"]
    s_wb_tot = (wb_start + wb["t_run"]) / (o_start + o["t_compute"])
    print(f"  speedup vs WannierBerri: k-loop {s_wb:.1f}x, with start-up {s_wb_tot:.1f}x "
          f"(fine-grid WB run: {wb_fine['t_run'] / o['t_compute']:.1f}x)")
    out.update(speedup_wb=s_wb, speedup_wb_total=s_wb_tot, wb_kloop=wb["t_run"], wb_startup=wb_start,
               us_per_k_wb=wb["t_run"] / nk * 1e6)

    # --- vs postw90
    if cfg["pw"] is None:
        print("  postw90: not run (it cannot read this data set, or --no-postw90)")
        return out
    o2 = run_ours(name, cfg, {**cfg["ours_pw"], "max_arg": 5.0, "degeneracy": "skip"}, repeat, chunk, work=work)
    o2_start = o2["t_import"] + o2["t_load"]
    line("ours (like postw90)", o2_start, o2["t_compute"], f"[import {o2['t_import']:.2f} + load {o2['t_load']:.2f}]")
    pws = [run_pw(cfg, work, name) for _ in range(repeat)]
    pw = min(pws, key=lambda r: r["t_kloop"])
    pw_start = pw["wall"] - pw["t_kloop"]
    line(f"postw90.x ({cfg['pw']['task']})", pw_start, pw["t_kloop"])
    if pw["K_orb"] is not None:
        msg = f"  agreement with postw90: max rel diff K_orb {rel_diff(o2['K_orb'], pw['K_orb']):.2e}"
        out["maxrel_pw_orb"] = rel_diff(o2["K_orb"], pw["K_orb"])
        if "K_spin" in pw:
            msg += f", K_spin {rel_diff(o2['K_spin'], pw['K_spin']):.2e}"
        print(msg)
    else:
        print("  agreement with postw90: not checked (postw90 ran -C, not -K)")
    s_pw = pw["t_kloop"] / o2["t_compute"]
    s_pw_tot = pw["wall"] / (o2_start + o2["t_compute"])
    print(f"  speedup vs postw90: k-loop {s_pw:.1f}x, with start-up {s_pw_tot:.1f}x"
          + ("  (lower bound: postw90 did only -C)" if cfg["pw"]["task"] != "-K" else ""))
    out.update(speedup_pw=s_pw, speedup_pw_total=s_pw_tot, pw_task=cfg["pw"]["task"], pw_kloop=pw["t_kloop"],
               pw_startup=pw_start, us_per_k_pw=pw["t_kloop"] / nk * 1e6, ours_pw_kloop=o2["t_compute"],
               ours_pw_startup=o2_start)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default="te_tut24,te_qe_npz,srsi2")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--chunk", type=int, default=1000, help="our chunk size (k-points per chunk)")
    p.add_argument("--mesh", type=int, default=None, help="override every set's mesh")
    p.add_argument("--no-reference", action="store_true", help="skip timing the kernel without energy window")
    p.add_argument("--no-postw90", action="store_true", help="skip postw90 (SrSi2 -C takes minutes)")
    p.add_argument("--_ours", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._ours:
        return ours_main(json.loads(args._ours))
    print("load before:", os.getloadavg(), "cores:", os.cpu_count(), flush=True)
    work = tempfile.mkdtemp(prefix="gme_peers_")
    results = []
    for name in args.sets.split(","):
        cfg = dict(SETS[name])
        if args.mesh:
            cfg["mesh"] = args.mesh
        if not os.path.exists(cfg["seed"]) and not os.path.exists(cfg["seed"] + ".win"):
            print(f"\n=== {name}: data not found, skipped")
            continue
        if args.no_postw90:
            cfg["pw"] = None
        results.append(bench_set(name, cfg, args.repeat, args.chunk, work, not args.no_reference))
    shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    print("\nload after:", load)
    summary = {
        "speedup_vs_wannierberri": min(r["speedup_wb"] for r in results),
        "speedup_vs_postw90": min((r["speedup_pw"] for r in results if "speedup_pw" in r), default=None),
        "bound_ratio_max": max(r["bound_ratio"] for r in results),
        "loadavg_after": load,
        "per_set": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
