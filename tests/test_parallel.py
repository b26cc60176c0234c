"""Tests of the chunked sum engine: serial = direct sum = MPI, checkpoint/resume, abort."""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import MPIRUN

from gme_wannier import parallel
from gme_wannier.checkpoint import Checkpoint, CheckpointMismatch
from gme_wannier.parallel import SerialComm, chunked_sum, get_comm, guard
from gme_wannier.progress import Progress

TESTS = Path(__file__).resolve().parent
DRIVER = TESTS / "mpi_driver.py"
_spec = importlib.util.spec_from_file_location("mpi_driver", DRIVER)
mpi_driver = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mpi_driver)

N_CHUNKS = 7


def direct_sum(n_chunks: int = N_CHUNKS) -> dict[str, np.ndarray]:
    compute = mpi_driver.make_compute(0)
    parts = [compute(c) for c in range(n_chunks)]
    return {k: np.sum([p[k] for p in parts], axis=0) for k in parts[0]}


def assert_sums_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=0)


class Counter:
    """compute_chunk that records calls and can crash at one chunk."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[int] = []
        self.fail_at = fail_at
        self.base = mpi_driver.make_compute(0)

    def __call__(self, c: int) -> dict[str, np.ndarray]:
        if c == self.fail_at:
            raise RuntimeError(f"crash at chunk {c}")
        self.calls.append(c)
        return self.base(c)


# --------------------------------------------------------------------------- serial


def test_serial_equals_direct_sum():
    result = chunked_sum(N_CHUNKS, Counter(), SerialComm())
    assert result["cplx"].dtype == np.complex128
    assert_sums_equal(result, direct_sum())


def test_inconsistent_chunk_keys_raise():
    def compute(c):
        return {"a": np.ones(2)} if c == 0 else {"b": np.ones(2)}

    with pytest.raises(ValueError, match="chunk 1 returned keys"):
        chunked_sum(2, compute)


def test_resume_after_crash(tmp_path):
    path = tmp_path / "ck"
    with pytest.raises(RuntimeError, match="crash at chunk 4"):
        chunked_sum(N_CHUNKS, Counter(fail_at=4), checkpoint=Checkpoint(path, "fp", 0.0))
    (fname,) = Checkpoint(path, "fp").files()
    assert sorted(np.load(fname)["done"]) == [0, 1, 2, 3]

    second = Counter()
    ckpt = Checkpoint(path, "fp", 0.0)
    result = chunked_sum(N_CHUNKS, second, checkpoint=ckpt)
    assert second.calls == [4, 5, 6]
    assert ckpt.n_resumed == 4
    assert_sums_equal(result, chunked_sum(N_CHUNKS, Counter()))
    assert ckpt.files() == []  # removed after success (keep=False)


def test_resume_skips_stale_duplicate(tmp_path):
    """A leftover file whose chunks are already in another file is counted once."""
    path = tmp_path / "ck"
    with pytest.raises(RuntimeError):
        chunked_sum(N_CHUNKS, Counter(fail_at=3), checkpoint=Checkpoint(path, "fp", 0.0))
    (fname,) = Checkpoint(path, "fp").files()
    shutil.copy(fname, str(path) + ".rank1of2.npz")
    second = Counter()
    result = chunked_sum(N_CHUNKS, second, checkpoint=Checkpoint(path, "fp", 0.0))
    assert second.calls == [3, 4, 5, 6]
    assert_sums_equal(result, direct_sum())


def test_checkpoint_fingerprint_mismatch(tmp_path):
    path = tmp_path / "ck"
    with pytest.raises(RuntimeError):
        chunked_sum(N_CHUNKS, Counter(fail_at=2), checkpoint=Checkpoint(path, "fp", 0.0))
    with pytest.raises(CheckpointMismatch, match=r"ck\.rank0of1\.npz: checkpoint file was made with different"):
        chunked_sum(N_CHUNKS, Counter(), checkpoint=Checkpoint(path, "other", 0.0))
    with pytest.raises(CheckpointMismatch, match="3 chunks"):
        chunked_sum(3, Counter(), checkpoint=Checkpoint(path, "fp", 0.0))


def test_progress_bar():
    out = io.StringIO()
    bar = Progress(10, enabled=True, stream=out, min_interval=0.0)
    chunked_sum(5, Counter(), progress=bar, items_per_chunk=[2] * 5)
    text = out.getvalue()
    assert text.count("\r") == 6 and text.endswith("\n")
    assert "100.0%  10/10 k-points" in text and "ETA 0:00:00" in text
    quiet = io.StringIO()
    chunked_sum(5, Counter(), progress=Progress(10, stream=quiet))  # StringIO is not a TTY
    assert quiet.getvalue() == ""


def test_guard_serial_reraises():
    with pytest.raises(ZeroDivisionError):
        with guard(SerialComm()):
            1 / 0


def test_fallback_warns_once_under_mpirun(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # "import mpi4py" fails
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setattr(parallel, "_warned_fallback", False)
    with pytest.warns(RuntimeWarning, match="started under mpirun but mpi4py is not usable"):
        assert isinstance(get_comm(), SerialComm)
    assert isinstance(get_comm(), SerialComm)  # no second warning (warnings are errors)
    with pytest.raises(RuntimeError, match="mpi4py is not usable"):
        get_comm("mpi")
    monkeypatch.delenv("PMI_SIZE")
    monkeypatch.setattr(parallel, "_warned_fallback", False)
    assert isinstance(get_comm(), SerialComm)  # plain serial run: silent


# --------------------------------------------------------------------------- MPI


mpi = pytest.mark.skipif(MPIRUN is None, reason="mpirun or mpi4py not available")


def run_mpi(n: int, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(TESTS.parent), os.environ.get("PYTHONPATH", "")]))
    cmd = [MPIRUN, "-n", str(n), sys.executable, str(DRIVER), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def load_result(fname: Path) -> tuple[dict[str, np.ndarray], int]:
    with np.load(fname) as d:
        return {k: d[k] for k in ("real", "cplx")}, int(d["calls"])


@pytest.mark.mpi
@mpi
@pytest.mark.parametrize("n_ranks, n_chunks", [(1, 7), (2, 7), (3, 7), (3, 2)])
def test_mpi_equals_serial(tmp_path, n_ranks, n_chunks):
    out = tmp_path / "r.npz"
    proc = run_mpi(n_ranks, "--n-chunks", str(n_chunks), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    result, calls = load_result(out)
    assert calls == n_chunks
    assert_sums_equal(result, chunked_sum(n_chunks, Counter()))


@pytest.mark.mpi
@mpi
def test_mpi_failure_on_one_rank_aborts_all(tmp_path):
    start = time.monotonic()
    proc = run_mpi(2, "--fail-rank", "1", "--out", str(tmp_path / "r.npz"), timeout=30)
    assert time.monotonic() - start < 30
    assert proc.returncode != 0
    assert "gme-wannier: rank 1: RuntimeError: simulated failure in chunk 1" in proc.stderr
    assert not (tmp_path / "r.npz").exists()


@pytest.mark.mpi
@mpi
def test_mpi_checkpoint_mismatch_reported_once(tmp_path):
    ck = str(tmp_path / "ck")
    assert run_mpi(2, "--checkpoint", ck, "--fail-chunk", "3").returncode != 0
    proc = run_mpi(2, "--checkpoint", ck, "--fingerprint", "other", timeout=30)
    assert proc.returncode != 0
    # raised on every rank: printed once as the package's one error line, exit code 2 (issue 9)
    assert proc.returncode == 2 and proc.stderr.count("gme-wannier: error:") == 1
    assert "of2.npz: checkpoint file was made with different" in proc.stderr


@pytest.mark.mpi
@mpi
@pytest.mark.parametrize("n_resume", [2, 3])
def test_mpi_kill_and_resume(tmp_path, n_resume):
    ck = str(tmp_path / "ck")
    crash = run_mpi(2, "--checkpoint", ck, "--fail-chunk", "5", timeout=30)
    assert crash.returncode != 0
    assert "rank 1: RuntimeError: simulated failure in chunk 5" in crash.stderr
    done: set[int] = set()
    for fname in Checkpoint(ck, "test").files():
        done |= set(np.load(fname)["done"].tolist())
    assert {1, 3} <= done and 5 not in done  # rank 1 saved chunks 1 and 3 before crashing

    out = tmp_path / "r.npz"
    proc = run_mpi(n_resume, "--checkpoint", ck, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    result, calls = load_result(out)
    # rank 0 may still save a chunk while MPI_Abort is tearing the job down, after mpirun
    # returned: the resumed run reports what it found, at least what we saw.
    resumed = int(np.load(out)["resumed"])
    assert resumed >= len(done)
    assert calls == N_CHUNKS - resumed
    assert_sums_equal(result, direct_sum())
    assert Checkpoint(ck, "test").files() == []
