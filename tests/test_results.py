"""Issue 12 (results a scientist can trust at a glance) and the model sources of issue 10.

Model files (own npz, WannierBerri folder, export), the Fermi level (band report, electron
count against DFT), spin counting, screening on a mixed set, the plot Figure, the JSON round
trip, exact symmetry zeros and the self-explaining JSON. Cheap meshes throughout.
"""

import json
import os
import shutil

import numpy as np
import pytest
from conftest import data_path, need

from gme_wannier import GMESettings, Smearing, compute, load_model, load_result
from gme_wannier.cli import main
from gme_wannier.fermi import band_energies, band_report, bands_below_wannier_window, fermi_level_from_count
from gme_wannier.io.win import read_win
from gme_wannier.model import TBModel
from gme_wannier.result import GMEResult
from gme_wannier.settings import Sampling
from gme_wannier.symmetry import find_symmetry
from gme_wannier.units import E_OVER_HBAR, k_B_eV

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples", "wannier90_inputs")
SRSI2 = os.path.join(EXAMPLES, "SrSi2", "srsi2")
TE = os.path.join(EXAMPLES, "Te", "Te")


from conftest import cli, load  # noqa: E402  (shared with the other CLI tests; weyl fixture there too)


# ---------------------------------------------------------------- model sources (issue 10)


def test_export_then_npz_source_gives_the_same_result(tmp_path, capsys):
    """export Te_tut24 (.chk/.mmn/.uHu) to one npz; run from it == run from the Wannier90 files."""
    for ext in (".win", ".chk", ".eig", ".mmn", ".uHu"):
        shutil.copy(need("Te_tut24", "Te" + ext), tmp_path / ("Te" + ext))
    seed = tmp_path / "Te"
    rc, out, _ = cli(["export", seed, "-o", tmp_path / "Te_model.npz", "--source", "chk"], capsys)
    assert rc == 0 and "A_R, B_R, CC_R" in out
    m = TBModel.from_npz(str(tmp_path / "Te_model.npz"))
    assert m.has_external_terms and m.provenance["source"] == "npz" and m.provenance["built_from"]["source"] == "chk"
    common = ["--mesh", 6, 6, 6, "--efermi", 5.9, 6.2, "--temperature", 600, "--quiet"]
    assert cli(["run", seed, "--source", "chk", *common, "-o", tmp_path / "a.json", "--no-cache"], capsys)[0] == 0
    assert cli(["run", seed, "--source", "npz", *common, "-o", tmp_path / "b.json"], capsys)[0] == 0
    a, b = load(tmp_path / "a.json"), load(tmp_path / "b.json")
    Ka, Kb = np.array(a["K"]["total"]), np.array(b["K"]["total"])
    assert np.abs(Ka).max() > 0
    np.testing.assert_allclose(Kb, Ka, rtol=1e-12, atol=1e-12 * np.abs(Ka).max())
    assert b["model"]["source"] == "npz" and a["model"]["source"] == "chk"
    rc, _, err = cli(["run", tmp_path / "nothing", "--source", "npz", *common], capsys)
    assert rc == 2 and err.startswith("gme-wannier: error:") and len(err.strip().splitlines()) == 1


def test_srsi2_full_model_file_is_picked_automatically(capsys):
    """../shared/data/SrSi2_full/srsi2: the npz (full orbital moment) beats the _hr.dat."""
    seed = need("SrSi2_full", "srsi2_full_model.npz")[: -len("_full_model.npz")]
    rc, out, _ = cli(["info", seed], capsys)
    assert rc == 0 and "default source: npz; orbital moment: full (A, B, C)" in out
    m = load_model(seed)
    assert m.provenance["source"] == "npz" and m.has_external_terms and m.num_wann == 56
    assert m.atoms is not None and len(m.atoms) == 12  # structure from the .win beside it
    assert load_model(seed, source="hr").provenance["source"] == "hr"


def test_wannierberri_folder_source():
    """Te_qe_wannierberri: our numpy reader equals WannierBerri's own loader, array by array."""
    folder = need("Te_qe_wannierberri", "system", "_XX_R_Ham.npz")
    from gme_wannier.postw90_model import load_wannierberri_npz

    ref = load_wannierberri_npz(os.path.dirname(folder))
    m = load_model(data_path("Te_qe_wannierberri"), source="wannierberri")  # DIR with one .win
    assert m.provenance["source"] == "wannierberri" and m.spinors and m.name == "tellurium"
    for k in ("real_lattice", "iRvec", "H_R", "centres_cart", "A_R", "B_R", "CC_R", "S_R"):
        np.testing.assert_array_equal(getattr(m, k), getattr(ref, k), err_msg=k)
    assert load_model(data_path("Te_qe_wannierberri", "tellurium")).provenance["source"] == "wannierberri"


def test_run_dir_with_one_win_and_make_weyl_help(weyl, tmp_path, capsys):
    d = os.path.dirname(weyl)
    args = ["--symmetry", "off", "--mesh", 3, 3, 3, "--efermi", 0.0, "--quiet"]
    assert cli(["run", d, *args, "-o", tmp_path / "d.json"], capsys)[0] == 0
    assert cli(["run", weyl, *args, "-o", tmp_path / "s.json"], capsys)[0] == 0
    assert load(tmp_path / "d.json")["K"] == load(tmp_path / "s.json")["K"]
    two = tmp_path / "two"
    two.mkdir()
    (two / "a.win").write_text("num_wann = 2\n")
    (two / "b.win").write_text("num_wann = 2\n")
    rc, _, err = cli(["run", two, *args], capsys)
    assert rc == 2 and "2 .win files" in err
    with pytest.raises(SystemExit):
        main(["make-weyl", "--help"])
    out = capsys.readouterr().out
    assert "(default: 0.05)" in out and "(default: 1.0)" in out and "(default: 3.0)" in out


# ---------------------------------------------------------------- Fermi level


def test_electron_count_fermi_level_against_dft():
    """Charge neutrality at 300 K on a 16^3 mesh: SrSi2 (72 valence e, Sr 4s4p bands 1-16
    excluded: 40 in the Wannier bands) lands on the QE Fermi level 8.50 eV within k_B T;
    Te_tut24 (18 valence e, three 5s bands below dis_win_min: 12) lands in the gap, with no
    band crossing it, as the DFT semiconductor (its folder keeps no QE output with E_F)."""
    kT = k_B_eV * 300
    s = load_model(need("SrSi2", "srsi2.chk")[:-4])
    win = read_win(data_path("SrSi2", "srsi2.win"))
    assert bands_below_wannier_window(win, data_path("SrSi2", "srsi2.eig"))["excluded"] == 16
    E, w = band_energies(s, (16, 16, 16), find_symmetry(s.atoms))
    mu = fermi_level_from_count(E, w, 72 - 2 * 16, kT, 2)
    assert abs(mu - 8.50) < kT, mu
    assert band_report(E, [mu])["fermi_levels"][0]["crossing"] == [20, 21]  # semimetal: two bands cross
    t = load_model(need("Te_tut24", "Te.chk")[:-4])
    below = bands_below_wannier_window(read_win(data_path("Te_tut24", "Te.win")), data_path("Te_tut24", "Te.eig"))
    assert below == {"excluded": 0, "below_dis_win_min": 3}
    E, w = band_energies(t, (12, 12, 12), find_symmetry(t.atoms))
    mu = fermi_level_from_count(E, w, 18 - 2 * 3, kT, 2)
    lev = band_report(E, [mu])["fermi_levels"][0]
    assert lev["crossing"] == [] and lev["bands_below"] == 6
    assert lev["gap"][0] + kT < mu < lev["gap"][1] - kT, (mu, lev["gap"])


def test_num_electrons_and_relative_fermi_levels_in_run(tmp_path, capsys):
    """Te example (spinors: one electron per band): --num-electrons 12 puts E_F near the
    charge-neutral 6.07-6.11 eV of the Te_soc README; --efermi-relative shifts the grid."""
    o = tmp_path / "te.json"
    rc, out, _ = cli(["run", TE, "--mesh", 6, 6, 6, "--num-electrons", 12, "--efermi-relative", "--efermi-range",
                      -0.1, 0.1, 0.1, "--temperature", 300, "-o", o], capsys)
    assert rc == 0
    js = load(o)
    fl = js["fermi_level"]
    ef0 = fl["material_E_F_eV"]
    assert 6.0 < ef0 < 6.15 and fl["num_electrons"] == 12
    np.testing.assert_allclose(js["fermi_energies_eV"], np.round(ef0 + np.array([-0.1, 0.0, 0.1]), 10), atol=1e-12)
    assert "material Fermi level: %.4f eV (charge neutrality: 12 electrons" % ef0 in out
    assert "Wannier bands: 18 from" in out
    assert len(fl["levels"]) == 3 and all("crossing" in lev for lev in fl["levels"])
    assert ("bands " in out) or ("NO Fermi surface" in out)
    rc, _, err = cli(["run", TE, "--mesh", 3, 3, 3, "--efermi", 0.1, "--efermi-relative", "-o", o], capsys)
    assert rc == 2 and "--efermi-relative" in err  # no material Fermi level known
    rc, _, err = cli(["run", TE, "--mesh", 3, 3, 3, "--num-electrons", 40, "-o", o], capsys)
    assert rc == 2 and "--num-electrons" in err and "18 Wannier bands" in err


def test_info_prints_bands_at_the_fermi_level(capsys):
    """info: the bands below the Wannier subspace (what to subtract from the DFT count), the band
    range, the material E_F and, per requested E_F, the crossing bands and the DOS."""
    rc, out, _ = cli(["info", TE, "--num-electrons", 12, "--efermi", 5.0, 6.05, "--mesh", 6, 6, 6,
                      "--temperature", 300], capsys)
    assert rc == 0
    assert "6 excluded (exclude_bands)" in out and "DFT valence count - 6" in out
    assert "Wannier bands: 18 from" in out and "material Fermi level: 6.0" in out
    lines = [ln for ln in out.splitlines() if ln.startswith("  E_F = ")]
    assert len(lines) == 2 and "bands " in lines[0] and "DOS" in lines[0]
    rc, out, _ = cli(["info", TE, "--json", "--efermi", 5.0, "--mesh", 4, 4, 4], capsys)
    d = json.loads(out)
    lev = d["fermi_level"]["levels"][0]
    assert lev["E_F"] == 5.0 and lev["crossing"] and lev["dos_per_eV_per_cell"] > 0
    assert d["fermi_level"]["material_E_F_eV"] is None  # no --num-electrons, no fermi_energy in the .win


# ---------------------------------------------------------------- spin counting


def test_spin_counting_default_and_files(weyl, tmp_path, capsys):
    """Spinless model: alpha = 2 (e/hbar) K by default, K as Wannier90 (= --spin-degeneracy 1);
    the K files say their counting, K_spin.dat says when no spin moment was computed."""
    sl = tmp_path / "sl"
    for ext in (".win", "_hr.dat", "_centres.xyz"):
        (tmp_path / ("sl" + ext)).write_text(open(weyl + ext).read().replace("spinors = true", "spinors = false"))
    args = ["--symmetry", "off", "--mesh", 4, 4, 4, "--efermi", 0.0, 0.05, "--temperature", 600, "--quiet"]
    assert cli(["run", sl, *args, "-o", tmp_path / "two.json", "--w90-dat", tmp_path / "p"], capsys)[0] == 0
    assert cli(["run", sl, *args, "--spin-degeneracy", 1, "-o", tmp_path / "one.json"], capsys)[0] == 0
    two, one = load(tmp_path / "two.json"), load(tmp_path / "one.json")
    np.testing.assert_array_equal(two["K"]["total"], one["K"]["total"])
    np.testing.assert_allclose(two["alpha"]["total"], 2 * E_OVER_HBAR * np.array(two["K"]["total"]), rtol=1e-12)
    np.testing.assert_allclose(two["dos_per_eV_per_cell"], 2 * np.array(one["dos_per_eV_per_cell"]), rtol=1e-12)
    assert two["spin_counting"]["spin_degeneracy"] == 2 and "Wannier90" in two["spin_counting"]["K"]
    assert "counted twice" in two["approximation"]["spin_degeneracy"]
    orb = (tmp_path / "p-gme-K_orb.dat").read_text().splitlines()[0]
    spin = (tmp_path / "p-gme-K_spin.dat").read_text().splitlines()[0]
    assert "each band once, as Wannier90" in orb and "alpha = 2 x (e/hbar) x K" in orb
    assert "NOT COMPUTED" in spin
    # the spinor Weyl model counts each band once
    assert cli(["run", weyl, *args, "-o", tmp_path / "w.json"], capsys)[0] == 0
    w = load(tmp_path / "w.json")
    np.testing.assert_allclose(w["alpha"]["total"], E_OVER_HBAR * np.array(w["K"]["total"]), rtol=1e-12)


# ---------------------------------------------------------------- screening


def test_screen_mixed_set_with_a_failing_row_sort_jsonl_and_resume(tmp_path, capsys):
    """SrSi2 (spinless, x2) and Te (spinors, x1) at their own Fermi levels (@N electrons) plus a
    broken seed: every row is in the table and the JSON lines, exit code 2, sorted by |rho|;
    a rerun reuses the complete records and recomputes only the failed one."""
    broken = tmp_path / "broken"
    (tmp_path / "broken.win").write_text("num_wann = 2\n")
    (tmp_path / "broken_hr.dat").write_text("not a hr file\n")
    table = tmp_path / "s.csv"
    argv = ["screen", f"{TE}@12", f"{SRSI2}@40", broken, "--mesh", 4, 4, 4, "--efermi-relative", "--efermi-range",
            -0.05, 0.05, 0.05, "--sort", "rho", "--table", table]
    rc, out, err = cli(argv, capsys)
    assert rc == 2 and "1 of 3 materials failed" in err
    recs = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [r["material"] for r in recs] == [f"{TE}@12", f"{SRSI2}@40", str(broken)]
    assert [r["status"] for r in recs] == ["ok", "ok", "failed"]
    te, sr = recs[0], recs[1]
    assert te["spin_degeneracy"] == 1 and sr["spin_degeneracy"] == 2
    assert abs(sr["material_E_F_eV"] - 8.50) < 0.05 and 6.0 < te["material_E_F_eV"] < 6.15
    assert len(sr["alpha_iso"]) == 3 and sr["row"]["rho_axis"] == "any" and te["row"]["rho_axis"] == "z"
    rows = table.read_text().strip().splitlines()
    head = rows[0].split(",")
    assert head[0] == "material" and head[-1] == "error" and "spin_counting" in head
    body = [r.split('","') for r in rows[1:]]
    assert len(body) == 3 and body[2][0].strip('"') == str(broken)  # failed row last
    rho = [abs(float(b[head.index("rho_rad_per_mm")])) for b in body[:2]]
    assert rho[0] >= rho[1] and [b[1] for b in body[:2]] == ["1", "2"]
    assert any("x2 (spinless" in b[head.index("spin_counting")] for b in body)
    assert any("x1 (spinors" in b[head.index("spin_counting")] for b in body)
    assert "FAILED" in out
    rc, out, _ = cli(argv, capsys)
    assert rc == 2 and out.count("(resumed)") == 2


# ---------------------------------------------------------------- plots


def test_plot_figure_panels_labels_and_fermi_level(tmp_path, capsys):
    """Te example (uniaxial, spinors): five panels; rho along the optic axis z; the antisymmetric
    part labelled forbidden by symmetry; the material E_F marked; the backend untouched."""
    import matplotlib

    from gme_wannier.plot import EF_LABEL, FORBIDDEN, decomposition_figure

    backend = matplotlib.get_backend()
    o = tmp_path / "te.json"
    assert cli(["run", TE, "--mesh", 6, 6, 6, "--num-electrons", 12, "--efermi-relative", "--efermi-range", -0.1,
                0.1, 0.05, "-o", o, "--plot", tmp_path / "te.png", "--quiet"], capsys)[0] == 0
    assert (tmp_path / "te.png").stat().st_size > 10_000
    res = load_result(str(o))
    fig = decomposition_figure(res, title="Te")
    assert matplotlib.get_backend() == backend
    axes = fig.axes
    assert len(axes) == 5
    labels = [ax.get_ylabel() for ax in axes]
    assert "isotropic" in labels[0] and "traceless" in labels[1] and "antisymmetric" in labels[2]
    assert "rho" in labels[3] and "DOS" in labels[4] and "Fermi level" in axes[4].get_xlabel()
    legend0 = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert any("orbital" in t for t in legend0) and any("total" in t for t in legend0) and EF_LABEL in legend0
    assert any("optic axis (z)" in t.get_text() for t in axes[3].get_legend().get_texts())
    assert any(FORBIDDEN in t.get_text() for t in axes[2].texts)
    assert not any(FORBIDDEN in t.get_text() for t in axes[1].texts)  # diag(a,a,c): alpha_S is allowed
    ef0 = res.info["fermi_level"]["material_E_F_eV"]
    for ax in axes:
        xs = [ln.get_xdata() for ln in ax.get_lines() if ln.get_linestyle() == "--" and ln.get_color() == "tab:purple"]
        assert any(np.allclose(x, ef0) for x in xs)
    rho = axes[3].get_lines()[0].get_ydata()
    np.testing.assert_allclose(rho, res.rotatory_power()["z"])


def test_plot_shows_orbital_and_spin_separately_with_spn(tmp_path, capsys):
    """Te_soc (.spn): the alpha_iso panel has total, orbital and spin curves, total = orb + spin."""
    from gme_wannier.plot import decomposition_figure

    seed = need("Te_soc", "Te.spn")[:-4]
    o = tmp_path / "t.json"
    assert cli(["run", seed, "--mesh", 4, 4, 4, "--efermi", 5.95, 6.0, "--temperature", 600, "-o", o, "--quiet"],
               capsys)[0] == 0
    res = load_result(str(o))
    ax = decomposition_figure(res).axes[0]
    curves = {ln.get_label(): ln.get_ydata() for ln in ax.get_lines() if ln.get_label().startswith("$")}
    tot, orb, spin = (curves[r"$\alpha_{\rm iso}$ " + p] for p in ("total", "orbital", "spin"))
    assert np.abs(spin).max() > 0
    np.testing.assert_allclose(tot, orb + spin, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- Python use and JSON


@pytest.fixture(scope="module")
def srsi2_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("srsi2")
    o = d / "s.json"
    assert main([str(a) for a in ["run", SRSI2, "--mesh", 8, 8, 8, "--efermi-range", 8.36, 8.6, 0.06,
                                  "--temperature", 300, "-o", o, "--quiet"]]) == 0
    return o


def test_json_round_trip_labelled_arrays_and_table(srsi2_run):
    res = GMEResult.from_json(str(srsi2_run))
    d = load(srsi2_run)
    assert res.to_dict() == json.loads(json.dumps(res.to_dict())) and _same(res.to_dict(), d)
    np.testing.assert_array_equal(res.alpha["total"], np.array(d["alpha"]["total"]))
    again = load_result(str(srsi2_run))
    np.testing.assert_array_equal(again.K["orbital"], res.K["orbital"])
    lab = res.labelled("alpha", "total")
    assert lab.dims == ("E_F", "i", "j") and lab.values.shape == (5, 3, 3)
    assert lab.sel(E_F=8.48, i="x", j="x") == res.alpha["total"][2, 0, 0]
    rows = res.table()
    assert len(rows) == 2 * 3 * 5 * 9 and set(rows[0]) == {"E_F_eV", "quantity", "part", "i", "j", "value", "unit"}
    r = next(r for r in rows if r["quantity"] == "alpha" and r["part"] == "total" and r["i"] == "y" and r["j"] == "y")
    assert r["value"] == res.alpha["total"][0, 1, 1] and r["unit"] == "A m^-2 T^-1"
    assert res.csv_table().splitlines()[0] == "E_F_eV,quantity,part,i,j,value,unit"


def _same(a, b):
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_exact_zeros_and_self_explaining_json(srsi2_run):
    """SrSi2 (432, a*1): off-diagonal alpha exactly 0, xx = yy = zz exactly, S and delta exactly 0;
    E_F without float noise; smearing named; settings agree with the approximation; counting."""
    d = load(srsi2_run)
    a = np.array(d["alpha"]["total"])
    assert np.abs(a).max() > 1e8
    off = a[:, ~np.eye(3, dtype=bool)]
    assert np.all(off == 0.0)
    assert np.all(a[:, 0, 0] == a[:, 1, 1]) and np.all(a[:, 1, 1] == a[:, 2, 2])
    dec = d["decomposition"]["total"]
    assert np.all(np.array(dec["traceless_symmetric"]) == 0) and np.all(np.array(dec["antisymmetric_vector_delta"]) == 0)
    assert d["fermi_energies_eV"] == [8.36, 8.42, 8.48, 8.54, 8.6]
    sm = d["settings"]["smearing"]
    assert sm["kind"] == "fermi-dirac" and sm["temperature_K"] == pytest.approx(300)
    assert d["settings"]["spin"] is False and d["settings"]["spin_requested"] is True
    assert d["approximation"]["spin_moment"] == "none"
    assert d["spin_counting"]["spin_degeneracy"] == 2
    assert d["optical_axis"] == "any" and "optic_axis" in d["rotatory_power_axes"]
    assert d["real_lattice_A"][0][0] == pytest.approx(6.535, abs=1e-3)


def test_honest_summary_cubic_and_edge_maximum(tmp_path, capsys):
    """Cubic SrSi2: no |alpha_S| / |delta| columns; a maximum at the end of the scan is flagged
    (alpha_iso rises up to its peak near 8.52 eV, so 8.3-8.5 eV ends on its largest value)."""
    rc, out, _ = cli(["run", SRSI2, "--mesh", 8, 8, 8, "--efermi-range", 8.3, 8.5, 0.1, "--temperature", 300,
                      "-o", tmp_path / "s.json"], capsys)
    assert rc == 0
    assert "|alpha_S|" not in out and "traceless and antisymmetric parts are 0 by symmetry" in out
    assert "rho (any n)" in out
    iso = [float(ln.split()[1]) for ln in out.splitlines() if ln.strip()[:4] in ("8.30", "8.40", "8.50")]
    assert len(iso) == 3
    assert ("edge of the scanned range" in out) == (int(np.argmax(np.abs(iso))) in (0, 2))
    from gme_wannier.report import run_summary

    class _M:  # what run_summary reads of a model
        name, num_wann, nR, provenance = "toy", 1, 1, {}

    info = {"approximation": {"orbital_moment": "-", "spin_moment": "none", "spin_degeneracy": "-"},
            "mesh": {"type": "box", "n_kpoints": 1}, "settings": {"smearing_description": "-"},
            "timing": {"seconds": 0.0, "ranks": 1}}
    for peak, flagged in ((2, False), (4, True), (0, True)):
        K = np.zeros((5, 3, 3))
        K[:, 0, 0] = K[:, 1, 1] = K[:, 2, 2] = 1e-6
        K[peak] *= 3
        text = run_summary(_M(), GMEResult(np.linspace(0, 0.4, 5), {p: K for p in ("orbital", "spin", "total")},
                                           np.eye(3), info=info), "x.json")
        assert ("edge of the scanned range" in text) == flagged, peak


def test_python_snippet_of_the_readme_gives_both_spins():
    """The README's Python use: spinless SrSi2 counted twice by default (= --spin-degeneracy 2)."""
    model = load_model(SRSI2, cache=True)
    st = GMESettings(fermi_energies=[8.5], smearing=Smearing.from_temperature(300))
    r = compute(model, st, Sampling(mesh=(6, 6, 6)))
    r1 = compute(model, st, Sampling(mesh=(6, 6, 6)), spin_degeneracy=1)
    assert r.spin_degeneracy == 2
    np.testing.assert_allclose(r.alpha["total"], 2 * r1.alpha["total"], rtol=1e-12)
    np.testing.assert_array_equal(r.K["total"], r1.K["total"])
