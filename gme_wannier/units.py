"""Physical constants (CODATA via scipy.constants) and the unit factors built from them.

Internal units of the kernels: energies in eV, lengths in Angstrom, k in 1/Angstrom.

* band velocity ``dE/dk``                      eV * Angstrom
* orbital moment kernel ``Im<du|x(H-E)|du>``    eV * Angstrom^2   (times e/(2 hbar) -> J/T)
* spin expectation ``<sigma>``                  dimensionless
* Fermi-surface weight ``-df/dE``              1/eV
* BZ integral ``sum_k w_k (...)``  (w_k sums to 1) times 1/V_cell   -> Angstrom^-3
"""

from __future__ import annotations

import math

from scipy import constants as _c

e = _c.elementary_charge  # C
hbar = _c.hbar  # J s
h = _c.h  # J s
mu_B = _c.physical_constants["Bohr magneton"][0]  # J/T
mu_0 = _c.mu_0  # T m / A
eps0 = _c.epsilon_0  # F/m
m_e = _c.m_e  # kg
k_B_eV = _c.k / _c.e  # eV/K
eV = _c.e  # J
angstrom = _c.angstrom  # m
g_s_default = 2.0  # configurable in the API; CODATA g_e = 2.00231930...

#: e/hbar in A/J: alpha0 = (e/hbar) K in magnitude (docs/theory.md section 3)
E_OVER_HBAR = e / hbar

#: Orbital moment: (e / 2 hbar) * [eV Angstrom^2] -> J/T (= A m^2)
ORB_MOMENT_SI = e / (2.0 * hbar) * eV * angstrom**2

#: Spin moment of one electron per unit <sigma>: -(g_s/2) mu_B (J/T); multiply by g_s/2.
SPIN_MOMENT_SI = -mu_B

#: K tensor [Ampere] from  sum_k w_k (-f') [1/eV] * dE/dk [eV A] * m [J/T] / V_cell [A^3]
#: (the eV cancels): -> 1/angstrom^3 * angstrom * J/T /  eV * eV = A
#:   K = KFAC * sum_k w_k (-f')[1/eV] * dEdk[eV A] * m[J/T] / V[A^3]
K_FROM_INTERNAL = angstrom / angstrom**3  # (A^-3 * A) -> m^-2; times J/T = A m^2 gives A

#: e^2/h^2 * 1 eV in A m^-2 T^-1 (docs/theory.md section 3: 9.3674e9)
E2_OVER_H2_EV = e**2 / h**2 * eV


def _check() -> None:
    """Cross-checks at import (docs/theory.md section 3 quotes these numbers)."""
    assert math.isclose(E_OVER_HBAR, 1.519267e15, rel_tol=1e-6), E_OVER_HBAR
    assert math.isclose(E2_OVER_H2_EV, 9.3674e9, rel_tol=1e-4), E2_OVER_H2_EV
    assert math.isclose(mu_B, e * hbar / (2 * _c.m_e), rel_tol=1e-9)


_check()
