"""The tetrahedron sum block by block: the blocks cover the mesh, the sum equals the whole-mesh
one, and memory stays that of one block."""

import tracemalloc

import numpy as np
import pytest

import gme_wannier.tetra as tetra
from gme_wannier.bands import Interpolator
from gme_wannier.integrate import GMESettings
from gme_wannier.kmesh import uniform_mesh
from gme_wannier.models import weyl_pair_model


@pytest.mark.parametrize("mesh, budget", [((8, 8, 8), 10 ** 6), ((7, 9, 5), 120), ((12, 5, 4), 30), ((3, 4, 6), 50)])
def test_blocks_cover_every_cell_once(mesh, budget):
    count = np.zeros(mesh, dtype=int)
    for a, pa, c, pc in tetra.mesh_blocks(mesh, budget):
        count[a:a + pa, c:c + pc, :] += 1
    assert np.all(count == 1)
    if budget >= 10 ** 6:
        assert len(tetra.mesh_blocks(mesh, budget)) == 4  # shared out even when one block would fit


def _whole_mesh_sums(model, mesh, st):
    """The tetrahedron sums with every mesh energy held at once (the straightforward way)."""
    interp = Interpolator(model, external=st.external, spin=st.spin)
    k = uniform_mesh(mesh)
    E = interp.energies(k)
    act, W = tetra.fermi_surface_weights(E, mesh, model.recip_lattice, st.EF, sparse=True)
    return tetra.tetra_chunk(interp, k[act], W, 0, 4, st)


@pytest.mark.parametrize("budget", [None, 150, 60])
def test_block_sum_equals_whole_mesh(budget, monkeypatch):
    model = weyl_pair_model(b=0.3)
    mesh = (10, 9, 8)
    st = GMESettings(fermi_energies=(0.2, 0.5, 0.8))
    if budget is not None:
        monkeypatch.setattr(tetra, "BLOCK_POINTS", budget)
        assert len(tetra.mesh_blocks(mesh)) > 4  # blocks with borders along both axes
    ref = _whole_mesh_sums(model, mesh, st)
    got = tetra.sum_over_mesh_tetra(model, mesh, st, chunk_size=37)
    for key in ref:
        scale = np.abs(ref[key]).max()
        assert scale > 0, key
        assert np.abs(got[key] - ref[key]).max() < 1e-12 * scale, key


def test_memory_is_that_of_one_block(monkeypatch):
    """128^3 mesh, blocks of about 20k points: the peak allocation stays below half the size of
    one whole-mesh array of k-points (the previous code held the mesh's k-points and energies)."""
    model = weyl_pair_model(b=0.3)
    mesh = (128, 128, 128)
    st = GMESettings(fermi_energies=(0.5,))
    monkeypatch.setattr(tetra, "BLOCK_POINTS", 20_000)
    interp = Interpolator(model)
    tracemalloc.start()
    try:
        raw = tetra.sum_over_mesh_tetra(model, mesh, st, interp=interp)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    whole_k = 3 * 8 * int(np.prod(mesh))  # bytes of one (N, 3) float array
    assert raw["dos"][0] > 0
    assert peak < 0.5 * whole_k, peak


def test_coarse_screen_marks_the_fine_cells_overlapping_a_live_cell():
    """A fine cell is kept iff it overlaps a live coarse cell: checked against the overlap of the
    intervals in reduced coordinates, along axes where the meshes do and do not nest."""
    mesh, M = (11, 9, 7), (4, 3, 3)
    rng = np.random.default_rng(3)
    live = rng.random(M) < 0.15
    screen = tetra.CoarseScreen(live)
    for block in tetra.mesh_blocks(mesh, 60):
        a, pa, c, pc = block
        got = screen.fine_cells(mesh, block).reshape(pa, pc, mesh[2])
        cells = np.indices((pa, pc, mesh[2])).reshape(3, -1).T + np.array([a, c, 0])
        for (i, j, k), g in zip(cells, got.reshape(-1)):
            over = [[ic for ic in range(M[ax]) if ic / M[ax] < (x + 1) / mesh[ax] and x / mesh[ax] < (ic + 1) / M[ax]]
                    for ax, x in enumerate((i, j, k))]
            assert g == any(live[p, q, r] for p in over[0] for q in over[1] for r in over[2]), (i, j, k)


def test_screened_tetrahedra_equal_every_cell_on_a_real_model():
    """Te_tut24 at T = 0 (E_F 5.85-6.15 eV): the sums with the coarse screen equal those over
    every cell, while far fewer energies are computed."""
    from conftest import need
    from gme_wannier.load import load_model

    model = load_model(need("Te_tut24", "Te.chk")[:-4])
    st = GMESettings(fermi_energies=tuple(np.round(np.arange(5.85, 6.151, 0.05), 9)))
    mesh = (95, 95, 59)  # the screen's cells (32 x 32 x 20) are fine enough to drop most of the zone
    counted = []

    class Counting(Interpolator):
        def energies(self, k_red, chunk=1000):
            counted.append(len(k_red))
            return super().energies(k_red, chunk)

    interp = Counting(model, external=st.external, spin=st.spin)
    ref = tetra.sum_over_mesh_tetra(model, mesh, st, interp=interp, screen=None)
    n_all, counted[:] = sum(counted), []
    got = tetra.sum_over_mesh_tetra(model, mesh, st, interp=interp)
    for key in ref:
        scale = np.abs(ref[key]).max()
        assert scale > 0, key
        assert np.abs(got[key] - ref[key]).max() < 1e-12 * scale, key
    assert sum(counted) < 0.6 * n_all, (sum(counted), n_all)


def test_per_point_sums_are_each_points_own_and_add_up_to_the_chunk():
    """tetra_chunk(per_point=True): row i is the sum of point i alone (as a chunk of one point),
    and the rows add up to the chunk's sum; an empty chunk gives zero rows."""
    model = weyl_pair_model(b=0.3)
    mesh = (10, 9, 8)
    st = GMESettings(fermi_energies=(0.2, 0.5, 0.8))
    interp = Interpolator(model, external=st.external, spin=st.spin)
    k = uniform_mesh(mesh)
    act, W = tetra.fermi_surface_weights(interp.energies(k), mesh, model.recip_lattice, st.EF, sparse=True)
    total = tetra.tetra_chunk(interp, k[act], W, 0, 4, st)
    rows = tetra.tetra_chunk(interp, k[act], W, 0, 4, st, per_point=True)
    assert set(rows) == set(total)
    for key in total:
        assert rows[key].shape == (len(act),) + total[key].shape, key
        scale = np.abs(total[key]).max()
        assert scale > 0 and np.abs(rows[key].sum(axis=0) - total[key]).max() < 1e-12 * scale, key
    for i in np.argsort(-np.abs(rows["orb"]).reshape(len(act), -1).max(axis=1))[:5]:  # the largest rows
        alone = tetra.tetra_chunk(interp, k[act][i:i + 1], W[i:i + 1], 0, 4, st)
        for key in total:
            np.testing.assert_allclose(rows[key][i], alone[key], rtol=1e-12, atol=1e-14 * np.abs(total[key]).max())
    empty = tetra.tetra_chunk(interp, k[:0], W[:0], 0, 4, st, per_point=True)
    assert {key: v.shape for key, v in empty.items()} == {key: (0,) + v.shape for key, v in total.items()}
