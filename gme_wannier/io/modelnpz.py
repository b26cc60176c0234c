"""Readers (and the writer) of real-space model files in npz form. Plain data only, no physics.

Two layouts:

* the package's own model file (``gme-wannier export``): one ``.npz`` with the finished
  :class:`~gme_wannier.model.TBModel` arrays ``real_lattice`` (3, 3) Angstrom rows,
  ``iRvec`` (nR, 3) int, ``H_R`` (nR, nw, nw) complex eV, ``centres_cart`` (nw, 3) Angstrom,
  optional ``A_R`` (Angstrom), ``B_R`` (eV Angstrom), ``CC_R`` (eV Angstrom^2), ``S_R``
  (dimensionless), each (nR, nw, nw, 3) complex, and ``meta``, a JSON string (``spinors``,
  ``name``, ``provenance``, ``units``). Image weights are folded into the matrices.
* a WannierBerri ``System_R.save_npz`` folder: ``real_lattice.npz``, ``iRvec.npz``,
  ``wannier_centers_cart.npz``, ``num_wann.npz`` and ``_XX_R_{Ham,AA,BB,CC,SS}.npz``; the
  matrices are ``[m, n, iR, ...]`` in the legacy layout and ``[iR, m, n, ...]`` in the new one.
  Both are convention I (WannierBerri's ``use_wcc_phase``), the package's convention.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Optional

import numpy as np

from .errors import InputFileError

__all__ = ["MODEL_ARRAYS", "check_model_arrays", "read_model_npz", "model_npz_arrays", "write_model_npz", "npz_summary",
           "read_wannierberri_folder", "wannierberri_summary", "is_wannierberri_folder"]

#: array names of the package's own model file, in the order of TBModel's fields
MODEL_ARRAYS = ("real_lattice", "iRvec", "H_R", "centres_cart", "A_R", "B_R", "CC_R", "S_R")
_UNITS = {"real_lattice": "Angstrom (rows)", "iRvec": "integers: R = iRvec @ real_lattice", "H_R": "eV",
          "centres_cart": "Angstrom", "A_R": "Angstrom", "B_R": "eV Angstrom", "CC_R": "eV Angstrom^2",
          "S_R": "dimensionless (Pauli matrices)"}
_WB_MATRICES = {"Ham": "H_R", "AA": "A_R", "BB": "B_R", "CC": "CC_R", "SS": "S_R"}


def _open_npz(path: str):
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputFileError(path, "file not found") from None
    except EOFError:
        raise InputFileError(path, "is empty: not an npz file (write one with 'gme-wannier export')") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputFileError(path, f"not a readable npz file ({exc})") from None


def _get(d, name: str, path: str) -> np.ndarray:
    """Array ``name`` of an open npz, as a numeric (or str for ``meta``) array."""
    try:
        a = np.array(d[name])
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:  # object arrays, corrupt members
        raise InputFileError(path, f"array '{name}' cannot be read ({exc})") from None
    if name != "meta" and not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise InputFileError(path, f"array '{name}' has dtype {a.dtype}, expected numbers: not a model file")
    return a


def check_model_arrays(arrays: dict, path: str) -> None:
    """Shapes, integrality and finiteness of the arrays of a model file (either layout).

    Parameters
    ----------
    arrays : dict  ``real_lattice`` (3, 3), ``iRvec`` (nR, 3), ``H_R`` (nR, nw, nw) and optional
        ``centres_cart`` (nw, 3), ``A_R``, ``B_R``, ``CC_R``, ``S_R`` (nR, nw, nw, 3)
    path : str  the file (or folder), for the messages

    Raises
    ------
    InputFileError  naming the array and what is wrong with it
    """
    lat, iR, H = arrays["real_lattice"], arrays["iRvec"], arrays["H_R"]
    if np.shape(lat) != (3, 3):
        raise InputFileError(path, f"real_lattice has shape {np.shape(lat)}, expected (3, 3)")
    if np.ndim(iR) != 2 or np.shape(iR)[1] != 3 or len(iR) == 0:
        raise InputFileError(path, f"iRvec has shape {np.shape(iR)}, expected (nR, 3)")
    if not np.all(np.isfinite(iR)) or np.any(np.asarray(iR) != np.round(iR)):
        raise InputFileError(path, "iRvec holds non-integer lattice vectors: the file is corrupt")
    nR = len(iR)
    if np.ndim(H) != 3 or H.shape[0] != nR or H.shape[1] != H.shape[2] or H.shape[1] == 0:
        raise InputFileError(path, f"H_R has shape {np.shape(H)}, expected ({nR}, nw, nw) for the {nR} R vectors "
                                   "of iRvec")
    nw = H.shape[1]
    shapes = {"centres_cart": (nw, 3), **{k: (nR, nw, nw, 3) for k in ("A_R", "B_R", "CC_R", "S_R")}}
    for name, shape in shapes.items():
        if arrays.get(name) is not None and np.shape(arrays[name]) != shape:
            raise InputFileError(path, f"{name} has shape {np.shape(arrays[name])}, expected {shape} "
                                       f"(num_wann = {nw}, {nR} R vectors)")
    for name in ("real_lattice", "H_R", *shapes):
        a = arrays.get(name)
        if a is not None and not np.all(np.isfinite(a)):
            n = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
            raise InputFileError(path, f"{name}: {n} entries are NaN or infinite: the file is corrupt")
    if abs(np.linalg.det(lat)) < 1e-8:
        raise InputFileError(path, "real_lattice: the lattice vectors are linearly dependent")


def npz_summary(path: str) -> dict:
    """Which arrays an own-format model file holds, without reading them.

    Returns dict with ``arrays`` (list of str), ``full_orbital`` and ``spin`` (bool).
    """
    with _open_npz(path) as d:
        names = list(d.files)
    return {"arrays": names, "full_orbital": all(k in names for k in ("A_R", "B_R", "CC_R")),
            "spin": "S_R" in names}


def read_model_npz(path: str) -> dict:
    """Read the package's own model file.

    Parameters
    ----------
    path : str
        The ``.npz`` file.

    Returns
    -------
    dict
        The arrays of :data:`MODEL_ARRAYS` that are present (numpy arrays, units as in the
        module docstring) and ``meta`` (dict decoded from the JSON string; empty without one).

    Raises
    ------
    InputFileError
        Not an npz, a required array missing, or ``meta`` not JSON.
    """
    with _open_npz(path) as d:
        missing = [k for k in ("real_lattice", "iRvec", "H_R") if k not in d.files]
        if missing:
            raise InputFileError(path, f"not a gme_wannier model file: arrays {', '.join(missing)} missing "
                                       f"(it holds {', '.join(d.files) or 'nothing'}); write one with "
                                       "'gme-wannier export'")
        out = {k: _get(d, k, path) for k in MODEL_ARRAYS if k in d.files}
        meta_text = str(_get(d, "meta", path)) if "meta" in d.files else "{}"
    check_model_arrays(out, path)
    try:
        out["meta"] = json.loads(meta_text)
    except json.JSONDecodeError as exc:
        raise InputFileError(path, f"the 'meta' entry is not JSON ({exc})") from None
    if not isinstance(out["meta"], dict):
        raise InputFileError(path, "the 'meta' entry must be a JSON object")
    return out


def model_npz_arrays(model) -> dict:
    """The arrays and the ``meta`` JSON string of a model's own-format file.

    model : TBModel.  Returns dict name -> ndarray (``meta`` a 0-d str array).
    """
    arrays = {k: np.asarray(getattr(model, k)) for k in MODEL_ARRAYS if getattr(model, k) is not None}
    meta = {"format": "gme_wannier model file", "spinors": bool(model.spinors), "name": model.name,
            "provenance": model.provenance, "units": {k: _UNITS[k] for k in arrays}}
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


def write_model_npz(path: str, model, compressed: bool = True) -> None:
    """Write ``model`` (TBModel) to ``path`` atomically (``.npz``; compressed by default)."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, f".{os.path.basename(path)}.{os.getpid()}.tmp.npz")
    (np.savez_compressed if compressed else np.savez)(tmp, **model_npz_arrays(model))
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- WannierBerri folder
def is_wannierberri_folder(path: Optional[str]) -> bool:
    """True when ``path`` is a directory with ``_XX_R_Ham.npz`` and ``real_lattice.npz``."""
    return bool(path) and os.path.isdir(path) and all(
        os.path.exists(os.path.join(path, f)) for f in ("_XX_R_Ham.npz", "real_lattice.npz", "iRvec.npz"))


def wannierberri_summary(path: str) -> dict:
    """Which matrices a WannierBerri folder holds: ``arrays``, ``full_orbital``, ``spin``."""
    names = [k for k in _WB_MATRICES if os.path.exists(os.path.join(path, f"_XX_R_{k}.npz"))]
    return {"arrays": names, "full_orbital": all(k in names for k in ("AA", "BB", "CC")), "spin": "SS" in names}


def _wb_array(folder: str, name: str) -> np.ndarray:
    with _open_npz(os.path.join(folder, name + ".npz")) as d:
        if "arr_0" not in d.files:
            raise InputFileError(os.path.join(folder, name + ".npz"), "no 'arr_0' array (not WannierBerri's layout)")
        return _get(d, "arr_0", os.path.join(folder, name + ".npz"))


def _wb_irvec(folder: str) -> tuple[np.ndarray, bool]:
    """(iRvec (nR, 3) int, legacy layout?)."""
    path = os.path.join(folder, "iRvec.npz")
    with _open_npz(path) as d:
        for key, legacy in (("arr_0", True), ("iRvec", False)):
            if key in d.files:
                a = _get(d, key, path)
                if a.size % 3 or not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
                    raise InputFileError(path, f"'{key}' is not a list of integer lattice vectors (nR, 3)")
                return a.astype(int).reshape(-1, 3), legacy
    raise InputFileError(path, "neither 'arr_0' nor 'iRvec' inside: not a WannierBerri System_R folder")


def read_wannierberri_folder(folder: str) -> dict:
    """Read a WannierBerri ``System_R.save_npz`` folder with numpy (WannierBerri not needed).

    Returns
    -------
    dict
        ``real_lattice`` (3, 3) Angstrom rows, ``iRvec`` (nR, 3) int, ``centres_cart``
        (nw, 3) Angstrom and those of ``H_R`` (nR, nw, nw) eV, ``A_R``, ``B_R``, ``CC_R``, ``S_R``
        (nR, nw, nw, 3) present in the folder, in TBModel's index order; ``files`` (list of str).
    """
    if not is_wannierberri_folder(folder):
        raise InputFileError(folder, "not a WannierBerri System_R folder (needs _XX_R_Ham.npz, "
                                     "real_lattice.npz and iRvec.npz)")
    iRvec, legacy = _wb_irvec(folder)
    nR = len(iRvec)
    lat = _wb_array(folder, "real_lattice")
    if lat.size != 9:
        raise InputFileError(os.path.join(folder, "real_lattice.npz"), f"holds {lat.size} numbers, expected 3x3")
    out = {"real_lattice": lat.reshape(3, 3).astype(float), "iRvec": iRvec, "files": []}
    nw = None
    for wb, ours in _WB_MATRICES.items():
        f = os.path.join(folder, f"_XX_R_{wb}.npz")
        if not os.path.exists(f):
            continue
        a = _wb_array(folder, f"_XX_R_{wb}")
        if legacy and a.ndim >= 3 and a.shape[2] == nR:
            a = np.moveaxis(a, 2, 0)  # [m, n, iR, ...] -> [iR, m, n, ...]
        if a.ndim < 3 or a.shape[0] != nR or a.shape[1] != a.shape[2]:
            raise InputFileError(f, f"shape {a.shape} does not fit {nR} R vectors")
        nw = a.shape[1] if nw is None else nw
        out[ours] = a.astype(complex)
        out["files"].append(f)
    c = os.path.join(folder, "wannier_centers_cart.npz")
    out["centres_cart"] = _wb_array(folder, "wannier_centers_cart") if os.path.exists(c) else np.zeros((nw, 3))
    if out["centres_cart"].size == nw * 3:
        out["centres_cart"] = out["centres_cart"].reshape(nw, 3)
    check_model_arrays(out, folder)
    return out
