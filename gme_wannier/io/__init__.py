"""File formats only (Wannier90 files, structures, result writers): no physics."""
