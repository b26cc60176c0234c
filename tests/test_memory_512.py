"""Memory at an effective 512^3 mesh of the bundled SrSi2 (issue 11): the symmetric path's
irreducible points, which spglib's whole-mesh mapping could not give (8 GB at 256^3), and one
chunk of the k loop on them, stay within a few hundred MB."""

import os
import tracemalloc

import numpy as np

from gme_wannier.integrate import GMESettings, sum_over_kpoints
from gme_wannier.load import load_model
from gme_wannier.sampling import _points
from gme_wannier.smearing import Smearing
from gme_wannier.symmetry import find_symmetry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRSI2 = os.path.join(ROOT, "examples", "wannier90_inputs", "SrSi2", "srsi2")


def _chunk_peak(model, k, w, st):
    """Peak traced bytes of the k loop on 2000 of the points, above what was allocated before."""
    sel = slice(len(k) // 2, len(k) // 2 + 2000)
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    raw = sum_over_kpoints(model, k[sel], w[sel], st, chunk_size=1000)
    assert np.isfinite(raw["orb"]).all() and raw["dos"].max() > 0
    return tracemalloc.get_traced_memory()[1] - base


def test_irreducible_points_and_a_chunk_of_srsi2_at_512_cubed_in_bounded_memory():
    model = load_model(SRSI2)
    sym = find_symmetry(model.atoms)
    st = GMESettings(fermi_energies=(8.45, 8.5, 8.55), smearing=Smearing.from_temperature(100.0))
    mesh = (512, 512, 512)
    tracemalloc.start()
    try:
        small_k, small_w, _ = _points((64, 64, 64), (0, 0, 0), None, sym)
        small = _chunk_peak(model, small_k, small_w, st)
        del small_k, small_w
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        k, w, info = _points(mesh, (0, 0, 0), None, sym)
        setup_peak = tracemalloc.get_traced_memory()[1] - base
        large = _chunk_peak(model, k, w, st)
    finally:
        tracemalloc.stop()
    n_full = int(np.prod(mesh))
    assert info["n_evaluated"] == len(k) and abs(w.sum() - 1) < 1e-9
    assert n_full / len(k) > 46  # 48 operations: nearly every star is whole
    assert np.all(np.abs(w * n_full - np.rint(w * n_full)) < 1e-6)  # star sizes / N
    # the points themselves are 3 + 1 floats each (92 MB); one whole-mesh int64 array is 1.07 GB
    arrays = k.nbytes + w.nbytes
    assert setup_peak < 2.5 * arrays + 50e6 < 400e6, (setup_peak, arrays)
    # the k loop's own memory is that of its chunk: the same at 512^3 as at 64^3
    assert large < 1.2 * small + 10e6 and large + arrays < 400e6, (large, small)
