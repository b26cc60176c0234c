"""gme_wannier: the gyrotropic magnetic effect tensor of real materials from Wannier90 data."""

__version__ = "0.1.0"
