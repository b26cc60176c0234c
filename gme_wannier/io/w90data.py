"""Full Wannier90 data (.chk + .eig [+ .mmn, .uHu, .spn]) into real-space matrices.

WannierBerri (``wannierberri.w90files`` and ``System_R.from_wannierdata``) does the reading and
the q -> R transforms (with its MDRS Wigner-Seitz treatment and phase convention I). This
module calls its readers one file at a time so that a failure names the file, and adds a
reader for the formatted checkpoint ``SEED.chk.fmt`` (Wannier90's ``w90chk2chk.x -export``
format), which WannierBerri does not read.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings

import numpy as np

from .errors import InputFileError, check_input_file, decode_text


@contextlib.contextmanager
def _quiet():
    """WannierBerri prints banners and log lines: keep them off the user's terminal."""
    buf = io.StringIO()
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            warnings.simplefilter("ignore")
            yield buf
    finally:
        logging.disable(logging.NOTSET)


def _import_wb():
    """WannierBerri's readers (a required dependency), imported with its banner kept quiet: the
    submodule imports load the package itself."""
    with _quiet():
        from wannierberri.system.system_R import System_R
        from wannierberri.w90files import EIG, MMN, SPN, UHU, CheckPoint, WannierData
        from wannierberri.w90files.bkvectors import BKVectors
    return dict(System_R=System_R, EIG=EIG, MMN=MMN, SPN=SPN, UHU=UHU, CheckPoint=CheckPoint,
                WannierData=WannierData, BKVectors=BKVectors)


# 61 lines: the formatted .chk is read in the file's own order, one block per record.
def read_chk_fmt(path: str, CheckPoint):
    """Read a formatted checkpoint (``SEED.chk.fmt``) into WannierBerri's CheckPoint."""
    check_input_file(path)
    with open(path, "rb") as f:
        text = decode_text(f.read(), path)
    tok = text.split("\n", 1)[1].split() if "\n" in text else []
    pos = 0

    def take(n, kind=float):
        nonlocal pos
        if pos + n > len(tok):
            raise InputFileError(path, "truncated (ended before all checkpoint records were read)")
        vals = tok[pos:pos + n]
        pos += n
        if kind is bool:
            return np.array([v.strip(".").upper() in ("1", "T", "TRUE") for v in vals])
        try:
            return np.array([kind(v.replace("D", "E")) for v in vals])
        except ValueError:
            raise InputFileError(path, f"malformed number near token {pos}") from None

    num_bands = int(take(1, int)[0])
    nex = int(take(1, int)[0])
    take(nex, int)
    real_lattice = take(9).reshape((3, 3), order="F")
    take(9)  # reciprocal lattice
    num_kpts = int(take(1, int)[0])
    mp_grid = take(3, int)
    if num_kpts != int(np.prod(mp_grid)):
        raise InputFileError(path, f"num_kpts={num_kpts} differs from the mesh {mp_grid.tolist()}")
    kpt_red = take(3 * num_kpts).reshape(num_kpts, 3)
    nntot = int(take(1, int)[0])
    num_wann = int(take(1, int)[0])
    pos += 1  # checkpoint string (one word, e.g. 'postwann')
    have_dis = bool(take(1, bool)[0])

    def cplx(n):
        a = take(2 * n)
        return a[0::2] + 1j * a[1::2]

    if have_dis:
        take(1)  # omega invariant
        lwindow = take(num_kpts * num_bands, bool).reshape(num_kpts, num_bands)
        ndimwin = take(num_kpts, int)
        u_opt = cplx(num_kpts * num_wann * num_bands).reshape(num_kpts, num_wann, num_bands).swapaxes(1, 2)
    u = cplx(num_kpts * num_wann * num_wann).reshape(num_kpts, num_wann, num_wann).swapaxes(1, 2)
    cplx(num_kpts * nntot * num_wann * num_wann)  # m_matrix
    centres = take(3 * num_wann).reshape(num_wann, 3)
    spreads = take(num_wann)
    if have_dis:
        v = np.zeros((num_kpts, num_bands, num_wann), dtype=complex)
        for ik in range(num_kpts):
            nd = int(ndimwin[ik])
            if lwindow[ik].sum() != nd:
                raise InputFileError(path, f"k-point {ik + 1}: window size {lwindow[ik].sum()} != ndimwin {nd}")
            v[ik, lwindow[ik], :] = u_opt[ik, :nd, :] @ u[ik]
    else:
        v = u
    for name, a in (("lattice vectors", real_lattice), ("k-points", kpt_red), ("gauge matrices", v),
                    ("Wannier centres", centres)):
        if not np.all(np.isfinite(a)):
            raise InputFileError(path, f"the {name} hold NaN or infinite entries: corrupt file")
    _check_unitary(path, v)
    _check_kpoints(path, kpt_red, mp_grid)
    return CheckPoint(real_lattice=real_lattice, v_matrix=v, wannier_centers_cart=centres,
                      wannier_spreads=spreads, kpt_red=kpt_red, mp_grid=mp_grid)


def _formatted_guess(path: str) -> bool:
    """True if the file looks like text (formatted), False if binary."""
    with open(path, "rb") as f:
        chunk = f.read(256)
    try:
        chunk.decode("ascii")
        return b"\x00" not in chunk
    except UnicodeDecodeError:
        return False


# 82 lines, on purpose: one linear reader that follows the order in which the files must be read
# (chk, eig, mmn, uHu, spn), each step guarded for its own file's errors.
def load_w90_matrices(seed: str, *, use_uhu: bool = True, use_spn: bool = True,
                      use_mmn: bool = True, ws_tolerance: float = 1e-3) -> dict:
    """Real-space matrices from SEED.chk(.fmt) + SEED.eig [+ .mmn, .uHu, .spn].

    ``ws_tolerance`` (Angstrom): two Wigner-Seitz images of a Wannier-centre pair closer in
    distance than this are treated as degenerate (MDRS). Centres of a Wannierisation without
    symmetry constraints are symmetric only to ~1e-5..1e-4 Angstrom (GaAs: 3e-5), so
    WannierBerri's default 1e-5 can split symmetric ties unevenly and break the crystal
    symmetry of the bands (GaAs: 0.55 eV at 1e-5, 4.5 meV at 1e-3; docs/symmetry.md).

    Returns dict with ``real_lattice``, ``iRvec``, ``H_R`` and when available ``A_R``, ``B_R``,
    ``CC_R``, ``S_R``, ``centres_cart`` and ``files`` (list of paths read). Matrices are in
    WannierBerri's convention I with its MDRS Wigner-Seitz folding.
    """
    wb = _import_wb()
    with _quiet():
        wd = wb["WannierData"]()
        wd.seedname = seed
        wd.formatted_list = []
    chk, eig, files = read_checkpoint_and_eig(seed, wb)
    with _quiet():
        wd.set_chk(val=chk)
    num_wann, num_bands, nk = chk.num_wann, chk.num_bands, chk.num_kpts
    wd.set_file("eig", eig)

    with _quiet():
        bkvec = wb["BKVectors"].from_kpoints(recip_lattice=chk.recip_lattice, mp_grid=chk.mp_grid,
                                             kpoints_red=chk.kpt_red)
        wd.set_file("bkvec", bkvec)

    have = {"mmn": False, "uhu": False, "spn": False}
    mmn_path = seed + ".mmn"
    if use_mmn and os.path.exists(mmn_path):
        _check_header_ints(mmn_path, [num_bands, nk], "num_bands, num_kpts")
        try:
            with _quiet():
                mmn = wb["MMN"].from_w90_file(seedname=seed, bkvec=bkvec, npar=1)
        except Exception as exc:  # noqa: BLE001
            raise InputFileError(mmn_path, f"truncated or unreadable ({type(exc).__name__}: {exc})") from None
        _check_finite_data(mmn_path, mmn, "overlap matrices")
        wd.set_file("mmn", mmn)
        files.append(mmn_path)
        have["mmn"] = True
        uhu_path = seed + ".uHu"
        if use_uhu and os.path.exists(uhu_path):
            fmt = _formatted_guess(uhu_path)
            if fmt:
                _check_header_ints(uhu_path, [num_bands, nk], "num_bands, num_kpts")
            try:
                with _quiet():
                    uhu = wb["UHU"].from_w90_file(seedname=seed, formatted=fmt, bk_reorder=mmn.bk_reorder)
            except Exception as exc:  # noqa: BLE001
                raise InputFileError(uhu_path, f"truncated or unreadable ({type(exc).__name__}: {exc})") from None
            _check_finite_data(uhu_path, uhu, "matrices")
            wd.set_file("uhu", uhu)
            files.append(uhu_path)
            have["uhu"] = True
    spn_path = seed + ".spn"
    if use_spn and os.path.exists(spn_path):
        fmt = _formatted_guess(spn_path)
        if fmt:
            _check_header_ints(spn_path, [num_bands, nk], "num_bands, num_kpts")
        else:
            _check_binary_header(spn_path, [num_bands, nk], "num_bands, num_kpts")
        try:
            with _quiet():
                spn = wb["SPN"].from_w90_file(seedname=seed, formatted=fmt)
        except Exception as exc:  # noqa: BLE001
            raise InputFileError(spn_path, f"truncated or unreadable ({_short(exc)})") from None
        _check_finite_data(spn_path, spn, "spin matrices")
        wd.set_file("spn", spn)
        files.append(spn_path)
        have["spn"] = True

    try:
        with _quiet():
            system = wb["System_R"].from_wannierdata(wd, berry=have["mmn"], morb=have["uhu"],
                                                     spin=have["spn"], symmetrize=False,
                                                     ws_dist_tol=ws_tolerance)
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(seed + ".*", f"WannierBerri could not build the real-space matrices "
                                          f"({_short(exc)})") from None
    out = dict(real_lattice=np.array(system.real_lattice), iRvec=np.array(system.rvec.iRvec),
               H_R=np.array(system.get_R_mat("Ham")), centres_cart=np.array(system.wannier_centers_cart),
               files=files, num_wann=num_wann, mp_grid=np.asarray(chk.mp_grid, dtype=int).reshape(3))
    if have["mmn"]:
        out["A_R"] = np.array(system.get_R_mat("AA"))
        out["B_R"] = np.array(system.get_R_mat("BB")) if have["uhu"] else None
    if have["uhu"]:
        out["CC_R"] = np.array(system.get_R_mat("CC"))
    if have["spn"]:
        out["S_R"] = np.array(system.get_R_mat("SS"))
    for key, path in (("A_R", mmn_path), ("B_R", seed + ".uHu"), ("CC_R", seed + ".uHu"), ("S_R", spn_path)):
        if out.get(key) is not None and not np.all(np.isfinite(out[key])):
            raise InputFileError(path, "gives NaN or infinite matrix elements: the file is corrupt")
    return out


def read_checkpoint_and_eig(seed: str, wb: dict) -> tuple:
    """WannierBerri's CheckPoint (from SEED.chk, or SEED.chk.fmt) and EIG, checked against each
    other; returns (chk, eig, list of the paths read)."""
    files = []
    chk_bin, chk_fmt = seed + ".chk", seed + ".chk.fmt"
    if os.path.exists(chk_bin):
        try:
            with _quiet():
                chk = wb["CheckPoint"].from_w90_file(seed)
        except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file
            raise InputFileError(chk_bin, f"truncated or unreadable checkpoint ({_short(exc)})") from None
        v = chk.v_matrix
        _check_unitary(chk_bin, np.array([v[k] for k in sorted(v)]) if isinstance(v, dict) else np.asarray(v))
        _check_kpoints(chk_bin, np.asarray(chk.kpt_red), np.asarray(chk.mp_grid))
        files.append(chk_bin)
    elif os.path.exists(chk_fmt):
        with _quiet():
            chk = read_chk_fmt(chk_fmt, wb["CheckPoint"])
        files.append(chk_fmt)
    else:
        raise InputFileError(chk_bin, "file not found (nor SEED.chk.fmt)")
    num_bands, nk = chk.num_bands, chk.num_kpts
    eig_path = seed + ".eig"
    if not os.path.exists(eig_path):
        raise InputFileError(eig_path, "file not found (needed with the checkpoint)")
    with open(check_input_file(eig_path), "rb") as f:
        text = decode_text(f.read(), eig_path)  # a binary file is named as such, not as a decoding error
    try:
        with warnings.catch_warnings():  # an empty file: reported below as 0 lines, not as a warning
            warnings.simplefilter("ignore")
            data = np.loadtxt(io.StringIO(text), ndmin=2)
        if data.shape[1] != 3 or data.shape[0] != num_bands * nk:
            raise ValueError(f"expected {num_bands}x{nk} lines 'band k energy' (from the .chk), "
                             f"found {data.shape[0] if data.size else 0}")
        if not np.all(np.isfinite(data)):
            raise ValueError(f"{int(np.sum(~np.isfinite(data)))} entries are NaN or infinite")
        want = np.stack([np.tile(np.arange(1, num_bands + 1), nk), np.repeat(np.arange(1, nk + 1), num_bands)], 1)
        bad = np.nonzero(np.any(data[:, :2] != want, axis=1))[0]
        if bad.size:
            raise ValueError(f"line {bad[0] + 1}: band, k = {data[bad[0], 0]:g}, {data[bad[0], 1]:g} where "
                             f"{want[bad[0], 0]}, {want[bad[0], 1]} was expected (bands fastest, as Wannier90 writes)")
        with _quiet():
            eig = wb["EIG"].from_w90_file(seed)
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(eig_path, f"inconsistent or truncated: {_short(exc)}") from None
    files.append(eig_path)
    return chk, eig, files


def _short(exc: BaseException) -> str:
    """One line, at most 200 characters, of an exception from a reader (no array dumps)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 200 else text[:197] + "..."


def _check_finite_data(path: str, obj, what: str) -> None:
    """The ``data`` (array, or dict of arrays per k-point) of a WannierBerri file object is finite."""
    data = obj.data.values() if isinstance(obj.data, dict) else [obj.data]
    if not all(np.all(np.isfinite(np.asarray(v))) for v in data):
        raise InputFileError(path, f"{what} hold NaN or infinite entries: the file is corrupt")


def _check_kpoints(path: str, kpt_red: np.ndarray, mp_grid: np.ndarray) -> None:
    """The checkpoint's k-points are the points of its Monkhorst-Pack grid mp_grid, each once."""
    n = np.asarray(mp_grid, dtype=int).reshape(3)
    k = np.asarray(kpt_red, dtype=float).reshape(-1, 3)
    if np.any(n < 1) or len(k) != int(np.prod(n)):
        raise InputFileError(path, f"mp_grid {n.tolist()} does not match its {len(k)} k-points: corrupt file")
    idx = k * n
    if np.abs(idx - np.round(idx)).max() > 1e-5 or len(np.unique(np.mod(np.round(idx), n), axis=0)) != len(k):
        raise InputFileError(path, f"the k-points are not the {n.tolist()} Monkhorst-Pack grid of its mp_grid: "
                                   "corrupt file, or not written by Wannier90")


def _check_unitary(path: str, v: np.ndarray) -> None:
    """The gauge matrices V(k) (nk, num_bands, num_wann) of a checkpoint satisfy V^+ V = 1."""
    if not np.all(np.isfinite(v)):
        raise InputFileError(path, "the gauge matrices hold NaN or infinite entries: corrupt file")
    vv = np.einsum("kbm,kbn->kmn", v.conj(), v)
    err = float(np.abs(vv - np.eye(v.shape[2])[None]).max())
    if err > 1e-6:
        raise InputFileError(path, f"the gauge matrices are not unitary (max |V^+V - 1| = {err:.1e}): corrupt or "
                                   "not written by Wannier90 for these .eig/.mmn files")


def _check_binary_header(path: str, expected: list, what: str) -> None:
    """Unformatted (Fortran sequential) .spn: a 60-character header record, then a record with
    num_bands, num_kpts (int32)."""
    import struct

    try:
        with open(path, "rb") as f:
            (n1,) = struct.unpack("<i", f.read(4))
            f.seek(n1 + 4, 1)
            (n2,) = struct.unpack("<i", f.read(4))
            vals = list(struct.unpack("<2i", f.read(8))) if n2 >= 8 else None
    except (struct.error, OSError, ValueError):
        raise InputFileError(path, "truncated or not a Fortran unformatted file") from None
    if vals is None or not (0 < n1 < 1000):
        raise InputFileError(path, "not a Fortran unformatted .spn (bad record markers)")
    if vals != list(expected):
        raise InputFileError(path, f"header says {what} = {vals}, but the checkpoint has {expected} "
                                   "(this file belongs to another calculation)")


def _check_header_ints(path: str, expected: list, what: str) -> None:
    """Formatted .mmn/.uHu/.spn: the second line starts with num_bands, num_kpts."""
    with open(path, "rb") as f:
        f.readline()
        raw = f.readline()
    try:
        line = raw.decode("ascii").split()
    except UnicodeDecodeError:
        raise InputFileError(path, f"second line should start with {what} (is this a binary file?)") from None
    try:
        vals = [int(x) for x in line[:len(expected)]]
    except ValueError:
        raise InputFileError(path, f"second line should start with {what}") from None
    if vals != list(expected):
        raise InputFileError(path, f"header says {what} = {vals}, but the checkpoint has {expected} "
                                   "(num_bands/num_kpts disagree between files)")
