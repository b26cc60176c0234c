"""Command line: parse, call the library once, write. No physics here.

    gme-wannier run DIR/SEED [options]      alpha(E_F) of one material
    gme-wannier info DIR/SEED               structure, symmetry, files, capabilities (no integration)
    gme-wannier screen SEED1 SEED2 ...      many materials with the same settings -> one table
    gme-wannier make-weyl DIR/SEED          write the analytic two-node Weyl test model
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

import numpy as np

from . import __version__

_RUN_DEFAULTS = {"mesh": [20, 20, 20], "symmetry": "auto", "source": "auto", "degen_thresh": 1e-4,
                 "degeneracy": "group", "moment_energy": "band", "g_s": 2.0, "max_arg": None,
                 "mp_order": 1, "chunk_size": 200, "symprec": 1e-5, "kernel": "surface"}


def _add_calc_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--source", choices=["auto", "chk", "npz", "wannierberri", "tb", "hr"],
                   help="which files to use (default auto: the most complete); npz: the model file of "
                        "'gme-wannier export' (SEED_model.npz); wannierberri: a System_R.save_npz folder")
    g.add_argument("--convention", choices=["wannierberri", "postw90"],
                   help="real-space matrices from .chk data: wannierberri (default; MDRS, phase convention I) or "
                        "postw90 (exactly as postw90 3.1, honours use_ws_distance of the .win)")
    g.add_argument("--ws-images", choices=["mdrs", "wsvec"],
                   help="_hr/_tb sources: Wigner-Seitz images recomputed from the centres (mdrs, default) or "
                        "Wannier90's _wsvec.dat as it is")
    g.add_argument("--ws-tolerance", type=float,
                   help="tie tolerance of the Wigner-Seitz image choice, Angstrom (default 1e-3)")
    g.add_argument("--no-cache", action="store_true",
                   help="do not keep/reuse the real-space matrices in $GME_WANNIER_CACHE (default ~/.cache/gme_wannier)")
    g.add_argument("--internal-only", action="store_true", help="orbital moment from the internal (tight-binding) terms only")
    g.add_argument("--no-spin", action="store_true", help="leave out the spin moment even if .spn is present")
    g.add_argument("--g-s", type=float, help="spin g-factor (default 2)")
    g.add_argument("--spin-degeneracy", type=int, choices=[1, 2],
                   help="electrons per band in alpha and the DOS (default: 2 without spinors, 1 with spinors); K "
                        "stays counted as Wannier90 (each band once)")
    g = p.add_argument_group("Brillouin zone")
    g.add_argument("--mesh", type=int, nargs=3, metavar=("N1", "N2", "N3"),
                   help="one Gamma-centred mesh, with its error estimate (default: automatic convergence, see "
                        "--tolerance); with --tolerance, the first mesh of the sequence")
    g.add_argument("--tolerance", type=float, metavar="REL",
                   help="converge automatically: denser symmetric meshes until the estimated error of alpha is below "
                        "REL x max|alpha_total| (default 0.01 when no --mesh is given)")
    g.add_argument("--max-kpoints", type=int, metavar="N", help="with --tolerance: stop before evaluating more k-points")
    g.add_argument("--max-time", type=float, metavar="SECONDS",
                   help="with --tolerance: stop before a mesh that would end after this time (the estimate reached "
                        "is reported)")
    g.add_argument("--symmetry", choices=["auto", "off"], help="auto: irreducible k-points + symmetrized tensor (default)")
    g.add_argument("--symprec", type=float, help="spglib tolerance, Angstrom (default 1e-5)")
    g.add_argument("--structure", help="structure file (POSCAR, CIF, QE input) for the symmetry instead of the .win")
    g.add_argument("--magmoms", type=float, nargs="+", help="magnetic moments per atom (collinear: one number each; "
                                                             "non-collinear: three each) for the magnetic space group")
    g.add_argument("--box-center", type=float, nargs=3, help="integrate over a box of the BZ (Wannier90 gyrotropic_box_*)")
    g.add_argument("--box-b1", type=float, nargs=3)
    g.add_argument("--box-b2", type=float, nargs=3)
    g.add_argument("--box-b3", type=float, nargs=3)
    g.add_argument("--box-mesh", type=int, nargs=3)
    g.add_argument("--win-box", action="store_true", help="use the gyrotropic_box_*, gyrotropic_kmesh, smearing and "
                                                          "Fermi energies of the .win file (as postw90 would)")
    g = p.add_argument_group("Fermi surface")
    e = g.add_mutually_exclusive_group()
    e.add_argument("--efermi", type=float, nargs="+", help="Fermi energies, eV")
    e.add_argument("--efermi-range", type=float, nargs=3, metavar=("MIN", "MAX", "STEP"), help="eV, MAX included")
    g.add_argument("--efermi-relative", action="store_true",
                   help="--efermi / --efermi-range are offsets from the material's Fermi level (--num-electrons, "
                        "else fermi_energy of the .win)")
    g.add_argument("--num-electrons", type=float, metavar="N",
                   help="electrons per cell in the Wannier bands (DFT valence count minus 2 per band below the "
                        "Wannier window; 1 per band with spinors; see 'info'): the material's Fermi level by "
                        "charge neutrality at the chosen temperature")
    g.add_argument("--temperature", type=float, help="Fermi-Dirac at this temperature, K (default 300 K if no smearing)")
    g.add_argument("--smearing", choices=["gaussian", "methfessel-paxton", "marzari-vanderbilt", "fermi-dirac"])
    g.add_argument("--smearing-width", type=float, help="eV (Wannier90 convention: exp(-(dE/w)^2))")
    g.add_argument("--mp-order", type=int, help="Methfessel-Paxton order (default 1)")
    g.add_argument("--max-arg", type=float, help="cut the weights beyond this many widths (default 5; 40 for Fermi-Dirac)")
    g.add_argument("--degen-thresh", type=float, help="degenerate-band threshold, eV (default 1e-4)")
    g.add_argument("--degeneracy", choices=["group", "skip"], help="group: sum degenerate groups (default); skip: as postw90")
    g.add_argument("--moment-energy", choices=["band", "fermi"], help="orbital moment with H - E_n (default) or H - E_F")
    g.add_argument("--kernel", choices=["surface", "sea", "tetra"],
                   help="Fermi-surface form (default), the Fermi-sea cross-check, or linear tetrahedra")
    g.add_argument("--refine", type=int, nargs="+", metavar="F",
                   help="adaptive refinement: subdivide the cells the Fermi window reaches by F1, then F2, ...")
    g = p.add_argument_group("output and running")
    g.add_argument("--omega-tau", type=float, nargs="+", help="also report D(omega tau) of alpha(omega) = D alpha0")
    g.add_argument("--checkpoint", help="write partial sums here and resume from them")
    g.add_argument("--checkpoint-every", type=float, help="seconds between checkpoint saves (default 60)")
    g.add_argument("--progress", action="store_true", help="show the progress bar even when stderr is not a terminal "
                                                           "(e.g. under mpirun)")
    g.add_argument("--chunk-size", type=int, help="k-points per chunk (memory bound; default 200)")
    g.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    g.add_argument("--config", help="TOML file with options (keys named like the flags); flags override it")


class _OneLineParser(argparse.ArgumentParser):
    """argparse with the package's one-line error (no usage block), exit code 2."""

    def error(self, message: str):  # noqa: D102
        if _launcher_rank() == 0:
            print(f"gme-wannier: error: {message} (see gme-wannier {self.prog.split()[-1]} --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _OneLineParser(prog="gme-wannier", description="Gyrotropic magnetic effect tensor from Wannier90 outputs")
    p.add_argument("--version", action="version", version=f"gme-wannier {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="compute alpha(E_F) of one material")
    r.add_argument("seed", help="DIR/SEED of the Wannier90 files")
    _add_calc_options(r)
    r.add_argument("--output", "-o", help="result JSON (default SEED-gme.json next to the inputs' name, in the current dir)")
    r.add_argument("--w90-dat", help="prefix for Wannier90-style PREFIX-gme-K_orb.dat / K_spin.dat (and the files "
                                     "of --quantities: PREFIX-gme-{C,D,tildeD,NOA_orb,NOA_spin,DOS}.dat)")
    r.add_argument("--quantities", help="comma-separated from K,C,D,Dw,NOA,DOS (default K, always computed): the "
                                        "natural-gyrotropy tensors of Wannier90's gyrotropic module, same k loop")
    r.add_argument("--omega", type=float, nargs="+", metavar="W", help="hbar omega (eV) of Dw and NOA (default 0)")
    r.add_argument("--eigval-max", type=float, help="NOA: leave out empty bands above this energy, eV "
                                                    "(postw90's gyrotropic_eigval_max; default: all bands)")
    r.add_argument("--csv", help="CSV of alpha(E_F)")
    r.add_argument("--plot", help="PNG plot of the iso / traceless / antisymmetric parts (needs matplotlib)")
    r.add_argument("--decompose", action="store_true",
                   help="also split alpha into the Fermi sheets of each band (whole mesh, no symmetry reduction), "
                        "with their Chern numbers: JSON block fermi_sheets")
    r.add_argument("--mu-imbalance", type=float, help="with --decompose: CME alpha for this chemical-potential "
                                                      "imbalance between sheets of opposite Chern number, eV")
    i = sub.add_parser("info", help="structure, symmetry, files and capabilities, without integrating")
    i.add_argument("seed")
    i.add_argument("--symprec", type=float, default=1e-5)
    i.add_argument("--structure")
    i.add_argument("--json", action="store_true", help="print JSON instead of text")
    i.add_argument("--efermi", type=float, nargs="+", help="also show the bands crossing these Fermi energies (eV) "
                                                           "and the DOS there (reads the model)")
    i.add_argument("--num-electrons", type=float, metavar="N",
                   help="also find the material's Fermi level from N electrons in the Wannier bands (as for run)")
    i.add_argument("--temperature", type=float, help="for the DOS and the electron count, K (default 300)")
    i.add_argument("--mesh", type=int, nargs=3, metavar=("N1", "N2", "N3"),
                   help="k mesh of the band energies (default 12 12 12)")
    s = sub.add_parser("screen", help="run several materials with the same settings and tabulate")
    s.add_argument("seeds", nargs="+", help="DIR/SEED, or DIR/SEED@N with N electrons in its Wannier bands (its "
                                            "own Fermi level by charge neutrality)")
    _add_calc_options(s)
    s.add_argument("--window", type=float, help="report the largest |alpha_iso| within E_F +- window (eV; default 0: all)")
    s.add_argument("--table", help="CSV table (default gme-screen.csv); TABLE.jsonl beside it holds one JSON record "
                                   "per material, and a rerun with the same settings skips the complete ones")
    s.add_argument("--sort", choices=["iso", "rho"], help="rank the materials by |alpha_iso| or |rho| (default: "
                                                          "the order given)")
    x = sub.add_parser("export", help="write the finished real-space model as one npz (reload with --source npz)")
    x.add_argument("seed", help="DIR/SEED of the Wannier90 files")
    x.add_argument("--output", "-o", help="model file (default SEED_model.npz in the current directory)")
    x.add_argument("--source", choices=["auto", "chk", "npz", "wannierberri", "tb", "hr"],
                   help="which files to read (default auto: the most complete)")
    x.add_argument("--convention", choices=["wannierberri", "postw90"], help="as for run (default wannierberri)")
    x.add_argument("--ws-images", choices=["mdrs", "wsvec"], help="as for run (default mdrs)")
    x.add_argument("--ws-tolerance", type=float, help="as for run, Angstrom (default 1e-3)")
    x.add_argument("--no-spin", action="store_true", help="leave out the spin matrices")
    x.add_argument("--internal-only", action="store_true", help="leave out the A, B, C matrices")
    w = sub.add_parser("make-weyl", help="write the analytic two-node Weyl model (SEED_hr.dat, SEED.win)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    w.add_argument("seed")
    w.add_argument("--b", type=float, default=0.05, help="node energies +-b, eV")
    w.add_argument("--t", type=float, default=1.0, help="hopping scale, eV")
    w.add_argument("--a", type=float, default=3.0, help="cubic lattice constant, Angstrom")
    w.add_argument("--parity-symmetric", action="store_true")
    nd = sub.add_parser("nodes", help="Weyl nodes (band touchings) in an energy window: chirality, cone, stars, "
                                      "ZMS estimate")
    nd.add_argument("seed", help="DIR/SEED of the Wannier90 files")
    nd.add_argument("--window", dest="node_window", type=float, nargs=2, metavar=("EMIN", "EMAX"), required=True,
                    help="node energies to look for, eV")
    nd.add_argument("--scan-mesh", type=int, nargs=3, metavar=("N1", "N2", "N3"), default=[24, 24, 24],
                    help="coarse mesh of the gap scan (default 24 24 24)")
    nd.add_argument("--radius", type=float, default=0.01, help="flux sphere radius, 1/Angstrom (default 0.01)")
    nd.add_argument("--gap-tol", type=float, default=1e-5, help="a gap below this is a touching, eV (default 1e-5)")
    _add_calc_options(nd)
    nd.add_argument("--output", "-o", help="nodes JSON (default SEED-nodes.json in the current dir)")
    return p


def _load_config(path: str) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    from .io.errors import InputFileError, check_input_file, decode_text

    try:
        with open(check_input_file(path), "rb") as f:
            data = tomllib.loads(decode_text(f.read(), path))
    except tomllib.TOMLDecodeError as exc:
        raise InputFileError(path, f"not valid TOML: {exc}") from None
    return {k.replace("-", "_"): v for k, v in data.items()}


def _merge(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """defaults < config file < flags."""
    from .io.errors import InputFileError
    from .options import check_config_types, validate_options

    opts = dict(_RUN_DEFAULTS)
    origins: dict = {}
    if getattr(args, "config", None):
        cfg = _load_config(args.config)
        known = set(vars(args))
        bad = sorted(set(cfg) - known)
        if bad:
            raise InputFileError(args.config, f"unknown option(s): {', '.join(bad)}")
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args.command]
        cfg = check_config_types(cfg, {a.dest: a for a in sub._actions}, args.config)
        opts.update(cfg)
        origins = {k: f"{args.config}: {k.replace('_', '-')}" for k in cfg}
    for k, v in vars(args).items():
        if v is not None and v is not False:
            opts[k] = v
            origins.pop(k, None)
        elif k not in opts:
            opts[k] = v
    validate_options(opts, origins)
    opts["mesh_given"] = getattr(args, "mesh", None) is not None or "mesh" in origins
    return opts


def _material_fermi(o: dict, win, model, kT: float) -> Optional[dict]:
    """The material's Fermi level (--num-electrons or the .win) and the band energies behind it."""
    from .fermi import material_fermi_level

    if model is None:
        return None
    return material_fermi_level(model, num_electrons=o.get("num_electrons"), kT=kT,
                                mesh=[min(int(n), 24) for n in (o.get("mesh") or (24, 24, 24))],
                                win_fermi_energy=win.get_float("fermi_energy") if win is not None else None,
                                spin_degeneracy=o.get("spin_degeneracy") or None, symprec=float(o["symprec"]),
                                use_symmetry=o.get("symmetry") != "off" and not o.get("structure")
                                and o.get("magmoms") is None)


def _settings(o: dict, win, model=None):
    """(GMESettings, the material's Fermi-level dict or None) from the options."""
    from .fermi import fermi_grid
    from .integrate import GMESettings
    from .io.errors import GMEInputError
    from .smearing import Smearing

    if o.get("smearing") and o["smearing"] != "fermi-dirac":
        if o.get("temperature") is not None:
            raise GMEInputError("give either --temperature or --smearing, not both")
        if o.get("smearing_width") is None:
            raise GMEInputError("--smearing needs --smearing-width (eV)")
        sm = Smearing(o["smearing"], float(o["smearing_width"]), int(o.get("mp_order") or 1),
                      float(o["max_arg"]) if o.get("max_arg") else 5.0)
    else:
        T = o.get("temperature")
        if T is None and o.get("smearing") == "fermi-dirac" and o.get("smearing_width"):
            from .units import k_B_eV

            T = float(o["smearing_width"]) / k_B_eV
        sm = Smearing.from_temperature(300.0 if T is None else float(T),
                                       float(o["max_arg"]) if o.get("max_arg") else 40.0)
    fermi = _material_fermi(o, win, model, sm.width)
    ef = fermi_grid(efermi=o.get("efermi"), efermi_range=o.get("efermi_range"), relative=bool(o.get("efermi_relative")),
                    material_ef=None if fermi is None else fermi["E_F_eV"])
    return GMESettings(fermi_energies=ef, smearing=sm, degen_thresh=float(o["degen_thresh"]),
                       degeneracy=o["degeneracy"], moment_energy=o["moment_energy"], g_s=float(o["g_s"]),
                       external=not o.get("internal_only", False), spin=not o.get("no_spin", False)), fermi


def _win_box(o: dict, win) -> tuple[Optional[dict], dict]:
    """Box options from flags, or from the .win (--win-box); also smearing/E_F overrides."""
    extra: dict = {}
    if o.get("win_box"):
        from .io.errors import InputFileError

        km = win.get_floats("gyrotropic_kmesh", 3)
        if km is None:
            raise InputFileError(win.path, "--win-box: no gyrotropic_kmesh in the .win")
        box = {"center": win.get_floats("gyrotropic_box_center", 3),
               "b1": win.get_floats("gyrotropic_box_b1", 3, np.array([1.0, 0, 0])),
               "b2": win.get_floats("gyrotropic_box_b2", 3, np.array([0, 1.0, 0])),
               "b3": win.get_floats("gyrotropic_box_b3", 3, np.array([0, 0, 1.0])),
               "mesh": [int(x) for x in km]}
        w = win.get_float("gyrotropic_smr_fixed_en_width", win.get_float("smr_fixed_en_width"))
        if w is not None and not o.get("smearing") and o.get("temperature") is None:
            extra.update(smearing="gaussian", smearing_width=w,
                         max_arg=win.get_float("gyrotropic_smr_max_arg", 5.0))
        lo, hi, st = (win.get_float("fermi_energy_min"), win.get_float("fermi_energy_max"),
                      win.get_float("fermi_energy_step"))
        if lo is not None and hi is not None and o.get("efermi") is None and o.get("efermi_range") is None:
            extra["efermi_range"] = [lo, hi, st or 0.01]
        dt = win.get_float("gyrotropic_degen_thresh")
        if dt is not None:
            extra["degen_thresh"] = dt
        return box, extra
    if o.get("box_center") is not None or o.get("box_mesh") is not None:
        from .io.errors import GMEInputError

        if o.get("box_mesh") is None:
            raise GMEInputError("--box-center needs --box-mesh N1 N2 N3")
        return {"center": o.get("box_center"), "b1": o.get("box_b1") or [1.0, 0, 0],
                "b2": o.get("box_b2") or [0, 1.0, 0], "b3": o.get("box_b3") or [0, 0, 1.0],
                "mesh": o["box_mesh"]}, extra
    return None, extra


def _magmoms(o: dict):
    mm = o.get("magmoms")
    return None if mm is None else np.array(mm, dtype=float)


DEFAULT_TOLERANCE = 0.01


def _convergence(o: dict, model, box):
    """ConvergenceOptions for --tolerance (also the default when no --mesh is given and the sampling
    is the plain whole zone), else None. With --mesh, the spacing of that mesh starts the sequence."""
    from .convergence import ConvergenceOptions

    tol = o.get("tolerance")
    plain = box is None and not o.get("refine") and o.get("kernel", "surface") == "surface"
    if tol is None and (o.get("mesh_given") or not plain or o.get("max_kpoints") or o.get("max_time")):
        if o.get("max_kpoints") or o.get("max_time"):
            from .io.errors import GMEInputError

            raise GMEInputError("--max-kpoints/--max-time: these limit the automatic convergence: give --tolerance too")
        return None
    extra = {}
    if o.get("mesh_given"):
        extra["initial_spacing"] = float(np.min(np.linalg.norm(model.recip_lattice, axis=1) / np.array(o["mesh"])))
    return ConvergenceOptions(tolerance=float(tol if tol is not None else DEFAULT_TOLERANCE),
                              max_kpoints=o.get("max_kpoints"), max_time=o.get("max_time"), **extra)


def run_one(seed: str, o: dict, comm, progress: Optional[bool], keep: Optional[dict] = None):
    """Load, compute; returns (model, result). The one library call of `run` and `screen`.
    ``keep``, if given, receives the settings and box used (for `run --decompose`)."""
    from .calculate import compute
    from .gyrotropic import quantities_from_options
    from .io.win import read_win
    from .load import _seed_from, load_model

    seed = _seed_from(seed)
    extra_quantities = quantities_from_options(o)  # option errors before the model is read
    model = load_model(seed, source=o["source"], use_spn=not o.get("no_spin", False),
                       convention=o.get("convention") or "wannierberri", ws_images=o.get("ws_images") or "mdrs",
                       ws_tolerance=float(o["ws_tolerance"]) if o.get("ws_tolerance") is not None else 1e-3,
                       cache=not o.get("no_cache", False))
    win = read_win(seed + ".win") if os.path.exists(seed + ".win") else None
    box, extra = _win_box(o, win)
    if extra or (box is not None and o.get("win_box")):
        from .options import validate_options

        origin = f"{win.path if win is not None else seed} (--win-box)"
        validate_options({**extra, "box_mesh": box["mesh"] if o.get("win_box") else None},
                         {k: f"{origin}: {k}" for k in (*extra, "box_mesh")})
    o = {**o, **extra}
    st, fermi = _settings(o, win, model)
    structure = None
    if o.get("structure"):
        from .symmetry import structure_from_file

        structure = structure_from_file(o["structure"])
    mm = _magmoms(o)
    atoms = structure if structure is not None else model.atoms
    if mm is not None:
        from .io.errors import GMEInputError

        nat = 0 if atoms is None else len(atoms)
        where = o["structure"] if structure is not None else seed + ".win"
        if mm.size not in (nat, 3 * nat) or nat == 0:
            raise GMEInputError(f"--magmoms: the structure ({where}) has {nat} atoms: give {nat} (collinear) or "
                                f"{3 * nat} (non-collinear) numbers, in its atom order; got {mm.size}")
        if mm.size == 3 * nat:
            mm = mm.reshape(-1, 3)
    from .options import check_memory

    check_memory(model.num_wann, len(st.fermi_energies), kernel=o["kernel"],
                 n_kpoints_full=int(np.prod(o["mesh"])))
    if comm.is_root:
        from .sanity import fermi_level_warning

        warn = fermi_level_warning(model, st.fermi_energies, st.smearing.width)
        if warn:
            print(f"gme-wannier: warning: {warn}", file=sys.stderr)
    result = compute(model, st, mesh=o["mesh"], symmetry=o["symmetry"], symprec=float(o["symprec"]),
                     convergence=_convergence(o, model, box),
                     magmoms=mm, box=box, comm=comm, chunk_size=int(o["chunk_size"]), kernel=o["kernel"],
                     checkpoint=o.get("checkpoint"), progress=progress, structure=structure,
                     checkpoint_every=float(o["checkpoint_every"]) if o.get("checkpoint_every") is not None else 60.0,
                     spin_degeneracy=o.get("spin_degeneracy") or None, refine=tuple(o.get("refine") or ()),
                     **({"extra_quantities": extra_quantities} if extra_quantities else {}))
    from .fermi import attach_fermi_info

    attach_fermi_info(result, fermi)
    conv = result.info.get("convergence") or {}
    if comm.is_root and conv.get("estimated_error") is not None:
        from .convergence import WARN_ABOVE

        if conv["estimated_error"] > WARN_ABOVE:
            hint = ("raise --max-kpoints/--max-time" if conv.get("tolerance") is not None
                    else "use a denser --mesh, or --tolerance 0.01")
            print(f"gme-wannier: warning: {seed}: the estimated k-sampling error of alpha is "
                  f"{100 * conv['estimated_error']:.0f} % of max|alpha_total| (> {100 * WARN_ABOVE:.0f} %): "
                  f"not converged; {hint}", file=sys.stderr)
    if keep is not None:
        keep.update(settings=st, box=box)
    return model, result


def _cmd_run(args, parser) -> int:
    from .io.writers import csv_text, json_text, w90_dat_texts, w90_K_text, write_text
    from .parallel import get_comm, guard
    from .report import run_summary

    from .checkpoint import remove_checkpoint
    from .sanity import check_outputs, output_paths, write_or_rescue

    o = _merge(args, parser)
    comm = get_comm("auto")
    with guard(comm):
        check_outputs(output_paths(o, args.seed, "run"), o.get("checkpoint"), comm)
        keep: dict = {}
        model, result = run_one(args.seed, o, comm, progress=False if o.get("quiet") else (True if o.get("progress") else None),
                                keep=keep)
        out = o.get("output") or (os.path.basename(args.seed) + "-gme.json")
        sheets = None
        if o.get("decompose") and comm.is_root:
            from .sheets import decompose

            sheets = decompose(model, keep["settings"], result.info["mesh"].get("mesh") or o["mesh"], box=keep["box"],
                               spin_degeneracy=result.spin_degeneracy, symmetry=o["symmetry"])
        extra = {} if sheets is None else {"fermi_sheets": sheets.to_dict(mu_imbalance=o.get("mu_imbalance"))}
        as_json = lambda: json_text({**result.to_dict(omega_tau=o.get("omega_tau")), **extra})  # noqa: E731
        writes = [(out, lambda: write_text(out, as_json()))]
        if o.get("w90_dat"):
            spin_done = result.info.get("approximation", {}).get("spin_moment", "none") != "none"
            for part, tag in (("orbital", "orb"), ("spin", "spin")):
                path = f"{o['w90_dat']}-gme-K_{tag}.dat"
                what = f"{part} part of the K tensor" if spin_done or part == "orbital" else \
                    "spin part of the K tensor: NOT COMPUTED (no spin matrices, or --no-spin): zeros"
                text = w90_K_text(result.fermi_energies, result.K[part],
                                  f"{what}; counting: each band once, as Wannier90 "
                                  f"(alpha = {result.spin_degeneracy} x (e/hbar) x K in this run)")
                writes.append((path, lambda path=path, text=text: write_text(path, text)))
            for path, text in w90_dat_texts(result.extra, result.fermi_energies, o["w90_dat"]):
                writes.append((path, lambda path=path, text=text: write_text(path, text)))
        if o.get("csv"):
            writes.append((o["csv"], lambda: write_text(o["csv"], csv_text(result))))
        if o.get("plot"):
            from .plot import plot_decomposition

            writes.append((o["plot"], lambda: plot_decomposition(result, o["plot"], title=model.name)))
        write_or_rescue(writes, as_json, o.get("checkpoint"), getattr(args, "argv", []), comm)
        if comm.is_root:
            if o.get("checkpoint"):
                remove_checkpoint(o["checkpoint"])  # only now: every output is written
            if not o.get("quiet"):
                print(run_summary(model, result, out, omega_tau=o.get("omega_tau")))
                if sheets is not None:
                    from .sheets import sheets_summary

                    print(sheets_summary(sheets, mu_imbalance=o.get("mu_imbalance")))
    return 0


def _cmd_info(args) -> int:
    from .io.writers import json_text
    from .report import info_dict, info_text

    d = info_dict(args.seed, symprec=args.symprec, structure=args.structure)
    if args.efermi is not None or args.num_electrons is not None or d.get("win_fermi_energy") is not None:
        from .report import info_fermi

        d["fermi_level"] = info_fermi(d["seed"], efermi=args.efermi, num_electrons=args.num_electrons,
                                      temperature=300.0 if args.temperature is None else args.temperature,
                                      mesh=args.mesh or (12, 12, 12), symprec=args.symprec,
                                      win_fermi_energy=d.get("win_fermi_energy"))
    print(json_text(d) if args.json else info_text(d))
    return 0


def _cmd_screen(args, parser) -> int:
    from .io.writers import write_text
    from .parallel import get_comm, guard
    from .report import screen_row, screen_table

    from .sanity import check_outputs, output_paths

    from .screen import read_records, record_text, records_path, screen_one, settings_key, sort_rows

    o = _merge(args, parser)
    comm = get_comm("auto")
    table = o.get("table") or "gme-screen.csv"
    jsonl = records_path(table)
    key = settings_key(o)
    rows = []
    with guard(comm):
        check_outputs(output_paths(o, "", "screen"), None, comm)
        old = comm.bcast(read_records(jsonl) if comm.is_root else None)
        records = []
        for spec in args.seeds:
            row, rec = screen_one(spec, o, comm, key, old.get(spec), run_one)
            rows.append(row)
            records.append(rec)
            if comm.is_root and not row.get("resumed"):
                with open(jsonl, "a") as f:  # at once: an interrupted screen resumes from here
                    f.write(record_text(rec))
        if comm.is_root:
            rows = sort_rows(rows, o.get("sort"))
            csv, text = screen_table(rows)
            write_text(table, csv)
            write_text(jsonl, "".join(record_text(r) for r in records))
            print(text)
            print(f"table written to {table}, one JSON record per material in {jsonl}")
    failed = [r["material"] for r in rows if r.get("error")]
    if failed:
        if comm.is_root:
            print(f"gme-wannier: error: {', '.join(failed)}: {len(failed)} of {len(rows)} materials failed "
                  "(their error is in the table)", file=sys.stderr)
        return 2
    return 0


def _cmd_export(args) -> int:
    """Load the model once (from .chk/.mmn/.uHu, _tb.dat, ...) and write it as one npz file."""
    import os as _os

    from .load import _seed_from, load_model

    seed = _seed_from(args.seed)
    model = load_model(seed, source=args.source or "auto", use_spn=not args.no_spin,
                       use_uhu=not args.internal_only, convention=args.convention or "wannierberri",
                       ws_images=args.ws_images or "mdrs",
                       ws_tolerance=1e-3 if args.ws_tolerance is None else float(args.ws_tolerance))
    if args.internal_only:
        model = model.replace(A_R=None, B_R=None, CC_R=None)
    out = args.output or (_os.path.basename(seed) + "_model.npz")
    model.to_npz(out)
    arrays = [k for k in ("H_R", "A_R", "B_R", "CC_R", "S_R") if getattr(model, k) is not None]
    new_seed = out[: -len("_model.npz")] if out.endswith("_model.npz") else None
    if new_seed and _os.path.exists(new_seed + ".win"):
        how = f"gme-wannier run {new_seed}"
    else:
        how = (f"copy {seed}.win beside it as {new_seed}.win, then gme-wannier run {new_seed}" if new_seed else
               "name it SEED_model.npz beside SEED.win, then gme-wannier run SEED")
    print(f"wrote {out}: {model.num_wann} Wannier functions, {model.nR} R vectors, {', '.join(arrays)} "
          f"({_os.path.getsize(out) / 1e6:.1f} MB); to use it: {how}")
    return 0


def _cmd_make_weyl(args) -> int:
    from .models import weyl_pair_model, write_model
    from .options import validate_options

    validate_options({"b": args.b, "t": args.t, "a": args.a})

    m = weyl_pair_model(t=args.t, b=args.b, a=args.a, parity_symmetric=args.parity_symmetric,
                        name=os.path.basename(args.seed))
    for p in write_model(m, args.seed):
        print(f"wrote {p}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code (0; 2 for a user error, with one line
    ``gme-wannier: error: ...`` on stderr; 130/143 when interrupted by SIGINT/SIGTERM)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    from .parallel import sigterm_as_error

    previous = sigterm_as_error()
    try:
        return _dispatch(args, parser)
    except KeyboardInterrupt:
        print("gme-wannier: error: interrupted (SIGINT)", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        from .io.errors import GMEError

        if isinstance(exc, GMEError):
            if _launcher_rank() == 0:  # raised identically on every rank of an mpirun: print once
                print(f"gme-wannier: error: {exc}", file=sys.stderr)
            return int(exc.exit_code)
        if isinstance(exc, OSError):
            where = exc.filename if exc.filename is not None else "input/output"
            print(f"gme-wannier: error: {where}: {exc.strerror or exc}: check the path and its permissions",
                  file=sys.stderr)
            return 2
        if os.environ.get("GME_WANNIER_DEBUG"):
            raise
        what = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        print(f"gme-wannier: error: internal error ({what}); please report it (GME_WANNIER_DEBUG=1 shows the "
              "traceback)", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            import signal

            signal.signal(signal.SIGTERM, previous)


def _launcher_rank() -> int:
    """MPI rank announced by the launcher (0 without one), known before MPI is initialised."""
    for var in ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def _dispatch(args, parser) -> int:
    if args.command == "run":
        return _cmd_run(args, parser)
    if args.command == "info":
        return _cmd_info(args)
    if args.command == "screen":
        return _cmd_screen(args, parser)
    if args.command == "export":
        return _cmd_export(args)
    if args.command == "nodes":
        return _cmd_nodes(args, parser)
    return _cmd_make_weyl(args)


def _cmd_nodes(args, parser) -> int:
    """Node search; with --efermi also the integrated alpha_iso (as `run`) beside the ZMS estimate."""
    from .io.writers import json_text, write_text
    from .load import load_model
    from .nodes import find_nodes, nodes_text
    from .parallel import get_comm

    o = _merge(args, parser)
    model = load_model(args.seed, source=o["source"], ws_images=o.get("ws_images") or "mdrs",
                       cache=not o.get("no_cache", False))
    search = find_nodes(model, o["node_window"], scan_mesh=o["scan_mesh"], symmetry=o["symmetry"],
                        radius=float(o["radius"]), gap_tol=float(o["gap_tol"]),
                        spin_degeneracy=o.get("spin_degeneracy") or None)
    out = search.to_dict()
    text = nodes_text(search)
    if o.get("efermi") is not None or o.get("efermi_range") is not None:
        _, result = run_one(args.seed, o, get_comm("serial"), progress=False)
        iso = result.decomposition("total")["iso"]
        out["alpha_iso_integrated"] = {"fermi_energies_eV": [float(x) for x in result.fermi_energies],
                                       "alpha_iso_A_m2_T": [float(x) for x in iso], "mesh": o["mesh"]}
        text += "\nintegrated: " + ", ".join(f"alpha_iso({e:.3f} eV) = {a:.3e}"
                                             for e, a in zip(result.fermi_energies, iso)) + " A m^-2 T^-1"
    path = o.get("output") or (os.path.basename(args.seed) + "-nodes.json")
    write_text(path, json_text(out))
    print(text + f"\nwritten to {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
