"""Reader of Wannier90 ``.win`` files: structure, spinors and scalar keywords. No physics."""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from typing import IO, Optional, Union

import numpy as np

from .errors import InputFileError, check_input_file, decode_text

BOHR_ANGSTROM = 0.529177210903


@dataclass
class WinData:
    """Plain data read from a ``.win`` file.

    Attributes
    ----------
    keywords : dict  lower-case keyword -> raw string value
    blocks : dict    lower-case block name -> list of lines
    real_lattice : float ndarray (3, 3), Angstrom, rows = lattice vectors, or None
    symbols : list of str
    positions_frac : float ndarray (nat, 3), reduced coordinates, or None
    """

    path: str
    keywords: dict = field(default_factory=dict)
    blocks: dict = field(default_factory=dict)
    real_lattice: Optional[np.ndarray] = None
    symbols: list = field(default_factory=list)
    positions_frac: Optional[np.ndarray] = None

    def get_bool(self, key: str, default: bool = False) -> bool:
        """Value of a boolean keyword (true/false, t/f, with or without dots), or ``default``."""
        v = self.keywords.get(key.lower())
        if v is None:
            return default
        v = v.strip().lower().strip(".")
        if v in ("true", "t"):
            return True
        if v in ("false", "f"):
            return False
        raise InputFileError(self.path, f"keyword '{key}' must be true or false, got '{v}'")

    def get_float(self, key: str, default=None):
        """Value of a real keyword (Fortran d exponents accepted), or ``default``."""
        v = self.keywords.get(key.lower())
        if v is None:
            return default
        try:
            return float(v.replace("d", "e").replace("D", "e"))
        except ValueError:
            raise InputFileError(self.path, f"keyword '{key}' must be a number, got '{v}'") from None

    def get_floats(self, key: str, n: int, default=None):
        """Value of a keyword holding ``n`` reals, float (n,), or ``default``."""
        v = self.keywords.get(key.lower())
        if v is None:
            return default
        try:
            vals = [float(x.replace("d", "e")) for x in v.replace(",", " ").split()]
        except ValueError:
            raise InputFileError(self.path, f"keyword '{key}' must be {n} numbers, got '{v}'") from None
        if len(vals) != n:
            raise InputFileError(self.path, f"keyword '{key}' must be {n} numbers, got '{v}'")
        return np.array(vals)

    def get_int(self, key: str, default=None):
        """Value of an integer keyword (its first word), or ``default``."""
        v = self.keywords.get(key.lower())
        if v is None:
            return default
        try:
            return int(v.split()[0])
        except (ValueError, IndexError):
            raise InputFileError(self.path, f"keyword '{key}' must be an integer, got '{v}'") from None

    @property
    def spinors(self) -> bool:
        """The ``spinors`` keyword (default false)."""
        return self.get_bool("spinors", False)

    @property
    def num_wann(self) -> Optional[int]:
        """The ``num_wann`` keyword, or None."""
        return self.get_int("num_wann")

    def to_atoms(self):
        """The structure as ``ase.Atoms`` (raises InputFileError if incomplete)."""
        import ase

        if self.real_lattice is None:
            raise InputFileError(self.path, "no 'unit_cell_cart' block: the structure is unknown")
        if self.positions_frac is None or len(self.symbols) == 0:
            raise InputFileError(self.path, "no 'atoms_frac' or 'atoms_cart' block: the structure is unknown")
        symbols = [_element(s) for s in self.symbols]
        try:
            return ase.Atoms(symbols=symbols, scaled_positions=self.positions_frac,
                             cell=self.real_lattice, pbc=True)
        except (KeyError, ValueError) as exc:
            raise InputFileError(self.path, f"atoms block cannot be used: {exc}") from None


def _element(label: str) -> str:
    """'Te1' -> 'Te', 'si' -> 'Si'."""
    m = re.match(r"([A-Za-z]{1,2})", label)
    if not m:
        raise ValueError(f"cannot read an element from atom label '{label}'")
    s = m.group(1)
    s = s[0].upper() + s[1:].lower()
    from ase.data import atomic_numbers

    if s not in atomic_numbers and s[0] in atomic_numbers:
        s = s[0]
    return s


def read_win(source: Union[str, os.PathLike, IO[str]], path: Optional[str] = None) -> WinData:
    """Read a ``.win`` file (path or text stream)."""
    if isinstance(source, (str, os.PathLike)):
        path = str(source)
        check_input_file(path)
        try:
            with open(source, "rb") as f:
                text = decode_text(f.read(), path)
        except OSError as exc:
            raise InputFileError(path, f"cannot be read ({exc.strerror or exc})") from None
    else:
        text = source.read()
        path = path or "<stream>"
    data = WinData(path=path)
    lines = text.splitlines()
    first: dict = {}  # keyword or "begin NAME" -> line of its first appearance
    i = 0
    while i < len(lines):
        line = re.split(r"[!#]", lines[i], maxsplit=1)[0].strip()
        i += 1
        if not line:
            continue
        low = line.lower()
        if low.startswith("begin"):
            parts = low.split()
            if len(parts) < 2:
                raise InputFileError(path, f"line {i}: 'begin' without a block name")
            name = parts[1]
            _once(path, first, f"begin {name}", f"block '{name}'", i)
            body = []
            while True:
                if i >= len(lines):
                    raise InputFileError(path, f"block '{name}' is not closed by 'end {name}'")
                bl = re.split(r"[!#]", lines[i], maxsplit=1)[0].strip()
                i += 1
                if bl.lower().startswith("end"):
                    closes = bl.lower().split()[1:2]
                    if closes and closes[0] != name:
                        raise InputFileError(path, f"line {i}: 'end {closes[0]}' inside block '{name}': close it "
                                                   f"with 'end {name}'")
                    break
                if bl:
                    body.append(bl)
            data.blocks[name] = body
            continue
        m = re.match(r"([A-Za-z0-9_]+)\s*[=:\s]\s*(.*)$", line)
        if m:
            _once(path, first, m.group(1).lower(), f"keyword '{m.group(1).lower()}'", i)
            data.keywords[m.group(1).lower()] = m.group(2).strip()
    _parse_structure(data)
    return data


def _once(path: str, first: dict, key: str, what: str, line: int) -> None:
    """Wannier90 refuses a keyword or block given twice (which value would it be?); so do we."""
    if key in first:
        raise InputFileError(path, f"line {line}: {what} is given twice (also on line {first[key]}): keep one")
    first[key] = line


def _parse_structure(data: WinData) -> None:
    path = data.path
    cell = data.blocks.get("unit_cell_cart")
    if cell is not None:
        rows = list(cell)
        scale = 1.0
        if rows and rows[0].split()[0].lower() in ("bohr", "ang", "angstrom"):
            scale = BOHR_ANGSTROM if rows[0].split()[0].lower() == "bohr" else 1.0
            rows = rows[1:]
        try:
            lat = np.array([[float(x) for x in r.split()[:3]] for r in rows], dtype=float)
        except ValueError:
            raise InputFileError(path, "unit_cell_cart: expected three numbers per line") from None
        if lat.shape != (3, 3):
            raise InputFileError(path, f"unit_cell_cart: expected 3 lattice vectors, got {len(rows)} lines")
        if not np.all(np.isfinite(lat)):
            raise InputFileError(path, "unit_cell_cart: the lattice vectors must be finite numbers")
        if abs(np.linalg.det(lat)) < 1e-8:
            raise InputFileError(path, "unit_cell_cart: the lattice vectors are linearly dependent")
        data.real_lattice = lat * scale
    for name in ("atoms_frac", "atoms_cart"):
        body = data.blocks.get(name)
        if body is None:
            continue
        rows = list(body)
        scale = 1.0
        if name == "atoms_cart" and rows and rows[0].split()[0].lower() in ("bohr", "ang", "angstrom"):
            scale = BOHR_ANGSTROM if rows[0].split()[0].lower() == "bohr" else 1.0
            rows = rows[1:]
        symbols, pos = [], []
        for r in rows:
            parts = r.split()
            try:
                pos.append([float(x) for x in parts[1:4]])
            except (ValueError, IndexError):
                raise InputFileError(path, f"{name}: cannot read '{r}'") from None
            if len(pos[-1]) != 3:
                raise InputFileError(path, f"{name}: expected 'label x y z', got '{r}'")
            symbols.append(parts[0])
        pos = np.array(pos, dtype=float).reshape(-1, 3)
        if not np.all(np.isfinite(pos)):
            raise InputFileError(path, f"{name}: atomic positions must be finite numbers")
        if name == "atoms_cart":
            if data.real_lattice is None:
                raise InputFileError(path, "atoms_cart needs unit_cell_cart")
            pos = (pos * scale) @ np.linalg.inv(data.real_lattice)
        data.symbols = symbols
        data.positions_frac = pos


def read_win_text(text: str) -> WinData:
    """Convenience for tests: read a ``.win`` from a string."""
    return read_win(io.StringIO(text))
