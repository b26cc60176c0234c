"""gme_wannier: the gyrotropic magnetic effect tensor of real materials from Wannier90 data.

Public API::

    load_model(seed)                     -> TBModel
    GMESettings(fermi_energies, smearing)
    Smearing(kind, width) / Smearing.from_temperature(kelvin)
    compute(model, settings, Sampling(mesh=...))  -> GMEResult (with result.alpha_error)
    Sampling(mesh, shift, box, kernel, refine, convergence)   how the zone is sampled
    ConvergenceOptions(tolerance=0.01)   Sampling(convergence=...): compute picks the meshes itself
    SymmetryOptions(mode, symprec, magmoms, structure), RunControl(comm, chunk_size, checkpoint, ...)
    settings_from_win(win, model, **options) -> (GMESettings, Sampling) as the CLI / postw90 read a .win
    load_result(path)                    -> GMEResult (from the JSON of a run)
    GMEError                             base class of every error caused by the inputs or options
"""

__version__ = "0.1.0"

from .calculate import compute  # noqa: E402
from .convergence import ConvergenceOptions  # noqa: E402
from .integrate import GMESettings  # noqa: E402
from .io.errors import GMEError  # noqa: E402
from .load import load_model  # noqa: E402
from .model import TBModel  # noqa: E402
from .result import GMEResult, load_result  # noqa: E402
from .settings import RunControl, Sampling, SymmetryOptions, settings_from_win  # noqa: E402
from .smearing import Smearing  # noqa: E402

__all__ = ["compute", "ConvergenceOptions", "GMEError", "GMESettings", "load_model", "load_result", "TBModel", "GMEResult",
           "RunControl", "Sampling", "Smearing", "SymmetryOptions", "settings_from_win", "__version__"]
