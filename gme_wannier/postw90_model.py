"""Real-space matrices built the way postw90 3.1 builds them ("convention II"), and a loader for
WannierBerri's saved ``System_R`` (npz) directories.

postw90 3.1 (src/postw90/get_oper.F90, postw90_common.F90, ws_distance.F90):

* R vectors: ``wigner_seitz`` -- the lattice points of the Wigner-Seitz supercell of the
  Born-von Karman supercell (mp_grid), searched over ``ws_search_size`` (default 2) supercells,
  with degeneracy ``ndegen(R)`` (points on the WS boundary, ``ws_distance_tol`` = 1e-5 Angstrom).
* q -> R:  X(R) = (1/N_q) sum_q exp(-2 pi i q.R) X(q)  over the ab initio mesh, for
      H(q)   = V^+ diag(E) V                                   (get_HH_R)
      A_a(q) = Herm[ sum_b i w_b b_a S(q, q+b) ],  S = V(q)^+ M V(q+b)     (get_AA_R; the diagonal
               keeps sum_b i w_b b_a S_nn unless ``transl_inv = true``, then -sum_b w_b b_a Im ln S_nn)
      B_a(q) = sum_b i w_b b_a V(q)^+ E M V(q+b)               (get_BB_R; not hermitised)
      C_ab(q)= sum_{b1,b2} w_b1 b1_a w_b2 b2_b V(q+b1)^+ uHu V(q+b2)   for a <= b, and
               C_ba = C_ab^+                                    (get_CC_R)
      S(q)   = V^+ sigma V                                      (get_SS_R)
  so A(R=0) has the Wannier centres on its diagonal (convention II: no centre phase).
* R -> k: O(k) = sum_R exp(2 pi i k.R) O(R) / ndegen(R), derivatives with i R; with
  ``use_ws_distance = true`` (default in 3.1) *every* operator (H, A, B, C, S, and their
  derivatives) is instead summed over the MDRS images R + T_ij(R) of ws_translate_dist,
  weight 1/(ndegen(R) * ndeg_ij(R)), derivative i (R + T). T_ij(R) minimises
  |R + tau_j - tau_i + T| over supercell vectors T, with tau the Wannier centres as stored in
  the checkpoint (not translated to the home cell).

Because postw90's transform has no centre phase and its derivatives use i(R + T) only, the
result is a :class:`~gme_wannier.model.TBModel` with ``centres_cart = 0`` whose R list holds all
the images R + T, each matrix element carrying its weight (the same flattening as
:func:`gme_wannier.io.tbfiles.apply_wsvec`). Our per-k kernel is convention-agnostic, so this
model reproduces postw90 (see docs/validation.md).

The readers are WannierBerri's (``wannierberri.w90files``), and the q-space matrices are those of
its ``CheckPoint`` getters, whose definitions coincide with the ones above (checked line by line
against get_oper.F90: the .uHu index order (pw2wannier90 writes <u_{m,k+b1}|H|u_{n,k+b2}> with m
the slow index, which postw90 transposes and WannierBerri reads directly) and the b-vector order
(WannierBerri reorders the neighbours of .uHu with the same ``bk_reorder`` as .mmn) agree).
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from .io.errors import InputFileError
from .io.tbfiles import place_matrices

__all__ = ["wigner_seitz", "ws_translate_dist", "fold_ws", "postw90_matrices", "load_postw90_model",
           "load_wannierberri_npz"]


# ----------------------------------------------------------------------------- R vectors
def wigner_seitz(real_lattice: np.ndarray, mp_grid: Sequence[int], ws_search_size: Sequence[int] = (2, 2, 2),
                 ws_distance_tol: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """postw90's ``wigner_seitz``: lattice points of the Wigner-Seitz supercell and their degeneracy.

    Parameters
    ----------
    real_lattice : float (3, 3), Angstrom, lattice vectors as rows.
    mp_grid : 3 ints, the ab initio k mesh (Born-von Karman supercell).
    ws_search_size : 3 ints (Wannier90 default 2).
    ws_distance_tol : float, Angstrom (Wannier90 default 1e-5); compared with squared distances
        as tol**2, as in Wannier90.

    Returns
    -------
    irvec : int (nR, 3), reduced, in Wannier90's order (n1 slowest).
    ndegen : int (nR,), sum(1/ndegen) = prod(mp_grid).
    """
    mp = np.asarray(mp_grid, dtype=int)
    s = np.asarray(ws_search_size, dtype=int) * np.ones(3, dtype=int)
    metric = np.asarray(real_lattice, float) @ np.asarray(real_lattice, float).T
    axes = [np.arange(-s[i] * mp[i], s[i] * mp[i] + 1) for i in range(3)]
    n = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    sh = [np.arange(-s[i] - 1, s[i] + 2) for i in range(3)]
    I = np.stack(np.meshgrid(*sh, indexing="ij"), axis=-1).reshape(-1, 3) * mp  # supercell vectors
    i0 = (len(I) - 1) // 2  # I = 0 (Fortran's (dist_dim + 1)/2)
    d = n[:, None, :] - I[None, :, :]
    dist = np.einsum("kai,ij,kaj->ka", d, metric, d)
    dmin = dist.min(axis=1)
    inside = np.abs(dist[:, i0] - dmin) < ws_distance_tol**2
    ndegen = (np.abs(dist - dmin[:, None]) < ws_distance_tol**2).sum(axis=1)
    irvec, ndegen = n[inside], ndegen[inside]
    if abs((1.0 / ndegen).sum() - mp.prod()) > 1e-8:
        raise RuntimeError("wigner_seitz: sum rule violated (increase ws_search_size)")
    return irvec, ndegen


def ws_translate_dist(irvec: np.ndarray, centres_cart: np.ndarray, real_lattice: np.ndarray,
                      mp_grid: Sequence[int], ws_search_size: Sequence[int] = (2, 2, 2),
                      ws_distance_tol: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """postw90's ``ws_translate_dist`` (R_wz_sc): the supercell images of each element.

    For each (R, i, j) the supercell vectors T with |R + tau_j - tau_i + T| minimal (within
    ``ws_distance_tol``, Angstrom, on the distance itself as in R_wz_sc).

    Returns
    -------
    T : int (nR, nw, nw, 8, 3) reduced supercell shifts (padded with zeros)
    ndeg : int (nR, nw, nw) number of valid shifts.
    """
    L = np.asarray(real_lattice, float)
    mp = np.asarray(mp_grid, dtype=int)
    s = np.asarray(ws_search_size, dtype=int) * np.ones(3, dtype=int)
    sh = [np.arange(-s[i] - 1, s[i] + 2) for i in range(3)]
    S = np.stack(np.meshgrid(*sh, indexing="ij"), axis=-1).reshape(-1, 3) * mp  # (nS, 3) reduced
    tau = np.asarray(centres_cart, float)
    Rin = (irvec @ L)[:, None, None, :] + tau[None, None, :, :] - tau[None, :, None, :]  # (nR, i, j, 3)
    cand = Rin[..., None, :] + (S @ L)[None, None, None]  # (nR, i, j, nS, 3)
    dist = np.sqrt((cand**2).sum(-1))
    dmin = dist.min(-1)
    deg = np.abs(dist - dmin[..., None]) < ws_distance_tol
    # R_in itself closer than tol to R0 = 0: a single image (the minimising one)
    tiny = dmin < ws_distance_tol
    if tiny.any():
        first = np.argmin(dist, axis=-1)
        only = np.zeros_like(deg)
        np.put_along_axis(only, first[..., None], True, axis=-1)
        deg = np.where(tiny[..., None], only, deg)
    ndeg = deg.sum(-1)
    if ndeg.max() > 8:
        raise RuntimeError("ws_translate_dist: degeneracy larger than 8")
    T = np.zeros(ndeg.shape + (8, 3), dtype=int)
    idx = np.nonzero(deg)
    # position of each hit among the hits of its (R, i, j)
    order = np.cumsum(deg, axis=-1) - 1
    T[idx[0], idx[1], idx[2], order[idx]] = S[idx[3]]
    return T, ndeg


def fold_ws(irvec: np.ndarray, ndegen: np.ndarray, mats: list, T: Optional[np.ndarray] = None,
            ndeg: Optional[np.ndarray] = None) -> tuple[np.ndarray, list]:
    """Flatten postw90's R -> k transform onto one R list.

    ``mats``: arrays (nR, nw, nw, ...) as postw90 stores them (without 1/ndegen). Without ``T``
    (use_ws_distance = false): X(R)/ndegen(R). With ``T``, ``ndeg`` from :func:`ws_translate_dist`:
    X_ij(R) / (ndegen(R) ndeg_ij(R)) placed at R + T_ij. Returns (iRvec_new, new matrices).
    """
    if T is None:
        w = 1.0 / ndegen
        return irvec.copy(), [X * w.reshape((-1,) + (1,) * (X.ndim - 1)) for X in mats]
    nR, nw = ndeg.shape[:2]
    r, i, j, d = np.nonzero(np.arange(8)[None, None, None, :] < ndeg[..., None])
    newR = irvec[r] + T[r, i, j, d]
    return place_matrices(mats, r, i, j, newR, 1.0 / (ndegen[r] * ndeg[r, i, j]))


# ----------------------------------------------------------------------------- q -> R
def _q_to_R(Xq: np.ndarray, kpt_red: np.ndarray, irvec: np.ndarray) -> np.ndarray:
    """postw90's fourier_q_to_R: X(R) = (1/Nq) sum_q exp(-2 pi i q.R) X(q). Xq: (Nq, nw, nw, ...)."""
    phase = np.exp(-2j * np.pi * (irvec @ kpt_red.T)) / len(kpt_red)  # (nR, Nq)
    return np.tensordot(phase, Xq, axes=(1, 0))


def _herm(X: np.ndarray) -> np.ndarray:
    """0.5 (X + X^+) over the two Wannier indices (axes 1, 2) of (Nq, nw, nw, ...)."""
    return 0.5 * (X + np.conj(np.swapaxes(X, 1, 2)))


# 9 parameters: the six files postw90 reads (optional ones None) and three of its .win options.
def postw90_matrices(chk, eig, bkvec=None, mmn=None, uhu=None, spn=None, *, transl_inv: bool = False,
                     ws_search_size: Sequence[int] = (2, 2, 2), ws_distance_tol: float = 1e-5) -> dict:
    """Real-space matrices on postw90's Wigner-Seitz R list (before any 1/ndegen or WS folding).

    Parameters are WannierBerri objects (CheckPoint, EIG, BKVectors, MMN, UHU, SPN).
    Returns dict: irvec (nR, 3), ndegen (nR,), HH (nR, nw, nw) eV, and when available
    AA (nR, nw, nw, 3) Angstrom, BB (eV Angstrom), CC (nR, nw, nw, 3) = i eps_cab C_ab-form
    [i (C_ab - C_ba) for (a, b) cyclic, eV Angstrom^2, as WannierBerri's CC], SS (nR, nw, nw, 3).
    """
    nk = chk.num_kpts
    kall, w1 = np.arange(nk), np.ones(nk)
    irvec, ndegen = wigner_seitz(chk.real_lattice, chk.mp_grid, ws_search_size, ws_distance_tol)
    kpt = np.asarray(chk.kpt_red, float)
    out = {"irvec": irvec, "ndegen": ndegen}
    out["HH"] = _q_to_R(chk.get_HH_q(eig, kall, w1), kpt, irvec)
    if mmn is not None:
        nnb = bkvec.NNB
        AA = sum(chk.get_AABB_q_ib(bkvec, mmn, kall, w1, ib, transl_inv=transl_inv) for ib in range(nnb))
        out["AA"] = _q_to_R(_herm(AA), kpt, irvec)  # get_AA_R: Hermitian part of Eq. (44) WYSV06
        if uhu is not None:
            BB = sum(chk.get_AABB_q_ib(bkvec, mmn, kall, w1, ib, eig=eig) for ib in range(nnb))
            out["BB"] = _q_to_R(BB, kpt, irvec)
            C = np.zeros((nk, chk.num_wann, chk.num_wann, 3, 3), dtype=complex)
            for ib1 in range(nnb):
                for ib2 in range(nnb):
                    C += chk.get_CCOOGG_ib(bkvec, uhu, kall, w1, ib1, ib2, antisym=False)
            # get_CC_R computes a <= b and sets C_ba = C_ab^+
            for a in range(3):
                for b in range(a):
                    C[:, :, :, a, b] = np.conj(np.swapaxes(C[:, :, :, b, a], 1, 2))
            CCq = np.stack([1j * (C[..., 1, 2] - C[..., 2, 1]), 1j * (C[..., 2, 0] - C[..., 0, 2]),
                            1j * (C[..., 0, 1] - C[..., 1, 0])], axis=-1)
            out["CC"] = _q_to_R(CCq, kpt, irvec)
    if spn is not None:
        out["SS"] = _q_to_R(chk.get_SS_q(spn, kall, w1), kpt, irvec)
    return out


def _win_ints(windata, key: str, default: Sequence[int]) -> tuple:
    v = windata.keywords.get(key)
    if v is None:
        return tuple(default)
    try:
        vals = [int(x) for x in v.replace(",", " ").split()]
    except ValueError:
        raise InputFileError(windata.path, f"keyword '{key}' must be integers, got '{v}'") from None
    if len(vals) == 1:
        vals = vals * 3
    if len(vals) != 3:
        raise InputFileError(windata.path, f"keyword '{key}' must have 1 or 3 integers, got '{v}'")
    return tuple(vals)


def load_postw90_model(seed: str, windata, *, use_uhu: bool = True, use_spn: bool = True,
                       use_ws_distance: Optional[bool] = None, atoms=None):
    """A :class:`TBModel` whose interpolation is postw90 3.1's, from SEED.chk(.fmt) + .eig [+ .mmn,
    .uHu, .spn].

    ``use_ws_distance``, ``transl_inv``, ``ws_search_size``, ``ws_distance_tol`` are read from the
    ``.win`` (Wannier90 3.1 defaults: true, false, 2, 1e-5) unless ``use_ws_distance`` is given.
    """
    from .model import TBModel
    from .io.w90data import _check_header_ints, _formatted_guess, _import_wb, _quiet, read_checkpoint_and_eig

    wb = _import_wb()
    chk, eig, files = read_checkpoint_and_eig(seed, wb)
    from .load import _check_mp_grid

    _check_mp_grid(windata, chk.mp_grid, files[0])
    nb, nk = chk.num_bands, chk.num_kpts
    bkvec = mmn = uhu = spn = None
    if os.path.exists(seed + ".mmn"):
        _check_header_ints(seed + ".mmn", [nb, nk], "num_bands, num_kpts")
        with _quiet():
            bkvec = wb["BKVectors"].from_kpoints(recip_lattice=chk.recip_lattice, mp_grid=chk.mp_grid,
                                                 kpoints_red=chk.kpt_red)
            mmn = wb["MMN"].from_w90_file(seedname=seed, bkvec=bkvec, npar=1)
        files.append(seed + ".mmn")
        if use_uhu and os.path.exists(seed + ".uHu"):
            with _quiet():
                uhu = wb["UHU"].from_w90_file(seedname=seed, formatted=_formatted_guess(seed + ".uHu"),
                                              bk_reorder=mmn.bk_reorder)
            files.append(seed + ".uHu")
    if use_spn and os.path.exists(seed + ".spn"):
        with _quiet():
            spn = wb["SPN"].from_w90_file(seedname=seed, formatted=_formatted_guess(seed + ".spn"))
        files.append(seed + ".spn")

    if use_ws_distance is None:
        use_ws_distance = windata.get_bool("use_ws_distance", True)
    transl_inv = windata.get_bool("transl_inv", False)
    search = _win_ints(windata, "ws_search_size", (2, 2, 2))
    tol = windata.get_float("ws_distance_tol", 1e-5)
    with _quiet():
        d = postw90_matrices(chk, eig, bkvec, mmn, uhu, spn, transl_inv=transl_inv,
                             ws_search_size=search, ws_distance_tol=tol)
    names = [k for k in ("HH", "AA", "BB", "CC", "SS") if k in d]
    T = ndeg = None
    if use_ws_distance:
        T, ndeg = ws_translate_dist(d["irvec"], np.asarray(chk.wannier_centers_cart), chk.real_lattice,
                                    chk.mp_grid, search, tol)
    iRvec, mats = fold_ws(d["irvec"], d["ndegen"], [d[k] for k in names], T, ndeg)
    m = dict(zip(names, mats))
    full = uhu is not None
    prov = {
        "source": "chk", "convention": "postw90",
        "files": [windata.path] + files,
        "orbital_moment": "full (internal + external: A from .mmn, B and C from .uHu)" if full else
                          "internal (tight-binding) terms only",
        "spin_moment": "from .spn" if spn is not None else "none",
        "ws_distance": ("postw90 3.1 use_ws_distance=true (ws_translate_dist, checkpoint centres)"
                        if use_ws_distance else "none (postw90 use_ws_distance=false: WS supercell + ndegen)"),
        "position_matrices": "convention II (A(R=0) diagonal = centres), transl_inv=%s" % transl_inv,
    }
    return TBModel(real_lattice=chk.real_lattice, iRvec=iRvec, H_R=m["HH"], centres_cart=None,
                   A_R=m.get("AA") if full else None, B_R=m.get("BB"), CC_R=m.get("CC"), S_R=m.get("SS"),
                   atoms=atoms, spinors=windata.spinors, name=os.path.basename(seed), provenance=prov)


# ----------------------------------------------------------------------------- WannierBerri npz
def load_wannierberri_npz(path: str, *, atoms=None, spinors: Optional[bool] = None, name: Optional[str] = None):
    """A :class:`TBModel` from a directory written by WannierBerri's ``System_R.save_npz`` (old
    layout, loaded with ``legacy=True``; convention I matrices on one R list, centres kept)."""
    from .model import TBModel
    from .io.w90data import _quiet

    if not os.path.isdir(path):
        raise InputFileError(path, "not a directory (expected a System_R.save_npz directory)")
    try:
        with _quiet():
            from wannierberri.system.system_R import System_R
            system = System_R.from_npz(os.path.abspath(path), legacy=True)
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(path, f"WannierBerri could not load it ({type(exc).__name__}: {exc})") from None

    def get(key):
        return np.array(system.get_R_mat(key)) if system.has_R_mat(key) else None

    full = all(system.has_R_mat(k) for k in ("AA", "BB", "CC"))
    S = get("SS")
    prov = {"source": "wbnpz", "files": [os.path.abspath(path)],
            "orbital_moment": "full (A, B, C from the saved system)" if full else "internal terms only",
            "spin_moment": "from SS" if S is not None else "none",
            "ws_distance": "as saved by WannierBerri"}
    return TBModel(real_lattice=np.array(system.real_lattice), iRvec=np.array(system.rvec.iRvec), H_R=get("Ham"),
                   centres_cart=np.array(system.wannier_centers_cart), A_R=get("AA") if full else None,
                   B_R=get("BB") if full else None, CC_R=get("CC") if full else None, S_R=S, atoms=atoms,
                   spinors=bool(S is not None) if spinors is None else spinors,
                   name=name or os.path.basename(os.path.abspath(path).rstrip("/")), provenance=prov)
