"""The per-k band data (gme_wannier.banddata): frozen, complete, and the windowed Fermi-surface
kernel equal to the straightforward one (every band of every k-point) on real data."""

import dataclasses

import numpy as np
import pytest

from conftest import data_path, need
from gme_wannier.banddata import BandData, BandStats, band_data
from gme_wannier.bands import Interpolator
from gme_wannier.integrate import (GMESettings, energy_window, fermi_surface_chunk, fermi_surface_points,
                                   gme_sums, surface_weights)
from gme_wannier.load import load_model
from gme_wannier.smearing import Smearing


@pytest.fixture(scope="module")
def te_soc():
    """Te with spin-orbit coupling: spinors, spin matrices and the full orbital moment."""
    need("Te_soc", "Te.chk")
    return load_model(data_path("Te_soc", "Te"))


def _plain_sums(interp, k, w, st):
    """The GME sums with every band as a column at every point (no energy window)."""
    bd, _ = band_data(interp, k, degen_thresh=st.degen_thresh, columns="all")
    return gme_sums(surface_weights(bd, st).scaled(w[bd.k_index]), bd, st)


def _settings():
    return GMESettings(fermi_energies=(5.95, 6.05, 6.15, 6.25), smearing=Smearing.from_temperature(300.0))


def test_windowed_kernel_equals_every_band_on_te_soc(te_soc):
    assert te_soc.has_spin and te_soc.has_external_terms
    st = _settings()
    interp = Interpolator(te_soc)
    rng = np.random.default_rng(3)
    k = rng.random((300, 3))
    w = rng.random(300) / 300
    ref = _plain_sums(interp, k, w, st)
    assert set(ref) == {"orb", "spin", "dos"}
    for screen in (True, False):
        got = fermi_surface_chunk(interp, k, w, st, screen_first=screen)
        for key in ref:
            scale = np.abs(ref[key]).max()
            assert scale > 0, key
            assert np.abs(got[key] - ref[key]).max() < 1e-10 * scale, (key, screen)
    # per point, weighted afterwards: the same sums
    pts = fermi_surface_points(interp, k, st)
    for key in ref:
        assert np.abs(np.tensordot(w, pts[key], axes=(0, 0)) - ref[key]).max() < 1e-10 * np.abs(ref[key]).max()


def test_band_data_is_frozen_and_complete(te_soc):
    st = _settings()
    interp = Interpolator(te_soc)
    k = np.random.default_rng(4).random((200, 3))
    window = energy_window(st, interp.nw)
    bd, stats = band_data(interp, k, degen_thresh=st.degen_thresh, window=window, spin_columns=True)
    assert isinstance(bd, BandData) and isinstance(stats, BandStats)
    with pytest.raises(dataclasses.FrozenInstanceError):
        bd.E = None
    assert not hasattr(interp, "stats")  # statistics are returned, not kept on the interpolator
    E = interp.energies(k)
    active = np.nonzero(((E >= window[0]) & (E <= window[1])).any(axis=1))[0]
    np.testing.assert_array_equal(bd.k_index, active)
    assert stats == BandStats(len(k), len(active), len(active) * bd.n_columns)
    na, ns, nw = bd.n_points, bd.n_columns, interp.nw
    np.testing.assert_allclose(bd.E, np.take_along_axis(E[active], bd.cols, axis=1), atol=1e-10)
    # every band inside the window is a column
    inside = (E[active] >= window[0]) & (E[active] <= window[1])
    in_cols = np.zeros_like(inside)
    np.put_along_axis(in_cols, bd.cols, True, axis=1)
    assert not np.any(inside & ~in_cols)
    for name, shape in [("V", (na, 3, nw, ns)), ("D", (na, 3, nw, ns)), ("A", (na, 3, nw, ns)),
                        ("B", (na, 3, nw, ns)), ("S", (na, 3, nw, ns)), ("v", (na, 3, ns)),
                        ("CC_diag", (na, 3, ns)), ("curlA_diag", (na, 3, ns)), ("S_diag", (na, 3, ns))]:
        assert getattr(bd, name).shape == shape, name
    # velocities are the diagonal of V; D vanishes inside degenerate groups and is anti-Hermitian
    rows = bd.cols[:, None, None, :]
    np.testing.assert_allclose(bd.v, np.take_along_axis(bd.V, rows, axis=2)[:, :, 0].real)
    same = bd.labels_all[:, :, None] == bd.labels[:, None, :]
    assert np.all(bd.D[np.broadcast_to(same[:, None], bd.D.shape)] == 0)
    sub = bd.take(np.arange(0, na, 2))
    assert sub.n_points == len(range(0, na, 2)) and sub.S.shape[1:] == bd.S.shape[1:]
    # a window that no band reaches: no data, the points still counted
    none, st0 = band_data(interp, k, degen_thresh=1e-4, window=(1e3, 1e3 + 1))
    assert none is None and st0 == BandStats(len(k), 0, 0)


def test_interpolator_parts_name_the_components(te_soc):
    interp = Interpolator(te_soc)
    assert list(interp.parts) == ["dH", "A", "B", "CC", "curlA", "S"]
    assert sum(s.stop - s.start for s in interp.parts.values()) == interp.ncomp - 1
    k = np.array([[0.1, 0.2, 0.3]])
    W = interp.wannier_gauge(k)
    X = interp.derivatives(interp.phase(k))
    for name, sl in interp.parts.items():
        np.testing.assert_allclose(X[:, sl], W[name], atol=1e-12 * np.abs(W[name]).max())


def test_band_data_equals_full_rotations(te_soc):
    """Every field against U^+ X U of the Wannier-gauge matrices, rotated whole (independent of
    the column kernel), at points kept by the window; columns compared up to the phase of U."""
    st = _settings()
    interp = Interpolator(te_soc)
    k = np.random.default_rng(5).random((40, 3))
    bd, _ = band_data(interp, k, degen_thresh=st.degen_thresh, window=energy_window(st, interp.nw))
    W = interp.wannier_gauge(k[bd.k_index])
    H = W["H"][:, 0]
    E, U = np.linalg.eigh(0.5 * (H + np.conj(np.swapaxes(H, -1, -2))))
    Ud = np.conj(np.swapaxes(U, -1, -2))[:, None]

    def diag(X):  # diagonal of U^+ X U at the columns, (na, 3, ns)
        full = np.einsum("kcnn->kcn", Ud @ X @ U[:, None])
        return np.take_along_axis(full, bd.cols[:, None, :], axis=2)

    np.testing.assert_allclose(bd.E, np.take_along_axis(E, bd.cols, axis=1), atol=1e-10)
    np.testing.assert_allclose(bd.v, diag(W["dH"]).real, atol=1e-9)
    np.testing.assert_allclose(bd.S_diag, diag(W["S"]).real, atol=1e-9)
    np.testing.assert_allclose(bd.CC_diag, diag(W["CC"]), atol=1e-9)
    np.testing.assert_allclose(bd.curlA_diag, diag(W["curlA"]), atol=1e-9)
    for name in ("A", "B"):  # |X_mn| is phase independent
        full = Ud @ W[name] @ U[:, None]
        cols = np.take_along_axis(full, bd.cols[:, None, None, :], axis=3)
        np.testing.assert_allclose(np.abs(getattr(bd, name)), np.abs(cols), atol=1e-9)
