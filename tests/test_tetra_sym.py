"""Tetrahedra with the crystal symmetry (gme_wannier/tetra_sym.py): energies and moments at the
irreducible representatives, the weights of every star summed on its representative. Equal to
the projected whole-zone sum for a symmetric model, and exactly the whole-zone sum of the
representatives' energies for any model."""

import os

import numpy as np
import pytest

from conftest import need
from gme_wannier import tetra
from gme_wannier.bands import Interpolator
from gme_wannier.calculate import compute
from gme_wannier.integrate import GMESettings
from gme_wannier.load import load_model
from gme_wannier.settings import Sampling
from gme_wannier.symmetry import find_symmetry
from gme_wannier.tetra_sym import mesh_operations, representatives, sum_over_mesh_tetra_sym

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRSI2 = os.path.join(ROOT, "examples", "wannier90_inputs", "SrSi2", "srsi2")


def test_symmetric_tetrahedra_equal_the_projected_whole_zone_on_te():
    """Te_tut24's Wannier bands keep the point group to 3.5e-6 eV: the symmetric sum equals the
    whole-zone one after the projection to that level (measured 5e-6 of max|K|), K and DOS."""
    model = load_model(need("Te_tut24", "Te.chk")[:-4])
    st = GMESettings(fermi_energies=tuple(np.round(np.arange(5.85, 6.151, 0.05), 9)))
    s = Sampling(mesh=(47, 47, 31), kernel="tetra")
    sym = compute(model, st, s, estimate_error=False)
    whole = compute(model, st, s, symmetry="off", estimate_error=False)
    m = sym.info["mesh"]
    assert m["symmetric_tetrahedra"] and sym.info["symmetry"]["n_kspace_operations"] == 12 and m["weight_groups"] == 1
    # energies at about a twelfth of the kept cells' corners (12 operations), moments at fewer
    assert 0 < m["n_moment_points"] < m["n_evaluated"] < m["n_full"] / 10
    from gme_wannier.integrate import GME_CHARACTER
    from gme_wannier.symmetry import allowed_form

    form = allowed_form(find_symmetry(model.atoms), character=GME_CHARACTER)
    Kw = form.project(whole.K["total"])
    scale = np.abs(Kw).max()
    assert np.abs(whole.K["total"] - Kw).max() > 1e-2 * scale  # the whole-zone tetrahedra are not symmetric
    assert np.abs(sym.K["total"] - Kw).max() < 2e-5 * scale
    assert np.abs(sym.dos - whole.dos).max() < 1e-4 * np.abs(whole.dos).max()


def test_symmetric_tetrahedra_are_the_whole_zone_sum_of_the_representatives_energies():
    """SrSi2 (48 operations; its Wannier bands break them by up to 16 meV): the DOS of the
    symmetric sum is, to rounding, the whole-zone tetrahedron DOS with every point given the
    energies of its representative."""
    model = load_model(SRSI2)
    sym = find_symmetry(model.atoms)
    mesh = (13, 13, 13)
    st = GMESettings(fermi_energies=(8.4, 8.5, 8.6))
    mats = mesh_operations(sym, mesh)
    assert len(mats) == 48
    n = np.array(mesh)

    class RepresentativeEnergies(Interpolator):
        def energies(self, k_red, chunk=1000):
            rep = representatives(np.rint(np.asarray(k_red) * n).astype(np.int64) % n, mesh, mats)
            return super().energies(np.stack(np.unravel_index(rep, mesh), axis=1) / n, chunk)

    ref = tetra.sum_over_mesh_tetra(model, mesh, st, interp=RepresentativeEnergies(model, external=st.external,
                                                                                      spin=st.spin))
    got = sum_over_mesh_tetra_sym(model, mesh, st, sym)
    assert ref["dos"].min() > 0
    np.testing.assert_allclose(got["dos"], ref["dos"], rtol=1e-12)


def test_representatives_are_the_irreducible_points():
    """The representative of every point of a mesh is the irreducible point of its star."""
    from gme_wannier.symmetry import irreducible_kpoints

    sym = find_symmetry(load_model(SRSI2).atoms)
    mesh = (6, 6, 6)
    irr = irreducible_kpoints(mesh, sym)
    addr = np.indices(mesh).reshape(3, -1).T
    rep = representatives(addr, mesh, mesh_operations(sym, mesh))
    np.testing.assert_array_equal(rep, irr.irr_index[irr.full_to_irr])


def test_moments_block_by_block_when_the_weights_would_not_fit(monkeypatch):
    """With W~ over its budget the moments are taken block by block at the representatives:
    the same sums (the grouping of the additions aside)."""
    import gme_wannier.tetra_sym as ts

    model = load_model(SRSI2)
    sym = find_symmetry(model.atoms)
    st = GMESettings(fermi_energies=(8.4, 8.5, 8.6))
    stats = {}
    ref = ts.sum_over_mesh_tetra_sym(model, (13, 13, 13), st, sym, stats=stats)
    assert stats["weights_on_representatives"] and 0 < stats["n_moment_points"] < stats["n_representatives"]
    monkeypatch.setattr(ts, "WT_BUDGET_BYTES", 0)
    stats = {}
    got = ts.sum_over_mesh_tetra_sym(model, (13, 13, 13), st, sym, stats=stats)
    assert not stats["weights_on_representatives"]
    for key in ref:
        scale = np.abs(ref[key]).max()
        assert scale > 0 and np.abs(got[key] - ref[key]).max() < 1e-12 * scale, key


def test_checkpoint_of_both_passes_resumes_and_is_removed(tmp_path):
    from gme_wannier.checkpoint import remove_checkpoint
    from gme_wannier.settings import RunControl

    model = load_model(SRSI2)
    st = GMESettings(fermi_energies=(8.45, 8.5))
    ck = str(tmp_path / "ck")
    s = Sampling(mesh=(11, 11, 11), kernel="tetra")
    r1 = compute(model, st, s, run=RunControl(checkpoint=ck, checkpoint_every=0), estimate_error=False)
    files = sorted(os.listdir(tmp_path))
    assert "ck.rank0of1.npz" in files and "ck.moments.rank0of1.npz" in files
    r2 = compute(model, st, s, run=RunControl(checkpoint=ck, checkpoint_every=0), estimate_error=False)
    assert r2.info["checkpoint"]["resumed_chunks"] > 0
    np.testing.assert_array_equal(r2.K["total"], r1.K["total"])
    removed = remove_checkpoint(ck)
    assert len(removed) == 2 and os.listdir(tmp_path) == []


def test_screen_at_the_representatives_marks_the_cells_of_the_direct_screen():
    """Te_tut24 (bands symmetric to 3.5e-6 eV): the coarse screen with its energies looked up at
    the representatives of its mesh keeps the same cells as the screen that computes every
    point, at a mesh fine enough that it drops most of them."""
    from gme_wannier.tetra_sym import _screen_energies
    from gme_wannier.parallel import get_comm

    model = load_model(need("Te_tut24", "Te.chk")[:-4])
    interp = Interpolator(model)
    mesh = (95, 95, 59)
    sym = find_symmetry(model.atoms)
    lookup = _screen_energies(interp, mesh, sym, get_comm("serial"), 1000)
    assert lookup is not None
    direct = tetra.coarse_screen(interp, mesh, 5.85, 6.15)
    got = tetra.coarse_screen(interp, mesh, 5.85, 6.15, energies=lookup)
    assert 0.02 < direct.fraction < 0.5
    np.testing.assert_array_equal(got.live, direct.live)


def test_weights_in_groups_of_representatives_resume_and_are_removed(tmp_path, monkeypatch):
    """With W~ over its budget by a few times, passes 3 and 4 run for one group of
    representatives at a time: the same sums (to rounding); an interrupted run keeps the finished
    groups, resumes to the uninterrupted sums, and leaves no file behind."""
    import gme_wannier.tetra_sym as ts
    from gme_wannier.checkpoint import remove_checkpoint
    from gme_wannier.settings import RunControl

    model = load_model(SRSI2)
    sym = find_symmetry(model.atoms)
    st = GMESettings(fermi_energies=(8.4, 8.5, 8.6))
    stats = {}
    ref = ts.sum_over_mesh_tetra_sym(model, (13, 13, 13), st, sym, stats=stats)
    assert stats["weight_groups"] == 1
    monkeypatch.setattr(ts, "WT_BUDGET_BYTES", stats["weight_bytes"] / 2.5)  # three groups
    stats = {}
    got = ts.sum_over_mesh_tetra_sym(model, (13, 13, 13), st, sym, stats=stats)
    assert stats["weight_groups"] == 3 and stats["weights_on_representatives"]
    for key in ref:
        scale = np.abs(ref[key]).max()
        assert scale > 0 and np.abs(got[key] - ref[key]).max() < 1e-12 * scale, key
    # interrupted in the moments of the second group: the first group's files stay
    calls = {"n": 0}
    real = ts.moment_sums

    def stop_in_second_group(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1 and any("group1of" in f for f in os.listdir(tmp_path)):
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(ts, "moment_sums", stop_in_second_group)
    ck = str(tmp_path / "ck")
    s = Sampling(mesh=(13, 13, 13), kernel="tetra")
    run = RunControl(checkpoint=ck, checkpoint_every=0)
    from gme_wannier.io.errors import Interrupted

    with pytest.raises((KeyboardInterrupt, Interrupted)):  # the k loop turns the interrupt into its message
        compute(model, st, s, run=run, estimate_error=False)
    assert any(f.startswith("ck.group0of") and ".moments." in f for f in os.listdir(tmp_path))
    monkeypatch.setattr(ts, "moment_sums", real)
    resumed = compute(model, st, s, run=run, estimate_error=False)
    assert resumed.info["checkpoint"]["resumed_chunks"] > 0
    whole = compute(model, st, s, estimate_error=False)
    np.testing.assert_allclose(resumed.K["total"], whole.K["total"], rtol=0, atol=1e-12 * np.abs(whole.K["total"]).max())
    remove_checkpoint(ck)
    assert os.listdir(tmp_path) == []
