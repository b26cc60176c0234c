"""Crystal symmetry for the GME tensor: spglib in, point operations and allowed tensor form out.

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
"""

from __future__ import annotations

import inspect
import os
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np
import spglib

from .io.errors import GMEInputError, check_input_file
from .kmesh import check_mesh, check_shift, mesh_index

__all__ = [
    "SymmetryError",
    "StructureFileError",
    "CrystalSymmetry",
    "AllowedForm",
    "IrreducibleKpoints",
    "find_symmetry",
    "structure_from_file",
    "kspace_operations",
    "irreducible_kpoints",
    "symmetrize_tensor",
    "allowed_form",
    "symmetry_breaking",
]


class SymmetryError(GMEInputError):
    """spglib failed, the symmetry operations found are inconsistent, or the Hamiltonian does
    not have the symmetry of the structure."""


class StructureFileError(GMEInputError):
    """A structure file could not be read."""


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
    """
    if source is None:
        try:
            source = f"structure {atoms.get_chemical_formula()}"
        except Exception:  # pragma: no cover
            source = "the structure"
    if not (np.isfinite(symprec) and symprec > 0):
        raise GMEInputError(f"--symprec: the spglib tolerance must be a positive distance in Angstrom "
                            f"(e.g. 1e-5), got {symprec}")
    lattice = np.array(atoms.cell[:], dtype=float)
    if abs(np.linalg.det(lattice)) < 1e-8:
        raise SymmetryError(f"spglib could not determine the space group of {source}: "
                            "the cell has zero volume (is it periodic in 3D?)")
    positions = np.array(atoms.get_scaled_positions(wrap=True), dtype=float)
    if not (np.all(np.isfinite(positions)) and np.all(np.isfinite(lattice))):
        raise SymmetryError(f"{source}: the cell and atomic positions must be finite numbers (spglib would crash)")
    numbers = np.array(atoms.numbers, dtype="intc")
    cell = (lattice, positions, numbers)

    dataset = None
    magnetic_info: dict[str, Any] = {}
    if magmoms is None:
        dataset = _call_spglib(spglib.get_symmetry_dataset, cell, symprec=symprec,
                               angle_tolerance=angle_tolerance, source=source)
        rot_red, tr_sets = _unique_rotations(dataset.rotations,
                                             np.zeros(len(dataset.rotations), dtype=bool))
        time_reversal = True
        antiunitary = np.zeros(len(rot_red), dtype=bool)
        international, number = str(dataset.international), int(dataset.number)
        magnetic = False
    else:
        mm = np.asarray(magmoms, dtype=float)
        if mm.shape not in ((len(atoms),), (len(atoms), 3)):
            raise GMEInputError(f"--magmoms: {source} has {len(atoms)} atoms, so give {len(atoms)} "
                                f"(collinear) or {3 * len(atoms)} (non-collinear) numbers; got shape {mm.shape}")
        if not np.all(np.isfinite(mm)):
            raise GMEInputError("--magmoms: the moments must be finite numbers")
        spin_only = mm.ndim == 1 and not spin_orbit
        if mm.ndim == 1 and spin_orbit:
            axis = np.asarray(collinear_axis, dtype=float)
            mm = np.outer(mm, axis / np.linalg.norm(axis))
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
        international, number = str(sg_type.international_short), int(sg_type.number)
        magnetic = True

    rot_cart = _cart_rotations(rot_red, lattice, source)
    pointgroup = _pointgroup_symbol(rot_red, source)
    return CrystalSymmetry(
        international=international, number=number, pointgroup=pointgroup,
        rotations_red=rot_red, rotations_cart=rot_cart, real_lattice=lattice,
        time_reversal=time_reversal, antiunitary=antiunitary, magnetic=magnetic,
        magnetic_info=magnetic_info, symprec=float(symprec))


def structure_from_file(path: str | os.PathLike, format: str | None = None):
    """Read a crystal structure with ``ase.io.read`` (POSCAR, CIF, QE input, ...).

    Parameters
    ----------
    path : str or path-like
    format : str, optional
        ASE format name; guessed from the file name when omitted.

    Returns
    -------
    ase.Atoms
        The first image in the file.

    Raises
    ------
    StructureFileError
        If the file is missing, cannot be parsed, or holds no 3D-periodic cell.
    """
    import ase.io

    path = os.fspath(path)
    if not os.path.lexists(path):
        raise StructureFileError(f"{path}: structure file does not exist")
    try:
        check_input_file(path)
    except GMEInputError as exc:
        raise StructureFileError(str(exc)) from None
    try:
        atoms = ase.io.read(path, index=0, format=format)
    except Exception as exc:  # noqa: BLE001 - any parser failure is a bad file
        hint = "" if format else " (name it .cif, POSCAR, .pwi, ... so that the format is recognised)"
        what = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise StructureFileError(f"{path}: could not read a structure{hint}: {what}") from None
    if not all(atoms.pbc) or abs(atoms.cell.volume) < 1e-8:
        raise StructureFileError(f"{path}: the structure has no 3D periodic cell")
    if len(atoms) == 0 or not np.all(np.isfinite(atoms.positions)):
        raise StructureFileError(f"{path}: the structure has no atoms or non-finite positions")
    return atoms


# --------------------------------------------------------------------------------------
# k space
# --------------------------------------------------------------------------------------


def kspace_operations(sym: CrystalSymmetry) -> tuple[np.ndarray, np.ndarray]:
    """The operations relating the GME integrand at different k.

    Each pair ``(K_g, R_g)`` means ``F(K_g k) = det(R_g) R_g F(k) R_g^T``, with ``K_g``
    acting on reduced k (column vector) and ``R_g`` the Cartesian spatial part.
    Unitary operation ``W``: ``K = W^-T``; primed: ``K = -W^-T``; with time reversal each
    ``W`` appears with both signs.

    Returns
    -------
    kops_red : int ndarray, shape (nk, 3, 3)
        ``K_g`` on reduced k coordinates.
    rots_cart : float ndarray, shape (nk, 3, 3)
        The matching Cartesian ``R_g`` (to use in ``det(R) R T R^T``).
    """
    w_inv_t = np.rint(np.linalg.inv(sym.rotations_red).transpose(0, 2, 1)).astype(int)
    kops, rots = [], []
    for g in range(sym.order):
        signs = (1, -1) if sym.time_reversal else ((-1,) if sym.antiunitary[g] else (1,))
        for s in signs:
            kops.append(s * w_inv_t[g])
            rots.append(sym.rotations_cart[g])
    return np.array(kops), np.array(rots)


def _mesh_permutation(kop: np.ndarray, mesh: np.ndarray, shift: np.ndarray,
                      addr2: np.ndarray) -> np.ndarray | None:
    """Index of ``K k`` for every point of the mesh, or None if K does not preserve it.

    ``addr2`` (N, 3) int are doubled addresses ``2 i + shift``, so ``k = addr2 / (2 N)``.
    In doubled addresses ``K`` acts as ``M_ab = K_ab N_a / N_b``; the mesh is mapped onto
    itself iff ``M`` is integer and ``M shift = shift (mod 2)``.
    """
    m_float = kop * mesh[:, None] / mesh[None, :]
    m_int = np.rint(m_float).astype(np.int64)
    if np.abs(m_float - m_int).max() > 1e-9:
        return None
    if np.any(np.mod(m_int @ shift - shift, 2) != 0):
        return None
    new2 = addr2 @ m_int.T
    return mesh_index((new2 - shift) // 2, mesh)


class IrreducibleKpoints(NamedTuple):
    """Irreducible points of a uniform mesh.

    Attributes
    ----------
    k_red : float ndarray, shape (nirr, 3)
        Reduced coordinates of the representatives, in [0, 1); each is the first point of
        its star in :func:`gme_wannier.kmesh.uniform_mesh` order.
    weights : float ndarray, shape (nirr,)
        Star size / N; sums to 1.
    full_to_irr : int ndarray, shape (N,)
        For every point of ``uniform_mesh(mesh, shift)``, the row of ``k_red`` holding its
        representative.
    irr_index : int ndarray, shape (nirr,)
        Row of ``uniform_mesh(mesh, shift)`` of each representative.
    n_ops : int
        Number of distinct k-space operations used (time reversal counted). Operations that
        do not map the mesh onto itself (e.g. a 3-fold axis with an anisotropic mesh) are
        left out; the subgroup that does is used.
    n_ops_dropped : int
        Number of k-space operations left out for that reason.
    """

    k_red: np.ndarray
    weights: np.ndarray
    full_to_irr: np.ndarray
    irr_index: np.ndarray
    n_ops: int
    n_ops_dropped: int


def irreducible_kpoints(mesh, sym: CrystalSymmetry, shift=(0, 0, 0)) -> IrreducibleKpoints:
    """Irreducible points of a uniform mesh and their weights (spglib).

    With ``S_irr = symmetrize_tensor(sum_i weights[i] * F(k_red[i]), sym)``, ``S_irr`` equals
    ``symmetrize_tensor(mean of F over the full mesh, sym)``, which is the plain full-mesh
    mean when ``F`` obeys the symmetry exactly (docs/theory.md section 8).

    Parameters
    ----------
    mesh : sequence of 3 int
    sym : CrystalSymmetry
        Unitary operations map ``k -> R k``, primed ones ``k -> -R k``; with
        ``sym.time_reversal`` also ``k -> -k`` (see :func:`kspace_operations`).
    shift : sequence of 3 int, optional
        0/1 per axis (half-step shift), as in :func:`gme_wannier.kmesh.uniform_mesh`.

    Returns
    -------
    IrreducibleKpoints
        Named tuple ``(k_red, weights, full_to_irr, irr_index, n_ops, n_ops_dropped)``.

    Raises
    ------
    SymmetryError
        If spglib fails or its mapping is not the orbit partition of the operations.
    """
    n = np.array(check_mesh(mesh), dtype=np.int64)
    s = np.array(check_shift(shift), dtype=np.int64)
    npts = int(np.prod(n))
    addr2 = 2 * np.indices(tuple(n)).reshape(3, -1).T.astype(np.int64) + s

    kops, _ = kspace_operations(sym)
    kops = np.unique(kops, axis=0)
    perms, kept = [], []
    for kop in kops:
        perm = _mesh_permutation(kop, n, s, addr2)
        if perm is not None:
            perms.append(perm)
            kept.append(kop)
    n_dropped = len(kops) - len(kept)

    # spglib takes real-space rotations W and maps k with W^T; the set {W^T} of a group
    # equals {W^-T}, so pass W = K^-T (with the sign of K for primed / time-reversed).
    real_space = np.rint(np.linalg.inv(np.array(kept)).transpose(0, 2, 1)).astype("intc")
    mapping, grid = _call_spglib(
        spglib.get_stabilized_reciprocal_mesh, np.array(n, dtype="intc"),
        np.ascontiguousarray(real_space), is_shift=np.array(s, dtype="intc"),
        is_time_reversal=False, source="the k mesh")
    # spglib index -> our C-order index
    ours = mesh_index(np.asarray(grid, dtype=np.int64), n)
    rep = np.empty(npts, dtype=np.int64)
    rep[ours] = ours[np.asarray(mapping, dtype=np.int64)]
    # spglib's representative of a star may be any member: use the first in our order
    first = np.full(npts, npts, dtype=np.int64)
    np.minimum.at(first, rep, np.arange(npts))
    rep = first[rep]

    _check_orbits(rep, perms, npts)
    irr_index, full_to_irr, counts = np.unique(rep, return_inverse=True, return_counts=True)
    k_all = (addr2 / (2.0 * n))
    return IrreducibleKpoints(
        k_red=k_all[irr_index], weights=counts / float(npts),
        full_to_irr=full_to_irr.reshape(-1), irr_index=irr_index,
        n_ops=len(kept), n_ops_dropped=n_dropped)


def irreducible_points_lowmem(mesh, sym: CrystalSymmetry, shift=(0, 0, 0),
                              ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The representatives and weights of :func:`irreducible_kpoints`, in memory bounded by
    blocks of about 2^22 / n_ops mesh points (plus the irreducible points themselves) instead of
    the whole mesh.

    A point is kept iff its C-order flat index is the smallest of its images under the
    operations that preserve the mesh (the same representative as :func:`irreducible_kpoints`),
    its weight is the size of its star over N. Used for meshes too large for spglib's
    whole-mesh mapping (1.1 GB at 128^3, 8 GB at 256^3).

    Returns ``k_red`` float (nirr, 3), ``weights`` float (nirr,), ``n_ops``, ``n_ops_dropped``.
    """
    n = np.array(check_mesh(mesh), dtype=np.int64)
    s = np.array(check_shift(shift), dtype=np.int64)
    kops = np.unique(kspace_operations(sym)[0], axis=0)
    mats = []
    for kop in kops:
        m_float = kop * n[:, None] / n[None, :]
        m_int = np.rint(m_float).astype(np.int64)
        if np.abs(m_float - m_int).max() < 1e-9 and not np.any(np.mod(m_int @ s - s, 2)):
            mats.append(m_int)
    mats = np.array(mats)  # (nops, 3, 3) on doubled addresses
    plane = 2 * np.indices((1, int(n[1]), int(n[2]))).reshape(3, -1).T.astype(np.int64) + s
    k_out, w_out = [], []
    npts = float(np.prod(n))
    step = max(1, (1 << 22) // max(len(mats), 1))  # points per block: (nops x step) int64 ~ 32 MB
    for i1 in range(int(n[0])):
        for j0 in range(0, len(plane), step):
            addr2 = plane[j0:j0 + step] + np.array([2 * i1, 0, 0])
            own = mesh_index((addr2 - s) // 2, n)
            imgs = mesh_index((np.einsum("oab,pb->opa", mats, addr2) - s) // 2, n)  # (nops, npts)
            keep = imgs.min(axis=0) == own
            if np.any(keep):
                n_stab = (imgs[:, keep] == own[keep]).sum(axis=0)
                k_out.append(addr2[keep] / (2.0 * n))
                w_out.append(len(mats) / n_stab / npts)
    return np.concatenate(k_out), np.concatenate(w_out), len(mats), len(kops) - len(mats)


def _check_orbits(rep: np.ndarray, perms: list[np.ndarray], npts: int) -> None:
    """Check that ``rep`` labels exactly the orbits of the group given by ``perms``."""
    n_stab = np.zeros(npts, dtype=np.int64)
    arange = np.arange(npts)
    for perm in perms:
        if np.any(rep[perm] != rep):
            raise SymmetryError("spglib's irreducible k mapping is not invariant under the "
                                "symmetry operations")
        n_stab += perm == arange
    star = np.bincount(rep, minlength=npts)[rep]
    if np.any(star * n_stab != len(perms)):
        raise SymmetryError("spglib's irreducible k mapping merges points that are not "
                            "related by symmetry")


# --------------------------------------------------------------------------------------
# tensors
# --------------------------------------------------------------------------------------


def symmetrize_tensor(T: np.ndarray, sym: CrystalSymmetry) -> np.ndarray:
    """Group average of an axial, time-reversal-even rank-2 tensor.

    Parameters
    ----------
    T : float ndarray, shape (..., 3, 3)
        Cartesian tensor(s); the last two axes are ``(i, j)``.
    sym : CrystalSymmetry

    Returns
    -------
    float ndarray, shape (..., 3, 3)
        ``(1/|G|) sum_g det(R_g) R_g T R_g^T`` over the spatial parts of all operations
        (primed ones included: time reversal leaves the tensor unchanged).
    """
    T = np.asarray(T)
    if T.shape[-2:] != (3, 3):
        raise ValueError(f"tensor must have shape (..., 3, 3), got {T.shape}")
    R = sym.rotations_cart
    dets = np.linalg.det(R)
    return np.einsum("g,gia,...ab,gjb->...ij", dets, R, T, R, optimize=True) / len(R)


def symmetry_breaking(T_full: np.ndarray, sym: CrystalSymmetry) -> float:
    """Relative distance of a tensor from its symmetrized image.

    Parameters
    ----------
    T_full : float ndarray, shape (..., 3, 3)
        E.g. a whole-mesh (unsymmetrized) sum, one tensor per Fermi level.

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
        """Orthogonal projection of T (..., 3, 3) on the allowed form: sum_b <b, T> b.

        For orthogonal point operations this is the group average (1/|G|) sum det(R) R T R^T
        (an orthogonal projector on the invariant subspace), with the zeros and equalities of
        Neumann's principle exact rather than exact to the precision of the input lattice."""
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


def allowed_form(sym: CrystalSymmetry, tol: float = 1e-8) -> AllowedForm:
    """Subspace of 3x3 tensors invariant under ``T -> det(R) R T R^T`` for all operations.

    Parameters
    ----------
    sym : CrystalSymmetry
    tol : float, optional
        Threshold below which a component is zero.

    Returns
    -------
    AllowedForm
        Orthonormal basis (from the eigenvectors with eigenvalue 1 of the group-average
        projector on the 9 unit matrices) and a symbolic form built from its reduced row
        echelon form.
    """
    units = np.eye(9).reshape(9, 3, 3)
    proj = symmetrize_tensor(units, sym).reshape(9, 9)  # row m: image of unit matrix m
    proj = 0.5 * (proj + proj.T)  # orthogonal projector (orthogonal representation)
    vals, vecs = np.linalg.eigh(proj)
    basis = vecs[:, vals > 0.5].T  # (n, 9) orthonormal
    n_ind = basis.shape[0]

    # reduced row echelon form with pivots searched in _PIVOT_ORDER
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

    entries = tuple(tuple(_entry_string(full[:, 3 * i + j], names, 1e-6) for j in range(3))
                    for i in range(3))
    zero = [(i, j) for i in range(3) for j in range(3)
            if n_ind == 0 or np.all(np.abs(basis[:, 3 * i + j]) < 1e-6)]
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
    return AllowedForm(basis=basis.reshape(n_ind, 3, 3), n_independent=n_ind, form=form,
                       entries=entries, zero_components=zero)


# --------------------------------------------------------------------------------------
# does the Hamiltonian have the structure's symmetry?
# --------------------------------------------------------------------------------------

BAND_SYMMETRY_THRESHOLD = 0.05
"""eV. Largest band symmetry error (max |E_n(R k) - E_n(k)| over the point operations, random k
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
    sym : CrystalSymmetry  of the structure used for the reduction
    fermi_energies : eV; bands below max(E_F) + 1 eV are compared
    threshold : eV, default :data:`BAND_SYMMETRY_THRESHOLD`

    Returns
    -------
    float  the band symmetry error, eV

    Raises
    ------
    SymmetryError  when the error exceeds ``threshold``
    """
    from .calculate import band_symmetry_error

    err = band_symmetry_error(model, sym, emax=max(fermi_energies) + 1.0)
    if not err <= threshold:
        name = source or getattr(model, "name", "the model")
        raise SymmetryError(
            f"--symmetry auto: the Hamiltonian of {name} breaks the symmetry of its structure "
            f"({sym.international}, point group {sym.pointgroup}) by {err:.3g} eV (max |E_n(Rk) - E_n(k)|, "
            f"limit {threshold:g} eV), so the symmetry reduction would give a wrong alpha: give the "
            "structure of this model (.win atoms or --structure) or run with --symmetry off")
    return err
