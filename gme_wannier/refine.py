"""Adaptive refinement of the uniform mesh where the Fermi surface passes.

The dense Gamma-centred mesh N = n0 f1 f2 ... (per axis) is split into the cells of a coarse
mesh n0: cell c owns the dense points c/n0 + j/N, j in [0, N/n0)^3 (box integration). A cell
whose eight corners show no band within reach of the Fermi window (energies of the corners,
widened by the spread of the band over the corners and a fixed margin) contributes nothing and
is dropped; the others are cut into f^3 sub-cells and the test repeats; the dense points of the
cells left at the last level are evaluated with the ordinary Fermi-surface kernel, each with the
weight 1/N^3. The result therefore equals the uniform dense mesh (same points, same weights)
up to what the marking misses, while only the energies are computed on the coarse levels.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .bands import Interpolator
from .integrate import GMESettings, energy_window, sum_over_kpoints, to_ampere
from .parallel import distributed_rows
from .model import TBModel

__all__ = ["mark_cells", "refined_sum", "compute_refined"]

_CORNERS = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])


def mark_cells(Ec: np.ndarray, lo: float, hi: float, margin: float) -> np.ndarray:
    """Cells that the Fermi window may reach.

    Ec : float (ncell, 8, nw) eV, band energies at the corners; lo, hi : eV window; margin : eV.
    A cell is kept if for some band min_c E - s < hi and max_c E + s > lo with
    s = margin + (max_c E - min_c E) (the spread allows for curvature inside the cell).
    Returns bool (ncell,).
    """
    emin, emax = Ec.min(axis=1), Ec.max(axis=1)
    s = margin + (emax - emin)
    return np.any((emin - s < hi) & (emax + s > lo), axis=1)


# 11 parameters: the refinement's own three (mesh, factors, margin) and the k loop's keyword-only
# options, passed through to integrate.sum_over_kpoints.
def refined_sum(model: TBModel, st: GMESettings, mesh: Sequence[int], factors: Sequence[int], *,
                margin: float = 0.05, chunk_size: int = 1000, interp: Optional[Interpolator] = None,
                blas_threads: int = 1, comm=None, checkpoint=None, progress=None) -> tuple[dict, dict]:
    """Raw Fermi-surface sums (as :func:`gme_wannier.integrate.fermi_surface_chunk`) on the mesh
    ``mesh * prod(factors)``, refined only where the Fermi surface passes.

    Parameters
    ----------
    mesh : 3 ints, the coarse mesh n0. factors : ints f1, f2, ... (each >= 2), the subdivision
        of every kept cell at each level. margin : eV, added to the marking window.

    Returns
    -------
    raw : dict of the sums; info : dict with the dense mesh, the cells kept per level and the
    numbers of energy-only and full evaluations.
    """
    from threadpoolctl import threadpool_limits

    if interp is None:
        interp = Interpolator(model, external=st.external, spin=st.spin)
    lo, hi = energy_window(st, interp.nw)
    M = np.array(mesh, dtype=int)
    cells = np.indices(tuple(M)).reshape(3, -1).T  # integer cell origins at resolution M
    info = {"coarse_mesh": M.tolist(), "factors": list(factors), "levels": [], "n_energy_evaluations": 0}
    with threadpool_limits(limits=blas_threads):
        for f in factors:
            # energies at the corners of the current cells (unique points at resolution M)
            corners = np.mod(cells[:, None, :] + _CORNERS[None], M)  # (nc, 8, 3)
            flat = (corners[..., 0] * M[1] + corners[..., 1]) * M[2] + corners[..., 2]
            uniq, inv = np.unique(flat.reshape(-1), return_inverse=True)
            pts = np.stack(np.unravel_index(uniq, tuple(M)), axis=1) / M
            E = distributed_rows(lambda p: interp.energies(p, chunk_size), pts, comm)
            info["n_energy_evaluations"] += len(pts)
            keep = mark_cells(E[inv].reshape(len(cells), 8, -1), lo, hi, margin)
            info["levels"].append({"resolution": M.tolist(), "cells": int(len(cells)), "kept": int(keep.sum())})
            cells = cells[keep]
            sub = np.indices((f, f, f)).reshape(3, -1).T
            cells = (cells[:, None, :] * f + sub[None]).reshape(-1, 3)
            M = M * f
        # the dense points: the origins of the cells left at the finest resolution
        k = cells / M
        w = 1.0 / float(np.prod(M))
    raw = sum_over_kpoints(model, k, np.full(len(k), w), st, comm=comm, chunk_size=chunk_size,
                           checkpoint=checkpoint, progress=progress, interp=interp, blas_threads=blas_threads)
    info.update(dense_mesh=M.tolist(), n_dense_points=int(np.prod(M)), n_full_evaluations=int(len(k)))
    return raw, info


def compute_refined(model: TBModel, settings: GMESettings, mesh: Sequence[int], factors: Sequence[int], *,
                    margin: float = 0.05, chunk_size: int = 1000) -> tuple[dict, dict]:
    """K tensor (Ampere; keys orbital, spin, total, each (nE, 3, 3)) on the refined mesh (no
    symmetry), and the refinement info (see :func:`refined_sum`)."""
    raw, info = refined_sum(model, settings, mesh, factors, margin=margin, chunk_size=chunk_size)
    return to_ampere(raw, model, settings), info
