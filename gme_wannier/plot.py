"""PNG plot of the decomposition of alpha(E_F) (matplotlib is an optional extra: gme-wannier[plot])."""

from __future__ import annotations

import numpy as np

from .io.errors import GMEInputError


def plot_decomposition(result, path: str, title: str = "", part: str = "total") -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise GMEInputError("--plot needs matplotlib: pip install 'gme-wannier[plot]'") from None
    ef = np.asarray(result.fermi_energies)
    dec = result.decomposition(part)
    fig, axes = plt.subplots(3, 1, figsize=(6, 8), sharex=True)
    axes[0].plot(ef, dec["iso"], "k.-")
    axes[0].set_ylabel(r"$\alpha_{\rm iso}$ (A m$^{-2}$ T$^{-1}$)")
    for k, c in zip(range(3), "rgb"):
        axes[1].plot(ef, dec["sym_eigenvalues"][:, k], c + ".-", label=f"eigenvalue {k + 1}")
        axes[2].plot(ef, dec["delta"][:, k], c + ".-", label=r"$\delta_%s$" % "xyz"[k])
    axes[1].set_ylabel(r"traceless symmetric $\alpha_S$")
    axes[2].set_ylabel(r"antisymmetric: $\delta$")
    axes[2].set_xlabel(r"$E_F$ (eV)")
    for ax in axes:
        ax.axhline(0, color="0.7", lw=0.5)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    axes[2].legend(fontsize=8)
    fig.suptitle(f"GME tensor ({part}) of {title}: isotropic, traceless-symmetric, antisymmetric parts")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
