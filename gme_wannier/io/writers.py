"""Result writers: building text is separate from writing files (ASE / phonopy habit)."""

from __future__ import annotations

import io
import json
import os

import numpy as np


def json_text(d: dict) -> str:
    """The result dict as indented JSON text (numpy arrays and scalars converted), ending in a newline."""
    return json.dumps(d, indent=1, default=_default) + "\n"


def _default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.bool_):
        return bool(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")


def w90_K_text(fermi_energies: np.ndarray, K: np.ndarray, title: str) -> str:
    """Text in the layout of Wannier90's ``SEED-gyrotropic-K_orb.dat`` (Ampere).

    Columns: E_F, omega (0), xx, yy, zz, sym. xy, xz, yz, antisym. x, y, z with
    xy = (K12+K21)/2 ..., x = (K23-K32)/2, y = (K31-K13)/2, z = (K12-K21)/2 (gyrotropic_outprint_tensor).
    """
    out = io.StringIO()
    out.write(f" # {title} -- written by gme_wannier in the layout of Wannier90's gyrotropic module\n")
    out.write(" # in units of [ Ampere ] \n")
    out.write("#                             |                                      symmetric part"
              "                                     ||              asymmetric part              |\n")
    out.write("   # EFERMI(eV)      omega(eV)             xx             yy             zz             xy"
              "             xz             yz              x              y              z\n")
    for ef, k in zip(fermi_energies, K):
        cols = [ef, 0.0, k[0, 0], k[1, 1], k[2, 2], (k[0, 1] + k[1, 0]) / 2, (k[0, 2] + k[2, 0]) / 2,
                (k[1, 2] + k[2, 1]) / 2, (k[1, 2] - k[2, 1]) / 2, (k[2, 0] - k[0, 2]) / 2, (k[0, 1] - k[1, 0]) / 2]
        out.write("".join(f"{c:15.6E}" for c in cols) + "\n")
    out.write(" \n \n")  # Wannier90 ends each block with two empty records
    return out.getvalue()


def read_w90_K(path) -> tuple[np.ndarray, np.ndarray]:
    """Read a Wannier90 ``SEED-gyrotropic-K_*.dat`` file (or ``PREFIX-gme-K_*.dat``).

    path : file path or open text stream.
    Returns (E_F (nE,) eV, K (nE, 3, 3) in the file's units, K[:, i, j]), inverting the
    symmetric / antisymmetric columns: K12 = xy + z, K21 = xy - z, K13 = xz - y, K31 = xz + y,
    K23 = yz + x, K32 = yz - x. Only omega = 0 files (one block) are supported.
    """
    if isinstance(path, (str, os.PathLike)):
        with open(path) as f:
            return read_w90_K(f)
    name = getattr(path, "name", "<stream>")
    rows = []
    for line in path:
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        rows.append([float(x.replace("D", "E")) for x in s.split()])
    a = np.array(rows)
    if a.ndim != 2 or a.shape[1] != 11:
        raise ValueError(f"{name}: expected 11 columns per line")
    xx, yy, zz, xy, xz, yz, x, y, z = a[:, 2:].T
    K = np.zeros((len(a), 3, 3))
    K[:, 0, 0], K[:, 1, 1], K[:, 2, 2] = xx, yy, zz
    K[:, 0, 1], K[:, 1, 0] = xy + z, xy - z
    K[:, 0, 2], K[:, 2, 0] = xz - y, xz + y
    K[:, 1, 2], K[:, 2, 1] = yz + x, yz - x
    return a[:, 0], K


def csv_text(result) -> str:
    """alpha(E_F): one row per Fermi level; orbital, spin, total components and the decomposition."""
    out = io.StringIO()
    comps = [f"{a}{b}" for a in "xyz" for b in "xyz"]
    head = ["E_F_eV"]
    for p in ("orbital", "spin", "total"):
        head += [f"alpha_{p}_{c}" for c in comps]
    head += ["alpha_iso", "alpha_sym_max_abs", "delta_x", "delta_y", "delta_z", "rho_z_rad_per_mm"]
    out.write(",".join(head) + "\n")
    al = result.alpha
    dec = result.decomposition("total")
    rho = result.rotatory_power("total")["z"]
    for i, ef in enumerate(result.fermi_energies):
        row = [ef]
        for p in ("orbital", "spin", "total"):
            row += list(np.asarray(al[p][i]).ravel())
        row += [dec["iso"][i], float(np.abs(dec["sym_eigenvalues"][i]).max()), *dec["delta"][i], rho[i]]
        out.write(",".join(f"{v:.8e}" for v in row) + "\n")
    return out.getvalue()


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file, then a rename), creating the folder."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# the other files of Wannier90's gyrotropic module (gme_wannier.gyrotropic)

_SYM_BANNER = ("#                             |                                      symmetric part"
               "                                     ||              asymmetric part              |\n")
_SYM_HEAD = ("   # EFERMI(eV)      omega(eV)             xx             yy             zz             xy"
             "             xz             yz              x              y              z\n")
# postw90's own labels of the unsymmetrized NOA columns (its 8th label, 'yzz', is gamma_xyx)
_NOA_HEAD = ("   # EFERMI(eV)      omega(eV)            yzx            zxy            xyz            yzy"
             "            yzz            zxz            xyy            yzz            zxx\n")


def _sym_columns(k: np.ndarray) -> list:
    return [k[0, 0], k[1, 1], k[2, 2], (k[0, 1] + k[1, 0]) / 2, (k[0, 2] + k[2, 0]) / 2,
            (k[1, 2] + k[2, 1]) / 2, (k[1, 2] - k[2, 1]) / 2, (k[2, 0] - k[0, 2]) / 2, (k[0, 1] - k[1, 0]) / 2]


def _noa_columns(g: np.ndarray) -> list:
    return [g[0, 0], g[1, 1], g[2, 2], g[0, 1], g[0, 2], g[1, 2], g[2, 1], g[2, 0], g[1, 0]]


def w90_tensor_text(fermi_energies: np.ndarray, omegas, T: np.ndarray, title: str, units: str,
                    layout: str = "sym") -> str:
    """Text of a ``SEED-gyrotropic-{C,D,tildeD,NOA_orb,NOA_spin}.dat`` file.

    fermi_energies : (nE,) eV; omegas : (nomega,) hbar omega in eV, or None for one omega = 0
    block; T : (nomega, nE, 3, 3), or (nE, 3, 3) with omegas None. layout "sym": symmetric and
    antisymmetric columns as :func:`w90_K_text`; "noa": postw90's unsymmetrized columns of
    the NOA array G[d, c] (d = yz, zx, xy): G_xx, G_yy, G_zz, G_xy, G_xz, G_yz, G_zy, G_zx, G_yx.
    One block per omega, each closed by two empty records, as gyrotropic_outprint_tensor.
    """
    T = np.asarray(T)
    if omegas is None:
        omegas, T = [0.0], T[None]
    cols = _sym_columns if layout == "sym" else _noa_columns
    out = io.StringIO()
    out.write(f" # {title} -- written by gme_wannier in the layout of Wannier90's gyrotropic module\n")
    out.write(f" # in units of [ {units} ] \n")
    for om, block in zip(omegas, T):
        out.write(_SYM_BANNER + _SYM_HEAD if layout == "sym" else _NOA_HEAD)
        for ef, t in zip(fermi_energies, block):
            out.write("".join(f"{c:15.6E}" for c in [ef, om] + cols(t)) + "\n")
        out.write(" \n \n")
    return out.getvalue()


def w90_dos_text(fermi_energies: np.ndarray, dos: np.ndarray) -> str:
    """Text of ``SEED-gyrotropic-DOS.dat``: E_F (eV), DOS (1/(eV Angstrom^3))."""
    out = io.StringIO()
    out.write(" # density of states -- written by gme_wannier in the layout of Wannier90's gyrotropic module\n")
    out.write(" # in units of [ eV^{-1}.Ang^{-3} ] \n  # EFERMI(eV) \n")
    for ef, d in zip(fermi_energies, dos):
        out.write(f"{ef:15.6E}{d:15.6E}\n")
    out.write(" \n \n")
    return out.getvalue()


def read_w90_gyrotropic(path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read any ``SEED-gyrotropic-*.dat`` (or ``PREFIX-gme-*.dat``) file.

    Returns (E_F (nE,), omega (nomega,), T): T float (nomega, nE, 3, 3) for the tensor files
    (symmetric/antisymmetric columns inverted as :func:`read_w90_K`; NOA files (header with
    'yzx') give the array G[d, c]), or (nomega=1, nE) for the DOS file.
    """
    if isinstance(path, (str, os.PathLike)):
        with open(path) as f:
            return read_w90_gyrotropic(f)
    name = getattr(path, "name", "<stream>")
    rows, noa = [], False
    for line in path:
        s = line.strip()
        if "yzx" in s:
            noa = True
        if not s or s.startswith("#"):
            continue
        rows.append([float(x.replace("D", "E")) for x in s.split()])
    a = np.array(rows)
    if a.ndim != 2 or a.shape[1] not in (2, 11):
        raise ValueError(f"{name}: expected 2 or 11 columns per line")
    if a.shape[1] == 2:
        return a[:, 0], np.zeros(1), a[None, :, 1]
    om = np.unique(a[:, 1])
    ef = a[a[:, 1] == om[0], 0]
    T = np.zeros((len(a), 3, 3))
    c = a[:, 2:].T
    if noa:
        for v, (i, j) in zip(c, [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2), (2, 1), (2, 0), (1, 0)]):
            T[:, i, j] = v
    else:
        xx, yy, zz, xy, xz, yz, x, y, z = c
        T[:, 0, 0], T[:, 1, 1], T[:, 2, 2] = xx, yy, zz
        T[:, 0, 1], T[:, 1, 0] = xy + z, xy - z
        T[:, 0, 2], T[:, 2, 0] = xz - y, xz + y
        T[:, 1, 2], T[:, 2, 1] = yz + x, yz - x
    order = np.argsort(a[:, 1], kind="stable")
    return ef, om, T[order].reshape(len(om), len(ef), 3, 3)


# postw90's file names, titles and units (gyrotropic_main), per output array
_FILES = (("C", "C", "the C tensor -- Eq. B6 of TPS18", "Ampere/cm", "sym"),
          ("D", "D", "the D tensor -- Eq. 2 of TPS18", "dimensionless", "sym"),
          ("Dw", "tildeD", "the tildeD tensor -- Eq. 12 of TPS18", "dimensionless", "sym"),
          ("NOA_orb", "NOA_orb", "the tensor gamma_abc^orb (Eqs. C12, C14 of TPS18)", "Ang", "noa"),
          ("NOA_spin", "NOA_spin", "the tensor gamma_abc^spin (Eqs. C12, C15 of TPS18)", "Ang", "noa"),
          ("DOS", "DOS", "density of states", "eV^{-1}.Ang^{-3}", "dos"))


def w90_dat_texts(extra: dict, fermi_energies: np.ndarray, prefix: str) -> list:
    """(path, text) of ``PREFIX-gme-{C,D,tildeD,NOA_orb,NOA_spin,DOS}.dat`` for the arrays in
    ``extra`` (quantity name -> dict of arrays, as ``GMEResult.extra``;
    :mod:`gme_wannier.gyrotropic`), in postw90's layouts."""
    arrays: dict = {}
    for tensors in extra.values():
        arrays.update(tensors)
    out = []
    for key, fname, title, units, layout in _FILES:
        if key not in arrays:
            continue
        path = f"{prefix}-gme-{fname}.dat"
        if layout == "dos":
            text = w90_dos_text(fermi_energies, arrays[key])
        else:
            T = np.asarray(arrays[key])
            omegas = arrays.get("omega_eV") if T.ndim == 4 else None
            text = w90_tensor_text(fermi_energies, omegas, T, title, units, layout=layout)
        out.append((path, text))
    return out
