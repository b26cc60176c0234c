"""Linear tetrahedron method: weights against analytic values, and the engine's tetra kernel."""

import numpy as np
import pytest

from gme_wannier.calculate import compute
from gme_wannier.integrate import GMESettings
from gme_wannier.kmesh import uniform_mesh
from gme_wannier.models import weyl_pair_model
from gme_wannier.settings import RunControl, Sampling
from gme_wannier.tetra import fermi_surface_weights, tetra_corner_weights, tetrahedra

B = 2 * np.pi * np.eye(3)  # reciprocal rows of a unit cubic cell (a = 1 Angstrom)


def _free_electron(mesh, alpha=1.0):
    """E = alpha |k|^2 on the BZ centred at Gamma (k_red folded into [-1/2, 1/2))."""
    k = uniform_mesh(mesh)
    k = k - np.round(k)
    kc = k @ B
    return alpha * (kc**2).sum(axis=1), kc


def test_blochl_dos_of_one_tetrahedron():
    """Sum of the corner weights = the closed-form DOS of a linear tetrahedron (Bloechl 1994)."""
    e = np.array([[0.1, 0.5, 0.7, 1.6]])
    e1, e2, e3, e4 = e[0]
    EF = np.array([0.3, 0.6, 1.0])
    V = 0.25
    w = tetra_corner_weights(e[:, [2, 0, 3, 1]], EF, V)  # any corner order
    g = w.sum(axis=1)[0]
    exact = [3 * V * (EF[0] - e1) ** 2 / ((e2 - e1) * (e3 - e1) * (e4 - e1)),
             3 * V / ((e3 - e1) * (e4 - e1)) * ((e2 - e1) + 2 * (EF[1] - e2)
                                                - (e3 - e1 + e4 - e2) * (EF[1] - e2) ** 2 / ((e3 - e2) * (e4 - e2))),
             3 * V * (e4 - EF[2]) ** 2 / ((e4 - e1) * (e4 - e2) * (e4 - e3))]
    np.testing.assert_allclose(g, exact, rtol=1e-12)


def test_linear_quantity_is_integrated_exactly_in_one_tetrahedron():
    """For linear E and X, sum_c w_c X_c is the exact delta integral: check by the derivative of
    the exactly known volume integral int theta(E_F - E) X (numerical derivative, 4 cases)."""
    rng = np.random.default_rng(3)
    e = np.sort(rng.normal(size=4))
    X = rng.normal(size=4)
    # the occupied part of the standard tetrahedron, by fine barycentric quadrature
    n = 160
    g = np.indices((n, n, n)).reshape(3, -1).T
    g = g[g.sum(axis=1) < n]
    pts = (g + 0.25) / n  # bias cancels in the derivative
    bary = np.c_[1 - pts.sum(axis=1), pts]
    ok = bary[:, 0] > 0
    Ep, Xp = bary[ok] @ e, bary[ok] @ X
    for EF in (0.3 * e[0] + 0.7 * e[1], 0.5 * (e[1] + e[2]), 0.4 * e[2] + 0.6 * e[3]):
        h = 0.02
        num = (Xp[np.abs(Ep - EF) < h / 2].sum() / ok.sum()) / h
        w = tetra_corner_weights(e[None], np.array([EF]), 1.0)[0, :, 0]
        assert abs(w @ X - num) < 0.03 * abs(num) + 1e-3


def test_free_electron_dos_and_fermi_surface_average():
    """E = k^2 (hbar = 1 units): DOS = 2 pi k_F / V_BZ and int delta v_z^2 = 8 pi k_F^3 / (3 V_BZ)."""
    mesh = (36, 36, 36)
    E, kc = _free_electron(mesh)
    EF = np.array([3.0, 6.0])  # k_F = 1.7, 2.4 < pi
    W = fermi_surface_weights(E[:, None], mesh, B, EF)[:, 0, :]  # (nk, nE)
    VBZ = (2 * np.pi) ** 3
    kF = np.sqrt(EF)
    np.testing.assert_allclose(W.sum(axis=0), 2 * np.pi * kF / VBZ, rtol=0.01)
    vz2 = (2 * kc[:, 2]) ** 2
    np.testing.assert_allclose(vz2 @ W, 8 * np.pi * kF**3 / (3 * VBZ), rtol=0.01)


def test_dos_sum_rule_and_tetrahedra_cover_the_mesh():
    mesh = (6, 5, 4)
    tets = tetrahedra(mesh, B)
    assert tets.shape == (6 * 120, 4)
    assert np.all(np.bincount(tets.ravel(), minlength=120) == 24)  # each point is a corner of 24
    E, _ = _free_electron(mesh)
    grid = np.linspace(E.min() - 0.1, E.max() + 0.1, 4001)
    dos = fermi_surface_weights(E[:, None], mesh, B, grid, tets=tets).sum(axis=(0, 1))
    assert abs(np.trapezoid(dos, grid) - 1.0) < 1e-3


def test_tetra_kernel_converges_on_weyl_model():
    """The tetra kernel on the Weyl pair at E_F = 0.5 eV (pockets ~3 mesh steps across at 48^3):
    48^3 within 3 % of 64^3, and the Fermi-surface DOS is positive."""
    m = weyl_pair_model(b=0.3)
    st = GMESettings(fermi_energies=[0.5])
    ref = compute(m, st, Sampling(mesh=(64, 64, 64), kernel="tetra"), symmetry="off", run=RunControl(chunk_size=5000))
    t48 = compute(m, st, Sampling(mesh=(48, 48, 48), kernel="tetra"), symmetry="off", run=RunControl(chunk_size=5000))
    np.testing.assert_allclose(np.diag(t48.K["orbital"][0]), np.diag(ref.K["orbital"][0]), rtol=0.03)
    assert t48.dos[0] > 0
    np.testing.assert_allclose(t48.dos, ref.dos, rtol=0.03)


def test_tetra_kernel_rejects_box():
    from gme_wannier.io.errors import GMEInputError

    with pytest.raises(GMEInputError):
        compute(weyl_pair_model(), GMESettings(), Sampling(box=dict(center=(0, 0, 0), mesh=(4, 4, 4)), kernel="tetra"), symmetry="off")
