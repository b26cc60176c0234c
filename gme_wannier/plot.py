"""Figures of alpha(E_F) (matplotlib is an optional extra: gme-wannier[plot]).

:func:`decomposition_figure` returns a :class:`matplotlib.figure.Figure` built without pyplot,
so it never switches the global backend (safe in notebooks: display it, or ``fig.savefig``);
:func:`plot_decomposition` saves it (the CLI's ``--plot``).

Panels, top to bottom, against E_F: alpha_iso (total, orbital, spin), the traceless symmetric
part, the antisymmetric part (vector delta), the rotatory power for light along the optic axis
(uniaxial crystals; any direction for cubic ones; x, y, z otherwise), and the DOS. The
material's Fermi level (``info["fermi_level"]``) is a dashed vertical line in every panel;
a part that the crystal symmetry forbids is drawn as an exact zero labelled "forbidden by
symmetry".
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .io.errors import GMEInputError
from .result import forbidden_parts

SCALE = 1e9
UNIT = r"($10^9$ A m$^{-2}$ T$^{-1}$)"
FORBIDDEN = "forbidden by symmetry"
EF_LABEL = "material E_F"


def _figure_class():
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise GMEInputError("--plot needs matplotlib: pip install 'gme-wannier[plot]'") from None
    return Figure


def _mark(ax, ef0: Optional[float], label: bool) -> None:
    ax.axhline(0, color="0.6", lw=0.6)
    ax.grid(alpha=0.3)
    if ef0 is not None:
        ax.axvline(ef0, color="tab:purple", ls="--", lw=1.0, label=EF_LABEL if label else None)


def _forbidden(ax, text: str) -> None:
    ax.set_ylim(-1, 1)
    ax.text(0.5, 0.6, text, transform=ax.transAxes, ha="center", va="center", color="0.25", fontsize=9,
            bbox=dict(facecolor="white", edgecolor="0.8", boxstyle="round"))


def _iso_panel(ax, result, ef, marker) -> None:
    from .report import ZMS_PAIR_ALPHA

    spin_done = (result.info.get("approximation") or {}).get("spin_moment", "none") != "none"
    for part, style in (("total", "k-"), ("orbital", "b--")) + ((("spin", "r:"),) if spin_done else ()):
        iso = result.decomposition(part)["iso"]
        ax.plot(ef, iso / SCALE, style, marker=marker if part == "total" else None, lw=1.4 if part == "total" else 1,
                label=r"$\alpha_{\rm iso}$ " + part)
    for sgn in (1, -1):
        ax.axhline(sgn * ZMS_PAIR_ALPHA / SCALE, color="tab:orange", ls="-.", lw=0.7,
                   label="ZMS: one Weyl pair split by 0.1 eV" if sgn > 0 else None)
    ax.set_ylabel(r"isotropic $\alpha_{\rm iso}={\rm tr}\,\alpha/3$" + "\n" + UNIT, fontsize=8)
    if not spin_done:
        ax.text(0.99, 0.03, "spin moment not computed", transform=ax.transAxes, ha="right", fontsize=7, color="0.4")


def _sym_panel(ax, dec, ef, marker, forbidden: bool) -> None:
    S = np.asarray(dec["sym"])
    ax.set_ylabel(r"traceless symmetric $\alpha_S$" + "\n" + UNIT, fontsize=8)
    if forbidden:
        ax.plot(ef, np.zeros_like(ef), color="0.5", lw=0.8)
        _forbidden(ax, r"$\alpha_S$ = 0: " + FORBIDDEN)
        return
    off = np.abs(S[:, [0, 0, 1], [1, 2, 2]]).max() if len(S) else 0.0
    diagonal = off <= 1e-6 * max(np.abs(S).max(), 1e-300)
    for k, (c, ls) in enumerate((("tab:red", "-"), ("tab:green", "--"), ("tab:blue", ":"))):
        if diagonal:  # principal axes = x, y, z: no sorting artefacts
            ax.plot(ef, S[:, k, k] / SCALE, color=c, ls=ls, marker=marker, label=r"$\alpha_{S,%s}$" % (2 * "xyz"[k]))
        else:
            ax.plot(ef, dec["sym_eigenvalues"][:, k] / SCALE, color=c, ls=ls, marker=marker, label=f"eigenvalue {k + 1}")


def _anti_panel(ax, dec, ef, marker, forbidden: bool) -> None:
    ax.set_ylabel(r"antisymmetric $\delta_k=\frac{1}{2}\epsilon_{kij}\alpha_{ij}$" + "\n" + UNIT, fontsize=8)
    if forbidden:
        ax.plot(ef, np.zeros_like(ef), color="0.5", lw=0.8)
        _forbidden(ax, r"$\delta$ = 0: " + FORBIDDEN)
        return
    for k, (c, ls) in enumerate((("tab:red", "-"), ("tab:green", "--"), ("tab:blue", ":"))):
        ax.plot(ef, dec["delta"][:, k] / SCALE, color=c, ls=ls, marker=marker, label=r"$\delta_%s$" % "xyz"[k])


def _rho_panel(ax, result, ef, marker, part) -> None:
    from .report import ZMS_PAIR_RHO

    axis = result.optical_axis() if (result.info.get("symmetry") or {}).get("allowed_form") else None
    rho = result.rotatory_power(part)
    if axis == "any":
        ax.plot(ef, rho["z"], "k-", marker=marker, label=r"$\rho$ (isotropic: any direction) $=\mu_0\alpha_{\rm iso}$")
    elif axis is not None:
        ax.plot(ef, rho[axis], "k-", marker=marker, label=r"$\rho$ along the optic axis (%s)" % axis)
    else:
        for k, (c, ls) in enumerate((("tab:red", "-"), ("tab:green", "--"), ("tab:blue", ":"))):
            ax.plot(ef, rho["xyz"[k]], color=c, ls=ls, label=r"$\rho$ along %s" % "xyz"[k])
    ax.axhline(ZMS_PAIR_RHO, color="tab:orange", ls="-.", lw=0.7)
    ax.set_ylabel("rotatory power\n" + r"$\rho$ (rad/mm)", fontsize=8)


def decomposition_figure(result, title: str = "", part: str = "total"):
    """The figure of :mod:`gme_wannier.plot` (see the module docstring) for one result.

    Parameters
    ----------
    result : GMEResult
    title : str
        Material name for the title.
    part : {"total", "orbital", "spin"}
        Part shown in the traceless, antisymmetric and rotatory panels (alpha_iso shows all).

    Returns
    -------
    matplotlib.figure.Figure
        Five axes in ``fig.axes`` (alpha_iso, alpha_S, delta, rho, DOS), sharing E_F (eV).
    """
    Figure = _figure_class()
    ef = np.asarray(result.fermi_energies)
    dec = result.decomposition(part)
    marker = "." if len(ef) <= 60 else None
    fl = result.info.get("fermi_level") or {}
    ef0 = fl.get("material_E_F_eV")
    forb = forbidden_parts(result.info)
    fig = Figure(figsize=(7, 11))
    axes = fig.subplots(5, 1, sharex=True, gridspec_kw={"height_ratios": [1.3, 1, 1, 1, 0.8]})
    _iso_panel(axes[0], result, ef, marker)
    _sym_panel(axes[1], dec, ef, marker, forb["traceless_symmetric"])
    _anti_panel(axes[2], dec, ef, marker, forb["antisymmetric"])
    _rho_panel(axes[3], result, ef, marker, part)
    if result.dos is not None:
        axes[4].plot(ef, result.spin_degeneracy * np.asarray(result.dos), "k-", marker=marker, label="DOS")
    axes[4].set_ylabel("DOS\n(states/eV/cell)", fontsize=8)
    axes[4].set_xlabel(r"Fermi level $E_F$ (eV)")
    for k, ax in enumerate(axes):
        _mark(ax, ef0, label=k == 0)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, ncol=3, loc="lower left", bbox_to_anchor=(0.0, 1.0), frameon=False)
    info = result.info
    sub = (info.get("settings") or {}).get("smearing_description", "")
    mesh = info.get("mesh") or {}
    if mesh.get("type") == "uniform":
        sub += f"; mesh {'x'.join(str(n) for n in mesh['mesh'])}"
    sym = info.get("symmetry") or {}
    sg = sym.get("international")
    form = (sym.get("allowed_form") or {}).get("form")
    head = f"GME tensor alpha ({part}) of {title or (info.get('model') or {}).get('name', '')}" + \
        (f" ({sg}, allowed form {form})" if sg else "")
    ef_txt = "" if ef0 is None else f"; material E_F = {ef0:.3f} eV (dashed)"
    fig.suptitle(f"{head}\n{sub}{ef_txt}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_decomposition(result, path: str, title: str = "", part: str = "total") -> None:
    """Save :func:`decomposition_figure` to ``path`` (PNG, 110 dpi)."""
    decomposition_figure(result, title=title, part=part).savefig(path, dpi=110)
