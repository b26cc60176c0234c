"""Refinement and tetrahedra under MPI: the work is shared out (corner and mesh energies over the
ranks, the moments through the k loop) and the result is the serial one; both resume from a
checkpoint."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import MPIRUN
from gme_wannier.calculate import compute
from gme_wannier.integrate import GMESettings
from gme_wannier.load import load_model
from gme_wannier.settings import RunControl, Sampling
from gme_wannier.smearing import Smearing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRSI2 = os.path.join(ROOT, "examples", "wannier90_inputs", "SrSi2", "srsi2")
# "tetra" uses the symmetry (tetra_sym.py: representatives, weights summed on them), "tetra-whole"
# the whole zone (tetra.py)
CASES = {"refine": ["--mesh", "6", "6", "6", "--refine", "2", "2"], "tetra": ["--mesh", "16", "16", "16", "--kernel", "tetra"],
         "tetra-whole": ["--mesh", "16", "16", "16", "--kernel", "tetra", "--symmetry", "off"],
         "tetra-groups": ["--mesh", "16", "16", "16", "--kernel", "tetra"]}
# "tetra-groups": W~ (5280 bytes here) over a budget of 2000 bytes, summed in three groups of representatives
_GROUPS = ("import sys, gme_wannier.tetra_sym as ts; ts.WT_BUDGET_BYTES = 2000; from gme_wannier.cli import main; "
           "sys.exit(main(sys.argv[1:]))")


def _run(args, out, ranks=None, groups=False):
    start = ["-c", _GROUPS] if groups else ["-m", "gme_wannier.cli"]
    cmd = [sys.executable, *start, "run", SRSI2, *args, "--efermi", "8.45", "8.5",
           "--temperature", "300", "--quiet", "--no-cache", "-o", str(out)]
    if ranks:
        cmd = [MPIRUN, "-n", str(ranks), *cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    return json.loads(out.read_text())


@pytest.mark.skipif(MPIRUN is None, reason="mpirun or mpi4py not available")
@pytest.mark.parametrize("case", sorted(CASES))
def test_mpi_equals_serial(case, tmp_path):
    a = _run(CASES[case], tmp_path / "s.json")
    b = _run(CASES[case], tmp_path / "m.json", ranks=2, groups=case == "tetra-groups")
    assert b["timing"]["ranks"] == 2
    Ka, Kb = np.array(a["K"]["total"]), np.array(b["K"]["total"])
    assert np.abs(Ka).max() > 0
    np.testing.assert_allclose(Kb, Ka, rtol=0, atol=1e-12 * np.abs(Ka).max())
    np.testing.assert_allclose(b["convergence"]["alpha_error"], a["convergence"]["alpha_error"], rtol=0,
                               atol=1e-12 * np.abs(a["convergence"]["alpha_error"]).max())


@pytest.mark.parametrize("case", sorted(CASES))
def test_resume_from_checkpoint(case, tmp_path, monkeypatch):
    """A rerun with the same checkpoint takes the finished chunks from it (compute keeps the
    files until the caller has written its outputs) and gives the same sums."""
    if case == "tetra-groups":
        import gme_wannier.tetra_sym as ts

        monkeypatch.setattr(ts, "WT_BUDGET_BYTES", 2000)
    model = load_model(SRSI2)
    st = GMESettings(fermi_energies=[8.45, 8.5], smearing=Smearing.from_temperature(300))
    kw = ({"mesh": (6, 6, 6), "refine": (2, 2)} if case == "refine" else {"mesh": (16, 16, 16), "kernel": "tetra"})
    mode = "off" if case == "tetra-whole" else "auto"
    ck = str(tmp_path / "ck")
    r1 = compute(model, st, Sampling(**kw), run=RunControl(checkpoint=ck, checkpoint_every=0), estimate_error=False,
                 symmetry=mode)
    assert any(f.startswith("ck.group0of3." if case == "tetra-groups" else "ck.rank") for f in os.listdir(tmp_path))
    r2 = compute(model, st, Sampling(**kw), run=RunControl(checkpoint=ck, checkpoint_every=0), estimate_error=False,
                 symmetry=mode)
    assert r2.info["checkpoint"]["resumed_chunks"] > 0
    np.testing.assert_array_equal(r2.K["total"], r1.K["total"])
