"""Validation of the command-line options, before anything is loaded or computed.

The same rules apply to a value given as a flag and to one from the ``--config`` TOML file:

1. **Types** (config values only; argparse has converted the flags): taken from the parser's
   own actions, so an option added to the parser is type-checked without being listed here.
   Switches need a real TOML boolean (``true``, not ``"false"``), integers a TOML integer,
   numbers an integer or float, choices one of the allowed strings, and fixed-length options
   (``mesh``, ``box-b1``, ...) a list of that many entries.
2. **Ranges** (:data:`RULES`): positive meshes, chunk size >= 1, finite temperatures and
   widths, ``symprec`` > 0 (spglib crashes on negative tolerances), non-negative orders and
   intervals, and a bounded Fermi-level grid (:data:`MAX_FERMI_LEVELS`).

Problems raise :class:`~gme_wannier.io.errors.OptionError` naming the option as the user wrote
it (``--mesh`` for a flag, ``run.toml: mesh`` for a config entry). :func:`merge_options` gives
the options of a sub-command (defaults < config file < flags, checked). After loading,
:func:`check_memory` refuses runs whose largest arrays would not fit in the available memory.
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Any, Callable, Optional

import numpy as np

from .io.errors import OptionError

__all__ = ["MAX_FERMI_LEVELS", "RULES", "check_config_types", "validate_options", "fermi_grid_size",
           "check_memory", "available_memory", "option_name", "load_config", "merge_options"]

MAX_FERMI_LEVELS = 100_000
"""Largest number of Fermi levels of one run (--efermi / --efermi-range)."""

MAX_ENERGY = 1e4
"""eV. Largest |E_F| accepted (band energies of Wannier models are within tens of eV)."""


def option_name(key: str, origins: dict) -> str:
    """How the user wrote option ``key``: ``--mesh`` or ``FILE: mesh``."""
    return origins.get(key) or "--" + key.replace("_", "-")


# ---------------------------------------------------------------- types (config file values)
def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float, np.integer, np.floating))) and not isinstance(v, bool)


def _convert_scalar(v: Any, action: argparse.Action, name: str) -> Any:
    typ = action.type
    if typ is int:
        if not _is_int(v):
            raise OptionError(name, f"must be an integer, got {v!r}")
        v = int(v)
    elif typ is float:
        if not _is_number(v):
            raise OptionError(name, f"must be a number, got {v!r}")
        v = float(v)
    elif not isinstance(v, str):
        raise OptionError(name, f"must be a string, got {v!r}")
    if action.choices is not None and v not in action.choices:
        raise OptionError(name, f"must be one of {', '.join(map(str, action.choices))}, got {v!r}")
    return v


def _convert(v: Any, action: argparse.Action, name: str) -> Any:
    if action.nargs == 0:  # store_true / store_false switches
        if not isinstance(v, bool):
            raise OptionError(name, f"must be true or false (a TOML boolean, without quotes), got {v!r}")
        return v
    if action.nargs is None or action.nargs == "?":
        if isinstance(v, (list, dict)):
            raise OptionError(name, f"must be a single value, got {v!r}")
        return _convert_scalar(v, action, name)
    if not isinstance(v, list):
        v = [v] if action.nargs == "+" else v
    if not isinstance(v, list):
        raise OptionError(name, f"must be a list of {action.nargs} values, e.g. [4, 4, 4]; got {v!r}")
    if isinstance(action.nargs, int) and len(v) != action.nargs:
        raise OptionError(name, f"must be a list of {action.nargs} values, got {len(v)}: {v!r}")
    if action.nargs == "+" and not v:
        raise OptionError(name, "must be a non-empty list")
    return [_convert_scalar(x, action, name) for x in v]


def check_config_types(cfg: dict, parser_actions: dict, path: str) -> dict:
    """Check and convert the values of a ``--config`` file like argparse converts flags.

    Parameters
    ----------
    cfg : dict  option name (``_`` form) -> TOML value
    parser_actions : dict  dest -> argparse.Action of the sub-command
    path : str  the config file, for the messages

    Returns
    -------
    dict  the converted values (ints, floats, lists as argparse would give them)
    """
    out = {}
    for key, v in cfg.items():
        action = parser_actions.get(key)
        name = f"{path}: {key.replace('_', '-')}"
        out[key] = v if action is None else _convert(v, action, name)
    return out


# ---------------------------------------------------------------- ranges (flags and config)
def _finite(name: str, v, lo: Optional[float] = None, *, strict: bool = False, what: str = "") -> None:
    for x in np.atleast_1d(np.asarray(v, dtype=float)):
        if not math.isfinite(x):
            raise OptionError(name, f"must be a finite number{what}, got {x}")
        if lo is not None and (x <= lo if strict else x < lo):
            rel = ">" if strict else ">="
            raise OptionError(name, f"must be {rel} {lo:g}{what}, got {x:g}")


def _ws_tolerance(name: str, v) -> None:
    _finite(name, v, 0, what=" (Angstrom)")
    if v > 0.1:
        raise OptionError(name, f"{v:g} Angstrom would treat Wigner-Seitz images of different length as ties "
                                "and change the model: use a tie tolerance <= 0.1 Angstrom (default 1e-3)")


def _positive_ints(name: str, v) -> None:
    if any((not _is_int(x)) or x < 1 for x in v):
        raise OptionError(name, f"must be 3 positive integers (k points along b1, b2, b3), got {list(v)}")


def _box_edges(name: str, o: dict, origins: dict) -> None:
    edges = [o.get(k) for k in ("box_b1", "box_b2", "box_b3")]
    if all(e is None for e in edges):
        return
    full = [e if e is not None else d for e, d in zip(edges, np.eye(3).tolist())]
    if abs(np.linalg.det(np.array(full, dtype=float))) < 1e-12:
        raise OptionError(option_name("box_b1", origins),
                          "the box edges --box-b1, --box-b2, --box-b3 are linearly dependent (zero volume): "
                          "give three independent vectors")


def fermi_grid_size(lo: float, hi: float, step: float) -> int:
    """Number of levels of ``--efermi-range lo hi step`` (hi included), without building them."""
    return int(math.floor((hi - lo) / step + 1e-9)) + 1


def _energies(name: str, v) -> None:
    _finite(name, v, what=" (eV)")
    big = [x for x in np.atleast_1d(np.asarray(v, dtype=float)) if abs(x) > MAX_ENERGY]
    if big:
        raise OptionError(name, f"{big[0]:g} eV is not a Fermi energy of a Wannier model (|E_F| <= {MAX_ENERGY:g} eV)")


def _efermi_range(name: str, v) -> None:
    _energies(name, v)
    lo, hi, step = v
    if step <= 0 or hi < lo:
        raise OptionError(name, f"needs MIN <= MAX and STEP > 0, got {lo:g} {hi:g} {step:g}")
    n = fermi_grid_size(lo, hi, step)
    if n > MAX_FERMI_LEVELS:
        raise OptionError(name, f"{lo:g}..{hi:g} eV in steps of {step:g} eV gives {n:.3g} Fermi levels, more than "
                                f"{MAX_FERMI_LEVELS}: use a larger STEP or a narrower range")


def _count(name: str, v) -> None:
    if np.size(v) > MAX_FERMI_LEVELS:
        raise OptionError(name, f"{np.size(v)} Fermi levels, more than {MAX_FERMI_LEVELS}")
    _energies(name, v)


MAX_REFINE = 256
"""Largest product of the --refine factors (each refined cell becomes up to product^3 points)."""


def _refine(name: str, v) -> None:
    _finite(name, v, 2, what=" (subdivision factors)")
    if any(not _is_int(x) for x in v):
        raise OptionError(name, f"the subdivision factors must be integers, got {list(v)}")
    if int(np.prod(v)) > MAX_REFINE:
        raise OptionError(name, f"the factors multiply to {int(np.prod(v))}, more than {MAX_REFINE}: each refined cell "
                                f"would become {int(np.prod(v))}^3 points; use a finer --mesh and fewer/smaller factors")


MIN_WIDTH, MAX_WIDTH = 1e-6, 100.0
"""eV. Smearing widths (k_B T for Fermi-Dirac) accepted: below 1e-6 eV (0.01 K) no k mesh resolves
the Fermi surface and alpha comes out 0; above 100 eV the weights spread over every band."""
MIN_MAX_ARG = 3.0
"""Smallest --max-arg (widths): a tighter cut drops a visible part of the Fermi-surface weight."""
MAX_MP_ORDER = 20
"""Largest Methfessel-Paxton order (the Hermite polynomials overflow far above it)."""
MAX_DEGEN_THRESH = 0.1
"""eV. Largest --degen-thresh: bands further apart than this are not degenerate."""


def _width(name: str, v, kelvin: bool = False) -> None:
    from .units import k_B_eV

    _finite(name, v, 0, strict=True, what=" (Kelvin)" if kelvin else " (eV)")
    w = float(v) * (k_B_eV if kelvin else 1.0)
    unit = f"{float(v):g} K is k_B T = {w:.3g} eV" if kelvin else f"{float(v):g} eV"
    if w < MIN_WIDTH:
        raise OptionError(name, f"{unit}, below {MIN_WIDTH:g} eV: no k mesh resolves so sharp a Fermi surface "
                                "(alpha would be 0); for T -> 0 use --kernel tetra")
    if w > MAX_WIDTH:
        raise OptionError(name, f"{unit}, above {MAX_WIDTH:g} eV: the smearing would cover every band (alpha "
                                "would be 0); give a width of meV to eV")


def _max_arg(name: str, v) -> None:
    _finite(name, v, 0, strict=True, what=" (widths)")
    if v < MIN_MAX_ARG:
        raise OptionError(name, f"cutting the weights at {v:g} widths drops part of the Fermi surface: give at least "
                                f"{MIN_MAX_ARG:g} (default 5; 30 for Fermi-Dirac)")


def _mp_order(name: str, v) -> None:
    if not _is_int(v) or not 0 <= v <= MAX_MP_ORDER:
        raise OptionError(name, f"must be an integer from 0 to {MAX_MP_ORDER} (Methfessel-Paxton order; default 1), "
                                f"got {v}")


def _degen_thresh(name: str, v) -> None:
    _finite(name, v, 0, what=" (eV)")
    if v > MAX_DEGEN_THRESH:
        raise OptionError(name, f"{v:g} eV would treat bands that far apart as degenerate: give at most "
                                f"{MAX_DEGEN_THRESH:g} eV (default 1e-4)")


MAX_G_S = 100.0
"""Largest |--g-s| (the free-electron spin g-factor is 2.0023; 1e308 overflowed the spin moment)."""


def _g_s(name: str, v) -> None:
    _finite(name, v)
    if abs(v) > MAX_G_S:
        raise OptionError(name, f"{v:g} is not a spin g-factor (free electron 2.0023): give |g_s| <= {MAX_G_S:g}")


def _tolerance(name: str, v) -> None:
    _finite(name, v, 0, strict=True, what=" (relative error, e.g. 0.01)")
    if v >= 1:
        raise OptionError(name, f"is a relative error and must be below 1 (e.g. 0.01 for 1 %), got {v:g}")


RULES: dict[str, Callable[[str, Any], None]] = {
    "mesh": _positive_ints,
    "box_mesh": _positive_ints,
    "box_center": lambda n, v: _finite(n, v, what=" (reduced coordinates)"),
    "box_b1": lambda n, v: _finite(n, v),
    "box_b2": lambda n, v: _finite(n, v),
    "box_b3": lambda n, v: _finite(n, v),
    "chunk_size": lambda n, v: _finite(n, v, 1, what=" (k-points per chunk)"),
    "ws_tolerance": lambda n, v: _ws_tolerance(n, v),
    "symprec": lambda n, v: _finite(n, v, 0, strict=True, what=" (Angstrom; e.g. 1e-5)"),
    "temperature": lambda n, v: _width(n, v, kelvin=True),
    "smearing_width": _width,
    "max_arg": _max_arg,
    "g_s": _g_s,
    "mp_order": _mp_order,
    "omega_tau": lambda n, v: _finite(n, v, 0),
    "checkpoint_every": lambda n, v: _finite(n, v, 0, what=" (seconds)"),
    "degen_thresh": _degen_thresh,
    "eigval_max": _energies,
    "mu_imbalance": _energies,
    "efermi": _count,
    "efermi_range": _efermi_range,
    "refine": _refine,
    "window": lambda n, v: _finite(n, v, 0, what=" (eV)"),
    "tolerance": lambda n, v: _tolerance(n, v),
    "max_kpoints": lambda n, v: _finite(n, v, 1, what=" (k-points)"),
    "max_time": lambda n, v: _finite(n, v, 0, strict=True, what=" (seconds)"),
    "magmoms": lambda n, v: _finite(n, v),
    "b": lambda n, v: _finite(n, v),
    "t": lambda n, v: _finite(n, v),
    "a": lambda n, v: _finite(n, v, 0, strict=True, what=" (Angstrom)"),
}
"""Range checks by option name; each gets (name as the user wrote it, value)."""


def validate_options(o: dict, origins: Optional[dict] = None) -> None:
    """Check every option of ``o`` (flags and config merged) against :data:`RULES`.

    Parameters
    ----------
    o : dict  option name (``_`` form) -> value; ``None`` means not given
    origins : dict, optional  option -> how the user wrote it (``FILE: key`` for config values)

    Raises
    ------
    OptionError
        The first bad option, named as the user wrote it.
    """
    origins = origins or {}
    for key, rule in RULES.items():
        v = o.get(key)
        if v is None or v is False:
            continue
        rule(option_name(key, origins), v)
    _box_edges("--box-b1", o, origins)
    if o.get("efermi") is not None and o.get("efermi_range") is not None:
        raise OptionError(option_name("efermi_range", origins), "give either --efermi or --efermi-range, not both")
    _unused(o, origins)


def _unused(o: dict, origins: dict) -> None:
    """Options that would be silently ignored with the others given."""
    if o.get("mp_order") not in (None, 1) and o.get("smearing") != "methfessel-paxton":
        raise OptionError(option_name("mp_order", origins), "is the order of the Methfessel-Paxton smearing: give "
                                                            "--smearing methfessel-paxton too, or drop it")
    if o.get("mu_imbalance") is not None and not o.get("decompose"):
        raise OptionError(option_name("mu_imbalance", origins), "is used by the Fermi-sheet decomposition: add "
                                                                "--decompose, or drop it")


# ---------------------------------------------------------------- memory
def available_memory() -> Optional[int]:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(num_wann: int, n_fermi: int, *, kernel: str = "surface", n_kpoints_full: int = 0,
                 ranks_per_node: Optional[int] = None, available: Optional[int] = None,
                 mesh_option: str = "--mesh") -> int:
    """Refuse a run whose largest arrays would exceed the available memory.

    The Fermi-surface kernels hold, per block of at most 4096 k-points (bounded by
    :func:`gme_wannier.integrate.block_size`), about three float64 arrays of shape
    (block, num_wann, n_fermi); the list of k-points, weights and the symmetry mapping of the
    whole mesh take about 64 bytes per point; the tetrahedron kernel also keeps the energies of
    the whole mesh (n_kpoints_full x num_wann float64) and its per-point weights. Each MPI rank
    on a node allocates its own.

    Parameters
    ----------
    num_wann : int  bands of the model
    n_fermi : int  Fermi levels
    kernel : "surface", "sea" or "tetra"
    n_kpoints_full : int  points of the whole mesh (tetra)
    ranks_per_node : int, optional  default from the launcher (``MPI_LOCALNRANKS``, ...) or 1
    available : int, optional  bytes; default :func:`available_memory`
    mesh_option : str  the option named when the mesh does not fit (``--box-mesh`` for a box)

    Returns
    -------
    int  the estimate in bytes (per rank)

    Raises
    ------
    OptionError  naming --efermi-range / --efermi (or --mesh for tetra) when it does not fit
    """
    block = int(max(16, min(4096, 32e6 // (16.0 * num_wann ** 2))))
    per_fermi = 3 * 8 * block * num_wann * n_fermi
    per_mesh = 64 * n_kpoints_full
    if kernel == "tetra":
        per_mesh += 8 * n_kpoints_full * num_wann * 2 + 8 * n_kpoints_full * n_fermi
    need = per_fermi + per_mesh
    if ranks_per_node is None:
        ranks_per_node = next((int(os.environ[v]) for v in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE",
                                                             "SLURM_NTASKS_PER_NODE")
                               if os.environ.get(v, "").isdigit()), 1)
    avail = available_memory() if available is None else available
    if avail is not None and need * ranks_per_node > 0.8 * avail:
        what = f"{mesh_option} (fewer k-points)" if per_mesh > per_fermi \
            else "--efermi-range/--efermi (fewer Fermi levels)"
        raise OptionError(what.split(" ")[0],
                          f"the run would need about {need * ranks_per_node / 2**30:.1f} GiB "
                          f"({n_fermi} Fermi levels x {num_wann} bands, {n_kpoints_full:.3g} k-points in the mesh"
                          f", {ranks_per_node} rank(s) per node) but {avail / 2**30:.1f} GiB are available: "
                          f"reduce {what}, or split the run")
    return need


# ---------------------------------------------------------------- flags + config file
def load_config(path: str) -> dict:
    """The options of a ``--config`` TOML file: option name (``_`` form) -> TOML value.

    Raises
    ------
    InputFileError  naming the file when it cannot be read or is not valid TOML
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    from .io.errors import InputFileError, check_input_file, decode_text

    try:
        with open(check_input_file(path), "rb") as f:
            data = tomllib.loads(decode_text(f.read(), path))
    except tomllib.TOMLDecodeError as exc:
        raise InputFileError(path, f"not valid TOML: {exc}") from None
    return {k.replace("-", "_"): v for k, v in data.items()}


def merge_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """The options of a sub-command: :data:`gme_wannier.settings.DEFAULTS` < ``--config`` file <
    flags, type-checked (config values) and range-checked (:func:`validate_options`); adds
    ``mesh_given`` (whether ``mesh`` was asked for)."""
    from .io.errors import InputFileError
    from .settings import DEFAULTS

    opts = {k: list(v) if isinstance(v, list) else v for k, v in DEFAULTS.items()}
    origins: dict = {}
    if getattr(args, "config", None):
        cfg = load_config(args.config)
        known = set(vars(args)) - {"command", "config", "argv", "seed", "seeds"}  # not options: never read from it
        bad = sorted(set(cfg) - known)
        if bad:
            raise InputFileError(args.config, f"unknown option(s): {', '.join(bad)}: the keys are the flags of "
                                              f"'gme-wannier {args.command}' without '--' (the seed and --config "
                                              "are given on the command line)")
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args.command]
        cfg = check_config_types(cfg, {a.dest: a for a in sub._actions}, args.config)
        opts.update(cfg)
        origins = {k: f"{args.config}: {k.replace('_', '-')}" for k in cfg}
    for k, v in vars(args).items():
        if v is not None and v is not False:
            opts[k] = v
            origins.pop(k, None)
        elif k not in opts:
            opts[k] = v
    validate_options(opts, origins)
    opts["mesh_given"] = getattr(args, "mesh", None) is not None or "mesh" in origins
    return opts
