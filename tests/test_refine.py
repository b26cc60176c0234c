"""Adaptive refinement equals the uniform dense mesh (same points, same weights)."""

import numpy as np

from gme_wannier.calculate import compute
from gme_wannier.integrate import GMESettings
from gme_wannier.models import weyl_pair_model
from gme_wannier.refine import compute_refined, mark_cells
from gme_wannier.settings import RunControl, Sampling
from gme_wannier.smearing import Smearing


def test_refined_weyl_model_equals_uniform_dense_mesh():
    m = weyl_pair_model(b=0.2)
    st = GMESettings(fermi_energies=[0.0, 0.05, 0.3], smearing=Smearing("gaussian", 0.02))
    K, info = compute_refined(m, st, (8, 8, 8), (2, 2, 2))
    dense = compute(m, st, Sampling(mesh=(64, 64, 64)), symmetry="off", run=RunControl(chunk_size=4000)).K
    for part in ("orbital", "total"):
        np.testing.assert_allclose(K[part], dense[part], rtol=0, atol=1e-9 * np.abs(dense[part]).max())
    assert info["dense_mesh"] == [64, 64, 64]
    # the pockets are small: far fewer evaluations than the dense mesh
    assert info["n_full_evaluations"] + info["n_energy_evaluations"] < 0.2 * 64**3


def test_mark_cells_keeps_cells_that_bracket_the_window():
    Ec = np.zeros((3, 8, 1))
    Ec[0, :, 0] = 1.0  # far above
    Ec[1, :, 0] = np.linspace(-0.2, 0.2, 8)  # crosses 0
    Ec[2, :, 0] = 0.58  # just outside, within the margin
    keep = mark_cells(Ec, -0.5, 0.5, 0.1)
    assert keep.tolist() == [False, True, True]
