"""Linear tetrahedra with the crystal symmetry: the whole-zone tetrahedron sum of a symmetric
model, with energies and moments computed at irreducible points only.

The tetrahedra of the mesh are not mapped onto each other by the point group (the cells of a
hexagonal mesh are not even mapped onto cells), so the weights W_k of the points of a star
differ. But the result is projected on the symmetry-allowed form P anyway, and the model is
taken as symmetric, as the irreducible smeared sums take it: E(g k) := E(k) and X(g k) :=
g.X(k) for the irreducible representative k. Since P(g.X) = P(X),

    P( sum_k W_k X_k ) = P( sum_p W~_p X_p ),     W~_p = sum of W_k over the star of p,

so the moments are needed at the irreducible points with W~_p != 0 only (docs/convergence.md).

Passes, each shared over the ranks:

1. the representatives of the corners of the cells that the coarse screen keeps
   (:func:`gme_wannier.tetra.coarse_screen`): integer work only;
2. their band energies (``distributed_rows``);
3. block by block (the one k loop, with checkpoints and progress), the tetrahedron weights with
   the representatives' energies, added up on the representatives: W~ (n_rep, bands, nE);
4. the moments at the representatives with W~ != 0, contracted with W~.

Pass 1 keeps, up to :data:`CACHE_BYTES`, each of its blocks' representatives and tetrahedra for
pass 3 (without a checkpoint, pass 3 deals the blocks to the same ranks), which otherwise finds
them again.

Memory: the representatives of the kept cells' corners (int64 each, with their energies: n_rep x
nw floats) and W~ (n_rep x bands x nE floats), plus one block. When W~ would exceed
:data:`WT_BUDGET_BYTES` by a factor g, passes 3 and 4 run g times, each for a group of 1/g of
the representatives (pass 3 then repeats the blocks' bookkeeping, and keeps only the group's
rows and the weights of the tetrahedra with a corner in them; each group has its own checkpoint
files, and a finished group's are kept until the whole sum is done). Beyond :data:`MAX_GROUPS`
groups (a wide scan of hundreds of Fermi levels on a large mesh), passes 3 and 4 become one:
each block computes the moments of its points at their representatives and contracts them at
once (the energies are still computed once per representative; the moments once per point, as
without symmetry).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .bands import Interpolator
from .integrate import GMESettings, zero_sums
from .model import TBModel
from .tetra import coarse_screen, fermi_surface_weights, kept_corners, mesh_blocks, moment_sums, screen_mesh

__all__ = ["mesh_operations", "representatives", "sum_over_mesh_tetra_sym", "WT_BUDGET_BYTES"]

# W~ (representatives x bands x Fermi levels, float64) is summed as one array when it takes at most
# this; beyond (wide Fermi-level scans on large meshes), the moments are computed block by block
WT_BUDGET_BYTES = 256e6
# the representatives and tetrahedra that pass 1 finds for its blocks are kept for pass 3 up to this
# (they are computed again beyond it, and for blocks that pass 3 deals to another rank)
CACHE_BYTES = 128e6
# groups of W~ beyond this (a wide scan of hundreds of levels on a large mesh): the moments per point,
# block by block. Each group repeats the blocks' corners and cut tests (its tetrahedra only get weights)
MAX_GROUPS = 16


def mesh_operations(sym, mesh: Sequence[int]) -> np.ndarray:
    """The k-space operations that map the Gamma-centred mesh onto itself, as int (nops, 3, 3)
    matrices acting on integer mesh addresses (identity included):
    :func:`gme_wannier.irreducible.mesh_operations` without shift."""
    from .irreducible import mesh_operations as ops

    return ops(sym, mesh)[0]


def representatives(addr: np.ndarray, mesh: Sequence[int], mats: np.ndarray) -> np.ndarray:
    """C-order flat index of the representative of each integer address (n, 3): the smallest
    flat index of its images under ``mats`` (as :func:`gme_wannier.irreducible.irreducible_points_lowmem`)."""
    from .irreducible import image_index

    n = np.asarray(mesh, dtype=np.int64)
    zero = np.zeros(3, dtype=np.int64)
    af = 2.0 * np.asarray(addr, dtype=float)  # doubled addresses of the unshifted mesh
    rep = image_index(af, mats[0], n, zero)
    for m in mats[1:]:  # one image array at a time (48 operations x a block would be 77 MB)
        np.minimum(rep, image_index(af, m, n, zero), out=rep)
    return rep


def _block_corners(mesh, block, recip, live):
    """The points a block needs (corners of its kept cells): their integer addresses (np, 3) and
    the kept tetrahedra as indices into them, or (None, None) when no cell is kept."""
    k, tets = kept_corners(mesh, block, live.fine_cells(mesh, block), recip)
    if k is None:
        return None, None
    return np.rint(k * np.asarray(mesh)).astype(np.int64) % np.asarray(mesh, dtype=np.int64), tets


def _group_checkpoints(checkpoint, g: int, n_groups: int):
    """The checkpoints of passes 3 and 4 of group g: the run's own and ``PATH.moments`` for a
    single group; ``PATH.group<g>of<n>`` and ``PATH.group<g>of<n>.moments`` otherwise, the
    latter kept after its sum (a finished group is not lost when a later one is interrupted)."""
    if checkpoint is None:
        return None, None
    from .checkpoint import Checkpoint

    base = checkpoint.path if n_groups == 1 else f"{checkpoint.path}.group{g}of{n_groups}"

    def make(path, keep):
        return Checkpoint(path, checkpoint.fingerprint, every_seconds=checkpoint.every_seconds, keep=keep)
    if n_groups == 1:
        return checkpoint, make(f"{base}.moments", checkpoint.keep)
    return make(base, checkpoint.keep), make(f"{base}.moments", True)


def _union(mine: list, comm) -> np.ndarray:
    """The sorted union over the ranks of the int arrays ``mine`` (collective)."""
    mine = np.unique(np.concatenate(mine)) if mine else np.zeros(0, dtype=np.int64)
    parts = comm.bcast(comm.gather(mine)) if comm.size > 1 else [mine]
    return np.unique(np.concatenate(parts))


def _screen_energies(interp: Interpolator, mesh, sym, comm, chunk_size: int):
    """The band energies of the coarse screen's mesh taken at the points' representatives (the
    symmetric model of pass 3): a callable for :func:`gme_wannier.tetra.coarse_screen`, or None
    when they would take more than :data:`WT_BUDGET_BYTES` (few operations on a large mesh: then
    the screen computes its energies itself). Collective."""
    from .parallel import distributed_rows

    M = screen_mesh(mesh)
    mats = mesh_operations(sym, M)
    per = max(1, 2 ** 20 // int(M[1] * M[2]))  # planes per group: about 10^6 points
    mine = []
    for g, start in enumerate(range(0, int(M[0]), per)):
        if g % comm.size == comm.rank:
            addr = np.indices((min(per, int(M[0]) - start), int(M[1]), int(M[2]))).reshape(3, -1).T
            mine.append(np.unique(representatives(addr + np.array([start, 0, 0]), M, mats)))
    reps = _union(mine, comm)
    if len(reps) * interp.nw * 8.0 > WT_BUDGET_BYTES:
        return None
    k_rep = np.stack(np.unravel_index(reps, tuple(M)), axis=1) / M
    E = distributed_rows(lambda p: interp.energies(p, chunk_size), k_rep, comm)

    def lookup(k_red: np.ndarray) -> np.ndarray:
        addr = np.rint(k_red * M).astype(np.int64) % M
        return E[np.searchsorted(reps, representatives(addr, M, mats))]
    return lookup


class _SymmetricSum:
    """One call of :func:`sum_over_mesh_tetra_sym`: what its passes share (the mesh and its
    blocks, the coarse screen, the representatives and their energies), one method per pass."""

    def __init__(self, model: TBModel, mesh, st: GMESettings, sym, comm, chunk_size: int, interp: Interpolator,
                 stats: Optional[dict]):
        self.interp, self.st, self.EF, self.sym, self.comm = interp, st, st.EF, sym, comm
        self.chunk_size, self.stats, self.mesh = chunk_size, stats, mesh
        self.n = np.asarray(mesh, dtype=np.int64)
        self.mats = mesh_operations(sym, mesh)
        self.blocks = mesh_blocks(mesh)
        self.items = [p * q * int(mesh[2]) for _, p, _, q in self.blocks]  # cells per block (progress)
        self.volume = 1.0 / (6.0 * float(np.prod(mesh)))
        self.recip = model.recip_lattice
        self.cache: dict = {}  # block -> its corners' representatives and tetrahedra, from pass 1
        self.n_groups = 1

    def zero(self) -> dict:
        return zero_sums(self.interp, len(self.EF))

    def find_representatives(self) -> bool:
        """The coarse screen, then pass 1: ``reps``, the sorted flat indices of the representatives
        of the kept cells' corners (blocks dealt over the ranks). False when there are none."""
        comm, mesh = self.comm, self.mesh
        self.live = coarse_screen(self.interp, mesh, self.EF.min(), self.EF.max(), comm=comm,
                                  chunk_size=self.chunk_size,
                                  energies=_screen_energies(self.interp, mesh, self.sym, comm, self.chunk_size))
        mine, cached_bytes = [], 0
        for b in range(comm.rank, len(self.blocks), comm.size):
            addr, tets = _block_corners(mesh, self.blocks[b], self.recip, self.live)
            if addr is not None:
                rep = representatives(addr, mesh, self.mats)
                mine.append(np.unique(rep))
                if cached_bytes + rep.nbytes + tets.nbytes <= CACHE_BYTES:  # pass 3 takes them from here
                    self.cache[b] = (rep, tets)
                    cached_bytes += rep.nbytes + tets.nbytes
        self.reps = _union(mine, comm)
        if self.stats is not None:
            self.stats.update(n_representatives=int(len(self.reps)), n_moment_points=0,
                              screen_cells_kept=self.live.fraction)
        return len(self.reps) > 0

    def compute_energies(self) -> bool:
        """Pass 2: ``k_rep`` (reduced) and ``E_rep`` (eV) of the representatives, and the bands
        ``band0 .. band0 + nb - 1`` that reach the Fermi levels. False when no band does."""
        from .parallel import distributed_rows

        self.k_rep = np.stack(np.unravel_index(self.reps, tuple(self.mesh)), axis=1) / self.n
        self.E_rep = distributed_rows(lambda p: self.interp.energies(p, self.chunk_size), self.k_rep, self.comm)
        EF = self.EF
        reach = np.nonzero((self.E_rep.min(axis=0) < EF.max()) & (self.E_rep.max(axis=0) > EF.min()))[0]
        if len(reach) == 0:
            return False
        self.band0, self.nb = int(reach[0]), int(reach[-1] - reach[0] + 1)
        return True

    def plan_groups(self) -> bool:
        """``n_groups``: W~ of every representative takes that many times its budget, and is summed
        for one group of representatives at a time. False beyond :data:`MAX_GROUPS` (then the
        moments are computed block by block)."""
        wt_bytes = len(self.reps) * self.nb * len(self.EF) * 8.0
        self.n_groups = max(1, int(np.ceil(wt_bytes / max(WT_BUDGET_BYTES, 1.0))))
        by_groups = self.n_groups <= MAX_GROUPS
        if self.stats is not None:
            self.stats.update(weights_on_representatives=bool(by_groups),
                              weight_groups=self.n_groups if by_groups else 0, weight_bytes=wt_bytes)
        return by_groups

    def block_weights(self, b: int, group: Optional[tuple[int, int]] = None):
        """Block b's representatives (rows of ``reps``, int (na,)) and their tetrahedron weights
        (na, nb, nE) 1/eV, or None; with ``group`` (lo, hi), only the tetrahedra with a corner in
        rows lo .. hi - 1 are weighted."""
        if b in self.cache:
            rep, tets = self.cache[b] if self.n_groups > 1 else self.cache.pop(b)
        else:
            addr, tets = _block_corners(self.mesh, self.blocks[b], self.recip, self.live)
            if addr is None:
                return None
            rep = representatives(addr, self.mesh, self.mats)
        rows = np.searchsorted(self.reps, rep)
        if group is not None:
            r = rows[tets]
            tets = tets[np.any((r >= group[0]) & (r < group[1]), axis=1)]
            if len(tets) == 0:
                return None
        act, W = fermi_surface_weights(self.E_rep[rows, self.band0:self.band0 + self.nb], self.mesh, None, self.EF,
                                       tets=tets, sparse=True, volume=self.volume)
        return rows[act], W

    def block_sums(self, b: int) -> dict:
        """Passes 3 and 4 as one, for block b: the moments of its points taken at their
        representatives and contracted at once."""
        found = self.block_weights(b)
        if found is None:
            return self.zero()
        return moment_sums(self.interp, self.k_rep[found[0]], found[1], self.band0, self.st, self.chunk_size)

    def group_weights(self, lo: int, hi: int, ck3, bar) -> np.ndarray:
        """Pass 3 for the representatives lo .. hi - 1: W~ float (hi - lo, nb, nE), 1/eV; drawn
        as 1/n_groups of the caller's bar ``bar``, which it leaves open."""
        from .parallel import chunked_sum

        group = (lo, hi) if self.n_groups > 1 else None

        def weights_of_block(b: int) -> dict:
            Wt = np.zeros((hi - lo, self.nb, len(self.EF)))
            found = self.block_weights(b, group)
            if found is not None:
                inside = (found[0] >= lo) & (found[0] < hi)
                np.add.at(Wt, found[0][inside] - lo, found[1][inside])
            return {"Wt": Wt}

        return chunked_sum(len(self.blocks), weights_of_block, self.comm, checkpoint=ck3, progress=bar,
                           items_per_chunk=[i / self.n_groups for i in self.items], close_progress=False)["Wt"]

    def group_moments(self, lo: int, Wt: np.ndarray, bounds: np.ndarray, ck4) -> dict:
        """Pass 4 for the representatives lo .. lo + len(Wt) - 1: their moments where W~ is not
        zero, contracted with it, in the chunks ``bounds``."""
        from .parallel import chunked_sum

        def moments_chunk(c: int) -> dict:
            sel = np.arange(bounds[c], bounds[c + 1])
            sel = sel[np.any(Wt[sel - lo] != 0, axis=(1, 2))]
            return moment_sums(self.interp, self.k_rep[sel], Wt[sel - lo], self.band0, self.st, self.chunk_size)

        if self.stats is not None:
            self.stats["n_moment_points"] += int(np.count_nonzero(np.any(Wt != 0, axis=(1, 2))))
        return chunked_sum(len(bounds) - 1, moments_chunk, self.comm, checkpoint=ck4)

    def group_sums(self, lo: int, hi: int, ck3, ck4, bar) -> dict:
        """Passes 3 and 4 for the representatives lo .. hi - 1 (a finished group's sum is read from
        its moments checkpoint: loaded once, on rank 0, and broadcast). Collective."""
        n4 = max(1, -(-(hi - lo) // self.chunk_size))
        bounds = np.linspace(lo, hi, n4 + 1).astype(int)
        if self.n_groups > 1 and ck4 is not None:
            done, sums = ck4.load(self.comm, n4)  # sums on rank 0 only
            if len(done) == n4:  # a finished group
                if bar is not None:
                    bar.skip(sum(self.items) / self.n_groups)
                return self.comm.bcast(sums)
        return self.group_moments(lo, self.group_weights(lo, hi, ck3, bar), bounds, ck4)

    def grouped_sums(self, checkpoint, progress) -> dict:
        """Passes 3 and 4, group by group; the finished groups' moments checkpoints are kept
        until the whole sum is done. Each group's pass 3 draws 1/n_groups of the bar ``progress``
        (rank 0), closed at the end."""
        bar = progress if self.comm.is_root else None
        edges = np.linspace(0, len(self.reps), self.n_groups + 1).astype(int)
        total, saved = self.zero(), []
        for g in range(self.n_groups):
            ck3, ck4 = _group_checkpoints(checkpoint, g, self.n_groups)
            part = self.group_sums(int(edges[g]), int(edges[g + 1]), ck3, ck4, bar)
            total = {key: total[key] + part[key] for key in total}
            if ck4 is not None and self.n_groups > 1:
                saved.append(ck4)
                checkpoint.n_resumed += ck3.n_resumed + ck4.n_resumed  # the run's record counts every group's
            if bar is not None:  # at the group's end (rank 0's share of the blocks may end before)
                bar.count = max(bar.count, bar.total * (g + 1) / self.n_groups)
        for ck in saved:
            ck.remove()
        if bar is not None:
            bar.close()
        return total


# 11 parameters: as tetra.sum_over_mesh_tetra, plus the symmetry and the stats; the passes are the
# methods of _SymmetricSum.
def sum_over_mesh_tetra_sym(model: TBModel, mesh, st: GMESettings, sym, *, comm=None, chunk_size: int = 1000,
                            checkpoint=None, progress=None, interp: Optional[Interpolator] = None,
                            blas_threads: int = 1, stats: Optional[dict] = None) -> dict:
    """Raw tetrahedron sums (as :func:`gme_wannier.tetra.sum_over_mesh_tetra`) of the symmetric
    model, to be projected on the allowed form by the caller; see the module docstring.

    stats : dict, optional; filled with ``n_representatives`` (points whose energies were
    computed, besides the coarse screen's), ``n_moment_points`` (points whose moments were) and
    ``screen_cells_kept`` (fraction of the coarse cells kept), ``weights_on_representatives``
    (whether W~ was summed, or the moments computed block by block), ``weight_bytes`` (the size of
    the whole W~) and ``weight_groups`` (the groups of representatives it was summed in; 0 block
    by block)."""
    from threadpoolctl import threadpool_limits

    from .kmesh import check_mesh
    from .parallel import chunked_sum, get_comm

    comm = get_comm("serial") if comm is None else comm
    mesh = check_mesh(mesh)
    interp = Interpolator(model, external=st.external, spin=st.spin) if interp is None else interp
    run = _SymmetricSum(model, mesh, st, sym, comm, chunk_size, interp, stats)
    with threadpool_limits(limits=blas_threads):
        if not (run.find_representatives() and run.compute_energies()):
            return run.zero()
        if not run.plan_groups():  # the moments of each block's points at their representatives
            return chunked_sum(len(run.blocks), run.block_sums, comm, checkpoint=checkpoint, progress=progress,
                               items_per_chunk=run.items)
        return run.grouped_sums(checkpoint, progress)
