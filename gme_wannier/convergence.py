"""Error estimates of k-point sums and the automatic convergence to a requested accuracy.

With a tolerance (``--tolerance``), :func:`converge` runs symmetric uniform meshes whose
spacing shrinks by ``growth`` (1.5) each time, and stops when :func:`mesh_error` falls below
the tolerance times max |K_total|. Without one, a single mesh carries the estimate below.

For a uniform mesh N the estimate is the difference between the sum on N and the sum on the
coarser mesh N/f contained in it (f = 2 or 3, the same points with f^3 times their weight: it
costs nothing beyond the sum itself), after the projection on the symmetry-allowed form:
``err_ij(E_F) = |K_N - K_{N/f}|_ij``. That is the error of the coarser sum; for the finer one it
is an upper estimate wherever the sum converges (it overestimates it by a large factor once the
smearing is resolved) and an estimate of the right size where the sum is still erratic. When no
f divides the mesh the coarser mesh is evaluated separately (about 1/8 extra cost). See
docs/convergence.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

__all__ = ["submesh_factor", "submesh_weights", "convergence_record", "ConvergenceOptions", "mesh_sequence",
           "mesh_error", "converge", "forecast", "avoid_special", "level_envelope", "WARN_ABOVE", "CONVERGED_DEFAULT",
           "ENVELOPE_WIDTHS", "ENVELOPE_MIN_EV", "guard_order"]

WARN_ABOVE = 0.10  # a warning line when the estimate exceeds 10 % of max |alpha_total|
CONVERGED_DEFAULT = 0.01  # without a tolerance, "converged" means an estimate below 1 %
# the error bar of a Fermi level is the largest estimate within ENVELOPE_WIDTHS smearing widths
# (k_B T), and at least ENVELOPE_MIN_EV, of it (level_envelope)
ENVELOPE_WIDTHS = 4.0
ENVELOPE_MIN_EV = 0.03


def submesh_factor(mesh: Sequence[int], shift: Sequence[int] = (0, 0, 0)) -> Optional[int]:
    """Smallest f in (2, 3) such that the mesh N/f is made of points of the mesh N, or None.

    Gamma-centred meshes need f to divide every N_a; half-step shifted ones also need f odd
    (the shifted N/f points (i + 1/2) f / N are on the shifted N mesh only for odd f)."""
    for f in (2, 3):
        if all(n % f == 0 and n // f >= 1 for n in mesh) and (f % 2 == 1 or not any(shift)):
            return f
    return None


def submesh_weights(k_red: np.ndarray, weights: np.ndarray, mesh: Sequence[int], f: int,
                    shift: Sequence[int] = (0, 0, 0)) -> np.ndarray:
    """Weights of the points of the coarser mesh N/f among ``k_red`` (zero elsewhere).

    k_red : float (nk, 3) reduced points of the mesh N (irreducible or all), weights : (nk,)
    their weights. A point of the coarse mesh has the same star in both meshes, so its weight
    there is f^3 times its weight in N. Returns float (nk,), summing to 1 like ``weights``."""
    N = np.asarray(mesh, dtype=float)
    s = 0.5 * np.asarray(shift, dtype=float)
    idx = np.rint(np.asarray(k_red) * N - s).astype(np.int64)  # integer address on mesh N
    off = (np.asarray(shift, dtype=np.int64) * (f - 1)) // 2  # shifted: the middle one of f
    on = np.all(np.mod(idx - off, f) == 0, axis=1)
    return np.where(on, f ** 3 * np.asarray(weights, dtype=float), 0.0)


def convergence_record(K_total: np.ndarray, K_error: np.ndarray, tolerance: Optional[float],
                       n_kpoints: int, method: str, converged: Optional[bool] = None) -> dict:
    """The ``"convergence"`` block of a result (without ``alpha_error``, kept as an array).

    K_total, K_error : float (nE, 3, 3) Ampere, the projected total and its error per component.
    estimated_error = max(K_error) / max |K_total| (over components and Fermi levels)."""
    scale = float(np.abs(K_total).max())
    emax = float(np.max(K_error)) if K_error.size else 0.0
    est = emax / scale if scale > 0 else (0.0 if emax == 0 else float("inf"))
    target = tolerance if tolerance is not None else CONVERGED_DEFAULT
    return {"tolerance": tolerance, "estimated_error": est,
            "converged": bool(est <= target) if converged is None else bool(converged),
            "converged_means": (f"estimated_error <= tolerance ({tolerance})" if tolerance is not None else
                                f"estimated_error <= {CONVERGED_DEFAULT} (no --tolerance given)"),
            "n_kpoints_evaluated": int(n_kpoints), "method": method}


def level_envelope(K_error: np.ndarray, fermi_energies: Sequence[float], width_eV: float) -> np.ndarray:
    """The error bars (nE, 3, 3) of the Fermi levels: at each level and component, the largest
    estimate among the levels within max(ENVELOPE_WIDTHS * width, ENVELOPE_MIN_EV) of it.

    K_error : float (nE, 3, 3), the estimate per level (any unit; inf stays inf);
    fermi_energies : (nE,) eV, in any order; width_eV : the smearing width (k_B T), 0 at T = 0.

    The change between two meshes is a sampling error whose sign and shape vary with E_F on the
    energy scale of one mesh step across the Fermi surface (|v| h), while its size varies on the
    scale of the smearing. The change can therefore pass through zero at a level where the error
    of the finer mesh does not; the largest change nearby measures the size of the error there.
    Levels further apart are left alone: their errors come from other parts of the Fermi surface
    (a level in a gap keeps its zero). The maximum over all levels is unchanged, and so is the
    estimate the stopping rule uses.
    Measured in docs/convergence.md ("Error bars per Fermi level")."""
    err = np.asarray(K_error, dtype=float)
    ef = np.asarray(fermi_energies, dtype=float)
    if err.shape[0] < 2:
        return err.copy()
    order = np.argsort(ef, kind="stable")
    e_sorted = ef[order]
    window = max(ENVELOPE_WIDTHS * float(width_eV), ENVELOPE_MIN_EV)
    lo = np.searchsorted(e_sorted, e_sorted - window - 1e-9, side="left")
    hi = np.searchsorted(e_sorted, e_sorted + window + 1e-9, side="right")
    srt = err[order]
    out = np.empty_like(srt)
    for i in range(len(ef)):
        out[i] = srt[lo[i]:hi[i]].max(axis=0)
    res = np.empty_like(out)
    res[order] = out
    return res


# --------------------------------------------------------------------------------------
# automatic convergence: a sequence of symmetric uniform meshes
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvergenceOptions:
    """Stopping rules of :func:`converge`.

    tolerance : float, relative error target (of max |alpha_total| over components and E_F).
    initial_spacing : float, 1/Angstrom, spacing of the first mesh.
    growth : float > 1, ratio of the spacings of successive meshes.
    max_kpoints : int or None, stop before a mesh would bring the evaluated k-points beyond it.
    max_time : float or None, seconds; stop before a mesh would end after it (predicted from
        the cost per k-point of the previous mesh).
    order : float or None, the algebraic order h^order that the guard term of :func:`mesh_error`
        and the forecast assume at the slowest; None: by kernel (:func:`guard_order`), 2 for the
        smeared sums, 1 for linear tetrahedra at T -> 0.
    """

    tolerance: float = 0.01
    initial_spacing: float = 0.04
    growth: float = 1.5
    max_kpoints: Optional[int] = None
    max_time: Optional[float] = None
    order: Optional[float] = None

    def __post_init__(self):
        from .io.errors import GMEInputError

        if not (np.isfinite(self.tolerance) and 0 < self.tolerance < 1):
            raise GMEInputError("--tolerance: must be a number between 0 and 1 (relative error, e.g. 0.01)")
        if self.max_kpoints is not None and not (int(self.max_kpoints) == self.max_kpoints and self.max_kpoints > 0):
            raise GMEInputError("--max-kpoints: must be a positive integer")
        if self.max_time is not None and not (np.isfinite(self.max_time) and self.max_time > 0):
            raise GMEInputError("--max-time: must be a positive number of seconds")
        if not (np.isfinite(self.growth) and self.growth > 1.05) or not (self.initial_spacing > 0):
            raise GMEInputError("convergence: growth must be > 1.05 and initial_spacing > 0")
        if self.order is not None and not (np.isfinite(self.order) and 0.5 <= self.order <= 4):
            raise GMEInputError("convergence: order must be between 0.5 and 4")

    @property
    def power(self) -> float:
        """The order the guard and the forecast use: ``order``, or 2 when it is left to the kernel
        and not resolved (:func:`guard_order`; :func:`gme_wannier.calculate.compute` resolves it)."""
        return self.order if self.order is not None else 2.0

    def for_kernel(self, kernel: str) -> "ConvergenceOptions":
        """These options with ``order`` resolved for ``kernel`` when it was left as None."""
        from dataclasses import replace

        return self if self.order is not None else replace(self, order=guard_order(kernel))


def guard_order(kernel: str) -> float:
    """The order assumed by the guard term for a kernel: 1 for "tetra" (linear tetrahedra at
    T -> 0 converge erratically: on Te_tut24 the error fell only from 1.71 % to 1.56 % between
    311x311x203 and 467x467x301, against 1051x1051x683; docs/convergence.md), 2 otherwise (the
    smeared sums converge faster than h^2 once the smearing is resolved)."""
    return 1.0 if kernel == "tetra" else 2.0


def mesh_sequence(recip_lattice: np.ndarray, opts: ConvergenceOptions, n_max: int = 60):
    """The meshes N_k, a = round(|b_a| r^k / spacing), moved up to N = +-1 (mod 6) by
    :func:`avoid_special` (at least 5, strictly growing): axes of equal reciprocal length
    (related by symmetry) get equal N. Yields tuples of 3 ints."""
    lengths = np.linalg.norm(np.asarray(recip_lattice, dtype=float), axis=1)
    prev = np.zeros(3, dtype=int)
    for k in range(n_max):
        n = np.maximum(5, np.rint(lengths * opts.growth ** k / opts.initial_spacing)).astype(int)
        n = np.array([avoid_special(int(x)) for x in np.maximum(n, prev + 1)])
        prev = n
        yield tuple(int(x) for x in n)


def avoid_special(n: int) -> int:
    """The smallest N' >= n with N' = +-1 (mod 6): such a Gamma-centred mesh holds no point with a
    reduced coordinate 1/2, 1/3 or 2/3, where band touchings of high symmetry sit (Te's H =
    (1/3, 1/3, 1/2)): sampling a touching exactly puts the 1/|k| orbital moment of its bands on
    one point and throws the sum off (measured on Te_tut24 at 300 K: 309x309x200, holding H, is
    10 % to 50 % off the neighbouring meshes; docs/convergence.md)."""
    while n % 6 not in (1, 5):
        n += 1
    return n


def mesh_error(K_seq: list, growth: float, order: float = 2.0) -> np.ndarray:
    """Error estimate (nE, 3, 3) of the last of the projected totals ``K_seq`` (>= 2 meshes):
    max(|K_k - K_{k-1}|, |K_{k-1} - K_{k-2}| / r^order) per component. The first term is the
    error of the previous mesh (an upper estimate once the sums converge like h^2 or faster);
    the second, the h^order prediction from the step before, guards against an accidental
    agreement of the last two meshes at some Fermi level or component, and against a mesh
    that improves on the one before much less than the sequence so far (T -> 0, order 1)."""
    d = np.abs(K_seq[-1] - K_seq[-2])
    if len(K_seq) >= 3:
        d = np.maximum(d, np.abs(K_seq[-2] - K_seq[-3]) / growth ** order)
    return d


def converge(run_mesh, total_K, opts: ConvergenceOptions, recip_lattice: np.ndarray, *, min_meshes: int = 3,
             say=None) -> tuple[dict, np.ndarray, dict]:
    """Run meshes of :func:`mesh_sequence` until the error estimate meets ``opts.tolerance``.

    run_mesh : callable mesh -> (raw sums, mesh record), one fixed sampling of that mesh;
    total_K : callable raw -> float (nE, 3, 3), the projected K_total (Ampere) of raw sums;
    min_meshes : int, meshes before the estimate is trusted (3: both terms of :func:`mesh_error`).
    say : callable(str) or None, one line per finished mesh (progress on rank 0).

    Returns the raw sums of the last mesh, its error estimate (nE, 3, 3) Ampere and the record:
    meshes with their k-points, seconds and estimate, ``converged`` and ``stop_reason``.
    """
    t0 = time.perf_counter()
    K_seq, meshes = [], []
    raw = err = None
    n_total, reason = 0, None
    for mesh in mesh_sequence(recip_lattice, opts):
        if meshes:
            last = meshes[-1]
            pred_n = last["n_kpoints"] * np.prod(mesh) / np.prod(last["mesh"])
            if opts.max_kpoints is not None and n_total + pred_n > opts.max_kpoints:
                reason = "max_kpoints"
                break
            elapsed = time.perf_counter() - t0
            if opts.max_time is not None and elapsed + last["seconds"] * pred_n / max(last["n_kpoints"], 1) \
                    > opts.max_time:
                reason = "max_time"
                break
        t1 = time.perf_counter()
        raw_k, rec = run_mesh(mesh)
        K_seq.append(total_K(raw_k))
        raw = raw_k
        n = int(rec.get("n_evaluated", np.prod(mesh)))
        n_total += n
        entry = {"mesh": list(mesh), "n_kpoints": n, "seconds": time.perf_counter() - t1, "estimated_error": None}
        if len(K_seq) >= 2:
            err = mesh_error(K_seq, opts.growth, opts.power)
            scale = float(np.abs(K_seq[-1]).max())
            entry["estimated_error"] = float(err.max() / scale) if scale > 0 else (0.0 if err.max() == 0 else np.inf)
        meshes.append(entry)
        if say is not None:
            e = entry["estimated_error"]
            say(f"mesh {'x'.join(map(str, mesh))}: {n} k-points, {entry['seconds']:.1f} s, estimated error "
                + ("-" if e is None else f"{100 * e:.2f} %"))
        if len(K_seq) >= min_meshes and entry["estimated_error"] <= opts.tolerance:
            reason = "converged"
            break
    if err is None:  # stopped by a limit before two meshes: no estimate
        err = np.full_like(K_seq[-1], np.inf) if K_seq else None
    record = {"type": "uniform-sequence", "growth": opts.growth, "initial_spacing_inv_A": opts.initial_spacing,
              "meshes": meshes, "mesh": meshes[-1]["mesh"] if meshes else None,
              "n_evaluated": int(meshes[-1]["n_kpoints"]) if meshes else 0, "n_kpoints_total": int(n_total),
              "converged": reason == "converged", "stop_reason": reason}
    if reason != "converged":
        record["forecast"] = forecast(meshes, opts, recip_lattice)
        if say is not None:
            say(record["forecast"]["text"])
    return raw, err, record


def forecast(meshes: list, opts: ConvergenceOptions, recip_lattice: np.ndarray, max_more: int = 12) -> dict:
    """What reaching the tolerance would take after a sequence stopped early (by a limit, or
    at the end of :func:`mesh_sequence`): the further meshes and their time at the cost per
    k-point of the last mesh.

    meshes : the per-mesh entries of :func:`converge` (mesh, n_kpoints, seconds, estimated_error).
    The estimate is assumed to keep falling by the larger (slower) of its last ratio and the
    h^2 ratio 1 / growth^2; no forecast while it is not falling. Returns a dict with
    ``meshes_more`` (int or None), ``mesh`` (the mesh expected to pass, or None), ``seconds``
    (float or None) and a one-line ``text``.
    """
    est = [m["estimated_error"] for m in meshes if m["estimated_error"] is not None]
    none = {"meshes_more": None, "mesh": None, "seconds": None}
    if len(est) < 2:
        return {**none, "text": "no forecast: the sequence stopped before two error estimates"}
    if not all(np.isfinite(est[-2:])) or est[-1] <= 0:
        return {**none, "text": f"no forecast: the last two estimates ({100 * est[-2]:.2g} %, {100 * est[-1]:.2g} %) "
                                "give no rate of convergence"}
    q = est[-1] / est[-2] if est[-2] > 0 else np.inf  # 0 (identical K, e.g. 0) then > 0: not falling
    if q >= 1:
        return {**none, "text": f"no forecast: the estimate did not fall on the last mesh "
                                f"({100 * est[-2]:.2g} % -> {100 * est[-1]:.2g} %)"}
    q = max(q, 1.0 / opts.growth ** opts.power)
    last = meshes[-1]
    per_k = last["seconds"] / max(last["n_kpoints"], 1)
    later = mesh_sequence(recip_lattice, opts)
    for m in later:  # skip to the last mesh run
        if list(m) == list(last["mesh"]):
            break
    e, seconds, more = est[-1], 0.0, 0
    for m in later:
        more += 1
        seconds += per_k * last["n_kpoints"] * np.prod(m) / np.prod(last["mesh"])
        e *= q
        if e <= opts.tolerance or more >= max_more:
            break
    if e > opts.tolerance:
        return {**none, "text": f"no forecast: the estimate falls too slowly ({q:.2f} per mesh) to reach "
                                f"{100 * opts.tolerance:g} % within {max_more} meshes"}
    tag = "x".join(map(str, m))
    return {"meshes_more": more, "mesh": [int(x) for x in m], "seconds": float(seconds),
            "text": f"forecast: {100 * opts.tolerance:g} % would need about {more} more mesh"
                    f"{'es' if more > 1 else ''}, up to {tag}, about {_duration(seconds)} more at the "
                    f"cost per k-point of the last mesh (the estimate falling by {q:.2f} per mesh)"}


def _duration(seconds: float) -> str:
    """'45 s', '12 min', '3.2 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
