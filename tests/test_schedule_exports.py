"""Scheduled exports: after `schedule run`, the schedule's mirror and export preset are
brought up to date from what the run stored (simulator, real SQLite, real files)."""

from __future__ import annotations

import csv
import os
import sqlite3
from contextlib import closing
from pathlib import Path

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.export.api import ExportOptions
from expirytrack_desktop.export.presets import Preset, presets_path, save_preset
from expirytrack_desktop.paths import AppPaths
from tests.collect_helpers import NIFTY
from tests.test_export_s3 import s3  # noqa: F401  (moto's S3 server on 127.0.0.1)
from tests.test_schedule_run import env  # noqa: F401  (the simulator + SMTP fixture)


def candles(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM candle WHERE interval = 1").fetchone()[0])


def test_run_updates_the_mirror_and_runs_the_preset(env, tmp_path, capsys):  # noqa: F811
    import duckdb

    exports = tmp_path / "exports"
    exports.mkdir()
    save_preset(
        presets_path(AppPaths.default().config_dir),
        Preset("nifty-csv", ExportOptions((NIFTY,), contract_types=("FUT",)), str(exports)),
    )
    mirror = tmp_path / "mirror"
    env.add("--export-mirror", str(mirror), "--export-preset", "nifty-csv")
    assert main(["schedule", "run", "nifty"]) == exitcodes.OK
    err = capsys.readouterr().err

    assert "nifty: mirror" in err and "1 partitions written" in err
    assert "nifty: export preset 'nifty-csv'" in err
    total = candles(env.db)
    assert total > 0
    with closing(duckdb.connect()) as con:
        (n,) = con.execute(
            "SELECT count(*) FROM read_parquet(?, hive_partitioning = true)",
            [str(mirror / "*" / "*" / "*.parquet")],
        ).fetchone()
    assert n == total
    (made,) = exports.iterdir()
    with made.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows and {r["openalgo_symbol"][-3:] for r in rows} == {"FUT"}
    # the next run stores nothing new: the mirror is left as it is, the preset writes anew
    assert main(["schedule", "run", "nifty"]) == exitcodes.OK
    err = capsys.readouterr().err
    assert "0 partitions written (0 rows), 1 unchanged" in err
    assert len(list(exports.iterdir())) == 2


def test_a_missing_preset_is_refused_when_adding(env, capsys):  # noqa: F811
    args = ["schedule", "add", "-i", "NIFTY", "-e", env.expiry, "--at", "16:30",
            "--name", "x", "--no-install", "--export-preset", "nope"]  # fmt: skip
    assert main(args) == exitcodes.BAD_INPUT
    assert "no export preset named 'nope'" in capsys.readouterr().err


def test_paths_stored_whole_a_mirror_file_refused(env, tmp_path, monkeypatch, capsys):  # noqa: F811
    """The OS scheduler starts a run in another folder (home; system32 on Windows): a
    relative --db or --export-mirror is kept as the full path it named when added."""
    from expirytrack_desktop.schedule import ScheduleStore

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("")
    base = ["schedule", "add", "-i", "NIFTY", "-e", env.expiry, "--at", "16:30",
            "--name", "x", "--no-install"]  # fmt: skip
    assert main([*base, "--export-mirror", "a-file"]) == exitcodes.BAD_INPUT
    assert f"the mirror folder {tmp_path / 'a-file'} exists and is not a folder" in (
        capsys.readouterr().err
    )
    assert main([*base, "--db", "mine.sqlite3", "--export-mirror", "~/m"]) == exitcodes.OK
    store = ScheduleStore(AppPaths.default().config_dir / "schedules.json")
    [s] = store.load()
    assert s.db == str(tmp_path / "mine.sqlite3")
    assert s.export_mirror == str(Path("~/m").expanduser())
    capsys.readouterr()
    assert main(["schedule", "list"]) == exitcodes.OK
    assert f"then mirror {Path('~/m').expanduser()}" in capsys.readouterr().out


def test_run_with_export_new_exports_once_then_nothing_new(env, tmp_path, capsys):  # noqa: F811
    exports = tmp_path / "exports"
    exports.mkdir()
    save_preset(
        presets_path(AppPaths.default().config_dir),
        Preset("nifty-csv", ExportOptions((NIFTY,), contract_types=("FUT",)), str(exports)),
    )
    env.add("--export-preset", "nifty-csv", "--export-new")
    assert main(["schedule", "run", "nifty"]) == exitcodes.OK
    assert "(new: expiries " in capsys.readouterr().err
    assert len(list(exports.iterdir())) == 1
    assert main(["schedule", "run", "nifty"]) == exitcodes.OK  # the market has nothing more
    assert "nothing new since its last export" in capsys.readouterr().err
    assert len(list(exports.iterdir())) == 1
    capsys.readouterr()
    assert main(["schedule", "list"]) == exitcodes.OK
    assert "then export preset 'nifty-csv' (only what is new)" in capsys.readouterr().out
    state = AppPaths.default().data_dir / "schedules" / "nifty.exported.json"
    assert state.is_file()
    assert main(["schedule", "remove", "nifty"]) == exitcodes.OK
    assert not state.exists()  # added again under this name, it starts afresh


def test_a_schedule_stored_with_a_relative_db_is_refused_at_its_run(capsys):
    """Stored before paths were made whole: running it would open (or create) a database in
    whatever folder the OS scheduler starts in; it says how to mend it instead."""
    from expirytrack_desktop.schedule import Schedule, ScheduleStore

    store = ScheduleStore(AppPaths.default().config_dir / "schedules.json")
    store.put(Schedule("old", ["NIFTY"], ["16:30"], db="d.sqlite3"))  # not validated: as stored
    assert main(["schedule", "run", "old"]) == exitcodes.BAD_INPUT
    err = capsys.readouterr().err
    assert "names its database by a relative path (d.sqlite3)" in err and "full --db" in err


def test_a_scheduled_s3_export_uses_the_stored_key_and_the_endpoint_setting(
    env,  # noqa: F811
    s3,  # noqa: F811
    tmp_path,
    monkeypatch,
    capsys,
):
    """`s3 configure` stores the key (secret store) and an S3-compatible endpoint (settings);
    a scheduled run's preset uploads with both, with no AWS variable and no endpoint variable
    set (the scheduled run read only the AWS chain before)."""
    import io

    from tests.test_export_s3 import KEY_ID, SECRET, keys

    endpoint = os.environ.pop("EXPIRYTRACK_S3_ENDPOINT")
    monkeypatch.delenv("EXPIRYTRACK_S3_ENDPOINT", raising=False)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(SECRET + "\n"))
    configure = ["s3", "configure", "--endpoint", endpoint, "--region", "us-east-1"]
    assert main([*configure, "--access-key-id", KEY_ID, "--secret-stdin"]) == exitcodes.OK
    out = capsys.readouterr().out
    assert f"S3 endpoint {endpoint}, region us-east-1: saved in " in out and SECRET not in out
    save_preset(
        presets_path(AppPaths.default().config_dir),
        Preset("up", ExportOptions((NIFTY,), contract_types=("FUT",)), "s3://quant/nightly/"),
    )
    env.add("--export-preset", "up")
    assert main(["schedule", "run", "nifty"]) == exitcodes.OK
    err = capsys.readouterr().err
    assert "nifty: export preset 'up':" in err and "rows to s3://quant/nightly/" in err
    (key,) = keys(s3)
    assert key.startswith("nightly/OpenAlgo_ExpiryTrack_") and key.endswith(".csv")
    body = s3.get_object(Bucket="quant", Key=key)["Body"].read().decode()
    local = tmp_path / "same.csv"  # the same preset exported here: the same bytes
    assert main(["export", "--db", str(env.db), "--preset", "up", "-o", str(local), "-q"]) == 0
    assert body == local.read_text(encoding="utf-8") and body.count("FUT,") > 1000
    assert SECRET not in err
