"""`expirytrack <command>` imports only the module of its command: the table in cli/main.py
must say which module registers which command, and `status` must not pull in the HTTP client,
the collector or the export libraries (bench/bench_status.py has the timings)."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

from expirytrack_desktop.cli.main import COMMAND_NAMES, COMMANDS, build_parser, common_options
from expirytrack_desktop.store import open_database

ROOT = Path(__file__).resolve().parents[1]


def test_the_command_table_matches_what_the_modules_register():
    for module, names in COMMANDS.items():
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        importlib.import_module(module).register(sub, common_options())
        assert tuple(sub.choices) == names, module
    everything = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(everything) == COMMAND_NAMES
    only = build_parser("status")._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(only) == {"collect", "status", "jobs", "retry"}


def test_status_imports_neither_the_http_client_nor_the_collector(tmp_path):
    db = tmp_path / "s.sqlite3"
    open_database(db).close()
    probe = (
        "import json, sys\n"
        "from expirytrack_desktop.cli.main import main\n"
        f"code = main(['status', '--db', {str(db)!r}])\n"
        "heavy = ['httpx', 'pyarrow', 'numpy', 'msgspec', 'expirytrack_desktop.collect.collector',"
        " 'expirytrack_desktop.export', 'expirytrack_desktop.auth.oauth']\n"
        "print(json.dumps([code, [m for m in heavy if m in sys.modules]]))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    code, loaded = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and loaded == []


def test_the_collect_package_still_offers_its_names():
    import expirytrack_desktop.collect as collect

    for name in collect.__all__:
        assert getattr(collect, name) is not None
    from expirytrack_desktop.collect import Collector, Selection

    assert Collector.__module__.endswith("collector") and Selection.__name__ == "Selection"
