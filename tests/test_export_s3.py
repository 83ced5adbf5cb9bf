"""Direct export to S3-compatible storage, against moto's S3 server on 127.0.0.1 (started
here): every format arrives whole, credentials come from the AWS environment or the secret
store, existing keys are not replaced without --overwrite, and no secret is printed."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.export.api import list_export_history
from expirytrack_desktop.export.s3 import parse_s3_url
from tests._export_db import build_db, expected_rows

moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

KEY_ID, SECRET = "AKIDEXAMPLE0001", "s3-secret-Zz-9876"


@pytest.fixture
def s3(monkeypatch):
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        import urllib.request

        reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(reset, timeout=10):  # a clean server for each test
            pass
        for k in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(k, raising=False)
        monkeypatch.setenv("EXPIRYTRACK_S3_ENDPOINT", endpoint)
        monkeypatch.setenv("AWS_REGION", "us-east-1")
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)  # fmt: skip
        client.create_bucket(Bucket="quant")
        yield client
    finally:
        server.stop()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_db(tmp_path / "store.sqlite3")


def keys(client) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket="quant").get("Contents", []))


def test_csv_to_a_prefix_with_env_credentials(s3, db, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    code = main(["export", "--db", str(db), "-i", "NIFTY", "-o", "s3://quant/daily/", "-q"])
    assert code == exitcodes.OK
    (key,) = keys(s3)
    assert key.startswith("daily/OpenAlgo_ExpiryTrack_Nifty_50_") and key.endswith(".csv")
    body = s3.get_object(Bucket="quant", Key=key)["Body"].read().decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    want = expected_rows([100, 101, 102, 103, 104])
    assert [(r["openalgo_symbol"], r["open"]) for r in rows] == [(w[0], repr(w[2])) for w in want]
    out = capsys.readouterr()
    assert f"to s3://quant/{key}" in out.out
    assert SECRET not in out.out + out.err
    assert list_export_history(db)[0].path == f"s3://quant/{key}"


def test_exact_key_no_overwrite_then_overwrite(s3, db, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    url = "s3://quant/x/nifty.parquet"
    argv = ["export", "--db", str(db), "-i", "NIFTY", "-f", "parquet", "-o", url, "-q"]
    assert main(argv) == exitcodes.OK
    first = s3.get_object(Bucket="quant", Key="x/nifty.parquet")["Body"].read()
    assert main(argv) == exitcodes.BAD_INPUT
    assert "s3://quant/x/nifty.parquet exists" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == exitcodes.OK
    import pyarrow.parquet as pq

    assert pq.read_table(io.BytesIO(first)).num_rows == 24
    assert keys(s3) == ["x/nifty.parquet"]


def test_partitioned_dataset_with_secret_store_credentials(s3, db, monkeypatch, memory_keyring):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    memory_keyring.set_password("ExpiryTrack", "s3_access_key_id", KEY_ID)
    memory_keyring.set_password("ExpiryTrack", "s3_secret_access_key", SECRET)
    code = main(["export", "--db", str(db), "-i", "NIFTY", "-i", "SENSEX50", "-f", "parquet",
                 "--partitioned", "-o", "s3://quant/ds/", "-q"])  # fmt: skip
    assert code == exitcodes.OK
    got = keys(s3)
    assert len(got) == 3 and all("/underlying=" in k and k.endswith("part-0.parquet") for k in got)


def test_unreachable_or_missing_bucket_is_one_line_exit_5(s3, db, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    code = main(["export", "--db", str(db), "-i", "NIFTY", "-o", "s3://no-such-bucket/a/", "-q"])
    assert code == exitcodes.STORAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot upload to s3://no-such-bucket/")
    assert err[0].endswith(": The specified bucket does not exist (NO_SUCH_BUCKET)")
    assert SECRET not in err[0] and "Request ID" not in err[0] and err[0].count("no-such") == 1


def test_aws_errors_are_said_in_the_words_a_person_acts_on():
    from expirytrack_desktop.export.s3 import aws_reason

    curl = (
        "When getting information for key 'x/a.csv' in bucket 'b': AWS Error NETWORK_CONNECTION"
        " during HeadObject operation: curlCode: 7, Could not connect to server; Details:"
        " Failed to connect to 127.0.0.1:9 after 0 ms: Could not connect to server"
    )
    assert aws_reason(OSError(curl)) == (
        "Failed to connect to 127.0.0.1:9 after 0 ms: Could not connect to server"
        " (NETWORK_CONNECTION)"
    )
    denied = "When writing: AWS Error ACCESS_DENIED during PutObject operation: Access Denied"
    assert aws_reason(OSError(denied)) == "Access Denied (ACCESS_DENIED)"
    assert aws_reason(OSError("No space left on device")) == "No space left on device"


def test_parse():
    assert parse_s3_url("s3://b/p/").is_prefix and parse_s3_url("s3://b").is_prefix
    assert parse_s3_url("s3://b/p/x.csv").key == "p/x.csv"


def test_a_scheduled_preset_uploads_to_its_s3_prefix(s3, db, tmp_path, monkeypatch):
    """A preset whose output is s3://… (saved from the wizard or --save-preset) run by a
    schedule after its collection: a new object under the prefix, not a local "s3:" folder."""
    from datetime import datetime

    from expirytrack_desktop.export.api import ExportOptions
    from expirytrack_desktop.export.presets import Preset, save_preset
    from expirytrack_desktop.schedule.exports import _preset_export

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "config"
    opts = ExportOptions(("NSE_INDEX|Nifty 50",), csv_columns=("openalgo_symbol", "close"))
    save_preset(config / "export_presets.json", Preset("up", opts, "s3://quant/sched/"))
    said: list[str] = []
    # uploaded: nothing written here (None), the upload said
    assert _preset_export("up", db, config, tmp_path / "exports", said.append, datetime.now) is None
    assert said[-1].startswith("export preset 'up': 24 rows to s3://quant/sched/")
    (key,) = keys(s3)
    assert key.startswith("sched/OpenAlgo_ExpiryTrack_Nifty_50_") and key.endswith(".csv")
    body = s3.get_object(Bucket="quant", Key=key)["Body"].read().decode()
    assert body.splitlines()[0] == "openalgo_symbol,close" and len(body.splitlines()) == 25
    assert said == [f"export preset 'up': 24 rows to s3://quant/{key}"]
    assert (
        not (tmp_path / "s3:").exists() and list_export_history(db)[0].path == f"s3://quant/{key}"
    )


def test_s3_command_stores_the_credentials_exports_use(s3, db, monkeypatch, capsys):
    """`expirytrack s3 configure` puts the access key in the secret store (the test's
    in-memory keyring), `show` names it masked, an export to s3:// uses it with no AWS
    variables set, and `forget` deletes it."""
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(SECRET + "\n"))
    assert main(["s3", "configure", "--access-key-id", KEY_ID, "--secret-stdin"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Saved S3 access key AKID…0001, its secret in ") and SECRET not in out
    assert main(["s3", "show"]) == 0
    assert capsys.readouterr().out.startswith("S3 access key AKID…0001, in ")
    assert main(["export", "--db", str(db), "-i", "NIFTY", "-o", "s3://quant/k/", "-q"]) == 0
    assert [k.split("/")[0] for k in keys(s3)] == ["k"]
    assert main(["s3", "forget"]) == 0
    capsys.readouterr()
    assert main(["s3", "show"]) == 0
    assert capsys.readouterr().out.startswith("No S3 credentials stored")


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["--access-key-id", "AK ID", "--secret-stdin"], "x\n", "is one word"),
        (["--access-key-id", KEY_ID, "--secret-stdin"], "\n", "secret access key is empty"),
        (["--access-key-id", KEY_ID], "", "secret access key missing and no terminal to ask"),
        (["--access-key-id", KEY_ID, "--secret-stdin", "--session-token-stdin"], "s\n\n",
         "session token is empty"),
        (["--endpoint", "ftp://minio:9000"], "", "not an S3 endpoint: 'ftp://minio:9000'"),
        (["--endpoint", "http://minio:90a0"], "", "not an S3 endpoint"),
        (["--region", "EU West"], "", "not an S3 region: 'EU West' (such as eu-central-1)"),
    ],
)  # fmt: skip
def test_s3_configure_bad_input(monkeypatch, capsys, argv, stdin, message):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(["s3", "configure", *argv]) == exitcodes.BAD_INPUT
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_s3_configure_endpoint_alone_keeps_the_key(memory_keyring, monkeypatch, capsys):
    """`--endpoint` / `--region` alone change the settings only; `show` names them."""
    from expirytrack_desktop.paths import AppPaths
    from expirytrack_desktop.settings import Settings

    monkeypatch.setattr("sys.stdin", io.StringIO(SECRET + "\n"))
    assert main(["s3", "configure", "--access-key-id", KEY_ID, "--secret-stdin"]) == 0
    assert main(["s3", "configure", "--endpoint", "minio.lan:9000/"]) == 0
    assert main(["s3", "configure", "--region", "ap-south-1"]) == 0
    capsys.readouterr()
    saved = Settings.load(AppPaths.default().settings_path)
    assert (saved.s3_endpoint, saved.s3_region) == ("https://minio.lan:9000", "ap-south-1")
    assert memory_keyring.get_password("ExpiryTrack", "s3_secret_access_key") == SECRET
    assert main(["s3", "show"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("S3 access key AKID…0001, in ")
    assert "Endpoint: https://minio.lan:9000; region: ap-south-1." in out
    assert main(["s3", "configure", "--endpoint", ""]) == 0  # back to AWS
    assert Settings.load(AppPaths.default().settings_path).s3_endpoint == ""


def test_a_key_in_the_encrypted_fallback_is_used_with_its_passphrase(s3, db, monkeypatch, capsys):
    """No OS keyring: the key lives in the encrypted file. With EXPIRYTRACK_PASSPHRASE an
    export uses it (it was skipped as "locked" before); without one, and no terminal to
    ask, the export says why the key was not read and goes on with the AWS chain."""
    import keyring
    import keyring.backends.fail

    from expirytrack_desktop.export import s3 as s3_module

    keyring.set_keyring(keyring.backends.fail.Keyring())
    real, used = s3_module.s3_filesystem, []

    def recording(secrets=None, env=None, **kw):  # type: ignore[no-untyped-def]
        used.append((secrets or {}).get("s3_access_key_id"))  # moto checks no signature
        return real(secrets, env, **kw)

    monkeypatch.setattr(s3_module, "s3_filesystem", recording)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("EXPIRYTRACK_PASSPHRASE", "correct horse battery")
    monkeypatch.setattr("sys.stdin", io.StringIO(SECRET + "\n"))
    assert main(["s3", "configure", "--access-key-id", KEY_ID, "--secret-stdin"]) == 0
    assert "encrypted" in capsys.readouterr().out.lower()
    assert main(["export", "--db", str(db), "-i", "NIFTY", "-o", "s3://quant/fb/", "-q"]) == 0
    assert [k.split("/")[0] for k in keys(s3)] == ["fb"] and used == [KEY_ID]
    capsys.readouterr()
    monkeypatch.delenv("EXPIRYTRACK_PASSPHRASE")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code = main(["export", "--db", str(db), "-i", "NIFTY", "-o", "s3://quant/fb2/", "-q"])
    err = capsys.readouterr().err
    assert code == 0 and used[-1] is None  # moto takes unsigned requests; AWS would not
    assert "warning: S3 key not read from the secret store (" in err
    assert "the AWS environment applies" in err and SECRET not in err
