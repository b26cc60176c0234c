"""Per-k Fourier interpolation and eigensystems (no k loop here: callers pass a chunk of k).

The interpolation of a chunk of nk points is one BLAS-3 product of the phase matrix
exp(2 pi i k.R), shape (nk, nR), with the stacked real-space matrices, shape (nR, ncol): the
Hamiltonian, its three Cartesian derivatives i(R + t_n - t_m)_a H(R) (convention I, see
model.py) and, when needed, the position-type and spin matrices.

The Fermi-surface kernel works in two stages (see :mod:`gme_wannier.integrate`): the
Hamiltonian alone (:meth:`Interpolator.hamiltonian`) at every k, then the other matrices
(:meth:`Interpolator.derivatives`) only at the k-points that have a band within reach of a Fermi
level, rotated to the band basis only for those bands (:func:`rotate_columns`,
:func:`diagonal_columns`): X_bar[:, sel] = U^+ (X U[:, sel]).
"""

from __future__ import annotations

import numpy as np

from .model import TBModel


class Interpolator:
    """Stacks the real-space matrices of a model once; evaluates chunks of k-points.

    Parameters
    ----------
    model : TBModel
    external : bool
        Include the A, B, C (full orbital moment) matrices if the model has them.
    spin : bool
        Include the spin matrices if the model has them.
    """

    def __init__(self, model: TBModel, *, external: bool = True, spin: bool = True):
        self.model = model
        nw = model.num_wann
        self.nw = nw
        self.external = bool(external and model.has_external_terms)
        self.spin = bool(spin and model.has_spin)
        cRs = model.cR_shifted  # (nR, nw, nw, 3)
        blocks = [model.H_R[..., None], 1j * cRs * model.H_R[..., None]]  # H, dH_a
        names = ["H", "dH"]
        if self.external:
            A = model.A_R
            # curl A: (d_b A_c - d_c A_b) for a = (b, c) cyclic
            dA = 1j * cRs[..., :, None] * A[..., None, :]  # [..., d, comp]
            curl = np.stack([dA[..., 1, 2] - dA[..., 2, 1], dA[..., 2, 0] - dA[..., 0, 2],
                             dA[..., 0, 1] - dA[..., 1, 0]], axis=-1)
            blocks += [A, model.B_R, model.CC_R, curl]
            names += ["A", "B", "CC", "curlA"]
        if self.spin:
            blocks.append(model.S_R)
            names.append("S")
        self.names = names
        self.widths = [b.shape[-1] for b in blocks]
        # layout (nR, ncomp, nw, nw) -> (nR, ncomp*nw*nw)
        stacked = np.concatenate([np.moveaxis(b, -1, 1) for b in blocks], axis=1)
        self.ncomp = stacked.shape[1]
        self.XR = np.ascontiguousarray(stacked.reshape(model.nR, -1))
        self.recip = model.recip_lattice
        self._axis_tables = [np.unique(model.iRvec[:, a], return_inverse=True) for a in range(3)]
        # the same matrices split: H alone (stage 1), everything else (stage 2)
        nw2 = nw * nw
        self.rest_names = names[1:]
        self.rest_widths = self.widths[1:]
        edges = np.cumsum([0] + self.rest_widths)
        # component slices of :meth:`derivatives`, by name (dH, A, B, CC, curlA, S)
        self.parts = {n: slice(int(edges[i]), int(edges[i + 1])) for i, n in enumerate(self.rest_names)}
        hermitian = np.concatenate([np.full(w, n != "B") for n, w in zip(names, self.widths)])
        self._half = self._hermitian_half(stacked, hermitian)
        if self._half is None:
            self.XR_H = self.XR[:, :nw2]
            self.XR_rest = self.XR[:, nw2:]

    def _hermitian_half(self, stacked: np.ndarray, hermitian: np.ndarray):
        """Half of the R vectors for the Hermitian matrices (all but B): X(k) = Y + Y^+ with
        Y = sum_{R in half} X'_R e^{ikR}, X'_R = (X_R + X_{-R}^+)/2 (R = 0 counted half).
        Halves the transform; None when some -R is missing from the R list."""
        iR = self.model.iRvec
        index = {tuple(R): i for i, R in enumerate(iR)}
        neg = np.array([index.get(tuple(-R), -1) for R in iR])
        if np.any(neg < 0):
            return None
        key = iR[:, 0] * 1_000_000 + iR[:, 1] * 1_000 + iR[:, 2]  # |R_a| < 500
        half = np.nonzero(key >= 0)[0]
        nw = self.nw
        Xh = stacked[:, hermitian]  # (nR, nh, nw, nw)
        Xp = 0.5 * (Xh[half] + np.conj(np.swapaxes(Xh[neg[half]], -1, -2)))
        Xp[key[half] == 0] *= 0.5
        nh = Xp.shape[1]
        herm_rest = hermitian[1:]
        return {"idx": half, "XR_H": np.ascontiguousarray(Xp[:, 0].reshape(len(half), -1)),
                "XR_herm": np.ascontiguousarray(Xp[:, 1:].reshape(len(half), -1)),
                "XR_nonherm": np.ascontiguousarray(stacked[:, 1:][:, ~herm_rest].reshape(len(iR), -1)),
                "herm_rest": herm_rest, "nh": nh - 1, "nw2": nw * nw}

    def phase(self, k_red: np.ndarray) -> np.ndarray:
        """exp(2 pi i k.R), complex (nk, nR), for k_red (nk, 3) reduced.

        Built as the product of the three one-dimensional factors exp(2 pi i k_a R_a), taken
        from short tables (a few distinct R_a): two complex products per element instead of a
        complex exponential.
        """
        k_red = np.atleast_2d(k_red)
        out = None
        for a in range(3):
            vals, idx = self._axis_tables[a]
            f = np.exp(2j * np.pi * np.outer(k_red[:, a], vals))[:, idx]  # (nk, nR)
            out = f if out is None else np.multiply(out, f, out=out)
        return out

    def hamiltonian(self, phase: np.ndarray) -> np.ndarray:
        """Wannier-gauge H(k), complex (nk, nw, nw) eV, Hermitian, from :meth:`phase`."""
        nk, nw = len(phase), self.nw
        if self._half is not None:
            Y = (phase[:, self._half["idx"]] @ self._half["XR_H"]).reshape(nk, nw, nw)
            return Y + np.conj(np.swapaxes(Y, -1, -2))
        H = (phase @ self.XR_H).reshape(nk, nw, nw)
        return 0.5 * (H + np.conj(np.swapaxes(H, -1, -2)))

    def energies(self, k_red: np.ndarray, chunk: int = 1000) -> np.ndarray:
        """Band energies only, float (nk, nw) eV ascending, evaluated ``chunk`` k-points at a time."""
        k_red = np.atleast_2d(k_red)
        if len(k_red) == 0:
            return np.zeros((0, self.nw))
        return np.concatenate([np.linalg.eigvalsh(self.hamiltonian(self.phase(k_red[i:i + chunk])))
                               for i in range(0, len(k_red), chunk)])

    def derivatives(self, phase: np.ndarray) -> np.ndarray:
        """All Wannier-gauge matrices but H, stacked: complex (nk, ncomp - 1, nw, nw).

        Component order: dH_x,y,z (eV Angstrom), then, with ``external``, A (Angstrom),
        B (eV Angstrom), CC (eV Angstrom^2), curl A (Angstrom^2), then, with ``spin``, sigma.
        """
        nk, nw = len(phase), self.nw
        h = self._half
        if h is None:
            return (phase @ self.XR_rest).reshape(nk, self.ncomp - 1, nw, nw)
        out = np.empty((nk, self.ncomp - 1, nw, nw), dtype=complex)
        Y = (phase[:, h["idx"]] @ h["XR_herm"]).reshape(nk, h["nh"], nw, nw)
        out[:, h["herm_rest"]] = Y + np.conj(np.swapaxes(Y, -1, -2))
        if h["XR_nonherm"].shape[1]:
            out[:, ~h["herm_rest"]] = (phase @ h["XR_nonherm"]).reshape(nk, -1, nw, nw)
        return out

    def wannier_gauge(self, k_red: np.ndarray) -> dict:
        """Wannier-gauge k-space matrices for k_red (nk, 3): dict name -> (nk, ncomp, nw, nw)."""
        Xk = (self.phase(k_red) @ self.XR).reshape(len(k_red), self.ncomp, self.nw, self.nw)
        out, i = {}, 0
        for name, w in zip(self.names, self.widths):
            out[name] = Xk[:, i:i + w]
            i += w
        return out


def select_window(U: np.ndarray, start: np.ndarray, width: int) -> np.ndarray:
    """Columns start .. start + width - 1 of U, per k.

    U : complex (nk, nw, nw) eigenvectors as columns; start : int (nk,).
    Returns complex (nk, nw, width), contiguous.
    """
    cols = start[:, None] + np.arange(width)[None, :]  # (nk, width)
    return np.ascontiguousarray(np.take_along_axis(U, cols[:, None, :], axis=2))


def rotate_columns(X: np.ndarray, U: np.ndarray, Usel: np.ndarray) -> np.ndarray:
    """Band-basis columns of Wannier-gauge matrices: U^+ (X Usel).

    X : complex (nk, nc, nw, nw); U : complex (nk, nw, nw); Usel : complex (nk, nw, ns) (columns
    of U). Returns complex (nk, nc, nw, ns): rows all bands, columns the selected ones.
    Cost 2 nc nw^2 ns per k instead of 2 nc nw^3 for the full rotation.
    """
    XU = X @ Usel[:, None]
    return np.conj(np.swapaxes(U, -1, -2))[:, None] @ XU


def diagonal_columns(X: np.ndarray, Usel: np.ndarray) -> np.ndarray:
    """Diagonal band-basis elements (U^+ X U)_nn for the selected columns n.

    X : complex (nk, nc, nw, nw); Usel : complex (nk, nw, ns). Returns complex (nk, nc, ns).
    """
    XU = X @ Usel[:, None]
    return np.einsum("kin,kcin->kcn", np.conj(Usel), XU)
