"""The run settings of gme_wannier.settings, called from Python: a .win read as postw90's
gyrotropic module reads it, the smearing and Fermi-level choices, magnetic moments, the
automatic convergence and the checks of Sampling. The command line is a shim over these
(tests/test_cli.py checks the same behaviour through the flags)."""

import io
import os
import shutil

import numpy as np
import pytest

from gme_wannier import compute, load_model, load_result, settings_from_win
from gme_wannier.io.errors import GMEInputError, InputFileError, OptionError
from gme_wannier.io.win import read_win
from gme_wannier.smearing import FD_MAX_ARG
from gme_wannier.models import weyl_pair_model
from gme_wannier.settings import (DEFAULT_TOLERANCE, RunControl, Sampling, SymmetryOptions, box_from_win,
                                  check_magmoms, convergence_from_options, gme_settings, run_setup,
                                  smearing_from_options)
from gme_wannier.units import k_B_eV

from conftest import data_path, need

TUT = data_path("Te_tut24", "Te")  # ../shared/data/Te_tut24/Te
TOY = data_path("Te_toy_w90testsuite", "Te")


def test_te_tut24_win_as_postw90_reads_it():
    """Te_tut24/Te.win: gyrotropic_box_* (center 1/3 1/3 1/2, edges 0.2 b_i), kmesh 50^3,
    Gaussian 0.01 eV cut at 5 widths, E_F 5.8..6.2 eV step 2.5 meV (161 levels), degen 1 meV."""
    need("Te_tut24", "Te.win")
    st, sp = settings_from_win(read_win(TUT + ".win"))
    assert sp.box is not None and sp.convergence is None
    np.testing.assert_allclose(sp.box["center"], [0.33333, 0.33333, 0.5])
    np.testing.assert_allclose([sp.box["b1"], sp.box["b2"], sp.box["b3"]], 0.2 * np.eye(3))
    assert list(sp.box["mesh"]) == [50, 50, 50]
    assert (st.smearing.kind, st.smearing.width, st.smearing.max_arg) == ("gaussian", 0.01, 5.0)
    assert len(st.fermi_energies) == 161
    assert st.fermi_energies[0] == 5.8 and st.fermi_energies[-1] == 6.2
    np.testing.assert_allclose(np.diff(st.fermi_energies), 0.0025, rtol=1e-9)
    assert st.degen_thresh == 0.001


def test_options_win_over_the_win():
    """A temperature and Fermi levels given as options replace the .win's smearing and range;
    the box stays; win_box=False drops the gyrotropic_* keywords (whole zone, defaults)."""
    need("Te_tut24", "Te.win")
    win = read_win(TUT + ".win")
    st, sp = settings_from_win(win, efermi=[6.0], temperature=100.0)
    assert st.fermi_energies == (6.0,)
    assert st.smearing.kind == "fermi-dirac"
    np.testing.assert_allclose(st.smearing.width, 100.0 * k_B_eV)
    assert list(sp.box["mesh"]) == [50, 50, 50]
    st, sp = settings_from_win(win, win_box=False, efermi=[6.0], mesh=(8, 8, 8))
    assert sp.box is None and sp.mesh == (8, 8, 8) and sp.convergence is None
    assert st.degen_thresh == 1e-4 and st.smearing.kind == "fermi-dirac"
    np.testing.assert_allclose(st.smearing.width, 300.0 * k_B_eV)


def _win_copy(tmp_path, replace):
    text = open(TUT + ".win").read()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "Te.win"
    path.write_text(text)
    return read_win(str(path))


def test_bad_win_values_name_the_win(tmp_path):
    need("Te_tut24", "Te.win")
    win = _win_copy(tmp_path, {"gyrotropic_kmesh=50 50 50": "gyrotropic_kmesh=0 50 50"})
    with pytest.raises(OptionError, match=r"Te.win \(--win-box\): box_mesh: must be 3 positive integers"):
        settings_from_win(win)
    win = _win_copy(tmp_path, {"gyrotropic_kmesh=50 50 50": ""})
    with pytest.raises(InputFileError, match="no gyrotropic_kmesh"):
        box_from_win(win)
    win = _win_copy(tmp_path, {"gyrotropic_smr_fixed_en_width=0.01": "gyrotropic_smr_fixed_en_width=-0.01"})
    with pytest.raises(OptionError, match=r"Te.win \(--win-box\): smearing_width: must be > 0"):
        settings_from_win(win)
    with pytest.raises(GMEInputError, match="unknown option"):
        settings_from_win(win, temprature=100.0)


def test_smearing_choice():
    s = smearing_from_options({"smearing": "fermi-dirac", "smearing_width": 0.02})
    assert s.kind == "fermi-dirac" and s.max_arg == FD_MAX_ARG == 30.0
    np.testing.assert_allclose(s.width, 0.02)  # width = k_B T: T = 0.02 eV / k_B
    s = smearing_from_options({"smearing": "methfessel-paxton", "smearing_width": 0.05, "mp_order": 2})
    assert (s.kind, s.width, s.order, s.max_arg) == ("methfessel-paxton", 0.05, 2, 5.0)
    assert smearing_from_options({}).width == pytest.approx(300.0 * k_B_eV)
    with pytest.raises(GMEInputError, match="needs --smearing-width"):
        smearing_from_options({"smearing": "gaussian"})
    with pytest.raises(GMEInputError, match="either --temperature or --smearing"):
        smearing_from_options({"smearing": "gaussian", "smearing_width": 0.01, "temperature": 10.0})


def test_fermi_grid_relative_to_the_win_fermi_energy():
    """efermi_relative: offsets from fermi_energy of the .win; no level at all is an error."""
    model = weyl_pair_model(b=0.1)
    win = read_win(io.StringIO("fermi_energy = 0.25\n"))
    st, fermi = gme_settings({"efermi": [-0.1, 0.1], "efermi_relative": True, "mesh": [8, 8, 8],
                              "symmetry": "off"}, win, model)
    np.testing.assert_allclose(st.fermi_energies, [0.15, 0.35], atol=1e-12)
    assert fermi["E_F_eV"] == 0.25 and fermi["source"] == "fermi_energy of the .win"
    assert fermi["mesh"] == [8, 8, 8]
    st, _ = gme_settings({"efermi_range": [0.0, 0.1, 0.05], "symmetry": "off"}, None, model)
    np.testing.assert_allclose(st.fermi_energies, [0.0, 0.05, 0.1])
    with pytest.raises(GMEInputError, match="no Fermi energy"):
        gme_settings({"symmetry": "off"}, None, model)


def test_magmoms_collinear_noncollinear_and_count():
    from ase import Atoms

    atoms = Atoms("Te3", scaled_positions=np.eye(3) * 0.3, cell=4 * np.eye(3), pbc=True)
    assert check_magmoms(None, atoms, "x") is None
    assert check_magmoms([1, -1, 0], atoms, "x").shape == (3,)
    mm = check_magmoms(list(range(9)), atoms, "x")
    assert mm.shape == (3, 3) and mm[1].tolist() == [3.0, 4.0, 5.0]
    with pytest.raises(GMEInputError, match=r"--magmoms: the structure \(POSCAR\) has 3 atoms: give 3 .* or 9 .* got 4"):
        check_magmoms([1, 2, 3, 4], atoms, "POSCAR")


def test_convergence_options():
    B = 2 * np.pi * np.diag([1 / 4.0, 1 / 5.0, 1 / 6.0])  # |b_i| in 1/Angstrom
    c = convergence_from_options({}, B, whole_zone=True, mesh_given=False)
    assert c.tolerance == DEFAULT_TOLERANCE
    assert convergence_from_options({}, B, whole_zone=False, mesh_given=False) is None
    assert convergence_from_options({"mesh": [8, 8, 8]}, B, whole_zone=True, mesh_given=True) is None
    c = convergence_from_options({"tolerance": 0.02, "mesh": [10, 10, 12], "max_kpoints": 5000}, B, True, True)
    assert (c.tolerance, c.max_kpoints) == (0.02, 5000)
    np.testing.assert_allclose(c.initial_spacing, 2 * np.pi / 6.0 / 12)
    with pytest.raises(GMEInputError, match="give --tolerance too"):
        convergence_from_options({"max_time": 10.0, "mesh": [8, 8, 8]}, B, True, True)


def test_sampling_checks():
    box = {"center": (0, 0, 0), "mesh": (4, 4, 4)}
    with pytest.raises(GMEInputError, match="unknown kernel 'fast'"):
        Sampling(kernel="fast")
    with pytest.raises(GMEInputError, match="kernel 'tetra' needs the unshifted uniform mesh"):
        Sampling(kernel="tetra", box=box)
    with pytest.raises(GMEInputError, match="refinement works with the Fermi-surface kernel"):
        Sampling(kernel="sea", refine=(2,))
    with pytest.raises(GMEInputError, match="integers >= 2"):
        Sampling(refine=(1,))
    from gme_wannier import ConvergenceOptions

    with pytest.raises(GMEInputError, match="--tolerance: automatic convergence works on the whole zone"):
        Sampling(box=box, convergence=ConvergenceOptions())
    with pytest.raises(GMEInputError, match="unknown symmetry mode 'on'"):
        SymmetryOptions(mode="on")
    with pytest.raises(GMEInputError, match="chunk_size must be >= 1"):
        RunControl(chunk_size=0)
    sp = Sampling(mesh=[6, 6, 6], box=box)
    box["mesh"] = (2, 2, 2)  # the sampling keeps its own copy
    assert sp.mesh == (6, 6, 6) and tuple(sp.box["mesh"]) == (4, 4, 4)


def test_python_settings_equal_the_cli_win_box(tmp_path):
    """settings_from_win + compute from Python = `gme-wannier run --win-box`, to the last bit
    (Te of the Wannier90 test suite: box 5^3, E_F 2..10 eV)."""
    need("Te_toy_w90testsuite", "Te.chk.fmt")
    from gme_wannier.cli import main

    d = tmp_path / "toy"
    shutil.copytree(os.path.dirname(TOY), d)
    seed = str(d / "Te")
    model = load_model(seed)
    st, sp = settings_from_win(read_win(seed + ".win"), model)
    res = compute(model, st, sp, symmetry="off")
    setup = run_setup({"win_box": True, "symmetry": "off"}, model, read_win(seed + ".win"), seed=seed)
    assert setup.settings == st and setup.sampling == sp
    out = tmp_path / "r.json"
    assert main(["run", seed, "--win-box", "--symmetry", "off", "--quiet", "--output", str(out)]) == 0
    cli = load_result(str(out))
    np.testing.assert_array_equal(cli.fermi_energies, st.fermi_energies)
    for part in ("orbital", "spin", "total"):
        np.testing.assert_array_equal(cli.K[part], res.K[part])
    assert np.abs(res.K["orbital"]).max() > 0
