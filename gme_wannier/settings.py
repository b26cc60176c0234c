"""What a run is asked to do, besides the model: the sampling of the zone, the symmetry and the
run control that :func:`gme_wannier.calculate.compute` takes, and how these (with the
:class:`~gme_wannier.integrate.GMESettings`) follow from options and a Wannier90 ``.win`` file.

The options are a mapping named like the command-line flags with ``_`` for ``-``
(``efermi_range``, ``smearing_width``, ``box_mesh``, ...); :data:`DEFAULTS` holds the values
of the options not given. The command line is a shim over :func:`run_setup`; from Python,
:func:`settings_from_win` reads a ``.win`` as postw90's gyrotropic module would::

    st, sampling = settings_from_win(read_win("Te.win"), model)      # gyrotropic_* box, smearing
    result = compute(model, st, sampling, symmetry="off")

Units: energies and widths in eV, temperatures in K, reduced coordinates for boxes, Angstrom
for ``symprec``, seconds for ``checkpoint_every``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .convergence import ConvergenceOptions
from .integrate import GMESettings
from .io.errors import GMEInputError, InputFileError
from .smearing import FD_MAX_ARG, Smearing

__all__ = ["Sampling", "SymmetryOptions", "RunControl", "RunSetup", "DEFAULTS", "DEFAULT_TOLERANCE",
           "KERNELS", "SYMMETRY_MODES", "OPTION_KEYS", "smearing_from_options", "material_fermi",
           "gme_settings", "box_from_win", "box_from_options", "check_magmoms", "convergence_from_options",
           "run_setup", "settings_from_win"]

KERNELS = ("surface", "sea", "tetra")
SYMMETRY_MODES = ("auto", "off")
DEFAULT_TOLERANCE = 0.01
"""Relative error target of the automatic convergence when no mesh is given."""


@dataclass(frozen=True)
class Sampling:
    """How the Brillouin zone is sampled (frozen; checked on construction).

    mesh : 3 ints, Gamma-centred (``shift`` = 0) uniform mesh of the whole zone.
    shift : 3 ints, mesh shift as in :func:`gme_wannier.kmesh.uniform_mesh`.
    box : mapping with ``center``, ``b1``, ``b2``, ``b3`` (reduced, 3 floats each) and ``mesh``
        (3 ints), optional: a box of the zone instead (Wannier90's gyrotropic_box_*); never
        symmetrized.
    kernel : "surface" (Fermi-surface form), "sea" (Fermi-sea cross-check) or "tetra" (linear
        tetrahedra on the whole Gamma-centred mesh; the smearing is not used).
    refine : ints f1, f2, ...: cells of ``mesh`` the Fermi window reaches are subdivided by f1,
        then f2, ... (:mod:`gme_wannier.refine`); equals the uniform mesh ``mesh * prod(f)``.
    refine_margin : eV added to the Fermi window when marking cells.
    convergence : ConvergenceOptions, optional: symmetric uniform meshes of growing density
        until the error estimate meets ``convergence.tolerance`` (``mesh`` is not used).

    Raises
    ------
    GMEInputError  for an unknown kernel or a combination the samplers do not support.
    """

    mesh: tuple = (20, 20, 20)
    shift: tuple = (0, 0, 0)
    box: Optional[Mapping] = None
    kernel: str = "surface"
    refine: tuple = ()
    refine_margin: float = 0.05
    convergence: Optional[ConvergenceOptions] = None

    def __post_init__(self):
        from .kmesh import check_mesh

        box, refine = self.box, tuple(self.refine or ())
        if self.kernel not in KERNELS:
            raise GMEInputError(f"unknown kernel '{self.kernel}' (surface, sea or tetra)")
        if self.kernel == "tetra" and (box is not None or any(self.shift)):
            raise GMEInputError("kernel 'tetra' needs the unshifted uniform mesh (no box, no shift)")
        if refine and (self.kernel != "surface" or box is not None):
            raise GMEInputError("refinement works with the Fermi-surface kernel on the uniform mesh only")
        if any(int(f) < 2 for f in refine):
            raise GMEInputError("refinement factors must be integers >= 2")
        if self.convergence is not None and (box is not None or refine or self.kernel == "sea"):
            raise GMEInputError("--tolerance: automatic convergence works on the whole zone with the surface or "
                                "tetra kernel (drop --refine, --box-*/--win-box, --kernel sea)")
        if box is not None and "mesh" not in box:
            raise GMEInputError("a box needs 'mesh' (3 ints) besides 'center', 'b1', 'b2', 'b3'")
        object.__setattr__(self, "mesh", check_mesh(self.mesh))
        object.__setattr__(self, "shift", tuple(self.shift))
        object.__setattr__(self, "refine", refine)
        object.__setattr__(self, "box", None if box is None else _frozen_box(box))

    @property
    def whole_zone(self) -> bool:
        """True for the plain uniform mesh of the Fermi-surface kernel (no box, no refinement)."""
        return self.box is None and not self.refine and self.kernel == "surface"


def _frozen_box(box: Mapping) -> Mapping:
    """A read-only copy of a box: vectors as tuples of floats, the mesh as 3 ints."""
    from .kmesh import check_mesh

    out = {k: v if v is None else tuple(float(x) for x in np.asarray(v, dtype=float).ravel())
           for k, v in box.items() if k != "mesh"}
    out["mesh"] = check_mesh(box["mesh"])
    return MappingProxyType(out)


@dataclass(frozen=True)
class SymmetryOptions:
    """How the crystal symmetry is used (frozen).

    mode : "auto" (spglib point group: irreducible k-points, symmetrized tensor) or "off".
    symprec : float, spglib tolerance, Angstrom.
    magmoms : float ndarray, shape (nat,) (collinear) or (nat, 3) (non-collinear), mu_B, optional:
        magnetic moments per atom, for the magnetic space group (see :func:`check_magmoms`).
    structure : ase.Atoms, optional: overrides ``model.atoms`` for the symmetry analysis (same
        Cartesian frame as the model's lattice).
    """

    mode: str = "auto"
    symprec: float = 1e-5
    magmoms: Optional[np.ndarray] = field(default=None, compare=False)
    structure: Any = field(default=None, compare=False)

    def __post_init__(self):
        if self.mode not in SYMMETRY_MODES:
            raise GMEInputError(f"unknown symmetry mode '{self.mode}' (choose auto or off)")


@dataclass(frozen=True)
class RunControl:
    """How the k loop runs (frozen); none of it changes the result.

    comm : communicator of :func:`gme_wannier.parallel.get_comm`, optional (serial by default).
    chunk_size : int >= 1, k-points per chunk (memory bound).
    checkpoint : str, optional: path of a checkpoint to write and resume from. The files are kept
        after the sum (a rerun returns at once); :func:`gme_wannier.checkpoint.remove_checkpoint`
        deletes them once the result is saved (the CLI does).
    checkpoint_every : float, seconds between checkpoint saves.
    progress : bool or None, progress bar on rank 0 (None: only on a terminal).
    """

    comm: Any = None
    chunk_size: int = 200
    checkpoint: Optional[str] = None
    checkpoint_every: float = 60.0
    progress: Optional[bool] = False

    def __post_init__(self):
        if int(self.chunk_size) < 1:
            raise GMEInputError("chunk_size must be >= 1 (k-points per chunk)")


@dataclass(frozen=True)
class RunSetup:
    """Everything :func:`run_setup` derives from the options: the arguments of ``compute()``
    besides the model and the run control, and the material's Fermi level.

    settings : GMESettings; sampling : Sampling; symmetry : SymmetryOptions
    spin_degeneracy : 1, 2 or None (None: from the model)
    fermi : dict of :func:`gme_wannier.fermi.material_fermi_level`, or None
    """

    settings: GMESettings
    sampling: Sampling
    symmetry: SymmetryOptions
    spin_degeneracy: Optional[int] = None
    fermi: Optional[dict] = field(default=None, compare=False)


_GME = GMESettings()
DEFAULTS: dict = {"mesh": list(Sampling().mesh), "symmetry": SymmetryOptions().mode, "source": "auto",
                  "degen_thresh": _GME.degen_thresh, "degeneracy": _GME.degeneracy,
                  "moment_energy": _GME.moment_energy, "g_s": _GME.g_s, "max_arg": None, "mp_order": 1,
                  "chunk_size": RunControl().chunk_size, "symprec": SymmetryOptions().symprec,
                  "kernel": Sampling().kernel}
"""The value of every option that has one when it is not given (from the objects' own defaults;
``max_arg`` None: 5 widths, 30 for Fermi-Dirac)."""

OPTION_KEYS = ("mesh", "tolerance", "max_kpoints", "max_time", "kernel", "refine", "box_center", "box_b1",
               "box_b2", "box_b3", "box_mesh", "win_box", "symmetry", "symprec", "structure", "magmoms",
               "efermi", "efermi_range", "efermi_relative", "num_electrons", "temperature", "smearing",
               "smearing_width", "mp_order", "max_arg", "degen_thresh", "degeneracy", "moment_energy", "g_s",
               "internal_only", "no_spin", "spin_degeneracy")
"""The options :func:`run_setup` reads (the flags of ``gme-wannier run`` that shape the physics)."""


def smearing_from_options(o: Mapping) -> Smearing:
    """The Fermi-level broadening asked for by ``smearing``, ``smearing_width`` (eV),
    ``temperature`` (K), ``mp_order`` and ``max_arg`` (widths).

    A numerical smearing needs its width and excludes a temperature; otherwise Fermi-Dirac at
    ``temperature`` (default 300 K), or at ``smearing_width`` / k_B with ``smearing =
    "fermi-dirac"``. The weights are cut beyond ``max_arg`` widths (default 5; 30 for
    Fermi-Dirac, :data:`gme_wannier.smearing.FD_MAX_ARG`).

    Returns
    -------
    Smearing
    """
    if o.get("smearing") and o["smearing"] != "fermi-dirac":
        if o.get("temperature") is not None:
            raise GMEInputError("give either --temperature or --smearing, not both")
        if o.get("smearing_width") is None:
            raise GMEInputError("--smearing needs --smearing-width (eV)")
        return Smearing(o["smearing"], float(o["smearing_width"]), int(o.get("mp_order") or 1),
                        float(o["max_arg"]) if o.get("max_arg") else 5.0)
    T = o.get("temperature")
    if T is None and o.get("smearing") == "fermi-dirac" and o.get("smearing_width"):
        from .units import k_B_eV

        T = float(o["smearing_width"]) / k_B_eV
    return Smearing.from_temperature(300.0 if T is None else float(T),
                                     float(o["max_arg"]) if o.get("max_arg") else FD_MAX_ARG)


# the band energies of the Fermi level, the band report and the Fermi-level warning: the run's mesh
# per axis, clipped to BAND_MESH_MIN .. 24 (a 5^3 test mesh would see too little of the bands)
BAND_MESH_MIN = 8


def material_fermi(o: Mapping, model, win=None, kT: float = 0.025852) -> Optional[dict]:
    """The material's own Fermi level: by charge neutrality from ``num_electrons``, else the
    ``fermi_energy`` of ``win``; None without a model.

    The band energies come from the options' mesh capped at 24 per direction, on irreducible
    points unless ``symmetry`` is "off" or a ``structure`` or ``magmoms`` replaces the model's.

    Parameters
    ----------
    o : options (``num_electrons``, ``mesh``, ``spin_degeneracy``, ``symprec``, ``symmetry``, ...)
    model : TBModel or None
    win : WinData, optional
    kT : float, eV, the Fermi-Dirac width of the electron count

    Returns
    -------
    dict of :func:`gme_wannier.fermi.material_fermi_level` (``E_F_eV`` in eV or None), or None
    """
    from .fermi import material_fermi_level

    if model is None:
        return None
    return material_fermi_level(model, num_electrons=o.get("num_electrons"), kT=kT,
                                mesh=[min(max(int(n), BAND_MESH_MIN), 24) for n in (o.get("mesh") or (24, 24, 24))],
                                win_fermi_energy=win.get_float("fermi_energy") if win is not None else None,
                                spin_degeneracy=o.get("spin_degeneracy") or None,
                                symprec=float(o.get("symprec", DEFAULTS["symprec"])),
                                use_symmetry=o.get("symmetry") != "off" and not o.get("structure")
                                and o.get("magmoms") is None)


def gme_settings(o: Mapping, win=None, model=None) -> tuple[GMESettings, Optional[dict]]:
    """The :class:`GMESettings` of the options, and the material's Fermi level behind them.

    Fermi levels: ``efermi`` (eV list) or ``efermi_range`` (MIN, MAX, STEP in eV, MAX
    included), offsets from the material's E_F with ``efermi_relative``; neither: the
    material's E_F (:func:`material_fermi`). Options not given take :data:`DEFAULTS`.

    Returns
    -------
    settings : GMESettings, fermi_energies (nE,) eV
    fermi : dict of :func:`material_fermi`, or None without a model
    """
    from .fermi import fermi_grid

    o = {**DEFAULTS, **{k: v for k, v in o.items() if v is not None}}
    sm = smearing_from_options(o)
    fermi = material_fermi(o, model, win, sm.width)
    ef = fermi_grid(efermi=o.get("efermi"), efermi_range=o.get("efermi_range"), relative=bool(o.get("efermi_relative")),
                    material_ef=None if fermi is None else fermi["E_F_eV"])
    return GMESettings(fermi_energies=ef, smearing=sm, degen_thresh=float(o["degen_thresh"]),
                       degeneracy=o["degeneracy"], moment_energy=o["moment_energy"], g_s=float(o["g_s"]),
                       external=not o.get("internal_only", False), spin=not o.get("no_spin", False)), fermi


def box_from_win(win, o: Optional[Mapping] = None) -> tuple[dict, dict]:
    """The integration box and the settings of postw90's gyrotropic module in a ``.win``.

    Reads ``gyrotropic_kmesh`` (required), ``gyrotropic_box_center``/``_b1``/``_b2``/``_b3``
    (reduced; edges default to the reciprocal vectors), the Gaussian width
    ``gyrotropic_smr_fixed_en_width`` (else ``smr_fixed_en_width``, eV) with
    ``gyrotropic_smr_max_arg`` (default 5), ``fermi_energy_min``/``_max``/``_step`` (eV, step
    default 0.01) and ``gyrotropic_degen_thresh`` (eV). Options given in ``o`` win: the smearing
    is taken only if ``o`` has no ``smearing`` or ``temperature``, the Fermi levels only if it
    has no ``efermi`` or ``efermi_range``.

    Returns
    -------
    box : dict ``center``, ``b1``, ``b2``, ``b3`` (float (3,) reduced, center None if not given),
        ``mesh`` (3 ints)
    overrides : dict of options (``smearing``, ``smearing_width``, ``max_arg``,
        ``efermi_range``, ``degen_thresh``) that the .win sets

    Raises
    ------
    InputFileError  when the .win has no ``gyrotropic_kmesh``
    """
    o = o or {}
    km = win.get_floats("gyrotropic_kmesh", 3)
    if km is None:
        raise InputFileError(win.path, "--win-box: no gyrotropic_kmesh in the .win")
    box = {"center": win.get_floats("gyrotropic_box_center", 3),
           "b1": win.get_floats("gyrotropic_box_b1", 3, np.array([1.0, 0, 0])),
           "b2": win.get_floats("gyrotropic_box_b2", 3, np.array([0, 1.0, 0])),
           "b3": win.get_floats("gyrotropic_box_b3", 3, np.array([0, 0, 1.0])),
           "mesh": [int(x) for x in km]}
    extra: dict = {}
    w = win.get_float("gyrotropic_smr_fixed_en_width", win.get_float("smr_fixed_en_width"))
    if w is not None and not o.get("smearing") and o.get("temperature") is None:
        extra.update(smearing="gaussian", smearing_width=w, max_arg=win.get_float("gyrotropic_smr_max_arg", 5.0))
    lo, hi, st = (win.get_float("fermi_energy_min"), win.get_float("fermi_energy_max"),
                  win.get_float("fermi_energy_step"))
    if lo is not None and hi is not None and o.get("efermi") is None and o.get("efermi_range") is None:
        extra["efermi_range"] = [lo, hi, st or 0.01]
    dt = win.get_float("gyrotropic_degen_thresh")
    if dt is not None:
        extra["degen_thresh"] = dt
    return box, extra


def box_from_options(o: Mapping) -> Optional[dict]:
    """The box of ``box_center``, ``box_b1``/``_b2``/``_b3`` (reduced, 3 floats; default the
    reciprocal vectors) and ``box_mesh`` (3 ints), or None when neither center nor mesh is given."""
    if o.get("box_center") is None and o.get("box_mesh") is None:
        edges = [k for k in ("box_b1", "box_b2", "box_b3") if o.get(k) is not None]
        if edges:
            raise GMEInputError(f"--{edges[0].replace('_', '-')}: a box edge needs the box: give --box-mesh N1 N2 N3 "
                                "(and --box-center), or drop it")
        return None
    if o.get("box_mesh") is None:
        raise GMEInputError("--box-center needs --box-mesh N1 N2 N3")
    return {"center": o.get("box_center"), "b1": o.get("box_b1") or [1.0, 0, 0],
            "b2": o.get("box_b2") or [0, 1.0, 0], "b3": o.get("box_b3") or [0, 0, 1.0], "mesh": o["box_mesh"]}


def check_magmoms(magmoms: Optional[Sequence[float]], atoms, where: str) -> Optional[np.ndarray]:
    """Magnetic moments per atom as the symmetry search takes them.

    Parameters
    ----------
    magmoms : floats, nat (collinear) or 3 nat (non-collinear, x y z per atom) numbers, mu_B,
        in the structure's atom order; or None
    atoms : ase.Atoms or None, the structure of the symmetry analysis
    where : str, the structure's file, for the message

    Returns
    -------
    float ndarray, shape (nat,) or (nat, 3), or None
    """
    if magmoms is None:
        return None
    mm = np.array(magmoms, dtype=float)
    nat = 0 if atoms is None else len(atoms)
    if mm.size not in (nat, 3 * nat) or nat == 0:
        raise GMEInputError(f"--magmoms: the structure ({where}) has {nat} atoms: give {nat} (collinear) or "
                            f"{3 * nat} (non-collinear) numbers, in its atom order; got {mm.size}")
    return mm.reshape(-1, 3) if mm.size == 3 * nat else mm


def convergence_from_options(o: Mapping, recip_lattice: Optional[np.ndarray], whole_zone: bool,
                             mesh_given: bool) -> Optional[ConvergenceOptions]:
    """The automatic convergence asked for: ``tolerance`` (relative), ``max_kpoints``,
    ``max_time`` (s); by default (:data:`DEFAULT_TOLERANCE`) when no mesh is given and the
    sampling is the plain whole zone (``whole_zone``), else None. With a mesh given, its spacing
    min_i |b_i| / N_i (1/Angstrom, from ``recip_lattice``, shape (3, 3), rows b_i) starts the
    sequence."""
    tol = o.get("tolerance")
    limits = o.get("max_kpoints") or o.get("max_time")
    if tol is None and (mesh_given or not whole_zone or limits):
        if limits:
            raise GMEInputError("--max-kpoints/--max-time: these limit the automatic convergence: give --tolerance too")
        return None
    extra = {}
    if mesh_given:
        if recip_lattice is None:
            raise GMEInputError("--tolerance with --mesh: the first mesh's spacing needs the model's reciprocal lattice")
        extra["initial_spacing"] = float(np.min(np.linalg.norm(recip_lattice, axis=1) / np.array(o["mesh"])))
    return ConvergenceOptions(tolerance=float(tol if tol is not None else DEFAULT_TOLERANCE),
                              max_kpoints=o.get("max_kpoints"), max_time=o.get("max_time"), **extra)


def _win_overrides(o: Mapping, win, seed: Optional[str]) -> tuple[Optional[dict], dict]:
    """(box, options set by the .win) of ``win_box``, their values checked as options; else the
    box of the flags and no overrides."""
    if not o.get("win_box"):
        return box_from_options(o), {}
    if win is None:
        raise InputFileError(f"{seed}.win", "--win-box: no .win file to read the gyrotropic_* keywords from")
    from .options import validate_options

    box, extra = box_from_win(win, o)
    origin = f"{win.path} (--win-box)"
    validate_options({**extra, "box_mesh": box["mesh"]}, {k: f"{origin}: {k}" for k in (*extra, "box_mesh")})
    return box, extra


def run_setup(o: Mapping, model, win=None, seed: Optional[str] = None) -> RunSetup:
    """Everything a run of ``model`` needs besides the run control, from the options.

    Parameters
    ----------
    o : options named like the flags of ``gme-wannier run`` (:data:`OPTION_KEYS`); not given:
        :data:`DEFAULTS`. ``mesh_given`` (bool) says whether ``mesh`` was asked for (else the
        automatic convergence is the default). ``structure`` is a file path here.
    model : TBModel, or None (no material Fermi level, no structure but ``structure``)
    win : WinData, optional, the model's ``.win`` (Fermi level; gyrotropic_* with ``win_box``)
    seed : str, optional, DIR/SEED, for the messages

    Returns
    -------
    RunSetup
    """
    o = {**DEFAULTS, **{k: v for k, v in o.items() if v is not None}}
    box, extra = _win_overrides(o, win, seed)
    o = {**o, **extra}
    st, fermi = gme_settings(o, win, model)
    structure = None
    if o.get("structure"):
        from .symmetry import structure_from_file

        structure = structure_from_file(o["structure"])
    atoms = structure if structure is not None else getattr(model, "atoms", None)
    mm = check_magmoms(o.get("magmoms"), atoms, o["structure"] if structure is not None else f"{seed}.win")
    sym = SymmetryOptions(mode=o["symmetry"], symprec=float(o["symprec"]), magmoms=mm, structure=structure)
    refine = tuple(o.get("refine") or ())
    whole = box is None and not refine and o["kernel"] == "surface"
    conv = convergence_from_options(o, None if model is None else model.recip_lattice, whole,
                                    bool(o.get("mesh_given")))
    sampling = Sampling(mesh=tuple(o["mesh"]), box=box, kernel=o["kernel"], refine=refine, convergence=conv)
    return RunSetup(settings=st, sampling=sampling, symmetry=sym, spin_degeneracy=o.get("spin_degeneracy") or None,
                    fermi=fermi)


def settings_from_win(win, model=None, **options) -> tuple[GMESettings, Sampling]:
    """The settings and sampling of a ``.win`` as postw90's gyrotropic module reads them.

    By default (``win_box=True``) the box and mesh of ``gyrotropic_box_*`` and
    ``gyrotropic_kmesh``, the Gaussian smearing ``gyrotropic_smr_fixed_en_width`` and
    ``gyrotropic_smr_max_arg``, the Fermi levels ``fermi_energy_min/max/step`` and
    ``gyrotropic_degen_thresh`` (see :func:`box_from_win`); ``win_box=False`` keeps the flags'
    whole-zone sampling and takes only ``fermi_energy`` (the material's E_F).

    Parameters
    ----------
    win : WinData, from :func:`gme_wannier.io.win.read_win`
    model : TBModel, optional; needed for the material's Fermi level (``num_electrons``, or no
        Fermi levels given), for ``magmoms`` and for a convergence that starts from ``mesh``
    **options : any of :data:`OPTION_KEYS`, as the flags of ``gme-wannier run`` (e.g.
        ``efermi=[6.0]``, ``temperature=100.0``, ``mesh=(16, 16, 16)``); they win over the .win

    Returns
    -------
    settings : GMESettings
    sampling : Sampling

    Raises
    ------
    GMEInputError  for an unknown option or a bad value (named as the flag, or as the .win key)
    """
    from .options import validate_options

    bad = sorted(set(options) - set(OPTION_KEYS))
    if bad:
        raise GMEInputError(f"settings_from_win: unknown option(s) {', '.join(bad)}; known: {', '.join(OPTION_KEYS)}")
    o = {"win_box": True, **options}
    validate_options(o)
    setup = run_setup({**o, "mesh_given": "mesh" in options}, model, win)
    return setup.settings, setup.sampling
