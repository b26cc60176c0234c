"""The one immutable tight-binding object of the package.

Phase convention ("convention I", as WannierBerri): the position operator is diagonal at the
Wannier centres t_m, so that in k space

    X_mn(k)   = sum_R X_mn(R) exp(2 pi i k_red . R)                 (gauge-equivalent form)
    d_a X_mn  = sum_R i (R + t_n - t_m)_a X_mn(R) exp(2 pi i k_red . R)

The factor exp(i k.(t_n - t_m)) of convention I is a k-dependent diagonal unitary that changes
no gauge-invariant quantity, so it is left out of the transform and kept in the derivative
(WannierBerri's ``cRvec_shifted``). Position-type matrices (A, B, C) must be in convention I:
A_mn(R=0) has (almost) zero diagonal.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

__all__ = ["TBModel"]


@dataclass(frozen=True, eq=False)
class TBModel:
    """Real-space Wannier (tight-binding) model.

    Parameters (keyword-only)
    ----------
    real_lattice : float ndarray, shape (3, 3), Angstrom
        Lattice vectors as rows.
    iRvec : int ndarray, shape (nR, 3)
        Lattice vectors R in reduced coordinates.
    H_R : complex ndarray, shape (nR, nw, nw), eV
        <0 m|H|R n> with Wigner-Seitz degeneracies already folded in.
    centres_cart : float ndarray, shape (nw, 3), Angstrom
        Wannier centres t_m (Cartesian).
    A_R, B_R, CC_R : complex ndarray, shape (nR, nw, nw, 3), optional
        Position-operator matrices (convention I): A in Angstrom,
        B = <0m|H (r-R)|Rn> in eV Angstrom (Wannier90/WannierBerri ``BB``), and the
        antisymmetric uHu matrix CC_c = i eps_cab <d_a u|H|d_b u> in eV Angstrom^2
        (WannierBerri ``CC``).
    S_R : complex ndarray, shape (nR, nw, nw, 3), optional
        Pauli matrices <0m|sigma|Rn> (dimensionless).
    atoms : ase.Atoms, optional
        Crystal structure (from the ``.win`` file or a structure file).
    spinors : bool
        Whether the Wannier functions are spinors (each band counted once).
    name : str
        Seedname or model name, for reports.
    provenance : dict
        Which files were read, and the approximation level (for the result JSON).
    """

    real_lattice: np.ndarray
    iRvec: np.ndarray
    H_R: np.ndarray
    centres_cart: np.ndarray
    A_R: Optional[np.ndarray] = None
    B_R: Optional[np.ndarray] = None
    CC_R: Optional[np.ndarray] = None
    S_R: Optional[np.ndarray] = None
    atoms: Any = None
    spinors: bool = False
    name: str = "model"
    provenance: dict = field(default_factory=dict)

    def __init__(self, *, real_lattice, iRvec, H_R, centres_cart=None, A_R=None, B_R=None,
                 CC_R=None, S_R=None, atoms=None, spinors=False, name="model", provenance=None):
        real_lattice = np.array(real_lattice, dtype=float).reshape(3, 3)
        iRvec = np.array(iRvec, dtype=int).reshape(-1, 3)
        H_R = np.array(H_R, dtype=complex)
        nR = iRvec.shape[0]
        if H_R.ndim != 3 or H_R.shape[0] != nR or H_R.shape[1] != H_R.shape[2]:
            raise ValueError(f"H_R must have shape (nR={nR}, nw, nw), got {H_R.shape}")
        nw = H_R.shape[1]
        if centres_cart is None:
            centres_cart = np.zeros((nw, 3))
        centres_cart = np.array(centres_cart, dtype=float).reshape(nw, 3)

        def _vec(name, X):
            if X is None:
                return None
            X = np.array(X, dtype=complex)
            if X.shape != (nR, nw, nw, 3):
                raise ValueError(f"{name} must have shape {(nR, nw, nw, 3)}, got {X.shape}")
            return X

        object.__setattr__(self, "real_lattice", real_lattice)
        object.__setattr__(self, "iRvec", iRvec)
        object.__setattr__(self, "H_R", H_R)
        object.__setattr__(self, "centres_cart", centres_cart)
        object.__setattr__(self, "A_R", _vec("A_R", A_R))
        object.__setattr__(self, "B_R", _vec("B_R", B_R))
        object.__setattr__(self, "CC_R", _vec("CC_R", CC_R))
        object.__setattr__(self, "S_R", _vec("S_R", S_R))
        object.__setattr__(self, "atoms", atoms)
        object.__setattr__(self, "spinors", bool(spinors))
        object.__setattr__(self, "name", str(name))
        object.__setattr__(self, "provenance", dict(provenance or {}))
        for arr in (self.real_lattice, self.iRvec, self.H_R, self.centres_cart,
                    self.A_R, self.B_R, self.CC_R, self.S_R):
            if arr is not None:
                arr.setflags(write=False)

    # ------------------------------------------------------------------ basic properties
    @property
    def num_wann(self) -> int:
        """Number of Wannier functions."""
        return self.H_R.shape[1]

    @property
    def nR(self) -> int:
        """Number of R vectors."""
        return self.iRvec.shape[0]

    @property
    def recip_lattice(self) -> np.ndarray:
        """Reciprocal lattice vectors as rows, 1/Angstrom (a_i . b_j = 2 pi delta_ij)."""
        return 2 * np.pi * np.linalg.inv(self.real_lattice).T

    @property
    def cell_volume(self) -> float:
        """Unit-cell volume in Angstrom^3."""
        return float(abs(np.linalg.det(self.real_lattice)))

    @property
    def has_spin(self) -> bool:
        """True when the spin matrices (.spn) are available."""
        return self.S_R is not None

    @property
    def has_external_terms(self) -> bool:
        """True when the full orbital moment (A, B and uHu-derived C matrices) is available."""
        return self.A_R is not None and self.B_R is not None and self.CC_R is not None

    @property
    def orbital_level(self) -> str:
        """Which orbital-moment terms the model supports, as a sentence for the reports."""
        if self.has_external_terms:
            return "full (internal + external terms: A, B, C from .mmn/.uHu)"
        return "internal (tight-binding) terms only"

    @property
    def cR_shifted(self) -> np.ndarray:
        """R + t_n - t_m in Cartesian Angstrom, shape (nR, nw, nw, 3)."""
        cR = self.iRvec @ self.real_lattice
        t = self.centres_cart
        return cR[:, None, None, :] + t[None, None, :, :] - t[None, :, None, :]

    def replace(self, **changes) -> "TBModel":
        """Return a new model with some fields replaced (the model itself is immutable)."""
        kw = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        kw.update(changes)
        return TBModel(**kw)

    # ------------------------------------------------------------------ model files (npz)
    @classmethod
    def from_npz(cls, path: str, *, atoms: Any = None, spinors: Optional[bool] = None,
                 name: Optional[str] = None) -> "TBModel":
        """Read the package's own model file (written by :meth:`to_npz` / ``gme-wannier export``).

        Parameters
        ----------
        path : str
            ``.npz`` with the arrays of :data:`gme_wannier.io.modelnpz.MODEL_ARRAYS` and ``meta``.
        atoms : ase.Atoms, optional
            The structure (the file holds none; ``load_model`` takes it from the ``.win``).
        spinors, name : optional
            Override ``meta["spinors"]`` / ``meta["name"]``.
        """
        import os

        from .io.modelnpz import read_model_npz

        d = read_model_npz(path)
        meta = d.pop("meta")
        built = dict(meta.get("provenance") or {})
        prov = {**built, "source": "npz", "files": [os.path.abspath(path)],
                "built_from": {"source": built.get("source"), "files": built.get("files", [])}}
        return cls(**d, atoms=atoms, spinors=bool(meta.get("spinors", False)) if spinors is None else spinors,
                   name=name or meta.get("name") or os.path.basename(path).split(".")[0], provenance=prov)

    def to_npz(self, path: str) -> None:
        """Write the model's arrays and a ``meta`` JSON string (spinors, name, provenance, units)
        to ``path`` (compressed ``.npz``; the structure is not stored: keep the ``.win``)."""
        from .io.modelnpz import write_model_npz

        write_model_npz(path, self)

    @classmethod
    def from_wannierberri(cls, folder: str, *, atoms: Any = None, spinors: Optional[bool] = None,
                          name: Optional[str] = None) -> "TBModel":
        """Read a WannierBerri ``System_R.save_npz`` folder (legacy or new index order).

        ``spinors`` defaults to True when the folder holds the spin matrices ``SS``.
        """
        import os

        from .io.modelnpz import read_wannierberri_folder

        d = read_wannierberri_folder(folder)
        files = d.pop("files")
        full = all(k in d for k in ("A_R", "B_R", "CC_R"))
        prov = {"source": "wannierberri", "files": [os.path.abspath(folder)] + [os.path.basename(f) for f in files],
                "orbital_moment": "full (A, B, C from the saved system)" if full else "internal (tight-binding) terms only",
                "spin_moment": "from SS" if "S_R" in d else "none",
                "ws_distance": "as saved by WannierBerri"}
        if not full:
            for k in ("A_R", "B_R", "CC_R"):
                d.pop(k, None)
        return cls(**d, atoms=atoms, spinors=("S_R" in d) if spinors is None else spinors,
                   name=name or os.path.basename(os.path.abspath(folder).rstrip("/")), provenance=prov)

    def hermiticity_error(self) -> float:
        """max |H(R) - H(-R)^dagger| (eV): should be ~0 for a valid model."""
        index = {tuple(R): i for i, R in enumerate(self.iRvec)}
        err = 0.0
        for i, R in enumerate(self.iRvec):
            j = index.get(tuple(-R))
            if j is None:
                err = max(err, float(np.abs(self.H_R[i]).max()))
            else:
                err = max(err, float(np.abs(self.H_R[i] - self.H_R[j].conj().T).max()))
        return err

    def mirrored(self, axis: int = 0) -> "TBModel":
        """The mirror image (enantiomer) x_axis -> -x_axis of the whole model.

        Lattice, centres, R vectors and the Cartesian components of the vector matrices are
        reflected; the Hamiltonian matrix elements between the reflected orbitals are unchanged.
        Spin is an axial vector: under a mirror its components parallel to the plane flip.
        """
        M = np.eye(3)
        M[axis, axis] = -1.0

        def refl(X, axial=False):
            if X is None:
                return None
            Y = np.array(X) @ M
            return -Y if axial else Y

        atoms = None
        if self.atoms is not None:
            atoms = self.atoms.copy()
            atoms.set_cell(self.real_lattice @ M, scale_atoms=True)
        # CC is a pseudo-vector (cross product of two derivatives)
        return self.replace(real_lattice=self.real_lattice @ M, centres_cart=self.centres_cart @ M,
                            A_R=refl(self.A_R), B_R=refl(self.B_R), CC_R=refl(self.CC_R, axial=True),
                            S_R=refl(self.S_R, axial=True), atoms=atoms, name=self.name + "-mirror")
