"""Exceptions for bad input: they name the file and the problem."""

from __future__ import annotations


class GMEInputError(ValueError):
    """Base class of the errors that the command line reports without a traceback."""


class InputFileError(GMEInputError):
    """A file is missing, truncated or inconsistent."""

    def __init__(self, path: str, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
