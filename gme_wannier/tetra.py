"""Linear tetrahedron method for Fermi-surface integrals on a uniform mesh.

Each cell of the Gamma-centred mesh N1 x N2 x N3 (corners i + {0,1}^3, periodic) is cut into six
tetrahedra around its shortest main diagonal (Bloechl, Jepsen, Andersen, PRB 49, 16223 (1994)).
In each tetrahedron a band energy E and a quantity X are interpolated linearly between the four
corners; then, with V_T = 1 / (6 N1 N2 N3) the fraction of the BZ of one tetrahedron,

    int_T delta(E_F - E(k)) X(k) d^3k / V_BZ = sum_c w_c(E_F) X_c

exactly, where the cross-section {E = E_F} is a triangle or a quadrilateral (two triangles) and
the centroid rule on each triangle is exact for linear X. The corner weights w_c follow from the
points where E_F cuts the edges (t_ij = (E_F - e_i) / (e_j - e_i)) and the area of the section
divided by |grad E| (Lambin and Vigneron, PRB 29, 3430 (1984)). Summed over tetrahedra, the
weight of mesh point k for band n is W[k, n, e], so that

    sum_k sum_n W[k, n, e] X_n(k)  ~  int delta(E_F,e - E_n(k)) X_n(k) d^3k / V_BZ,

band by band with the bands sorted by energy at every corner. ``sum_k W`` is the density of
states per unit cell (1/eV), and the sum of X = 1 integrates to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from . import moments as mom
from .banddata import band_data
from .bands import Interpolator
from .integrate import GMESettings, SurfaceWeights, block_size, gme_sums, zero_sums
from .model import TBModel

__all__ = ["tetrahedra", "tetra_corner_weights", "fermi_surface_weights", "tetra_chunk", "sum_over_mesh_tetra",
           "coarse_screen", "screen_mesh", "CoarseScreen"]

# the 6 tetrahedra of a cube along the main diagonal 0 -> 7 (corner c = 4 i + 2 j + k)
_CUBE = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
_TET_07 = np.array([[0, 1, 3, 7], [0, 1, 5, 7], [0, 2, 3, 7], [0, 2, 6, 7], [0, 4, 5, 7], [0, 4, 6, 7]])


def tetrahedra(mesh: Sequence[int], recip_lattice: np.ndarray) -> np.ndarray:
    """Corner indices of the 6 N1 N2 N3 tetrahedra of the mesh.

    Parameters
    ----------
    mesh : 3 ints
    recip_lattice : float (3, 3), 1/Angstrom, reciprocal vectors as rows (only used to pick the
        shortest of the four main diagonals of a cell, in Cartesian coordinates).

    Returns
    -------
    int (6 N, 4): flat C-order indices (:func:`gme_wannier.kmesh.mesh_index`) of the corners.
    """
    n = np.array(mesh, dtype=int)
    base = np.indices(tuple(n)).reshape(3, -1).T  # (N, 3)
    corners = np.mod(base[:, None, :] + _CUBE[None, :, :], n)  # (N, 8, 3)
    flat = (corners[..., 0] * n[1] + corners[..., 1]) * n[2] + corners[..., 2]  # (N, 8)
    return flat[:, cube_tetrahedra(mesh, recip_lattice)].reshape(-1, 4)


def cube_tetrahedra(mesh: Sequence[int], recip_lattice: np.ndarray) -> np.ndarray:
    """The 6 tetrahedra of one cell around its shortest main diagonal: int (6, 4), corner ids
    c = 4 i + 2 j + k of the cell's corners (i, j, k) in {0, 1}^3."""
    n = np.array(mesh, dtype=int)
    dk = recip_lattice / n[:, None]  # cell edges, Cartesian
    # the four main diagonals: corner c -> 7 - c for c = 0, 1, 2, 3
    best, best_len = 0, np.inf
    for c in range(4):
        d = (_CUBE[7 - c] - _CUBE[c]) @ dk
        if np.linalg.norm(d) < best_len - 1e-12:
            best, best_len = c, np.linalg.norm(d)
    # map the cube so that corner `best` becomes 0 (reflect the axes where best has a 1)
    flip = _CUBE[best]
    cube = np.abs(_CUBE - flip)  # corner c of the reflected cube -> its offsets in the original
    # reflected corner index of each original corner position
    perm = np.array([int(np.nonzero((cube == _CUBE[c]).all(axis=1))[0][0]) for c in range(8)])
    return perm[_TET_07]


def tetra_corner_weights(e: np.ndarray, EF: np.ndarray, volume: float) -> np.ndarray:
    """Fermi-surface weights of the four corners of tetrahedra.

    Parameters
    ----------
    e : float (T, 4), eV, corner energies (any order).
    EF : float (nE,), eV.
    volume : fraction of the BZ of one tetrahedron.

    Returns
    -------
    float (T, 4, nE), 1/eV: w_c(E_F) with sum_c w_c X_c = int_T delta(E_F - E) X (linear E, X),
    in the corner order of ``e``.
    """
    e = np.asarray(e, dtype=float).reshape(-1, 4)
    EF = np.atleast_1d(np.asarray(EF, dtype=float))
    order = np.argsort(e, axis=-1)
    es = np.take_along_axis(e, order, axis=-1)
    e1, e2, e3, e4 = (es[:, i:i + 1] for i in range(4))  # (T, 1)
    x = EF[None, :]  # (1, nE)
    with np.errstate(all="ignore"):  # the masked-out entries may overflow; they are not used
        return _weights(order, x, e1, e2, e3, e4, volume)


def _weights(order, x, e1, e2, e3, e4, volume):
    tiny = 1e-300
    out = np.zeros((len(order), 4, x.shape[1]))  # (T, corner in the caller's order, nE)

    def put(t, l, wc):  # weights of the sorted corners -> the caller's corners
        out[t[:, None], order[t], l[:, None]] = wc

    def safe(a):
        return np.where(np.abs(a) > tiny, a, tiny)

    def entries(m):  # the (tetrahedron, level) pairs of a case, and the corner energies there
        t, l = np.nonzero(m)
        return t, l, x[0, l], e1[t, 0], e2[t, 0], e3[t, 0], e4[t, 0]

    # case 1: e1 < E < e2, triangle on edges 1-2, 1-3, 1-4
    t, l, xe, a1, a2, a3, a4 = entries((x > e1) & (x <= e2))
    if len(t):
        d = xe - a1
        g = 3.0 * volume * d * d / safe((a2 - a1) * (a3 - a1) * (a4 - a1))
        t2, t3, t4 = d / safe(a2 - a1), d / safe(a3 - a1), d / safe(a4 - a1)
        put(t, l, np.stack([3.0 - t2 - t3 - t4, t2, t3, t4], axis=-1) * (g / 3.0)[..., None])
    # case 3: e3 < E < e4, triangle on edges 4-1, 4-2, 4-3
    t, l, xe, a1, a2, a3, a4 = entries((x > e3) & (x < e4))
    if len(t):
        d = a4 - xe
        g = 3.0 * volume * d * d / safe((a4 - a1) * (a4 - a2) * (a4 - a3))
        s1, s2, s3 = d / safe(a4 - a1), d / safe(a4 - a2), d / safe(a4 - a3)
        put(t, l, np.stack([s1, s2, s3, 3.0 - s1 - s2 - s3], axis=-1) * (g / 3.0)[..., None])
    # case 2: e2 < E <= e3, quadrilateral P13, P14, P24, P23 = two triangles; areas in the
    # standard tetrahedron (v1 = 0, v2 = x, v3 = y, v4 = z), weight = 6 V area / |grad E|
    t, l, xe, a1, a2, a3, a4 = entries((x > e2) & (x <= e3))
    if len(t):
        put(t, l, _quadrilateral(xe, a1, a2, a3, a4, volume, safe))
    return out


def _quadrilateral(x, e1, e2, e3, e4, volume, safe):
    """Corner weights (n, 4) of the section e2 < x <= e3 (sorted corners), for 1-d arrays."""
    t13 = (x - e1) / safe(e3 - e1)
    t14 = (x - e1) / safe(e4 - e1)
    t23 = (x - e2) / safe(e3 - e2)
    t24 = (x - e2) / safe(e4 - e2)
    z = np.zeros_like(t13)
    P13 = np.stack([z, t13, z], -1)
    P14 = np.stack([z, z, t14], -1)
    P24 = np.stack([1 - t24, z, t24], -1)
    P23 = np.stack([1 - t23, t23, z], -1)
    Aa = 0.5 * np.linalg.norm(np.cross(P14 - P13, P24 - P13), axis=-1)
    Ab = 0.5 * np.linalg.norm(np.cross(P24 - P13, P23 - P13), axis=-1)
    grad = np.sqrt((e2 - e1) ** 2 + (e3 - e1) ** 2 + (e4 - e1) ** 2)
    ga = 6.0 * volume * Aa / safe(grad)
    gb = 6.0 * volume * Ab / safe(grad)
    # corner shares of each section vertex P_ij: (1 - t) to i, t to j
    va = [(0, 2, t13), (0, 3, t14), (1, 3, t24)]
    vb = [(0, 2, t13), (1, 3, t24), (1, 2, t23)]
    wc = np.zeros(t13.shape + (4,))
    for verts, g in ((va, ga), (vb, gb)):
        for i, j, t in verts:
            wc[..., i] += g / 3.0 * (1 - t)
            wc[..., j] += g / 3.0 * t
    return wc


def fermi_surface_weights(E: np.ndarray, mesh: Sequence[int], recip_lattice: np.ndarray, EF: np.ndarray,
                          tets: np.ndarray = None, batch: int = 20000, sparse: bool = False,
                          volume: Optional[float] = None):
    """Weights W[k, n, e] of the linear tetrahedron method on the whole mesh.

    Parameters
    ----------
    E : float (N1 N2 N3, nb), eV, band energies (ascending) on the mesh in C order.
    mesh : 3 ints; recip_lattice : (3, 3) 1/Angstrom rows; EF : float (nE,), eV.
    tets : optional output of :func:`tetrahedra`, or the tetrahedra of a part of the mesh as
        indices into the rows of E (then give ``volume``).
    sparse : return only the mesh points with a non-zero weight.
    volume : fraction of the BZ of one tetrahedron, default 1 / len(tets) (the whole mesh).

    Returns
    -------
    W : float (nk, nb, nE), 1/eV: sum_k sum_n W X_n(k) ~ int delta(E_F - E_n) X_n d^3k / V_BZ;
    or, with ``sparse``, (idx, W[idx]) with idx the int (na,) points that a Fermi level reaches.
    Only tetrahedra that a Fermi level cuts are evaluated, in batches of ``batch``.
    """
    E = np.asarray(E, dtype=float)
    EF = np.atleast_1d(np.asarray(EF, dtype=float))
    nk, nb = E.shape
    if tets is None:
        tets = tetrahedra(mesh, recip_lattice)
    vol = 1.0 / len(tets) if volume is None else float(volume)
    lo, hi = EF.min(), EF.max()
    nE = len(EF)
    cuts = []
    for n in range(nb):
        e0, e1, e2, e3 = (E[tets[:, c], n] for c in range(4))  # (ntet,) each: no reduction over a short axis
        emin = np.minimum(np.minimum(e0, e1), np.minimum(e2, e3))
        emax = np.maximum(np.maximum(e0, e1), np.maximum(e2, e3))
        cuts.append(np.nonzero((emin < hi) & (emax > lo))[0])
    idx = np.unique(np.concatenate([tets[c].reshape(-1) for c in cuts])) if nb else np.zeros(0, int)
    W = np.zeros((len(idx), nb, nE))
    for n, cut in enumerate(cuts):
        for s in range(0, len(cut), batch):
            c = cut[s:s + batch]
            w = tetra_corner_weights(E[tets[c], n], EF, vol)  # (nc, 4, nE)
            pos = np.searchsorted(idx, tets[c].reshape(-1))
            # one bincount for all levels: bin (point, level), added in the same order as level by level
            bins = (pos[:, None] * nE + np.arange(nE)[None, :]).reshape(-1)
            W[:, n, :] += np.bincount(bins, weights=w.reshape(-1), minlength=len(idx) * nE).reshape(len(idx), nE)
    if sparse:
        return idx, W
    full = np.zeros((nk, nb, len(EF)))
    full[idx] = W
    return full


def tetra_chunk(interp: Interpolator, k_red: np.ndarray, W: np.ndarray, band0: int, pad: int,
                st: GMESettings, per_point: bool = False) -> dict:
    """Raw sums of one chunk with tetrahedron weights (same keys and units as
    :func:`gme_wannier.integrate.fermi_surface_chunk`).

    W : float (nk, nb, nE) 1/eV, :func:`fermi_surface_weights` of bands band0 .. band0 + nb - 1
    at these k-points. Per-band quantities are group means (the group sum shared equally by its
    members, gauge invariant); bands band0 - pad .. band0 + nb + pad - 1 are evaluated so that
    groups at the edges are whole.
    per_point : the sum of each point instead of their total: ``orb`` (and ``spin``) float
    (nk, nE, 3, 3), ``dos`` (nk, nE); e.g. with W[k, n, e] = 1 for e = n, the terms of every band
    at every point, to be weighted per cell (benchmarks/local_refinement_t0.py).
    """
    out = zero_sums(interp, len(st.EF))
    nk, nb, _ = W.shape
    if nk == 0:
        return {key: np.zeros((0,) + v.shape) for key, v in out.items()} if per_point else out
    b_lo = max(0, band0 - pad)
    b_hi = min(interp.nw, band0 + nb + pad)
    bd, _ = band_data(interp, k_red, degen_thresh=st.degen_thresh, columns=(b_lo, b_hi - b_lo))
    lab = bd.labels
    size = mom.group_sum(np.ones(lab.shape), lab)
    fi = mom.group_first_index(lab)
    cnt = np.maximum(size, 1.0)
    inner = slice(band0 - b_lo, band0 - b_lo + nb)

    def per_band(x):  # group mean at every member, bands band0 .. band0 + nb - 1
        shape = (len(lab),) + (1,) * (x.ndim - 2) + (lab.shape[1],)
        g = mom.group_sum(x, lab) / cnt.reshape(shape)
        idx = np.broadcast_to(fi.reshape(shape), g.shape)
        return np.take_along_axis(g, idx, axis=-1)[..., inner]

    if st.degeneracy == "skip":
        W = W * (np.take_along_axis(size, fi, axis=-1)[:, inner] < 1.5)[:, :, None]
    return gme_sums(SurfaceWeights(W, per_band(bd.v), per_band, np.ones(W.shape[:2])), bd, st, per_point=per_point)


# mesh points whose energies one block holds at a time (all bands: 200k x 56 x 8 B = 90 MB)
BLOCK_POINTS = 200_000
SCREEN_FACTOR = 3  # the screen's mesh is 3x coarser: its energies cost 1/27 of the fine ones
SCREEN_MARGIN = 0.05  # eV added to the spread of a band over a coarse cell's corners
_SCREEN_POINTS = 100_000  # points per group of coarse planes (energies of all bands)


def mesh_blocks(mesh: Sequence[int], budget: Optional[int] = None) -> list[tuple[int, int, int, int]]:
    """Blocks of cells (a, pa, c, pc): cell origins i in a .. a + pa - 1, j in c .. c + pc - 1,
    every k. At least 4 blocks along the first axis (when it has 4 planes) so that ranks share
    the work; more, and then along the second axis, while a block's points exceed ``budget``
    (default :data:`BLOCK_POINTS`).
    The layout depends on the mesh only (not on the number of ranks), so a checkpoint resumes
    under any rank count."""
    budget = BLOCK_POINTS if budget is None else int(budget)
    n1, n2, n3 = (int(x) for x in mesh)
    na = min(n1, max(4, -(-n1 * n2 * n3 // budget)))
    nc = 1
    while nc < n2 and (-(-n1 // na) + 1) * (-(-n2 // nc) + 1) * n3 > budget:
        nc += 1
    ea = np.linspace(0, n1, na + 1).round().astype(int)  # planes shared out evenly
    ec = np.linspace(0, n2, nc + 1).round().astype(int)
    return [(int(ea[i]), int(ea[i + 1] - ea[i]), int(ec[j]), int(ec[j + 1] - ec[j]))
            for i in range(na) for j in range(nc)]


def block_points(mesh: Sequence[int], block: tuple, recip_lattice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mesh points of a block of cells and its tetrahedra.

    Returns k_red float (np, 3) reduced (the planes a .. a + pa and lines c .. c + pc, the last
    one only when the block does not span the whole axis; every k) and tets int (6 pa pc N3, 4)
    indices into k_red.
    """
    n = np.array(mesh, dtype=int)
    a, pa, c, pc = block
    sizes = [pa if pa == n[0] else pa + 1, pc if pc == n[1] else pc + 1, n[2]]
    local = np.indices(tuple(sizes)).reshape(3, -1).T
    k_red = np.mod(local + np.array([a, c, 0]), n) / n
    cells = np.indices((pa, pc, n[2])).reshape(3, -1).T
    corners = cells[:, None, :] + _CUBE[None, :, :]  # local corner coordinates (nc, 8, 3)
    for ax in range(3):
        if sizes[ax] == n[ax]:
            corners[..., ax] %= n[ax]
    flat = (corners[..., 0] * sizes[1] + corners[..., 1]) * sizes[2] + corners[..., 2]
    return k_red, flat[:, cube_tetrahedra(mesh, recip_lattice)].reshape(-1, 4)


# 10 parameters: the mesh and settings, the screen, and the k loop's keyword-only options (as
# sum_over_kpoints).
def sum_over_mesh_tetra(model: TBModel, mesh, st: GMESettings, *, comm=None, chunk_size: int = 1000,
                        checkpoint=None, progress=None, interp: Optional[Interpolator] = None,
                        blas_threads: int = 1, screen: Optional[int] = SCREEN_FACTOR) -> dict:
    """Linear-tetrahedron Fermi-surface sums on the whole uniform Gamma-centred mesh.

    The cells are cut into blocks (:func:`mesh_blocks`), dealt over the ranks by the one k loop
    (:func:`gme_wannier.parallel.chunked_sum`: checkpoints and progress per block). A block
    computes the energies of its points (its cells' corners), the tetrahedron weights of its
    cells, and the moments at the points with a non-zero weight. A point on the border of two
    blocks gets part of its weight from each, and is evaluated in both: the sum is the same.
    Memory: the energies of one block (at most :data:`BLOCK_POINTS` points), whatever the mesh.

    screen : int or None. With f, the cells of a mesh f times coarser (:func:`coarse_screen`)
        that no band can cross the Fermi levels in mark the fine cells inside them, whose
        energies are then not computed (at T = 0 a few per cent of the cells are cut by a Fermi
        level). Same sums as without, up to what the marking misses; None: every cell.

    Returns the raw sums (see :func:`gme_wannier.integrate.fermi_surface_chunk`); ``smearing``
    is not used.
    """
    from threadpoolctl import threadpool_limits

    from .kmesh import check_mesh
    from .parallel import chunked_sum, get_comm

    if comm is None:
        comm = get_comm("serial")
    mesh = check_mesh(mesh)
    if interp is None:
        interp = Interpolator(model, external=st.external, spin=st.spin)
    blocks = mesh_blocks(mesh)
    volume = 1.0 / (6.0 * float(np.prod(mesh)))
    with threadpool_limits(limits=blas_threads):
        live = None if screen is None else coarse_screen(interp, mesh, st.EF.min(), st.EF.max(), screen,
                                                         comm=comm, chunk_size=chunk_size)

    def compute_chunk(b: int) -> dict:
        if live is None:
            k, tets = block_points(mesh, blocks[b], model.recip_lattice)
        else:
            k, tets = kept_corners(mesh, blocks[b], live.fine_cells(mesh, blocks[b]), model.recip_lattice)
        return _block_sums(interp, k, tets, mesh, volume, st, chunk_size)

    with threadpool_limits(limits=blas_threads):
        return chunked_sum(len(blocks), compute_chunk, comm, checkpoint=checkpoint, progress=progress,
                           items_per_chunk=[p * q * int(mesh[2]) for _, p, _, q in blocks])


def kept_corners(mesh: Sequence[int], block: tuple, live_cells: np.ndarray, recip_lattice: np.ndarray):
    """The corners of a block's kept cells and their tetrahedra, without the block's other points.

    live_cells : bool (pa pc N3,), the block's cells in the order of :func:`block_points`.
    Returns (k_red float (np, 3), tets int (6 n_kept, 4) indices into k_red, six per kept cell),
    the same arrays as selecting from :func:`block_points` (k_red in its order), or (None, None)
    if no cell is kept.
    """
    n = np.array(mesh, dtype=np.int64)
    a, pa, c, pc = block
    cells = np.nonzero(live_cells)[0]
    if len(cells) == 0:
        return None, None
    sizes = np.array([pa if pa == n[0] else pa + 1, pc if pc == n[1] else pc + 1, n[2]], dtype=np.int64)
    corners = np.stack(np.unravel_index(cells, (pa, pc, int(n[2]))), axis=1)[:, None, :] + _CUBE[None]
    corners %= sizes  # wraps only along an axis that the block spans whole
    flat = ((corners[..., 0] * sizes[1] + corners[..., 1]) * sizes[2] + corners[..., 2]).reshape(-1)
    mark = np.zeros(int(np.prod(sizes)), dtype=bool)
    mark[flat] = True
    need = np.nonzero(mark)[0]  # block-local indices of the needed points, ascending
    pos = (np.cumsum(mark) - 1).astype(np.int32)  # a block holds at most a few 10^5 points
    tets = pos[flat].reshape(-1, 8)[:, cube_tetrahedra(mesh, recip_lattice)].reshape(-1, 4)
    local = np.stack(np.unravel_index(need, tuple(sizes)), axis=1)
    return np.mod(local + np.array([a, c, 0]), n) / n, tets


def moment_sums(interp: Interpolator, k: np.ndarray, W: np.ndarray, band0: int, st: GMESettings,
                chunk_size: int) -> dict:
    """:func:`tetra_chunk` over the points k (nk, 3) with weights W (nk, nb, nE), ``chunk_size``
    points at a time or fewer (:func:`gme_wannier.integrate.block_size`: the Wannier-gauge
    matrices of a block within 32 MB; SrSi2, 1000 points: 3.5 s at once, 2.4 s in blocks of
    200), summed."""
    out = zero_sums(interp, len(st.EF))
    step = max(1, min(int(chunk_size), block_size(interp)))
    for i in range(0, len(k), step):
        part = tetra_chunk(interp, k[i:i + step], W[i:i + step], band0, 4, st)
        out = {key: out[key] + part[key] for key in out}
    return out


def _block_sums(interp, k, tets, mesh, volume, st, chunk_size) -> dict:
    """Tetrahedron sums of one block: its points k (np, 3) and tetrahedra (indices into k), from
    :func:`block_points` or :func:`kept_corners`, or (None, None) when no cell is kept."""
    EF = st.EF
    if k is None:
        return zero_sums(interp, len(EF))
    E = interp.energies(k, chunk_size)
    # bands that reach the Fermi window in this block
    reach = np.nonzero((E.min(axis=0) < EF.max()) & (E.max(axis=0) > EF.min()))[0]
    if len(reach) == 0:
        return zero_sums(interp, len(EF))
    band0, nb = int(reach[0]), int(reach[-1] - reach[0] + 1)
    act, W = fermi_surface_weights(E[:, band0:band0 + nb], mesh, None, EF, tets=tets, sparse=True, volume=volume)
    return moment_sums(interp, k[act], W, band0, st, chunk_size)


# ------------------------------------------------------------------------------ the coarse screen


@dataclass(frozen=True)
class CoarseScreen:
    """Cells of a coarse mesh M that a band may cross a Fermi level in: ``live`` bool (M1, M2, M3),
    cell (i, j, k) spanning [i/M1, (i+1)/M1] x ... in reduced coordinates."""

    live: np.ndarray

    @property
    def fraction(self) -> float:
        """The fraction of the coarse cells kept."""
        return float(self.live.mean())

    def fine_cells(self, mesh: Sequence[int], block: tuple) -> np.ndarray:
        """bool per cell of a block of the fine mesh (cell order of :func:`block_points`): whether
        any coarse cell it overlaps is live (a fine cell overlaps one or two per axis)."""
        a, pa, c, pc = block
        idx = []
        for ax, (start, count) in enumerate(((a, pa), (c, pc), (0, int(mesh[2])))):
            N, M = int(mesh[ax]), self.live.shape[ax]
            j = np.arange(start, start + count)
            idx.append(((j * M) // N, ((j + 1) * M + N - 1) // N - 1))  # first, last coarse cell
        out = np.zeros((pa, pc, int(mesh[2])), dtype=bool)
        for i1 in idx[0]:
            for i2 in idx[1]:
                for i3 in idx[2]:
                    out |= self.live[np.ix_(i1, i2, i3)]
        return out.reshape(-1)


def screen_mesh(mesh: Sequence[int], factor: int = SCREEN_FACTOR) -> np.ndarray:
    """The mesh of :func:`coarse_screen`: int (3,), ceil(mesh / factor), at least 2 per axis."""
    return np.maximum(2, -(-np.asarray(mesh, dtype=int) // int(factor)))


# 9 parameters: the mesh, the window and the screen's own factor and margin, plus the collective
# options and the source of the energies
def coarse_screen(interp: Interpolator, mesh: Sequence[int], lo: float, hi: float, factor: int = SCREEN_FACTOR,
                  *, margin: float = SCREEN_MARGIN, comm=None, chunk_size: int = 1000,
                  energies=None) -> CoarseScreen:
    """The cells of the mesh :func:`screen_mesh` in which some band may reach [lo, hi] eV.

    A cell is kept when for some band min - s < hi and max + s > lo over its eight corners, with
    s = margin + (max - min): the spread allows for the curvature of the band inside the cell,
    as in :func:`gme_wannier.refine.mark_cells`. The energies are computed a group of planes at a
    time (all bands, about 100k points), the groups dealt over the ranks; only the bool array of
    the cells is kept (M1 M2 M3 bytes). Collective.

    energies : callable (k_red float (n, 3)) -> float (n, nw) eV, optional; the band energies at
        points of the coarse mesh (default: interpolated there; the symmetric tetrahedra look
        them up at the points' representatives).
    """
    from .parallel import distributed_rows

    M = screen_mesh(mesh, factor)
    if energies is None:
        def energies(p):
            return interp.energies(p, chunk_size)
    per_group = max(1, _SCREEN_POINTS // int(M[1] * M[2]) - 1)
    jk = np.indices((int(M[1]), int(M[2]))).reshape(2, -1).T

    def planes(first: np.ndarray) -> np.ndarray:  # live cells of planes first[0] .. first[-1]
        if len(first) == 0:
            return np.zeros((0, int(M[1]), int(M[2])), dtype=bool)
        ii = np.arange(first[0], first[-1] + 2)  # the planes and the next one
        pts = np.concatenate([np.column_stack([np.full(len(jk), i % M[0]), jk]) for i in ii]) / M
        E = energies(pts).reshape(len(ii), int(M[1]), int(M[2]), -1)
        emin = emax = E[:-1]
        for d in _CUBE[1:]:
            sh = np.roll(E[d[0]:len(ii) - 1 + d[0]], (-d[1], -d[2]), axis=(1, 2))
            emin, emax = np.minimum(emin, sh), np.maximum(emax, sh)
        s = margin + (emax - emin)
        return np.any((emin - s < hi) & (emax + s > lo), axis=-1)

    live = distributed_rows(planes, np.arange(int(M[0])), comm, block=per_group)
    return CoarseScreen(live)
