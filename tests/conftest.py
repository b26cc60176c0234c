import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("GME_TEST_DATA", os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data")))


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """The CLI caches real-space matrices; keep the tests' cache out of the user's home."""
    os.environ["GME_WANNIER_CACHE"] = str(tmp_path_factory.mktemp("gme_cache"))
    yield


def data_path(*parts):
    return os.path.join(DATA, *parts)


def need(*parts):
    """Skip the test when a shared data file is absent (CI has ../shared/data)."""
    p = data_path(*parts)
    if not os.path.exists(p):
        pytest.skip(f"shared data not found: {p}")
    return p


@pytest.fixture
def copy_seed(tmp_path):
    """Copy (some files of) a shared data set into tmp_path; returns the new seed path."""

    def _copy(folder, seed, exts):
        for e in exts:
            src = need(folder, seed + e)
            shutil.copy(src, tmp_path / (seed + e))
        return str(tmp_path / seed)

    return _copy


def _mpirun():
    """mpirun next to this Python (the PyPI mpich wheel) or on PATH; None without mpi4py."""
    if importlib.util.find_spec("mpi4py") is None:
        return None
    local = Path(sys.executable).parent / "mpirun"
    return str(local) if local.exists() else shutil.which("mpirun")


MPIRUN = _mpirun()


def cli(argv, capsys):
    """Run the command line in-process: (exit code, stdout, stderr)."""
    from gme_wannier.cli import main

    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def load(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def weyl(tmp_path_factory):
    """The analytic two-node Weyl model written by ``gme-wannier make-weyl``."""
    from gme_wannier.cli import main

    d = tmp_path_factory.mktemp("weyl")
    assert main(["make-weyl", str(d / "weyl")]) == 0
    return str(d / "weyl")
