"""How much a symmetric k sum depends on the Wannier model's own breaking of the symmetry.

The irreducible k-points stand for their stars only when the model has the crystal symmetry.
A Wannier model that breaks it (SrSi2's bands by 16 meV) gives a symmetric sum that depends on
which point of each star was chosen, while the whole-zone sum, projected on the allowed form,
does not. :func:`model_symmetry_check` measures the difference of the two on one modest mesh.
It is a property of the model, not of the mesh, and the k-sampling error bar does not cover it
(docs/convergence.md, "The model, not the sampling").
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Optional

import numpy as np

__all__ = ["CHECK_ABOVE_EV", "model_symmetry_check", "check_mesh"]

CHECK_ABOVE_EV = 1e-3  # the check runs when the bands break the symmetry by more than this (eV)


def check_mesh(recip_lattice: np.ndarray, mesh=None) -> tuple:
    """The mesh of the check: the second mesh of the automatic sequence (37^3 for the bundled
    SrSi2), or the run's own mesh when that is smaller."""
    from .convergence import ConvergenceOptions, mesh_sequence

    seq = mesh_sequence(recip_lattice, ConvergenceOptions())
    next(seq)
    m = next(seq)
    if mesh is not None and np.prod(mesh) < np.prod(m):
        return tuple(int(n) for n in mesh)
    return m


def model_symmetry_check(model, settings, sampling, sym, project: Callable, run,
                         band_error: Optional[float]) -> Optional[dict]:
    """Whole zone against irreducible points on :func:`check_mesh`, or None when the bands keep
    the symmetry to CHECK_ABOVE_EV, or the sampling is not a uniform mesh.

    sampling : the run's Sampling (its kernel and shift are kept); sym : CrystalSymmetry;
    project : the projection on the allowed form; run : RunControl (comm used; no checkpoint,
    no progress); band_error : max |E(gk) - E(k)|, eV (calculate.band_symmetry_error).
    Returns {"mesh", "whole_zone_vs_symmetric" (max |P K_whole - K_sym| / max |P K_whole| of
    K_total), "band_symmetry_error_eV"}."""
    from .integrate import to_ampere
    from .sampling import fixed_sampling

    if band_error is None or not band_error > CHECK_ABOVE_EV or sampling.box is not None or sampling.refine:
        return None
    mesh = check_mesh(model.recip_lattice, None if sampling.convergence is not None else sampling.mesh)
    base = replace(sampling, mesh=mesh, convergence=None)
    quiet = replace(run, checkpoint=None, progress=False)
    K = []
    for s in (sym, None):
        raw, _, _, _ = fixed_sampling(model, settings, base, sym=s, run=quiet, estimate_error=False)
        K.append(project(to_ampere(raw, model, settings)["total"]))
    scale = float(np.abs(K[1]).max())
    diff = float(np.abs(K[1] - K[0]).max())
    return {"mesh": [int(n) for n in mesh], "band_symmetry_error_eV": float(band_error),
            "whole_zone_vs_symmetric": diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))}
