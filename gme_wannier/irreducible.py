"""The point operations acting on k, and the irreducible k-points of a uniform mesh: spglib's
whole-mesh mapping, and a plane-by-plane search in bounded memory for meshes too large for it.

The operations relating the integrand at different k (:func:`kspace_operations`) are
``F(K_g k) = det(R_g) R_g F(k) R_g^T``, with ``K_g = W^-T`` for a unitary operation ``W`` of
:func:`gme_wannier.symmetry.find_symmetry`, ``-W^-T`` for a primed one, both with time reversal
(docs/theory.md section 8). Only the operations that map the mesh onto itself are used.

Coordinates: k is reduced (column vectors, ``k_red @ recip_lattice`` is Cartesian). A point of
``uniform_mesh(mesh, shift)`` is addressed by its doubled address ``addr2 = 2 i + shift``
(int, per axis), so ``k_red = addr2 / (2 N)`` exactly and a half-step shift stays integer.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import spglib

from .kmesh import check_mesh, check_shift, mesh_index
from .symmetry import CrystalSymmetry, SymmetryError, _call_spglib

__all__ = ["kspace_operations", "IrreducibleKpoints", "irreducible_kpoints", "irreducible_points_lowmem",
           "mesh_operations", "image_index"]


def kspace_operations(sym: CrystalSymmetry) -> tuple[np.ndarray, np.ndarray]:
    """The operations relating the GME integrand at different k.

    Each pair ``(K_g, R_g)`` means ``F(K_g k) = det(R_g) R_g F(k) R_g^T``, with ``K_g``
    acting on reduced k (column vector) and ``R_g`` the Cartesian spatial part.
    Unitary operation ``W``: ``K = W^-T``; primed: ``K = -W^-T``; with time reversal each
    ``W`` appears with both signs.

    Parameters
    ----------
    sym : CrystalSymmetry
        Uses ``rotations_red``, ``rotations_cart``, ``antiunitary`` and ``time_reversal``.

    Returns
    -------
    kops_red : int ndarray, shape (nk, 3, 3)
        ``K_g`` on reduced k coordinates.
    rots_cart : float ndarray, shape (nk, 3, 3)
        The matching Cartesian ``R_g`` (to use in ``det(R) R T R^T``).
    """
    w_inv_t = np.rint(np.linalg.inv(sym.rotations_red).transpose(0, 2, 1)).astype(int)
    kops, rots = [], []
    for g in range(sym.order):
        signs = (1, -1) if sym.time_reversal else ((-1,) if sym.antiunitary[g] else (1,))
        for s in signs:
            kops.append(s * w_inv_t[g])
            rots.append(sym.rotations_cart[g])
    return np.array(kops), np.array(rots)


def _mesh_matrix(kop: np.ndarray, mesh: np.ndarray, shift: np.ndarray) -> np.ndarray | None:
    """``K`` (int (3, 3), reduced k) acting on doubled addresses, or None if K does not
    preserve the mesh.

    In doubled addresses ``K`` acts as ``M_ab = K_ab N_a / N_b``; the mesh is mapped onto
    itself iff ``M`` is integer and ``M shift = shift (mod 2)``.
    """
    m_float = kop * mesh[:, None] / mesh[None, :]
    m_int = np.rint(m_float).astype(np.int64)
    if np.abs(m_float - m_int).max() > 1e-9:
        return None
    if np.any(np.mod(m_int @ shift - shift, 2) != 0):
        return None
    return m_int


def _mesh_permutation(kop: np.ndarray, mesh: np.ndarray, shift: np.ndarray,
                      addr2: np.ndarray) -> np.ndarray | None:
    """Index of ``K k`` for every point of the mesh, or None if K does not preserve it.

    ``addr2`` (N, 3) int are doubled addresses ``2 i + shift``, so ``k = addr2 / (2 N)``.
    """
    m_int = _mesh_matrix(kop, mesh, shift)
    if m_int is None:
        return None
    new2 = addr2 @ m_int.T
    return mesh_index((new2 - shift) // 2, mesh)


class IrreducibleKpoints(NamedTuple):
    """Irreducible points of a uniform mesh.

    Attributes
    ----------
    k_red : float ndarray, shape (nirr, 3)
        Reduced coordinates of the representatives, in [0, 1); each is the first point of
        its star in :func:`gme_wannier.kmesh.uniform_mesh` order.
    weights : float ndarray, shape (nirr,)
        Star size / N; sums to 1.
    full_to_irr : int ndarray, shape (N,)
        For every point of ``uniform_mesh(mesh, shift)``, the row of ``k_red`` holding its
        representative.
    irr_index : int ndarray, shape (nirr,)
        Row of ``uniform_mesh(mesh, shift)`` of each representative.
    n_ops : int
        Number of distinct k-space operations used (time reversal counted). Operations that
        do not map the mesh onto itself (e.g. a 3-fold axis with an anisotropic mesh) are
        left out; the subgroup that does is used.
    n_ops_dropped : int
        Number of k-space operations left out for that reason.
    """

    k_red: np.ndarray
    weights: np.ndarray
    full_to_irr: np.ndarray
    irr_index: np.ndarray
    n_ops: int
    n_ops_dropped: int


def irreducible_kpoints(mesh, sym: CrystalSymmetry, shift=(0, 0, 0)) -> IrreducibleKpoints:
    """Irreducible points of a uniform mesh and their weights (spglib).

    With ``S_irr = symmetrize_tensor(sum_i weights[i] * F(k_red[i]), sym)``, ``S_irr`` equals
    ``symmetrize_tensor(mean of F over the full mesh, sym)``, which is the plain full-mesh
    mean when ``F`` obeys the symmetry exactly (docs/theory.md section 8).

    Parameters
    ----------
    mesh : sequence of 3 int
        Number of points along ``b1, b2, b3``.
    sym : CrystalSymmetry
        Unitary operations map ``k -> R k``, primed ones ``k -> -R k``; with
        ``sym.time_reversal`` also ``k -> -k`` (see :func:`kspace_operations`).
    shift : sequence of 3 int, optional
        0/1 per axis (half-step shift), as in :func:`gme_wannier.kmesh.uniform_mesh`.

    Returns
    -------
    IrreducibleKpoints
        Named tuple ``(k_red, weights, full_to_irr, irr_index, n_ops, n_ops_dropped)``.

    Raises
    ------
    SymmetryError
        If spglib fails or its mapping is not the orbit partition of the operations.
    """
    n = np.array(check_mesh(mesh), dtype=np.int64)
    s = np.array(check_shift(shift), dtype=np.int64)
    npts = int(np.prod(n))
    addr2 = 2 * np.indices(tuple(n)).reshape(3, -1).T.astype(np.int64) + s

    kops, _ = kspace_operations(sym)
    kops = np.unique(kops, axis=0)
    perms, kept = [], []
    for kop in kops:
        perm = _mesh_permutation(kop, n, s, addr2)
        if perm is not None:
            perms.append(perm)
            kept.append(kop)
    n_dropped = len(kops) - len(kept)
    rep = _spglib_representatives(kept, n, s)

    _check_orbits(rep, perms, npts)
    irr_index, full_to_irr, counts = np.unique(rep, return_inverse=True, return_counts=True)
    k_all = (addr2 / (2.0 * n))
    return IrreducibleKpoints(
        k_red=k_all[irr_index], weights=counts / float(npts),
        full_to_irr=full_to_irr.reshape(-1), irr_index=irr_index,
        n_ops=len(kept), n_ops_dropped=n_dropped)


def _spglib_representatives(kept: list[np.ndarray], n: np.ndarray, s: np.ndarray) -> np.ndarray:
    """spglib's star of every point: int (N,), the C-order index of the first point of its star.

    ``kept`` are the k-space operations (int (3, 3), reduced k) that preserve the mesh ``n``
    with shift ``s`` (int (3,) each).
    """
    npts = int(np.prod(n))
    # spglib takes real-space rotations W and maps k with W^T; the set {W^T} of a group
    # equals {W^-T}, so pass W = K^-T (with the sign of K for primed / time-reversed).
    real_space = np.rint(np.linalg.inv(np.array(kept)).transpose(0, 2, 1)).astype("intc")
    mapping, grid = _call_spglib(
        spglib.get_stabilized_reciprocal_mesh, np.array(n, dtype="intc"),
        np.ascontiguousarray(real_space), is_shift=np.array(s, dtype="intc"),
        is_time_reversal=False, source="the k mesh")
    # spglib index -> our C-order index
    ours = mesh_index(np.asarray(grid, dtype=np.int64), n)
    rep = np.empty(npts, dtype=np.int64)
    rep[ours] = ours[np.asarray(mapping, dtype=np.int64)]
    # spglib's representative of a star may be any member: use the first in our order
    first = np.full(npts, npts, dtype=np.int64)
    np.minimum.at(first, rep, np.arange(npts))
    return first[rep]


def mesh_operations(sym: CrystalSymmetry, mesh, shift=(0, 0, 0)) -> tuple[np.ndarray, int]:
    """The distinct k-space operations that map the mesh onto itself, as int (nops, 3, 3) matrices
    on doubled addresses ``2 i + shift`` (for an unshifted mesh, on the addresses i themselves;
    identity included), and the number of operations left out because they do not."""
    n = np.array(check_mesh(mesh), dtype=np.int64)
    s = np.array(check_shift(shift), dtype=np.int64)
    kops = np.unique(kspace_operations(sym)[0], axis=0)
    mats = [m for m in (_mesh_matrix(kop, n, s) for kop in kops) if m is not None]
    return np.array(mats), len(kops) - len(mats)


def image_index(addr2f: np.ndarray, m: np.ndarray, mesh: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """C-order flat index of the images ``m addr2`` of doubled addresses (float (n, 3), so that
    the product is a BLAS one; exact for integers), for a matrix ``m`` of :func:`mesh_operations`."""
    i = (np.rint(addr2f @ np.asarray(m, dtype=float).T).astype(np.int64) - shift) // 2 % mesh
    return (i[:, 0] * mesh[1] + i[:, 1]) * mesh[2] + i[:, 2]


def irreducible_points_lowmem(mesh, sym: CrystalSymmetry, shift=(0, 0, 0),
                              ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The representatives and weights of :func:`irreducible_kpoints`, in memory bounded by
    blocks of 2^20 mesh points (plus the irreducible points themselves) instead of
    the whole mesh.

    A point is kept iff its C-order flat index is the smallest of its images under the
    operations that preserve the mesh (the same representative as :func:`irreducible_kpoints`),
    its weight is the size of its star over N. The operations are applied one after the other
    to the points still in the running, so the cost is a few passes over the mesh rather than one
    per operation (SrSi2, 48 operations, 512^3: 180 s before, see docs/performance.md). Used for meshes too large for spglib's
    whole-mesh mapping (1.1 GB at 128^3, 8 GB at 256^3).

    Parameters
    ----------
    mesh : sequence of 3 int
        Number of points along ``b1, b2, b3``.
    sym : CrystalSymmetry
        As in :func:`irreducible_kpoints`.
    shift : sequence of 3 int, optional
        0/1 per axis (half-step shift), as in :func:`gme_wannier.kmesh.uniform_mesh`.

    Returns
    -------
    k_red : float ndarray, shape (nirr, 3)
        Reduced coordinates of the representatives, in [0, 1), in C order of the mesh.
    weights : float ndarray, shape (nirr,)
        Star size / N; sums to 1.
    n_ops : int
        Number of distinct k-space operations that preserve the mesh (used).
    n_ops_dropped : int
        Number of k-space operations left out because they do not.
    """
    n = np.array(check_mesh(mesh), dtype=np.int64)
    s = np.array(check_shift(shift), dtype=np.int64)
    mats, n_dropped = mesh_operations(sym, mesh, shift)  # on doubled addresses
    n_ops = len(mats)
    # the identity keeps every point: leave it out of the filter (it still counts in the stabilizer)
    others = [m for m in mats if not np.array_equal(m, np.eye(3, dtype=np.int64))]
    plane = 2 * np.indices((1, int(n[1]), int(n[2]))).reshape(3, -1).T.astype(np.int64) + s
    k_out, w_out = [], []
    npts = float(np.prod(n))
    step = 1 << 20  # points per block: a few (step, 3) arrays, ~25 MB each

    def flat(addr2f, m):
        return image_index(addr2f, m, n, s)

    def not_below(af, own, i1, m):  # image index >= own: decided by the first address mostly
        x = (np.rint(af @ m[0]).astype(np.int64) - s[0]) // 2 % n[0]
        ok = x > i1
        tie = np.nonzero(x == i1)[0]
        if len(tie):
            ok[tie] = flat(af[tie], m) >= own[tie]
        return ok

    mats_f = [m.astype(float) for m in others]
    for i1 in range(int(n[0])):
        for j0 in range(0, len(plane), step):
            addr2 = plane[j0:j0 + step] + np.array([2 * i1, 0, 0])
            own = mesh_index((addr2 - s) // 2, n)
            # a point is its star's representative iff no image has a smaller flat index. The
            # operations are applied to the candidates left by the previous ones, and the first
            # address of an image decides most comparisons.
            cand = np.arange(len(addr2))
            af = addr2.astype(float)
            for m in mats_f:
                cand = cand[not_below(af[cand], own[cand], i1, m)]
                if len(cand) == 0:
                    break
            if len(cand):
                a, o = af[cand], own[cand]
                n_stab = 1 + sum((flat(a, m) == o).astype(np.int64) for m in mats_f)
                k_out.append(addr2[cand] / (2.0 * n))
                w_out.append(n_ops / n_stab / npts)
    return np.concatenate(k_out), np.concatenate(w_out), n_ops, n_dropped


def _check_orbits(rep: np.ndarray, perms: list[np.ndarray], npts: int) -> None:
    """Check that ``rep`` labels exactly the orbits of the group given by ``perms``."""
    n_stab = np.zeros(npts, dtype=np.int64)
    arange = np.arange(npts)
    for perm in perms:
        if np.any(rep[perm] != rep):
            raise SymmetryError("spglib's irreducible k mapping is not invariant under the "
                                "symmetry operations")
        n_stab += perm == arange
    star = np.bincount(rep, minlength=npts)[rep]
    if np.any(star * n_stab != len(perms)):
        raise SymmetryError("spglib's irreducible k mapping merges points that are not "
                            "related by symmetry")
