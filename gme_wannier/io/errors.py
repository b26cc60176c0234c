"""The exception family of gme_wannier, and checks of the input files before they are opened.

Every problem a user can cause raises a subclass of :class:`GMEError`; the command line prints
it as the one line ``gme-wannier: error: <file or option>: <problem and what to do>`` and exits
with :attr:`GMEError.exit_code` (2; 130/143 for an interrupted run). The subclasses keep their
historical names: :class:`GMEInputError`, :class:`InputFileError`, :class:`OptionError`, and
(defined next to the code that raises them) ``SymmetryError``, ``StructureFileError``,
``CheckpointError``.
"""

from __future__ import annotations

import os
import stat

__all__ = ["GMEError", "GMEInputError", "InputFileError", "OptionError", "Interrupted",
           "check_input_file", "decode_text"]


class GMEError(ValueError):
    """Base class of every error the command line reports as one line, without a traceback.

    Attributes
    ----------
    exit_code : int
        Exit status of the command line for this error (2).
    all_ranks : bool
        True: raised identically on every MPI rank (deterministic input checks), so the MPI
        guard prints it once and every rank exits with ``exit_code`` (no MPI_Abort).
    """

    exit_code = 2
    all_ranks = True


class GMEInputError(GMEError):
    """Bad input (options, files, structure): the historical base class of the input errors."""


class InputFileError(GMEInputError):
    """A file is missing, truncated or inconsistent.

    Parameters
    ----------
    path : str  the file (or seed) concerned
    problem : str  what is wrong and what to do
    """

    def __init__(self, path: str, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class OptionError(GMEInputError):
    """A bad option value; ``option`` is the flag (``--mesh``) or ``config.toml: mesh``."""

    def __init__(self, option: str, problem: str):
        self.option = option
        self.problem = problem
        super().__init__(f"{option}: {problem}")


class Interrupted(GMEError):
    """The run was stopped by SIGTERM or SIGINT (after saving the checkpoint, if any).

    Exit codes 128 + signal number: 143 for SIGTERM, 130 for SIGINT.
    """

    def __init__(self, signum: int, message: str):
        self.signum = int(signum)
        self.exit_code = 128 + self.signum
        super().__init__(message)


def check_input_file(path: str) -> str:
    """Refuse, without opening it, anything but a readable regular file.

    A FIFO would block ``open`` forever and a directory raises ``IsADirectoryError``; both are
    detected with :func:`os.stat` first. Returns ``path``.

    Raises
    ------
    InputFileError
        Missing, not a regular file (directory, FIFO, device, socket) or not readable.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputFileError(path, "file not found") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot be accessed ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputFileError(path, "is a directory, not a file: give the file's path")
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else "not a regular file"
        raise InputFileError(path, f"is {kind}: give a regular file (it is not read, to avoid blocking)")
    if not os.access(path, os.R_OK):
        raise InputFileError(path, "permission denied: make the file readable (chmod u+r) or copy it")
    return path


def decode_text(data: bytes, path: str) -> str:
    """UTF-8 text of a file's bytes, or a clear error for a binary / non-UTF-8 file.

    Raises
    ------
    InputFileError
        NUL bytes (a binary file) or bytes that are not UTF-8 (e.g. Latin-1 accents), with the
        line number.
    """
    if b"\x00" in data:
        raise InputFileError(path, "is a binary file (NUL bytes), expected text: is this the right file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputFileError(path, f"line {line}: byte 0x{data[exc.start]:02x} is not UTF-8 text "
                                   "(binary file, or Latin-1 characters: convert with "
                                   "'iconv -f latin1 -t utf-8' or remove them)") from None
