"""Allowed form of rank-2 axial, time-reversal-even tensors under a point group, and the projections.

The GME tensor ``alpha_ij`` (and the per-k integrand ``F_ij(k)``) is a rank-2 *axial*,
time-reversal-*even* tensor (docs/theory.md section 8): under a point operation with Cartesian
matrix ``R`` (proper or improper) it transforms as ``T -> det(R) R T R^T``, and time reversal
leaves it unchanged, so primed and unprimed operations constrain it alike. This module holds
the group average (:func:`symmetrize_tensor`), the distance from it
(:func:`symmetry_breaking`) and the invariant subspace with its symbolic form
(:func:`allowed_form`, Neumann's principle). The operations come from
:func:`gme_wannier.symmetry.find_symmetry`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # symmetry.py imports this module: no run-time import back
    from .symmetry import CrystalSymmetry

__all__ = ["AllowedForm", "allowed_form", "symmetrize_tensor", "symmetry_breaking", "TensorCharacter",
           "AXIAL_EVEN", "POLAR_EVEN", "project", "group_average"]


@dataclass(frozen=True)
class TensorCharacter:
    """How a rank-2 Cartesian tensor transforms: under a point operation R (proper or improper)
    T -> s R T R^T with s = det(R) for an axial tensor and 1 for a polar one, times -1 for a
    primed operation (R combined with time reversal) when the tensor is time-reversal odd.

    axial : bool; time_even : bool. K, alpha, D, D~ and the NOA array are axial and even, the
    ohmic tensor C is polar and even (docs/theory.md).
    """

    axial: bool = True
    time_even: bool = True

    def signs(self, sym: "CrystalSymmetry") -> np.ndarray:
        """s_g of every operation of ``sym``, float (nsym,)."""
        R = np.asarray(sym.rotations_cart)
        s = np.linalg.det(R) if self.axial else np.ones(len(R))
        if not self.time_even and sym.antiunitary is not None:
            s = np.where(np.asarray(sym.antiunitary, dtype=bool), -s, s)
        return s


AXIAL_EVEN = TensorCharacter(axial=True, time_even=True)
POLAR_EVEN = TensorCharacter(axial=False, time_even=True)


def project(T: np.ndarray, sym: "CrystalSymmetry", character: TensorCharacter = AXIAL_EVEN) -> np.ndarray:
    """Group average (1/|G|) sum_g s_g R_g T R_g^T of rank-2 tensors T, float (..., 3, 3), any
    unit: the orthogonal projection on the symmetry-allowed form of a tensor of this
    ``character``. The components that the form forbids come out exactly zero (not ~1e-16)."""
    out = group_average(np.asarray(T, dtype=float), sym, character)
    allowed = np.abs(group_average(np.eye(9).reshape(9, 3, 3), sym, character)).max(axis=0) > 1e-10
    out[..., ~allowed] = 0.0
    return out


def group_average(T: np.ndarray, sym: "CrystalSymmetry", character: TensorCharacter = AXIAL_EVEN) -> np.ndarray:
    """(1/|G|) sum_g s_g R_g T R_g^T for T float (..., 3, 3), s_g from ``character``."""
    R = sym.rotations_cart
    return np.einsum("g,gia,...ab,gjb->...ij", character.signs(sym), R, T, R, optimize=True) / len(R)


def symmetrize_tensor(T: np.ndarray, sym: CrystalSymmetry) -> np.ndarray:
    """Group average of an axial, time-reversal-even rank-2 tensor.

    Parameters
    ----------
    T : float ndarray, shape (..., 3, 3)
        Cartesian tensor(s), any unit (the result has the same); the last two axes are
        ``(i, j)``.
    sym : CrystalSymmetry
        The point operations, ``sym.rotations_cart`` float (nsym, 3, 3), Cartesian.

    Returns
    -------
    float ndarray, shape (..., 3, 3)
        ``(1/|G|) sum_g det(R_g) R_g T R_g^T`` over the spatial parts of all operations
        (primed ones included: time reversal leaves the tensor unchanged).
    """
    T = np.asarray(T)
    if T.shape[-2:] != (3, 3):
        raise ValueError(f"tensor must have shape (..., 3, 3), got {T.shape}")
    return group_average(T, sym, AXIAL_EVEN)


def symmetry_breaking(T_full: np.ndarray, sym: CrystalSymmetry) -> float:
    """Relative distance of a tensor from its symmetrized image.

    Parameters
    ----------
    T_full : float ndarray, shape (..., 3, 3)
        E.g. a whole-mesh (unsymmetrized) sum, one tensor per Fermi level; any unit.
    sym : CrystalSymmetry
        The point operations, ``sym.rotations_cart`` float (nsym, 3, 3), Cartesian.

    Returns
    -------
    float
        ``max over leading indices of ||T - symmetrize(T)||_F / max(||T||_F, tiny)``;
        0 for an exactly symmetric tensor (or an all-zero one).
    """
    T = np.asarray(T_full, dtype=float)
    T = T.reshape(-1, 3, 3)
    diff = np.linalg.norm(T - symmetrize_tensor(T, sym), axis=(1, 2))
    norm = np.maximum(np.linalg.norm(T, axis=(1, 2)), np.finfo(float).tiny)
    return float(np.max(diff / norm)) if len(T) else 0.0


# ordering used to name the free parameters: diagonal first, so that 'a','b','c' are
# xx, yy, zz and 'd'..'i' are xy, xz, yx, yz, zx, zy
_PIVOT_ORDER = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
_LETTERS = "abcdefghi"


@dataclass(frozen=True, eq=False)
class AllowedForm:
    """Form of a rank-2 axial, time-reversal-even tensor allowed by symmetry (Neumann).

    Attributes
    ----------
    basis : float ndarray, shape (n_independent, 3, 3)
        Orthonormal (Frobenius) basis of the invariant subspace, Cartesian.
    n_independent : int
        Number of independent components.
    form : str
        Human-readable form in the Cartesian frame of the lattice: ``'0'``, ``'a*1'``,
        ``'diag(a,a,c)'`` or a matrix such as ``'[[a,d,0],[-d,a,0],[0,0,c]]'``. A parameter
        is named after the component that defines it: ``a,b,c`` = xx, yy, zz;
        ``d,e,f,g,h,i`` = xy, xz, yx, yz, zx, zy.
    entries : tuple of tuple of str
        The 3x3 symbolic entries of ``form``.
    zero_components : list of (int, int)
        Components ``(i, j)`` forced to vanish.
    """

    basis: np.ndarray
    n_independent: int
    form: str
    entries: tuple
    zero_components: list

    def project(self, T: np.ndarray) -> np.ndarray:
        """Orthogonal projection of T on the allowed form: ``sum_b <b, T> b``.

        For orthogonal point operations this is the group average (1/|G|) sum det(R) R T R^T
        (an orthogonal projector on the invariant subspace), with the zeros and equalities of
        Neumann's principle exact rather than exact to the precision of the input lattice.

        Parameters
        ----------
        T : float ndarray, shape (..., 3, 3)
            Cartesian tensor(s), any unit; the last two axes are ``(i, j)``.

        Returns
        -------
        float ndarray, shape (..., 3, 3)
            The projection, in the unit of ``T``.
        """
        coef = np.einsum("bij,...ij->...b", self.basis, T)
        return np.einsum("bij,...b->...ij", self.basis, coef)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        return {
            "n_independent": int(self.n_independent),
            "form": self.form,
            "entries": [list(row) for row in self.entries],
            "zero_components": [[int(i), int(j)] for i, j in self.zero_components],
        }


def _format_coef(x: float) -> str | None:
    """A clean rational if ``x`` is one (denominator <= 12), else None."""
    frac = Fraction(x).limit_denominator(12)
    return str(frac) if abs(float(frac) - x) < 1e-8 else None


def _entry_string(coefs: np.ndarray, names: list[str], tol: float) -> str:
    """``'a'``, ``'-d'``, ``'a+1/2*c'``...: the combination ``sum coefs * names`` as text."""
    terms = []
    for c, name in zip(coefs, names):
        if abs(c) < tol:
            continue
        sign = "-" if c < 0 else "+"
        mag = _format_coef(abs(c))
        if mag is None:
            mag = f"{abs(c):.6g}"
        term = name if mag == "1" else f"{mag}*{name}"
        terms.append((sign, term))
    if not terms:
        return "0"
    out = ("-" if terms[0][0] == "-" else "") + terms[0][1]
    for sign, term in terms[1:]:
        out += sign + term
    return out


def allowed_form(sym: CrystalSymmetry, tol: float = 1e-8, character: TensorCharacter = AXIAL_EVEN) -> AllowedForm:
    """Subspace of 3x3 tensors invariant under ``T -> s R T R^T`` for all operations (s from
    ``character``: det(R) for the axial, time-reversal-even GME tensor, the default).

    Parameters
    ----------
    sym : CrystalSymmetry
        The point operations, ``sym.rotations_cart`` float (nsym, 3, 3), Cartesian.
    tol : float, optional
        Threshold below which a coefficient of the reduced row echelon form is zero
        (dimensionless: the basis is orthonormal).
    character : TensorCharacter, optional
        How the tensor transforms (default: axial, time-reversal even, as K and alpha).

    Returns
    -------
    AllowedForm
        Orthonormal basis (from the eigenvectors with eigenvalue 1 of the group-average
        projector on the 9 unit matrices) and a symbolic form built from its reduced row
        echelon form.
    """
    units = np.eye(9).reshape(9, 3, 3)
    proj = group_average(units, sym, character).reshape(9, 9)  # row m: image of unit matrix m
    proj = 0.5 * (proj + proj.T)  # orthogonal projector (orthogonal representation)
    vals, vecs = np.linalg.eigh(proj)
    basis = vecs[:, vals > 0.5].T  # (n, 9) orthonormal
    n_ind = basis.shape[0]

    entries = _symbolic_entries(basis, tol)
    zero = [(i, j) for i in range(3) for j in range(3)
            if n_ind == 0 or np.all(np.abs(basis[:, 3 * i + j]) < 1e-6)]
    return AllowedForm(basis=basis.reshape(n_ind, 3, 3), n_independent=n_ind,
                       form=_form_string(entries, n_ind), entries=entries, zero_components=zero)


def _symbolic_entries(basis: np.ndarray, tol: float) -> tuple:
    """3x3 symbolic entries of the subspace spanned by ``basis`` (n, 9).

    Reduced row echelon form with pivots searched in ``_PIVOT_ORDER``; each pivot names a free
    parameter after its component (``_LETTERS``), each entry is the combination of them.
    """
    n_ind = basis.shape[0]
    order = [3 * i + j for i, j in _PIVOT_ORDER]
    rref = basis[:, order].copy()
    pivots: list[int] = []
    row = 0
    for col in range(9):
        if row >= n_ind:
            break
        p = row + int(np.argmax(np.abs(rref[row:, col])))
        if abs(rref[p, col]) < 1e-6:
            continue
        rref[[row, p]] = rref[[p, row]]
        rref[row] /= rref[row, col]
        for r in range(n_ind):
            if r != row:
                rref[r] -= rref[r, col] * rref[row]
        pivots.append(col)
        row += 1
    rref[np.abs(rref) < tol] = 0.0
    full = np.zeros((n_ind, 9))
    full[:, order] = rref
    names = [_LETTERS[c] for c in pivots]
    return tuple(tuple(_entry_string(full[:, 3 * i + j], names, 1e-6) for j in range(3))
                 for i in range(3))


def _form_string(entries: tuple, n_ind: int) -> str:
    """``'0'``, ``'a*1'``, ``'diag(a,a,c)'`` or the full matrix of the symbolic ``entries``."""
    off_diag_zero = all(entries[i][j] == "0" for i in range(3) for j in range(3) if i != j)
    diag = [entries[i][i] for i in range(3)]
    if n_ind == 0:
        form = "0"
    elif off_diag_zero and diag[0] == diag[1] == diag[2]:
        form = f"{diag[0]}*1" if len(diag[0]) == 1 else f"({diag[0]})*1"
    elif off_diag_zero:
        form = f"diag({','.join(diag)})"
    else:
        form = "[" + ",".join("[" + ",".join(r) + "]" for r in entries) + "]"
    return form
