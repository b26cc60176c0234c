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
from .banddata import BandData, BandStats, band_data
from .bands import Interpolator
from .io.errors import GMEInputError
from .model import TBModel
from .smearing import Smearing
from .tensorform import AXIAL_EVEN
from .units import ORB_MOMENT_SI, SPIN_MOMENT_SI, angstrom

DEGENERACY_MODES = ("group", "skip")
# K and alpha: j (polar, time-odd) = alpha B (axial, time-odd), so alpha is an axial,
# time-reversal-even rank-2 tensor (docs/theory.md section 8); the symmetry code projects with it
GME_CHARACTER = AXIAL_EVEN
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
        """The Fermi levels, float (nE,) eV."""
        return np.array(self.fermi_energies)

    def fingerprint(self) -> dict:
        """Every setting that changes the sums, as a JSON-able dict (checkpoints key on it)."""
        s = self.smearing
        return {"fermi_energies": list(self.fermi_energies), "smearing": [s.kind, s.width, s.order, s.max_arg],
                "degen_thresh": self.degen_thresh, "degeneracy": self.degeneracy,
                "moment_energy": self.moment_energy, "g_s": self.g_s, "external": self.external,
                "spin": self.spin}


def energy_window(st: GMESettings, nw: int) -> tuple[float, float]:
    """Band energies (eV) outside [lo, hi] have zero Fermi-surface weight at every E_F.

    The smearing is cut at max_arg widths; the margin nw * degen_thresh covers the spread of a
    degenerate group around its mean energy.
    """
    cut = st.smearing.max_arg * st.smearing.width + nw * st.degen_thresh + 1e-9
    return min(st.fermi_energies) - cut, max(st.fermi_energies) + cut


def band_data_of(interp: Interpolator, k_red: np.ndarray, st: GMESettings, *,
                 screen_first: bool = True) -> tuple[Optional[BandData], BandStats]:
    """The :class:`~gme_wannier.banddata.BandData` of the Fermi-surface sums: the points with a
    band in :func:`energy_window`, the columns of the bands inside it (whole groups)."""
    return band_data(interp, k_red, degen_thresh=st.degen_thresh, window=energy_window(st, interp.nw),
                     screen_first=screen_first)


def gme_moments(bd: BandData) -> tuple[np.ndarray, np.ndarray]:
    """The two parts of the orbital moment per column, G = Gc - E Phi (moments.py, ZMS Eq. 10).

    Returns Gc (eV Angstrom^2) and Phi (Angstrom^2, minus the Berry curvature), float (na, 3, ns).
    The spin moment is ``bd.S_diag`` (<sigma>_n; m^spin = -(g_s/2) mu_B <sigma>).
    """
    return mom.orbital_parts_columns(bd.E_all, bd.D, A=bd.A, B=bd.B, CC_diag=bd.CC_diag,
                                     Omega_bar_diag=bd.curlA_diag)


def zero_sums(interp: Interpolator, nE: int) -> dict:
    """Zero raw GME sums: ``orb`` (nE, 3, 3), ``dos`` (nE,) and, with spin matrices, ``spin`` (nE, 3, 3)."""
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


def fermi_surface_points(interp: Interpolator, k_red: np.ndarray, st: GMESettings, *,
                         screen_first: bool = True) -> dict:
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
        parts = [fermi_surface_points(interp, k_red[i:i + block], st, screen_first=screen_first)
                 for i in range(0, nk, block)]
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    out = {"orb": np.zeros((nk, nE, 3, 3)), "dos": np.zeros((nk, nE))}
    if interp.spin:
        out["spin"] = np.zeros((nk, nE, 3, 3))
    if nk == 0:
        return out
    bd, _ = band_data_of(interp, k_red, st, screen_first=screen_first)
    if bd is None:
        return out
    sw = surface_weights(bd, st)
    for key, val in gme_sums(sw, bd, st, per_point=True).items():
        out[key][bd.k_index] = val
    return out


@dataclass(frozen=True, eq=False)
class SurfaceWeights:
    """Fermi-surface weights of the columns of a :class:`BandData`.

    W : float (na, ns, nE) 1/eV, the weight of each column at each Fermi level (k weights
    included once scaled); v : float (na, 3, ns) eV Angstrom, the velocity of each column;
    per_column : maps a per-band moment part, float (na, 3, ns), to its value at each column
    (the group sum at the group's first band, or the group mean at every member); count : float
    (na, ns), states per column for the DOS.
    """

    W: np.ndarray
    v: np.ndarray
    per_column: Callable
    count: np.ndarray

    def scaled(self, w: np.ndarray) -> "SurfaceWeights":
        """The same with W multiplied by the k weights w, float (na,)."""
        return replace(self, W=self.W * w[:, None, None])


def surface_weights(bd: BandData, st: GMESettings) -> SurfaceWeights:
    """(-f') at the group energy, on the first band of each group (the moments are group sums)."""
    lab = bd.labels
    first = mom.group_first_mask(lab)
    size = mom.group_sum(np.ones(lab.shape), lab)
    if st.degeneracy == "skip":
        first = first & (size < 1.5)
    cnt = np.maximum(size, 1.0)
    Eg = mom.group_sum(bd.E, lab) / cnt
    vg = mom.group_sum(bd.v, lab) / cnt[:, None, :]
    delta = st.smearing.delta(Eg[:, :, None] - st.EF[None, None, :])  # (na, ns, nE)
    delta *= first[:, :, None]
    return SurfaceWeights(delta, vg, lambda m: mom.group_sum(m, lab), size)


def fermi_surface_chunk(interp: Interpolator, k_red: np.ndarray, weights: np.ndarray,
                        st: GMESettings, *, screen_first: bool = True) -> dict:
    """Raw Fermi-surface sums of one chunk (internal units, before 1/V and unit factors).

    Returns dict of float arrays: ``orb`` (nE, 3, 3) sum w (-f') v_i G_j [eV A^3],
    ``spin`` (nE, 3, 3) sum w (-f') v_i sigma_j [A], ``dos`` (nE,) sum w (-f') [1/eV].
    The work is restricted to what has a non-zero weight (the smearing is cut at max_arg widths):
    see :func:`band_data_of`. ``screen_first`` as in :func:`gme_wannier.banddata.band_data`.
    """
    return _surface_chunk(interp, k_red, weights, st, screen_first)[0]


def _surface_chunk(interp, k_red, weights, st, screen_first) -> tuple[dict, BandStats]:
    """:func:`fermi_surface_chunk` and the statistics of its band data."""
    weights = np.asarray(weights, dtype=float).reshape(-1)
    k_red = np.atleast_2d(k_red)
    block = block_size(interp)
    if len(weights) > block:  # keep the per-k arrays in cache whatever the chunk size
        parts = [_surface_chunk(interp, k_red[i:i + block], weights[i:i + block], st, screen_first)
                 for i in range(0, len(weights), block)]
        return ({key: sum(p[0][key] for p in parts) for key in parts[0][0]},
                sum((p[1] for p in parts), BandStats()))
    out = zero_sums(interp, len(st.EF))
    if len(weights) == 0:
        return out, BandStats()
    bd, stats = band_data_of(interp, k_red, st, screen_first=screen_first)
    if bd is None:
        return out, stats
    sw = surface_weights(bd, st).scaled(weights[bd.k_index])
    return gme_sums(sw, bd, st), stats


def gme_sums(sw: SurfaceWeights, bd: BandData, st: GMESettings, per_point: bool = False) -> dict:
    """The GME sums sum_kn W (nE) v_i m_j of the columns: ``orb``, ``dos`` and, with spin, ``spin``.

    Summed over the points, (nE, 3, 3) and (nE,), or with ``per_point`` per point, (na, nE, 3, 3)
    and (na, nE). The moment m is that of ZMS Eq. 10 at the band energy (``moment_energy``
    "band") or at each Fermi level ("fermi").
    """
    W, v = sw.W, sw.v
    n, ns, nE = W.shape
    if per_point:
        Wt = np.ascontiguousarray(np.swapaxes(W, 1, 2))  # (n, nE, ns)

        def contract(m):  # per k -> (n, nE, 3, 3)
            P = (v[:, :, None, :] * sw.per_column(m)[:, None, :, :]).reshape(n, 9, ns)
            return np.matmul(Wt, np.swapaxes(P, 1, 2)).reshape(n, nE, 3, 3)
        out = {"dos": (W * sw.count[:, :, None]).sum(axis=1)}
        EF = st.EF[None, :, None, None]
    else:
        dl = W.reshape(n * ns, nE).T  # (nE, n*ns)

        def contract(m):  # one GEMM -> (nE, 3, 3)
            P = v[:, :, None, :] * sw.per_column(m)[:, None, :, :]  # (n, 3, 3, ns)
            return (dl @ np.moveaxis(P.reshape(n, 9, ns), 2, 1).reshape(n * ns, 9)).reshape(nE, 3, 3)
        out = {"dos": (W * sw.count[:, :, None]).sum(axis=(0, 1))}
        EF = st.EF[:, None, None]
    Gc, Phi = gme_moments(bd)
    if st.moment_energy == "band":
        out["orb"] = contract(Gc - bd.E[:, None, :] * Phi)
    else:
        out["orb"] = contract(Gc) - EF * contract(Phi)
    if bd.S_diag is not None:
        out["spin"] = contract(bd.S_diag)
    return out


def _group_moments(interp: Interpolator, k_red: np.ndarray, st: GMESettings) -> dict:
    """Every band at every point: group energies E (nk, nw), moments Gc - E Phi (nk, 3, nw) and
    spins (nk, 3, nw) summed over each group (at its first band), for the Fermi-sea form."""
    bd, _ = band_data(interp, k_red, degen_thresh=st.degen_thresh, columns="all")
    lab = bd.labels
    Gc, Phi = gme_moments(bd)
    out = {"E": mom.group_mean(bd.E[:, None, :], lab)[:, 0],
           "m": mom.group_sum(Gc, lab) - mom.group_sum(bd.E[:, None, :] * Phi, lab)}
    if bd.S_diag is not None:
        out["sigma"] = mom.group_sum(bd.S_diag, lab)
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
    g0 = _group_moments(interp, k_red, st)
    EF = st.EF
    occ = st.smearing.occupation(g0["E"][:, :, None] - EF[None, None, :]) * np.asarray(weights)[:, None, None]
    inv_b = np.linalg.inv(interp.recip)  # Cartesian -> reduced: k_red = k_cart @ inv(recip)
    dm_orb = np.zeros(g0["m"].shape + (3,))
    dm_spin = np.zeros(g0["m"].shape + (3,)) if interp.spin else None
    for i in range(3):
        shift = dk * inv_b[i]
        gp = _group_moments(interp, k_red + shift, st)
        gm = _group_moments(interp, k_red - shift, st)
        dm_orb[..., i] = (gp["m"] - gm["m"]) / (2 * dk)
        if interp.spin:
            dm_spin[..., i] = (gp["sigma"] - gm["sigma"]) / (2 * dk)
    dos = (st.smearing.delta(g0["E"][:, :, None] - EF[None, None, :]) * np.asarray(weights)[:, None, None]).sum(axis=(0, 1))
    out = {"orb": np.einsum("kne,kjni->eij", occ, dm_orb, optimize=True), "dos": dos}
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


# 13 parameters, on purpose: the keyword-only options of the one k loop (communicator, chunking,
# checkpoint, progress, interpolator reuse, BLAS threads, extra weight sets and quantities), each
# optional and passed through to parallel.chunked_sum; an options object would only rename them.
def sum_over_kpoints(model: TBModel, k_red: np.ndarray, weights: np.ndarray, st: GMESettings, *,
                     comm=None, chunk_size: int = 200, kernel: str = "surface", checkpoint=None,
                     progress=None, interp: Optional[Interpolator] = None, blas_threads: int = 1,
                     weight_sets: Optional[dict] = None, extra: Sequence = ()) -> dict:
    """The k loop: distribute chunks of (k_red, weights) over ranks and reduce once per tensor.

    weight_sets : dict name -> float (nk,), optional
        Further weights of the same points (e.g. those of a coarser sub-mesh for the error
        estimate): the sums with them come back under ``"<key>@<name>"``. Surface kernel only.
    extra : quantities with ``chunk(interp, k_red, weights, st) -> dict`` whose raw sums join
        the same loop (see :func:`gme_wannier.calculate.compute`, ``quantities``).

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
    n_chunks = max(1, -(-len(k_red) // chunk_size))
    bounds = np.linspace(0, len(k_red), n_chunks + 1).astype(int)
    seen = [BandStats()]  # what this rank's chunks kept so far: picks the eigensolver path

    def compute_chunk(c: int) -> dict:
        sl = slice(bounds[c], bounds[c + 1])
        s = seen[0]
        screen = s.n_k == 0 or s.n_active < 0.4 * s.n_k
        if names:
            pts = fermi_surface_points(interp, k_red[sl], st, screen_first=screen)
            out = {}
            for key, val in pts.items():
                sums = np.tensordot(Wsets[:, sl], val, axes=(1, 0))
                out[key] = sums[0]
                out.update({f"{key}@{n}": sums[i + 1] for i, n in enumerate(names)})
            seen[0] = s + BandStats(len(pts["dos"]), int(np.count_nonzero(pts["dos"].any(axis=1))), 0)
        elif kernel == "surface":
            out, stats = _surface_chunk(interp, k_red[sl], weights[sl], st, screen)
            seen[0] = s + stats
        else:
            out = fermi_sea_chunk(interp, k_red[sl], weights[sl], st)
        for q in extra:
            out.update(q.chunk(interp, k_red[sl], weights[sl], st))
        return out

    # many small matrices per chunk: multithreaded BLAS only adds overhead (measured 10x on
    # 56x56 eigensolves); parallelism comes from MPI ranks instead.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=blas_threads):
        return chunked_sum(n_chunks, compute_chunk, comm, checkpoint=checkpoint, progress=progress,
                           items_per_chunk=list(np.diff(bounds)))
