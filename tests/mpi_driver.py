"""Generic driver for MPI tests: ``mpirun -n N python tests/mpi_driver.py --out r.npz``.

Runs :func:`gme_wannier.parallel.chunked_sum` over a deterministic random function of the
chunk index under :func:`gme_wannier.parallel.guard`; rank 0 writes the sums plus
``calls`` (chunks computed in this run, summed over ranks) and ``size`` to ``--out``.
Tests import :func:`make_compute` to get the serial reference.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from gme_wannier.checkpoint import Checkpoint
from gme_wannier.parallel import chunked_sum, get_comm, guard


def make_compute(seed: int = 0) -> Callable[[int], dict[str, np.ndarray]]:
    """Deterministic chunk function: a real (3, 3) and a complex (4,) array per chunk."""

    def compute(c: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([seed, c])
        return {"real": rng.normal(size=(3, 3)),
                "cplx": rng.normal(size=4) + 1j * rng.normal(size=4)}

    return compute


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n-chunks", type=int, default=7)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="npz written by rank 0")
    p.add_argument("--checkpoint", help="checkpoint base path")
    p.add_argument("--fingerprint", default="test")
    p.add_argument("--every", type=float, default=0.0, help="checkpoint interval in s")
    p.add_argument("--keep", action="store_true", help="keep checkpoint files after success")
    p.add_argument("--fail-chunk", type=int, help="raise when computing this chunk")
    p.add_argument("--fail-rank", type=int, help="this rank raises at its first chunk")
    p.add_argument("--sleep", type=float, default=0.0, help="seconds per chunk")
    p.add_argument("--comm", default="auto", choices=["auto", "serial", "mpi"])
    args = p.parse_args(argv)

    comm = get_comm(args.comm)
    with guard(comm):
        base = make_compute(args.seed)
        calls = 0

        def compute(c: int) -> dict[str, np.ndarray]:
            nonlocal calls
            if c == args.fail_chunk or comm.rank == args.fail_rank:
                raise RuntimeError(f"simulated failure in chunk {c}")
            time.sleep(args.sleep)
            calls += 1
            return base(c)

        ckpt = (None if args.checkpoint is None else
                Checkpoint(args.checkpoint, args.fingerprint, args.every, keep=args.keep))
        sums = chunked_sum(args.n_chunks, compute, comm, checkpoint=ckpt)
        total_calls = comm.sum(np.array(float(calls)))
        if comm.is_root and args.out:
            resumed = ckpt.n_resumed if ckpt is not None else 0
            np.savez(args.out, calls=total_calls, size=comm.size, resumed=resumed, **sums)


if __name__ == "__main__":
    main()
