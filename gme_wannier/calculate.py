"""The one library call: model + options -> GMEResult (mesh, symmetry, k loop, units)."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Optional, Sequence

import numpy as np

from .integrate import GMESettings, to_ampere
from .io.errors import GMEInputError
from .model import TBModel
from .result import GMEResult
from .sampling import fixed_sampling
from .units import E_OVER_HBAR

SYMMETRY_MODES = ("auto", "off")


def model_fingerprint(model: TBModel) -> str:
    """Short hash of the model's matrices (for checkpoints)."""
    h = hashlib.sha256()
    for arr in (model.real_lattice, model.iRvec, model.H_R, model.centres_cart, model.A_R, model.B_R,
                model.CC_R, model.S_R):
        if arr is not None:
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


def compute(model: TBModel, settings: GMESettings, *, mesh: Sequence[int] = (20, 20, 20),
            shift: Sequence[int] = (0, 0, 0), symmetry: str = "auto", symprec: float = 1e-5,
            magmoms: Optional[np.ndarray] = None, box: Optional[dict] = None, comm=None,
            chunk_size: int = 200, kernel: str = "surface", checkpoint: Optional[str] = None,
            checkpoint_every: float = 60.0, progress: Optional[bool] = False,
            structure=None, spin_degeneracy: Optional[int] = None, refine: Sequence[int] = (),
            refine_margin: float = 0.05, convergence=None, extra_quantities: Sequence = (),
            estimate_error: bool = True) -> GMEResult:
    """Compute the GME tensor of a model.

    Parameters
    ----------
    model : TBModel
    settings : GMESettings
        Fermi levels, smearing/temperature, degeneracy handling, moment options.
    mesh : 3 ints
        Uniform Gamma-centred (``shift`` = 0) mesh of the whole Brillouin zone.
    symmetry : "auto" or "off"
        "auto": spglib point group of the structure; only irreducible k-points are evaluated
        and the sum is symmetrized (docs/theory.md section 8). "off": the whole mesh.
    box : dict with ``center``, ``b1``, ``b2``, ``b3`` (reduced) and ``mesh``, optional
        Integrate over a box of the BZ instead (Wannier90's gyrotropic_box_*); never symmetrized.
    comm : communicator from :func:`gme_wannier.parallel.get_comm` (serial by default).
    kernel : "surface" (Fermi-surface form, default), "sea" (Fermi-sea cross-check) or "tetra"
        (Fermi surface by linear tetrahedra on the whole Gamma-centred mesh, no k reduction;
        the smearing is not used).
    checkpoint : path of a checkpoint to write and resume from, optional. The files are kept after
        the sum (a rerun returns at once); delete them with
        :func:`gme_wannier.checkpoint.remove_checkpoint` once the result is saved (the CLI does).
    progress : show a progress bar on rank 0 (None: only on a terminal).
    structure : ase.Atoms, optional
        Overrides ``model.atoms`` for the symmetry analysis.
    refine : ints f1, f2, ..., optional
        Adaptive refinement: the cells of ``mesh`` that the Fermi window reaches are subdivided
        by f1, then f2, ... (see :mod:`gme_wannier.refine`): the result equals the uniform mesh
        ``mesh * prod(f)`` at a fraction of its cost. Whole mesh (no symmetry reduction); computed
        on rank 0 and broadcast.
    refine_margin : eV added to the Fermi window when marking cells.
    convergence : gme_wannier.convergence.ConvergenceOptions, optional
        Run symmetric uniform meshes of growing density until the error estimate is below
        ``convergence.tolerance`` x max |alpha_total| (``mesh`` is not used; see
        :func:`gme_wannier.convergence.converge`).
    extra_quantities : objects with ``name``, ``chunk(interp, k_red, weights, settings)`` and
        ``finish(raw, model, settings, sym)`` (e.g. :mod:`gme_wannier.gyrotropic`), summed in the
        same k loop (uniform meshes and boxes); their tensors land in ``result.extra[name]``.
    estimate_error : attach the error estimate of :mod:`gme_wannier.errorbar` (uniform meshes:
        free, from the embedded coarser mesh; other samplings: one run on the mesh halved).
    spin_degeneracy : 1, 2 or None
        How many electrons each band holds in alpha (and the DOS); docs/theory.md, "Spin
        counting". None (default): 2 for a model without spinors (spin-degenerate bands, no
        spin-orbit coupling), 1 for spinors. K stays in the counting of Wannier90 and
        WannierBerri (each band once), so alpha = spin_degeneracy (e/hbar) K.
    """
    from .parallel import get_comm
    from .symmetry import allowed_form, find_symmetry

    if comm is None:
        comm = get_comm("serial")
    if symmetry not in SYMMETRY_MODES:
        raise GMEInputError(f"unknown symmetry mode '{symmetry}' (choose auto or off)")
    if kernel not in ("surface", "sea", "tetra"):
        raise GMEInputError(f"unknown kernel '{kernel}' (surface, sea or tetra)")
    if kernel == "tetra" and (box is not None or any(shift)):
        raise GMEInputError("kernel 'tetra' needs the unshifted uniform mesh (no box, no shift)")
    if refine and (kernel != "surface" or box is not None):
        raise GMEInputError("refinement works with the Fermi-surface kernel on the uniform mesh only")
    if any(int(f) < 2 for f in refine):
        raise GMEInputError("refinement factors must be integers >= 2")
    if convergence is not None and (box is not None or refine or kernel == "sea"):
        raise GMEInputError("--tolerance: automatic convergence works on the whole zone with the surface or "
                            "tetra kernel (drop --refine, --box-*/--win-box, --kernel sea)")
    if extra_quantities and (refine or kernel != "surface"):
        raise GMEInputError("--quantities: quantities other than K need a uniform mesh or a box "
                            "(drop --tolerance, --refine and --kernel)")
    if spin_degeneracy is None:
        spin_degeneracy = 1 if model.spinors else 2
    if spin_degeneracy not in (1, 2):
        raise GMEInputError("spin_degeneracy must be 1 or 2")
    if spin_degeneracy == 2 and model.spinors:
        raise GMEInputError("spin_degeneracy=2 is for calculations without spinors; this model has spinors")
    t0 = time.perf_counter()
    atoms = structure if structure is not None else model.atoms
    sym = None
    sym_info: dict = {"mode": symmetry}
    if atoms is not None:
        cell = np.asarray(atoms.cell)
        if np.abs(cell - model.real_lattice).max() > 1e-3 * np.abs(model.real_lattice).max():
            raise GMEInputError("the structure's cell differs from the model's lattice vectors (as rows, in "
                                "Angstrom): give the structure in the same Cartesian frame as the .win")
        sym = find_symmetry(atoms, symprec=symprec, magmoms=magmoms, source=model.name)
        form = allowed_form(sym)
        sym_info.update(sym.summary())
        sym_info["allowed_form"] = form.to_dict()
    elif symmetry == "auto":
        raise GMEInputError(f"{model.name}: no structure is known, so symmetry cannot be used "
                            "(give one, or use symmetry='off')")

    use_sym = symmetry == "auto" and box is None and kernel != "tetra" and not refine
    sym_err = None
    if use_sym:
        from .symmetry import check_band_symmetry

        # refuse before the k loop if the bands do not have the structure's symmetry
        sym_err = check_band_symmetry(model, sym, settings.fermi_energies)
    fp = json.dumps({"model": model_fingerprint(model), "settings": settings.fingerprint(),
                     "mesh": [list(mesh), list(shift), box and {k: np.asarray(v).tolist() for k, v in box.items()}],
                     "symmetry": symmetry, "kernel": kernel, "chunk_size": chunk_size,
                     "refine": list(refine), "extra": [getattr(q, "fingerprint", q.name) for q in extra_quantities]},
                    sort_keys=True, default=str)
    extra_raw: dict = {}
    n_resumed = 0
    project = form.project if use_sym else (lambda T: T)
    fixed = dict(shift=shift, box=box, sym=sym if use_sym else None, comm=comm, chunk_size=chunk_size,
                 kernel=kernel, checkpoint_every=checkpoint_every, progress=progress, refine=refine,
                 refine_margin=refine_margin, extra_quantities=extra_quantities)
    K_err = None
    if convergence is not None:
        from .convergence import converge

        def run_mesh(m):
            tag = "x".join(map(str, m))
            r, rec, xr, _ = fixed_sampling(model, settings, mesh=m, estimate_error=False,
                                           checkpoint=f"{checkpoint}.mesh{tag}" if checkpoint else None,
                                           fingerprint=fp + tag, **fixed)
            run_mesh.extra = xr
            return r, rec

        say = (lambda line: print(f"gme-wannier: {line}", flush=True)) if progress is not False and comm.is_root             else None
        raw, K_err, mesh_info = converge(run_mesh, lambda r: project(to_ampere(r, model, settings)["total"]),
                                         convergence, model.recip_lattice, say=say)
        extra_raw, n_resumed = getattr(run_mesh, "extra", {}), 0
        n_eval = mesh_info["n_kpoints_total"]
        method = (f"max(|K(N_k) - K(N_k-1)|, |K(N_k-1) - K(N_k-2)| / r^2) per component over a sequence of "
                  f"uniform meshes with spacings shrinking by r = {convergence.growth}")
    else:
        raw, mesh_info, extra_raw, n_resumed = fixed_sampling(
            model, settings, mesh=mesh, checkpoint=checkpoint, fingerprint=fp, estimate_error=estimate_error,
            **fixed)
        n_eval = mesh_info.get("n_evaluated", mesh_info.get("n_kpoints", 0))
    K = {p: project(v) for p, v in to_ampere(raw, model, settings).items()}
    if convergence is None and "orb@coarse" in raw:
        coarse = {key.split("@")[0]: v for key, v in raw.items() if key.endswith("@coarse")}
        K_err = np.abs(K["total"] - project(to_ampere(coarse, model, settings)["total"]))
        method = mesh_info.pop("error_method")
    if use_sym:
        sym_info["n_kspace_operations"] = mesh_info.pop("n_kspace_operations", None)
        sym_info["n_operations_dropped_by_mesh"] = mesh_info.pop("n_operations_dropped_by_mesh", None)
        if sym_info["n_kspace_operations"] is None and convergence is not None:
            sym_info.pop("n_kspace_operations")
            sym_info.pop("n_operations_dropped_by_mesh")
        sym_info["band_symmetry_error_eV"] = sym_err
        sym_info["band_symmetry_error_window"] = "bands below max(E_F) + 1 eV"
    elif sym is not None and box is None:
        from .symmetry import symmetry_breaking

        sym_info["tensor_symmetry_breaking"] = float(symmetry_breaking(K["total"], sym))
    if K_err is not None:
        from .convergence import convergence_record

        conv = convergence_record(K["total"], K_err, convergence.tolerance if convergence is not None else None,
                                  n_eval, method, converged=mesh_info.get("converged"))
        if convergence is not None:
            conv["stop_reason"] = mesh_info["stop_reason"]
    else:
        conv = {"tolerance": None, "estimated_error": None, "converged": None, "n_kpoints_evaluated": int(n_eval),
                "method": "not estimated (estimate_error=False)"}
    extra = {q.name: q.finish(extra_raw, model, settings, sym if use_sym else None) for q in extra_quantities}
    elapsed = time.perf_counter() - t0
    info = {
        "model": {"name": model.name, "num_wann": model.num_wann, "n_R": model.nR,
                  "spinors": model.spinors, **model.provenance},
        "approximation": {
            "orbital_moment": model.orbital_level if settings.external else "internal terms only (forced)",
            "spin_moment": ("-(g_s/2) mu_B <sigma>, g_s = %g" % settings.g_s) if (model.has_spin and settings.spin)
            else "none",
            "spin_degeneracy": ("alpha and DOS: each band counted once (spinor Wannier functions)" if model.spinors
                                else "alpha and DOS: each band counted twice (both spin states of a model "
                                     "without spinors)" if spin_degeneracy == 2 else
                                "alpha and DOS: each band counted once (one spin species; spin_degeneracy = 1 "
                                "asked for a model without spinors)") + "; K: each band once, as Wannier90",
        },
        "settings": {**settings.fingerprint(), "smearing_description": settings.smearing.describe(),
                     "kernel": kernel},
        "mesh": mesh_info,
        "symmetry": sym_info,
        "spin_degeneracy_factor": spin_degeneracy,
        "convergence": conv,
        "checkpoint": {"path": checkpoint, "resumed_chunks": int(n_resumed)} if checkpoint else None,
        "timing": {"seconds": elapsed, "ranks": comm.size,
                   "kpoints_per_second": n_eval / elapsed if elapsed > 0 else None},
    }
    alpha_err = None if K_err is None else spin_degeneracy * E_OVER_HBAR * K_err
    return GMEResult(fermi_energies=settings.EF, K=K, real_lattice=model.real_lattice, info=info,
                     dos=raw["dos"], spin_degeneracy=spin_degeneracy, alpha_error=alpha_err, extra=extra)


def band_symmetry_error(model: TBModel, sym, emax: float = np.inf, n_samples: int = 8, seed: int = 0) -> float:
    """max |E_n(R k) - E_n(k)| (eV) over random k, the point operations, and the bands below
    ``emax`` (eV): how well the Wannier Hamiltonian respects the crystal symmetry that the k
    reduction assumes. (Disentangled bands above the frozen window need not be symmetric.)"""
    from .bands import Interpolator

    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    interp = Interpolator(model, external=False, spin=False)
    k = rng.random((n_samples, 3))
    B = model.recip_lattice
    kc = k @ B
    k_all = np.concatenate([k] + [(kc @ Rc.T) @ np.linalg.inv(B) for Rc in sym.rotations_cart])
    with threadpool_limits(limits=1):  # small matrices: multithreaded BLAS is slower
        E = interp.energies(k_all).reshape(len(sym.rotations_cart) + 1, n_samples, -1)
    nb = max(1, int((E[0] < emax).sum(axis=1).min()))
    return float(np.abs(E[1:, :, :nb] - E[0][None, :, :nb]).max())


__all__ = ["compute", "band_symmetry_error", "model_fingerprint"]
