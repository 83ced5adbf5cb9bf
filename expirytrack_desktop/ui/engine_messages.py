"""The messages between the window and its engine process: one frozen dataclass per kind.

They are pickled across the pipe, so they hold plain data and engine value objects
(:class:`~expirytrack_desktop.collect.Progress`, ``JobResult``, ``Estimate``) only.
Requests carry a ``req`` number that their :class:`Reply` or :class:`Failure` repeats;
commands expect no answer. This module imports no Qt (the child process imports it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from expirytrack_desktop.collect import JobResult, Progress

# ------------------------------------------------------------------ window -> engine: requests


@dataclass(frozen=True, slots=True)
class Request:
    req: int


@dataclass(frozen=True, slots=True)
class ListExpiries(Request):
    key: str


@dataclass(frozen=True, slots=True)
class EstimateSelection(Request):
    params: list[dict[str, Any]]  # Selection.to_params() of each job about to start
    concurrency: int


@dataclass(frozen=True, slots=True)
class StartJob(Request):
    params: dict[str, Any]
    concurrency: int


@dataclass(frozen=True, slots=True)
class ResumeJob(Request):
    job_id: int


@dataclass(frozen=True, slots=True)
class RetryJob(Request):
    job_id: int


@dataclass(frozen=True, slots=True)
class CloseEngine(Request):
    """Stop every job (they stay resumable), close the client and database, then exit."""


# ------------------------------------------------------------- window -> engine: commands


@dataclass(frozen=True, slots=True)
class PauseJob:
    job_id: int


@dataclass(frozen=True, slots=True)
class UnpauseJob:
    job_id: int


@dataclass(frozen=True, slots=True)
class CancelJob:
    job_id: int


@dataclass(frozen=True, slots=True)
class SetToken:
    token: str | None


@dataclass(frozen=True, slots=True)
class SetRateLimit:
    spec: str
    ledger: str | None


Command = PauseJob | UnpauseJob | CancelJob | SetToken | SetRateLimit
ToEngine = Request | Command

# --------------------------------------------------------------------- engine -> window


@dataclass(frozen=True, slots=True)
class Reply:
    req: int
    value: Any  # int (a job id), list[date], Estimate or None


@dataclass(frozen=True, slots=True)
class Failure:
    """A request failed in the child; ``kind`` is the exception's class name."""

    req: int
    kind: str
    message: str
    code: str | None = None


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    progress: Progress


@dataclass(frozen=True, slots=True)
class JobFinished:
    job_id: int
    result: JobResult


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """Sent when it changes: until when the rate limiter holds requests back (epoch seconds;
    None: it does not), and the requests and retries the engine's client has sent."""

    budget_until: float | None
    requests: int
    retries: int


@dataclass(frozen=True, slots=True)
class EngineClosed:
    """The child answered :class:`CloseEngine` and is about to exit."""


@dataclass(frozen=True, slots=True)
class EngineGone:
    """The pipe ended without a goodbye (the child crashed or was killed); never sent."""


FromEngine = (
    Reply | Failure | ProgressEvent | JobFinished | EngineStatus | EngineClosed | EngineGone
)
