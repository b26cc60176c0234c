"""Fermi sheets on a k mesh: crossed cells, their periodic connected components, the sheet of
every mesh point, and the integer Chern number of each sheet from the lattice Berry flux through
the mesh faces next to it (pass 1 of :func:`gme_wannier.sheets.decompose`; method in its
docstring and docs/theory.md section 11).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

from .bands import Interpolator

_FACES = ndimage.generate_binary_structure(3, 1)


# ----------------------------------------------------------------------------------------------
# pass 1: sheets on the mesh


def _cells_crossed(above: np.ndarray, periodic: bool) -> np.ndarray:
    """bool cells whose 8 corners are not all on one side. above : bool (n1, n2, n3) points."""
    if periodic:
        corners = [np.roll(above, tuple(-s), axis=(0, 1, 2)) for s in np.indices((2, 2, 2)).reshape(3, -1).T]
    else:
        n1, n2, n3 = above.shape
        corners = [above[s[0]:n1 - 1 + s[0], s[1]:n2 - 1 + s[1], s[2]:n3 - 1 + s[2]]
                   for s in np.indices((2, 2, 2)).reshape(3, -1).T]
    anyv = np.logical_or.reduce(corners)
    allv = np.logical_and.reduce(corners)
    return anyv & ~allv


def label_cells(crossed: np.ndarray, periodic: bool) -> tuple[np.ndarray, int]:
    """Face-connected components of crossed cells, merged across the periodic boundary.

    Returns int labels (same shape, 0 = not crossed, 1..m in order of first appearance in C
    order: deterministic) and m.
    """
    lab, m = ndimage.label(crossed, structure=_FACES)
    if m == 0:
        return lab, 0
    parent = np.arange(m + 1)

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    if periodic:
        for ax in range(3):
            lo = np.take(lab, 0, axis=ax).ravel()
            hi = np.take(lab, -1, axis=ax).ravel()
            for a, b in set(zip(lo[(lo > 0) & (hi > 0)].tolist(), hi[(lo > 0) & (hi > 0)].tolist())):
                ra, rb = find(a), find(b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(a) for a in range(m + 1)])
    flat = roots[lab].ravel()
    _, first = np.unique(flat, return_index=True)
    order = flat[np.sort(first)]
    order = order[order > 0]
    remap = np.zeros(m + 1, dtype=np.int64)
    remap[order] = np.arange(1, len(order) + 1)
    return remap[roots[lab]], len(order)


def point_labels(cell_lab: np.ndarray, shape: tuple, periodic: bool, spacing: np.ndarray):
    """Sheet of every mesh point: that of an adjacent crossed cell (the smallest label), else
    that of the nearest such point (Euclidean, ``spacing`` per axis, periodic images).

    Returns int labels (shape) and the bool mask of the points next to a crossed cell."""
    lab = np.zeros(shape, dtype=np.int64)
    big = np.iinfo(np.int64).max
    best = np.full(shape, big)
    for s in np.indices((2, 2, 2)).reshape(3, -1).T:  # point p is corner s of cell p - s
        if periodic:
            c = np.roll(cell_lab, tuple(s), axis=(0, 1, 2))
            best = np.minimum(best, np.where(c > 0, c, big))
        else:
            sl = tuple(slice(s[a], s[a] + cell_lab.shape[a]) for a in range(3))
            c = np.full(shape, big)
            c[sl] = np.where(cell_lab > 0, cell_lab, big)
            best = np.minimum(best, c)
    seed = best < big
    lab[seed] = best[seed]
    if not np.any(lab):
        return lab, seed
    pad = [(n // 2 + 1, n // 2 + 1) if periodic else (0, 0) for n in shape]
    big_lab = np.pad(lab, pad, mode="wrap") if periodic else lab
    idx = ndimage.distance_transform_edt(big_lab == 0, sampling=spacing, return_distances=False,
                                         return_indices=True)
    filled = big_lab[tuple(idx)]
    centre = tuple(slice(p[0], p[0] + n) for p, n in zip(pad, shape))
    return filled[centre], seed


def _centres(k_red: np.ndarray, lab: np.ndarray, seed: np.ndarray, m: int, periodic: bool) -> np.ndarray:
    """Centre (reduced, (m + 1, 3)) of the points next to each sheet's cells; circular mean when periodic."""
    ls = lab[seed]
    ks = k_red[seed]
    out = np.zeros((m + 1, 3))
    if not len(ls):
        return out
    cnt = np.maximum(np.bincount(ls, minlength=m + 1), 1)
    for a in range(3):
        if periodic:
            c = np.bincount(ls, np.cos(2 * np.pi * ks[:, a]), minlength=m + 1)
            s = np.bincount(ls, np.sin(2 * np.pi * ks[:, a]), minlength=m + 1)
            x = np.arctan2(s, c) / (2 * np.pi)
            out[:, a] = x - np.floor(x + 0.5)
        else:
            out[:, a] = np.bincount(ls, ks[:, a], minlength=m + 1) / cnt
    return out


def _boundary_faces(above: np.ndarray, cl: np.ndarray, periodic: bool):
    """Mesh faces between a cell with all corners occupied (E < E_F) and a crossed cell.

    Returns corners int (nf, 4), flat point indices in the order of a loop whose normal points
    out of the occupied cell, and the sheet label (nf,) of the crossed cell."""
    shape = above.shape
    cshape = shape if periodic else tuple(n - 1 for n in shape)
    anyv = np.zeros(cshape, bool)
    for s in np.indices((2, 2, 2)).reshape(3, -1).T:
        anyv |= (np.roll(above, tuple(-s), axis=(0, 1, 2)) if periodic else
                 above[s[0]:s[0] + cshape[0], s[1]:s[1] + cshape[1], s[2]:s[2] + cshape[2]])
    c = np.argwhere(~anyv)
    corners, labels = [], []
    for a in range(3):
        eb, ec = np.eye(3, dtype=int)[(a + 1) % 3], np.eye(3, dtype=int)[(a + 2) % 3]
        for sgn in (1, -1):
            nb = c.copy()
            nb[:, a] += sgn
            ok = np.ones(len(c), bool) if periodic else (nb[:, a] >= 0) & (nb[:, a] < cshape[a])
            nb = nb % np.array(cshape)
            lab = np.where(ok, cl[nb[:, 0], nb[:, 1], nb[:, 2]], 0)
            keep = lab > 0
            base = c[keep] + (np.eye(3, dtype=int)[a] if sgn > 0 else 0)
            loop = [0 * eb, eb, eb + ec, ec] if sgn > 0 else [0 * eb, ec, eb + ec, eb]
            pts = (base[:, None, :] + np.array(loop)[None]) % np.array(shape)
            corners.append((pts[..., 0] * shape[1] + pts[..., 1]) * shape[2] + pts[..., 2])
            labels.append(lab[keep])
    return np.concatenate(corners).reshape(-1, 4), np.concatenate(labels)


def surface_chern(interp: Interpolator, k_red: np.ndarray, faces: list, n_sheets: int,
                  chunk: int = 500) -> np.ndarray:
    """Integer Chern numbers: the Berry flux of band n through the faces between the occupied
    cells and each sheet (lattice-gauge plaquettes of the band's eigenvectors at the corners).

    faces : list of (band 0-based, global sheet offset, corners (nf, 4), labels (nf,)).
    Returns float (n_sheets,), the flux / 2 pi (0 where a sheet has no such face), and the largest
    |Berry phase| of one plaquette per sheet (the integer is the enclosed charge only when every
    plaquette's phase is well below pi: no node within about a mesh step of the surface)."""
    out, worst = np.zeros(n_sheets), np.zeros(n_sheets)
    need = np.unique(np.concatenate([f[2].ravel() for f in faces])) if faces else np.zeros(0, int)
    if not len(need):
        return out, worst
    bands = sorted({f[0] for f in faces})
    col = {n: i for i, n in enumerate(bands)}
    pos = np.full(len(k_red), -1)
    pos[need] = np.arange(len(need))
    U = np.empty((len(need), interp.nw, len(bands)), complex)
    for i in range(0, len(need), chunk):
        _, V = np.linalg.eigh(interp.hamiltonian(interp.phase(k_red[need[i:i + chunk]])))
        U[i:i + chunk] = V[:, :, bands]
    for n, off, corners, labels in faces:
        u = U[pos[corners], :, col[n]]  # (nf, 4, nw)
        prod = np.ones(len(corners), complex)
        for j in range(4):
            prod *= np.einsum("fi,fi->f", np.conj(u[:, j]), u[:, (j + 1) % 4])
        phase = -np.angle(prod)
        out += np.bincount(off + labels, phase, minlength=n_sheets) / (2 * np.pi)
        np.maximum.at(worst, off + labels, np.abs(phase))
    return out, worst


def find_sheets(E: np.ndarray, k_red: np.ndarray, grid: tuple, periodic: bool, spacing: np.ndarray,
                fermi_energies: Sequence[float], bands: Sequence[int]) -> tuple[list, np.ndarray, list]:
    """Pass 1: the sheets of each band at each Fermi level and the sheet of every point.

    E : float (nk, nw) eV on the mesh (C order, shape ``grid``); bands : 0-based bands to label.
    Returns (meta, lookup, faces): meta[g] = dict(e, band, sheet, n_cells, center_reduced) of
    global sheet g; lookup int (nE, len(bands), nk) the global sheet of each point's weight;
    faces the input of :func:`surface_chern`.
    """
    meta, lookup, faces = [], np.zeros((len(fermi_energies), len(bands), len(k_red)), dtype=np.int64), []
    for e, ef in enumerate(fermi_energies):
        for bi, n in enumerate(bands):
            above = E[:, n].reshape(grid) > ef
            cl, m = label_cells(_cells_crossed(above, periodic), periodic)
            if m:
                pl, seed = point_labels(cl, grid, periodic, spacing)
            else:
                pl, seed = np.zeros(grid, dtype=np.int64), np.zeros(grid, bool)
            pl, seed = pl.reshape(-1), seed.reshape(-1)
            ncell = np.bincount(cl.reshape(-1), minlength=m + 1)
            cen = _centres(k_red, pl, seed, m, periodic)
            lookup[e, bi] = len(meta) + pl
            if m:
                corners, labels = _boundary_faces(above, cl, periodic)
                faces.append((int(n), len(meta), corners, labels))
            for lab in range(m + 1):
                meta.append({"e": e, "band": int(n) + 1, "sheet": lab, "n_cells": int(ncell[lab]) if lab else 0,
                             "center_reduced": cen[lab].tolist() if lab else None})
    return meta, lookup, faces
