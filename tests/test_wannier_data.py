"""Real Wannier90 data: readers, per-k moments against WannierBerri, bad input."""

import contextlib
import io
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import need
from gme_wannier.bands import Interpolator
from gme_wannier.cli import main
from gme_wannier.io.errors import InputFileError
from gme_wannier.load import load_model
from gme_wannier.banddata import band_data
from gme_wannier.integrate import gme_moments


@pytest.fixture(scope="module")
def te24():
    need("Te_tut24", "Te.chk")
    return load_model(os.path.join(os.path.dirname(need("Te_tut24", "Te.chk")), "Te"))


def test_te24_model_provenance(te24):
    assert te24.num_wann == 9
    assert te24.has_external_terms and not te24.has_spin
    assert "full" in te24.provenance["orbital_moment"]
    assert te24.hermiticity_error() < 1e-10


def test_moments_match_wannierberri_per_k(te24):
    """Orbital moment (internal + external terms) and Berry curvature band by band against
    WannierBerri's formulas on the same files (its morb = -G, Omega = -Phi)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        logging.disable(logging.CRITICAL)
        import wannierberri as wb
        from wannierberri.formula import covariant as frml
        from wannierberri.system.system_R import System_R
        from wannierberri.w90files import WannierData

        seed = os.path.join(os.path.dirname(need("Te_tut24", "Te.chk")), "Te")
        wd = WannierData.from_w90_files(seedname=seed, files=["chk", "eig", "mmn", "uhu"], formatted=["uhu"],
                                        readnnkp=False)
        system = System_R.from_wannierdata(wd, berry=True, morb=True, symmetrize=False)
        logging.disable(logging.NOTSET)
    interp = Interpolator(te24)
    for k in [(0.1, 0.2, 0.3), (0.3, 0.31, 0.45)]:
        bd, _ = band_data(interp, np.array([k]), degen_thresh=1e-6, columns="all")
        Gc, Phi = gme_moments(bd)
        G = (Gc - bd.E[:, None, :] * Phi)[0]
        for n in range(te24.num_wann):
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                r = wb.evaluate_k(system, k=k, formula={"morb": frml.morb, "Omega": frml.Omega}, iband=[n],
                                  return_single_as_dict=True)
            np.testing.assert_allclose(-np.real(np.array(r["morb"]).reshape(-1)[:3]), G[:, n], rtol=1e-7, atol=1e-7)
            np.testing.assert_allclose(-np.real(np.array(r["Omega"]).reshape(-1)[:3]), Phi[0, :, n], rtol=1e-7,
                                       atol=1e-7)


def _run_cli(args):
    """Run the CLI in a subprocess; returns (rc, stdout, stderr)."""
    p = subprocess.run([sys.executable, "-m", "gme_wannier.cli", *args], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def _assert_clean_error(rc, err, *words):
    assert rc != 0
    assert "Traceback" not in err
    for w in words:
        assert w in err, err


def test_missing_file(tmp_path, copy_seed):
    seed = copy_seed("Te_tut24", "Te", [".win", ".chk"])  # no .eig
    rc, out, err = _run_cli(["run", seed, "--efermi", "6.1", "--mesh", "4", "4", "4"])
    _assert_clean_error(rc, err, "Te.eig", "not found")


def test_truncated_chk(tmp_path, copy_seed):
    seed = copy_seed("Te_tut24", "Te", [".win", ".eig", ".chk"])
    data = open(seed + ".chk", "rb").read()
    open(seed + ".chk", "wb").write(data[: len(data) // 2])
    rc, out, err = _run_cli(["run", seed, "--efermi", "6.1", "--mesh", "4", "4", "4"])
    _assert_clean_error(rc, err, "Te.chk", "truncated")


def test_truncated_mmn(tmp_path, copy_seed):
    seed = copy_seed("Te_tut24", "Te", [".win", ".eig", ".chk", ".mmn"])
    lines = open(seed + ".mmn").read().splitlines()
    open(seed + ".mmn", "w").write("\n".join(lines[: len(lines) // 3]) + "\n")
    rc, out, err = _run_cli(["run", seed, "--efermi", "6.1", "--mesh", "4", "4", "4"])
    _assert_clean_error(rc, err, "Te.mmn", "truncated")


def test_truncated_hr(tmp_path):
    src = need("Te_soc", "Te_hr.dat.gz")
    import gzip

    text = gzip.open(src, "rt").read()
    (tmp_path / "Te_hr.dat").write_text(text[: len(text) // 2])
    shutil.copy(need("Te_soc", "Te.win"), tmp_path / "Te.win")
    rc, out, err = _run_cli(["run", str(tmp_path / "Te"), "--efermi", "6.1", "--mesh", "4", "4", "4"])
    _assert_clean_error(rc, err, "Te_hr.dat", "truncated")


def test_num_wann_mismatch(tmp_path):
    import gzip

    (tmp_path / "Te_hr.dat").write_text(gzip.open(need("Te_soc", "Te_hr.dat.gz"), "rt").read())
    win = open(need("Te_soc", "Te.win")).read().replace("num_wann  = 18", "num_wann  = 12")
    assert "num_wann  = 12" in win
    (tmp_path / "Te.win").write_text(win)
    rc, out, err = _run_cli(["run", str(tmp_path / "Te"), "--efermi", "6.1", "--mesh", "4", "4", "4"])
    _assert_clean_error(rc, err, "Te_hr.dat", "num_wann = 18", "num_wann = 12")


def test_unknown_option_value():
    seed = os.path.join(os.path.dirname(need("Te_tut24", "Te.win")), "Te")
    rc, out, err = _run_cli(["run", seed, "--efermi", "6.1", "--smearing", "lorentzian", "--smearing-width", "0.1"])
    assert rc != 0 and "Traceback" not in err and "lorentzian" in err


def test_library_error_names_file(tmp_path):
    with pytest.raises(InputFileError, match="nothing.win"):
        load_model(str(tmp_path / "nothing"))


def test_cli_in_process_returns_2_on_bad_input(tmp_path, capsys):
    rc = main(["run", str(tmp_path / "absent"), "--efermi", "0"])
    assert rc == 2
    assert "absent.win" in capsys.readouterr().err
