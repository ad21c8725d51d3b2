"""The one error tree of digest.

    DigestError                 anything digest reports to a user as one clear line
     +-- ConfigError            the config or a subscriber file is wrong (exit 2); holds every Problem
     +-- UsageError             a command-line value is wrong (exit 2)
     +-- FetchError             one source could not be fetched or parsed (that source fails, the run goes on)
     |    +-- HTTPStatusError   the server answered with an error status
     |    +-- ParseError        the body was not what the source type expects
     +-- StoreError             the SQLite database could not be opened or written
     +-- RunError               the job as a whole failed at run time (exit 1)

Third-party exceptions are wrapped at the boundary (`raise FetchError(...) from e`) so that
the CLI prints one line and maps the class to an exit code.
"""

from __future__ import annotations

from dataclasses import dataclass


class DigestError(Exception):
    """Base class: the message is one line a user can act on."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a config file: where (file, key) and what."""

    file: str
    key: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.key}: {self.message}"
            if self.key
            else f"{self.file}: {self.message}"
        )


class ConfigError(DigestError):
    """The configuration is invalid; `problems` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class UsageError(DigestError):
    """A command-line argument is invalid."""


class FetchError(DigestError):
    """A source could not be fetched or understood."""


class HTTPStatusError(FetchError):
    """The server answered with an error status."""


class ParseError(FetchError):
    """The response body is not what this source type expects."""


class StoreError(DigestError):
    """The database could not be opened, migrated or written."""


class RunError(DigestError):
    """The job failed as a whole (every source failed, ...)."""
