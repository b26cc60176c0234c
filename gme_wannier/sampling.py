"""The fixed samplings of the zone (uniform or irreducible mesh, box, tetrahedra, refinement),
each returning its raw sums, a record of what was sampled and the sums of the error estimate.

Every sampling here feeds the k loop of :mod:`gme_wannier.integrate` (chunks distributed over
the MPI ranks, checkpoints, progress); :func:`gme_wannier.convergence.converge` runs a sequence of them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from .integrate import GMESettings, sum_over_kpoints
from .tetra import sum_over_mesh_tetra
from .kmesh import box_mesh, check_mesh, uniform_mesh
from .model import TBModel

__all__ = ["fixed_sampling", "GME_KEYS"]

GME_KEYS = ("orb", "spin", "dos")
# meshes with more points use the plane-by-plane irreducible points (spglib's whole-mesh
# mapping takes 1.1 GB at 128^3 and 8 GB at 256^3 on every rank; same points and weights)
LOWMEM_ABOVE = 100 ** 3


def _halved(mesh: Sequence[int]) -> list[int]:
    return [max(1, int(n) // 2) for n in mesh]


def _points(mesh, shift, box, sym) -> tuple[np.ndarray, np.ndarray, dict]:
    """k-points (nk, 3) reduced, weights (nk,) and the mesh record of a box or uniform mesh."""
    if box is not None:
        k_red, w = box_mesh(box.get("center"), box.get("b1", (1, 0, 0)), box.get("b2", (0, 1, 0)),
                            box.get("b3", (0, 0, 1)), box["mesh"])
        return k_red, np.full(len(k_red), w), {"type": "box", "box": {k: np.asarray(v).tolist()
                                                                     for k, v in box.items()},
                                               "n_kpoints": int(len(k_red))}
    mesh = check_mesh(mesh)
    n_full = int(np.prod(mesh))
    info = {"type": "uniform", "mesh": list(mesh), "shift": list(shift), "n_full": n_full}
    if sym is not None and n_full > LOWMEM_ABOVE:
        from .symmetry import irreducible_points_lowmem

        k_red, weights, n_ops, n_dropped = irreducible_points_lowmem(mesh, sym, shift)
        info.update(n_kspace_operations=n_ops, n_operations_dropped_by_mesh=n_dropped)
    elif sym is not None:
        from .symmetry import irreducible_kpoints

        irr = irreducible_kpoints(mesh, sym, shift=shift)
        k_red, weights = irr.k_red, irr.weights
        info.update(n_kspace_operations=int(irr.n_ops), n_operations_dropped_by_mesh=int(irr.n_ops_dropped))
    else:
        k_red, weights = uniform_mesh(mesh, shift), np.full(n_full, 1.0 / n_full)
    info["n_evaluated"] = int(len(k_red))
    return k_red, weights, info


def fixed_sampling(model: TBModel, st: GMESettings, sampling, *, sym, run, fingerprint: str = "",
                   quantities: Sequence = (), estimate_error: bool = True) -> tuple[dict, dict, dict, int]:
    """Sums of one fixed sampling.

    sampling : :class:`gme_wannier.settings.Sampling` (mesh, shift, box, kernel, refinement; its
        ``convergence`` is not used here); sym : CrystalSymmetry for irreducible points, or None;
    run : :class:`gme_wannier.settings.RunControl` with ``comm`` set; fingerprint : the run's
    identity for the checkpoint; quantities : further quantities summed in the same k loop.

    Returns ``raw`` (the GME sums ``orb``, ``spin``, ``dos``, and with ``estimate_error`` the
    same on the embedded or halved coarser sampling under ``"<key>@coarse"``), the mesh record
    (with ``error_method``), the raw sums of ``quantities`` and the number of chunks resumed
    from the checkpoint.
    """
    from .checkpoint import Checkpoint
    from .progress import Progress

    s, comm = sampling, run.comm
    ckpt = Checkpoint(run.checkpoint, fingerprint, every_seconds=run.checkpoint_every, keep=True) \
        if run.checkpoint else None
    if s.refine:
        return _refined(model, st, s.mesh, s.refine, s.refine_margin, comm, estimate_error, ckpt, None)
    k_red, weights, info = (None, None, {"type": "uniform", "mesh": list(check_mesh(s.mesh)), "shift": [0, 0, 0],
                                         "n_full": int(np.prod(s.mesh)), "n_evaluated": int(np.prod(s.mesh))}) \
        if s.kernel == "tetra" else _points(s.mesh, s.shift, s.box, sym)
    bar = Progress(info.get("n_evaluated", info.get("n_kpoints")), enabled=run.progress) \
        if run.progress is not False and comm.is_root else None
    sets, method = None, None
    if s.kernel == "tetra" and sym is not None:  # irreducible energies and moments (tetra_sym.py)
        from .irreducible import mesh_operations
        from .tetra_sym import sum_over_mesh_tetra_sym

        counts = {}
        raw = sum_over_mesh_tetra_sym(model, s.mesh, st, sym, comm=comm, chunk_size=run.chunk_size,
                                      checkpoint=ckpt, progress=bar, stats=counts)
        mats, n_dropped = mesh_operations(sym, s.mesh)
        info.update(symmetric_tetrahedra=True, n_evaluated=counts.get("n_representatives", 0),
                    n_moment_points=counts.get("n_moment_points", 0),
                    screen_cells_kept=counts.get("screen_cells_kept"), weight_groups=counts.get("weight_groups", 1),
                    n_kspace_operations=len(mats),
                    n_operations_dropped_by_mesh=n_dropped)
    elif s.kernel == "tetra":
        raw = sum_over_mesh_tetra(model, s.mesh, st, comm=comm, chunk_size=run.chunk_size, checkpoint=ckpt,
                                  progress=bar)
    else:
        if estimate_error and s.kernel == "surface" and s.box is None:
            sets, method = _embedded(k_red, weights, info["mesh"], s.shift)
        raw = sum_over_kpoints(model, k_red, weights, st, comm=comm, chunk_size=run.chunk_size, kernel=s.kernel,
                               checkpoint=ckpt, progress=bar, weight_sets=sets, extra=quantities)
    n_resumed = int(ckpt.n_resumed) if ckpt is not None else 0
    extra_raw = {k: v for k, v in raw.items() if k.split("@")[0] not in GME_KEYS}
    raw = {k: v for k, v in raw.items() if k.split("@")[0] in GME_KEYS}
    if estimate_error and sets is None:
        coarse = _halved(s.box["mesh"] if s.box is not None else s.mesh)
        cs = replace(s, mesh=coarse if s.box is None else s.mesh,
                     box=None if s.box is None else {**s.box, "mesh": coarse}, convergence=None)
        craw, _, _, _ = fixed_sampling(model, st, cs, sym=sym, run=replace(run, checkpoint=None, progress=False),
                                       estimate_error=False)
        raw.update({f"{k}@coarse": v for k, v in craw.items()})
        method = f"|K(N) - K(N/2)| per component, N/2 = {coarse} evaluated separately (1/8 extra cost)"
    if method is not None:
        info["error_method"] = method
    return raw, info, extra_raw, n_resumed


def _embedded(k_red, weights, mesh, shift):
    """The weights of the embedded coarser mesh N/f (free error estimate), or (None, None)."""
    from .convergence import submesh_factor, submesh_weights

    f = submesh_factor(mesh, shift)
    if f is None:
        return None, None
    return ({"coarse": submesh_weights(k_red, weights, mesh, f, shift)},
            f"|K(N) - K(N/{f})| per component on the embedded mesh N/{f} = {[n // f for n in mesh]} "
            "(free: same points)")


def _refined(model, st, mesh, refine, margin, comm, estimate_error, checkpoint=None, progress=None,
             chunk_size: int = 1000) -> tuple[dict, dict, dict, int]:
    """Adaptive refinement of the uniform mesh (every rank; the work shared as in
    :func:`gme_wannier.refine.refined_sum`); estimate from the coarse mesh halved, same factors."""
    from .bands import Interpolator
    from .refine import refined_sum

    mesh = check_mesh(mesh)
    interp = Interpolator(model, external=st.external, spin=st.spin)  # one for both sums
    raw, rinfo = refined_sum(model, st, mesh, [int(f) for f in refine], margin=margin, comm=comm,
                             checkpoint=checkpoint, progress=progress, chunk_size=chunk_size, interp=interp)
    info = {"type": "uniform", "mesh": list(mesh), "shift": [0, 0, 0], "n_full": int(np.prod(mesh)),
            "n_evaluated": int(rinfo["n_full_evaluations"]), "refinement": rinfo}
    if estimate_error:
        cmesh = _halved(mesh)
        craw, _ = refined_sum(model, st, cmesh, [int(f) for f in refine], margin=margin, comm=comm,
                              chunk_size=chunk_size, interp=interp)
        raw = {**raw, **{f"{k}@coarse": v for k, v in craw.items()}}
        info["error_method"] = f"|K - K'| per component, K' refined from the coarse mesh halved ({cmesh})"
    return raw, info, {}, int(checkpoint.n_resumed) if checkpoint is not None else 0
