"""MPI driver of the physics engine: ``mpirun -n N python tests/mpi_compute_driver.py ...``.

Calls :func:`gme_wannier.compute` on real data sets under :func:`gme_wannier.parallel.guard`
with the communicator of :func:`gme_wannier.parallel.get_comm`; rank 0 writes the K tensors
(Ampere, (nE, 3, 3) per part), the DOS and the number of chunks of every case to ``--out``
(npz, keys ``<case>/<name>``). Nothing in the package is patched.

Modes (see tests/test_mpi_physics.py):

``--cases te_off,srsi2_auto --out r.npz``
    compute the listed :data:`CASES`; also records ``<case>/rank_spread``, the largest
    difference between the results of the ranks (every rank must hold the same sums).
``--cases srsi2_auto --bad-structure-rank 1``
    that rank passes a structure whose cell is not the model's (a genuine input error that
    ``compute`` raises on that rank only, while the others are already in the k loop).
``--cases srsi2_kill --checkpoint PATH``
    checkpoint after every chunk (``checkpoint_every=0``, not reachable from the CLI) so
    that a test can SIGKILL the job midway and resume it through the CLI.

Tests import :data:`CASES`, :func:`build_case` and :func:`cli_args` for the serial reference
and for the equivalent ``gme-wannier run`` command line.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

import gme_wannier as gw
from gme_wannier.models import weyl_pair_model
from gme_wannier.parallel import get_comm, guard

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("GME_TEST_DATA", os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data")))
TE = os.path.join(DATA, "Te_tut24", "Te")
SRSI2 = os.path.join(HERE, "..", "examples", "wannier90_inputs", "SrSi2", "srsi2")


@dataclass(frozen=True)
class Case:
    """One compute() call: data set, mesh, symmetry mode, Fermi levels and chunk size.

    ``chunk_size`` is chosen so that the number of chunks (7 or 11) does not divide evenly
    over 2 or 3 ranks; ``n_chunks`` is the expected count (checked by the tests).
    """

    seed: str  # "weyl" for the analytic model, else DIR/SEED
    mesh: int
    symmetry: str
    efermi: tuple
    temperature: float
    chunk_size: int
    n_chunks: int


CASES = {
    # Te (9 WFs, chk + mmn + uHu: full orbital moment): 1000 / 116 irreducible points
    "te_off": Case(TE, 10, "off", (5.9, 6.0, 6.1), 300.0, 91, 11),
    "te_auto": Case(TE, 10, "auto", (5.9, 6.0, 6.1), 300.0, 17, 7),
    # SrSi2 (56 WFs, _hr.dat: internal terms): 216 / 20 irreducible points
    "srsi2_off": Case(SRSI2, 6, "off", (8.4, 8.5, 8.6), 300.0, 20, 11),
    "srsi2_auto": Case(SRSI2, 6, "auto", (8.4, 8.5, 8.6), 300.0, 3, 7),
    # analytic two-node Weyl model (no structure: symmetry off), nodes at +-0.3 eV
    "weyl_off": Case("weyl", 8, "off", (-0.3, 0.0, 0.3), 1000.0, 47, 11),
    # for kill-and-resume: 1728 points in 72 chunks (~1.5 s per rank at 2 ranks)
    "srsi2_kill": Case(SRSI2, 12, "off", (8.4, 8.5, 8.6), 300.0, 24, 72),
}


@lru_cache(maxsize=None)
def _model(seed: str) -> gw.TBModel:
    return weyl_pair_model(b=0.3) if seed == "weyl" else gw.load_model(seed)


def build_case(name: str) -> tuple[gw.TBModel, gw.GMESettings, dict]:
    """Model, settings and the keyword arguments of :func:`gme_wannier.compute` of a case.

    The settings are those the CLI builds from ``--efermi ... --temperature T``, so a
    checkpoint written here is accepted by ``gme-wannier run`` with :func:`cli_args`.
    """
    c = CASES[name]
    settings = gw.GMESettings(fermi_energies=c.efermi, smearing=gw.Smearing.from_temperature(c.temperature))
    return _model(c.seed), settings, {"mesh": (c.mesh,) * 3, "symmetry": c.symmetry, "chunk_size": c.chunk_size}


def cli_args(name: str) -> list[str]:
    """``gme-wannier run`` arguments equivalent to :func:`build_case` (not for "weyl")."""
    c = CASES[name]
    return ["run", c.seed, "--mesh", *(str(c.mesh),) * 3, "--symmetry", c.symmetry,
            "--chunk-size", str(c.chunk_size), "--efermi", *map(str, c.efermi),
            "--temperature", str(c.temperature)]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", required=True, help="comma-separated names of CASES")
    p.add_argument("--out", help="npz written by rank 0")
    p.add_argument("--checkpoint", help="checkpoint path (saved after every chunk)")
    p.add_argument("--bad-structure-rank", type=int, help="this rank passes a structure of another cell")
    args = p.parse_args(argv)

    comm = get_comm("auto")
    with guard(comm):
        out: dict[str, np.ndarray] = {"size": np.array(comm.size)}
        for name in args.cases.split(","):
            model, settings, kw = build_case(name)
            structure = None
            if comm.rank == args.bad_structure_rank:
                structure = model.atoms.copy()
                structure.set_cell(1.1 * model.atoms.cell, scale_atoms=True)
            result = gw.compute(model, settings, gw.Sampling(mesh=kw["mesh"]),
                                symmetry=gw.SymmetryOptions(mode=kw["symmetry"], structure=structure),
                                run=gw.RunControl(comm=comm, chunk_size=kw["chunk_size"], checkpoint=args.checkpoint,
                                                  checkpoint_every=0.0))
            n_eval = result.info["mesh"]["n_evaluated"]
            mine = np.concatenate([result.K[p].ravel() for p in ("orbital", "spin", "total")])
            every = comm.gather(mine)  # rank 0 only: the results of all ranks must agree
            for part, value in result.K.items():
                out[f"{name}/{part}"] = value
            out[f"{name}/dos"] = result.dos
            out[f"{name}/n_chunks"] = np.array(-(-n_eval // kw["chunk_size"]))
            if comm.is_root:
                out[f"{name}/rank_spread"] = np.array(max(np.abs(m - mine).max() for m in every))
        if comm.is_root and args.out:
            np.savez(args.out, **out)


if __name__ == "__main__":
    main()
