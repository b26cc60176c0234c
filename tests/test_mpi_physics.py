"""MPI on the physics engine, end to end: serial = MPI for real data sets, abort, kill + resume.

Every test launches ``mpirun`` (``tests/mpi_compute_driver.py`` or ``python -m
gme_wannier.cli run``) and compares with :func:`gme_wannier.compute` run serially in this
process. "Equal" means ``|K_mpi - K_serial| <= 1e-12 max|K_serial|`` for every part and Fermi
level set (the chunking and the reduction order differ, so bit equality is not expected).
"""

from __future__ import annotations

import glob
import gzip
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import MPIRUN
from threadpoolctl import threadpool_limits

import gme_wannier as gw
from gme_wannier.parallel import SerialComm

TESTS = Path(__file__).resolve().parent
DRIVER = TESTS / "mpi_compute_driver.py"
_spec = importlib.util.spec_from_file_location("mpi_compute_driver", DRIVER)
drv = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = drv  # dataclasses look the module up
_spec.loader.exec_module(drv)

RTOL = 1e-12
EQUALITY_CASES = ["te_off", "te_auto", "srsi2_off", "srsi2_auto", "weyl_off"]


pytestmark = [pytest.mark.mpi, pytest.mark.skipif(MPIRUN is None, reason="mpirun or mpi4py not available")]


needs_te = pytest.mark.skipif(not os.path.exists(drv.TE + ".chk"), reason=f"shared data not found: {drv.TE}.chk")


def _env() -> dict[str, str]:
    # One BLAS thread per process: the machine is shared, and compute() only limits BLAS
    # threads inside the k loop (the band-symmetry check runs with all threads).
    return dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                PYTHONPATH=os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")]))


def _run(cmd: list[str], timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=cwd)


def mpi_driver(n: int, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return _run([MPIRUN, "-n", str(n), sys.executable, str(DRIVER), *args], timeout)


def mpi_cli(n: int, *args: str, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return _run([MPIRUN, "-n", str(n), sys.executable, "-m", "gme_wannier.cli", *args], timeout, cwd)


def serial(name: str) -> gw.GMEResult:
    model, settings, kw = drv.build_case(name)
    kw["chunk_size"] = 200  # the default chunking: the serial reference is chunked differently
    with threadpool_limits(limits=1):
        return gw.compute(model, settings, gw.Sampling(mesh=kw["mesh"]), symmetry=kw["symmetry"],
                          run=gw.RunControl(comm=SerialComm(), chunk_size=kw["chunk_size"]))


_REFERENCES: dict[str, gw.GMEResult] = {}


def reference(name: str) -> gw.GMEResult:
    if name not in _REFERENCES:
        _REFERENCES[name] = serial(name)
    return _REFERENCES[name]


def assert_equal_K(K: dict, ref: gw.GMEResult, label: str) -> None:
    for part in ("orbital", "spin", "total"):
        want = np.asarray(ref.K[part])
        got = np.asarray(K[part])
        assert got.shape == want.shape, (label, part)
        scale = np.abs(want).max()
        assert np.abs(got - want).max() <= RTOL * scale, (label, part, np.abs(got - want).max(), scale)
    assert np.abs(ref.K["total"]).max() > 0, f"{label}: zero reference, the comparison is vacuous"


def checkpoint_done(base: str) -> set[int]:
    done: set[int] = set()
    for fname in glob.glob(base + ".rank*of*.npz"):
        try:
            with np.load(fname) as d:
                done |= set(d["done"].tolist())
        except (OSError, ValueError, KeyError):
            pass  # being replaced: read it next time
    return done


# --------------------------------------------------------------------------- serial = MPI


@needs_te
@pytest.mark.parametrize("n_ranks", [1, 2, 3])
def test_compute_mpi_equals_serial(tmp_path, n_ranks):
    """compute() on 1/2/3 ranks = serial, for Te (full orbital moment), SrSi2 (hr) and the
    Weyl model, whole mesh and irreducible mesh, with 7 or 11 chunks."""
    out = tmp_path / "r.npz"
    proc = mpi_driver(n_ranks, "--cases", ",".join(EQUALITY_CASES), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    with np.load(out) as d:
        assert int(d["size"]) == n_ranks
        for name in EQUALITY_CASES:
            assert int(d[f"{name}/n_chunks"]) == drv.CASES[name].n_chunks, name
            assert float(d[f"{name}/rank_spread"]) == 0.0, f"{name}: ranks hold different results"
            ref = reference(name)
            assert_equal_K({p: d[f"{name}/{p}"] for p in ("orbital", "spin", "total")}, ref, name)
            np.testing.assert_allclose(d[f"{name}/dos"], ref.dos, rtol=RTOL, atol=0)


@pytest.mark.parametrize("n_ranks, name", [(2, "srsi2_off"), pytest.param(3, "te_auto", marks=needs_te)])
def test_cli_mpi_equals_serial(tmp_path, n_ranks, name):
    """`mpirun gme-wannier run`: one JSON and one summary (rank 0), equal to serial compute()."""
    proc = mpi_cli(n_ranks, *drv.cli_args(name), "-o", "out.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["out.json"]
    assert proc.stdout.count("result written to out.json") == 1, proc.stdout
    assert f"on {n_ranks} rank(s)" in proc.stdout
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["timing"]["ranks"] == n_ranks
    assert_equal_K(data["K"], reference(name), name)


# --------------------------------------------------------------------------- failure on one rank


def test_error_on_one_rank_in_compute_aborts_job(tmp_path):
    """Rank 1 passes a structure of another cell: compute() raises there while rank 0 is
    in the k loop; the job ends within 30 s with rank 1's message."""
    start = time.monotonic()
    proc = mpi_driver(2, "--cases", "srsi2_auto", "--bad-structure-rank", "1", "--out", str(tmp_path / "r.npz"),
                      timeout=30)
    assert time.monotonic() - start < 30
    assert proc.returncode != 0
    assert "gme-wannier: rank 1: GMEInputError: the structure's cell differs" in proc.stderr, proc.stderr
    assert not (tmp_path / "r.npz").exists()


def test_cli_unreadable_file_on_one_rank_aborts_job(tmp_path):
    """Through the CLI (MPMD launch): rank 1 reads a truncated copy of srsi2_hr.dat, as on a
    node with a broken local copy; the job ends within 30 s, no result file is written."""
    bad = tmp_path / "bad"
    bad.mkdir()
    src = Path(drv.SRSI2)
    for ext in (".win", "_centres.xyz", "_wsvec.dat.gz"):
        shutil.copy(str(src) + ext, bad / (src.name + ext))
    with gzip.open(str(src) + "_hr.dat.gz", "rt") as f:
        head = [next(f) for _ in range(5000)]
    (bad / "srsi2_hr.dat").write_text("".join(head))
    opts = drv.cli_args("srsi2_off")[2:] + ["-o", str(tmp_path / "out.json")]
    cli = [sys.executable, "-m", "gme_wannier.cli", "run"]
    start = time.monotonic()
    proc = _run([MPIRUN, "-n", "1", *cli, str(src), *opts, ":", "-n", "1", *cli, str(bad / "srsi2"), *opts],
                timeout=30)
    assert time.monotonic() - start < 30
    assert proc.returncode != 0
    assert "gme-wannier: rank 1: InputFileError: " in proc.stderr, proc.stderr
    assert "srsi2_hr.dat: truncated or inconsistent" in proc.stderr
    assert not (tmp_path / "out.json").exists()


# --------------------------------------------------------------------------- kill and resume


def _descendants(pid: int) -> list[int]:
    """PIDs of all processes below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


@pytest.fixture(scope="module")
def killed_checkpoint(tmp_path_factory) -> tuple[Path, set[int]]:
    """Checkpoint files of an SrSi2 run (2 ranks, 72 chunks) SIGKILLed after >= 12 chunks."""
    folder = tmp_path_factory.mktemp("killed")
    base = str(folder / "ck")
    n_chunks = drv.CASES["srsi2_kill"].n_chunks
    cmd = [MPIRUN, "-n", "2", sys.executable, str(DRIVER), "--cases", "srsi2_kill", "--checkpoint", base]
    proc = subprocess.Popen(cmd, env=_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(checkpoint_done(base)) < 12 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    ranks = _descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)  # mpirun and whatever shares its process group
    proc.wait()
    for pid in ranks:  # the ranks may sit in their own sessions
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.2)
    done = checkpoint_done(base)
    assert 12 <= len(done) < n_chunks, f"not killed midway: {len(done)} of {n_chunks} chunks in the checkpoint"
    return folder, done


def _copy_checkpoint(src: Path, dst: Path) -> str:
    for f in src.iterdir():
        shutil.copy(f, dst / f.name)
    return str(dst / "ck")


def test_cli_resumes_killed_run(tmp_path, killed_checkpoint):
    """SIGKILL midway, then the same command (on 3 ranks) resumes: result = uninterrupted run;
    a copy with doubled partial sums gives another result (so the files were really used)."""
    src, done = killed_checkpoint
    ref = reference("srsi2_kill")

    run_dir = tmp_path / "a"
    run_dir.mkdir()
    ck = _copy_checkpoint(src, run_dir)
    proc = mpi_cli(3, *drv.cli_args("srsi2_kill"), "--checkpoint", ck, "--quiet", "-o", "out.json", cwd=run_dir)
    assert proc.returncode == 0, proc.stderr
    assert_equal_K(json.loads((run_dir / "out.json").read_text())["K"], ref, "resumed")
    assert glob.glob(ck + ".rank*of*.npz") == []  # removed after success

    tampered = tmp_path / "b"
    tampered.mkdir()
    ck = _copy_checkpoint(src, tampered)
    for fname in glob.glob(ck + ".rank*of*.npz"):
        with np.load(fname) as d:
            data = {k: d[k] * 2 if k.startswith("sum") else d[k] for k in d.files}
        np.savez(fname, **data)
    proc = mpi_cli(2, *drv.cli_args("srsi2_kill"), "--checkpoint", ck, "--quiet", "-o", "out.json", cwd=tampered)
    assert proc.returncode == 0, proc.stderr
    K = np.asarray(json.loads((tampered / "out.json").read_text())["K"]["total"])
    assert np.abs(K - ref.K["total"]).max() > 1e-3 * np.abs(ref.K["total"]).max()


@pytest.mark.parametrize("n_ranks", [1, 2])
def test_cli_refuses_foreign_checkpoint(tmp_path, killed_checkpoint, n_ranks):
    """The checkpoint of other options (another E_F list) is refused: non-zero exit, one clear
    message, no traceback, files untouched."""
    src, _ = killed_checkpoint
    ck = _copy_checkpoint(src, tmp_path)
    before = {f: Path(f).read_bytes() for f in glob.glob(ck + ".rank*of*.npz")}
    args = drv.cli_args("srsi2_kill")
    i = args.index("--efermi")
    args[i + 1] = "8.45"
    args += ["--checkpoint", ck, "--quiet", "-o", "out.json"]
    if n_ranks == 1:  # plain serial CLI
        proc = _run([sys.executable, "-m", "gme_wannier.cli", *args], timeout=60, cwd=tmp_path)
    else:  # raised on every rank: printed once by rank 0, the same exit code (issue 9)
        proc = mpi_cli(n_ranks, *args, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    assert "gme-wannier: error: " in proc.stderr and "npz: checkpoint file " in proc.stderr, proc.stderr
    assert "settings.fermi_energies differs" in proc.stderr, proc.stderr
    assert "was made with different inputs/options" in proc.stderr
    assert proc.stderr.count("gme-wannier:") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out.json").exists()
    assert {f: Path(f).read_bytes() for f in glob.glob(ck + ".rank*of*.npz")} == before
