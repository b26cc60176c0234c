"""Human-readable summaries and tables (text building only; the CLI prints and writes)."""

from __future__ import annotations

import io
import os
from typing import Optional

import numpy as np

from .units import E2_OVER_H2_EV, mu_0


def _fmt(x: float) -> str:
    return f"{x: .4e}"


def approximation_record(model, settings, spin_degeneracy: int) -> dict:
    """The ``"approximation"`` block of a result: which orbital and spin moments were used
    (``settings`` a GMESettings) and how the bands are counted (``spin_degeneracy`` 1 or 2)."""
    if model.spinors:
        count = "alpha and DOS: each band counted once (spinor Wannier functions)"
    elif spin_degeneracy == 2:
        count = "alpha and DOS: each band counted twice (both spin states of a model without spinors)"
    else:
        count = ("alpha and DOS: each band counted once (one spin species; spin_degeneracy = 1 asked for a "
                 "model without spinors)")
    return {"orbital_moment": model.orbital_level if settings.external else "internal terms only (forced)",
            "spin_moment": ("-(g_s/2) mu_B <sigma>, g_s = %g" % settings.g_s) if (model.has_spin and settings.spin)
            else "none",
            "spin_degeneracy": count + "; K: each band once, as Wannier90"}


def convergence_warning(result, seed: str) -> Optional[str]:
    """The warning (text after ``gme-wannier: warning: ``) when the estimated k-sampling error
    of ``result`` is above :data:`gme_wannier.convergence.WARN_ABOVE`, else None."""
    from .convergence import WARN_ABOVE

    conv = result.info.get("convergence") or {}
    if conv.get("estimated_error") is None or conv["estimated_error"] <= WARN_ABOVE:
        return None
    hint = ("raise --max-kpoints/--max-time" if conv.get("tolerance") is not None
            else "use a denser --mesh, or --tolerance 0.01")
    return (f"{seed}: the estimated k-sampling error of alpha is {100 * conv['estimated_error']:.0f} % of "
            f"max|alpha_total| (> {100 * WARN_ABOVE:.0f} %): not converged; {hint}")


def symmetry_warning(result, seed: str) -> Optional[str]:
    """The warning when the model's own symmetry breaking moves the symmetric sum by more than
    the k-sampling error bar (``symmetry.model_symmetry_check``, :mod:`gme_wannier.symcheck`)."""
    chk = (result.info.get("symmetry") or {}).get("model_symmetry_check")
    est = (result.info.get("convergence") or {}).get("estimated_error") or 0.0
    if not chk or chk["whole_zone_vs_symmetric"] <= max(est, 0.01):
        return None
    return (f"{seed}: the Wannier bands break the crystal symmetry by {1e3 * chk['band_symmetry_error_eV']:.1f} meV, "
            f"and on {'x'.join(map(str, chk['mesh']))} the whole-zone alpha differs from the symmetric one by "
            f"{100 * chk['whole_zone_vs_symmetric']:.1f} % of max|alpha|, beyond the error bar (k sampling only): "
            "the symmetric result depends on which k-point of each star is used; compare with --symmetry off")


def w90_texts(result, prefix: str) -> list:
    """(path, text) of the Wannier90-style outputs of ``--w90-dat PREFIX``: ``PREFIX-gme-K_orb.dat``,
    ``PREFIX-gme-K_spin.dat`` (zeros, said so, when the spin moment was not computed) and the
    files of the extra quantities (:func:`gme_wannier.io.writers.w90_dat_texts`)."""
    from .io.writers import w90_dat_texts, w90_K_text

    spin_done = result.info.get("approximation", {}).get("spin_moment", "none") != "none"
    out = []
    for part, tag in (("orbital", "orb"), ("spin", "spin")):
        what = f"{part} part of the K tensor" if spin_done or part == "orbital" else \
            "spin part of the K tensor: NOT COMPUTED (no spin matrices, or --no-spin): zeros"
        out.append((f"{prefix}-gme-K_{tag}.dat",
                    w90_K_text(result.fermi_energies, result.K[part], f"{what}; counting: each band once, as "
                               f"Wannier90 (alpha = {result.spin_degeneracy} x (e/hbar) x K in this run)")))
    return out + w90_dat_texts(result.extra, result.fermi_energies, prefix)


def convergence_method_text(growth: float, order: float = 2.0) -> str:
    """How the automatic convergence estimates its error, for the result's record (``growth``:
    ratio r of the spacings of successive meshes; ``order``: the power of r in the guard term)."""
    from .convergence import ENVELOPE_MIN_EV, ENVELOPE_WIDTHS

    power = "r" if order == 1 else f"r^{order:g}"
    return (f"max(|K(N_k) - K(N_k-1)|, |K(N_k-1) - K(N_k-2)| / {power}) per component over a sequence of "
            f"uniform meshes with spacings shrinking by r = {growth}; the bar of a Fermi level is the "
            f"largest of these within max({ENVELOPE_WIDTHS:g} k_B T, {1e3 * ENVELOPE_MIN_EV:g} meV) of it")


#: ZMS Eqs. (17)-(18): one isotropic Weyl pair with eps_R - eps_L = 0.1 eV
ZMS_PAIR_SPLIT_EV = 0.1
ZMS_PAIR_ALPHA = E2_OVER_H2_EV * ZMS_PAIR_SPLIT_EV / 3.0  # A m^-2 T^-1
ZMS_PAIR_RHO = mu_0 * ZMS_PAIR_ALPHA * 1e-3  # rad/mm


def run_summary(model, result, out_path: str, omega_tau: Optional[list] = None) -> str:
    """The text `gme-wannier run` prints: inputs, symmetry, alpha_iso(E_F), rho, comparison with ZMS."""
    info = result.info
    sym = info.get("symmetry", {})
    s = io.StringIO()
    s.write(f"gme-wannier: {model.name}  ({model.num_wann} Wannier functions, {model.nR} R vectors)\n")
    s.write(f"  files: {', '.join(os.path.basename(f) for f in model.provenance.get('files', []))}\n")
    ap = info["approximation"]
    s.write(f"  orbital moment: {ap['orbital_moment']}\n  spin moment: {ap['spin_moment']}\n")
    s.write(f"  counting: {ap['spin_degeneracy']}\n")
    if "international" in sym:
        s.write(f"  space group {sym['international']} ({sym['number']}), point group {sym['pointgroup']}; "
                f"chiral={sym['chiral']} polar={sym['polar']} gyrotropic={sym['gyrotropic']}\n")
        s.write(f"  allowed form of alpha: {sym['allowed_form']['form']}\n")
    mesh = info["mesh"]
    if mesh["type"] == "uniform-sequence":
        seq = ", ".join("x".join(map(str, m["mesh"])) for m in mesh["meshes"])
        s.write(f"  automatic convergence: meshes {seq} ({mesh['n_kpoints_total']} k-points evaluated; result from "
                f"the last, {mesh['n_evaluated']} k-points); stop: {mesh['stop_reason']}\n")
    elif mesh["type"] == "uniform":
        s.write(f"  mesh {' x '.join(str(n) for n in mesh['mesh'])} ({mesh['n_full']} k), evaluated "
                f"{mesh['n_evaluated']} (symmetry {sym.get('mode')})\n")
    else:
        s.write(f"  box integration, {mesh['n_kpoints']} k\n")
    if "band_symmetry_error_eV" in sym:
        s.write(f"  Wannier Hamiltonian symmetry error: max |E(gk)-E(k)| = {sym['band_symmetry_error_eV']:.1e} eV "
                f"({sym.get('band_symmetry_error_window', '')})\n")
    if "model_symmetry_check" in sym:
        chk = sym["model_symmetry_check"]
        s.write(f"  model symmetry check on {'x'.join(map(str, chk['mesh']))}: whole zone vs symmetric sum "
                f"{100 * chk['whole_zone_vs_symmetric']:.1f} % of max|alpha| (not in the error bar)\n")
    if "tensor_symmetry_breaking" in sym:
        s.write(f"  whole-mesh tensor vs its symmetrized image: relative difference {sym['tensor_symmetry_breaking']:.1e}\n")
    if info["settings"].get("kernel") == "tetra":
        s.write("  T = 0: linear tetrahedra (the temperature and smearing options are not used)\n")
    else:
        s.write(f"  {info['settings']['smearing_description']}\n")
    _fermi_section(s, result)
    _alpha_table(s, result)
    if omega_tau:
        from .tensor import dynamic_factor

        for wt in omega_tau:
            D = complex(dynamic_factor(float(wt)))
            s.write(f"  omega tau = {float(wt):g}: alpha(omega) = D alpha0 with D = {D.real:.4f} {D.imag:+.4f}i\n")
    _convergence_lines(s, result)
    t = info["timing"]
    s.write(f"  {t['seconds']:.1f} s on {t['ranks']} rank(s); result written to {out_path}\n")
    return s.getvalue()


def alpha_iso_error(result) -> Optional[np.ndarray]:
    """Error bar of alpha_iso (nE,), A m^-2 T^-1: (|err_xx| + |err_yy| + |err_zz|) / 3 of the
    per-component estimate (an upper bound of the error of the trace / 3), or None."""
    if result.alpha_error is None:
        return None
    return np.trace(np.abs(result.alpha_error), axis1=1, axis2=2) / 3.0


def _convergence_lines(s, result) -> None:
    """The error estimate: its size relative to max |alpha_total|, converged or not, and why."""
    conv = result.info.get("convergence") or {}
    est = conv.get("estimated_error")
    if est is None:
        return
    tol = conv.get("tolerance")
    state = "converged" if conv.get("converged") else "NOT converged"
    s.write(f"  estimated error: {100 * est:.2f} % of max|alpha_total| ({state}; "
            + (f"tolerance {100 * tol:g} %" if tol is not None else "no --tolerance: single mesh")
            + f"; {conv.get('n_kpoints_evaluated')} k-points evaluated)\n")
    if conv.get("stop_reason") not in (None, "converged"):
        s.write(f"  stopped by {conv['stop_reason'].replace('_', '-')} before reaching the tolerance\n")
    if conv.get("unsampled_fermi_levels_eV"):
        levels = ", ".join(f"{e:.4f}" for e in conv["unsampled_fermi_levels_eV"])
        s.write(f"  E_F = {levels} eV: {conv['unsampled_note']}\n")
    if conv.get("forecast"):
        s.write(f"  {conv['forecast']['text']}\n")


def _fermi_section(s, result) -> None:
    """Where E_F sits: the material's Fermi level, the band range, the bands crossing each E_F."""
    fl = result.info.get("fermi_level")
    if not fl:
        return
    ef0 = fl.get("material_E_F_eV")
    s.write(f"  material Fermi level: {'unknown' if ef0 is None else f'{ef0:.4f} eV'} ({fl['source']})\n")
    lo, hi = fl["band_range_eV"]
    s.write(f"  Wannier bands: {fl['n_bands']} from {lo:.3f} to {hi:.3f} eV "
            f"(band extrema on a {'x'.join(map(str, fl['band_mesh']))} mesh)\n")


def _crossing_text(level: Optional[dict]) -> str:
    if not level:
        return ""
    if level["crossing"]:
        c = level["crossing"]
        return "bands " + (f"{c[0]}-{c[-1]}" if len(c) > 2 else ",".join(map(str, c)))
    gap = level.get("gap") or [None, None]
    return "NO Fermi surface" + (f" (gap {gap[0]:.3f}-{gap[1]:.3f})" if None not in gap else "")


def _alpha_table(s, result) -> None:
    """alpha_iso(E_F), the parts the symmetry allows, rho along the optic axis, DOS, crossings."""
    from .result import forbidden_components

    dec = result.decomposition("total")
    rho_all = result.rotatory_power("total")
    symmetrized = bool(forbidden_components(result.info))
    ax = result.optical_axis() if symmetrized else None
    rho_name = {"any": "rho (any n)", None: "rho_z"}.get(ax, f"rho_{ax} (optic axis)")
    rho = rho_all["z" if ax in (None, "any") else ax]
    iso = np.asarray(dec["iso"])
    form = (result.info.get("symmetry", {}).get("allowed_form") or {}).get("form")
    show_S = not (form == "a*1" and symmetrized)  # alpha_S and delta vanish by symmetry when cubic
    levels = (result.info.get("fermi_level") or {}).get("levels") or [None] * len(iso)
    dos = None if result.dos is None else result.spin_degeneracy * np.asarray(result.dos)
    err = alpha_iso_error(result)
    s.write("\n   E_F (eV)   alpha_iso (A m^-2 T^-1)" + ("   +- error " if err is not None else "")
            + ("  |alpha_S|max   |delta|    " if show_S else "")
            + f"  {rho_name + ' (rad/mm)':24s} alpha_iso/ZMS  DOS (1/eV/cell)  at E_F\n")
    for i, ef in enumerate(result.fermi_energies):
        s.write(f"  {ef:9.4f}   {_fmt(iso[i])}          " + (f" +- {err[i]:.2e}" if err is not None else ""))
        if show_S:
            s.write(f"  {_fmt(np.abs(dec['sym_eigenvalues'][i]).max())}  {_fmt(np.linalg.norm(dec['delta'][i]))}")
        s.write(f"  {rho[i]: 9.4f}                {iso[i] / ZMS_PAIR_ALPHA: 7.2f}       "
                f"{'' if dos is None else f'{dos[i]:9.4f}'}        {_crossing_text(levels[i])}\n")
    if not show_S:
        s.write("  (cubic point group: alpha = alpha_iso 1, the traceless and antisymmetric parts are 0 by symmetry)\n")
    i = int(np.argmax(np.abs(iso)))
    s.write(f"\n  largest |alpha_iso|: alpha_iso = {iso[i]:.3e} A m^-2 T^-1, {rho_name} = {rho[i]:.3f} rad/mm "
            f"at E_F = {result.fermi_energies[i]:.4f} eV\n")
    if len(iso) > 2 and i in (0, len(iso) - 1):
        s.write("  NOTE: this maximum is at the edge of the scanned range: the true maximum may lie outside it "
                "(widen --efermi-range)\n")
    s.write(f"  paper's estimate (ZMS Eqs. 17-18): one Weyl pair split by {ZMS_PAIR_SPLIT_EV} eV gives alpha = "
            f"(e^2/3h^2) x {ZMS_PAIR_SPLIT_EV} eV = {ZMS_PAIR_ALPHA:.3e} A m^-2 T^-1, |rho| = mu0 alpha = "
            f"{ZMS_PAIR_RHO:.2f} rad/mm (quartz: 0.33 rad/mm)\n")
    s.write(f"  {rho_name}: (mu0/2)[tr alpha - n.alpha.n] for light along n; rho > 0: the plane of polarization "
            "turns clockwise as seen looking towards the source (docs/theory.md)\n")


def info_dict(seed: str, symprec: float = 1e-5, structure: Optional[str] = None) -> dict:
    """Structure, symmetry and files of a seed, without building the real-space matrices."""
    from .io.win import read_win
    from .load import _seed_from, available_files, choose_source, source_content
    from .symmetry import allowed_form, find_symmetry, structure_from_file

    seed = _seed_from(seed)
    files = available_files(seed)
    d: dict = {"seed": seed, "files": {k: v for k, v in files.items() if v}}
    if not files["win"]:
        from .io.errors import InputFileError

        raise InputFileError(seed + ".win", "file not found")
    win = read_win(files["win"])
    atoms = structure_from_file(structure) if structure else win.to_atoms()
    sym = find_symmetry(atoms, symprec=symprec, source=seed)
    d["structure"] = {"formula": atoms.get_chemical_formula(), "cell_A": atoms.cell.array.tolist(),
                      "natoms": len(atoms)}
    d["symmetry"] = sym.summary()
    d["allowed_form"] = allowed_form(sym).to_dict()
    src = choose_source(files)
    full, spin = source_content(files, src) if src else (False, False)
    d["num_wann"] = win.num_wann
    d["spinors"] = win.spinors
    d["win_fermi_energy"] = win.get_float("fermi_energy")
    from .fermi import bands_below_wannier_window

    d["bands_below_wannier_window"] = bands_below_wannier_window(win, files.get("eig"))
    d["default_source"] = src
    d["capabilities"] = {"full_orbital_moment": bool(full), "spin_moment": bool(spin),
                         "orbital_level": "full (A, B, C)" if full else "internal terms only"}
    return d


def info_fermi(seed: str, *, efermi=None, num_electrons=None, temperature: float = 300.0, mesh=(12, 12, 12),
               symprec: float = 1e-5, win_fermi_energy=None) -> dict:
    """Band range, the material's Fermi level and, per E_F, the bands crossing it and the DOS
    (Fermi-Dirac at ``temperature`` K on ``mesh``): what `info` prints with --efermi / --num-electrons."""
    from .fermi import band_report, dos_at, material_fermi_level
    from .load import load_model
    from .units import k_B_eV

    model = load_model(seed, cache=True)
    kT = k_B_eV * float(temperature)
    fl = material_fermi_level(model, num_electrons=num_electrons, win_fermi_energy=win_fermi_energy, kT=kT,
                              mesh=mesh, symprec=symprec)
    E, w = fl.pop("bands")
    levels = list(efermi or []) or ([] if fl["E_F_eV"] is None else [fl["E_F_eV"]])
    rep = band_report(E, levels)
    dos = dos_at(E, w, levels, kT, fl["spin_degeneracy"]) if levels else []
    for lev, g in zip(rep["fermi_levels"], dos):
        lev["dos_per_eV_per_cell"] = float(g)
    return {"material_E_F_eV": fl["E_F_eV"], "source": fl["source"], "temperature_K": float(temperature),
            "mesh": [int(n) for n in mesh], "spin_degeneracy": fl["spin_degeneracy"], "n_bands": rep["n_bands"],
            "band_range_eV": rep["range_eV"], "levels": rep["fermi_levels"]}


def _info_fermi_text(s, d: dict) -> None:
    b = d.get("bands_below_wannier_window") or {}
    if b.get("excluded") or b.get("below_dis_win_min"):
        g = 1 if d.get("spinors") else 2
        n = (b.get("excluded") or 0) + (b.get("below_dis_win_min") or 0)
        s.write(f"bands below the Wannier subspace: {b.get('excluded') or 0} excluded (exclude_bands) + "
                f"{b.get('below_dis_win_min') or 0} below dis_win_min: --num-electrons = DFT valence count - "
                f"{g * n}\n")
    fl = d.get("fermi_level")
    if not fl:
        return
    lo, hi = fl["band_range_eV"]
    s.write(f"Wannier bands: {fl['n_bands']} from {lo:.3f} to {hi:.3f} eV ({'x'.join(map(str, fl['mesh']))} mesh)\n")
    ef0 = fl["material_E_F_eV"]
    s.write(f"material Fermi level: {'unknown' if ef0 is None else f'{ef0:.4f} eV'} ({fl['source']})\n")
    for lev in fl["levels"]:
        s.write(f"  E_F = {lev['E_F']:.4f} eV: {_crossing_text(lev)}; DOS {lev.get('dos_per_eV_per_cell', 0):.4f} "
                f"states/eV/cell (Fermi-Dirac {fl['temperature_K']:g} K)\n")


def info_text(d: dict) -> str:
    """The text of ``gme-wannier info``: symmetry, allowed form and model of a result dict."""
    s = io.StringIO()
    sym = d["symmetry"]
    s.write(f"seed: {d['seed']}\n")
    s.write(f"structure: {d['structure']['formula']} ({d['structure']['natoms']} atoms)\n")
    s.write(f"space group: {sym['international']} ({sym['number']}), point group {sym['pointgroup']}\n")
    s.write(f"chiral: {sym['chiral']}  polar: {sym['polar']}  centrosymmetric: {sym['centrosymmetric']}  "
            f"gyrotropic: {sym['gyrotropic']}\n")
    s.write(f"allowed form of alpha: {d['allowed_form']['form']}\n")
    s.write(f"num_wann: {d['num_wann']}  spinors: {d['spinors']}\n")
    s.write("files: " + ", ".join(f"{k}={os.path.basename(v)}" for k, v in d["files"].items()) + "\n")
    c = d["capabilities"]
    s.write(f"default source: {d['default_source']}; orbital moment: {c['orbital_level']}; "
            f"spin moment: {'yes' if c['spin_moment'] else 'no'}\n")
    _info_fermi_text(s, d)
    return s.getvalue()


def screen_row(seed: str, model, result, window: float = 0.0) -> dict:
    """One row of the screening table: the largest |alpha_iso| within the window around the
    material's Fermi level (all levels when window <= 0), with rho along the optic axis."""
    from .screen import pick_level

    dec = result.decomposition("total")
    ef = np.asarray(result.fermi_energies)
    fl = result.info.get("fermi_level") or {}
    i = pick_level(ef, np.asarray(dec["iso"]), fl.get("material_E_F_eV"), window)
    sym = result.info.get("symmetry", {})
    ax = result.optical_axis() or "z"
    g = result.spin_degeneracy
    err = alpha_iso_error(result)
    conv = result.info.get("convergence") or {}
    return {"material": seed, "space_group": f"{sym.get('international', '?')} ({sym.get('number', '?')})",
            "gyrotropic": sym.get("gyrotropic"), "allowed_form": sym.get("allowed_form", {}).get("form"),
            "spin_counting": f"x{g} ({'spinless: both spins' if g == 2 else 'spinors: once'})",
            "material_E_F_eV": fl.get("material_E_F_eV"), "E_F_eV": round(float(ef[i]), 10),
            "alpha_iso": float(dec["iso"][i]),
            "alpha_S_max": float(np.abs(dec["sym_eigenvalues"][i]).max()),
            "delta_norm": float(np.linalg.norm(dec["delta"][i])),
            "rho_axis": ax, "rho_rad_per_mm": float(result.rotatory_power("total")["z" if ax == "any" else ax][i]),
            "at_edge": bool(len(ef) > 2 and i in (0, len(ef) - 1)),
            "alpha_iso_error": None if err is None else float(err[i]),
            "estimated_error": conv.get("estimated_error"), "converged": conv.get("converged"), "error": ""}


SCREEN_COLUMNS = ["material", "rank", "space_group", "gyrotropic", "allowed_form", "spin_counting", "material_E_F_eV",
                  "E_F_eV", "alpha_iso", "alpha_iso_error", "alpha_S_max", "delta_norm", "rho_axis", "rho_rad_per_mm",
                  "at_edge", "estimated_error", "converged", "resumed", "error"]


def _err_text(err) -> str:
    return "-" if err is None else f"{err:9.2e}"


def screen_table(rows: list) -> tuple[str, str]:
    """(CSV text, printed table) of the screening rows (failed rows say FAILED and why)."""
    cols = SCREEN_COLUMNS
    csv = io.StringIO()
    csv.write(",".join(cols) + "\n")
    txt = io.StringIO()
    wm = max([len("material")] + [len(str(r.get("material", ""))) for r in rows])
    ranked = any("rank" in r for r in rows)  # --sort: the rank leads each line
    txt.write(f"{'#  ' if ranked else ''}{'material':{wm}s} {'space group':16s} {'spins':6s} {'E_F0':>7s} {'E_F (eV)':>8s} "
              f"{'alpha_iso':>12s} {'+- error':>9s} {'|alpha_S|':>11s} {'|delta|':>11s} {'rho':>9s} axis  "
              "(alpha in A m^-2 T^-1, rho in rad/mm; E_F0: the material's own Fermi level)\n")
    for r in rows:
        csv.write(",".join('"%s"' % ("" if r.get(c) is None else str(r.get(c, ""))).replace('"', "'")
                           for c in cols) + "\n")
        rank = f"{str(r.get('rank', '')):>2s} " if ranked else ""
        if r.get("error"):
            txt.write(f"{rank}{r['material']:{wm}s} FAILED: {r['error']}\n")
            continue
        ef0 = r.get("material_E_F_eV")
        txt.write(f"{rank}{r['material']:{wm}s} {r['space_group']:16s} {r['spin_counting'][:2]:6s} "
                  f"{'-' if ef0 is None else f'{ef0:.3f}':>7s} {r['E_F_eV']:8.3f} {r['alpha_iso']:12.4e} "
                  f"{_err_text(r.get('alpha_iso_error')):>9s} "
                  f"{r['alpha_S_max']:11.4e} {r['delta_norm']:11.4e} {r['rho_rad_per_mm']:9.4f} {r['rho_axis']:4s}"
                  f"{'  (max at the edge of the E_F range)' if r.get('at_edge') else ''}"
                  f"{'  (NOT converged)' if r.get('converged') is False else ''}"
                  f"{'  (resumed)' if r.get('resumed') else ''}\n")
    return csv.getvalue(), txt.getvalue()
