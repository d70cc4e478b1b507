"""User-facing errors: one line that names the file, the field and the problem.

The CLI prints ``str(err)`` and exits with status 2 (no traceback unless ``--debug``). Code raises these
for user mistakes (bad files, bad arguments); bugs stay ordinary exceptions.
"""

from __future__ import annotations


class AstroReasonError(Exception):
    """A user mistake the CLI reports in one line, exit status 2."""


class DataError(AstroReasonError):
    """A data file is missing, unreadable or malformed.

    Args:
        path: The file or folder at fault.
        problem: What is wrong, in plain words (shown after the path and field).
        field: The key, column or HDU at fault, if any.
    """

    def __init__(self, path: object, problem: str, field: str | None = None):
        self.path = str(path)
        self.field = field
        self.problem = problem
        where = f"{self.path}: {field}" if field else self.path
        super().__init__(f"{where}: {problem}")


class ConfigError(AstroReasonError):
    """A configuration value or command-line option is invalid."""


class AstroReasonWarning(UserWarning):
    """Something the user should know that does not stop the work (a skipped file, an ignored column).

    The CLI prints it as one ``warning: ...`` line, without the source file and line.
    """


MAX_CONCURRENCY = 1024
"""Most episodes in flight at once: each holds an environment, and a vLLM server batches far fewer."""


def check_concurrency(concurrency: int) -> None:
    """A count of at least 1 and at most :data:`MAX_CONCURRENCY`; else one ConfigError line."""
    check_counts(concurrency=concurrency)
    if concurrency > MAX_CONCURRENCY:
        raise ConfigError(f"concurrency: must be at most {MAX_CONCURRENCY}, got {concurrency}")


def check_counts(**counts: int | None) -> None:
    """Each count (None: unset) must be a whole number of at least 1; else one ConfigError line."""
    for name, n in counts.items():
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ConfigError(f"{name}: must be at least 1, got {n}")
