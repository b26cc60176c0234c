"""Tests of gme_wannier.symmetry, .irreducible, .tensorform, .io.structure and .kmesh (docs/theory.md
section 8)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import spglib
from ase import Atoms
from ase.build import bulk

from gme_wannier import irreducible, symmetry, tensorform
from gme_wannier.io import structure
from gme_wannier.io.structure import StructureFileError, structure_from_file
from gme_wannier.irreducible import irreducible_kpoints, irreducible_points_lowmem, kspace_operations
from gme_wannier.kmesh import box_mesh, mesh_index, uniform_mesh
from gme_wannier.symmetry import CrystalSymmetry, SymmetryError, find_symmetry
from gme_wannier.tensorform import allowed_form, symmetrize_tensor, symmetry_breaking

DATA = Path(os.environ.get("GME_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def atoms_from_win(path: Path) -> Atoms:
    """Minimal reader of unit_cell_cart (Angstrom or Bohr) and atoms_frac of a .win file."""
    if not path.is_file():
        pytest.skip(f"test data {path} not available")
    lines = [ln.split("!")[0].split("#")[0].strip() for ln in path.read_text().splitlines()]

    def block(name: str) -> list[str]:
        low = [ln.lower() for ln in lines]
        start = low.index(f"begin {name}")
        end = low.index(f"end {name}")
        return [ln for ln in lines[start + 1:end] if ln]

    cell_lines = block("unit_cell_cart")
    scale = 1.0
    if cell_lines[0].lower() in ("ang", "bohr"):
        scale = 0.52917721092 if cell_lines[0].lower() == "bohr" else 1.0
        cell_lines = cell_lines[1:]
    cell = np.array([[float(x) for x in ln.split()] for ln in cell_lines]) * scale
    symbols, frac = [], []
    for ln in block("atoms_frac"):
        parts = ln.split()
        symbols.append(parts[0])
        frac.append([float(x) for x in parts[1:4]])
    return Atoms(symbols, cell=cell, scaled_positions=frac, pbc=True)


@pytest.fixture(scope="module")
def te_atoms() -> Atoms:
    return atoms_from_win(DATA / "Te_tut24" / "Te.win")


@pytest.fixture(scope="module")
def te_sym(te_atoms) -> CrystalSymmetry:
    return find_symmetry(te_atoms)


@pytest.fixture(scope="module")
def srsi2_sym() -> CrystalSymmetry:
    return find_symmetry(atoms_from_win(DATA / "SrSi2" / "srsi2.win"))


def mirror_x(atoms: Atoms) -> Atoms:
    """Mirror image x -> -x of the positions, same cell (the mirror maps the lattice onto
    itself for the hexagonal Te cell with a1 along x)."""
    out = atoms.copy()
    pos = out.get_positions()
    pos[:, 0] *= -1
    out.set_positions(pos)
    out.wrap()
    return out


def mesh_permutation(kop: np.ndarray, mesh, shift=(0, 0, 0)) -> np.ndarray | None:
    """Independent of the package: index of K k for every mesh point (None if off-mesh)."""
    k = uniform_mesh(mesh, shift)
    new = k @ kop.T
    lookup = {tuple(np.rint(np.mod(p, 1.0) * 1e6).astype(int) % 1000000): i
              for i, p in enumerate(k)}
    out = []
    for p in new:
        key = tuple(np.rint(np.mod(p, 1.0) * 1e6).astype(int) % 1000000)
        if key not in lookup:
            return None
        out.append(lookup[key])
    return np.array(out)


def symmetric_field(sym: CrystalSymmetry, mesh, shift=(0, 0, 0), seed: int = 0):
    """A random tensor field F on the mesh obeying F(K k) = det(R) R F(k) R^T for every
    k-space operation (K, R) of `sym` that maps the mesh onto itself."""
    rng = np.random.default_rng(seed)
    npts = int(np.prod(mesh))
    G = rng.normal(size=(npts, 3, 3))
    F = np.zeros_like(G)
    kops, rots = kspace_operations(sym)
    used = 0
    for K, R in zip(kops, rots):
        perm = mesh_permutation(K, mesh, shift)
        if perm is None:
            continue
        F[perm] += np.linalg.det(R) * np.einsum("ia,nab,jb->nij", R, G, R)
        used += 1
    return F / used


# --------------------------------------------------------------------------------------
# space groups, point groups and the allowed form of alpha
# --------------------------------------------------------------------------------------


def test_te_is_p3121_point_group_32(te_sym):
    assert te_sym.number in (152, 154)
    assert te_sym.international in ("P3_121", "P3_221")
    assert te_sym.pointgroup == "32"
    assert te_sym.order == 6
    assert te_sym.chiral and te_sym.gyrotropic
    assert not te_sym.centrosymmetric and not te_sym.polar
    assert te_sym.time_reversal and not te_sym.magnetic


def test_te_allowed_form_diag_aac(te_sym):
    form = allowed_form(te_sym)
    assert form.form == "diag(a,a,c)"
    assert form.n_independent == 2
    assert sorted(form.zero_components) == [(i, j) for i in range(3) for j in range(3) if i != j]
    # the basis is orthonormal and spans diag(1,1,0), diag(0,0,1)
    gram = np.einsum("aij,bij->ab", form.basis, form.basis)
    np.testing.assert_allclose(gram, np.eye(2), atol=1e-12)
    for target in (np.diag([1.0, 1.0, 0.0]), np.diag([0.0, 0.0, 1.0])):
        proj = np.einsum("aij,akl,kl->ij", form.basis, form.basis, target)
        np.testing.assert_allclose(proj, target, atol=1e-12)


def test_cartesian_rotations_are_orthogonal_and_match_reduced(te_sym):
    R, W, A = te_sym.rotations_cart, te_sym.rotations_red, te_sym.real_lattice
    np.testing.assert_allclose(np.einsum("gij,gkj->gik", R, R), np.broadcast_to(np.eye(3), R.shape),
                               atol=1e-8)
    # x_cart = A^T x_red: rotating reduced coordinates with W equals rotating Cartesian with R
    x_red = np.array([0.1, 0.27, 0.33])
    for r, w in zip(R, W):
        np.testing.assert_allclose(r @ (A.T @ x_red), A.T @ (w @ x_red), atol=1e-10)
    np.testing.assert_array_equal(W[0], np.eye(3, dtype=int))


def test_te_enantiomer(te_atoms, te_sym):
    other = find_symmetry(mirror_x(te_atoms))
    assert {te_sym.number, other.number} == {152, 154}
    assert other.pointgroup == "32" and other.chiral
    assert allowed_form(other).form == allowed_form(te_sym).form == "diag(a,a,c)"


def test_srsi2_cubic_chiral(srsi2_sym):
    assert srsi2_sym.number == 212  # P4_332
    assert srsi2_sym.pointgroup == "432"
    assert srsi2_sym.order == 24
    assert srsi2_sym.chiral and srsi2_sym.gyrotropic
    form = allowed_form(srsi2_sym)
    assert form.form == "a*1" and form.n_independent == 1


@pytest.mark.parametrize(
    "atoms, pointgroup, centro",
    [
        (bulk("GaAs", "zincblende", a=5.65), "-43m", False),
        (bulk("NaCl", "rocksalt", a=5.64), "m-3m", True),
    ],
    ids=["GaAs", "NaCl"],
)
def test_non_gyrotropic(atoms, pointgroup, centro):
    sym = find_symmetry(atoms)
    assert sym.pointgroup == pointgroup
    assert sym.centrosymmetric is centro
    assert not sym.chiral
    form = allowed_form(sym)
    assert form.form == "0" and form.n_independent == 0 and len(form.zero_components) == 9
    assert not sym.gyrotropic
    rng = np.random.default_rng(1)
    np.testing.assert_allclose(symmetrize_tensor(rng.normal(size=(3, 3)), sym), 0.0, atol=1e-12)


def _group(generators):
    ops = {np.eye(3, dtype=int).tobytes(): np.eye(3, dtype=int)}
    while True:
        new = {}
        for a in ops.values():
            for b in generators:
                c = a @ b
                if c.tobytes() not in ops:
                    new[c.tobytes()] = c
        if not new:
            return np.array(list(ops.values()))
        ops.update(new)


@pytest.mark.parametrize(
    "generators, expected",
    [
        ([[[0, -1, 0], [1, 0, 0], [0, 0, 1]]], "[[a,d,0],[-d,a,0],[0,0,c]]"),  # 4
        ([[[-1, 0, 0], [0, -1, 0], [0, 0, 1]]], "[[a,d,0],[f,b,0],[0,0,c]]"),  # 2 || z
        ([[[1, 0, 0], [0, 1, 0], [0, 0, 1]]], "[[a,d,e],[f,b,g],[h,i,c]]"),  # 1
        ([[[0, -1, 0], [1, 0, 0], [0, 0, 1]], [[-1, 0, 0], [0, 1, 0], [0, 0, 1]]],
         "[[0,d,0],[-d,0,0],[0,0,0]]"),  # 4mm: only the antisymmetric (polar) part
        ([[[0, 1, 0], [-1, 0, 0], [0, 0, -1]], [[-1, 0, 0], [0, 1, 0], [0, 0, -1]]],
         "diag(a,-a,0)"),  # -42m with 2-fold axes along x, y
    ],
    ids=["4", "2", "1", "4mm", "-42m"],
)
def test_allowed_form_strings(generators, expected):
    rot = _group([np.array(g) for g in generators])
    sym = CrystalSymmetry(international="test", number=1, pointgroup="test",
                          rotations_red=rot, rotations_cart=rot.astype(float),
                          real_lattice=np.eye(3))
    assert allowed_form(sym).form == expected


def test_symmetrize_and_breaking(te_sym):
    rng = np.random.default_rng(2)
    T = rng.normal(size=(5, 3, 3))
    S = symmetrize_tensor(T, te_sym)
    np.testing.assert_allclose(symmetrize_tensor(S, te_sym), S, atol=1e-12)  # projector
    np.testing.assert_allclose(S[:, 0, 1], 0.0, atol=1e-12)
    np.testing.assert_allclose(S[:, 0, 0], S[:, 1, 1], atol=1e-12)
    np.testing.assert_allclose(S[:, 0, 0], 0.5 * (T[:, 0, 0] + T[:, 1, 1]), atol=1e-12)
    np.testing.assert_allclose(S[:, 2, 2], T[:, 2, 2], atol=1e-12)
    assert symmetry_breaking(S, te_sym) < 1e-12
    assert symmetry_breaking(np.zeros((3, 3)), te_sym) == 0.0
    T1 = np.diag([1.0, 1.0, 2.0])
    T1[0, 1] = 0.01
    assert symmetry_breaking(T1, te_sym) == pytest.approx(0.01 / np.linalg.norm(T1))


# --------------------------------------------------------------------------------------
# meshes
# --------------------------------------------------------------------------------------


def test_uniform_mesh_order_and_shift():
    k = uniform_mesh((2, 3, 4))
    assert k.shape == (24, 3)
    np.testing.assert_allclose(k[1], [0, 0, 0.25])
    np.testing.assert_allclose(k[4], [0, 1 / 3, 0])
    np.testing.assert_allclose(k, np.indices((2, 3, 4)).reshape(3, -1).T / [2, 3, 4])
    ks = uniform_mesh((2, 3, 4), shift=(1, 0, 1))
    np.testing.assert_allclose(ks - k, np.broadcast_to([0.25, 0, 0.125], k.shape))
    np.testing.assert_array_equal(mesh_index(np.indices((2, 3, 4)).reshape(3, -1).T, (2, 3, 4)),
                                  np.arange(24))
    with pytest.raises(ValueError):
        uniform_mesh((2, 0, 4))
    with pytest.raises(ValueError):
        uniform_mesh((2, 2, 2), shift=(0, 2, 0))


def test_box_mesh_wannier90_convention():
    # Te_tut24/Te.win: box 0.2 x 0.2 x 0.2 around H = (1/3, 1/3, 1/2)
    center = (0.33333, 0.33333, 0.5)
    b = 0.2 * np.eye(3)
    k, w = box_mesh(center, b[0], b[1], b[2], (50, 50, 50))
    assert k.shape == (125000, 3)
    np.testing.assert_allclose(k[0], np.array(center) - 0.1)
    np.testing.assert_allclose(k[1], np.array(center) - 0.1 + [0, 0, 0.2 / 50])  # i3 fastest
    np.testing.assert_allclose(k[50], np.array(center) - 0.1 + [0, 0.2 / 50, 0])
    np.testing.assert_allclose(k[-1], np.array(center) + 0.1 - 0.2 / 50)
    assert w == pytest.approx(0.008 / 125000)
    # skewed box: k = corner + sum_a (i_a/N_a) b_a, weight |det| / N
    b1, b2, b3 = [0.1, 0.05, 0.0], [0.0, 0.2, 0.0], [0.0, 0.1, -0.3]
    k, w = box_mesh((0.0, 0.0, 0.0), b1, b2, b3, (2, 3, 4))
    corner = -0.5 * (np.array(b1) + b2 + b3)
    np.testing.assert_allclose(k[(1 * 3 + 2) * 4 + 3],
                               corner + 0.5 * np.array(b1) + 2 / 3 * np.array(b2) + 0.75 * np.array(b3))
    assert w == pytest.approx(0.1 * 0.2 * 0.3 / 24)
    # no centre: Wannier90 puts the corner at Gamma; default box = whole BZ = uniform mesh
    k, w = box_mesh(None, mesh=(3, 3, 2))
    np.testing.assert_allclose(k, uniform_mesh((3, 3, 2)))
    assert w == pytest.approx(1 / 18)


# --------------------------------------------------------------------------------------
# irreducible k points
# --------------------------------------------------------------------------------------


def _check_irreducible(sym, mesh, shift=(0, 0, 0), seed=0):
    ir = irreducible_kpoints(mesh, sym, shift)
    npts = int(np.prod(mesh))
    k_full = uniform_mesh(mesh, shift)
    assert ir.weights.sum() == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(ir.k_red, k_full[ir.irr_index])
    np.testing.assert_array_equal(ir.irr_index[ir.full_to_irr][ir.irr_index], ir.irr_index)
    np.testing.assert_allclose(np.bincount(ir.full_to_irr) / npts, ir.weights)
    # the orbits, computed independently: representative = first point of the orbit
    kops = np.unique(kspace_operations(sym)[0], axis=0)
    perms = [p for p in (mesh_permutation(K, mesh, shift) for K in kops) if p is not None]
    assert len(perms) == ir.n_ops
    first = np.min(np.array(perms), axis=0)
    np.testing.assert_array_equal(ir.irr_index[ir.full_to_irr], first)
    # Burnside: number of orbits = average number of fixed points
    n_fixed = sum(int(np.count_nonzero(p == np.arange(npts))) for p in perms)
    assert len(ir.k_red) * len(perms) == n_fixed
    assert len(ir.k_red) >= npts / len(perms)
    # sum over irreducible points, symmetrized, equals the full-mesh mean of a symmetric field
    F = symmetric_field(sym, mesh, shift, seed)
    irr_sum = symmetrize_tensor(np.einsum("n,nij->ij", ir.weights, F[ir.irr_index]), sym)
    np.testing.assert_allclose(irr_sum, symmetrize_tensor(F.mean(axis=0), sym), atol=1e-12)
    if ir.n_ops_dropped == 0:
        np.testing.assert_allclose(irr_sum, F.mean(axis=0), atol=1e-12)
    return ir


def test_irreducible_te_12(te_sym):
    ir = _check_irreducible(te_sym, (12, 12, 12))
    n_ideal = 12**3 / (2 * te_sym.order)  # |G| = 6, times 2 for time reversal
    assert ir.n_ops == 12 and ir.n_ops_dropped == 0
    assert n_ideal <= len(ir.k_red) < 1.5 * n_ideal  # high-symmetry points add a few


def test_irreducible_cubic(srsi2_sym):
    ir = _check_irreducible(srsi2_sym, (8, 8, 8))
    assert ir.n_ops == 48
    assert 8**3 / 48 <= len(ir.k_red) < 4 * 8**3 / 48  # many high-symmetry points on 8^3
    _check_irreducible(srsi2_sym, (6, 6, 6), shift=(1, 1, 1), seed=3)


def test_irreducible_incompatible_mesh_uses_subgroup(srsi2_sym):
    ir = _check_irreducible(srsi2_sym, (4, 4, 6), seed=4)
    assert ir.n_ops_dropped > 0  # 3-fold axes do not map a 4x4x6 mesh onto itself
    assert ir.n_ops + ir.n_ops_dropped == 48


def test_irreducible_half_shift_on_two_axes_keeps_the_operations_that_fix_the_third(srsi2_sym):
    """Shift (1, 1, 0): an operation taking z to x or y does not map the mesh onto itself (the
    half step would land on a whole one), so only the 4/mmm-like subgroup fixing z is used."""
    mesh, shift = (6, 6, 6), (1, 1, 0)
    ir = _check_irreducible(srsi2_sym, mesh, shift=shift, seed=5)
    assert (ir.n_ops, ir.n_ops_dropped) == (16, 32)  # 432 x time reversal: 8 x 2 of 24 x 2 kept
    k, w, n_ops, n_dropped = irreducible_points_lowmem(mesh, srsi2_sym, shift)
    np.testing.assert_array_equal(k, ir.k_red)
    np.testing.assert_allclose(w, ir.weights, rtol=1e-14)
    assert (n_ops, n_dropped) == (16, 32)


def test_irreducible_matches_spglib_count(te_atoms, te_sym):
    mesh = (10, 10, 6)
    with warnings.catch_warnings():  # spglib 2.7+ warns about its old error handling
        warnings.simplefilter("ignore", DeprecationWarning)
        mapping, _ = spglib.get_ir_reciprocal_mesh(
            mesh, (te_atoms.cell[:], te_atoms.get_scaled_positions(), te_atoms.numbers),
            is_shift=[0, 0, 0], is_time_reversal=True)
    assert len(irreducible_kpoints(mesh, te_sym).k_red) == len(np.unique(mapping))


# --------------------------------------------------------------------------------------
# magnetic structures
# --------------------------------------------------------------------------------------


def test_ferromagnetic_bcc_fe():
    fe = bulk("Fe", "bcc", a=2.87)
    nonmag = find_symmetry(fe)
    sym = find_symmetry(fe, magmoms=[2.2])  # collinear, taken along z (spin-orbit)
    ref = spglib.get_magnetic_symmetry(
        (fe.cell[:], fe.get_scaled_positions(), fe.numbers, [[0.0, 0.0, 2.2]]), _throw=True)
    assert sym.magnetic and nonmag.order == 48
    assert sym.magnetic_info["n_operations"] == len(ref["rotations"]) == 16
    assert sym.order == len(np.unique(ref["rotations"], axis=0)) == 16 < nonmag.order
    assert sym.pointgroup == "4/mmm" and sym.number == 139
    assert not sym.time_reversal  # a ferromagnet has no pure time reversal
    assert int(np.count_nonzero(sym.antiunitary)) == int(np.count_nonzero(ref["time_reversals"]))
    assert allowed_form(sym).form == "0"  # centrosymmetric
    ir = _check_irreducible(sym, (8, 8, 8), seed=5)
    assert ir.n_ops == 16


def test_magnetic_te_primed_ops_act_like_unprimed(te_atoms, te_sym):
    # moments along the 3-fold axis: the in-plane 2-fold axes become 2' (primed)
    sym = find_symmetry(te_atoms, magmoms=np.tile([0.0, 0.0, 1.0], (3, 1)))
    assert sym.order == 6 and int(np.count_nonzero(sym.antiunitary)) == 3
    assert not sym.time_reversal
    assert allowed_form(sym).form == allowed_form(te_sym).form == "diag(a,a,c)"
    ir = _check_irreducible(sym, (6, 6, 6), seed=6)
    assert ir.n_ops == 6


def test_grey_and_spin_only_groups_keep_time_reversal():
    fe = bulk("Fe", "bcc", a=2.87)
    grey = find_symmetry(fe, magmoms=[0.0])
    assert grey.time_reversal and grey.order == 48 and not grey.antiunitary.any()
    spin_only = find_symmetry(fe, magmoms=[2.2], spin_orbit=False)
    assert spin_only.time_reversal and spin_only.order == 48


def test_summary_is_json_serialisable(te_sym):
    import json

    fe = find_symmetry(bulk("Fe", "bcc", a=2.87), magmoms=[2.2])
    for sym in (te_sym, fe):
        d = json.loads(json.dumps(sym.summary()))
        assert d["pointgroup"] == sym.pointgroup
    assert te_sym.summary()["allowed_form"]["form"] == "diag(a,a,c)"


# --------------------------------------------------------------------------------------
# errors and files
# --------------------------------------------------------------------------------------


def test_spglib_failure_raises_symmetry_error():
    atoms = Atoms("Si2", cell=np.eye(3) * 5.0, scaled_positions=[[0, 0, 0], [0, 0, 1e-7]],
                  pbc=True)
    with pytest.raises(SymmetryError, match="spglib could not determine the space group"):
        find_symmetry(atoms, source="test-structure")
    with pytest.raises(ValueError, match="magmoms"):
        find_symmetry(bulk("Fe", "bcc", a=2.87), magmoms=[1.0, 2.0])


def test_structure_from_file(tmp_path, te_atoms):
    path = tmp_path / "POSCAR"
    te_atoms.write(path, format="vasp")
    atoms = structure_from_file(path)
    assert find_symmetry(atoms).number == find_symmetry(te_atoms).number
    with pytest.raises(StructureFileError, match="does not exist"):
        structure_from_file(tmp_path / "missing.cif")
    bad = tmp_path / "bad.cif"
    bad.write_text("this is not a cif file\n")
    with pytest.raises(StructureFileError, match="bad.cif"):
        structure_from_file(bad)


def test_primed_operations_map_k_to_minus_rk(te_atoms):
    # Te with moments along z: 3-fold axes unitary, in-plane 2-fold axes primed (2').
    # Time reversal maps k -> -k, so F(-C2 k) = C2 F(k) C2^T: the k-space operations are
    # +C3 (proper) and -C2 = m (improper), i.e. the k-space group is 3m, not 32.
    sym = find_symmetry(te_atoms, magmoms=np.tile([0.0, 0.0, 1.0], (3, 1)))
    kops, rots = kspace_operations(sym)
    assert len(kops) == 6
    B = sym.recip_lattice
    for K, R in zip(kops, rots):
        K_cart = B.T @ K @ np.linalg.inv(B.T)  # action on Cartesian k (column)
        proper = np.linalg.det(R) > 0
        is_c3 = np.isclose(R[2, 2], 1.0)
        expected = R if is_c3 else -R  # 2' -> k -> -R k
        assert proper
        np.testing.assert_allclose(K_cart, expected, atol=1e-8)
    np.testing.assert_array_equal(np.sort(np.rint(np.linalg.det(kops))), [-1, -1, -1, 1, 1, 1])


def test_symmetry_reexports_the_names_of_the_split_modules():
    """Other modules import these from gme_wannier.symmetry: the same objects as where they live."""
    for name in ("IrreducibleKpoints", "irreducible_kpoints", "irreducible_points_lowmem", "kspace_operations"):
        assert getattr(symmetry, name) is getattr(irreducible, name)
    for name in ("AllowedForm", "allowed_form", "symmetrize_tensor", "symmetry_breaking"):
        assert getattr(symmetry, name) is getattr(tensorform, name)
    for name in ("StructureFileError", "structure_from_file"):
        assert getattr(symmetry, name) is getattr(structure, name)
    namespace: dict = {}
    exec("from gme_wannier.symmetry import *", namespace)
    assert set(symmetry.__all__) <= set(namespace)
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        symmetry.not_a_name  # noqa: B018


def test_tensor_character_signs_and_projection():
    """T -> s R T R^T: inversion forbids an axial time-even tensor (no GME in centrosymmetric
    crystals), keeps a polar one (the ohmic C), and keeps an axial time-odd one when the
    inversion is primed; the other character flags are tested the same way on a C2."""
    from types import SimpleNamespace

    from gme_wannier.tensorform import AXIAL_EVEN, POLAR_EVEN, TensorCharacter, project

    T = np.arange(9.0).reshape(3, 3) + 1.0
    E = np.eye(3)
    inv = SimpleNamespace(rotations_cart=np.array([E, -E]), antiunitary=np.array([False, False]))
    inv_primed = SimpleNamespace(rotations_cart=np.array([E, -E]), antiunitary=np.array([False, True]))
    odd = TensorCharacter(axial=True, time_even=False)
    assert np.all(project(T, inv, AXIAL_EVEN) == 0)
    np.testing.assert_allclose(project(T, inv, POLAR_EVEN), T)
    np.testing.assert_allclose(project(T, inv_primed, odd), T)
    assert np.all(project(T, inv_primed, AXIAL_EVEN) == 0)
    np.testing.assert_array_equal(odd.signs(inv_primed), [1.0, 1.0])
    C2z = np.diag([-1.0, -1.0, 1.0])
    c2 = SimpleNamespace(rotations_cart=np.array([E, C2z]), antiunitary=np.array([False, True]))
    # C2z' on a time-odd tensor: xz, yz, zx, zy survive, the rest vanish exactly
    P = project(T, c2, odd)
    mask = np.zeros((3, 3), bool)
    mask[[0, 1, 2, 2], [2, 2, 0, 1]] = True
    np.testing.assert_allclose(P[mask], T[mask])
    assert np.all(P[~mask] == 0)


def test_band_check_uses_the_operations_of_the_reduction():
    """The band symmetry check compares E(K_g k) with E(k) for the k-space operations that the
    reduction uses: time reversal k -> -k (a model that breaks it is caught even when all its
    rotations hold) and a primed operation as k -> -R k (a magnetic group that the bands do
    have is not refused). The two-node Weyl model breaks time reversal (E(-k) != E(k), by
    2 b |sin k_z|) but keeps C2x combined with it."""
    from gme_wannier.calculate import band_symmetry_error
    from gme_wannier.models import weyl_pair_model
    from gme_wannier.symmetry import CrystalSymmetry

    m = weyl_pair_model(b=0.1)
    eye, c2x = np.eye(3, dtype=int), np.diag([1, -1, -1])
    grey_p1 = CrystalSymmetry("P1", 1, "1", eye[None], eye[None].astype(float), m.real_lattice)
    primed = CrystalSymmetry("P2'", 3, "2", np.array([eye, c2x]), np.array([eye, c2x], float), m.real_lattice,
                             time_reversal=False, antiunitary=[False, True], magnetic=True)
    unprimed = CrystalSymmetry("P2", 3, "2", np.array([eye, c2x]), np.array([eye, c2x], float), m.real_lattice,
                               time_reversal=False)
    assert band_symmetry_error(m, grey_p1) > 0.15  # 2 b |sin k_z| at the random k
    assert band_symmetry_error(m, primed) < 1e-12
    assert band_symmetry_error(m, unprimed) > 0.15


def test_a_model_without_time_reversal_is_refused_in_a_nonmagnetic_structure():
    """The Weyl model in a P4mm structure (its rotations all keep the bands): the reduction
    would pair k with -k and return exactly 0 (4mm allows no diagonal alpha with time reversal),
    while the whole zone gives K_xx, K_zz ~ -3e-8 A. It is refused, naming --magmoms."""
    from ase import Atoms

    from gme_wannier.calculate import compute
    from gme_wannier.integrate import GMESettings
    from gme_wannier.models import weyl_pair_model
    from gme_wannier.settings import Sampling, SymmetryOptions
    from gme_wannier.smearing import Smearing
    from gme_wannier.symmetry import SymmetryError

    m = weyl_pair_model(b=0.1)
    st = GMESettings(fermi_energies=[-0.05, 0.0], smearing=Smearing.from_temperature(300))
    p4mm = Atoms("HLi", cell=m.real_lattice, scaled_positions=[[0, 0, 0], [0, 0, 0.3]], pbc=True)
    with pytest.raises(SymmetryError, match="--magmoms") as exc:
        compute(m, st, Sampling(mesh=(12, 12, 12)), symmetry=SymmetryOptions(structure=p4mm), estimate_error=False)
    assert "P4mm" in str(exc.value) and "time reversal" in str(exc.value)
    whole = compute(m, st, Sampling(mesh=(24, 24, 24)), symmetry="off", estimate_error=False)
    assert np.abs(np.diagonal(whole.K["total"], axis1=1, axis2=2)).min() > 5e-9  # measured 1.0e-8 .. 3.6e-8
