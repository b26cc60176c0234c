"""Fermi-surface weights: -df/dE for a temperature or a numerical broadening.

Conventions follow Wannier90's ``utility_w0gauss``/``utility_wgauss`` so that results can be
compared with postw90 column by column: x = (E - E_F)/w and

* ``fermi-dirac``:        -f'(E) = 1/(w (2 + e^x + e^-x)),  w = k_B T   (physical temperature)
* ``gaussian``:           exp(-x^2)/(w sqrt(pi))   (note: w = sqrt(2) sigma, Wannier90's width)
* ``methfessel-paxton``:  order N (default 1) Hermite expansion (MP 1989)
* ``marzari-vanderbilt``: cold smearing exp(-(x - 1/sqrt2)^2)(2 - sqrt2 x)/(w sqrt(pi))

Weights are set to zero for |x| > max_arg (Wannier90's ``gyrotropic_smr_max_arg``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import erfc

from .io.errors import GMEInputError
from .units import k_B_eV

KINDS = ("fermi-dirac", "gaussian", "methfessel-paxton", "marzari-vanderbilt")
# Fermi-Dirac weights are cut at 30 k_B T: -f'(x) < e^-|x|, so the weight left out is below
# 2 e^-30 = 2e-13 of the total (measured change of K on SrSi2 and Te against a 40 k_B T cut:
# <= 5e-13), while the window of bands evaluated shrinks (Te_tut24 at 300 K: 84 -> 67 us/k)
FD_MAX_ARG = 30.0
_SQRT_PI = np.sqrt(np.pi)


@dataclass(frozen=True)
class Smearing:
    """A broadened delta function.

    kind : one of KINDS; width : eV (for fermi-dirac, k_B T); order : Methfessel-Paxton order;
    max_arg : cut-off in units of the width.
    """

    kind: str = "gaussian"
    width: float = 0.02
    order: int = 1
    max_arg: float = 5.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise GMEInputError(f"unknown smearing '{self.kind}' (choose from {', '.join(KINDS)})")
        if not (self.width > 0):
            raise GMEInputError(f"smearing width must be positive, got {self.width} eV")
        if self.max_arg <= 0:
            raise GMEInputError("max_arg must be positive")

    @classmethod
    def from_temperature(cls, kelvin: float, max_arg: float = FD_MAX_ARG) -> "Smearing":
        """Fermi-Dirac smearing at ``kelvin`` (width k_B T in eV), cut at ``max_arg`` widths."""
        if not (kelvin > 0):
            raise GMEInputError(f"temperature must be positive, got {kelvin} K")
        return cls("fermi-dirac", k_B_eV * kelvin, 0, max_arg)

    def describe(self) -> str:
        """One line for the reports, e.g. 'Fermi-Dirac at T = 300.0 K (k_B T = 25.852 meV)'."""
        if self.kind == "fermi-dirac":
            return f"Fermi-Dirac at T = {self.width / k_B_eV:.1f} K (k_B T = {self.width * 1e3:.3f} meV)"
        extra = f", order {self.order}" if self.kind == "methfessel-paxton" else ""
        return f"{self.kind} broadening, width {self.width} eV{extra}"

    def delta(self, dE: np.ndarray) -> np.ndarray:
        """-df/dE at dE = E - E_F (eV), in 1/eV."""
        x = np.asarray(dE, dtype=float) / self.width
        inside = np.abs(x) <= self.max_arg
        xs = np.where(inside, x, 0.0)
        if self.kind == "fermi-dirac":
            ax = np.abs(xs)
            e = np.exp(-ax)
            d = e / (1.0 + e) ** 2
        elif self.kind == "gaussian":
            d = np.exp(-xs * xs) / _SQRT_PI
        elif self.kind == "marzari-vanderbilt":
            y = xs - 1.0 / np.sqrt(2.0)
            d = np.exp(-y * y) * (2.0 - np.sqrt(2.0) * xs) / _SQRT_PI
        else:
            d = _mp_delta(xs, self.order)
        return np.where(inside, d, 0.0) / self.width

    def occupation(self, dE: np.ndarray) -> np.ndarray:
        """f at dE = E - E_F (the integral of delta from dE to +inf), dimensionless."""
        x = np.asarray(dE, dtype=float) / self.width
        x = np.clip(x, -self.max_arg, self.max_arg) if self.kind != "fermi-dirac" else x
        if self.kind == "fermi-dirac":
            return 0.5 * (1.0 - np.tanh(0.5 * x))
        if self.kind == "gaussian":
            return 0.5 * erfc(x)
        if self.kind == "marzari-vanderbilt":
            y = x - 1.0 / np.sqrt(2.0)
            return 0.5 * erfc(y) + np.exp(-y * y) / np.sqrt(2.0 * np.pi)
        f = 0.5 * erfc(x)
        a = 1.0 / _SQRT_PI
        for i in range(1, self.order + 1):
            a = -a / (4.0 * i)
            f = f + a * _hermite(2 * i - 1, x) * np.exp(-x * x)
        return f


def _hermite(n: int, x: np.ndarray) -> np.ndarray:
    h0, h1 = np.ones_like(x), 2.0 * x
    if n == 0:
        return h0
    for k in range(1, n):
        h0, h1 = h1, 2.0 * x * h1 - 2.0 * k * h0
    return h1


def _mp_delta(x: np.ndarray, order: int) -> np.ndarray:
    """Methfessel-Paxton delta of the given order (Wannier90 utility_w0gauss, n >= 0)."""
    g = np.exp(-x * x)
    d = g / _SQRT_PI
    a = 1.0 / _SQRT_PI
    for i in range(1, order + 1):
        a = -a / (4.0 * i)
        d = d + a * _hermite(2 * i, x) * g
    return d
