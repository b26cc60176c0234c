"""Crystal symmetry for the GME tensor: spglib in, point operations (reduced and Cartesian) out.

The GME tensor ``alpha_ij`` (and the per-k integrand ``F_ij(k)``) is a rank-2 *axial*,
time-reversal-*even* tensor (docs/theory.md section 8): under a point operation with Cartesian
matrix ``R`` (proper or improper) it transforms as ``T -> det(R) R T R^T``, and time reversal
leaves it unchanged. Therefore

* every operation of a (magnetic) space group acts on ``alpha`` through its spatial part
  only, primed (time-reversed) or not: the group that constrains ``alpha`` is the point group
  of the spatial parts (translations dropped, duplicates removed);
* on the k mesh the integrand obeys ``F(R k) = det(R) R F(k) R^T`` for an unprimed operation
  and ``F(-R k) = det(R) R F(k) R^T`` for a primed one (time reversal maps ``k -> -k``);
  the pure ``F(-k) = F(k)`` may only be used when time reversal alone (possibly combined
  with a translation, ``{1'|t}``) is a symmetry: always for a non-magnetic crystal, for a
  magnetic structure only if spglib finds such an operation (grey or black-white-lattice
  groups), and for collinear moments without spin-orbit coupling (each spin channel is a
  real, spinless Hamiltonian).

Coordinates: ``real_lattice`` rows are ``a1, a2, a3`` (Angstrom, ``ase.Atoms.cell``);
spglib rotations ``W`` act on reduced real-space coordinates (column vectors,
``x_red' = W x_red``); the Cartesian operation is ``R = A^T W A^-T`` with ``A = real_lattice``;
on reduced k (column) the same operation is ``W^-T``.

This module holds :func:`find_symmetry` (-> :class:`CrystalSymmetry`) and the check that a
Hamiltonian has the symmetry of its structure. The rest of the symmetry code is in modules named
after what they hold, whose public names are re-exported here: :mod:`gme_wannier.irreducible`
(the operations on k and the irreducible k-points of a mesh), :mod:`gme_wannier.tensorform`
(allowed form of rank-2 tensors, group average) and :mod:`gme_wannier.io.structure` (structure
files).
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import spglib

from .io.errors import GMEInputError
from .io.structure import StructureFileError, structure_from_file
from .tensorform import AllowedForm, allowed_form, symmetrize_tensor, symmetry_breaking

__all__ = [
    # defined here
    "SymmetryError", "CrystalSymmetry", "find_symmetry", "BAND_SYMMETRY_THRESHOLD",
    "check_band_symmetry",
    # re-exported
    "StructureFileError", "structure_from_file",  # io/structure.py
    "AllowedForm", "allowed_form", "symmetrize_tensor", "symmetry_breaking",  # tensorform.py
    "kspace_operations", "IrreducibleKpoints", "irreducible_kpoints",  # irreducible.py
    "irreducible_points_lowmem",
]

# gme_wannier.irreducible builds on this module (CrystalSymmetry, the spglib call), so its names
# are re-exported on first use (PEP 562, __getattr__ below) rather than imported here, which would
# be circular; the import is written out for readers and static checkers (pyflakes, mypy).
if TYPE_CHECKING:
    from .irreducible import IrreducibleKpoints, irreducible_kpoints, irreducible_points_lowmem, kspace_operations

_IRREDUCIBLE_NAMES = ("kspace_operations", "IrreducibleKpoints", "irreducible_kpoints",
                      "irreducible_points_lowmem")


def __getattr__(name: str) -> Any:
    """The names of :mod:`gme_wannier.irreducible` (``_IRREDUCIBLE_NAMES``), where they are defined."""
    if name in _IRREDUCIBLE_NAMES:
        from . import irreducible

        return getattr(irreducible, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SymmetryError(GMEInputError):
    """spglib failed, the symmetry operations found are inconsistent, or the Hamiltonian does
    not have the symmetry of the structure."""


# --------------------------------------------------------------------------------------
# the symmetry object
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CrystalSymmetry:
    """Point-group symmetry of a crystal, as needed for the GME tensor.

    Attributes
    ----------
    international : str
        Short international (Hermann-Mauguin) symbol of the space group; for a magnetic
        structure, of the family space group (spatial parts of all operations).
    number : int
        Space-group number (1-230), of the family space group when magnetic.
    pointgroup : str
        Short international symbol of the point group of the spatial parts, e.g.
        ``'32'``, ``'-43m'``, ``'432'``.
    rotations_red : int ndarray, shape (nsym, 3, 3)
        Distinct spatial parts ``W`` of the operations, acting on reduced real-space
        coordinates (spglib convention); space-group translations dropped. The identity
        is first.
    rotations_cart : float ndarray, shape (nsym, 3, 3)
        The same operations in Cartesian coordinates, ``R = A^T W A^-T``.
    real_lattice : float ndarray, shape (3, 3)
        Rows ``a1, a2, a3`` in Angstrom.
    time_reversal : bool
        Whether time reversal alone (``k -> -k``, ``F(-k) = F(k)``) may be used: True for
        a non-magnetic crystal.
    antiunitary : bool ndarray, shape (nsym,)
        ``antiunitary[g]`` is True when the spatial operation ``g`` is a symmetry only
        combined with time reversal (primed operation ``R'``; maps ``k -> -R k``). All
        False for a non-magnetic crystal.
    magnetic : bool
        Whether magnetic moments were part of the symmetry search.
    magnetic_info : dict
        For a magnetic structure: spglib's ``uni_number``, ``bns_number``, ``msg_type`` and
        the number of operations (with translations, primed and unprimed) of the magnetic
        space group found. Empty otherwise.
    symprec : float
        Tolerance used (Angstrom).
    """

    international: str
    number: int
    pointgroup: str
    rotations_red: np.ndarray
    rotations_cart: np.ndarray
    real_lattice: np.ndarray
    time_reversal: bool = True
    antiunitary: np.ndarray | None = None
    magnetic: bool = False
    magnetic_info: dict = field(default_factory=dict)
    symprec: float = 1e-5

    def __post_init__(self) -> None:
        rot = np.asarray(self.rotations_red, dtype=int)
        if rot.ndim != 3 or rot.shape[1:] != (3, 3) or len(rot) == 0:
            raise ValueError("rotations_red must have shape (nsym, 3, 3), nsym >= 1")
        anti = (np.zeros(len(rot), dtype=bool) if self.antiunitary is None
                else np.asarray(self.antiunitary, dtype=bool))
        if anti.shape != (len(rot),):
            raise ValueError("antiunitary must have shape (nsym,)")
        for name, value in (("rotations_red", rot),
                            ("rotations_cart", np.asarray(self.rotations_cart, dtype=float)),
                            ("real_lattice", np.asarray(self.real_lattice, dtype=float)),
                            ("antiunitary", anti)):
            value = value.copy()
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @property
    def order(self) -> int:
        """Number of distinct point operations ``|G|``."""
        return len(self.rotations_red)

    @property
    def determinants(self) -> np.ndarray:
        """int ndarray, shape (nsym,): ``det(W) = +-1`` of each operation."""
        return np.rint(np.linalg.det(self.rotations_red)).astype(int)

    @property
    def centrosymmetric(self) -> bool:
        """Whether the inversion (spatial part ``-1``, primed or not) is in the group."""
        return bool(np.any(np.all(self.rotations_red == -np.eye(3, dtype=int), axis=(1, 2))))

    @property
    def chiral(self) -> bool:
        """Whether all operations are proper rotations (Sohncke group)."""
        return bool(np.all(self.determinants == 1))

    @property
    def polar(self) -> bool:
        """Whether a polar vector is left invariant by every operation (polar point group)."""
        proj = self.rotations_cart.mean(axis=0)
        return bool(np.linalg.matrix_rank(proj, tol=1e-6) > 0)

    @property
    def gyrotropic(self) -> bool:
        """Whether symmetry allows a non-zero GME tensor (axial rank-2 tensor)."""
        return allowed_form(self).n_independent > 0

    @property
    def recip_lattice(self) -> np.ndarray:
        """float ndarray, shape (3, 3): rows ``b_i`` (1/Angstrom), ``a_i . b_j = 2 pi delta_ij``."""
        return 2.0 * np.pi * np.linalg.inv(self.real_lattice).T

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable description of the symmetry and the allowed form of alpha."""
        form = allowed_form(self)
        out: dict[str, Any] = {
            "international": self.international,
            "number": int(self.number),
            "pointgroup": self.pointgroup,
            "order": self.order,
            "centrosymmetric": self.centrosymmetric,
            "chiral": self.chiral,
            "polar": self.polar,
            "gyrotropic": form.n_independent > 0,
            "time_reversal": bool(self.time_reversal),
            "magnetic": bool(self.magnetic),
            "n_antiunitary": int(np.count_nonzero(self.antiunitary)),
            "symprec": float(self.symprec),
            "allowed_form": form.to_dict(),
        }
        if self.magnetic:
            out["magnetic_info"] = {k: (v.item() if isinstance(v, np.generic) else v)
                                    for k, v in self.magnetic_info.items()}
        return out


# --------------------------------------------------------------------------------------
# spglib interface
# --------------------------------------------------------------------------------------


def _call_spglib(func, *args, source: str, **kwargs):
    """Call a spglib function, turning every failure into a :class:`SymmetryError`.

    spglib 2.7-2.x warns (DeprecationWarning) about its old error handling unless errors
    are requested as exceptions; ask for them where the function allows it.
    """
    try:
        accepts_throw = "_throw" in inspect.signature(func).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        accepts_throw = False
    if accepts_throw:
        kwargs["_throw"] = True
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"spglib")
            warnings.filterwarnings("ignore", message=r".*OLD_ERROR_HANDLING.*")
            result = func(*args, **kwargs)
    except Exception as exc:  # spglib.error.SpglibError and its C++ subclasses
        raise SymmetryError(
            f"spglib could not determine the space group of {source}: {exc}") from exc
    if result is None:
        raise SymmetryError(
            f"spglib could not determine the space group of {source}: spglib returned no "
            "result (atoms too close, inconsistent input, or symprec too large/small)")
    return result


def _cart_rotations(rot_red: np.ndarray, lattice: np.ndarray, source: str) -> np.ndarray:
    """``R = A^T W A^-T`` for rows-as-vectors lattice ``A``; checks orthogonality."""
    a_t = lattice.T
    rot_cart = a_t @ rot_red @ np.linalg.inv(a_t)
    err = np.abs(np.einsum("gij,gkj->gik", rot_cart, rot_cart) - np.eye(3)).max()
    if err > 1e-3:
        raise SymmetryError(
            f"symmetry operations found for {source} are not orthogonal in Cartesian "
            f"coordinates (max deviation {err:.2e}); try a smaller symprec")
    return rot_cart


def _unique_rotations(rotations: np.ndarray, flags: np.ndarray) -> tuple[np.ndarray, list[set]]:
    """Distinct rotations (identity first) and, for each, the set of time-reversal flags."""
    rotations = np.asarray(rotations, dtype=int).reshape(-1, 3, 3)
    keys: dict[bytes, int] = {}
    unique: list[np.ndarray] = []
    tr_sets: list[set] = []
    ident = np.eye(3, dtype=int)
    order = sorted(range(len(rotations)), key=lambda g: not np.array_equal(rotations[g], ident))
    for g in order:
        key = rotations[g].tobytes()
        if key not in keys:
            keys[key] = len(unique)
            unique.append(rotations[g])
            tr_sets.append(set())
        tr_sets[keys[key]].add(bool(flags[g]))
    return np.array(unique), tr_sets


def _pointgroup_symbol(rot_red: np.ndarray, source: str) -> str:
    symbol = _call_spglib(spglib.get_pointgroup, np.ascontiguousarray(rot_red, dtype="intc"),
                          source=source)[0]
    return str(symbol).strip()


# 70 lines only through its docstring (39 lines for 7 parameters): the body is 22 lines.
def find_symmetry(
    atoms,
    symprec: float = 1e-5,
    magmoms: np.ndarray | None = None,
    *,
    angle_tolerance: float = -1.0,
    collinear_axis: tuple[float, float, float] = (0.0, 0.0, 1.0),
    spin_orbit: bool = True,
    source: str | None = None,
) -> CrystalSymmetry:
    """Point-group symmetry of a structure from spglib.

    Parameters
    ----------
    atoms : ase.Atoms
        The crystal; ``atoms.cell`` rows are the lattice vectors (Angstrom). Species are
        distinguished by ``atoms.numbers``.
    symprec : float, optional
        spglib distance tolerance, Angstrom.
    magmoms : float ndarray, shape (nat,) or (nat, 3), optional
        Magnetic moments (any unit). ``(nat, 3)``: non-collinear Cartesian vectors
        (axial). ``(nat,)``: collinear moments; with ``spin_orbit=True`` they are taken
        along ``collinear_axis`` (the spin direction matters with SOC), with
        ``spin_orbit=False`` spglib's scalar (spin-only) search is used. ``None``:
        non-magnetic, full time reversal.
    angle_tolerance : float, optional
        spglib angle tolerance in degrees (negative: spglib's default).
    collinear_axis : 3 floats, optional
        Cartesian direction of collinear moments when ``spin_orbit`` is True.
    spin_orbit : bool, optional
        Only matters for collinear ``magmoms``; see above. Without SOC each spin channel is
        a real spinless Hamiltonian, so ``F(-k) = F(k)`` holds and ``time_reversal`` is True.
    source : str, optional
        Name of the structure used in error messages (default: the chemical formula).

    Returns
    -------
    CrystalSymmetry

    Raises
    ------
    SymmetryError
        If spglib fails or returns operations that are not orthogonal.
    GMEInputError
        If ``symprec`` is not a positive number, or ``magmoms`` has the wrong shape or
        non-finite values.
    """
    if source is None:
        try:
            source = f"structure {atoms.get_chemical_formula()}"
        except Exception:  # pragma: no cover
            source = "the structure"
    if not (np.isfinite(symprec) and symprec > 0):
        raise GMEInputError(f"--symprec: the spglib tolerance must be a positive distance in Angstrom "
                            f"(e.g. 1e-5), got {symprec}")
    cell = _spglib_cell(atoms, source)
    if magmoms is None:
        group = _nonmagnetic_group(cell, symprec, angle_tolerance, source)
    else:
        moments, spin_only = _spglib_moments(magmoms, len(atoms), collinear_axis, spin_orbit, source)
        group = _magnetic_group(cell, moments, spin_only, symprec, angle_tolerance, source)

    lattice = cell[0]
    rot_cart = _cart_rotations(group.rotations_red, lattice, source)
    pointgroup = _pointgroup_symbol(group.rotations_red, source)
    return CrystalSymmetry(
        international=group.international, number=group.number, pointgroup=pointgroup,
        rotations_red=group.rotations_red, rotations_cart=rot_cart, real_lattice=lattice,
        time_reversal=group.time_reversal, antiunitary=group.antiunitary, magnetic=group.magnetic,
        magnetic_info=group.magnetic_info, symprec=float(symprec))


class _Group(NamedTuple):
    """The operations spglib found, before their Cartesian form and point-group symbol."""

    rotations_red: np.ndarray  # int (nsym, 3, 3): distinct spatial parts, identity first
    time_reversal: bool
    antiunitary: np.ndarray  # bool (nsym,)
    international: str
    number: int
    magnetic: bool
    magnetic_info: dict


def _spglib_cell(atoms, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lattice, positions, numbers)`` of ``atoms`` for spglib; refuses cells it would crash on."""
    lattice = np.array(atoms.cell[:], dtype=float)
    if abs(np.linalg.det(lattice)) < 1e-8:
        raise SymmetryError(f"spglib could not determine the space group of {source}: "
                            "the cell has zero volume (is it periodic in 3D?)")
    positions = np.array(atoms.get_scaled_positions(wrap=True), dtype=float)
    if not (np.all(np.isfinite(positions)) and np.all(np.isfinite(lattice))):
        raise SymmetryError(f"{source}: the cell and atomic positions must be finite numbers (spglib would crash)")
    numbers = np.array(atoms.numbers, dtype="intc")
    return (lattice, positions, numbers)


def _nonmagnetic_group(cell: tuple, symprec: float, angle_tolerance: float, source: str) -> _Group:
    """The space group of a structure without moments: full time reversal, no primed operation."""
    dataset = _call_spglib(spglib.get_symmetry_dataset, cell, symprec=symprec,
                           angle_tolerance=angle_tolerance, source=source)
    rot_red, _ = _unique_rotations(dataset.rotations, np.zeros(len(dataset.rotations), dtype=bool))
    return _Group(rotations_red=rot_red, time_reversal=True,
                  antiunitary=np.zeros(len(rot_red), dtype=bool),
                  international=str(dataset.international), number=int(dataset.number),
                  magnetic=False, magnetic_info={})


def _spglib_moments(magmoms, nat: int, collinear_axis, spin_orbit: bool,
                    source: str) -> tuple[np.ndarray, bool]:
    """Moments as spglib takes them (float (nat,) for a spin-only search, else (nat, 3) axial)
    and whether the search is spin-only; refuses a wrong shape or non-finite moments."""
    mm = np.asarray(magmoms, dtype=float)
    if mm.shape not in ((nat,), (nat, 3)):
        raise GMEInputError(f"--magmoms: {source} has {nat} atoms, so give {nat} "
                            f"(collinear) or {3 * nat} (non-collinear) numbers; got shape {mm.shape}")
    if not np.all(np.isfinite(mm)):
        raise GMEInputError("--magmoms: the moments must be finite numbers")
    spin_only = mm.ndim == 1 and not spin_orbit
    if mm.ndim == 1 and spin_orbit:
        axis = np.asarray(collinear_axis, dtype=float)
        mm = np.outer(mm, axis / np.linalg.norm(axis))
    return mm, spin_only


def _magnetic_group(cell: tuple, mm: np.ndarray, spin_only: bool, symprec: float,
                    angle_tolerance: float, source: str) -> _Group:
    """The magnetic space group (spatial parts, primed or not) of a structure with moments."""
    lattice, positions, numbers = cell
    is_axial = None if spin_only else True
    mcell = (lattice, positions, numbers, mm)
    msym = _call_spglib(spglib.get_magnetic_symmetry, mcell, symprec=symprec,
                        angle_tolerance=angle_tolerance, is_axial=is_axial, source=source)
    rot_all = np.asarray(msym["rotations"], dtype=int)
    tr_all = np.asarray(msym["time_reversals"], dtype=bool)
    rot_red, tr_sets = _unique_rotations(rot_all, tr_all)
    if spin_only:
        # spin-only group: "primed" means moments flip, i.e. a spin rotation, and each
        # spin channel separately obeys spinless time reversal.
        time_reversal = True
        antiunitary = np.zeros(len(rot_red), dtype=bool)
    else:
        time_reversal = bool(np.any(np.all(rot_all == np.eye(3, dtype=int), axis=(1, 2))
                                    & tr_all))
        antiunitary = np.array([s == {True} for s in tr_sets], dtype=bool)
        if time_reversal:
            antiunitary[:] = False
    mdata = _call_spglib(spglib.get_magnetic_symmetry_dataset, mcell, is_axial=is_axial,
                         symprec=symprec, angle_tolerance=angle_tolerance, source=source)
    magnetic_info = {
        "uni_number": int(mdata.uni_number),
        "msg_type": int(mdata.msg_type),
        "n_operations": int(len(rot_all)),
        "n_time_reversed": int(np.count_nonzero(tr_all)),
        "spin_only": bool(spin_only),
    }
    msg_type = _call_spglib(spglib.get_magnetic_spacegroup_type, int(mdata.uni_number),
                            source=source)
    magnetic_info["bns_number"] = str(msg_type.bns_number)
    # family space group = ordinary space group of the spatial parts
    sg_type = _call_spglib(spglib.get_spacegroup_type, int(mdata.hall_number),
                           source=source)
    return _Group(rotations_red=rot_red, time_reversal=time_reversal, antiunitary=antiunitary,
                  international=str(sg_type.international_short), number=int(sg_type.number),
                  magnetic=True, magnetic_info=magnetic_info)


# --------------------------------------------------------------------------------------
# does the Hamiltonian have the structure's symmetry?
# --------------------------------------------------------------------------------------

def no_structure_message(name: str) -> str:
    """The one line for a symmetry run on a model with no structure (calculate and nodes)."""
    return (f"{name}: no structure is known (no atoms_frac/atoms_cart block in the .win, no --structure), so "
            "the symmetry cannot be found: add the atoms to the .win, give --structure FILE, or use "
            "--symmetry off (symmetry='off' in Python)")


BAND_SYMMETRY_THRESHOLD = 0.05
"""eV. Largest band symmetry error (max |E_n(g k) - E_n(k)| over the point operations and time reversal, random k
and the bands below max(E_F) + 1 eV) accepted with ``symmetry="auto"``. Real Wannier models
break their crystal symmetry by 3.5e-6 eV (Te), 4.5 meV (GaAs), 16 meV (SrSi2) and 28 meV (Te
with SOC from ``_wsvec.dat``); a structure that is not the model's (a one-atom cell for Te,
an analytic model with a placeholder structure, centres of another system) gives 0.1-1 eV."""


def check_band_symmetry(model, sym: CrystalSymmetry, fermi_energies, threshold: float = BAND_SYMMETRY_THRESHOLD,
                        source: str = "") -> float:
    """Refuse the symmetry reduction when the Hamiltonian does not have the structure's symmetry.

    With ``symmetry="auto"`` the k sum is restricted to irreducible points and projected on the
    allowed form of the point group: if the bands do not have that symmetry the result is
    silently wrong (often exactly 0). Called before the k loop.

    Parameters
    ----------
    model : TBModel
        The Wannier Hamiltonian (only ``H_R`` is interpolated).
    sym : CrystalSymmetry
        Symmetry of the structure used for the reduction.
    fermi_energies : sequence of float, eV
        The Fermi levels of the run; bands below ``max(fermi_energies) + 1 eV`` are compared.
    threshold : float, optional
        Largest error accepted, eV (default :data:`BAND_SYMMETRY_THRESHOLD`).
    source : str, optional
        Name of the model in the error message (default: ``model.name``).

    Returns
    -------
    float
        The band symmetry error ``max |E_n(g k) - E_n(k)|``, eV, over the k-space operations of
        the reduction (rotations, time reversal k -> -k, primed operations k -> -R k).

    Raises
    ------
    SymmetryError
        When the error exceeds ``threshold``.
    """
    from .calculate import band_symmetry_error

    err = band_symmetry_error(model, sym, emax=max(fermi_energies) + 1.0)
    if not err <= threshold:
        name = source or getattr(model, "name", "the model")
        raise SymmetryError(
            f"--symmetry auto: the Hamiltonian of {name} breaks the symmetry of its structure "
            f"({sym.international}, point group {sym.pointgroup}{', time reversal' if sym.time_reversal else ''}) "
            f"by {err:.3g} eV (max |E_n(gk) - E_n(k)|, limit {threshold:g} eV), so the symmetry reduction "
            "would give a wrong alpha: give the structure of this model (.win atoms or --structure) and, "
            "for a magnetic one, its --magmoms, or run with --symmetry off")
    return err
