"""Would local refinement of the T = 0 tetrahedra pay off? (docs/convergence.md, "What was tried")

For every cell c of a Gamma-centred mesh N of Te_tut24 (E_F 5.85-6.15 eV, 16 levels), the
linear-tetrahedron sum I_c(N) over its six tetrahedra and the sum over its eight subcells on 2N,
I_c(2N), are computed; d_c = I_c(2N) - I_c(N) is the local error of the cell. The script prints
how concentrated the |d_c| are and how much they cancel, for N and 2N (the cell sums add up to
`tetra.sum_over_mesh_tetra`, checked), and then simulates the decision an adaptive sampler would
take: refine to 4N only the cells of N with the largest |d_c(N -> 2N)|, and measure how much of
the change 2N -> 4N the others leave out.

    python benchmarks/local_refinement_t0.py            # N = 24x24x16: about 1 min
    python benchmarks/local_refinement_t0.py --n 32 32 20

Whole zone, no symmetry; energies on every point of 4N (N = 24x24x16: 590k points).
"""

import argparse
import os
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = os.path.join(os.path.dirname(ROOT), "shared", "data", "Te_tut24", "Te")


def per_band_terms(interp, k):
    """v_i m_j per band (group means, as the tetrahedron kernel uses them): float (nk, nw, 3, 3).
    ``tetra.tetra_chunk`` per point, with one "Fermi level" per band and W[k, n, e] = delta_ne (the
    moment at the band energy does not use the levels)."""
    from gme_wannier.integrate import GMESettings
    from gme_wannier.tetra import tetra_chunk

    nw = interp.nw
    st = GMESettings(fermi_energies=tuple(np.arange(nw, dtype=float)))  # one "level" per band
    out = np.zeros((len(k), nw, 3, 3))
    for s in range(0, len(k), 500):
        kk = k[s:s + 500]
        W = np.broadcast_to(np.eye(nw)[None], (len(kk), nw, nw)).copy()  # W[k, n, e] = delta_ne
        out[s:s + 500] = tetra_chunk(interp, kk, W, 0, 0, st, per_point=True)["orb"]
    return out


def cell_sums(model, interp, EF, M, sub):
    """Tetrahedron sums per cell of mesh M over its sub^3 subcells on M*sub: float (nM, nE, 3, 3)."""
    from gme_wannier.tetra import _CUBE, cube_tetrahedra, tetra_corner_weights

    F = M * sub
    cells = np.indices(tuple(M)).reshape(3, -1).T
    so = np.indices((sub,) * 3).reshape(3, -1).T
    orig = (cells[:, None, :] * sub + so[None]).reshape(-1, 3)
    corners = np.mod(orig[:, None, :] + _CUBE[None], F)
    flat = (corners[..., 0] * F[1] + corners[..., 1]) * F[2] + corners[..., 2]
    uniq, inv = np.unique(flat.reshape(-1), return_inverse=True)
    k = np.stack(np.unravel_index(uniq, tuple(F)), 1) / F
    E = interp.energies(k, 1000)
    tets = inv.reshape(-1, 8)[:, cube_tetrahedra(F, model.recip_lattice)]  # (nsub, 6, 4)
    et = E[tets]
    cut = (et.min(2) < EF.max()) & (et.max(2) > EF.min())  # (nsub, 6, nw)
    X = np.zeros((len(k), interp.nw, 3, 3))
    need = np.unique(tets[np.any(cut, axis=2)])
    X[need] = per_band_terms(interp, k[need])
    out = np.zeros((len(orig), len(EF), 3, 3))
    vol = 1.0 / (6.0 * np.prod(F))
    for n in range(interp.nw):
        s_idx, t_idx = np.nonzero(cut[:, :, n])
        if len(s_idx):
            tt = tets[s_idx, t_idx]
            w = tetra_corner_weights(E[tt, n], EF, vol)
            np.add.at(out, s_idx, np.einsum("mce,mcij->meij", w, X[tt, n]))
    return out.reshape(len(cells), sub ** 3, len(EF), 3, 3).sum(1)


def concentration(d, label, scale):
    a = np.abs(d).reshape(len(d), -1).max(1)
    ncut = int((a > 0).sum())
    cs = np.cumsum(np.sort(a)[::-1]) / a.sum()
    shares = " / ".join(f"{(np.searchsorted(cs, f) + 1) / ncut:.0%}" for f in (0.5, 0.8, 0.9))
    print(f"{label}: {ncut} of {len(d)} cells have d != 0; cut cells holding 50/80/90 % of sum|d|: {shares}; "
          f"sum|d| / |sum d| = {np.abs(d).sum(0).max() / np.abs(d.sum(0)).max():.1f}; "
          f"|sum d| = {np.abs(d.sum(0)).max() / scale:.1%} of max|K|")
    return a


def main():
    import gme_wannier as gw
    from gme_wannier.bands import Interpolator
    from gme_wannier.integrate import GMESettings
    from gme_wannier.tetra import sum_over_mesh_tetra

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, nargs=3, default=[24, 24, 16], help="the coarsest mesh N")
    args = p.parse_args()
    model = gw.load_model(SEED, cache=True)
    EF = np.round(np.arange(5.85, 6.151, 0.02), 9)
    interp = Interpolator(model)
    N = np.array(args.n)
    t = time.perf_counter()
    a0, a1 = cell_sums(model, interp, EF, N, 1), cell_sums(model, interp, EF, N, 2)  # N and 2N per N-cell
    b0, b1 = cell_sums(model, interp, EF, 2 * N, 1), cell_sums(model, interp, EF, 2 * N, 2)  # 2N, 4N per 2N-cell
    print(f"cell sums on N, 2N, 4N: {time.perf_counter() - t:.1f} s")
    ref = sum_over_mesh_tetra(model, tuple(2 * N), GMESettings(fermi_energies=tuple(EF)), screen=None)["orb"]
    print(f"check: cell sums of 2N vs tetra.sum_over_mesh_tetra: {np.abs(a1.sum(0) - ref).max() / np.abs(ref).max():.1e}")
    scale = np.abs(b1.sum(0)).max()
    d = concentration(a1 - a0, f"N = {'x'.join(map(str, N))}", scale)
    concentration(b1 - b0, f"N = {'x'.join(map(str, 2 * N))}", scale)
    # the change 2N -> 4N, per cell of N; refine (to 4N) only the N-cells with the largest |d(N -> 2N)|
    idx = np.indices(tuple(2 * N)).reshape(3, -1).T
    parent = ((idx[:, 0] // 2) * N[1] + idx[:, 1] // 2) * N[2] + idx[:, 2] // 2
    e = np.zeros_like(a0)
    np.add.at(e, parent, b1 - b0)
    order, ncut = np.argsort(-d), int((d > 0).sum())
    print(f"change 2N -> 4N: {np.abs(e.sum(0)).max() / scale:.1%} of max|K|; left out when refining only the "
          "N-cells with the largest |d(N -> 2N)|:")
    for f in (0.1, 0.25, 0.5, 0.75, 1.0):
        rest = np.ones(len(e), bool)
        rest[order[:int(round(f * ncut))]] = False
        print(f"  {f:4.0%} of the cut cells refined: {np.abs(e[rest].sum(0)).max() / scale:.1%}")


if __name__ == "__main__":
    main()
