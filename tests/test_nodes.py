"""Weyl nodes (gme_wannier.nodes) and Fermi sheets (gme_wannier.sheets): analytic two-node model,
a nodal-line model, SrSi2 (bundled example) and Te with spin-orbit coupling (shared data)."""

import json
import os

import numpy as np
import pytest

from conftest import need
from gme_wannier import units
from gme_wannier.calculate import compute
from gme_wannier.cli import main
from gme_wannier.integrate import GMESettings
from gme_wannier.load import load_model
from gme_wannier.model import TBModel
from gme_wannier.models import weyl_pair_model
from gme_wannier.nodes import find_nodes
from gme_wannier.settings import Sampling
from gme_wannier.sheets import decompose, sheets_figure
from gme_wannier.smearing import Smearing

HERE = os.path.dirname(os.path.abspath(__file__))
SRSI2 = os.path.join(HERE, "..", "examples", "wannier90_inputs", "SrSi2", "srsi2")
ZMS = units.e ** 2 / (3 * units.h ** 2) * units.eV  # e^2/3h^2 per eV, A m^-2 T^-1


def _periodic_dist(a, b):
    d = np.asarray(a) - np.asarray(b)
    return np.abs(d - np.rint(d)).max()


# ------------------------------------------------------------------ two-node Weyl model

def test_weyl_model_nodes_analytic():
    """Nodes at k = (0, 0, -+1/4) (reduced), energies -+b, chirality sign det(dd/dk) = +1 / -1,
    velocity t a (isotropic), no tilt; ZMS Eq. 17 = (e^2/3h^2)(-2b); JSON layout."""
    b, t, a = 0.05, 1.0, 3.0
    model = weyl_pair_model(b=b, t=t, a=a)
    res = find_nodes(model, (-1, 1), symmetry="off", scan_mesh=(12, 12, 12))
    assert len(res.nodes) == 2 and not res.failures and not res.nodal_lines
    by_z = {round(nd.k_reduced[2], 6): nd for nd in res.nodes}
    lower, upper = by_z[-0.25], by_z[0.25]
    # near k_z = +pi/2a: d = t a (q_x, q_y, -q_z) -> det = -1; near -pi/2a: det = +1
    assert (lower.chirality, upper.chirality) == (1, -1)
    np.testing.assert_allclose([lower.energy_eV, upper.energy_eV], [-b, b], atol=1e-9)
    for nd in res.nodes:
        np.testing.assert_allclose(nd.k_reduced[:2], 0, atol=1e-9)
        np.testing.assert_allclose(nd.velocity_eV_A, t * a, rtol=2e-3)
        assert nd.tilt_ratio < 1e-6 and nd.bands == (1, 2) and nd.gap_eV < 1e-5
    np.testing.assert_allclose(res.zms["alpha_iso_A_m2_T"], ZMS * (-2 * b), rtol=1e-9)
    d = json.loads(json.dumps(res.to_dict()))
    for nd in d["nodes"]:
        assert len(nd["k_reduced"]) == 3 and len(nd["k_cartesian"]) == 3 and isinstance(nd["chirality"], int)
        np.testing.assert_allclose(nd["k_cartesian"], np.array(nd["k_reduced"]) @ model.recip_lattice)
        assert nd["bands"] == [1, 2] and isinstance(nd["energy_eV"], float)
        np.testing.assert_allclose(nd["fermi_velocity_m_s"], t * a * units.eV * 1e-10 / units.hbar, rtol=2e-3)
    assert d["total_chirality"] == 0


def test_weyl_pockets_equal_zms_eq16_and_chern_numbers():
    """Each pocket alone (a box around each node): alpha = (e^2/3h^2) chi (eps - E_F) within 1 %
    with chi and eps from the node search; the sheet's Chern number is -chi (dS along grad E)."""
    b, a = 0.05, 3.0
    model = weyl_pair_model(b=b, a=a)
    nodes = find_nodes(model, (-1, 1), symmetry="off", scan_mesh=(12, 12, 12)).nodes
    st = GMESettings(fermi_energies=[0.0], smearing=Smearing.from_temperature(b / 20 / units.k_B_eV))
    L = 5.0 * b / a / (2 * np.pi / a)
    cherns = []
    for nd in nodes:
        box = dict(center=nd.k_reduced, b1=(L, 0, 0), b2=(0, L, 0), b3=(0, 0, L), mesh=(32, 32, 32))
        dec = decompose(model, st, box=box)
        full = compute(model, st, Sampling(box=box), symmetry="off").alpha["total"]
        np.testing.assert_allclose(dec.alpha, full, rtol=0, atol=1e-10 * np.abs(full).max())
        pockets = [s for s in dec.sheets[0] if s["sheet"]]
        assert len(pockets) == 1
        expected = ZMS * nd.chirality * (nd.energy_eV - 0.0)
        np.testing.assert_allclose(pockets[0]["alpha_iso"], expected, rtol=0.01)
        assert abs(pockets[0]["chern"] + nd.chirality) < 0.02  # smeared flux
        assert pockets[0]["chern_surface"] == pytest.approx(-nd.chirality, abs=1e-9)  # lattice surface flux
        cherns.append(pockets[0]["chern_integer"])
    assert sorted(cherns) == [-1, 1]


def test_weyl_whole_zone_sheets_sum_and_chern():
    """Whole zone, periodic: two sheets (one per band, around the two nodes), Chern -1 and +1,
    total Chern ~ 0, sheets sum to compute(symmetry off) to 1e-10; CME and the figure."""
    model = weyl_pair_model(b=0.5)
    st = GMESettings(fermi_energies=[0.05], smearing=Smearing.from_temperature(900))
    dec = decompose(model, st, mesh=(40, 40, 40))
    full = compute(model, st, Sampling(mesh=(40, 40, 40)), symmetry="off").alpha["total"]
    np.testing.assert_allclose(dec.alpha, full, rtol=0, atol=1e-10 * np.abs(full).max())
    sheets = sorted((s for s in dec.sheets[0] if s["sheet"]), key=lambda s: s["chern"])
    assert [s["band"] for s in sheets] == [2, 1]
    np.testing.assert_allclose([s["chern"] for s in sheets], [-1, 1], atol=0.03)
    np.testing.assert_allclose([s["chern_surface"] for s in sheets], [-1, 1], atol=1e-9)
    assert all(s["chern_reliable"] for s in sheets)
    assert sum(s["chern_integer"] for s in dec.sheets[0]) == 0
    np.testing.assert_allclose(sheets[0]["center_reduced"], [0, 0, -0.25], atol=0.02)
    np.testing.assert_allclose(sheets[1]["center_reduced"], [0, 0, 0.25], atol=0.02)
    assert abs(dec.chern_total[0]) < 0.03
    # CME: dmu/2 on each of the two sheets, -(e^2/h^2) (dmu/2)(|C1| + |C2|) = -(e^2/h^2) dmu
    np.testing.assert_allclose(dec.cme(0.01, 0), -units.E2_OVER_H2_EV * 0.01, rtol=1e-12)
    import matplotlib

    backend = matplotlib.get_backend()
    fig = sheets_figure(dec)
    assert len(fig.axes) == 2 and matplotlib.get_backend() == backend


def _ring_model() -> TBModel:
    """H = sin(k_z a) sigma_y + (2 - cos k_x a - cos k_y a - cos k_z a + 1) sigma_z ... with a
    nodal ring cos k_x a + cos k_y a = 1 at k_z = 0 (d_x = 0 everywhere: PT-like, protected)."""
    sy = np.array([[0, -1j], [1j, 0]])
    sz = np.diag([1.0, -1.0]).astype(complex)
    H = {}

    def add(R, M):
        H[R] = H.get(R, np.zeros((2, 2), complex)) + M

    add((0, 0, 0), 2.0 * sz)
    for ax in range(3):
        e = [0, 0, 0]
        e[ax] = 1
        add(tuple(e), -0.5 * sz)
        add(tuple(-x for x in e), -0.5 * sz)
    add((0, 0, 1), sy / 2j)
    add((0, 0, -1), -sy / 2j)
    iR = np.array(sorted(H))
    return TBModel(real_lattice=3.0 * np.eye(3), iRvec=iR, H_R=np.array([H[tuple(R)] for R in iR]),
                   centres_cart=np.zeros((2, 3)), name="ring")


def test_nodal_line_is_reported_not_as_a_node():
    res = find_nodes(_ring_model(), (-1, 1), symmetry="off", scan_mesh=(12, 12, 12))
    assert len(res.nodes) == 0
    assert res.nodal_lines and all("nodal line" in ln["kind"] for ln in res.nodal_lines)
    for ln in res.nodal_lines:  # on the ring: k_z = 0, cos k_x a + cos k_y a = 1
        k = 2 * np.pi * np.array(ln["k_reduced"])
        assert abs(np.sin(k[2])) < 1e-3 and abs(np.cos(k[0]) + np.cos(k[1]) - 1) < 1e-3


def test_cli_nodes_and_run_decompose(tmp_path, capsys):
    seed = str(tmp_path / "weyl")
    assert main(["make-weyl", seed]) == 0
    out = str(tmp_path / "n.json")
    assert main(["nodes", seed, "--window", "-1", "1", "--symmetry", "off", "--scan-mesh", "8", "8", "8",
                 "--radius", "0.02", "--gap-tol", "1e-6", "-o", out]) == 0
    d = json.load(open(out))
    assert sorted(nd["chirality"] for nd in d["nodes"]) == [-1, 1]
    assert d["search"]["sphere_radius_inv_A"] == 0.02 and d["search"]["gap_tol_eV"] == 1e-6
    capsys.readouterr()
    for bad, opt in ((["--window", "1", "-1", "--symmetry", "off"], "--window"),
                     (["--window", "-1", "1", "--scan-mesh", "0", "4", "4", "--symmetry", "off"], "--scan-mesh"),
                     (["--window", "-1", "1", "--radius", "-1", "--symmetry", "off"], "--radius"),
                     (["--window", "-1", "1"], "--symmetry")):  # the .win structure is a placeholder
        assert main(["nodes", seed, *bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"gme-wannier: error: {opt}:"), err
    out = str(tmp_path / "r.json")
    assert main(["run", seed, "--mesh", "16", "16", "16", "--symmetry", "off", "--efermi", "0.1",
                 "--temperature", "600", "--decompose", "--mu-imbalance", "0.01", "-o", out]) == 0
    assert "Fermi sheets at E_F = 0.100 eV" in capsys.readouterr().out
    r = json.load(open(out))
    lev = r["fermi_sheets"]["levels"][0]
    iso = r["decomposition"]["total"]["isotropic"][0]
    np.testing.assert_allclose(sum(s["alpha_iso"] for s in lev["sheets"]), iso, rtol=1e-10)
    assert "alpha_cme_iso" in lev


# ------------------------------------------------------------------ SrSi2 (bundled example)

@pytest.fixture(scope="module")
def srsi2():
    return load_model(SRSI2)


@pytest.mark.slow
def test_srsi2_node_sets_of_the_user_guide(srsi2):
    """docs/user_guide.md, Example: SrSi2: 6 nodes chi = -1 on Gamma-X at |k| = 0.199 (8.469-8.472 eV),
    6 nodes chi = +1 near Gamma-X at |k| = 0.366 (8.591-8.593 eV), general-position stars of both
    chiralities at |k| ~ 0.35 (8.55-8.58 eV); total chirality zero, star members related by symmetry."""
    res = find_nodes(srsi2, (8.3, 8.7), scan_mesh=(24, 24, 24))
    assert sum(nd.chirality for nd in res.nodes) == 0
    assert all(nd.bands == (20, 21) for nd in res.nodes)
    stars = {s["id"]: s for s in res.stars}
    gx_in = [s for s in res.stars if s["size"] == 6 and s["chirality"] == -1]
    gx_out = [s for s in res.stars if s["size"] == 6 and s["chirality"] == 1]
    assert len(gx_in) == 1 and len(gx_out) == 1
    for s, kabs, (e0, e1) in ((gx_in[0], 0.199, (8.468, 8.473)), (gx_out[0], 0.366, (8.590, 8.594))):
        mem = [nd for nd in res.nodes if nd.star == s["id"]]
        assert s["n_images"] == 6 and len(mem) == 6
        for nd in mem:
            k = np.sort(np.abs(nd.k_reduced))
            assert abs(k[2] - kabs) < 0.003 and k[1] < 0.02 and e0 <= nd.energy_eV <= e1
        # the six sit on the six half-axes
        assert sorted(tuple(np.sign(np.rint(np.array(nd.k_reduced) / kabs)).astype(int)) for nd in mem) == \
            sorted(tuple(v) for v in np.vstack([np.eye(3, dtype=int), -np.eye(3, dtype=int)]))
    general = [s for s in stars.values() if s["n_images"] > 6]
    assert {s["chirality"] for s in general} == {-1, 1}
    for s in general:
        mem = [nd for nd in res.nodes if nd.star == s["id"]]
        assert len(mem) >= 10 and all(8.55 <= nd.energy_eV <= 8.58 for nd in mem)
        assert all(0.33 < np.linalg.norm(nd.k_reduced) < 0.37 for nd in mem)
    # images that are not nodes of this Wannier Hamiltonian are reported, not listed as nodes
    assert res.failures and all(f["reason"].startswith("symmetry image is not a node of this Hamiltonian")
                                for f in res.failures)


def test_srsi2_sheets_sum_to_the_integrated_alpha(srsi2):
    st = GMESettings(fermi_energies=[8.46, 8.5], smearing=Smearing.from_temperature(300))
    dec = decompose(srsi2, st, mesh=(12, 12, 12))
    full = compute(srsi2, st, Sampling(mesh=(12, 12, 12)), symmetry="off")
    ref = full.alpha["total"]
    np.testing.assert_allclose(dec.alpha, ref, rtol=0, atol=1e-10 * np.abs(ref).max())
    for e in range(2):
        per_band = sum(b["alpha_iso"] for b in dec.bands(e))
        np.testing.assert_allclose(per_band, np.trace(ref[e]) / 3, rtol=1e-10)
        for s in dec.sheets[e]:
            assert abs(s["chern_surface"] - round(s["chern_surface"])) < 1e-9


@pytest.mark.slow
def test_srsi2_sheet_chern_numbers_and_stars(srsi2):
    """20^3 at 8.56 eV: the surface Chern numbers are integers adding up to zero (the band-21 sheet
    around Gamma +4 against four band-20 hole sheets -1; the other two, 0, are flagged: a node
    within a mesh step), the smeared flux is not (a mesh point 0.001 from a node); the six
    band-20 sheets on the axes are one symmetry star."""
    st = GMESettings(fermi_energies=[8.56], smearing=Smearing.from_temperature(300))
    dec = decompose(srsi2, st, mesh=(20, 20, 20), symmetry="auto")
    sheets = [s for s in dec.sheets[0] if s["sheet"]]
    assert sum(s["chern_integer"] for s in sheets) == 0
    assert sorted(s["chern_integer"] for s in sheets if s["band"] == 21) == [4]
    assert sorted(s["chern_integer"] for s in sheets if s["band"] == 20) == [-1, -1, -1, -1, 0, 0]
    assert abs(dec.chern_total[0]) > 1  # the smeared estimate on this mesh
    b20 = [s for s in sheets if s["band"] == 20]
    assert len({s["star"] for s in b20}) == 1
    assert all(s["chern_integer"] == -1 for s in b20 if s["chern_reliable"])
    assert sorted(s["chern_reliable"] for s in b20) == [False, False, True, True, True, True]


# ------------------------------------------------------------------ Te with SOC (shared data)

@pytest.fixture(scope="module")
def te():
    need("Te_soc", "Te.chk")
    from conftest import data_path

    return load_model(data_path("Te_soc", "Te"))


H_POINTS = np.array([[1 / 3, 1 / 3, 1 / 2], [-1 / 3, -1 / 3, -1 / 2]])


def _near_h(k, tol):
    return min(_periodic_dist(k, h) for h in H_POINTS) < tol


def test_te_weyl_nodes_near_H(te):
    """Hirayama et al. PRL 114, 206401: Weyl nodes at and around H. Here (PBE+SOC, the inverted
    regime): the touching of bands 12-13 at H and H' (6.0807 eV, chi = +1), six chi = -1 nodes
    within 0.005 of H/H' (6.079 eV) and four chi = +1 on the H-K line at k_z = +-0.474
    (6.1149 eV, the band-12 maximum); their charges add to zero. Deterministic."""
    res = find_nodes(te, (6.0, 6.15), scan_mesh=(18, 18, 12))
    pair = [nd for nd in res.nodes if nd.bands == (12, 13)]
    assert sum(nd.chirality for nd in pair) == 0 and all(_near_h(nd.k_reduced, 0.03) for nd in pair)
    at_h = [nd for nd in pair if _near_h(nd.k_reduced, 1e-4)]
    assert len(at_h) == 2 and all(nd.chirality == 1 and abs(nd.energy_eV - 6.0807) < 5e-4 for nd in at_h)
    ring = [nd for nd in pair if not _near_h(nd.k_reduced, 1e-4) and _near_h(nd.k_reduced, 0.006)]
    assert len(ring) == 6 and all(nd.chirality == -1 for nd in ring)
    hk = [nd for nd in pair if abs(abs(nd.k_reduced[2]) - 0.474) < 0.003]
    assert len(hk) == 4 and all(nd.chirality == 1 and abs(nd.energy_eV - 6.1149) < 5e-4 for nd in hk)
    again = find_nodes(te, (6.0, 6.15), scan_mesh=(18, 18, 12))
    assert [n.to_dict() for n in again.nodes] == [n.to_dict() for n in res.nodes]


def test_te_sheets_near_H_carry_alpha(te):
    st = GMESettings(fermi_energies=[6.05], smearing=Smearing.from_temperature(300))
    dec = decompose(te, st, mesh=(18, 18, 12))
    tot = np.trace(dec.alpha[0]) / 3
    near = sum(s["alpha_iso"] for s in dec.sheets[0] if s["sheet"] and _near_h(s["center_reduced"], 0.05))
    assert abs(tot) > 0 and near / tot > 0.9
