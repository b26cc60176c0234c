"""Cache of real-space matrices, so that a second run on the same files skips the readers.

Reading ``.chk``/``.mmn``/``.uHu`` through WannierBerri or a 20 MB ``_hr.dat.gz`` costs seconds
on every run (SrSi2 from .chk: 5.6 s; docs/performance.md); an npz of the finished matrices
loads in milliseconds.

* **Key**: the package version, the loader options, and for every input file its absolute
  path, size, modification time *and a content hash* (SHA-256 of the first and last 1 MiB and of
  1 MiB samples every 64 MiB in between), so a file replaced by another of the same size and
  mtime (a copy with ``cp -p``, a restored backup) gives a new key.
* **Integrity**: each entry stores the SHA-256 of its arrays; an entry that does not load or
  whose checksum differs (truncated by a full disk, a killed job, bit rot) is deleted and
  rebuilt from the input files, silently.
* **Size bound**: after each save the oldest entries (by last use) are removed until the folder
  holds at most ``$GME_WANNIER_CACHE_MAX_MB`` megabytes (default 2000).

Location: ``$GME_WANNIER_CACHE`` or ``~/.cache/gme_wannier`` (on clusters: a per-job folder on
local or scratch disk, see docs/hpc.md).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Optional

import numpy as np

from . import __version__

_ARRAYS = ("real_lattice", "iRvec", "H_R", "centres_cart", "A_R", "B_R", "CC_R", "S_R")
_SAMPLE = 1 << 20  # bytes hashed at the start, the end and every _STRIDE in between
_STRIDE = 64 << 20
DEFAULT_MAX_MB = 2000.0


def cache_dir() -> str:
    """Folder of the cache: ``$GME_WANNIER_CACHE`` or ``~/.cache/gme_wannier``."""
    return os.environ.get("GME_WANNIER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gme_wannier")


def max_bytes() -> float:
    """Size bound of the cache folder in bytes (``$GME_WANNIER_CACHE_MAX_MB``, default 2000 MB)."""
    try:
        return float(os.environ.get("GME_WANNIER_CACHE_MAX_MB", DEFAULT_MAX_MB)) * 1e6
    except ValueError:
        return DEFAULT_MAX_MB * 1e6


def content_hash(path: str) -> str:
    """SHA-256 of samples of a file: the first and last MiB and one MiB every 64 MiB (whole file
    when smaller than 2 MiB). Cheap on multi-GB ``.mmn``/``.uHu`` files."""
    h = hashlib.sha256()
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        if size <= 2 * _SAMPLE:
            h.update(f.read())
        else:
            for off in list(range(0, size - _SAMPLE, _STRIDE)) + [size - _SAMPLE]:
                f.seek(off)
                h.update(f.read(_SAMPLE))
    return h.hexdigest()


def cache_key(paths: list, options: dict) -> str:
    """Key of the model built from ``paths`` (input files) with loader ``options``."""
    h = hashlib.sha256()
    h.update(__version__.encode())
    h.update(json.dumps(options, sort_keys=True).encode())
    for p in sorted(set(paths)):
        st = os.stat(p)
        h.update(f"{os.path.abspath(p)}|{st.st_size}|{st.st_mtime_ns}|".encode())
        if os.path.isfile(p):
            h.update(content_hash(p).encode())
    return h.hexdigest()[:24]


def _checksum(arrays: dict, meta: str) -> str:
    h = hashlib.sha256(meta.encode())
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def load(key: str) -> Optional[dict]:
    """The arrays and ``meta`` of entry ``key``, or None (missing, or corrupt: then deleted)."""
    path = os.path.join(cache_dir(), key + ".npz")
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as d:
            out = {k: d[k] for k in _ARRAYS if k in d.files}
            meta = str(d["meta"])
            good = str(d["checksum"]) == _checksum(out, meta)
        if good:
            out["meta"] = json.loads(meta)
            os.utime(path)  # last use, for the size bound
            return out
    except Exception:  # noqa: BLE001 - BadZipFile, EOFError, OSError, KeyError, ValueError...
        pass
    try:
        os.remove(path)  # corrupt: rebuilt by the caller
    except OSError:
        pass
    return None


def save(key: str, model) -> None:
    """Store the model's arrays under ``key`` (atomically), then enforce the size bound."""
    d = cache_dir()
    try:
        os.makedirs(d, exist_ok=True)
        arrays = {k: np.asarray(getattr(model, k)) for k in _ARRAYS if getattr(model, k) is not None}
        meta = json.dumps({"spinors": model.spinors, "name": model.name, "provenance": model.provenance})
        tmp = os.path.join(d, f".{key}.{os.getpid()}.npz")
        np.savez(tmp, meta=np.array(meta), checksum=np.array(_checksum(arrays, meta)), **arrays)
        os.replace(tmp, os.path.join(d, key + ".npz"))
        prune(keep=key)
    except OSError:
        pass  # a read-only or full disk must not stop a calculation


def prune(keep: Optional[str] = None) -> None:
    """Remove the least recently used entries until the folder is within :func:`max_bytes`
    (the entry ``keep`` is never removed)."""
    d = cache_dir()
    entries = []
    for name in os.listdir(d):
        if name.endswith(".npz") and not name.startswith("."):
            p = os.path.join(d, name)
            try:
                st = os.stat(p)
            except OSError:
                continue
            entries.append((st.st_mtime, st.st_size, p))
    total = sum(e[1] for e in entries)
    limit = max_bytes()
    for _, size, p in sorted(entries):
        if total <= limit:
            break
        if os.path.basename(p) == f"{keep}.npz":
            continue
        try:
            os.remove(p)
            total -= size
        except OSError:
            pass
