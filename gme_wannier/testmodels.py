"""Tight-binding models with an exactly known space group, for symmetry tests.

One s orbital per atom, Wannier centres at the atoms, real hoppings that depend only on the
distance between the two sites and on the pair of species:

    H_mn(R) = eps_m delta_mn delta_R0 + t_{s_m s_n} exp(-(d - d0) / lam)    for 0 < d < cutoff
    d = |R + t_n - t_m|  (Cartesian, Angstrom; R a lattice vector, t the centres)

Every isometry of the decorated structure maps the hopping list onto itself, so H(k) commutes
with the whole space group (non-symmorphic translations included) and, being real in real
space, with time reversal. The symmetry of the model is therefore exactly the spglib group of
its structure: chiral structures (P2_13, P4_332) give chiral models with alpha = a*1.

Structures are generated from Wyckoff seeds with the operations of spglib's database, so a
model for any space group needs only a few seed positions.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .model import TBModel

__all__ = ["orbit_structure", "distance_model", "cosi_like", "srsi2_like", "rocksalt_like"]

# spglib Hall numbers of the default settings used here
_HALL = {198: 492, 212: 508, 213: 509, 221: 517, 225: 523}


def orbit_structure(spacegroup: int, a: float, seeds: Sequence[tuple[str, Sequence[float]]]):
    """Cubic structure from Wyckoff seeds: the orbit of each seed under the space group.

    Parameters
    ----------
    spacegroup : int
        International number; one of 198 (P2_13), 212 (P4_332), 213 (P4_132), 221, 225.
    a : float
        Cubic lattice constant, Angstrom.
    seeds : sequence of (symbol, reduced position (3,))

    Returns
    -------
    ase.Atoms
        Simple-cubic (conventional = primitive for P lattices) cell, atoms in seed order, each
        orbit sorted lexicographically.
    """
    import ase
    import spglib

    if spacegroup not in _HALL:
        raise ValueError(f"space group {spacegroup} not tabulated (have {sorted(_HALL)})")
    ops = spglib.get_symmetry_from_database(_HALL[spacegroup])
    symbols, positions = [], []
    for sym, x in seeds:
        x = np.asarray(x, dtype=float)
        orbit: list[np.ndarray] = []
        for W, tau in zip(ops["rotations"], ops["translations"]):
            y = np.mod(W @ x + tau, 1.0)
            y[np.isclose(y, 1.0, atol=1e-9)] = 0.0
            if not any(np.allclose(y, z, atol=1e-8) for z in orbit):
                orbit.append(y)
        orbit.sort(key=tuple)
        symbols += [sym] * len(orbit)
        positions += orbit
    return ase.Atoms(symbols=symbols, scaled_positions=positions, cell=np.eye(3) * a, pbc=True)


def distance_model(atoms, *, onsite: Mapping[str, float], hopping: Mapping[tuple[str, str], float],
                   lam: float = 0.6, d0: float | None = None, cutoff: float = 5.0,
                   name: str = "distance-model") -> TBModel:
    """s-orbital model whose hoppings depend only on distance and species (module docstring).

    Parameters
    ----------
    atoms : ase.Atoms
        Structure; one s orbital at each atom (Wannier centre = atom position).
    onsite : {symbol: eV}
    hopping : {(symbol, symbol): eV}
        Prefactor ``t`` per (unordered) species pair at distance ``d0``.
    lam, d0, cutoff : Angstrom
        Decay length, reference distance (default: the shortest interatomic distance) and
        the hopping range. A distance within 1e-4 Angstrom of the cutoff is refused: it would
        make the truncation depend on rounding.

    Returns
    -------
    TBModel
        With ``atoms`` attached (symmetry "auto" uses it).
    """
    lat = np.array(atoms.cell[:], dtype=float)
    pos = atoms.get_positions()
    sym = atoms.get_chemical_symbols()
    nmax = int(np.ceil(cutoff / min(np.linalg.norm(lat, axis=1)))) + 1
    rng = np.arange(-nmax, nmax + 1)
    Rs = np.array(np.meshgrid(rng, rng, rng, indexing="ij")).reshape(3, -1).T
    dvec = (Rs @ lat)[:, None, None, :] + pos[None, None, :, :] - pos[None, :, None, :]
    dist = np.linalg.norm(dvec, axis=-1)  # (nR, m, n)
    if np.any(np.abs(dist - cutoff) < 1e-4):
        raise ValueError("an interatomic distance lies on the cutoff: choose another cutoff")
    if d0 is None:
        d0 = float(dist[dist > 1e-6].min())

    def t_pair(a: str, b: str) -> float:
        return float(hopping[(a, b)] if (a, b) in hopping else hopping[(b, a)])

    T = np.array([[t_pair(a, b) for b in sym] for a in sym])
    H = np.where((dist > 1e-6) & (dist < cutoff), T[None] * np.exp(-(dist - d0) / lam), 0.0)
    i0 = np.nonzero(np.all(Rs == 0, axis=1))[0][0]
    H[i0] += np.diag([float(onsite[s]) for s in sym])
    keep = np.abs(H).max(axis=(1, 2)) > 0
    return TBModel(real_lattice=lat, iRvec=Rs[keep], H_R=H[keep].astype(complex), centres_cart=pos,
                   atoms=atoms, name=name,
                   provenance={"source": "analytic", "model": "distance-only s-orbital hoppings",
                               "lam_A": lam, "d0_A": d0, "cutoff_A": cutoff})


def cosi_like(a: float = 4.45, x_co: float = 0.140, x_si: float = 0.844, cutoff: float = 4.6) -> TBModel:
    """P2_13 (point group 23) model: two species on 4a (x,x,x) sites, as CoSi; 8 orbitals."""
    atoms = orbit_structure(198, a, [("Co", (x_co,) * 3), ("Si", (x_si,) * 3)])
    return distance_model(atoms, onsite={"Co": 0.0, "Si": 1.0},
                          hopping={("Co", "Co"): -0.6, ("Si", "Si"): -0.3, ("Co", "Si"): -1.0},
                          cutoff=cutoff, name="CoSi-like P2_13")


def srsi2_like(a: float = 6.54, x_si: float = 0.428, cutoff: float = 4.7) -> TBModel:
    """P4_332 (point group 432) model: Sr on 4a (1/8,1/8,1/8), Si on 8c (x,x,x); 12 orbitals."""
    atoms = orbit_structure(212, a, [("Sr", (0.125,) * 3), ("Si", (x_si,) * 3)])
    return distance_model(atoms, onsite={"Sr": 1.5, "Si": 0.0},
                          hopping={("Sr", "Sr"): -0.4, ("Si", "Si"): -1.0, ("Sr", "Si"): -0.7},
                          cutoff=cutoff, name="SrSi2-like P4_332")


def rocksalt_like(a: float = 5.6, cutoff: float = 5.0) -> TBModel:
    """Fm-3m in the simple-cubic conventional cell (8 orbitals): centrosymmetric."""
    atoms = orbit_structure(225, a, [("Na", (0, 0, 0)), ("Cl", (0.5, 0.5, 0.5))])
    return distance_model(atoms, onsite={"Na": 1.0, "Cl": 0.0},
                          hopping={("Na", "Na"): -0.3, ("Cl", "Cl"): -0.4, ("Na", "Cl"): -1.0},
                          cutoff=cutoff, name="rocksalt-like Fm-3m")
