"""Brillouin-zone sums of the GME integrand: the per-chunk kernels and the k loop driver.

K_ij(E_F) = (1/V_cell) sum_k w_k sum_groups (-f'(E_g - E_F)) (dE_g/dk_i) m_g,j       [Ampere]

with w_k the fraction of the Brillouin zone of each point (sum w_k = 1 over the whole BZ) and
m in J/T; alpha0 = (e/hbar) K (docs/theory.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Optional, Sequence

import numpy as np

from . import moments as mom
from .bands import Interpolator, diagonal_columns, rotate_columns, select_window
from .io.errors import GMEInputError
from .model import TBModel
from .smearing import Smearing
from .units import ORB_MOMENT_SI, SPIN_MOMENT_SI, angstrom

DEGENERACY_MODES = ("group", "skip")
MOMENT_ENERGY = ("band", "fermi")


@dataclass(frozen=True)
class GMESettings:
    """Options of the Fermi-surface sum.

    fermi_energies : float (nE,), eV.
    smearing : Smearing (temperature or numerical broadening).
    degen_thresh : eV; bands closer than this are one degenerate group.
    degeneracy : "group" (sum the group: gauge invariant, default) or "skip" (leave degenerate
        bands out, as postw90's gyrotropic module does).
    moment_energy : "band" (m with H - E_n: ZMS Eq. 10, default) or "fermi" (H - E_F, as
        WannierBerri's GME_orb_FermiSurf); identical on the Fermi surface.
    g_s : spin g-factor.
    external : use the A, B, C terms of the orbital moment when the model has them.
    spin : include the spin moment when the model has it.
    """

    fermi_energies: tuple = (0.0,)
    smearing: Smearing = field(default_factory=Smearing)
    degen_thresh: float = 1e-4
    degeneracy: str = "group"
    moment_energy: str = "band"
    g_s: float = 2.0
    external: bool = True
    spin: bool = True

    def __post_init__(self):
        ef = np.atleast_1d(np.asarray(self.fermi_energies, dtype=float))
        if ef.ndim != 1 or ef.size == 0 or not np.all(np.isfinite(ef)):
            raise GMEInputError("fermi_energies must be a non-empty list of numbers (eV)")
        object.__setattr__(self, "fermi_energies", tuple(float(x) for x in ef))
        if self.degeneracy not in DEGENERACY_MODES:
            raise GMEInputError(f"unknown degeneracy mode '{self.degeneracy}' (choose from {DEGENERACY_MODES})")
        if self.moment_energy not in MOMENT_ENERGY:
            raise GMEInputError(f"unknown moment_energy '{self.moment_energy}' (choose from {MOMENT_ENERGY})")
        if not (self.degen_thresh >= 0):
            raise GMEInputError("degen_thresh must be >= 0")

    @property
    def EF(self) -> np.ndarray:
        return np.array(self.fermi_energies)

    def fingerprint(self) -> dict:
        s = self.smearing
        return {"fermi_energies": list(self.fermi_energies), "smearing": [s.kind, s.width, s.order, s.max_arg],
                "degen_thresh": self.degen_thresh, "degeneracy": self.degeneracy,
                "moment_energy": self.moment_energy, "g_s": self.g_s, "external": self.external,
                "spin": self.spin}


def _group_data(interp: Interpolator, k_red: np.ndarray, st: GMESettings) -> dict:
    """Per-group energies, velocities and moment parts at a chunk of k-points."""
    ch = interp.evaluate(k_red)
    labels = mom.degenerate_groups(ch.E, st.degen_thresh)
    D = mom.rotation_D(ch.V, ch.E, labels)
    first = mom.group_first_mask(labels)
    if st.degeneracy == "skip":
        size = mom.group_sum(np.ones(labels.shape), labels)
        first = first & (size < 1.5)
    Gc, Phi = mom.orbital_parts(ch, D, external=interp.external)
    out = {
        "E": mom.group_mean(ch.E[:, None, :], labels)[:, 0],
        "v": mom.group_mean(mom.velocity(ch), labels),
        "Gc": mom.group_sum(Gc, labels),
        "Phi": mom.group_sum(Phi, labels),
        "EPhi": mom.group_sum(ch.E[:, None, :] * Phi, labels),
        "mask": first,
        "size": mom.group_sum(np.ones(labels.shape), labels),
    }
    if interp.spin:
        out["sigma"] = mom.group_sum(mom.spin_sigma(ch), labels)
    return out


def energy_window(st: GMESettings, nw: int) -> tuple[float, float]:
    """Band energies (eV) outside [lo, hi] have zero Fermi-surface weight at every E_F.

    The smearing is cut at max_arg widths; the margin nw * degen_thresh covers the spread of a
    degenerate group around its mean energy.
    """
    cut = st.smearing.max_arg * st.smearing.width + nw * st.degen_thresh + 1e-9
    return min(st.fermi_energies) - cut, max(st.fermi_energies) + cut


def _band_windows(E: np.ndarray, labels: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, int]:
    """Per k, the first band of a contiguous window of ns bands holding every band in [lo, hi],
    extended to whole degenerate groups. E : (nk, nw) ascending. Returns start (nk,), ns."""
    nk, nw = E.shape
    first = np.sum(E < lo, axis=1)  # first band >= lo
    last = np.sum(E <= hi, axis=1) - 1  # last band <= hi
    fi = mom.group_first_index(labels)
    # last band of each band's group
    rev = labels[:, ::-1]
    li = nw - 1 - mom.group_first_index(rev)[:, ::-1]
    ar = np.arange(nk)
    first = fi[ar, np.clip(first, 0, nw - 1)]
    last = li[ar, np.clip(last, 0, nw - 1)]
    ns = int(np.max(last - first + 1))
    start = np.clip(np.minimum(first, nw - ns), 0, None)
    return start, ns


def window_band_data(interp: Interpolator, k_red: np.ndarray, st: GMESettings,
                     window: Optional[tuple] = None) -> Optional[dict]:
    """Per-band energies, velocities and moment parts for the bands near the Fermi levels.

    Stage 1: H(k) and its eigenvalues at every k (eigenvalues only while few k-points are
    active). Stage 2, only at the active k-points (a band in :func:`energy_window`): the other
    Wannier-gauge matrices, the eigenvectors, and band-basis columns for a window of ns bands.

    window : (first band, number of bands), optional
        Use these bands at every k and skip the screening (every k is active).

    Returns None when no k-point is active, else a dict: ``act`` int (na,) indices into k_red;
    ``cols`` int (na, ns) band indices; ``E`` (na, ns) eV; ``labels`` (na, ns) degenerate
    groups; ``v`` (na, 3, ns) eV Angstrom; ``Gc`` (na, 3, ns) eV Angstrom^2; ``Phi`` (na, 3, ns)
    Angstrom^2; ``sigma`` (na, 3, ns) when the model has spin.
    """
    k_red = np.atleast_2d(k_red)
    nw = interp.nw
    lo, hi = energy_window(st, nw)
    phase = interp.phase(k_red)
    H = interp.hamiltonian(phase)
    stats = interp.stats
    stats["n_k"] += len(k_red)
    if window is not None:
        act = np.arange(len(k_red))
        E, U = np.linalg.eigh(H)
    elif stats["n_active"] < 0.4 * (stats["n_k"] - len(k_red)) or stats["n_k"] == len(k_red):
        Eall = np.linalg.eigvalsh(H)
        act = np.nonzero(((Eall >= lo) & (Eall <= hi)).any(axis=1))[0]
        if len(act) == 0:
            return None
        E, U = np.linalg.eigh(H[act])
    else:
        E, U = np.linalg.eigh(H)
        act = np.nonzero(((E >= lo) & (E <= hi)).any(axis=1))[0]
        if len(act) == 0:
            return None
        E, U = E[act], U[act]
    stats["n_active"] += len(act)
    na = len(act)
    labels = mom.degenerate_groups(E, st.degen_thresh)
    if window is None:
        start, ns = _band_windows(E, labels, lo, hi)
    else:
        start, ns = np.full(na, window[0]), int(window[1])
    stats["n_columns"] += na * ns
    cols = start[:, None] + np.arange(ns)[None, :]
    Esel = np.take_along_axis(E, cols, axis=1)
    lab_sel = np.take_along_axis(labels, cols, axis=1)
    Usel = select_window(U, start, ns)

    X = interp.derivatives(phase[act])  # (na, ncomp - 1, nw, nw)
    n_full = 9 if interp.external else 3  # dH, A, B: full columns; CC, curl A, S: diagonals
    Xbar = rotate_columns(X[:, :n_full], U, Usel)  # (na, n_full, nw, ns)
    V = Xbar[:, :3]
    v = np.take_along_axis(V, cols[:, None, None, :], axis=2)[:, :, 0, :].real  # (na, 3, ns)
    D = mom.rotation_D_columns(V, E, Esel, labels, lab_sel)
    if interp.external:
        diag = diagonal_columns(X[:, 9:15], Usel)  # CC, curl A
        Gc, Phi = mom.orbital_parts_columns(E, D, A=Xbar[:, 3:6], B=Xbar[:, 6:9], CC_diag=diag[:, :3],
                                            Omega_bar_diag=diag[:, 3:6])
    else:
        Gc, Phi = mom.orbital_parts_columns(E, D)
    out = {"act": act, "cols": cols, "E": Esel, "labels": lab_sel, "v": v, "Gc": Gc, "Phi": Phi}
    if interp.spin:
        s0 = 15 if interp.external else 3
        out["sigma"] = diagonal_columns(X[:, s0:s0 + 3], Usel).real
    return out


def _zero_sums(interp: Interpolator, nE: int) -> dict:
    out = {"orb": np.zeros((nE, 3, 3)), "dos": np.zeros(nE)}
    if interp.spin:
        out["spin"] = np.zeros((nE, 3, 3))
    return out


def block_size(interp: Interpolator, budget_bytes: float = 32e6) -> int:
    """k-points evaluated together: the Wannier-gauge matrices of a block take about
    ``budget_bytes`` (measured on SrSi2, 56 WFs: 200 k per block 470 us/k, 1000 k 850 us/k;
    Te, 9 WFs: flat from 1000 to 5000). Bounds the memory independently of the chunk size."""
    per_k = 16.0 * interp.ncomp * interp.nw ** 2
    return int(max(16, min(4096, budget_bytes // per_k)))


def fermi_surface_points(interp: Interpolator, k_red: np.ndarray, st: GMESettings) -> dict:
    """Fermi-surface integrand at each k-point, unweighted (internal units).

    Returns dict of float arrays: ``orb`` (nk, nE, 3, 3) sum_n (-f') v_i G_j [eV A^3],
    ``dos`` (nk, nE) sum_n (-f') [1/eV] and, with spin, ``spin`` (nk, nE, 3, 3) [A]. The
    weighted sum over k of these is :func:`fermi_surface_chunk`; per-point values are what the
    error estimates need (:mod:`gme_wannier.convergence`).
    """
    k_red = np.atleast_2d(k_red)
    nk, nE = len(k_red), len(st.EF)
    block = block_size(interp)
    if nk > block:
        parts = [fermi_surface_points(interp, k_red[i:i + block], st) for i in range(0, nk, block)]
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    out = {"orb": np.zeros((nk, nE, 3, 3)), "dos": np.zeros((nk, nE))}
    if interp.spin:
        out["spin"] = np.zeros((nk, nE, 3, 3))
    if nk == 0:
        return out
    b = window_band_data(interp, k_red, st)
    if b is None:
        return out
    delta, vg, per_column = surface_weights(b, st)
    for key, val in _point_sums(delta, vg, per_column, b, st).items():
        out[key][b["act"]] = val
    return out


def surface_weights(b: dict, st: GMESettings):
    """(-f') per band column (na, ns, nE), group-mean velocities and the group-sum map."""
    lab = b["labels"]
    first = mom.group_first_mask(lab)
    size = mom.group_sum(np.ones(lab.shape), lab)
    if st.degeneracy == "skip":
        first = first & (size < 1.5)
    cnt = np.maximum(size, 1.0)
    Eg = mom.group_sum(b["E"], lab) / cnt
    vg = mom.group_sum(b["v"], lab) / cnt[:, None, :]
    delta = st.smearing.delta(Eg[:, :, None] - st.EF[None, None, :])  # (na, ns, nE)
    delta *= first[:, :, None]
    b["count"] = size  # states per group, for the DOS (the moments are group sums already)
    return delta, vg, (lambda m: mom.group_sum(m, lab))


def fermi_surface_chunk(interp: Interpolator, k_red: np.ndarray, weights: np.ndarray,
                        st: GMESettings) -> dict:
    """Raw Fermi-surface sums of one chunk (internal units, before 1/V and unit factors).

    Returns dict of float arrays: ``orb`` (nE, 3, 3) sum w (-f') v_i G_j [eV A^3],
    ``spin`` (nE, 3, 3) sum w (-f') v_i sigma_j [A], ``dos`` (nE,) sum w (-f') [1/eV].

    Same result as :func:`fermi_surface_chunk_reference`, with the work restricted to what has a
    non-zero weight (the smearing is cut at max_arg widths): see :func:`window_band_data`.
    """
    weights = np.asarray(weights, dtype=float).reshape(-1)
    k_red = np.atleast_2d(k_red)
    block = block_size(interp)
    if len(weights) > block:  # keep the per-k arrays in cache whatever the chunk size
        parts = [fermi_surface_chunk(interp, k_red[i:i + block], weights[i:i + block], st)
                 for i in range(0, len(weights), block)]
        return {key: sum(p[key] for p in parts) for key in parts[0]}
    EF = st.EF
    nE = len(EF)
    out = _zero_sums(interp, nE)
    if len(weights) == 0:
        return out
    b = window_band_data(interp, k_red, st)
    if b is None:
        return out
    delta, vg, per_column = surface_weights(b, st)
    delta *= weights[b["act"]][:, None, None]
    return _weighted_sums(delta, vg, per_column, b, st)


def _point_sums(W: np.ndarray, v: np.ndarray, per_column, b: dict, st: GMESettings) -> dict:
    """Like :func:`_weighted_sums` but per k-point: ``orb``/``spin`` (n, nE, 3, 3), ``dos`` (n, nE)."""
    n, ns, nE = W.shape
    Wt = np.ascontiguousarray(np.swapaxes(W, 1, 2))  # (n, nE, ns)

    def contract(m):  # sum_n W (nE) v_i m_j per k -> (n, nE, 3, 3)
        P = (v[:, :, None, :] * per_column(m)[:, None, :, :]).reshape(n, 9, ns)
        return np.matmul(Wt, np.swapaxes(P, 1, 2)).reshape(n, nE, 3, 3)

    out = {"dos": (W * b["count"][:, :, None]).sum(axis=1) if "count" in b else W.sum(axis=1)}
    if st.moment_energy == "band":
        out["orb"] = contract(b["Gc"] - b["E"][:, None, :] * b["Phi"])
    else:
        out["orb"] = contract(b["Gc"]) - st.EF[None, :, None, None] * contract(b["Phi"])
    if "sigma" in b:
        out["spin"] = contract(b["sigma"])
    return out


def _weighted_sums(W: np.ndarray, v: np.ndarray, per_column, b: dict, st: GMESettings) -> dict:
    """The raw sums of :func:`fermi_surface_chunk` from Fermi-surface weights per band column.

    W : float (n, ns, nE) 1/eV, the weight of each column at each E_F (k weights included);
    v : float (n, 3, ns) eV Angstrom, the velocity of each column; per_column : maps a per-band
    moment part of ``b`` (see :func:`window_band_data`), float (n, 3, ns), to its value at each
    column (the group sum, or the group mean). Returns ``orb``, ``dos`` and, with spin, ``spin``.
    """
    n, ns, nE = W.shape
    EF = st.EF
    dl = W.reshape(n * ns, nE).T  # (nE, n*ns)

    def contract(m):  # sum_kn W (nE) v_i m_j -> (nE, 3, 3)
        P = v[:, :, None, :] * per_column(m)[:, None, :, :]  # (n, 3, 3, ns)
        return (dl @ np.moveaxis(P.reshape(n, 9, ns), 2, 1).reshape(n * ns, 9)).reshape(nE, 3, 3)

    out = {"dos": (W * b["count"][:, :, None]).sum(axis=(0, 1)) if "count" in b else W.sum(axis=(0, 1))}
    if st.moment_energy == "band":
        out["orb"] = contract(b["Gc"] - b["E"][:, None, :] * b["Phi"])
    else:
        out["orb"] = contract(b["Gc"]) - EF[:, None, None] * contract(b["Phi"])
    if "sigma" in b:
        out["spin"] = contract(b["sigma"])
    return out


def tetra_chunk(interp: Interpolator, k_red: np.ndarray, W: np.ndarray, band0: int, pad: int,
                st: GMESettings) -> dict:
    """Raw sums of one chunk with tetrahedron weights (same keys and units as
    :func:`fermi_surface_chunk`).

    W : float (nk, nb, nE) 1/eV, :func:`gme_wannier.tetra.fermi_surface_weights` of bands
    band0 .. band0 + nb - 1 at these k-points. Per-band quantities are group means (the group
    sum shared equally by its members, gauge invariant); bands band0 - pad .. band0 + nb + pad - 1
    are evaluated so that groups at the edges are whole.
    """
    EF = st.EF
    nE = len(EF)
    out = _zero_sums(interp, nE)
    nk, nb, _ = W.shape
    if nk == 0:
        return out
    nw = interp.nw
    b_lo = max(0, band0 - pad)
    b_hi = min(nw, band0 + nb + pad)
    b = window_band_data(interp, k_red, st, window=(b_lo, b_hi - b_lo))
    lab = b["labels"]
    size = mom.group_sum(np.ones(lab.shape), lab)
    fi = mom.group_first_index(lab)
    cnt = np.maximum(size, 1.0)
    inner = slice(band0 - b_lo, band0 - b_lo + nb)

    def per_band(x):  # group mean at every member, bands band0 .. band0 + nb - 1
        g = mom.group_sum(x, lab) / cnt.reshape((len(lab),) + (1,) * (x.ndim - 2) + (lab.shape[1],))
        idx = np.broadcast_to(fi.reshape((len(lab),) + (1,) * (x.ndim - 2) + (lab.shape[1],)), g.shape)
        return np.take_along_axis(g, idx, axis=-1)[..., inner]

    Wk = W
    if st.degeneracy == "skip":
        Wk = W * (np.take_along_axis(size, fi, axis=-1)[:, inner] < 1.5)[:, :, None]
    return _weighted_sums(Wk, per_band(b["v"]), per_band, b, st)


def sum_over_mesh_tetra(model: TBModel, mesh, st: GMESettings, *, comm=None, chunk_size: int = 1000,
                        checkpoint=None, progress=None, interp: Optional[Interpolator] = None,
                        blas_threads: int = 1) -> dict:
    """Linear-tetrahedron Fermi-surface sums on the whole uniform Gamma-centred mesh.

    The energies are computed at every mesh point (shared out over the ranks, then held by every
    rank: the tetrahedron weights need the neighbours), the weights of :mod:`gme_wannier.tetra` follow, and the moments are
    evaluated only at the mesh points with a non-zero weight, in chunks distributed over the
    ranks. Memory: the band energies on the whole mesh, and the weights of the points that a
    Fermi level reaches (n_points x n_bands x n_E_F).
    Returns the raw sums (see :func:`fermi_surface_chunk`); ``smearing`` is not used.
    """
    from threadpoolctl import threadpool_limits

    from .kmesh import check_mesh, uniform_mesh
    from .parallel import chunked_sum, distributed_rows, get_comm
    from .tetra import fermi_surface_weights

    if comm is None:
        comm = get_comm("serial")
    mesh = check_mesh(mesh)
    if interp is None:
        interp = Interpolator(model, external=st.external, spin=st.spin)
    k = uniform_mesh(mesh)
    EF = st.EF
    with threadpool_limits(limits=blas_threads):
        E = distributed_rows(lambda p: interp.energies(p, chunk_size), k, comm)  # shared out, all on every rank
        # bands that reach the Fermi window somewhere
        reach = np.nonzero((E.min(axis=0) < EF.max()) & (E.max(axis=0) > EF.min()))[0]
        if len(reach) == 0:
            return _zero_sums(interp, len(EF))
        band0, nb = int(reach[0]), int(reach[-1] - reach[0] + 1)
        act, W = fermi_surface_weights(E[:, band0:band0 + nb], mesh, model.recip_lattice, EF, sparse=True)
        del E
        n_chunks = max(1, -(-len(act) // chunk_size))
        bounds = np.linspace(0, len(act), n_chunks + 1).astype(int)

        def compute_chunk(c: int) -> dict:
            sl = slice(bounds[c], bounds[c + 1])
            return tetra_chunk(interp, k[act[sl]], W[sl], band0, 4, st)

        return chunked_sum(n_chunks, compute_chunk, comm, checkpoint=checkpoint, progress=progress,
                           items_per_chunk=list(np.diff(bounds)))


def fermi_surface_chunk_reference(interp: Interpolator, k_red: np.ndarray, weights: np.ndarray,
                        st: GMESettings) -> dict:
    """:func:`fermi_surface_chunk` the straightforward way: every band at every k, full
    rotations (kept as the reference of the tests and benchmarks).

    Returns dict of float arrays: ``orb`` (nE, 3, 3) sum w (-f') v_i G_j [eV A^3],
    ``spin`` (nE, 3, 3) sum w (-f') v_i sigma_j [A], ``dos`` (nE,) sum w (-f') [1/eV].
    """
    g = _group_data(interp, k_red, st)
    EF = st.EF
    delta = st.smearing.delta(g["E"][:, :, None] - EF[None, None, :])  # (nk, nw, nE)
    delta = delta * (g["mask"] * np.asarray(weights)[:, None])[:, :, None]
    v = g["v"]
    if st.moment_energy == "band":
        orb = np.einsum("kne,kin,kjn->eij", delta, v, g["Gc"] - g["EPhi"], optimize=True)
    else:
        orb = (np.einsum("kne,kin,kjn->eij", delta, v, g["Gc"], optimize=True)
               - EF[:, None, None] * np.einsum("kne,kin,kjn->eij", delta, v, g["Phi"], optimize=True))
    out = {"orb": orb, "dos": (delta * g["size"][:, :, None]).sum(axis=(0, 1))}
    if "sigma" in g:
        out["spin"] = np.einsum("kne,kin,kjn->eij", delta, v, g["sigma"], optimize=True)
    return out


def fermi_sea_chunk(interp: Interpolator, k_red: np.ndarray, weights: np.ndarray, st: GMESettings,
                    dk: float = 1e-4) -> dict:
    """Fermi-sea form sum w f(E_n) d m_n,j / dk_i by central differences (cross-check only).

    Band-resolved derivatives need bands that do not cross within +-dk (1/Angstrom): use on
    models whose bands are non-degenerate along the mesh. Returns ``orb`` and ``spin`` as in
    :func:`fermi_surface_chunk` (same units: the derivative carries the 1/Angstrom of v).
    """
    if st.moment_energy != "band":
        raise GMEInputError("the Fermi-sea cross-check uses the moment at the band energy")
    st0 = replace(st, degeneracy="group")
    g0 = _group_data(interp, k_red, st0)
    EF = st.EF
    occ = st.smearing.occupation(g0["E"][:, :, None] - EF[None, None, :]) * np.asarray(weights)[:, None, None]
    inv_b = np.linalg.inv(interp.recip)  # Cartesian -> reduced: k_red = k_cart @ inv(recip)
    dm_orb = np.zeros(g0["Gc"].shape + (3,))
    dm_spin = np.zeros(g0["Gc"].shape + (3,)) if interp.spin else None
    for i in range(3):
        shift = dk * inv_b[i]
        gp = _group_data(interp, k_red + shift, st0)
        gm = _group_data(interp, k_red - shift, st0)
        dm_orb[..., i] = ((gp["Gc"] - gp["EPhi"]) - (gm["Gc"] - gm["EPhi"])) / (2 * dk)
        if interp.spin:
            dm_spin[..., i] = (gp["sigma"] - gm["sigma"]) / (2 * dk)
    out = {"orb": np.einsum("kne,kjni->eij", occ, dm_orb, optimize=True), "dos": occ.sum(axis=(0, 1))}
    if interp.spin:
        out["spin"] = np.einsum("kne,kjni->eij", occ, dm_spin, optimize=True)
    return out


def to_ampere(raw: dict, model: TBModel, st: GMESettings) -> dict:
    """Convert raw sums into the K tensor in Ampere: keys orbital, spin, total (nE, 3, 3)."""
    norm = 1.0 / (model.cell_volume * angstrom**2)
    K = {"orbital": raw["orb"] * ORB_MOMENT_SI * norm}
    if "spin" in raw:
        K["spin"] = raw["spin"] * (0.5 * st.g_s) * SPIN_MOMENT_SI * norm
    else:
        K["spin"] = np.zeros_like(K["orbital"])
    K["total"] = K["orbital"] + K["spin"]
    return K


def sum_over_kpoints(model: TBModel, k_red: np.ndarray, weights: np.ndarray, st: GMESettings, *,
                     comm=None, chunk_size: int = 200, kernel: str = "surface", checkpoint=None,
                     progress=None, interp: Optional[Interpolator] = None, blas_threads: int = 1,
                     weight_sets: Optional[dict] = None, extra: Sequence = ()) -> dict:
    """The k loop: distribute chunks of (k_red, weights) over ranks and reduce once per tensor.

    weight_sets : dict name -> float (nk,), optional
        Further weights of the same points (e.g. those of a coarser sub-mesh for the error
        estimate): the sums with them come back under ``"<key>@<name>"``. Surface kernel only.
    extra : quantities with ``chunk(interp, k_red, weights, st) -> dict`` whose raw sums join
        the same loop (see :func:`gme_wannier.calculate.compute`, ``extra_quantities``).

    Returns the raw sums (see :func:`fermi_surface_chunk`), identical on every rank.
    """
    from .parallel import chunked_sum, get_comm

    if comm is None:
        comm = get_comm("serial")
    k_red = np.asarray(k_red, dtype=float).reshape(-1, 3)
    weights = np.asarray(weights, dtype=float).reshape(-1)
    if len(k_red) != len(weights):
        raise ValueError("k_red and weights must have the same length")
    if interp is None:
        interp = Interpolator(model, external=st.external, spin=st.spin)
    names = sorted(weight_sets or {})
    if names:
        if kernel != "surface":
            raise GMEInputError("extra weight sets need the Fermi-surface kernel")
        Wsets = np.stack([weights] + [np.asarray(weight_sets[n], dtype=float).reshape(-1) for n in names])
    fn: Callable = fermi_surface_chunk if kernel == "surface" else fermi_sea_chunk
    n_chunks = max(1, -(-len(k_red) // chunk_size))
    bounds = np.linspace(0, len(k_red), n_chunks + 1).astype(int)

    def compute_chunk(c: int) -> dict:
        sl = slice(bounds[c], bounds[c + 1])
        if names:
            pts = fermi_surface_points(interp, k_red[sl], st)
            out = {}
            for key, val in pts.items():
                sums = np.tensordot(Wsets[:, sl], val, axes=(1, 0))
                out[key] = sums[0]
                out.update({f"{key}@{n}": sums[i + 1] for i, n in enumerate(names)})
        else:
            out = fn(interp, k_red[sl], weights[sl], st)
        for q in extra:
            out.update(q.chunk(interp, k_red[sl], weights[sl], st))
        return out

    # many small matrices per chunk: multithreaded BLAS only adds overhead (measured 10x on
    # 56x56 eigensolves); parallelism comes from MPI ranks instead.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=blas_threads):
        return chunked_sum(n_chunks, compute_chunk, comm, checkpoint=checkpoint, progress=progress,
                           items_per_chunk=list(np.diff(bounds)))
