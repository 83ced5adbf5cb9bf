"""Bounds of --months and of rate-limit specs: one parser for the flag, the
environment and settings.json; a value out of bounds is one line and exit code 2, before any
job, request or ledger exists."""

from __future__ import annotations

import json

import pytest

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.runtime import Runtime

EXTREMES = [
    ("1/86400000000", "a window must last from 0.1 to 86400 seconds"),  # waited for ever
    ("50/1e-9", "a window must last from 0.1 to 86400 seconds"),  # throttling off
    ("999999999999/1", "requests per window must be between 1 and 100,000"),  # no limit
    ("0/1", "requests per window must be between 1 and 100,000"),
]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def nothing_created() -> None:
    data = AppPaths.default().data_dir
    assert not data.exists() or not any(data.iterdir()), list(data.iterdir())


@pytest.mark.parametrize("months", ["0", "-3", "13", "99999"])
def test_months_out_of_range_is_refused(capsys, months):
    code = main(["collect", "--demo", "-i", "NIFTY", "--all-expiries", "--months", months])
    assert code == exitcodes.BAD_INPUT
    assert one_error_line(capsys) == f"error: months must be between 1 and 12, not {months}"
    nothing_created()


@pytest.mark.parametrize(("spec", "why"), EXTREMES)
@pytest.mark.parametrize(
    "command",
    [
        ["collect", "--demo", "-i", "NIFTY", "--all-expiries", "--estimate-only"],
        ["logout"],  # any command that talks to the API
    ],
    ids=["collect", "logout"],
)
def test_extreme_rate_limit_flag_is_refused(capsys, spec, why, command):
    assert main([*command, "--rate-limit", spec]) == exitcodes.BAD_INPUT
    line = one_error_line(capsys)
    assert line.startswith(f"error: invalid rate limit: rate limit part '{spec}': {why}")
    assert line.endswith("(from --rate-limit)")
    nothing_created()


def test_the_environment_and_settings_file_go_through_the_same_parser(capsys, monkeypatch):
    paths = AppPaths.default()
    paths.config_dir.mkdir(parents=True)
    paths.settings_path.write_text(json.dumps({"rate_limit": "50/1e-9"}), encoding="utf-8")
    args = ["collect", "--demo", "-i", "NIFTY", "--all-expiries", "--estimate-only"]
    assert main(args) == exitcodes.BAD_INPUT
    assert one_error_line(capsys).endswith(f"(from rate_limit in {paths.settings_path})")

    monkeypatch.setenv("EXPIRYTRACK_RATE_LIMIT", "999999999999/1")
    assert main(args) == exitcodes.BAD_INPUT
    assert one_error_line(capsys).endswith("(from EXPIRYTRACK_RATE_LIMIT)")


def test_a_scheduled_collection_refuses_months_zero(capsys):
    add = ["schedule", "add", "-i", "NIFTY", "--all-expiries", "--at", "16:30", "--no-install"]
    code = main([*add, "--months", "0"])
    assert code == exitcodes.BAD_INPUT
    assert "months must be between 1 and 12, not 0" in one_error_line(capsys)


def test_settings_default_months_still_applies_when_no_flag_is_given(monkeypatch):
    """Not giving --months uses settings.json's history_months; 0 from there is refused too."""
    paths = AppPaths.default()
    paths.config_dir.mkdir(parents=True)
    paths.settings_path.write_text(json.dumps({"history_months": 0}), encoding="utf-8")
    assert Runtime.create().settings.history_months == 0
    assert main(["collect", "--demo", "-i", "NIFTY", "--all-expiries", "--estimate-only"]) == 2
