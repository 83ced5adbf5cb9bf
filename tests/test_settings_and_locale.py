"""settings.json that is not settings, and a non-ASCII instrument or path in the C locale:
every command keeps working with one warning line naming the file; in
``LC_ALL=C PYTHONUTF8=0`` the real command reads UTF-8 arguments (it restarts itself in
UTF-8 mode), prints what its stdout cannot show escaped, and refuses bytes that are no text
with one line before doing anything."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from expirytrack_desktop.cli.main import main
from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.settings import Settings


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[1, 2]", "is not a JSON object (it holds a list)"),
        ('"x"', "is not a JSON object (it holds text)"),
        ("null", "is not a JSON object (it holds null)"),
        ("42", "is not a JSON object (it holds a whole number)"),
        ("{bad", "cannot be read as JSON"),
    ],
)
def test_not_settings_gives_defaults_and_one_warning(tmp_path, caplog, text, says):
    path = tmp_path / "settings.json"
    path.write_text(text, encoding="utf-8")
    with caplog.at_level(logging.WARNING, "expirytrack_desktop.settings"):
        assert Settings.load(path) == Settings()
    (record,) = caplog.records
    message = record.getMessage()
    assert message.startswith(f"settings file {path} {says}")
    assert message.endswith(": using the default settings; fix or delete the file")
    assert path.read_text(encoding="utf-8") == text  # left as it was


def test_a_value_of_the_wrong_type_falls_back_alone(tmp_path, caplog):
    path = tmp_path / "settings.json"
    data = {"concurrency": "eight", "history_months": 2, "request_deadline_s": 30, "x": 1}
    path.write_text(json.dumps(data), encoding="utf-8")
    with caplog.at_level(logging.WARNING, "expirytrack_desktop.settings"):
        s = Settings.load(path)
    assert (s.concurrency, s.history_months, s.request_deadline_s) == (8, 2, 30.0)
    (record,) = caplog.records
    assert "concurrency should be a whole number, not text; using the default 8" in (
        record.getMessage()
    )


def test_request_limits_out_of_bounds_fall_back(tmp_path, caplog):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"request_deadline_s": 0, "max_response_mb": 8}), encoding="utf-8")
    with caplog.at_level(logging.WARNING, "expirytrack_desktop.settings"):
        s = Settings.load(path)
    assert (s.request_deadline_s, s.max_response_mb) == (120.0, 8)
    assert "request_deadline_s must be from 1 to 3600, not 0.0; using the default 120.0" in (
        caplog.text
    )


def test_saving_over_a_damaged_file_keeps_it_beside(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("[1, 2]", encoding="utf-8")
    Settings(concurrency=3).save(path)
    assert (tmp_path / "settings.json.damaged").read_text(encoding="utf-8") == "[1, 2]"
    assert Settings.load(path).concurrency == 3


def test_every_command_runs_with_a_list_as_settings(capsys):
    paths = AppPaths.default()
    paths.config_dir.mkdir(parents=True)
    paths.settings_path.write_text("[]", encoding="utf-8")
    assert main(["status"]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert main(["collect", "--demo", "-i", "NIFTY", "--all-expiries", "--estimate-only"]) == 0


# ---- the C locale ----------------------------------------------------------------------------


def run_c_locale(home: Path, *args: str | bytes) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG"))}
    env.update(
        LC_ALL="C",
        PYTHONUTF8="0",
        PYTHONCOERCECLOCALE="0",
        EXPIRYTRACK_HOME=str(home),
        PYTHONPATH=os.getcwd(),
    )
    env.pop("PYTHONIOENCODING", None)
    return subprocess.run(
        [sys.executable, "-m", "expirytrack_desktop.cli.main", *args],
        env=env,
        capture_output=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> Path:
    """A demo database with one contract's candles (futures of one expiry, one month)."""
    home = tmp_path_factory.mktemp("c-locale")
    from expirytrack_desktop.runtime import demo_app

    market = demo_app().market
    nifty = "NSE_INDEX|Nifty 50"
    expiry = [d for d in market.expiries(nifty) if market.future_contracts(nifty, d)][-1]
    done = run_c_locale(
        home,
        "collect",
        "--demo",
        "-i",
        "NIFTY",
        "-e",
        expiry.isoformat(),
        "--months",
        "1",
        "--types",
        "FUT",
    )
    assert done.returncode == 0, done.stderr.decode()
    return home


def test_export_to_a_non_ascii_path(collected):
    out = collected / "exports-ü" / "nifty-ä.csv"
    out.parent.mkdir()
    done = run_c_locale(
        collected,
        "export",
        "--demo",
        "--format",
        "csv",
        "-i",
        "NIFTY",
        "--type",
        "FUT",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr.decode()
    assert b"Traceback" not in done.stderr
    assert out.exists() and out.read_text(encoding="utf-8").startswith("openalgo_symbol,")
    assert f"to {out}".encode() in done.stdout  # the name as the user typed it
    with closing(sqlite3.connect(collected / "data" / "demo.sqlite3")) as conn:
        paths = [r[0] for r in conn.execute("SELECT path FROM export_history")]
    assert str(out) in paths  # recorded as text, not as escaped bytes


def test_a_non_ascii_instrument_is_one_clear_line(collected):
    done = run_c_locale(collected, "collect", "--demo", "-i", "NSE_INDEX|Nifty Ü", "--all-expiries")
    assert done.returncode == 2, done.stderr.decode()
    (line,) = done.stderr.decode("utf-8").splitlines()
    assert line.startswith("error: NSE_INDEX|Nifty Ü")


def test_bytes_that_are_no_text_are_refused_before_anything(collected):
    before = sorted(p.name for p in (collected / "data").iterdir())
    done = run_c_locale(collected, "export", "--demo", "--format", "csv", "-i", b"NIFTY\xff")
    assert done.returncode == 2
    (line,) = done.stderr.decode("ascii").splitlines()
    assert line.startswith("error: 'NIFTY\\xff' is not readable text here")
    assert sorted(p.name for p in (collected / "data").iterdir()) == before
