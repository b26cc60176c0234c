"""Per-k Fourier interpolation and eigensystems (no k loop here: callers pass a chunk of k).

The interpolation of a chunk of nk points is one BLAS-3 product of the phase matrix
exp(2 pi i k.R), shape (nk, nR), with the stacked real-space matrices, shape (nR, ncol): the
Hamiltonian, its three Cartesian derivatives i(R + t_n - t_m)_a H(R) (convention I, see
model.py) and, when needed, the position-type and spin matrices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .model import TBModel


@dataclass
class KChunk:
    """Band-basis quantities of a chunk of k-points (all arrays lead with the k index).

    E : float (nk, nw) eV, ascending.  U : complex (nk, nw, nw) eigenvectors as columns.
    V : complex (nk, 3, nw, nw) U^+ dH/dk_a U, eV Angstrom (Cartesian).
    A, B : complex (nk, 3, nw, nw) U^+ X U of the Wannier-gauge A (Angstrom), B (eV Angstrom).
    CC : complex (nk, 3, nw, nw) eV Angstrom^2.  Omega_bar : (nk, 3, nw, nw) U^+ (curl A) U, Angstrom^2.
    S : complex (nk, 3, nw, nw) Pauli matrices in the band basis.
    """

    E: np.ndarray
    U: np.ndarray
    V: np.ndarray
    A: Optional[np.ndarray] = None
    B: Optional[np.ndarray] = None
    CC: Optional[np.ndarray] = None
    Omega_bar: Optional[np.ndarray] = None
    S: Optional[np.ndarray] = None


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
        self.iRvec = model.iRvec.astype(float)
        self.recip = model.recip_lattice

    def wannier_gauge(self, k_red: np.ndarray) -> dict:
        """Wannier-gauge k-space matrices for k_red (nk, 3): dict name -> (nk, ncomp, nw, nw)."""
        k_red = np.atleast_2d(k_red)
        phase = np.exp(2j * np.pi * (k_red @ self.iRvec.T))  # (nk, nR)
        Xk = (phase @ self.XR).reshape(len(k_red), self.ncomp, self.nw, self.nw)
        out, i = {}, 0
        for name, w in zip(self.names, self.widths):
            out[name] = Xk[:, i:i + w]
            i += w
        return out

    def evaluate(self, k_red: np.ndarray) -> KChunk:
        """Eigensystem and band-basis matrices at the k-points k_red (nk, 3) reduced."""
        W = self.wannier_gauge(k_red)
        H = W["H"][:, 0]
        H = 0.5 * (H + np.conj(np.swapaxes(H, -1, -2)))
        E, U = np.linalg.eigh(H)
        Ud = np.conj(np.swapaxes(U, -1, -2))[:, None]
        Uc = U[:, None]

        def rot(X):
            return Ud @ X @ Uc

        ch = KChunk(E=E, U=U, V=rot(W["dH"]))
        if self.external:
            ch.A = rot(W["A"])
            ch.B = rot(W["B"])
            ch.CC = rot(W["CC"])
            ch.Omega_bar = rot(W["curlA"])
        if self.spin:
            ch.S = rot(W["S"])
        return ch
