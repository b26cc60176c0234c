"""Build a :class:`TBModel` from what a Wannier90 folder holds.

Selection (``source="auto"``), most complete first:

1. ``chk``: ``SEED.chk`` (or ``SEED.chk.fmt``) + ``SEED.eig`` [+ ``.mmn`` -> Berry connection A,
   + ``.uHu`` -> B and C: full orbital moment; + ``.spn`` -> spin], read with WannierBerri.
2. ``tb``: ``SEED_tb.dat`` (H and position matrices) [+ ``SEED_wsvec.dat``]: orbital moment at
   the tight-binding level (internal terms + Berry-connection terms from r(R)); no spin.
3. ``hr``: ``SEED_hr.dat`` [+ ``SEED_wsvec.dat``, ``SEED_centres.xyz``]: internal terms only.

Two more sources hold finished real-space matrices (:mod:`gme_wannier.io.modelnpz`):

* ``npz``: the package's own model file ``SEED_model.npz`` (or ``SEED_*model.npz``), written by
  ``gme-wannier export``; the ``.win`` beside it gives the structure.
* ``wannierberri``: a WannierBerri ``System_R.save_npz`` folder: ``SEED`` itself, ``SEED_system``,
  ``SEED_system_R``, or ``system``/``system_R`` beside ``SEED.win``.

``auto`` takes the most complete source: the full orbital moment (A, B, C) first, then spin,
then, at equal content, the order chk, npz, wannierberri, tb, hr. ``DIR`` alone is accepted
when it holds exactly one ``.win``.

Gzipped ``_hr.dat.gz``/``_tb.dat.gz``/``_wsvec.dat.gz`` are read as well.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from .io.errors import InputFileError
from .io.tbfiles import apply_wsvec, read_centres, read_hr, read_tb, read_wsvec
from .io.win import WinData, read_win
from .model import TBModel

SOURCES = ("auto", "chk", "npz", "wannierberri", "tb", "hr")


def _find(base: str) -> Optional[str]:
    for p in (base, base + ".gz"):
        if os.path.exists(p):
            return p
    return None


def available_files(seed: str) -> dict:
    """Which Wannier90 files exist for this seed (path or None for each)."""
    return {
        "win": _find(seed + ".win"),
        "chk": _find(seed + ".chk") or _find(seed + ".chk.fmt"),
        "eig": _find(seed + ".eig"),
        "mmn": _find(seed + ".mmn"),
        "uHu": _find(seed + ".uHu"),
        "spn": _find(seed + ".spn"),
        "tb": _find(seed + "_tb.dat"),
        "hr": _find(seed + "_hr.dat"),
        "wsvec": _find(seed + "_wsvec.dat"),
        "centres": _find(seed + "_centres.xyz"),
        "npz": _find_model_npz(seed),
        "wannierberri": _find_wannierberri(seed),
    }


def _find_model_npz(seed: str) -> Optional[str]:
    """``SEED_model.npz``, else the first ``SEED_*model.npz`` (sorted)."""
    import glob

    if os.path.isfile(seed + "_model.npz"):
        return seed + "_model.npz"
    hits = sorted(glob.glob(glob.escape(seed) + "_*model.npz"))
    return hits[0] if hits else None


def _find_wannierberri(seed: str) -> Optional[str]:
    from .io.modelnpz import is_wannierberri_folder

    d = os.path.dirname(seed)
    for c in (seed, seed + "_system", seed + "_system_R", os.path.join(d, "system"), os.path.join(d, "system_R")):
        if is_wannierberri_folder(c):
            return c
    return None


def source_content(files: dict, source: str) -> tuple[bool, bool]:
    """(full orbital moment, spin) that ``source`` would give with these files (nothing is read
    but the names of the arrays in an npz)."""
    from .io.modelnpz import npz_summary, wannierberri_summary

    if source == "chk":
        return bool(files["mmn"] and files["uHu"]), bool(files["spn"])
    if source == "npz":
        s = npz_summary(files["npz"])
        return s["full_orbital"], s["spin"]
    if source == "wannierberri":
        s = wannierberri_summary(files["wannierberri"])
        return s["full_orbital"], s["spin"]
    return False, False


def choose_source(files: dict) -> str:
    """The most complete source the folder supports (see the module docstring); "" if none."""
    present = [s for s in ("chk", "npz", "wannierberri", "tb", "hr")
               if (files["chk"] and files["eig"] if s == "chk" else files.get(s))]
    if not present:
        return ""
    return max(present, key=lambda s: (source_content(files, s), -present.index(s)))


def _seed_from(path: str) -> str:
    path = os.fspath(path)
    if os.path.isdir(path):
        return _seed_of_dir(path)
    for ext in (".win", ".chk", ".chk.fmt", ".eig", "_hr.dat", "_tb.dat", "_hr.dat.gz", "_tb.dat.gz"):
        if path.endswith(ext):
            return path[: -len(ext)]
    return path


def _seed_of_dir(path: str) -> str:
    """``DIR`` -> ``DIR/SEED`` when DIR (or, for a WannierBerri folder, its parent) holds one ``.win``."""
    import glob

    from .io.modelnpz import is_wannierberri_folder

    for d in (path, os.path.dirname(os.path.abspath(path))) if is_wannierberri_folder(path) else (path,):
        wins = sorted(glob.glob(os.path.join(glob.escape(d), "*.win")))
        if len(wins) == 1:
            return wins[0][:-4]
        if len(wins) > 1:
            names = ", ".join(os.path.basename(w) for w in wins)
            raise InputFileError(path, f"is a directory with {len(wins)} .win files ({names}): give DIR/SEED")
    raise InputFileError(path, "is a directory without a .win file: give DIR/SEED of the Wannier90 files")


# 9 parameters: keyword-only options that mirror the model flags of `gme-wannier run` one to one.
def load_model(seed: str, *, source: str = "auto", use_uhu: bool = True, use_spn: bool = True,
               win: Optional[str] = None, convention: str = "wannierberri", ws_images: str = "mdrs",
               ws_tolerance: float = 1e-3, cache: bool = False) -> TBModel:
    """Load a Wannier model from ``DIR/SEED`` (a seed path; a file of the set is accepted too).

    Parameters
    ----------
    seed : str
        ``DIR/SEED``.
    source : {"auto", "chk", "npz", "wannierberri", "tb", "hr"}
        Which set of files to use (see the module docstring).
    use_uhu, use_spn : bool
        Read ``.uHu``/``.spn`` when present (chk source only).
    win : str, optional
        Path of the ``.win`` file if it is not ``SEED.win``.
    convention : {"wannierberri", "postw90"}
        How the real-space matrices are built from ``.chk`` data (chk source only).
        "wannierberri" (default): WannierBerri's MDRS folding of every matrix, phase convention I
        (centres in the Fourier phase). "postw90": exactly as postw90 3.1 (Wigner-Seitz supercell
        with ndegen, convention II position matrices, ``use_ws_distance`` of the ``.win``, default
        true), to reproduce its numbers; see docs/validation.md.
    ws_images : {"mdrs", "wsvec"}
        _hr/_tb sources: recompute the Wigner-Seitz images from the Wannier centres (MDRS with
        tie tolerance ``ws_tolerance``, default) or apply Wannier90's ``_wsvec.dat`` as it is.
    ws_tolerance : float, Angstrom
        Tie tolerance of the MDRS image choice (chk source with the wannierberri convention, and
        hr/tb with ws_images="mdrs"). Symmetric centres agree only to ~1e-5 Angstrom after an
        unconstrained Wannierisation; ties split unevenly break the crystal symmetry (GaAs, Te+SOC).
    cache : bool
        Keep the finished real-space matrices in a cache (:mod:`gme_wannier.cache`) keyed by the
        input files (paths, sizes, modification times) and these options; reuse them next time.
    """
    if source not in SOURCES:
        raise InputFileError(str(seed), f"unknown source '{source}' (choose from {', '.join(SOURCES)})")
    if ws_images not in WS_IMAGES:
        raise InputFileError(str(seed), f"unknown ws_images '{ws_images}' (choose mdrs or wsvec)")
    if convention not in ("wannierberri", "postw90"):
        raise InputFileError(str(seed), f"unknown convention '{convention}' (choose wannierberri or postw90)")
    seed = _seed_from(os.fspath(seed))
    files = available_files(seed)
    win_path = win or files["win"]
    if win_path is None:
        raise InputFileError(seed + ".win", "file not found: the .win file gives the structure")
    windata = read_win(win_path)
    if source == "auto":
        source = choose_source(files)
        if not source and files["chk"]:
            raise InputFileError(seed + ".eig", "file not found (needed with " + os.path.basename(files["chk"]) + ")")
        if not source:
            raise InputFileError(seed, "no Wannier90 model found: need SEED.chk + SEED.eig, SEED_tb.dat, SEED_hr.dat, "
                                       "a model file SEED_model.npz or a WannierBerri folder")
    try:
        atoms = windata.to_atoms()
    except InputFileError:
        atoms = None

    if convention == "postw90" and source != "chk":
        raise InputFileError(seed, "convention 'postw90' needs the checkpoint data (SEED.chk + SEED.eig)")
    _check_used_files(files, source, use_uhu, use_spn)
    if source in ("npz", "wannierberri"):
        return _from_npz_source(seed, files, source, windata, atoms, use_spn)
    key = None
    if cache:
        from . import cache as _cache

        used = [p for p in files.values() if p] + [win_path]
        key = _cache.cache_key(used, {"source": source, "use_uhu": use_uhu, "use_spn": use_spn,
                                      "convention": convention, "ws_images": ws_images, "ws_tolerance": ws_tolerance})
        hit = _cache.load(key)
        if hit is not None:
            meta = hit.pop("meta")
            prov = dict(meta["provenance"], cache="loaded from " + os.path.join(_cache.cache_dir(), key + ".npz"))
            return TBModel(**hit, atoms=atoms, spinors=meta["spinors"], name=meta["name"], provenance=prov)
    if source == "chk":
        model = _from_chk(seed, files, windata, atoms, use_uhu, use_spn, convention, ws_tolerance)
    elif source == "tb":
        model = _from_tb(seed, files, windata, atoms, ws_images, ws_tolerance)
    else:
        model = _from_hr(seed, files, windata, atoms, ws_images, ws_tolerance)
    _check_spinors(model, windata, files)
    _check_hermitian(model, seed)
    if key is not None:
        from . import cache as _cache

        _cache.save(key, model)
    return model


def _from_npz_source(seed, files, source, windata, atoms, use_spn) -> TBModel:
    """The package's model file or a WannierBerri folder (finished matrices: no cache needed)."""
    path = files[source]
    if not path:
        want = "SEED_model.npz (write one with 'gme-wannier export')" if source == "npz" else \
            "a WannierBerri System_R folder (SEED, SEED_system, or system/ beside SEED.win)"
        raise InputFileError(seed, f"source '{source}': no {want}")
    kw = {"atoms": atoms, "spinors": windata.spinors if windata.keywords.get("spinors") is not None else None}
    model = TBModel.from_npz(path, **kw) if source == "npz" else \
        TBModel.from_wannierberri(path, name=os.path.basename(seed), **kw)
    _check_num_wann(windata, model.num_wann, path)
    _check_lattice(windata, model.real_lattice, path)
    _check_hermitian(model, path)
    prov = dict(model.provenance, files=[windata.path] + list(model.provenance.get("files", [])))
    if not use_spn and model.S_R is not None:
        return model.replace(S_R=None, provenance=dict(prov, spin_moment="none (left out)"))
    return model.replace(provenance=prov)


_USED = {"chk": ("chk", "eig", "mmn", "uHu", "spn"), "tb": ("tb", "wsvec", "centres"),
         "hr": ("hr", "wsvec", "centres")}


def _check_used_files(files: dict, source: str, use_uhu: bool, use_spn: bool) -> None:
    """Every file the source will open is a readable regular file (a FIFO would hang the reader)."""
    from .io.errors import check_input_file

    for kind in _USED.get(source, ()):
        if files.get(kind) and not ((kind == "uHu" and not use_uhu) or (kind == "spn" and not use_spn)):
            check_input_file(files[kind])


def _check_spinors(model: TBModel, windata: WinData, files: dict) -> None:
    """The .win's ``spinors`` agrees with the data: a .spn implies spinor Wannier functions (the
    spin would otherwise be counted twice by the default spin degeneracy), and spinor Wannier
    functions come in pairs."""
    if model.S_R is not None and not windata.spinors:
        raise InputFileError(files.get("spn") or windata.path,
                             f"spin matrices (.spn) are present but {windata.path} says spinors = false: "
                             "set spinors = true (a .spn needs spinor wave functions), or leave the spin out "
                             "with --no-spin")
    if windata.spinors and model.num_wann % 2:
        raise InputFileError(windata.path, f"spinors = true but num_wann = {model.num_wann} is odd: spinor "
                                           "Wannier functions come in pairs; is this the .win of another (spinless) "
                                           "calculation?")


def _check_hermitian(model: TBModel, path: str) -> None:
    """H(-R) = H(R)^+ (to 1e-6 relative): a model file or folder written by hand or corrupted
    otherwise gives bands from one triangle of H(k) only."""
    herm = model.hermiticity_error()
    if herm > 1e-6 * max(1.0, float(np.abs(model.H_R).max())):
        raise InputFileError(path, f"the Hamiltonian is not Hermitian (max |H(R) - H(-R)^+| = {herm:.2e} eV)")


def _check_num_wann(windata: WinData, nw: int, path: str) -> None:
    nw_win = windata.num_wann
    if nw_win is not None and nw_win != nw:
        raise InputFileError(path, f"num_wann = {nw} disagrees with num_wann = {nw_win} in {windata.path}")


def _check_lattice(windata: WinData, lattice: np.ndarray, path: str) -> None:
    if windata.real_lattice is not None and np.abs(windata.real_lattice - lattice).max() > 1e-4:
        raise InputFileError(path, f"lattice vectors differ from unit_cell_cart in {windata.path} "
                                   "(different structure, or lengths in Bohr vs Angstrom?)")


def _check_mp_grid(windata: WinData, mp_grid: np.ndarray, path: str) -> None:
    """The .win's mp_grid, when given, is the checkpoint's: else the .win (and so the structure
    taken from it) is of another run."""
    mp = windata.get_floats("mp_grid", 3)
    if mp is not None and not np.array_equal(np.asarray(mp), np.asarray(mp_grid, dtype=float)):
        raise InputFileError(path, f"mp_grid {np.asarray(mp_grid).tolist()} disagrees with mp_grid = "
                                   f"{np.asarray(mp).astype(int).tolist()} in {windata.path}: are both from the same "
                                   "Wannier90 run?")


def _from_chk(seed, files, windata, atoms, use_uhu, use_spn, convention="wannierberri",
              ws_tolerance=1e-3) -> TBModel:
    from .io.w90data import load_w90_matrices

    if convention == "postw90":
        from .postw90_model import load_postw90_model

        return load_postw90_model(seed, windata, use_uhu=use_uhu, use_spn=use_spn, atoms=atoms)

    d = load_w90_matrices(seed, use_uhu=use_uhu, use_spn=use_spn, ws_tolerance=ws_tolerance)
    _check_num_wann(windata, d["num_wann"], d["files"][0])
    _check_lattice(windata, d["real_lattice"], d["files"][0])
    _check_mp_grid(windata, d["mp_grid"], d["files"][0])
    spin = d.get("S_R") is not None
    full = d.get("CC_R") is not None
    prov = {
        "source": "chk",
        "files": [windata.path] + d["files"],
        "orbital_moment": "full (internal + external: A from .mmn, B and C from .uHu)" if full else (
            "internal + Berry-connection terms (A from .mmn; no .uHu: B and C missing)"
            if d.get("A_R") is not None else "internal (tight-binding) terms only"),
        "spin_moment": "from .spn" if spin else "none",
        "ws_distance": f"WannierBerri MDRS (use_ws_distance=true equivalent), tie tolerance {ws_tolerance} A",
    }
    A = d.get("A_R") if full else None  # without B and C, A alone is not a consistent moment
    return TBModel(real_lattice=d["real_lattice"], iRvec=d["iRvec"], H_R=d["H_R"],
                   centres_cart=d["centres_cart"], A_R=A, B_R=d.get("B_R") if full else None,
                   CC_R=d.get("CC_R"), S_R=d.get("S_R"), atoms=atoms, spinors=windata.spinors,
                   name=os.path.basename(seed), provenance=prov)


WS_IMAGES = ("mdrs", "wsvec")


def _images(files, windata, iRvec, mats, centres, lattice, ws_images, ws_tolerance, used, ndegen=None):
    """Wigner-Seitz images of the _hr/_tb matrices: our MDRS fold from the centres (default,
    needs mp_grid in the .win), or Wannier90's _wsvec.dat as it is. Returns (iRvec, mats, note).

    The fold is done only when the file's R vectors and degeneracies ``ndegen`` form a
    Wigner-Seitz supercell of mp_grid (:func:`~gme_wannier.io.tbfiles.fold_consistency`);
    otherwise (hand-written models, a wrong mp_grid) the R list is kept as in the file and the
    note says why."""
    from .io.tbfiles import fold_consistency, mdrs_fold

    nw = mats[0].shape[1]
    mp = windata.get_floats("mp_grid", 3)
    if mp is not None and (np.any(mp < 1) or np.any(mp != np.round(mp))):
        raise InputFileError(windata.path, f"mp_grid must be 3 positive integers, got {mp.tolist()}")
    bad = None if mp is None else fold_consistency(iRvec, ndegen, mp.astype(int))
    if ws_images == "mdrs" and mp is not None and bad is not None:
        return iRvec, mats, (f"none: R vectors kept as in the file, because they are not a Wigner-Seitz "
                             f"supercell of mp_grid = {mp.astype(int).tolist()} ({bad})")
    if ws_images == "mdrs" and mp is not None:
        iRvec, mats = mdrs_fold(iRvec, mats, centres, lattice, mp.astype(int), tolerance=ws_tolerance)
        return iRvec, mats, f"MDRS images recomputed from the centres (tie tolerance {ws_tolerance} A)"
    if files["wsvec"]:
        iRvec, mats = apply_wsvec(iRvec, mats, read_wsvec(files["wsvec"], nw), path=files["wsvec"])
        used.append(files["wsvec"])
        return iRvec, mats, "from _wsvec.dat (Wannier90's tie tolerance 1e-5 A)"
    return iRvec, mats, "none (no mp_grid in the .win and no _wsvec.dat)"


def _from_tb(seed, files, windata, atoms, ws_images="mdrs", ws_tolerance=1e-3) -> TBModel:
    if not files["tb"]:
        raise InputFileError(seed + "_tb.dat", "file not found")
    rs = read_tb(files["tb"])
    nw = rs.num_wann
    _check_num_wann(windata, nw, rs.path)
    _check_lattice(windata, rs.real_lattice, rs.path)
    used = [windata.path, rs.path]
    iR0 = np.nonzero(np.all(rs.iRvec == 0, axis=1))[0]
    if len(iR0) != 1:
        raise InputFileError(rs.path, "R = 0 is missing from the R-vector list")
    if rs.r_R is None:
        raise InputFileError(rs.path, "no position-operator block: use the _hr.dat source instead")
    # the centres are the diagonal of r(R = 0); the rest of r(R) is not used: without B and C
    # (.mmn/.uHu) the Berry-connection terms alone are not a consistent orbital moment
    centres = np.real(np.diagonal(rs.r_R[iR0[0]], axis1=0, axis2=1)).T.copy()
    iRvec, (H,), note = _images(files, windata, rs.iRvec, [rs.H_R], centres, rs.real_lattice, ws_images,
                                ws_tolerance, used, ndegen=rs.ndegen)
    prov = {"source": "tb", "files": used,
            "orbital_moment": "internal (tight-binding) terms only (centres from the position block)",
            "spin_moment": "none (no .spn with this source)", "ws_distance": note}
    return TBModel(real_lattice=rs.real_lattice, iRvec=iRvec, H_R=H, centres_cart=centres,
                   atoms=atoms, spinors=windata.spinors, name=os.path.basename(seed), provenance=prov)


def _from_hr(seed, files, windata, atoms, ws_images="mdrs", ws_tolerance=1e-3) -> TBModel:
    if not files["hr"]:
        raise InputFileError(seed + "_hr.dat", "file not found")
    rs = read_hr(files["hr"])
    nw = rs.num_wann
    _check_num_wann(windata, nw, rs.path)
    if windata.real_lattice is None:
        raise InputFileError(windata.path, "unit_cell_cart is needed with an _hr.dat file")
    used = [windata.path, rs.path]
    if files["centres"]:
        centres = read_centres(files["centres"], nw)
        used.append(files["centres"])
        centres_note = "Wannier centres from _centres.xyz"
    else:
        centres = np.zeros((nw, 3))
        centres_note = "no _centres.xyz: all Wannier functions placed at the cell origin"
    if files["centres"] or files["wsvec"]:
        images = ws_images if files["centres"] else "wsvec"  # an MDRS fold needs the centres
        iRvec, (H,), note = _images(files, windata, rs.iRvec, [rs.H_R], centres, windata.real_lattice, images,
                                    ws_tolerance, used, ndegen=rs.ndegen)
    else:
        iRvec, H, note = rs.iRvec, rs.H_R, "none (no _centres.xyz and no _wsvec.dat): R vectors as in the file"
    prov = {"source": "hr", "files": used,
            "orbital_moment": f"internal (tight-binding) terms only; {centres_note}",
            "spin_moment": "none (no .spn with this source)", "ws_distance": note}
    if not files["centres"]:
        prov["warning"] = (f"{seed}_centres.xyz not found: the Wannier centres are unknown, so they are put at the "
                           f"cell origin (this changes the tight-binding velocity and moment), Wigner-Seitz images: {note}; "
                           "write_xyz = true in the .win writes the file")
    return TBModel(real_lattice=windata.real_lattice, iRvec=iRvec, H_R=H, centres_cart=centres,
                   atoms=atoms, spinors=windata.spinors, name=os.path.basename(seed), provenance=prov)
