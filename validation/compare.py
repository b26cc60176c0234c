#!/usr/bin/env python3
"""Compare K tensors stored by run_postw90.py / run_wannierberri.py (<out>.npz files).

  python validation/compare.py A.npz [B.npz] [--key K_orb] [--every 1]

For one file: the point-group residual of each E_F,
    sym = max_ij |K - S(K)| / max_ij |K|,   S(K) = (1/|G|) sum_g det(R_g) R_g K R_g^T,
with G = D3 (C3 about z, C2 about x), the point group of trigonal Te (P3_121) in the
Wannier90 Cartesian frame used by all Te data sets here (a1 along x).
For two files: additionally  rel = max_ij |K_A - K_B| / max_ij |K_A|  per E_F and the global
    max_{E,ij} |K_A - K_B| / max_{E,ij} |K_A|.
"""
import argparse

import numpy as np


def d3_group():
    c, s = np.cos(2 * np.pi / 3), np.sin(2 * np.pi / 3)
    C3 = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    C2x = np.diag([1.0, -1.0, -1.0])
    G = [np.eye(3)]
    changed = True
    while changed:
        changed = False
        for g in list(G):
            for h in (C3, C2x):
                p = g @ h
                if not any(np.allclose(p, q) for q in G):
                    G.append(p)
                    changed = True
    return G


def symmetrize(K, G=None):
    G = d3_group() if G is None else G
    return sum(np.linalg.det(R) * np.einsum("ia,...ab,jb->...ij", R, K, R) for R in G) / len(G)


def load(fn, key):
    d = np.load(fn, allow_pickle=False)
    return d["efermi"], d[key]


def rel(a, b):
    m = np.abs(a).max()
    return np.abs(a - b).max() / m if m > 0 else np.nan


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+")
    p.add_argument("--key", default="K_orb")
    p.add_argument("--every", type=int, default=1)
    args = p.parse_args(argv)
    ef, A = load(args.files[0], args.key)
    B = None
    if len(args.files) > 1:
        ef2, B = load(args.files[1], args.key)
        assert np.allclose(ef, ef2), "different E_F lists"
    print("# A = %s" % args.files[0])
    if B is not None:
        print("# B = %s" % args.files[1])
    print("# %s; columns: E_F, A_xx, A_yy, A_zz, max|A|, sym(A)%s" %
          (args.key, ", B_xx, B_yy, B_zz, sym(B), max|A-B|/max|A|" if B is not None else ""))
    for i in range(0, len(ef), args.every):
        line = "%8.4f %11.4e %11.4e %11.4e %10.3e %9.2e" % (ef[i], A[i, 0, 0], A[i, 1, 1], A[i, 2, 2],
                                                            np.abs(A[i]).max(), rel(A[i], symmetrize(A[i])))
        if B is not None:
            line += "  %11.4e %11.4e %11.4e %9.2e %9.2e" % (B[i, 0, 0], B[i, 1, 1], B[i, 2, 2],
                                                            rel(B[i], symmetrize(B[i])), rel(A[i], B[i]))
        print(line)
    if B is not None:
        print("# global max|A-B|/max|A| = %.3e" % (np.abs(A - B).max() / np.abs(A).max()))
    print("# global sym residual of A = %.3e" % (np.abs(A - symmetrize(A)).max() / np.abs(A).max()))
    if B is not None:
        print("# global sym residual of B = %.3e" % (np.abs(B - symmetrize(B)).max() / np.abs(B).max()))


if __name__ == "__main__":
    main()
