"""Export presets: saved from the CLI, reused with --preset (flags override), listed, deleted."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.export.api import EmptySelectionError, ExportOptions, InvalidOptionsError
from expirytrack_desktop.export.options import options_from_json
from expirytrack_desktop.export.presets import (
    Preset,
    delete_preset,
    get_preset,
    load_presets,
    save_preset,
)
from expirytrack_desktop.paths import AppPaths
from tests._export_db import build_db


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_db(tmp_path / "store.sqlite3")


def store() -> Path:
    return AppPaths.default().config_dir / "export_presets.json"


def test_options_round_trip_through_json():
    opts = ExportOptions(("NSE_INDEX|Nifty 50",), expiries=(date(2025, 4, 24),),
                         contract_types=("CE",), strike_min=20000.0, date_from=date(2025, 4, 1),
                         format="parquet", compression="gzip", compression_level=5,
                         include_metadata=True)  # fmt: skip
    assert options_from_json(json.loads(json.dumps(opts.to_json_dict()))) == opts


def test_save_load_delete(tmp_path):
    path = tmp_path / "cfg" / "export_presets.json"
    assert load_presets(path) == {}
    p = Preset("nifty weekly", ExportOptions(("NSE_INDEX|Nifty 50",), format="zip"), "~/x/")
    save_preset(path, p)
    assert get_preset(path, "nifty weekly") == p
    with pytest.raises(InvalidOptionsError, match="no export preset named 'other'"):
        get_preset(path, "other")
    with pytest.raises(InvalidOptionsError, match="preset names"):
        save_preset(path, Preset("../evil", p.options))
    with pytest.raises(EmptySelectionError):
        save_preset(path, Preset("bad", ExportOptions(())))  # nothing selected
    assert delete_preset(path, "nifty weekly") and not delete_preset(path, "nifty weekly")
    assert load_presets(path) == {}
    path.write_text("{not json")
    with pytest.raises(InvalidOptionsError, match="cannot read export presets"):
        load_presets(path)


def test_cli_save_then_reuse_with_overrides(db, tmp_path, capsys):
    out = tmp_path / "a.csv"
    code = main(["export", "--db", str(db), "-i", "NIFTY", "--type", "FUT", "--metadata",
                 "-o", str(out), "--save-preset", "nifty-fut", "-q"])  # fmt: skip
    assert code == exitcodes.OK
    assert "saved export preset 'nifty-fut'" in capsys.readouterr().err
    saved = get_preset(store(), "nifty-fut")
    assert saved.options.contract_types == ("FUT",) and saved.out == str(out)
    first = out.read_text()
    rows = list(csv.DictReader(io.StringIO(first)))
    assert {r["option_type"] for r in rows} == {"FUT"}
    # the preset alone: same selection, same --out (taken: a second run needs --overwrite)
    assert main(["export", "--db", str(db), "--preset", "nifty-fut", "-q"]) == 2
    assert main(["export", "--db", str(db), "--preset", "nifty-fut", "--overwrite", "-q"]) == 0
    assert out.read_text() == first
    # flags override the preset: another format and place, the selection kept
    other = tmp_path / "b.json"
    code = main(["export", "--db", str(db), "--preset", "nifty-fut", "-f", "json",
                 "-o", str(other), "-q"])  # fmt: skip
    assert code == 0
    doc = json.loads(other.read_text())
    kinds = {c["option_type"] for e in doc["data"]["Nifty_50"].values() for c in e}
    assert kinds == {"FUT"}
    capsys.readouterr()
    assert main(["export", "--list-presets"]) == 0
    assert "nifty-fut: csv of NSE_INDEX|Nifty 50" in capsys.readouterr().out
    assert main(["export", "--delete-preset", "nifty-fut"]) == 0
    assert main(["export", "--db", str(db), "--preset", "nifty-fut"]) == exitcodes.BAD_INPUT
    assert "no export preset named 'nifty-fut'" in capsys.readouterr().err


def test_cli_needs_an_instrument_or_a_preset(db, capsys):
    assert main(["export", "--db", str(db)]) == exitcodes.BAD_INPUT
    assert "--instrument" in capsys.readouterr().err


def test_cli_an_empty_preset_name_is_refused_not_skipped(db, tmp_path, capsys):
    out = tmp_path / "a.csv"
    code = main(["export", "--db", str(db), "-i", "NIFTY", "-o", str(out), "--save-preset", ""])
    assert code == exitcodes.BAD_INPUT
    assert "preset names are 1-64 letters" in capsys.readouterr().err
    assert not out.exists()  # nothing exported under a preset that was not saved
