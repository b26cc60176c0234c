"""The one library call: model + options -> GMEResult (mesh, symmetry, k loop, units)."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Optional, Sequence

import numpy as np

from .integrate import GMESettings, sum_over_kpoints, sum_over_mesh_tetra, to_ampere
from .io.errors import GMEInputError
from .kmesh import box_mesh, check_mesh, uniform_mesh
from .model import TBModel
from .result import GMEResult

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
            refine_margin: float = 0.05) -> GMEResult:
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
        and the sum is symmetrized (PHYSICS.md section 7). "off": the whole mesh.
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
    spin_degeneracy : 1, 2 or None
        How many electrons each band holds in alpha (and the DOS); docs/theory.md, "Spin
        counting". None (default): 2 for a model without spinors (spin-degenerate bands, no
        spin-orbit coupling), 1 for spinors. K stays in the counting of Wannier90 and
        WannierBerri (each band once), so alpha = spin_degeneracy (e/hbar) K.
    """
    from .checkpoint import Checkpoint
    from .parallel import get_comm
    from .progress import Progress
    from .symmetry import allowed_form, find_symmetry, irreducible_kpoints

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

    if box is not None:
        k_red, w = box_mesh(box.get("center"), box.get("b1", (1, 0, 0)), box.get("b2", (0, 1, 0)),
                            box.get("b3", (0, 0, 1)), box["mesh"])
        weights = np.full(len(k_red), w)
        mesh_info = {"type": "box", "box": {k: np.asarray(v).tolist() for k, v in box.items()},
                     "n_kpoints": int(len(k_red))}
        use_sym = False
    else:
        mesh = check_mesh(mesh)
        use_sym = symmetry == "auto" and kernel != "tetra" and not refine
        n_full = int(np.prod(mesh))
        if use_sym:
            from .symmetry import check_band_symmetry

            # refuse before the k loop if the bands do not have the structure's symmetry
            sym_err = check_band_symmetry(model, sym, settings.fermi_energies)
            irr = irreducible_kpoints(mesh, sym, shift=shift)
            k_red, weights = irr.k_red, irr.weights
            sym_info["n_kspace_operations"] = int(irr.n_ops)
            sym_info["n_operations_dropped_by_mesh"] = int(irr.n_ops_dropped)
        else:
            k_red = uniform_mesh(mesh, shift)
            weights = np.full(n_full, 1.0 / n_full)
        mesh_info = {"type": "uniform", "mesh": list(mesh), "shift": list(shift), "n_full": n_full,
                     "n_evaluated": int(len(k_red))}

    ckpt = None
    if checkpoint:
        fp = json.dumps({"model": model_fingerprint(model), "settings": settings.fingerprint(),
                         "mesh": mesh_info, "symmetry": symmetry, "kernel": kernel,
                         "chunk_size": chunk_size}, sort_keys=True)
        # kept after the sum: the caller removes it once the result is safely written
        ckpt = Checkpoint(checkpoint, fp, every_seconds=checkpoint_every, keep=True)
    bar = Progress(len(k_red), enabled=progress) if progress is not False and comm.is_root else None
    if refine:
        from .refine import refined_sum

        raw, rinfo = refined_sum(model, settings, mesh, [int(f) for f in refine], margin=refine_margin) \
            if comm.is_root else (None, None)
        raw, rinfo = comm.bcast((raw, rinfo))
        mesh_info["refinement"] = rinfo
    elif kernel == "tetra":
        raw = sum_over_mesh_tetra(model, mesh, settings, comm=comm, chunk_size=chunk_size, checkpoint=ckpt,
                                  progress=bar)
    else:
        raw = sum_over_kpoints(model, k_red, weights, settings, comm=comm, chunk_size=chunk_size,
                               kernel=kernel, checkpoint=ckpt, progress=bar)
    K = to_ampere(raw, model, settings)
    if use_sym:
        # the group average of the irreducible sum, as the projection on the allowed form
        K = {p: form.project(v) for p, v in K.items()}
        sym_info["band_symmetry_error_eV"] = sym_err
        sym_info["band_symmetry_error_window"] = "bands below max(E_F) + 1 eV"
    elif sym is not None and box is None:
        from .symmetry import symmetry_breaking

        sym_info["tensor_symmetry_breaking"] = float(symmetry_breaking(K["total"], sym))
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
        "checkpoint": {"path": checkpoint, "resumed_chunks": int(ckpt.n_resumed)} if ckpt is not None else None,
        "timing": {"seconds": elapsed, "ranks": comm.size,
                   "kpoints_per_second": len(k_red) / elapsed if elapsed > 0 else None},
    }
    return GMEResult(fermi_energies=settings.EF, K=K, real_lattice=model.real_lattice, info=info,
                     dos=raw["dos"], spin_degeneracy=spin_degeneracy)


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
