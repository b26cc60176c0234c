"""gme_wannier: the gyrotropic magnetic effect tensor of real materials from Wannier90 data.

Public API::

    load_model(seed)                     -> TBModel
    GMESettings(fermi_energies, smearing)
    Smearing(kind, width) / Smearing.from_temperature(kelvin)
    compute(model, settings, mesh=...)   -> GMEResult (with result.alpha_error)
    ConvergenceOptions(tolerance=0.01)   compute(..., convergence=...) picks the meshes itself
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
from .smearing import Smearing  # noqa: E402

__all__ = ["compute", "ConvergenceOptions", "GMEError", "GMESettings", "load_model", "load_result", "TBModel", "GMEResult", "Smearing", "__version__"]
