"""Uniform k-point meshes in reduced coordinates.

Conventions (shared with the rest of the package)
-------------------------------------------------
* ``k_red`` are reduced (fractional) coordinates with respect to the reciprocal
  lattice rows ``b_i`` (``a_i . b_j = 2 pi delta_ij``):  ``k_cart = k_red @ recip_lattice``.
* A Gamma-centred mesh ``N1 x N2 x N3`` holds ``k_red = (i1/N1, i2/N2, i3/N3)`` with
  ``i_a in range(N_a)``; a shifted mesh adds ``shift_a / (2 N_a)`` with ``shift_a in {0, 1}``
  (spglib's ``is_shift`` convention).
* Points are ordered like ``numpy.indices(mesh).reshape(3, -1).T``: C order, ``i3`` fastest.
  The flat index of ``(i1, i2, i3)`` is ``(i1 * N2 + i2) * N3 + i3``.

Irreducible points and their weights need the crystal symmetry and live in
:mod:`gme_wannier.irreducible` (``irreducible_kpoints``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .io.errors import GMEInputError

__all__ = ["check_mesh", "check_shift", "uniform_mesh", "mesh_index", "box_mesh"]


def check_mesh(mesh: Sequence[int]) -> tuple[int, int, int]:
    """Validate a mesh size and return it as a tuple of three positive ints.

    Parameters
    ----------
    mesh : sequence of 3 int
        Number of points along each reciprocal lattice vector.

    Raises
    ------
    GMEInputError (a ValueError)
        If ``mesh`` does not hold exactly three positive integers.
    """
    try:
        arr = np.asarray(mesh, dtype=float)
    except (TypeError, ValueError):
        raise GMEInputError(f"k mesh must hold 3 positive integers, got {mesh!r}") from None
    if arr.shape != (3,):
        raise GMEInputError(f"k mesh must have 3 entries, got {mesh!r}")
    if not np.all(np.isfinite(arr)) or not np.all(np.equal(np.mod(arr, 1), 0)) or np.any(arr < 1):
        raise GMEInputError(f"k mesh must hold 3 positive integers, got {mesh!r}")
    return int(arr[0]), int(arr[1]), int(arr[2])


def check_shift(shift: Sequence[int]) -> tuple[int, int, int]:
    """Validate a mesh shift (spglib ``is_shift`` convention, entries 0 or 1).

    Raises
    ------
    GMEInputError (a ValueError)
        If ``shift`` does not hold exactly three entries in {0, 1}.
    """
    arr = np.asarray(shift)
    if arr.shape != (3,) or not np.all(np.isin(arr, (0, 1))):
        raise GMEInputError(f"mesh shift must be 3 entries in {{0, 1}}, got {shift!r}")
    return int(arr[0]), int(arr[1]), int(arr[2])


def uniform_mesh(mesh: Sequence[int], shift: Sequence[int] = (0, 0, 0)) -> np.ndarray:
    """Uniform (Monkhorst-Pack style) mesh covering the whole Brillouin zone once.

    Parameters
    ----------
    mesh : sequence of 3 int
        ``(N1, N2, N3)``.
    shift : sequence of 3 int, optional
        0 (Gamma-centred along that axis) or 1 (shifted by half a mesh step).

    Returns
    -------
    k_red : float ndarray, shape (N1*N2*N3, 3)
        Reduced coordinates ``(i_a + shift_a/2) / N_a`` in [0, 1), C order (``i3`` fastest).
        Every point carries the weight ``1 / (N1 N2 N3)`` (fraction of the BZ).
    """
    n = np.array(check_mesh(mesh))
    s = np.array(check_shift(shift))
    idx = np.indices(tuple(n)).reshape(3, -1).T
    return (idx + 0.5 * s) / n


def mesh_index(i: np.ndarray, mesh: Sequence[int]) -> np.ndarray:
    """Flat C-order index of integer mesh addresses (taken modulo the mesh).

    Parameters
    ----------
    i : int ndarray, shape (..., 3)
        Integer addresses ``(i1, i2, i3)``; any integers, reduced modulo ``mesh``.
    mesh : sequence of 3 int

    Returns
    -------
    int ndarray, shape (...)
        ``(i1 * N2 + i2) * N3 + i3`` with each ``i_a`` taken modulo ``N_a``; this is the
        row of :func:`uniform_mesh` holding that point.
    """
    n = np.array(check_mesh(mesh))
    i = np.mod(np.asarray(i, dtype=np.int64), n)
    return (i[..., 0] * n[1] + i[..., 1]) * n[2] + i[..., 2]


def box_mesh(
    center: Sequence[float] | None,
    b1: Sequence[float] = (1.0, 0.0, 0.0),
    b2: Sequence[float] = (0.0, 1.0, 0.0),
    b3: Sequence[float] = (0.0, 0.0, 1.0),
    mesh: Sequence[int] = (1, 1, 1),
) -> tuple[np.ndarray, float]:
    """Mesh on a parallelepiped of k space, Wannier90's ``gyrotropic_box_*`` convention.

    Wannier90 3.1 (``postw90/gyrotropic.F90`` and the parameter reader) uses the box rows
    ``b1, b2, b3`` (``gyrotropic_box_b1..3``, reduced coordinates, default the identity),
    ``box_corner = gyrotropic_box_center - (b1 + b2 + b3)/2`` (``box_corner = 0`` when no centre
    is given), ``db_a = 1/kmesh(a)``, points
    ``k = box_corner + (i1 db1) b1 + (i2 db2) b2 + (i3 db3) b3`` with ``i_a = 0 .. N_a - 1``
    (the last index fastest) and ``kweight = db1 db2 db3 det(box)``.

    Parameters
    ----------
    center : sequence of 3 float or None
        Centre of the box, reduced coordinates. ``None`` reproduces Wannier90 without
        ``gyrotropic_box_center``: the corner is at Gamma (it is *not* centred on Gamma).
    b1, b2, b3 : sequence of 3 float
        Edges of the box, reduced coordinates (rows of Wannier90's ``gyrotropic%box``).
    mesh : sequence of 3 int
        ``gyrotropic_kmesh``: number of points along each edge.

    Returns
    -------
    k_red : float ndarray, shape (N1*N2*N3, 3)
        Reduced coordinates (not wrapped into [0, 1)), C order (``i3`` fastest) as in
        Wannier90's ``loop_xyz``.
    weight : float
        Weight of every point as a fraction of the whole BZ,
        ``|det(b1, b2, b3)| / (N1 N2 N3)``. Wannier90 uses the signed determinant; a
        left-handed box would flip the sign of its result, we take the absolute value.
    """
    n = np.array(check_mesh(mesh))
    box = np.array([b1, b2, b3], dtype=float)
    if box.shape != (3, 3):
        raise GMEInputError("box edges b1, b2, b3 must each have 3 components")
    det = float(np.linalg.det(box))
    if not np.all(np.isfinite(box)) or abs(det) < 1e-12:
        raise GMEInputError(f"box edges b1, b2, b3 are linearly dependent (det = {det:g})")
    if center is None:
        corner = np.zeros(3)
    else:
        c = np.asarray(center, dtype=float)
        if c.shape != (3,) or not np.all(np.isfinite(c)):
            raise GMEInputError(f"box center must have 3 components, got {center!r}")
        corner = c - 0.5 * box.sum(axis=0)
    frac = np.indices(tuple(n)).reshape(3, -1).T / n
    return corner + frac @ box, abs(det) / float(np.prod(n))
