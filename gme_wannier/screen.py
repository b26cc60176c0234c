"""Screening many materials: one row and one JSON-lines record per material, resumable.

Each material is evaluated at its own Fermi level (``DIR/SEED@N`` gives N electrons in its
Wannier bands, see :mod:`gme_wannier.fermi`; otherwise ``fermi_energy`` of its ``.win``), or
at offsets from it (``--efermi-relative``), or at the absolute levels given. Spins are counted
per material (spinors once, spinless models twice) and the table says which. A material that
fails gets a row with its error; none is skipped silently.

Records: ``TABLE.jsonl`` beside ``TABLE.csv``, one JSON object per line with ``material``,
``status`` ("ok" or "failed"), ``settings_key`` (hash of the options that change the numbers),
the row, and the curves ``E_F_eV``, ``alpha_iso``, ``rho_rad_per_mm``. A rerun with the same
settings reuses the "ok" records and recomputes only the others.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Optional

import numpy as np

__all__ = ["parse_seed", "settings_key", "records_path", "read_records", "record_text", "result_record",
           "sort_rows", "SORT_KEYS", "screen_one"]

#: options that do not change the numbers (they are left out of the settings key)
_NOT_PHYSICS = {"seeds", "table", "sort", "quiet", "progress", "checkpoint", "checkpoint_every", "chunk_size",
                "config", "command", "no_cache", "output", "plot", "csv", "w90_dat", "argv"}
SORT_KEYS = {"iso": "alpha_iso", "rho": "rho_rad_per_mm"}


def parse_seed(spec: str) -> tuple[str, Optional[float]]:
    """``DIR/SEED@N`` -> (``DIR/SEED``, N electrons in the Wannier bands); ``DIR/SEED`` -> (it, None)."""
    from .io.errors import GMEInputError

    if "@" not in spec:
        return spec, None
    seed, n = spec.rsplit("@", 1)
    try:
        return seed, float(n)
    except ValueError:
        raise GMEInputError(f"{spec}: expected DIR/SEED@N with N the number of electrons in the Wannier "
                            f"bands, got '@{n}'") from None


def settings_key(o: dict) -> str:
    """Hash of the options that change the numbers (a record made with others is recomputed)."""
    from . import __version__

    keep = {k: v for k, v in sorted(o.items()) if k not in _NOT_PHYSICS}
    text = json.dumps({"version": __version__, **keep}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def records_path(table: str) -> str:
    """``gme-screen.csv`` -> ``gme-screen.jsonl``."""
    root, ext = os.path.splitext(table)
    return (root if ext.lower() == ".csv" else table) + ".jsonl"


def read_records(path: str) -> dict:
    """material -> last record of an existing JSON-lines file ({} if none; broken lines ignored:
    the run that wrote them was interrupted, and those materials are recomputed)."""
    out: dict = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and "material" in rec:
                out[rec["material"]] = rec
    return out


def record_text(rec: dict) -> str:
    """One JSON line (no float noise beyond repr)."""
    return json.dumps(rec, sort_keys=False, default=float) + "\n"


def result_record(spec: str, key: str, row: dict, result=None) -> dict:
    """The JSON-lines record of one material (``result`` None for a failed row)."""
    rec = {"material": spec, "status": "failed" if row.get("error") else "ok", "settings_key": key, "row": row}
    if result is not None:
        ax = row.get("rho_axis", "z")
        rec["E_F_eV"] = [round(float(x), 10) for x in result.fermi_energies]
        rec["alpha_iso"] = [float(x) for x in result.decomposition("total")["iso"]]
        rec["rho_rad_per_mm"] = [float(x) for x in result.rotatory_power("total")["z" if ax == "any" else ax]]
        rec["spin_degeneracy"] = int(result.spin_degeneracy)
        rec["material_E_F_eV"] = (result.info.get("fermi_level") or {}).get("material_E_F_eV")
    return rec


def sort_rows(rows: list, by: Optional[str]) -> list:
    """Rows by decreasing |alpha_iso| (``by="iso"``) or |rho| (``"rho"``); failed rows last, in order."""
    if not by:
        return rows
    col = SORT_KEYS[by]
    ok = [r for r in rows if not r.get("error")]
    bad = [r for r in rows if r.get("error")]
    ok.sort(key=lambda r: -abs(float(r[col])))
    for rank, r in enumerate(ok, 1):
        r["rank"] = rank
    return ok + bad


def pick_level(ef: np.ndarray, iso: np.ndarray, center: Optional[float], window: float) -> int:
    """Index of the largest |alpha_iso| within ``center +- window`` (all levels if window <= 0;
    ``center`` defaults to the middle of the grid)."""
    c = float(ef[len(ef) // 2]) if center is None else float(center)
    sel = np.ones(len(ef), bool) if window <= 0 else (np.abs(ef - c) <= window + 1e-12)
    if not sel.any():
        sel[int(np.argmin(np.abs(ef - c)))] = True
    return int(np.argmax(np.where(sel, np.abs(iso), -1)))


def screen_one(spec: str, o: dict, comm, key: str, old: Optional[dict], run_one) -> tuple[dict, dict]:
    """(row, record) of one material: reused from a complete record with the same settings,
    else computed with ``run_one(seed, options, comm, progress)`` (the CLI's load + compute);
    a failure becomes a row with its error (never skipped silently)."""
    from .report import screen_row

    if old and old.get("status") == "ok" and old.get("settings_key") == key:
        return dict(old["row"], resumed=True), old
    try:
        seed, n = parse_seed(spec)
        model, result = run_one(seed, {**o, "num_electrons": n} if n is not None else o, comm, progress=False)
        row = screen_row(spec, model, result, window=float(o.get("window") or 0.0))
        return row, result_record(spec, key, row, result)
    except Exception as exc:  # noqa: BLE001 - one failing material must not stop the others
        row = {"material": spec, "error": f"{type(exc).__name__}: {exc}"}
        return row, result_record(spec, key, row)
