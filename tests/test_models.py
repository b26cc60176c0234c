"""Physics checks on analytic models (docs/theory.md section 2, "Analytic checks")."""

import numpy as np
import pytest

from gme_wannier import units
from gme_wannier.bands import Interpolator
from gme_wannier.calculate import compute
from gme_wannier.integrate import GMESettings
from gme_wannier.load import load_model
from gme_wannier.models import weyl_pair_model, write_model
from gme_wannier.banddata import band_data
from gme_wannier.integrate import gme_moments
from gme_wannier.settings import Sampling
from gme_wannier.smearing import Smearing


def _weyl_alpha(model, b, N=40, box_factor=6.0):
    """alpha0 (orbital) at E_F = 0 from two boxes around the nodes (k_z = +-1/4)."""
    st = GMESettings(fermi_energies=[0.0], smearing=Smearing.from_temperature(abs(b) / 20 / units.k_B_eV))
    a = model.real_lattice[0, 0]
    L = box_factor * abs(b) / 1.0 / a / (2 * np.pi / a)  # k_F (reduced) times the factor, t = 1 eV
    tot = 0.0
    for z in (0.25, -0.25):
        box = dict(center=(0, 0, z), b1=(L, 0, 0), b2=(0, L, 0), b3=(0, 0, L), mesh=(N, N, N))
        tot = tot + compute(model, st, Sampling(box=box), symmetry="off").alpha["orbital"][0]
    return tot


def test_weyl_pair_limit_through_hr_files(tmp_path):
    """alpha_ij -> (e^2/3h^2)(eps_R - eps_L) delta_ij within 1 %, the model read back from _hr.dat."""
    b = 0.05
    write_model(weyl_pair_model(b=b), str(tmp_path / "weyl"))
    model = load_model(str(tmp_path / "weyl"))
    assert model.provenance["source"] == "hr"
    alpha = _weyl_alpha(model, b)
    eps_R, eps_L = -b, +b  # chirality +1 node at -b
    expected = units.e**2 / (3 * units.h**2) * (eps_R - eps_L) * units.eV
    np.testing.assert_allclose(np.diag(alpha), expected, rtol=0.01)
    assert np.abs(alpha - np.diag(np.diag(alpha))).max() < 1e-6 * abs(expected)


def test_swapping_node_energies_flips_sign():
    a1 = _weyl_alpha(weyl_pair_model(b=0.05), 0.05, N=24)
    a2 = _weyl_alpha(weyl_pair_model(b=-0.05), 0.05, N=24)
    np.testing.assert_allclose(a2, -a1, atol=1e-9 * np.abs(a1).max())
    assert np.abs(a1).max() > 0


def test_parity_symmetric_model_gives_zero():
    m = weyl_pair_model(b=0.3, parity_symmetric=True)
    st = GMESettings(fermi_energies=[-0.5, 0.2, 0.6], smearing=Smearing("gaussian", 0.1))
    alpha = compute(m, st, Sampling(mesh=(16, 16, 16)), symmetry="off").alpha["orbital"]
    chiral = compute(weyl_pair_model(b=0.3), st, Sampling(mesh=(16, 16, 16)), symmetry="off").alpha["orbital"]
    assert np.abs(chiral).max() > 1e6
    assert np.abs(alpha).max() < 1e-10 * np.abs(chiral).max()


def test_mirror_image_gives_opposite_alpha():
    m = weyl_pair_model(b=0.3)
    st = GMESettings(fermi_energies=[0.1, 0.4], smearing=Smearing("gaussian", 0.1))
    a = compute(m, st, Sampling(mesh=(12, 12, 12)), symmetry="off").alpha["orbital"]
    am = compute(m.mirrored(0), st, Sampling(mesh=(12, 12, 12)), symmetry="off").alpha["orbital"]
    np.testing.assert_allclose(am, -a, atol=1e-9 * np.abs(a).max())


def _d_vector(k_cart, t=1.0, a=3.0):
    kx, ky, kz = k_cart * a
    d = t * np.array([np.sin(kx), np.sin(ky), np.cos(kz) + 2 - np.cos(kx) - np.cos(ky)])
    dd = t * a * np.array([[np.cos(kx), 0, 0], [0, np.cos(ky), 0],
                           [np.sin(kx), np.sin(ky), -np.sin(kz)]])  # dd[i, j] = d d_i / d k_j
    return d, dd


def test_orbital_moment_equals_two_band_formula():
    """ZMS Eq. (15) (docs/theory.md section 2 form): m_x = -(e/2 hbar d^2) d.(d_y d x d_z d), same for both bands."""
    model = weyl_pair_model(b=0.17)
    interp = Interpolator(model)
    rng = np.random.default_rng(1)
    k_red = rng.random((20, 3))
    bd, _ = band_data(interp, k_red, degen_thresh=1e-8, columns="all")
    Gc, Phi = gme_moments(bd)
    G = Gc - bd.E[:, None, :] * Phi  # (nk, 3, 2), e/(2 hbar) units
    for ik, kr in enumerate(k_red):
        d, dd = _d_vector(kr @ model.recip_lattice)
        dn2 = d @ d
        cols = [dd[:, j] for j in range(3)]
        expected = np.array([-(d @ np.cross(cols[(c + 1) % 3], cols[(c + 2) % 3])) / dn2 for c in range(3)])
        for band in range(2):
            np.testing.assert_allclose(G[ik, :, band], expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max())


def _gapped_model():
    """Two-band insulator with TR and P broken; its upper band crosses E_F = 3.3 eV."""
    m = weyl_pair_model(b=0.3)
    H = np.array(m.H_R)
    iR0 = np.nonzero(np.all(m.iRvec == 0, axis=1))[0][0]
    H[iR0] += 1.5 * np.diag([1.0, -1.0])  # d_z += 1.5 eV: no band touching
    return m.replace(H_R=H)


@pytest.mark.parametrize("smearing", [Smearing("gaussian", 0.3), Smearing.from_temperature(1500.0)])
def test_fermi_sea_equals_fermi_surface(smearing):
    model = _gapped_model()
    st = GMESettings(fermi_energies=[3.3, 3.8], smearing=smearing)
    r_surf = compute(model, st, Sampling(mesh=(32, 32, 32)), symmetry="off")
    r_sea = compute(model, st, Sampling(mesh=(32, 32, 32), kernel="sea"), symmetry="off")
    surf, sea = r_surf.K["orbital"], r_sea.K["orbital"]
    assert np.abs(surf).max() > 0
    np.testing.assert_allclose(sea, surf, atol=1e-4 * np.abs(surf).max())
    # the same mesh and smearing give the same DOS (the sea form once returned the electron count)
    assert r_surf.dos.min() > 0
    np.testing.assert_allclose(r_sea.dos, r_surf.dos, rtol=1e-9)


def test_dos_counts_every_state_of_a_degenerate_group():
    """Every band doubled (two identical copies of the Weyl model): DOS and K double. The
    degenerate pairs are summed as one group for the moments; the DOS counts both states."""
    from gme_wannier.model import TBModel

    m = weyl_pair_model(b=0.3)
    H2 = np.zeros((m.nR, 4, 4), complex)
    H2[:, :2, :2] = m.H_R
    H2[:, 2:, 2:] = m.H_R
    m2 = TBModel(real_lattice=m.real_lattice, iRvec=m.iRvec, H_R=H2, centres_cart=np.zeros((4, 3)),
                 spinors=True, name="doubled")
    st = GMESettings(fermi_energies=[0.1, 0.4], smearing=Smearing("gaussian", 0.1))
    a = compute(m, st, Sampling(mesh=(8, 8, 8)), symmetry="off")
    b = compute(m2, st, Sampling(mesh=(8, 8, 8)), symmetry="off")
    np.testing.assert_allclose(b.dos, 2 * a.dos, rtol=1e-12)
    np.testing.assert_allclose(b.K["total"], 2 * a.K["total"], rtol=1e-10, atol=1e-12 * np.abs(a.K["total"]).max())
