"""Crystal structure files (POSCAR, CIF, QE input, ...) read with ASE into ``ase.Atoms``."""

from __future__ import annotations

import os

import numpy as np

from .errors import GMEInputError, check_input_file

__all__ = ["StructureFileError", "structure_from_file"]


class StructureFileError(GMEInputError):
    """A structure file could not be read."""


def structure_from_file(path: str | os.PathLike, format: str | None = None):
    """Read a crystal structure with ``ase.io.read`` (POSCAR, CIF, QE input, ...).

    Parameters
    ----------
    path : str or path-like
        The structure file.
    format : str, optional
        ASE format name; guessed from the file name when omitted.

    Returns
    -------
    ase.Atoms
        The first image in the file.

    Raises
    ------
    StructureFileError
        If the file is missing, cannot be parsed, or holds no 3D-periodic cell.
    """
    import ase.io

    path = os.fspath(path)
    if not os.path.lexists(path):
        raise StructureFileError(f"{path}: structure file does not exist")
    try:
        check_input_file(path)
    except GMEInputError as exc:
        raise StructureFileError(str(exc)) from None
    try:
        atoms = ase.io.read(path, index=0, format=format)
    except Exception as exc:  # noqa: BLE001 - any parser failure is a bad file
        hint = "" if format else " (name it .cif, POSCAR, .pwi, ... so that the format is recognised)"
        what = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise StructureFileError(f"{path}: could not read a structure{hint}: {what}") from None
    if not all(atoms.pbc) or abs(atoms.cell.volume) < 1e-8:
        raise StructureFileError(f"{path}: the structure has no 3D periodic cell")
    if len(atoms) == 0 or not np.all(np.isfinite(atoms.positions)):
        raise StructureFileError(f"{path}: the structure has no atoms or non-finite positions")
    return atoms

