"""The one library call: model + settings + sampling -> GMEResult (symmetry, k loop, units, record)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
import json
import time
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import numpy as np

from .convergence import level_envelope
from .integrate import GME_CHARACTER, GMESettings, to_ampere
from .io.errors import GMEInputError
from .model import TBModel
from .report import approximation_record, convergence_method_text
from .result import GMEResult
from .sampling import fixed_sampling
from .settings import RunControl, Sampling, SymmetryOptions
from .symcheck import model_symmetry_check
from .units import E_OVER_HBAR


def model_fingerprint(model: TBModel) -> str:
    """Short hash of the model's matrices (for checkpoints)."""
    h = hashlib.sha256()
    for arr in (model.real_lattice, model.iRvec, model.H_R, model.centres_cart, model.A_R, model.B_R,
                model.CC_R, model.S_R):
        if arr is not None:
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


# compute() is ~85 lines, 37 of them its docstring: the steps are the helpers below it
def compute(model: TBModel, settings: GMESettings, sampling: Optional[Sampling] = None, *,
            symmetry: Union[str, SymmetryOptions] = "auto", quantities: Sequence = (),
            spin_degeneracy: Optional[int] = None, run: Optional[RunControl] = None,
            estimate_error: bool = True) -> GMEResult:
    """Compute the GME tensor of a model.

    Parameters
    ----------
    model : TBModel
    settings : GMESettings
        Fermi levels, smearing/temperature, degeneracy handling, moment options.
    sampling : Sampling, optional
        Mesh (default 20^3), shift, box, kernel, refinement or automatic convergence
        (:class:`gme_wannier.settings.Sampling`).
    symmetry : "auto", "off" or SymmetryOptions
        "auto": spglib point group of the structure; only irreducible k-points are evaluated
        and the sum is symmetrized (docs/theory.md section 8); tetrahedra sum the weights of
        each star on its irreducible point (tetra_sym.py); never for a box or refinement. "off": the whole mesh. A :class:`~gme_wannier.settings.SymmetryOptions`
        also gives ``symprec``, ``magmoms`` and a ``structure`` overriding ``model.atoms``.
    quantities : objects with ``name``, ``chunk(interp, k_red, weights, settings)`` and
        ``finish(raw, model, settings, sym)`` (e.g. :mod:`gme_wannier.gyrotropic`), summed in the
        same k loop (uniform meshes and boxes); their tensors land in ``result.extra[name]``.
    spin_degeneracy : 1, 2 or None
        How many electrons each band holds in alpha (and the DOS); docs/theory.md, "Spin
        counting". None (default): 2 for a model without spinors (spin-degenerate bands, no
        spin-orbit coupling), 1 for spinors. K stays in the counting of Wannier90 and
        WannierBerri (each band once), so alpha = spin_degeneracy (e/hbar) K.
    run : RunControl, optional
        Communicator, chunk size, checkpoint, progress (:class:`gme_wannier.settings.RunControl`);
        serial, no checkpoint, no progress bar by default.
    estimate_error : attach the error estimate of :mod:`gme_wannier.convergence` (uniform meshes:
        free, from the embedded coarser mesh; other samplings: one run on the mesh halved).

    Returns
    -------
    GMEResult
        K (nE, 3, 3) A, alpha, DOS, the error estimate, ``extra`` tensors and the record ``info``.
    """
    from .parallel import get_comm

    sampling = Sampling() if sampling is None else sampling
    symopts = symmetry if isinstance(symmetry, SymmetryOptions) else SymmetryOptions(mode=symmetry)
    run = RunControl() if run is None else run
    comm = run.comm if run.comm is not None else get_comm("serial")
    if quantities and (sampling.refine or sampling.kernel != "surface"):
        raise GMEInputError("--quantities: quantities other than K need a uniform mesh or a box "
                            "(drop --tolerance, --refine and --kernel)")
    g = _spin_degeneracy(model, spin_degeneracy)
    t0 = time.perf_counter()
    crystal = _crystal(model, settings, symopts, sampling)
    fp = run_fingerprint(model, settings, sampling, symopts.mode, run.chunk_size, quantities)
    run = replace(run, comm=comm)
    fixed = dict(sym=crystal.sym if crystal.use else None, run=run, quantities=quantities)
    if sampling.convergence is not None:  # the guard's order by kernel: 1 at T -> 0 (tetrahedra), else 2
        sampling = replace(sampling, convergence=sampling.convergence.for_kernel(sampling.kernel))
        raw, K, K_err, mesh_info, extra_raw, n_eval = _converged(model, settings, sampling, fixed, fp,
                                                                 crystal.project)
        n_resumed, method = 0, convergence_method_text(sampling.convergence.growth, sampling.convergence.power)
    else:
        raw, mesh_info, extra_raw, n_resumed = fixed_sampling(model, settings, sampling, fingerprint=fp,
                                                              estimate_error=estimate_error, **fixed)
        n_eval = mesh_info.get("n_evaluated", mesh_info.get("n_kpoints", 0))
        K, K_err, method = _fixed_error(raw, model, settings, crystal.project, mesh_info)
    if K_err is not None:  # bars per level: the largest estimate nearby (docs/convergence.md)
        K_err = level_envelope(K_err, settings.EF, 0.0 if sampling.kernel == "tetra" else settings.smearing.width)
    K_err, missed = _unsampled_levels(model, settings, raw.get("dos"), K_err, crystal.sym if crystal.use else None,
                                      sampling.box)
    extra = {q.name: q.finish(extra_raw, model, settings, crystal.sym if crystal.use else None) for q in quantities}
    model_check = model_symmetry_check(model, settings, sampling, crystal.sym, crystal.project, run,
                                       crystal.band_error) if crystal.use and estimate_error else None
    elapsed = time.perf_counter() - t0
    info = {
        "model": {"name": model.name, "num_wann": model.num_wann, "n_R": model.nR,
                  "spinors": model.spinors, **model.provenance},
        "approximation": approximation_record(model, settings, g),
        "settings": {**settings.fingerprint(), "smearing_description": settings.smearing.describe(),
                     "kernel": sampling.kernel},
        "mesh": mesh_info,
        "symmetry": {**_symmetry_record(crystal, mesh_info, K["total"], sampling),
                     **({"model_symmetry_check": model_check} if model_check else {})},
        "spin_degeneracy_factor": g,
        "convergence": _convergence_block(K["total"], K_err, sampling.convergence, n_eval, method, mesh_info, missed),
        "checkpoint": {"path": run.checkpoint, "resumed_chunks": int(n_resumed)} if run.checkpoint else None,
        "timing": {"seconds": elapsed, "ranks": comm.size,
                   "kpoints_per_second": n_eval / elapsed if elapsed > 0 else None},
    }
    alpha_err = None if K_err is None else g * E_OVER_HBAR * K_err
    return GMEResult(fermi_energies=settings.EF, K=K, real_lattice=model.real_lattice, info=info,
                     dos=raw["dos"], spin_degeneracy=g, alpha_error=alpha_err, extra=extra)


def _spin_degeneracy(model: TBModel, spin_degeneracy: Optional[int]) -> int:
    if spin_degeneracy is None:
        spin_degeneracy = 1 if model.spinors else 2
    if spin_degeneracy not in (1, 2):
        raise GMEInputError("--spin-degeneracy: must be 1 or 2")
    if spin_degeneracy == 2 and model.spinors:
        raise GMEInputError(f"--spin-degeneracy 2: {model.name} has spinor Wannier functions, each band holds one "
                            "electron; use 1 (the default for spinors)")
    return spin_degeneracy


class _Crystal(NamedTuple):
    """The symmetry of a run: ``sym`` (CrystalSymmetry or None), whether the k reduction and the
    projection use it (``use``), the projection, the record so far and the band-symmetry error."""

    sym: Any
    use: bool
    project: Callable
    info: dict
    band_error: Optional[float]


def _crystal(model: TBModel, settings: GMESettings, symopts: SymmetryOptions, sampling: Sampling) -> _Crystal:
    """Find the symmetry of the structure (``symopts.structure`` or ``model.atoms``) and, when the
    run uses it, refuse bands that do not have it (before the k loop)."""
    from .symmetry import allowed_form, check_band_symmetry, find_symmetry, no_structure_message

    atoms = symopts.structure if symopts.structure is not None else model.atoms
    sym, form, info = None, None, {"mode": symopts.mode}
    if atoms is not None:
        cell = np.asarray(atoms.cell)
        if np.abs(cell - model.real_lattice).max() > 1e-3 * np.abs(model.real_lattice).max():
            raise GMEInputError("the structure's cell differs from the model's lattice vectors (as rows, in "
                                "Angstrom): give the structure in the same Cartesian frame as the .win")
        sym = find_symmetry(atoms, symprec=symopts.symprec, magmoms=symopts.magmoms, source=model.name)
        form = allowed_form(sym, character=GME_CHARACTER)
        info.update(sym.summary())
        info["allowed_form"] = form.to_dict()
    elif symopts.mode == "auto":
        raise GMEInputError(no_structure_message(model.name))
    use = symopts.mode == "auto" and sampling.box is None and not sampling.refine
    err = check_band_symmetry(model, sym, settings.fermi_energies) if use else None
    return _Crystal(sym, use, form.project if use else (lambda T: T), info, err)


def run_fingerprint(model: TBModel, settings: GMESettings, sampling: Sampling, symmetry_mode: str,
                    chunk_size: int, quantities: Sequence = ()) -> str:
    """JSON text that identifies the sums of a run (the key of its checkpoints): model matrices,
    settings, sampling, symmetry mode, chunk size and quantities."""
    box = sampling.box
    return json.dumps({"model": model_fingerprint(model), "settings": settings.fingerprint(),
                       "mesh": [list(sampling.mesh), list(sampling.shift),
                                box and {k: np.asarray(v).tolist() for k, v in box.items()}],
                       "symmetry": symmetry_mode, "kernel": sampling.kernel, "chunk_size": chunk_size,
                       "refine": list(sampling.refine),
                       "extra": [getattr(q, "fingerprint", q.name) for q in quantities]},
                      sort_keys=True, default=str)


def _converged(model, settings, sampling, fixed: dict, fp: str, project):
    """The automatic convergence: (raw, K, K_err, record, extra raw sums, k-points evaluated)."""
    from .convergence import converge

    run, convergence = fixed["run"], sampling.convergence

    def run_mesh(m):
        tag = "x".join(map(str, m))
        ckpt = f"{run.checkpoint}.mesh{tag}" if run.checkpoint else None
        r, rec, xr, _ = fixed_sampling(model, settings, replace(sampling, mesh=tuple(m), convergence=None),
                                       sym=fixed["sym"], run=replace(run, checkpoint=ckpt),
                                       quantities=fixed["quantities"], fingerprint=fp + tag, estimate_error=False)
        run_mesh.extra = xr
        return r, rec

    say = (lambda line: print(f"gme-wannier: {line}", flush=True)) \
        if run.progress is not False and run.comm.is_root else None
    raw, K_err, mesh_info = converge(run_mesh, lambda r: project(to_ampere(r, model, settings)["total"]),
                                     convergence, model.recip_lattice, say=say)
    K = {p: project(v) for p, v in to_ampere(raw, model, settings).items()}
    return raw, K, K_err, mesh_info, getattr(run_mesh, "extra", {}), mesh_info["n_kpoints_total"]


def _fixed_error(raw: dict, model, settings, project, mesh_info: dict):
    """K (Ampere, projected) of one fixed sampling and its error from the coarser sums, if any."""
    K = {p: project(v) for p, v in to_ampere(raw, model, settings).items()}
    if "orb@coarse" not in raw:
        return K, None, None
    coarse = {key.split("@")[0]: v for key, v in raw.items() if key.endswith("@coarse")}
    K_err = np.abs(K["total"] - project(to_ampere(coarse, model, settings)["total"]))
    return K, K_err, mesh_info.pop("error_method")


def _symmetry_record(crystal: _Crystal, mesh_info: dict, K_total: np.ndarray, sampling: Sampling) -> dict:
    """The result's ``"symmetry"`` block (pops the k-space counts from ``mesh_info``)."""
    info = crystal.info
    if crystal.use:
        info["n_kspace_operations"] = mesh_info.pop("n_kspace_operations", None)
        info["n_operations_dropped_by_mesh"] = mesh_info.pop("n_operations_dropped_by_mesh", None)
        if info["n_kspace_operations"] is None and sampling.convergence is not None:
            info.pop("n_kspace_operations")
            info.pop("n_operations_dropped_by_mesh")
        info["band_symmetry_error_eV"] = crystal.band_error
        info["band_symmetry_error_window"] = "bands below max(E_F) + 1 eV"
    elif crystal.sym is not None and sampling.box is None:
        from .symmetry import symmetry_breaking

        info["tensor_symmetry_breaking"] = float(symmetry_breaking(K_total, crystal.sym))
    return info


def _unsampled_levels(model: TBModel, settings: GMESettings, dos, K_err, sym, box=None, band_mesh=(20, 20, 20)):
    """Fermi levels that bands cross but where no k-point of the sampling had a state within the
    smearing window (DOS exactly 0): their K is 0 for want of points, not because of a gap, so
    their error is unknown and set to inf. The band ranges come from ``band_mesh`` over the zone,
    or over the ``box`` of a box sampling (a range found there is a true subset of the band's
    range there). Returns (K_err, the E_F missed, eV)."""
    if K_err is None or dos is None or not np.any(np.asarray(dos) == 0):
        return K_err, []
    from .fermi import band_energies, band_report

    if box is None:
        E, _ = band_energies(model, band_mesh, sym)
    else:  # a box: the band ranges inside it (K = 0 is exact where the box has no band)
        from .bands import Interpolator
        from .kmesh import box_mesh

        k, _ = box_mesh(box.get("center"), box.get("b1", (1, 0, 0)), box.get("b2", (0, 1, 0)),
                        box.get("b3", (0, 0, 1)), band_mesh)
        E = Interpolator(model, external=False, spin=False).energies(k)
    levels = band_report(E, settings.EF)["fermi_levels"]
    missed = [i for i, lv in enumerate(levels) if dos[i] == 0 and lv["crossing"]]
    if missed:
        K_err = np.array(K_err, dtype=float)
        K_err[missed] = np.inf
    return K_err, [float(settings.EF[i]) for i in missed]


def _convergence_block(K_total, K_err, convergence, n_eval: int, method, mesh_info: dict, missed=()) -> dict:
    """The result's ``"convergence"`` block (``missed``: E_F that bands cross where the sampling
    found no state, see :func:`_unsampled_levels`)."""
    if K_err is None:
        return {"tolerance": None, "estimated_error": None, "converged": None, "n_kpoints_evaluated": int(n_eval),
                "method": "not estimated (estimate_error=False)"}
    from .convergence import convergence_record

    conv = convergence_record(K_total, K_err, convergence.tolerance if convergence is not None else None,
                              n_eval, method, converged=False if missed else mesh_info.get("converged"))
    if missed:
        conv["unsampled_fermi_levels_eV"] = list(missed)
        conv["unsampled_note"] = ("bands cross these Fermi levels but no k-point had a state within the "
                                  "smearing window: the mesh is too coarse for their Fermi surface (error unknown)")
    if convergence is not None:
        conv["stop_reason"] = mesh_info["stop_reason"]
        if "forecast" in mesh_info:
            conv["forecast"] = mesh_info.pop("forecast")
    return conv


def band_symmetry_error(model: TBModel, sym, emax: float = np.inf, n_samples: int = 8, seed: int = 0) -> float:
    """max |E_n(K_g k) - E_n(k)| (eV) over random k, the k-space operations K_g that the k
    reduction uses (:func:`gme_wannier.irreducible.kspace_operations`: every rotation, and
    k -> -k with time reversal; a primed operation as k -> -R k), and the bands below ``emax``
    (eV): how well the Wannier Hamiltonian respects the symmetry that the k reduction assumes.
    (Disentangled bands above the frozen window need not be symmetric.)"""
    from .bands import Interpolator
    from .irreducible import kspace_operations

    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    interp = Interpolator(model, external=False, spin=False)
    k = rng.random((n_samples, 3))
    kops, _ = kspace_operations(sym)
    k_all = np.concatenate([k] + [k @ K.T for K in kops])
    with threadpool_limits(limits=1):  # small matrices: multithreaded BLAS is slower
        E = interp.energies(k_all).reshape(len(kops) + 1, n_samples, -1)
    nb = max(1, int((E[0] < emax).sum(axis=1).min()))
    return float(np.abs(E[1:, :, :nb] - E[0][None, :, :nb]).max())


__all__ = ["compute", "band_symmetry_error", "model_fingerprint", "run_fingerprint"]
