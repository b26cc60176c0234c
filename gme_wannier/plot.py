"""PNG plot of the decomposition of alpha(E_F) (matplotlib is an optional extra: gme-wannier[plot])."""

from __future__ import annotations

import numpy as np

from .io.errors import GMEInputError
from .units import mu_0


def plot_decomposition(result, path: str, title: str = "", part: str = "total") -> None:
    """Three panels against E_F: alpha_iso (with rho = mu0 alpha_iso on the right axis), the
    eigenvalues of the traceless symmetric part, and the polar vector delta of the antisymmetric part.

    result : GMEResult;  path : PNG file;  title : material name;  part : orbital, spin or total.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise GMEInputError("--plot needs matplotlib: pip install 'gme-wannier[plot]'") from None
    from .report import ZMS_PAIR_ALPHA

    ef = np.asarray(result.fermi_energies)
    dec = result.decomposition(part)
    scale = 1e9
    unit = r"($10^9$ A m$^{-2}$ T$^{-1}$)"
    marker = "." if len(ef) <= 60 else None
    fig, axes = plt.subplots(3, 1, figsize=(7, 8.5), sharex=True)

    ax = axes[0]
    ax.plot(ef, dec["iso"] / scale, "k-", marker=marker, label=r"$\alpha_{\rm iso} = {\rm tr}\,\alpha/3$")
    for sgn in (1, -1):
        ax.axhline(sgn * ZMS_PAIR_ALPHA / scale, color="tab:orange", ls="--", lw=0.8,
                   label="ZMS: one Weyl pair split by 0.1 eV" if sgn > 0 else None)
    ax.set_ylabel(r"isotropic $\alpha_{\rm iso}$" + "\n" + unit)
    rax = ax.secondary_yaxis("right", functions=(lambda a: mu_0 * a * scale * 1e-3,
                                                 lambda r: r / (mu_0 * scale * 1e-3)))
    rax.set_ylabel(r"$\mu_0\alpha_{\rm iso}$ (rad/mm)")
    ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, frameon=False)

    S = np.asarray(dec["sym"])
    off = np.abs(S[:, [0, 0, 1], [1, 2, 2]]).max() if len(S) else 0.0
    diagonal = off <= 1e-6 * max(np.abs(S).max(), 1e-300)
    styles = (("tab:red", "-"), ("tab:green", "--"), ("tab:blue", ":"))
    for k, (c, ls) in enumerate(styles):
        if diagonal:  # fixed principal axes = x, y, z (e.g. cubic, trigonal, tetragonal): no sorting artefacts
            axes[1].plot(ef, S[:, k, k] / scale, color=c, ls=ls, marker=marker, label=r"$\alpha_{S,%s}$" % (2 * "xyz"[k]))
        else:
            axes[1].plot(ef, dec["sym_eigenvalues"][:, k] / scale, color=c, ls=ls, marker=marker,
                         label=f"eigenvalue {k + 1}")
        axes[2].plot(ef, dec["delta"][:, k] / scale, color=c, ls=ls, marker=marker, label=r"$\delta_%s$" % "xyz"[k])
    axes[1].set_ylabel(r"traceless symmetric $\alpha_S$" + ("" if diagonal else " (eigenvalues)") + "\n" + unit)
    axes[2].set_ylabel(r"antisymmetric: $\delta_k = \frac{1}{2}\epsilon_{kij}\alpha_{ij}$" + "\n" + unit)
    axes[2].set_xlabel(r"Fermi level $E_F$ (eV)")
    for ax in axes:
        ax.axhline(0, color="0.6", lw=0.6)
        ax.grid(alpha=0.3)
    for ax in axes[1:]:
        ax.legend(fontsize=8, ncol=3, loc="lower left", bbox_to_anchor=(0.0, 1.0), frameon=False)
        lo, hi = ax.get_ylim()
        if max(abs(lo), abs(hi)) < 1e-3 * max(1e-30, np.abs(dec["iso"]).max() / scale):
            ax.set_ylim(-1, 1)  # zero by symmetry: do not blow up round-off noise
            ax.text(0.5, 0.75, "zero within round-off (< 1e-3 of max |alpha_iso|)", transform=ax.transAxes,
                    ha="center", va="center", color="0.3", fontsize=9,
                    bbox=dict(facecolor="white", edgecolor="0.8", boxstyle="round"))
    info = result.info
    sub = info.get("settings", {}).get("smearing_description", "")
    mesh = info.get("mesh", {})
    if mesh.get("type") == "uniform":
        sub += f"; mesh {'x'.join(str(n) for n in mesh['mesh'])}"
    sg = info.get("symmetry", {}).get("international")
    head = f"GME tensor alpha ({part}) of {title}" + (f" ({sg})" if sg else "")
    fig.suptitle(f"{head}: isotropic, traceless-symmetric, antisymmetric parts\n{sub}", fontsize=10)
    fig.tight_layout()
    fig.subplots_adjust(right=0.86)  # room for the rad/mm axis
    fig.savefig(path, dpi=110)
    plt.close(fig)
