"""The window's small parts without a window: task manager, engine messages, wording."""

from __future__ import annotations

import asyncio
import dataclasses
import pickle
from datetime import date

import pytest

from expirytrack_desktop.collect import Estimate, JobState, Phase, Progress
from expirytrack_desktop.ui import engine_messages as m
from expirytrack_desktop.ui.estimate_text import describe_estimate
from expirytrack_desktop.ui.exports_page import describe_selection
from expirytrack_desktop.ui.models import describe_rate_limit, fmt_per
from expirytrack_desktop.ui.tasks import TaskManager


async def test_a_named_task_preempts_the_previous_one_of_that_name() -> None:
    tasks = TaskManager()
    first = tasks.schedule(asyncio.sleep(30), name="load")
    other = tasks.schedule(asyncio.sleep(30), name="other")
    second = tasks.schedule(asyncio.sleep(0, result="done"), name="load")
    assert await second == "done"
    await asyncio.sleep(0)
    assert first.cancelled()
    assert not other.done() and tasks.pending() == [other]
    await tasks.cancel_all()
    assert other.cancelled() and tasks.pending() == []
    tasks.shutdown()


async def test_a_failed_task_is_logged_with_its_message(caplog) -> None:
    tasks = TaskManager()

    async def fail() -> None:
        raise ValueError("the disk is full")

    task = tasks.schedule(fail())
    with pytest.raises(ValueError):
        await task
    await asyncio.sleep(0)
    assert "Background task failed: the disk is full" in caplog.text


async def test_blocking_work_runs_off_the_loop_thread() -> None:
    import threading

    tasks = TaskManager()
    name = await tasks.run_blocking(lambda: threading.current_thread().name)
    assert name.startswith("expirytrack-ui") and name != threading.current_thread().name
    tasks.shutdown()


def _progress() -> Progress:
    return Progress(
        job_id=7,
        state=JobState.RUNNING,
        phase=Phase.CANDLES,
        items_total=10,
        items_done=3,
        items_failed=0,
        requests=12,
        candles=3000,
        rate=4.5,
        eta_seconds=9.0,
        current="NIFTY 2025-04-24",
        errors=0,
        last_error=None,
    )


MESSAGES = [
    m.ListExpiries(1, "NSE_INDEX|Nifty 50"),
    m.EstimateSelection(2, [{"underlyings": ["NSE_INDEX|Nifty 50"]}], 4),
    m.StartJob(3, {"underlyings": ["NSE_INDEX|Nifty 50"]}, 8),
    m.ResumeJob(4, 7),
    m.RetryJob(5, 7),
    m.CloseEngine(6),
    m.PauseJob(7),
    m.UnpauseJob(7),
    m.CancelJob(7),
    m.SetToken(None),
    m.SetRateLimit("50/1", "/tmp/ledger.sqlite"),
    m.Reply(1, [date(2025, 4, 24)]),
    m.Failure(2, "ApiError", "expiry not offered", "UDAPI1"),
    m.ProgressEvent(_progress()),
    m.EngineStatus(1_765_000_000.5, 812, 3),
    m.EngineClosed(),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda msg: type(msg).__name__)
def test_every_message_crosses_the_pipe_unchanged_and_is_frozen(msg: object) -> None:
    assert pickle.loads(pickle.dumps(msg)) == msg
    field = dataclasses.fields(msg)[0].name if dataclasses.fields(msg) else None  # type: ignore[arg-type]
    if field is not None:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(msg, field, None)


def test_rate_limits_are_said_in_words() -> None:
    assert (
        describe_rate_limit("50/1,500/60,2000/1800")
        == "50 per second · 500 per minute · 2,000 per 30 minutes"
    )
    assert describe_rate_limit("10/3600") == "10 per hour"
    assert fmt_per(90) == "90 seconds"
    assert describe_rate_limit("not a spec") == "not a spec"


def test_estimate_notes_are_escaped_in_the_review_page() -> None:
    est = Estimate(1, 2, 40, 80, 125, 3.0, True, ("contracts <unknown> & guessed",))
    est = Estimate(1, 2, 40, 80, 125, 3.0, True, ("contracts <unknown> & guessed",) * 2)
    html = describe_estimate(est)
    assert "About <b>125</b> API requests" in html
    assert "<li>contracts &lt;unknown&gt; &amp; guessed</li>" in html  # one note, escaped
    assert html.count("<li>") == 1
    assert describe_estimate(None) == "<p>Nothing to do.</p>"


def test_export_history_says_what_was_exported() -> None:
    sel = {"underlyings": ["NSE_INDEX|Nifty 50"], "expiries": ["2025-04-24", "2025-05-29"]}
    assert describe_selection(sel) == "NIFTY · 2 expiries"
    sel = {"underlyings": ["NSE_INDEX|Nifty Bank"], "contract_types": ["CE", "PE"]}
    assert describe_selection(sel) == "BANKNIFTY · all expiries · CE/PE"
    sel = {"underlyings": ["NSE_EQ|INE002A01018", "NSE_INDEX|Nifty 50"]}
    names = {"NSE_EQ|INE002A01018": "RELIANCE"}  # a stock by its symbol, not its key
    assert describe_selection(sel, names) == "RELIANCE, NIFTY · all expiries"
