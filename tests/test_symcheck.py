"""The model symmetry check (gme_wannier.symcheck): a Wannier model that breaks the crystal
symmetry gets the distance between its whole-zone and symmetric sums, and a warning when that
exceeds the error bar; a model that keeps it is not checked (no extra cost)."""

import os

import numpy as np

from conftest import need
from gme_wannier.calculate import compute
from gme_wannier.integrate import GMESettings
from gme_wannier.load import load_model
from gme_wannier.report import run_summary, symmetry_warning
from gme_wannier.settings import Sampling
from gme_wannier.smearing import Smearing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRSI2 = os.path.join(ROOT, "examples", "wannier90_inputs", "SrSi2", "srsi2")


def test_a_symmetry_breaking_model_is_checked_against_the_whole_zone():
    """SrSi2 (bands break 432 by 16 meV) at 300 K on 25^3: the check equals the whole-zone
    projected K against the symmetric K computed here, and it is tens of % (measured 32 %)."""
    model = load_model(SRSI2)
    st = GMESettings(fermi_energies=[8.45, 8.5, 8.55], smearing=Smearing.from_temperature(300))
    r = compute(model, st, Sampling(mesh=(25, 25, 25)))
    chk = r.info["symmetry"]["model_symmetry_check"]
    assert chk["mesh"] == [25, 25, 25] and chk["band_symmetry_error_eV"] > 0.01
    whole = compute(model, st, Sampling(mesh=(25, 25, 25)), symmetry="off", estimate_error=False)
    Kw = whole.K["total"]
    iso = np.trace(Kw, axis1=1, axis2=2) / 3  # cubic (alpha = a 1): the projection keeps the trace
    expect = np.abs(iso[:, None, None] * np.eye(3) - r.K["total"]).max() / np.abs(iso).max()
    np.testing.assert_allclose(chk["whole_zone_vs_symmetric"], expect, rtol=1e-9)
    assert chk["whole_zone_vs_symmetric"] > 0.1
    warn = symmetry_warning(r, "srsi2")
    assert warn is not None and "--symmetry off" in warn and "16." in warn
    assert "model symmetry check on 25x25x25" in run_summary(model, r, "out.json")


def test_a_symmetric_model_is_not_checked():
    """Te_tut24 keeps its point group to 3.5e-6 eV: no check, no warning."""
    te = load_model(need("Te_tut24", "Te.chk")[:-4])
    st = GMESettings(fermi_energies=[5.9, 6.1], smearing=Smearing.from_temperature(300))
    r = compute(te, st, Sampling(mesh=(12, 12, 8)))
    assert "model_symmetry_check" not in r.info["symmetry"] and symmetry_warning(r, "Te") is None
