"""Edge cases of the error estimate on the Weyl model: a sequence whose first estimates are
exactly 0 (no state in the window on the coarse meshes), a sequence that "converges" on meshes
that all miss the Fermi surface, and a box that holds no state at a Fermi level that bands cross
elsewhere in the zone."""

import numpy as np

from gme_wannier.calculate import compute
from gme_wannier.convergence import ConvergenceOptions, forecast, mesh_sequence
from gme_wannier.integrate import GMESettings
from gme_wannier.models import weyl_pair_model
from gme_wannier.settings import Sampling
from gme_wannier.smearing import Smearing


def test_forecast_after_an_estimate_of_zero():
    """An estimate of exactly 0 (K identical, e.g. 0, on two meshes) followed by a non-zero one
    did not fall: no forecast, and no ZeroDivisionError."""
    opts = ConvergenceOptions(tolerance=0.01)
    seq = [m for _, m in zip(range(3), mesh_sequence(np.eye(3), opts))]
    entries = [{"mesh": list(m), "n_kpoints": int(np.prod(m)), "seconds": 1.0, "estimated_error": e}
               for m, e in zip(seq, [None, 0.0, 0.5])]
    fc = forecast(entries, opts, np.eye(3))
    assert fc["meshes_more"] is None and fc["text"].startswith("no forecast: the estimate did not fall")


def test_sequence_stopped_after_an_estimate_of_zero():
    """E_F = 4.9 eV near the top of the upper band (5.003 eV): the tetrahedra of the 5^3 and 7^3
    meshes miss the pocket (K = 0, estimate 0), 11^3 finds it; --max-kpoints stops the sequence
    there and the result carries a forecast instead of raising."""
    st = GMESettings(fermi_energies=(4.9,))
    s = Sampling(kernel="tetra", convergence=ConvergenceOptions(tolerance=1e-3, initial_spacing=0.5,
                                                                 max_kpoints=3000))
    r = compute(weyl_pair_model(b=0.1), st, s, symmetry="off")
    conv = r.info["convergence"]
    assert [m["estimated_error"] for m in r.info["mesh"]["meshes"]][:2] == [None, 0.0]
    assert conv["stop_reason"] == "max_kpoints" and conv["converged"] is False
    assert conv["forecast"]["text"].startswith("no forecast")
    assert "/ r)" in conv["method"]  # tetrahedra: the guard assumes h^1 (guard_order)


def test_sequence_on_meshes_that_miss_the_fermi_surface_is_not_converged():
    """E_F = 4.99 eV: every mesh of the sequence misses the pocket, K = 0 on all of them and the
    estimate is 0; the level is unsampled (error inf), so the result must not say converged."""
    st = GMESettings(fermi_energies=(4.99,))
    s = Sampling(kernel="tetra", convergence=ConvergenceOptions(tolerance=1e-3, initial_spacing=0.5))
    r = compute(weyl_pair_model(b=0.1), st, s, symmetry="off")
    conv = r.info["convergence"]
    assert conv["unsampled_fermi_levels_eV"] == [4.99] and np.isinf(conv["estimated_error"])
    assert conv["converged"] is False


def test_a_box_without_states_at_a_level_is_not_unsampled():
    """A small box around the Weyl node at (0, 0, 1/4) (energies within ~0.5 eV of +-0.1 eV):
    at E_F = 3 eV the box has no state, K = 0 there is the box's exact value and its error stays
    0, although bands cross 3 eV elsewhere in the zone. A level inside the box's band range that
    the box mesh misses is still flagged."""
    box = {"center": (0, 0, 0.25), "b1": (0.05, 0, 0), "b2": (0, 0.05, 0), "b3": (0, 0, 0.05), "mesh": (10, 10, 10)}
    st = GMESettings(fermi_energies=(0.12, 3.0), smearing=Smearing.from_temperature(100))
    r = compute(weyl_pair_model(b=0.1), st, Sampling(box=box), symmetry="off")
    conv = r.info["convergence"]
    assert r.dos[0] > 0 and r.dos[1] == 0
    assert "unsampled_fermi_levels_eV" not in conv and np.all(r.alpha_error[1] == 0)
    assert np.isfinite(conv["estimated_error"])
    # the box mesh 2^3 with a narrow smearing misses E_F = 0.12 eV inside the box: flagged
    st2 = GMESettings(fermi_energies=(0.12, 3.0), smearing=Smearing("gaussian", 0.0005))
    r2 = compute(weyl_pair_model(b=0.1), st2, Sampling(box={**box, "mesh": (2, 2, 2)}), symmetry="off")
    assert np.all(r2.dos == 0)
    assert r2.info["convergence"]["unsampled_fermi_levels_eV"] == [0.12]
