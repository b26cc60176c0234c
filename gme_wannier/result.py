"""The result of a GME calculation and its plain-data form (the JSON schema of docs/user_guide.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from . import __version__
from .tensor import decompose, dynamic_factor, rotatory_power_axes
from .units import E_OVER_HBAR

PARTS = ("orbital", "spin", "total")


@dataclass
class GMEResult:
    """alpha and K as functions of the Fermi level.

    fermi_energies : float (nE,), eV
    K : dict part -> float (nE, 3, 3), Ampere, index order [E_F][i current][j field]
    real_lattice : (3, 3) Angstrom
    info : dict of inputs, mesh, approximation level, symmetry, timing (JSON-serialisable)
    """

    fermi_energies: np.ndarray
    K: dict
    real_lattice: np.ndarray
    info: dict = field(default_factory=dict)
    dos: Optional[np.ndarray] = None

    @property
    def alpha(self) -> dict:
        """Clean-limit alpha0 = (e/hbar) K in A m^-2 T^-1 (same index order)."""
        return {p: E_OVER_HBAR * np.asarray(self.K[p]) for p in PARTS}

    def decomposition(self, part: str = "total") -> dict:
        return decompose(self.alpha[part])

    def rotatory_power(self, part: str = "total") -> dict:
        """rho in rad/mm along x, y, z, a1, a2, a3, each (nE,)."""
        return rotatory_power_axes(self.alpha[part], self.real_lattice)

    def alpha_omega(self, omega: float, tau: float, part: str = "total") -> np.ndarray:
        """Complex alpha(omega) = D(omega tau) alpha0 (omega rad/s, tau s), (nE, 3, 3)."""
        return dynamic_factor(omega * tau) * self.alpha[part]

    def to_dict(self, omega_tau: Optional[list] = None) -> dict[str, Any]:
        alpha = self.alpha
        d: dict[str, Any] = {
            "package": "gme_wannier",
            "version": __version__,
            "units": {"alpha": "A m^-2 T^-1 (clean limit, omega tau -> infinity)", "K": "A",
                      "fermi_energies": "eV", "rotatory_power": "rad/mm",
                      "index_order": "[E_F][i: current/velocity][j: magnetic field/moment]"},
            "fermi_energies_eV": [float(x) for x in self.fermi_energies],
            "alpha": {p: np.asarray(alpha[p]).tolist() for p in PARTS},
            "K": {p: np.asarray(self.K[p]).tolist() for p in PARTS},
        }
        dec = {}
        for p in PARTS:
            dd = decompose(alpha[p])
            dec[p] = {"isotropic": dd["iso"].tolist(), "traceless_symmetric": dd["sym"].tolist(),
                      "traceless_symmetric_eigenvalues": dd["sym_eigenvalues"].tolist(),
                      "antisymmetric_vector_delta": dd["delta"].tolist()}
        d["decomposition"] = dec
        d["rotatory_power_rad_per_mm"] = {k: v.tolist() for k, v in self.rotatory_power("total").items()}
        if omega_tau:
            d["dynamic_factor"] = [{"omega_tau": float(x), "D_real": float(dynamic_factor(x).real),
                                    "D_imag": float(dynamic_factor(x).imag)} for x in omega_tau]
        if self.dos is not None:
            d["dos_per_eV_per_cell"] = np.asarray(self.dos).tolist()
        d.update(self.info)
        return d
