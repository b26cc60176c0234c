"""Cache of real-space matrices, so that a second run on the same files skips the readers.

Reading ``.chk``/``.mmn``/``.uHu`` through WannierBerri or a 20 MB ``_hr.dat.gz`` costs seconds
on every run (SrSi2 from .chk: 5.6 s; docs/performance.md); an npz of the finished matrices
loads in milliseconds. The key hashes the absolute paths, sizes and modification times of the
input files, the loader options and the package version; a changed input file gives a new key.
Location: ``$GME_WANNIER_CACHE`` or ``~/.cache/gme_wannier``.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Optional

import numpy as np

from . import __version__

_ARRAYS = ("real_lattice", "iRvec", "H_R", "centres_cart", "A_R", "B_R", "CC_R", "S_R")


def cache_dir() -> str:
    return os.environ.get("GME_WANNIER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gme_wannier")


def cache_key(paths: list, options: dict) -> str:
    h = hashlib.sha256()
    h.update(__version__.encode())
    h.update(json.dumps(options, sort_keys=True).encode())
    for p in sorted(set(paths)):
        st = os.stat(p)
        h.update(f"{os.path.abspath(p)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def load(key: str) -> Optional[dict]:
    path = os.path.join(cache_dir(), key + ".npz")
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as d:
            out = {k: d[k] for k in _ARRAYS if k in d.files}
            out["meta"] = json.loads(str(d["meta"]))
        return out
    except (OSError, ValueError, KeyError):
        return None  # a broken cache entry is rebuilt


def save(key: str, model) -> None:
    d = cache_dir()
    try:
        os.makedirs(d, exist_ok=True)
        arrays = {k: np.asarray(getattr(model, k)) for k in _ARRAYS if getattr(model, k) is not None}
        meta = json.dumps({"spinors": model.spinors, "name": model.name, "provenance": model.provenance})
        tmp = os.path.join(d, f".{key}.{os.getpid()}.npz")
        np.savez(tmp, meta=np.array(meta), **arrays)
        os.replace(tmp, os.path.join(d, key + ".npz"))
    except OSError:
        pass  # a read-only home must not stop a calculation
