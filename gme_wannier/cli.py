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
from .options import merge_options


def _add_calc_options(p: argparse.ArgumentParser) -> None:
    """The options of the calculation (run, screen, nodes), in four groups."""
    _add_model_options(p.add_argument_group("model"))
    _add_zone_options(p.add_argument_group("Brillouin zone"))
    _add_fermi_options(p.add_argument_group("Fermi surface"))
    _add_run_options(p.add_argument_group("output and running"))


def _add_model_options(g) -> None:
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


def _add_zone_options(g) -> None:
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


def _add_fermi_options(g) -> None:
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
    g.add_argument("--max-arg", type=float, help="cut the weights beyond this many widths (default 5; 30 for Fermi-Dirac)")
    g.add_argument("--degen-thresh", type=float, help="degenerate-band threshold, eV (default 1e-4)")
    g.add_argument("--degeneracy", choices=["group", "skip"], help="group: sum degenerate groups (default); skip: as postw90")
    g.add_argument("--moment-energy", choices=["band", "fermi"], help="orbital moment with H - E_n (default) or H - E_F")
    g.add_argument("--kernel", choices=["surface", "sea", "tetra"],
                   help="Fermi-surface form (default), the Fermi-sea cross-check, or linear tetrahedra")
    g.add_argument("--refine", type=int, nargs="+", metavar="F",
                   help="adaptive refinement: subdivide the cells the Fermi window reaches by F1, then F2, ...")


def _add_run_options(g) -> None:
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
            sub = self.prog.split()[1:]  # "gme-wannier run" -> ["run"]; the top parser has none
            print(f"gme-wannier: error: {message} (see {' '.join(['gme-wannier', *sub[-1:]])} --help)",
                  file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``gme-wannier`` and its sub-commands (errors: one line, exit code 2)."""
    p = _OneLineParser(prog="gme-wannier", description="Gyrotropic magnetic effect tensor from Wannier90 outputs")
    p.add_argument("--version", action="version", version=f"gme-wannier {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    _add_run_parser(sub)
    _add_info_parser(sub)
    _add_screen_parser(sub)
    _add_export_parser(sub)
    _add_make_weyl_parser(sub)
    _add_nodes_parser(sub)
    return p


def _add_run_parser(sub) -> None:
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


def _add_info_parser(sub) -> None:
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


def _add_screen_parser(sub) -> None:
    s = sub.add_parser("screen", help="run several materials with the same settings and tabulate")
    s.add_argument("seeds", nargs="+", help="DIR/SEED, or DIR/SEED@N with N electrons in its Wannier bands (its "
                                            "own Fermi level by charge neutrality)")
    _add_calc_options(s)
    s.add_argument("--window", type=float, help="report the largest |alpha_iso| within E_F +- window (eV; default 0: all)")
    s.add_argument("--table", help="CSV table (default gme-screen.csv); TABLE.jsonl beside it holds one JSON record "
                                   "per material, and a rerun with the same settings skips the complete ones")
    s.add_argument("--sort", choices=["iso", "rho"], help="rank the materials by |alpha_iso| or |rho| (default: "
                                                          "the order given)")


def _add_export_parser(sub) -> None:
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


def _add_make_weyl_parser(sub) -> None:
    w = sub.add_parser("make-weyl", help="write the analytic two-node Weyl model (SEED_hr.dat, SEED.win)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    w.add_argument("seed")
    w.add_argument("--b", type=float, default=0.05, help="node energies +-b, eV")
    w.add_argument("--t", type=float, default=1.0, help="hopping scale, eV")
    w.add_argument("--a", type=float, default=3.0, help="cubic lattice constant, Angstrom")
    w.add_argument("--parity-symmetric", action="store_true")


def _add_nodes_parser(sub) -> None:
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


def _say_model_warning(model, comm=None) -> None:
    """The loader's warning about the model (``provenance["warning"]``, e.g. no _centres.xyz), once:
    every command that loads a model prints it."""
    if model.provenance.get("warning") and (comm is None or comm.is_root):
        print(f"gme-wannier: warning: {model.provenance['warning']}", file=sys.stderr)


def run_one(seed: str, o: dict, comm, progress: Optional[bool], keep: Optional[dict] = None):
    """Load, compute; returns (model, result). The one library call of `run` and `screen`.
    ``keep``, if given, receives the settings and box used (for `run --decompose`)."""
    from .calculate import compute
    from .fermi import attach_fermi_info
    from .gyrotropic import quantities_from_options
    from .io.win import read_win
    from .load import _seed_from, load_model
    from .options import check_memory
    from .report import convergence_warning, symmetry_warning
    from .sanity import fermi_level_warning
    from .settings import RunControl, run_setup

    seed = _seed_from(seed)
    extra_quantities = quantities_from_options(o)  # option errors before the model is read
    model = load_model(seed, source=o["source"], use_spn=not o.get("no_spin", False),
                       convention=o.get("convention") or "wannierberri", ws_images=o.get("ws_images") or "mdrs",
                       ws_tolerance=float(o["ws_tolerance"]) if o.get("ws_tolerance") is not None else 1e-3,
                       cache=not o.get("no_cache", False))
    _say_model_warning(model, comm)
    win = read_win(seed + ".win") if os.path.exists(seed + ".win") else None
    setup = run_setup(o, model, win, seed=seed)
    st = setup.settings
    mesh = setup.sampling.box["mesh"] if setup.sampling.box is not None else o["mesh"]  # the box's own mesh
    check_memory(model.num_wann, len(st.fermi_energies), kernel=o["kernel"], n_kpoints_full=int(np.prod(mesh)),
                 mesh_option="--mesh" if setup.sampling.box is None else "--box-mesh")
    # the band report's energies (settings.BAND_MESH_MIN^3 points at least), so that the warning and
    # the summary's 'bands crossing' column agree
    bands = setup.fermi["bands"][0] if setup.fermi and setup.fermi.get("bands") is not None else None
    warn = fermi_level_warning(model, st.fermi_energies, st.smearing.width, E=bands) if comm.is_root else None
    if warn:
        print(f"gme-wannier: warning: {warn}", file=sys.stderr)
    run = RunControl(comm=comm, chunk_size=int(o["chunk_size"]), checkpoint=o.get("checkpoint"), progress=progress,
                     checkpoint_every=float(o["checkpoint_every"]) if o.get("checkpoint_every") is not None else 60.0)
    result = compute(model, st, setup.sampling, symmetry=setup.symmetry, quantities=extra_quantities,
                     spin_degeneracy=setup.spin_degeneracy, run=run)
    attach_fermi_info(result, setup.fermi)
    for check in (convergence_warning, symmetry_warning):
        warn = check(result, seed) if comm.is_root else None
        if warn:
            print(f"gme-wannier: warning: {warn}", file=sys.stderr)
    if keep is not None:
        keep.update(settings=st, box=setup.sampling.box)
    return model, result


def _cmd_run(args, parser) -> int:
    from .io.writers import csv_text, json_text, write_text
    from .parallel import get_comm, guard
    from .report import run_summary, w90_texts

    from .checkpoint import remove_checkpoint
    from .sanity import check_outputs, output_paths, write_or_rescue

    comm = get_comm("auto")
    with guard(comm):  # the options too: a config file missing on one node must not hang the other ranks
        o = merge_options(args, parser)
        check_outputs(output_paths(o, args.seed, "run"), o.get("checkpoint"), comm, inputs=_input_files(args.seed, o))
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
            for path, text in w90_texts(result, o["w90_dat"]):
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


def _input_files(seed: str, o: dict) -> list:
    """Paths of the files a run reads (the seed's Wannier90 files, --config, --structure), which
    no output may overwrite."""
    from .io.errors import InputFileError
    from .load import _seed_from, available_files

    try:
        files = list(available_files(_seed_from(seed)).values())
    except InputFileError:  # e.g. a directory with several .win: reported when the model is loaded
        files = []
    return [p for p in files + [o.get("config"), o.get("structure")] if p]


def _cmd_info(args) -> int:
    from .io.writers import json_text
    from .options import check_memory, validate_options
    from .report import info_dict, info_text

    validate_options({"symprec": args.symprec, "efermi": args.efermi, "temperature": args.temperature,
                      "mesh": args.mesh})
    d = info_dict(args.seed, symprec=args.symprec, structure=args.structure)
    if args.efermi is not None or args.num_electrons is not None or d.get("win_fermi_energy") is not None:
        from .report import info_fermi

        # the band energies of the whole mesh are kept (like the tetrahedron kernel's)
        check_memory(d.get("num_wann") or 1, len(args.efermi or [0]), kernel="tetra",
                     n_kpoints_full=int(np.prod(args.mesh or (12, 12, 12))))

        d["fermi_level"] = info_fermi(d["seed"], efermi=args.efermi, num_electrons=args.num_electrons,
                                      temperature=300.0 if args.temperature is None else args.temperature,
                                      mesh=args.mesh or (12, 12, 12), symprec=args.symprec,
                                      win_fermi_energy=d.get("win_fermi_energy"))
    print(json_text(d) if args.json else info_text(d))
    return 0


def _cmd_screen(args, parser) -> int:
    from .io.writers import write_text
    from .parallel import get_comm, guard
    from .report import screen_table
    from .sanity import check_outputs, output_paths
    from .screen import read_records, record_text, records_path, screen_one, settings_key, sort_rows

    comm = get_comm("auto")
    rows = []
    with guard(comm):  # the options too (see _cmd_run)
        o = merge_options(args, parser)
        table = o.get("table") or "gme-screen.csv"
        jsonl = records_path(table)
        key = settings_key(o)
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
    from .load import _seed_from, load_model
    from .options import validate_options
    from .parallel import get_comm
    from .sanity import check_outputs

    validate_options({"ws_tolerance": args.ws_tolerance})
    seed = _seed_from(args.seed)
    out = args.output or (os.path.basename(seed) + "_model.npz")
    check_outputs([("--output", out)], None, get_comm("serial"), inputs=_input_files(seed, {}))
    model = load_model(seed, source=args.source or "auto", use_spn=not args.no_spin,
                       use_uhu=not args.internal_only, convention=args.convention or "wannierberri",
                       ws_images=args.ws_images or "mdrs",
                       ws_tolerance=1e-3 if args.ws_tolerance is None else float(args.ws_tolerance))
    _say_model_warning(model)
    if args.internal_only:
        model = model.replace(A_R=None, B_R=None, CC_R=None)
    model.to_npz(out)
    arrays = [k for k in ("H_R", "A_R", "B_R", "CC_R", "S_R") if getattr(model, k) is not None]
    new_seed = out[: -len("_model.npz")] if out.endswith("_model.npz") else None
    if new_seed and os.path.exists(new_seed + ".win"):
        how = f"gme-wannier run {new_seed}"
    else:
        how = (f"copy {seed}.win beside it as {new_seed}.win, then gme-wannier run {new_seed}" if new_seed else
               "name it SEED_model.npz beside SEED.win, then gme-wannier run SEED")
    print(f"wrote {out}: {model.num_wann} Wannier functions, {model.nR} R vectors, {', '.join(arrays)} "
          f"({os.path.getsize(out) / 1e6:.1f} MB); to use it: {how}")
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

    o = merge_options(args, parser)
    model = load_model(args.seed, source=o["source"], ws_images=o.get("ws_images") or "mdrs",
                       cache=not o.get("no_cache", False))
    integrate = o.get("efermi") is not None or o.get("efermi_range") is not None
    if not integrate:  # run_one below loads the model again and says it then
        _say_model_warning(model)
    search = find_nodes(model, o["node_window"], scan_mesh=o["scan_mesh"], symmetry=o["symmetry"],
                        radius=float(o["radius"]), gap_tol=float(o["gap_tol"]),
                        spin_degeneracy=o.get("spin_degeneracy") or None)
    out = search.to_dict()
    text = nodes_text(search)
    if integrate:
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
