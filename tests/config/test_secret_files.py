"""Secrets from files (no servers): every secret key has a ``*_file`` twin, read once at
load with its trailing newline dropped, handed to the client that uses it, masked by
``config show`` and registered for scrubbing; a file that cannot be used exits 2 naming
the key and the path and nothing of the content; a secret given twice is refused."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sink import logs
from sink.cli import main
from sink.config import load_settings, postgres_connect_args, secret_values
from sink.decode import SchemaRegistry
from sink.service import kafka
from tests import paths

BASE = """\
source:
  topics: ["mongo.shop.users"]
destination:
  connection_string: "postgresql://warp@db.example:5432/warehouse"
"""
# Every character that breaks a URL, and a space: no encoding is needed in a file.
VALUE = "Pw @:/?#%&= x"

# key -> the other settings it needs to be used
KEYS: dict[str, dict[str, str]] = {
    "destination.password": {},
    "source.sasl_password": {"source.security_protocol": "SASL_SSL",
                             "source.sasl_mechanism": "SCRAM-SHA-512",
                             "source.sasl_username": "sink"},
    "source.schema_registry_password": {"source.schema_registry_url": "https://registry:8081",
                                        "source.schema_registry_username": "reg"},
    "source.schema_registry_token": {"source.schema_registry_url": "https://registry:8081"},
}


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    yield
    logs.clear_secrets()


def config(tmp_path: Path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(BASE, encoding="utf-8")
    return path


def secret_file(tmp_path: Path, content: bytes, name: str = "secret") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def used_by_the_client(key: str, settings: Any) -> str:
    """The secret as the client that uses it receives it."""
    if key == "destination.password":
        args = postgres_connect_args(settings.destination)
        assert "password" not in args["dsn"]
        return str(args["password"])
    if key == "source.sasl_password":
        return str(kafka.security_kwargs(settings.source)["sasl_plain_password"])
    auth = SchemaRegistry.from_config(settings.source)._auth
    assert auth is not None
    if key == "source.schema_registry_token":
        return auth.removeprefix("Bearer ")
    return base64.b64decode(auth.removeprefix("Basic ")).decode().removeprefix("reg:")


@pytest.mark.parametrize("key", list(KEYS))
@pytest.mark.parametrize("ending", [b"", b"\n", b"\r\n", b"\n\n"])
def test_secret_from_file_reaches_its_client(tmp_path: Path, key: str, ending: bytes) -> None:
    path = secret_file(tmp_path, VALUE.encode() + ending)
    settings = load_settings(config(tmp_path), {**KEYS[key], f"{key}_file": str(path)})
    assert used_by_the_client(key, settings) == VALUE
    assert VALUE in secret_values(settings)
    assert logs.scrub(f"failed with {VALUE} here") == "failed with *** here"


@pytest.mark.parametrize("key", list(KEYS))
def test_config_show_masks_the_value_and_shows_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    path = secret_file(tmp_path, b"Shown-Never-77\n")
    argv = ["config", "show", "--config", str(config(tmp_path)), "--set",
            f"{key}_file={path}"]
    for k, v in KEYS[key].items():
        argv += ["--set", f"{k}={v}"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Shown-Never-77" not in out
    section, name = key.split(".")
    shown = json.loads(out)[section]
    assert shown[name] == "***" and shown[f"{name}_file"] == str(path)


def test_from_the_environment_as_kubernetes_sets_it(tmp_path: Path) -> None:
    path = secret_file(tmp_path, b"k8s-Mounted:pw@x\n")
    settings = load_settings(config(tmp_path), environ={
        "WARP__DESTINATION__PASSWORD_FILE": str(path),
        "WARP__SOURCE__SECURITY_PROTOCOL": "SASL_SSL",
        "WARP__SOURCE__SASL_USERNAME": "sink",
        "WARP__SOURCE__SASL_PASSWORD_FILE": str(path)})
    assert postgres_connect_args(settings.destination)["password"] == "k8s-Mounted:pw@x"
    assert kafka.security_kwargs(settings.source)["sasl_plain_password"] == "k8s-Mounted:pw@x"


def refused(capsys: pytest.CaptureFixture[str], tmp_path: Path, *flags: str) -> str:
    argv = ["config", "show", "--config", str(config(tmp_path))]
    for flag in flags:
        argv += ["--set", flag]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2 and out == "", err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warp-sink: invalid configuration: "), err
    return lines[0]


@pytest.mark.parametrize("key", list(KEYS))
def test_missing_file_exits_2_naming_key_and_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    flags = [f"{k}={v}" for k, v in KEYS[key].items()]
    line = refused(capsys, tmp_path, *flags, f"{key}_file={tmp_path}/nope")
    assert f"{key}_file: the file {tmp_path}/nope does not exist [from --set {key}_file]" in line


@pytest.mark.parametrize(("content", "problem"), [
    (None, "is a directory"),
    (b"", "is empty"),
    (b"\n", "is empty"),
    (b"\xffLeak-Bytes-1\xfe", "is not UTF-8 text"),
    (b"Leak-Nul-2\x00x", "holds a NUL character"),
])
def test_unusable_file_exits_2_without_its_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, problem: str
) -> None:
    path = tmp_path / "d" if content is None else secret_file(tmp_path, content)
    if content is None:
        path.mkdir()
    line = refused(capsys, tmp_path, f"destination.password_file={path}")
    assert f"destination.password_file: the file {path} {problem}" in line
    assert "Leak" not in line


def test_path_through_a_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = secret_file(tmp_path, b"x")
    line = refused(capsys, tmp_path, "source.schema_registry_url=http://r:1",
                   f"source.schema_registry_token_file={path}/inside")
    assert "source.schema_registry_token_file: the file" in line and "cannot be read" in line


def test_unreadable_file_exits_2(tmp_path: Path) -> None:
    """Read by a process without the right to read it: as root, the capabilities that
    bypass file permissions are dropped (setpriv), the file belonging to someone else."""
    path = secret_file(tmp_path, b"Unreadable-Pw-3\n")
    path.chmod(0o600)
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root without setpriv: permissions are not enforced")
        os.chown(path, 65534, 65534)
        drop = "-dac_override,-dac_read_search"
        prefix = ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}"]
    conf = config(tmp_path)
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "sink", "config", "show", "--config", str(conf)],
        capture_output=True, text=True, timeout=60, check=False, cwd=paths.ROOT,
        env={**os.environ, "PYTHONPATH": str(paths.ROOT),
             "WARP__DESTINATION__PASSWORD_FILE": str(path)})
    assert proc.returncode == 2, proc.stderr
    assert (f"destination.password_file: the file {path} is not readable by this user "
            "(permission denied) [from WARP__DESTINATION__PASSWORD_FILE]") in proc.stderr
    assert "Unreadable-Pw-3" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("key", list(KEYS))
def test_value_and_file_together_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    path = secret_file(tmp_path, b"From-File-4")
    flags = [f"{k}={v}" for k, v in KEYS[key].items()]
    line = refused(capsys, tmp_path, *flags, f"{key}=Given-Too-5", f"{key}_file={path}")
    name = key.split(".")[1]
    assert f"{key}_file: set {name} or {name}_file, not both" in line
    assert "From-File-4" not in line and "Given-Too-5" not in line


@pytest.mark.parametrize("flag", ["destination.password=Apart-6", "destination.password_file="])
def test_password_in_dsn_and_apart_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    if flag.endswith("="):
        flag += str(secret_file(tmp_path, b"Apart-6\n"))
    key = flag.split("=")[0]
    line = refused(capsys, tmp_path, flag, "destination.connection_string="
                   "postgresql://warp:In-Dsn-7@db.example/warehouse")
    assert f"{key}: the connection string holds a password too: give it in one place" in line
    assert "In-Dsn-7" not in line and "Apart-6" not in line


def test_password_apart_needs_no_encoding(tmp_path: Path) -> None:
    """The same password in the DSN must be percent-encoded; given apart it is taken as is."""
    raw = "p@ss:w/o?r#d%41"
    apart = load_settings(config(tmp_path), {"destination.password": raw})
    encoded = load_settings(config(tmp_path), {
        "destination.connection_string": "postgresql://warp:p%40ss:w%2Fo?r#d%2541"
                                         "@db.example:5432/warehouse"})
    assert postgres_connect_args(apart.destination) == postgres_connect_args(
        encoded.destination)
    assert postgres_connect_args(apart.destination)["password"] == raw


def test_the_oauth_client_secret_comes_from_its_file_too(tmp_path: Path) -> None:
    path = secret_file(tmp_path, VALUE.encode() + b"\n")
    settings = load_settings(config(tmp_path), {
        "source.security_protocol": "SASL_SSL", "source.sasl_mechanism": "OAUTHBEARER",
        "source.sasl_oauth_token_url": "https://idp.example/token",
        "source.sasl_oauth_client_id": "warp-sink",
        "source.sasl_oauth_client_secret_file": str(path)})
    secret = settings.source.sasl_oauth_client_secret
    assert secret is not None and secret.get_secret_value() == VALUE
    assert VALUE in secret_values(settings)  # scrubbed from every log line
