"""PostgreSQL connection strings (no servers): :func:`sink.config.parse_dsn` reads both
forms exactly as the system's libpq does (``PQconninfoParse`` through ctypes, on libpq's
documented examples and on random passwords made of every character that breaks naive
parsers), refuses the strings libpq would misread (a raw ``@`` after the user part) without
quoting any of them, and hands asyncpg a string asyncpg reads the same way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
from asyncpg.connect_utils import _parse_connect_dsn_and_args
from hypothesis import given, settings
from hypothesis import strategies as st

from sink import logs
from sink.config import DsnError, load_settings, parse_dsn, secret_values, show_dsn
from sink.errors import ConfigError
from sink.postgres import PostgreSQLDestinationConnector
from tests.config import libpq

needs_libpq = pytest.mark.skipif(not libpq.available(), reason="libpq.so.5 not installed")

# libpq's documentation, "Connection Strings" (34.1.1), every example, plus the forms the
# sink's users write.
DOCUMENTED = [
    "host=localhost port=5432 dbname=mydb connect_timeout=10",
    "postgresql://",
    "postgresql://localhost",
    "postgresql://localhost:5433",
    "postgresql://localhost/mydb",
    "postgresql://user@localhost",
    "postgresql://user:secret@localhost",
    "postgresql://other@localhost/otherdb?connect_timeout=10&application_name=myapp",
    "postgresql://host1:123,host2:456/somedb?target_session_attrs=any&application_name=myapp",
    "postgresql:///mydb?host=localhost&port=5433",
    "postgresql://[2001:db8::1234]/database",
    "postgresql://[2001:db8::1234]:5433/database",
    "postgresql:///dbname?host=/var/lib/postgresql",
    "postgresql://%2Fvar%2Flib%2Fpostgresql/dbname",
    "postgresql://host1,host2:5433/db",
    "postgresql://h/db?ssl=true",
    "postgres://u:p%40ss%2Fw%3Fo%23rd@h:5432/db",
    "postgresql://u:p?ss#w:rd@h/db",  # libpq: '?', '#', ':' need no encoding in the password
    "postgresql://u:a+b@h/db",  # '+' is not a space
    "postgresql://warp@h/warp?sslrootcert=/etc/ssl/certs/ca.crt&password=secret",
    "host = h  user=u password='a b\\'c\\\\d' dbname=x",
    "password=a\\ b host=h",
    "host=h password='p@ss/w?o#rd:x' dbname=d",
]


@needs_libpq
@pytest.mark.parametrize("text", DOCUMENTED)
def test_reads_what_libpq_reads(text: str) -> None:
    assert dict(parse_dsn(text).params) == libpq.conninfo_parse(text)


# Refused although libpq reads them: libpq would read a piece of the password as a host,
# a port or a database name. (libpq's reading is checked, to show what it would do.)
MISREAD = [
    ("postgresql://u:Lk7@Qz9@h/db", {"host": "Qz9@h"}),  # '@'
    ("postgresql://u:Lk7@Qz9:Wv3@h/db", {"host": "Qz9", "port": "Wv3@h"}),  # '@' then ':'
    ("postgresql://u:12/Qz9@h/db", {"host": "u", "port": "12", "dbname": "Qz9@h/db"}),  # '/'
    ("postgresql://u:1?application_name=Qz9/Wv3@h/db",  # '?' and '/'
     {"host": "u", "port": "1", "application_name": "Qz9/Wv3@h/db"}),
    ("postgresql://user@azure:Qz9@h/db", {"host": "azure", "port": "Qz9@h"}),
]


@pytest.mark.parametrize(("text", "libpq_reads"), MISREAD)
def test_refuses_a_raw_at_sign_after_the_user_part(
    text: str, libpq_reads: dict[str, str]
) -> None:
    if libpq.available():
        read = libpq.conninfo_parse(text)
        assert read is not None and libpq_reads.items() <= read.items()
    with pytest.raises(DsnError) as caught:
        parse_dsn(text)
    message = str(caught.value)
    assert "raw '@'" in message and "destination.password_file" in message
    assert_quotes_nothing(message, text)
    assert "Qz9" not in message and "Lk7" not in message


BROKEN = [
    ("mysql://u:leak-1x@h/db", "scheme 'mysql'"),
    ("postgresql://u:leak-2x@h:54x/db", "port that is not a number"),
    ("postgresql://u:leak-3x@h:70000/db", "port that is not a number"),
    ("postgresql://u:leak-4x@[::1/db", "IPv6"),
    ("postgresql://h/db?password=leak-5x=y", "exactly one '='"),
    ("postgresql://h/db?leak-6x", "exactly one '='"),
    ("postgresql://u:leak%7x@h/db", "percent-encoded"),
    ("postgresql://u:leak%00x@h/db", "%00"),
    ("host=a,b,c port=1,2 password=leak-11x", "2 ports for 3 hosts"),
    ("host=h password='leak-8x", "unterminated"),
    ("host=h password=leak 9x", "key=value pairs"),
    ("localhost:5432/leak-10x", "neither a postgresql:// URL nor key=value"),
    ("  ", "is empty"),
]


@pytest.mark.parametrize(("text", "expected"), BROKEN)
def test_broken_strings_are_refused_without_quoting_them(text: str, expected: str) -> None:
    with pytest.raises(DsnError) as caught:
        parse_dsn(text)
    assert expected in str(caught.value)
    assert_quotes_nothing(str(caught.value), text)
    assert show_dsn(text) == "(a connection string that cannot be read)"


def assert_quotes_nothing(message: str, text: str) -> None:
    """Nothing of ``text`` past its scheme is in ``message``: every case carries a marker
    (``leak``) where the password is."""
    assert "leak" not in message, message
    assert text.split("://", 1)[-1] not in message


# Every character that has a meaning somewhere in a URI or a keyword string, and a few more.
HARD = st.text(alphabet=st.sampled_from(list("@:/?#%&=+ '\\,[]!$;~\"é") + list("aZ09")),
               min_size=1, max_size=24)


@needs_libpq
@settings(max_examples=300, deadline=None)
@given(password=HARD, user=HARD)
def test_any_password_percent_encoded_or_quoted_reads_back_as_libpq_reads_it(
    password: str, user: str
) -> None:
    uri = f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@db.example:5432/warp"
    words = " ".join(f"{k}='{quote_kw(v)}'" for k, v in
                     (("host", "db.example"), ("user", user), ("password", password)))
    for text in (uri, words):
        parsed = parse_dsn(text)
        assert parsed.password == password and parsed.params["user"] == user
        assert dict(parsed.params) == libpq.conninfo_parse(text)
        read = asyncpg_reads(parsed.for_asyncpg(), parsed.password)
        assert (read["user"], read["password"], read["addrs"]) == (
            user, password, [("db.example", 5432)])
        assert "password=" not in parsed.for_asyncpg()  # '=' in a value is %3D
        assert "***" in parsed.shown()


def quote_kw(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def asyncpg_reads(dsn: str, password: str | None) -> dict[str, Any]:
    addrs, params = _parse_connect_dsn_and_args(
        dsn=dsn, host=None, port=None, user=None, password=password, passfile=None,
        database=None, ssl="disable", service=None, servicefile=None, direct_tls=None,
        server_settings=None, target_session_attrs=None, krbsrvname=None, gsslib=None)
    return {"addrs": addrs, "user": params.user, "password": params.password,
            "database": params.database, "server_settings": params.server_settings}


@pytest.mark.parametrize(("text", "addrs", "database", "settings_"), [
    ("postgresql://u:p?ss#x@h:5433/d%20b?application_name=a%2Bb", [("h", 5433)], "d b",
     {"application_name": "a+b"}),
    ("host=2001:db8::1 port=6 user=u dbname=q", [("2001:db8::1", 6)], "q", None),
    ("postgresql://h1,h2:5433/db", [("h1", 5432), ("h2", 5433)], "db", None),
    ("postgresql://[::1]:7/db", [("::1", 7)], "db", None),
])
def test_asyncpg_reads_the_handed_string_as_libpq_read_the_original(
    text: str, addrs: list[Any], database: str, settings_: Any
) -> None:
    parsed = parse_dsn(text)
    assert "password" not in parsed.for_asyncpg()
    read = asyncpg_reads(parsed.for_asyncpg(), parsed.password)
    assert (read["addrs"], read["database"], read["server_settings"]) == (
        addrs, database, settings_)


@pytest.mark.parametrize(("text", "database"), [
    # issue 12 item 14: the text after the last '/' was "ca.crt&password=secret"
    ("postgresql://warp@h/warp?sslrootcert=/etc/ssl/certs/ca.crt&password=secret", "warp"),
    ("postgresql://warp:pw@h", "warp"),  # libpq's default: the user name
    ("postgresql://h", "postgres"),
    ("host=h dbname='my db' password=secret", "my db"),
])
def test_database_label_comes_from_the_parse(text: str, database: str) -> None:
    assert parse_dsn(text).database == database
    connector = PostgreSQLDestinationConnector(text)
    assert connector.database == database


def test_shown_masks_the_password_wherever_it_was() -> None:
    assert show_dsn("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert show_dsn("postgresql://h/db?user=u&password=secret&sslmode=require") == (
        "postgresql://u:***@h/db?sslmode=require")
    assert show_dsn("host=h port=5 user=u password='a b' dbname=d") == (
        "postgresql://u:***@h:5/d")
    assert show_dsn("postgresql://u@h/db") == "postgresql://u@h/db"


def test_connector_refuses_a_password_given_twice_and_unreadable_strings() -> None:
    with pytest.raises(ConfigError, match="one place"):
        PostgreSQLDestinationConnector("postgresql://u:pw1@h/db", password="pw2")
    with pytest.raises(ConfigError) as caught:
        PostgreSQLDestinationConnector("postgresql://u:leak@99@h/db")
    assert "leak" not in str(caught.value) and "99" not in str(caught.value)


SSL_KEY_PASSWORD = "KeyPass-Canary-77"  # sslpassword: the passphrase of the client's key


@pytest.mark.parametrize("text", [
    f"postgresql://u@h/db?sslpassword={SSL_KEY_PASSWORD}&sslmode=require",
    f"host=h user=u sslpassword='{SSL_KEY_PASSWORD}' sslmode=require",
])
def test_the_ssl_key_password_is_a_secret_too(text: str, tmp_path: Path) -> None:
    """libpq's sslpassword unlocks the client certificate's key: as secret as the password.
    It was printed as written by `config show` and the `check` line's title."""
    assert show_dsn(text).endswith("?sslpassword=***&sslmode=require")
    config = tmp_path / "c.yaml"
    config.write_text(f'source: {{bootstrap_servers: "k:9092", topics: [t], group_id: g}}\n'
                      f'destination: {{connection_string: "{text}"}}\n', encoding="utf-8")
    shown = subprocess.run([sys.executable, "-m", "sink", "config", "show", "--config",
                            str(config)], capture_output=True, text=True, check=True).stdout
    assert SSL_KEY_PASSWORD not in shown and "sslpassword=***" in shown
    try:
        secrets = secret_values(load_settings(config))
    finally:
        logs.clear_secrets()
    assert SSL_KEY_PASSWORD in secrets  # registered: scrubbed wherever a log line holds it


# libpq reads these, asyncpg does not: it sends each to the server as a setting, and the
# server refuses the connection. `run` and `check` failed at connect time (exit 1,
# "unrecognized configuration parameter"); the empty host made asyncpg raise IndexError.
UNUSABLE = [
    ("postgresql://other@localhost/otherdb?connect_timeout=10&application_name=myapp",
     "connect_timeout", "destination.connection_timeout"),
    ("host=localhost port=5432 dbname=mydb connect_timeout=10", "connect_timeout",
     "destination.connection_timeout"),
    ("postgresql://u@h/db?hostaddr=10.0.0.1", "hostaddr", "as the host"),
    ("postgresql://u@h/db?keepalives=1&keepalives_idle=30", "keepalives", "keepalive"),
    ("postgresql://u@h/db?gssencmode=disable", "gssencmode", "remove it"),
    ("postgresql://u@h1,,h3/db", "empty entry", "h1,,h2"),
    ("host=h1,,h3 dbname=db", "empty entry", "h1,,h2"),
]


@pytest.mark.parametrize(("text", "named", "hint"), UNUSABLE)
def test_libpq_settings_asyncpg_cannot_use_are_refused_at_load(
    text: str, named: str, hint: str, tmp_path: Path
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f'source: {{bootstrap_servers: "k:9092", topics: [t], group_id: g}}\n'
                      f'destination: {{connection_string: "{text}"}}\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "sink", "check", "--config", str(config)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "destination.connection_string" in done.stderr
    assert named in done.stderr and hint in done.stderr
    with pytest.raises(ConfigError, match=named):
        PostgreSQLDestinationConnector(text)


@pytest.mark.parametrize("text", [
    "postgresql://u@h/db?application_name=a&options=-c%20search_path%3Dx&sslmode=require",
    "postgresql://u@h1,h2:5433/db?target_session_attrs=read-write&client_encoding=UTF8",
    "postgresql://u@[::1],%2Fvar%2Frun%2Fpostgresql/db",
])
def test_settings_asyncpg_uses_or_the_server_takes_are_kept(text: str) -> None:
    parse_dsn(text).check_usable()
    PostgreSQLDestinationConnector(text)


@pytest.mark.integration
@pytest.mark.parametrize("key", ["connect_timeout=10", "keepalives=1", "hostaddr=127.0.0.1",
                                 "gssencmode=disable", "channel_binding=prefer"])
async def test_the_server_refuses_what_is_refused_here(stack: Any, key: str) -> None:
    """Why they are refused: handed to asyncpg as they are, the real server says no."""
    sep = "&" if "?" in stack.pg_dsn else "?"
    with pytest.raises(asyncpg.UndefinedObjectError, match="unrecognized configuration"):
        await asyncpg.connect(f"{stack.pg_dsn}{sep}{key}")


@pytest.mark.parametrize("text", [
    "postgresql://u@h/db?PASSWORD=leak-Hunter22",
    "host=h Password=leak-Hunter22",
    "postgresql://u@h/db?SslPassword=leak-Hunter22&sslmode=require",
])
def test_a_libpq_keyword_in_capitals_is_refused_not_passed_on(text: str) -> None:
    """libpq refuses "PASSWORD=" (its names are lowercase); the sink took it for a custom
    server setting: `config show` printed it as written and asyncpg sent it to the server."""
    if libpq.available():
        assert libpq.conninfo_parse(text) is None
    with pytest.raises(DsnError, match="lowercase") as caught:
        parse_dsn(text)
    assert_quotes_nothing(str(caught.value), text)
    assert show_dsn(text) == "(a connection string that cannot be read)"
