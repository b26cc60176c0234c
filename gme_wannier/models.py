"""Analytic tight-binding models for checks (docs/theory.md section 2, "Analytic checks"), and a writer of
Wannier90-format files for them (``SEED_hr.dat``, ``SEED.win``, ``SEED_centres.xyz``).
The Weyl model is written with ``spinors = true``: its sigma is the spin, each band holds one
electron (docs/theory.md, "Spin counting").

Two-node Weyl model on a simple cubic lattice (lattice constant a, two orbitals on one site):

    H(k) = eps(k) 1 + d(k) . sigma
    d = t ( sin k_x a,  sin k_y a,  cos k_z a + 2 - cos k_x a - cos k_y a )
    eps = b sin k_z a        (chiral model: nodes at different energies)
    eps = b cos k_x a        (parity-symmetric variant, P = sigma_z)

Nodes: k = (0, 0, +-pi/(2a)), isotropic velocity v_F = t a / hbar, chirality -1 at +pi/2a
(energy +b) and +1 at -pi/2a (energy -b). ZMS Eq. (17): alpha0 -> (e^2/3h^2)(eps_R - eps_L) 1
= -(2b) e^2/(3h^2) 1 for b << t at E_F = 0. The model breaks time reversal (one Weyl pair),
so the symmetry reduction (which assumes it for non-magnetic inputs) must be off for it.
"""

from __future__ import annotations

import os

import numpy as np

from .io.tbfiles import format_centres, format_hr
from .model import TBModel

_SX = np.array([[0, 1], [1, 0]], dtype=complex)
_SY = np.array([[0, -1j], [1j, 0]], dtype=complex)
_SZ = np.array([[1, 0], [0, -1]], dtype=complex)
_ID = np.eye(2, dtype=complex)


def weyl_pair_model(*, t: float = 1.0, b: float = 0.05, a: float = 3.0, parity_symmetric: bool = False,
                    name: str = "weyl") -> TBModel:
    """Two-band, two-node Weyl lattice model (see the module docstring).

    t : eV (d-vector scale), b : eV (node energies +-b), a : Angstrom (cubic lattice constant).
    """
    H: dict = {}

    def add(R, M):
        H[R] = H.get(R, np.zeros((2, 2), complex)) + M

    add((0, 0, 0), 2 * t * _SZ)
    for axis, sig in ((0, _SX), (1, _SY)):
        e = [0, 0, 0]
        e[axis] = 1
        add(tuple(e), t * sig / 2j)
        add(tuple(-x for x in e), -t * sig / 2j)
        add(tuple(e), -t * _SZ / 2)
        add(tuple(-x for x in e), -t * _SZ / 2)
    add((0, 0, 1), t * _SZ / 2)
    add((0, 0, -1), t * _SZ / 2)
    if parity_symmetric:
        add((1, 0, 0), b * _ID / 2)
        add((-1, 0, 0), b * _ID / 2)
    else:
        add((0, 0, 1), b * _ID / 2j)
        add((0, 0, -1), -b * _ID / 2j)
    iR = np.array(sorted(H), dtype=int)
    H_R = np.array([H[tuple(R)] for R in iR])
    # sigma is the electron's spin here: two non-degenerate bands, each holding one electron
    # (spinors), so the ZMS single-pair limit above holds with spin_degeneracy 1
    return TBModel(real_lattice=np.eye(3) * a, iRvec=iR, H_R=H_R, centres_cart=np.zeros((2, 3)),
                   spinors=True, name=name, provenance={"source": "analytic", "model": "two-node Weyl",
                                          "t_eV": t, "b_eV": b, "a_A": a,
                                          "parity_symmetric": parity_symmetric})


def model_win_text(model: TBModel, comment: str = "") -> str:
    """A ``.win`` with the lattice, a placeholder structure and num_wann.

    The structure (H at the origin) only labels the cell: the Hamiltonian of an analytic
    model does not follow from it, so use ``--symmetry off`` with such models."""
    lat = model.real_lattice
    lines = [f"! {comment or model.name}: written by gme_wannier (analytic model)",
             "! the structure below is a placeholder: run with --symmetry off",
             f"num_wann = {model.num_wann}", f"num_bands = {model.num_wann}",
             f"spinors = {'true' if model.spinors else 'false'}", "", "begin unit_cell_cart", "ang"]
    lines += [f"  {r[0]:.10f} {r[1]:.10f} {r[2]:.10f}" for r in lat]
    lines += ["end unit_cell_cart", "", "begin atoms_frac", "H 0.0 0.0 0.0", "end atoms_frac", ""]
    return "\n".join(lines) + "\n"


def write_model(model: TBModel, seed: str) -> list:
    """Write ``SEED_hr.dat``, ``SEED.win`` and ``SEED_centres.xyz``; returns the paths."""
    d = os.path.dirname(seed)
    if d:
        os.makedirs(d, exist_ok=True)
    paths = [seed + "_hr.dat", seed + ".win", seed + "_centres.xyz"]
    with open(paths[0], "w") as f:
        f.write(format_hr(np.asarray(model.H_R), np.asarray(model.iRvec), header=f"{model.name}: gme_wannier"))
    with open(paths[1], "w") as f:
        f.write(model_win_text(model))
    with open(paths[2], "w") as f:
        f.write(format_centres(np.asarray(model.centres_cart), ["H"], np.zeros((1, 3))))
    return paths
