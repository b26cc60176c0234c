"""The result of a GME calculation and its plain-data form (the JSON schema of docs/user_guide.md).

``GMEResult.to_dict`` / :meth:`GMEResult.from_dict` (and :func:`load_result` for a JSON file)
round-trip: a notebook can reload a cluster run. :meth:`GMEResult.labelled` gives alpha or K
as an array labelled (E_F, i, j); :meth:`GMEResult.table` a tidy table (one row per value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from . import __version__
from .tensor import decompose, dynamic_factor, rotatory_power_axes
from .units import E_OVER_HBAR

PARTS = ("orbital", "spin", "total")
AXES = ("x", "y", "z")
#: keys of the JSON that to_dict computes from the arrays (the rest is ``info``)
_COMPUTED_KEYS = {"package", "version", "units", "fermi_energies_eV", "alpha", "K", "decomposition",
                  "rotatory_power_rad_per_mm", "rotatory_power_axes", "dos_per_eV_per_cell", "spin_counting",
                  "real_lattice_A", "optical_axis"}


@dataclass
class GMEResult:
    """alpha and K as functions of the Fermi level.

    fermi_energies : float (nE,), eV
    K : dict part -> float (nE, 3, 3), Ampere, index order [E_F][i current][j field]; counted as
        Wannier90 and WannierBerri do (each band once), whatever the model
    real_lattice : (3, 3) Angstrom
    info : dict of inputs, mesh, approximation level, symmetry, timing (JSON-serialisable)
    dos : float (nE,), states / eV / cell with each band counted once (as K), or None
    spin_degeneracy : 1 or 2
        Electrons per band in alpha and the DOS: 2 for a model without spinors (both spin
        states), 1 with spinors (docs/theory.md, "Spin counting"); alpha = g (e/hbar) K.

    Components that the symmetry forbids (``info["symmetry"]["allowed_form"]["zero_components"]``)
    are set to exactly 0 when the tensor was symmetrized (the projection leaves ~1e-17 relative).
    """

    fermi_energies: np.ndarray
    K: dict
    real_lattice: np.ndarray
    info: dict = field(default_factory=dict)
    dos: Optional[np.ndarray] = None
    # further quantities of the same k loop (name -> dict of arrays, their own units; see
    # calculate.compute(quantities=...)) and the error estimate of alpha (nE, 3, 3),
    # A m^-2 T^-1 (gme_wannier.convergence); both written to the JSON
    extra: dict = field(default_factory=dict)
    alpha_error: Optional[np.ndarray] = None
    spin_degeneracy: int = 1

    def __post_init__(self):
        self.fermi_energies = np.asarray(self.fermi_energies, dtype=float)
        self.K = {p: np.array(v, dtype=float) for p, v in self.K.items()}
        for p in self.K:
            self.K[p] = exact_form(self.K[p], self.info)

    @property
    def alpha(self) -> dict:
        """Clean-limit alpha0 = g (e/hbar) K in A m^-2 T^-1 (same index order), g = spin_degeneracy."""
        return {p: self.spin_degeneracy * E_OVER_HBAR * np.asarray(self.K[p]) for p in PARTS}

    def decomposition(self, part: str = "total") -> dict:
        """alpha_iso, traceless symmetric and antisymmetric parts (:func:`gme_wannier.tensor.decompose`);
        a part the symmetry forbids is exactly 0 (not round-off) when the tensor was symmetrized."""
        dd = decompose(self.alpha[part])
        forb = forbidden_parts(self.info)
        if forb["traceless_symmetric"]:
            for k in ("sym", "sym_eigenvalues"):
                dd[k] = np.zeros_like(dd[k])
        if forb["antisymmetric"]:
            for k in ("antisym", "delta"):
                dd[k] = np.zeros_like(dd[k])
        return dd

    def rotatory_power(self, part: str = "total") -> dict:
        """rho in rad/mm along x, y, z, a1, a2, a3, each (nE,)."""
        return rotatory_power_axes(self.alpha[part], self.real_lattice)

    def alpha_omega(self, omega: float, tau: float, part: str = "total") -> np.ndarray:
        """Complex alpha(omega) = D(omega tau) alpha0 (omega rad/s, tau s), (nE, 3, 3)."""
        return dynamic_factor(omega * tau) * self.alpha[part]

    def optical_axis(self) -> Optional[str]:
        """"x", "y" or "z": the optic axis of a uniaxial crystal (from the allowed form: the
        diagonal entry that differs from the two equal others); "any" for an isotropic form
        (a*1); None otherwise (biaxial, or no symmetry information)."""
        return optical_axis(self.info)

    def rotatory_power_optical_axis(self, part: str = "total") -> Optional[np.ndarray]:
        """rho (rad/mm, (nE,)) for light along the optic axis (any axis when isotropic), or None."""
        ax = self.optical_axis()
        return None if ax is None else self.rotatory_power(part)["z" if ax == "any" else ax]

    def labelled(self, quantity: str = "alpha", part: str = "total") -> "Labelled":
        """alpha (A m^-2 T^-1) or K (A) of one part as an array labelled (E_F, i, j)."""
        if quantity not in ("alpha", "K") or part not in PARTS:
            raise KeyError(f"quantity must be 'alpha' or 'K' and part one of {PARTS}")
        values = self.alpha[part] if quantity == "alpha" else np.asarray(self.K[part])
        return Labelled(name=f"{quantity}_{part}", unit="A m^-2 T^-1" if quantity == "alpha" else "A",
                        values=np.asarray(values), E_F=np.asarray(self.fermi_energies))

    def table(self) -> list[dict]:
        """Tidy table: one dict per (E_F, quantity, part, i, j) with ``value`` and ``unit``
        (``csv_table`` gives it as CSV text; ``pandas.DataFrame(result.table())`` works too)."""
        rows = []
        for q in ("alpha", "K"):
            for p in PARTS:
                lab = self.labelled(q, p)
                for e, ef in enumerate(lab.E_F):
                    for i, ci in enumerate(AXES):
                        for j, cj in enumerate(AXES):
                            rows.append({"E_F_eV": float(ef), "quantity": q, "part": p, "i": ci, "j": cj,
                                         "value": float(lab.values[e, i, j]), "unit": lab.unit})
        return rows

    def csv_table(self) -> str:
        """:meth:`table` as CSV text (header E_F_eV,quantity,part,i,j,value,unit)."""
        cols = ["E_F_eV", "quantity", "part", "i", "j", "value", "unit"]
        lines = [",".join(cols)] + [",".join(f"{r[c]:.10g}" if isinstance(r[c], float) else str(r[c])
                                             for c in cols) for r in self.table()]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_dict(cls, d: dict) -> "GMEResult":
        """Inverse of :meth:`to_dict` (a dict read from the result JSON)."""
        try:
            ef = np.array(d["fermi_energies_eV"], dtype=float)
            K = {p: np.array(d["K"][p], dtype=float) for p in PARTS}
            lattice = np.array(d["real_lattice_A"], dtype=float)
        except KeyError as exc:
            raise ValueError(f"not a gme_wannier result: key {exc} missing (files written before the "
                             "round trip existed lack 'real_lattice_A')") from None
        g = int((d.get("spin_counting") or {}).get("spin_degeneracy", d.get("spin_degeneracy_factor", 1)))
        dos = np.array(d["dos_per_eV_per_cell"], dtype=float) / g if d.get("dos_per_eV_per_cell") is not None else None
        info = {k: v for k, v in d.items() if k not in _COMPUTED_KEYS}
        err = None
        if isinstance(info.get("convergence"), dict) and "alpha_error" in info["convergence"]:
            info["convergence"] = dict(info["convergence"])
            err = np.array(info["convergence"].pop("alpha_error"), dtype=float)
        return cls(fermi_energies=ef, K=K, real_lattice=lattice, info=info, dos=dos, alpha_error=err,
                   spin_degeneracy=g)

    @classmethod
    def from_json(cls, path: str) -> "GMEResult":
        """Read a result JSON written by ``gme-wannier run`` (or ``json_text(result.to_dict())``)."""
        import json

        with open(path) as f:
            return cls.from_dict(json.load(f))

    def to_dict(self, omega_tau: Optional[list] = None) -> dict[str, Any]:
        """The result as the JSON-able dict of the output file (arrays as lists; :func:`from_json` reads it back)."""
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
            dd = self.decomposition(p)
            dec[p] = {"isotropic": dd["iso"].tolist(), "traceless_symmetric": dd["sym"].tolist(),
                      "traceless_symmetric_eigenvalues": dd["sym_eigenvalues"].tolist(),
                      "antisymmetric_vector_delta": dd["delta"].tolist()}
        d["decomposition"] = dec
        d["rotatory_power_rad_per_mm"] = {k: v.tolist() for k, v in self.rotatory_power("total").items()}
        if omega_tau:
            d["dynamic_factor"] = [{"omega_tau": float(x), "D_real": float(dynamic_factor(x).real),
                                    "D_imag": float(dynamic_factor(x).imag)} for x in omega_tau]
        if self.dos is not None:
            d["dos_per_eV_per_cell"] = (self.spin_degeneracy * np.asarray(self.dos)).tolist()
        d.update(self.info)
        if self.alpha_error is not None and isinstance(d.get("convergence"), dict):
            d["convergence"] = {**d["convergence"], "alpha_error": np.asarray(self.alpha_error).tolist()}
        for name, tensors in self.extra.items():
            d[name] = {k: np.asarray(v).tolist() for k, v in tensors.items()}
        return explain(d, self)


def load_result(path: str) -> GMEResult:
    """A :class:`GMEResult` from its JSON file (``gme_wannier.load_result``)."""
    return GMEResult.from_json(path)


@dataclass(frozen=True)
class Labelled:
    """An array labelled (E_F, i, j): ``values`` (nE, 3, 3) in ``unit``, ``E_F`` (nE,) eV,
    i = current direction, j = magnetic-field direction, both Cartesian "x", "y", "z"."""

    name: str
    unit: str
    values: np.ndarray
    E_F: np.ndarray
    dims: tuple = ("E_F", "i", "j")

    def sel(self, E_F: Optional[float] = None, i: Optional[str] = None, j: Optional[str] = None):
        """Select by label: ``E_F`` the nearest Fermi level (eV), ``i``/``j`` one of "x", "y", "z"."""
        v = self.values
        if E_F is not None:
            v = v[int(np.argmin(np.abs(self.E_F - float(E_F))))]
        idx = tuple(slice(None) if c is None else AXES.index(c) for c in (i, j))
        return v[(Ellipsis,) + idx]

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.values, dtype=dtype)


def forbidden_components(info: dict) -> list:
    """(i, j) components that vanish by symmetry, when the tensor was symmetrized (else [])."""
    sym = info.get("symmetry") or {}
    if "band_symmetry_error_eV" not in sym and not sym.get("symmetrized"):
        return []
    return [tuple(c) for c in (sym.get("allowed_form") or {}).get("zero_components", [])]


def exact_form(T: np.ndarray, info: dict) -> np.ndarray:
    """T (..., 3, 3) with the zeros and the plain equalities of the allowed form made exact, when
    the tensor was symmetrized: components whose symbolic entries are the same ('a' ... 'a') get
    their mean, a pair 'd' / '-d' gets +-(mean of d and -(-d)). Other entries are left as they are."""
    zeros = forbidden_components(info)
    if not zeros:
        return T
    T = np.array(T, dtype=float)
    for i, j in zeros:
        T[..., i, j] = 0.0
    entries = ((info.get("symmetry") or {}).get("allowed_form") or {}).get("entries") or []
    groups: dict = {}
    for i in range(3):
        for j in range(3):
            e = str(entries[i][j]).strip() if entries else "0"
            if e == "0":
                continue
            sign = -1.0 if e.startswith("-") else 1.0
            groups.setdefault(e.lstrip("-"), []).append((i, j, sign))
    for comps in groups.values():
        if len(comps) > 1:
            mean = np.mean([sg * T[..., i, j] for i, j, sg in comps], axis=0)
            for i, j, sg in comps:
                T[..., i, j] = sg * mean
    return T


def forbidden_parts(info: dict) -> dict:
    """Which parts of alpha the allowed form sets to zero, when the tensor was symmetrized:
    ``{"traceless_symmetric": bool, "antisymmetric": bool, "all": bool}`` (all False otherwise)."""
    out = {"traceless_symmetric": False, "antisymmetric": False, "all": False}
    form = (info.get("symmetry") or {}).get("allowed_form") or {}
    entries = form.get("entries")
    if not forbidden_components(info) or not entries:
        return out
    out["all"] = form.get("form") == "0"
    out["traceless_symmetric"] = out["all"] or form.get("form") == "a*1"
    # the antisymmetric part is allowed iff some pair of transposed entries differs ('d' vs '-d')
    out["antisymmetric"] = all(entries[i][j] == entries[j][i] for i in range(3) for j in range(i + 1, 3))
    return out


_UNIAXIAL = {"3", "-3", "32", "3m", "-3m", "4", "-4", "4/m", "422", "4mm", "-42m", "4/mmm",
             "6", "-6", "6/m", "622", "6mm", "-6m2", "6/mmm"}


def optical_axis(info: dict) -> Optional[str]:
    """See :meth:`GMEResult.optical_axis`."""
    sym = info.get("symmetry") or {}
    entries = (sym.get("allowed_form") or {}).get("entries")
    if not entries:
        return None
    diag = [entries[k][k] for k in range(3)]
    if sym.get("allowed_form", {}).get("form") == "a*1":
        return "any"
    if sym.get("pointgroup") not in _UNIAXIAL:
        return None
    for k in range(3):
        others = [diag[m] for m in range(3) if m != k]
        if others[0] == others[1] and diag[k] != others[0]:
            return AXES[k]
    return None


def _smearing_fields(sm) -> dict:
    """The smearing as named fields (from the settings fingerprint list or an earlier dict)."""
    if isinstance(sm, dict):
        return sm
    kind, width, order, max_arg = (list(sm) + [None] * 4)[:4]
    out = {"kind": kind, "width_eV": width, "max_arg_widths": max_arg}
    if kind == "methfessel-paxton":
        out["order"] = order
    if kind == "fermi-dirac" and width:
        from .units import k_B_eV

        out["temperature_K"] = round(width / k_B_eV, 6)
    return out


def explain(d: dict, result: GMEResult) -> dict:
    """Make the JSON explain itself (docs/user_guide.md, "Result JSON"): E_F without float
    noise, the spin counting, the lattice, the smearing as named fields, settings that say
    what was actually computed, and the axes of the rotatory power."""
    d["fermi_energies_eV"] = [round(float(x), 10) for x in result.fermi_energies]
    d["real_lattice_A"] = np.asarray(result.real_lattice).tolist()
    g = result.spin_degeneracy
    d["spin_counting"] = {
        "spin_degeneracy": g,
        "alpha": "each band holds %s" % ("both spin states (model without spinors)" if g == 2 else "one electron"),
        "dos_per_eV_per_cell": "states per eV per cell, counted like alpha",
        "K": "each band once, as Wannier90 and WannierBerri (alpha = spin_degeneracy * (e/hbar) * K)"}
    st = d.get("settings")
    if isinstance(st, dict):
        st = dict(st)
        if "smearing" in st:
            st["smearing"] = _smearing_fields(st["smearing"])
        if "fermi_energies" in st:
            st["fermi_energies"] = [round(float(x), 10) for x in st["fermi_energies"]]
        ap = d.get("approximation") or {}
        if "spin" in st and "spin_requested" not in st:
            st["spin_requested"] = st["spin"]
            st["spin"] = bool(st["spin"]) and ap.get("spin_moment", "none") != "none"
        if "external" in st and "external_requested" not in st:
            st["external_requested"] = st["external"]
            st["external"] = bool(st["external"]) and str(ap.get("orbital_moment", "")).startswith("full")
        d["settings"] = st
    ax = result.optical_axis()
    d["optical_axis"] = ax
    d["rotatory_power_axes"] = {
        "x, y, z": "light propagating along Cartesian x, y, z: rho(n) = (mu0/2)(tr alpha - n.alpha.n)",
        "a1, a2, a3": "light along the lattice vectors (rows of real_lattice_A)",
        "meaning": "a pure rotation of the polarization only along an optic axis; along other "
                   "directions linear birefringence mixes in (docs/theory.md section 4, 'Optical rotation')",
        "optic_axis": {"any": "isotropic (a*1): every direction", None: "none identified (biaxial or unknown)"}.get(
            ax, f"{ax} (uniaxial crystal): use rotatory_power_rad_per_mm['{ax}']"),
        "sign": "rho > 0: the plane of polarization turns clockwise seen looking towards the source"}
    return d
