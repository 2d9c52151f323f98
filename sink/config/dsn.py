"""PostgreSQL connection strings, read the way libpq reads them: the URI form
(``postgresql://[user[:password]@][host][:port][,...][/dbname][?key=value&...]``) and the
keyword form (``host=h port=5432 dbname=db password='a b'``).

The URI rules are libpq's (``conninfo_uri_parse_options``): the user part ends at the
*first* ``@`` found before any ``/``; the password runs from the first ``:`` to that ``@``
(so ``?``, ``#`` and ``:`` need no encoding there); hosts are comma-separated, IPv6 in
brackets; every part is percent-decoded; a query parameter needs exactly one ``=``;
``ssl=true`` means ``sslmode=require``. The keyword form follows ``conninfo_parse``: values
may be single-quoted, ``\\`` escapes the next character.

One rule is stricter than libpq, because libpq's reading of it is never what was meant: a
raw ``@`` after the user part. libpq makes ``postgresql://u:p@ss@h/db`` the host
``ss@h``, and ``postgresql://u:pa/ss@h/db`` the database ``ss@h/db`` -- a piece of the
password that would then travel to DNS, error messages and metric labels. Such a string is
refused: a literal ``@`` there is written ``%40``, or the password is given on its own
(``destination.password``/``password_file``).

Errors (:class:`DsnError`) never quote any part of the string: a piece of a malformed DSN
may be a piece of its password.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

_URI = re.compile(r"(postgresql|postgres)://", re.IGNORECASE)
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,19})://")
_KEYWORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")  # dotted: custom server settings
_HEX = "0123456789abcdefABCDEF"
_AT_HINT = ("a password holding '@' or '/' as written? In a URL they are written %40 and "
            "%2F; better, give the password on its own in destination.password or "
            "destination.password_file, where it needs no encoding")


# libpq's own connection settings that asyncpg does not read: it would send each to the
# server as a setting, and the server refuses the connection ("unrecognized configuration
# parameter"). The value says what to use instead.
_CLIENT_ONLY = {
    "connect_timeout": "destination.connection_timeout",
    "hostaddr": "the address as the host",
    **dict.fromkeys(("keepalives", "keepalives_idle", "keepalives_interval",
                     "keepalives_count"), "the system's TCP keepalive settings"),
    **dict.fromkeys(("channel_binding", "fallback_application_name", "sslcompression",
                     "sslcrldir", "sslsni", "requirepeer", "gssencmode", "replication",
                     "load_balance_hosts", "require_auth", "sslcertmode", "gssdelegation"),
                    "nothing: remove it"),
}
# libpq's parameter names (PQconndefaults, PostgreSQL 15-17). They are lowercase; libpq
# refuses "PASSWORD=", where the sink would pass it on as a server setting (in clear, and
# printed by `config show` as an unknown key).
_LIBPQ_KEYWORDS = frozenset({
    "service", "user", "password", "passfile", "channel_binding", "connect_timeout", "dbname",
    "host", "hostaddr", "port", "client_encoding", "options", "application_name",
    "fallback_application_name", "keepalives", "keepalives_idle", "keepalives_interval",
    "keepalives_count", "tcp_user_timeout", "sslmode", "sslcompression", "sslcert", "sslkey",
    "sslpassword", "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "requirepeer",
    "ssl_min_protocol_version", "ssl_max_protocol_version", "gssencmode", "krbsrvname",
    "gsslib", "replication", "target_session_attrs", "load_balance_hosts", "require_auth",
    "sslcertmode", "gssdelegation", "sslnegotiation",
})
# Secrets a connection string may hold: masked when shown, scrubbed from logs.
SECRET_PARAMS = ("password", "sslpassword")


class DsnError(ValueError):
    """A connection string libpq would not read (the message quotes none of it)."""


@dataclass(frozen=True)
class Dsn:
    """A parsed connection string: libpq keywords and their decoded values."""

    params: Mapping[str, str]
    scheme: str = "postgresql"

    @property
    def password(self) -> str | None:
        return self.params.get("password") or None

    @property
    def database(self) -> str:
        """The database name as the server will see it: ``dbname``, else libpq's default,
        the user name (``postgres`` when neither is given here)."""
        return self.params.get("dbname") or self.params.get("user") or "postgres"

    @property
    def secrets(self) -> list[str]:
        return [v for k in SECRET_PARAMS if (v := self.params.get(k))]

    def check_usable(self) -> None:
        """Raise :class:`DsnError` for what libpq reads but the sink's client (asyncpg)
        cannot use: libpq-only settings, an empty entry in a list of hosts."""
        for key in sorted(self.params):
            if key in _CLIENT_ONLY:
                raise DsnError(f"sets {key}, a libpq setting this client does not support "
                               f"(the server would refuse it as a setting); use "
                               f"{_CLIENT_ONLY[key]}")
        hosts = self.params.get("host", "").split(",")
        if len(hosts) > 1 and not all(hosts):
            raise DsnError("has an empty entry in its list of hosts (e.g. h1,,h2)")

    def for_asyncpg(self) -> str:
        """The same connection as a URI asyncpg reads exactly as libpq read the original,
        without the password (give that to asyncpg separately): every value goes in the
        query, percent-encoded, so no character of it can change the string's structure."""
        params = {k: v for k, v in self.params.items() if k != "password" and v != ""}
        if "host" in params:
            params["host"] = ",".join(
                f"[{h}]" if ":" in h and not h.startswith("/") else h
                for h in params["host"].split(","))
            ports = params.get("port", "").split(",")
            if len(ports) > 1:  # asyncpg takes no empty entry: libpq's default for them
                params["port"] = ",".join(p or "5432" for p in ports)
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items())
        return f"postgresql://?{query}" if query else "postgresql://"

    def shown(self, mask: str = "***") -> str:
        """The connection as a URI for people to read, the password replaced by ``mask``."""
        p = dict(self.params)
        user = quote(p.pop("user", ""), safe="")
        password = p.pop("password", "")
        auth = f"{user}:{mask}@" if password else (f"{user}@" if user else "")
        hosts, ports = p.pop("host", "").split(","), p.pop("port", "").split(",")
        if len(ports) == 1:
            ports = ports * len(hosts)
        netloc = ",".join(
            (f"[{h}]" if ":" in h else quote(h, safe="")) + (f":{pt}" if pt else "")
            for h, pt in zip(hosts, ports, strict=False))
        db = p.pop("dbname", "")
        path = f"/{quote(db, safe='')}" if db else ""
        query = "&".join(f"{quote(k, safe='')}="
                         f"{mask if k in SECRET_PARAMS and v else quote(v, safe='/')}"
                         for k, v in p.items())
        return f"{self.scheme}://{auth}{netloc}{path}{'?' + query if query else ''}"


def parse_dsn(text: str) -> Dsn:
    """Read a connection string in either form; raise :class:`DsnError` (quoting nothing
    of ``text``) when libpq would not read it, or would read it as something else."""
    if not text.strip():
        raise DsnError("is empty (e.g. postgresql://user@host:5432/database)")
    head = _URI.match(text)
    if head is not None:
        scheme = head.group(1).lower()
        return Dsn(_check(_parse_uri(text[head.end():])), scheme)
    other = _SCHEME.match(text)
    if other is not None:
        raise DsnError(f"must be a postgresql:// or postgres:// URL (scheme "
                       f"{other.group(1)!r}; e.g. postgresql://user@host:5432/database)")
    if "=" not in text:
        raise DsnError("is neither a postgresql:// URL nor key=value pairs (e.g. "
                       "postgresql://user@host:5432/database or host=h dbname=d)")
    return Dsn(_check(_parse_keywords(text)))


def _decode(part: str) -> str:
    """libpq's ``conninfo_uri_decode``: %XX only (``+`` stays ``+``), no %00."""
    if "%" not in part:
        return part
    out = bytearray()
    i = 0
    raw = part.encode("utf-8")
    while i < len(raw):
        if raw[i] == 0x25:  # '%'
            pair = raw[i + 1:i + 3].decode("latin-1")
            if len(pair) != 2 or any(c not in _HEX for c in pair):
                raise DsnError("holds an invalid percent-encoded token (% must be "
                               "followed by two hex digits; a literal % is written %25)")
            if pair == "00":
                raise DsnError("holds %00, which PostgreSQL cannot take")
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise DsnError("holds percent-encoded bytes that are not UTF-8") from None


def _parse_uri(rest: str) -> dict[str, str]:
    params: dict[str, str] = {}
    cut = min((i for i in (rest.find("@"), rest.find("/")) if i >= 0), default=-1)
    if cut >= 0 and rest[cut] == "@":
        userinfo, rest = rest[:cut], rest[cut + 1:]
        user, colon, password = userinfo.partition(":")
        if user:
            params["user"] = _decode(user)
        if colon and password:
            params["password"] = _decode(password)
    if "@" in rest:
        raise DsnError("holds a raw '@' after the user part (in the host, the database name "
                       f"or a parameter): {_AT_HINT}")
    hostspec, sep, tail = _split_at(rest, "/?")
    hosts, ports = [], []
    for spec in hostspec.split(","):
        if spec.startswith("["):
            addr, bracket, after = spec[1:].partition("]")
            if not bracket or not addr:
                raise DsnError("has an IPv6 host without its closing ']' or empty")
            if after and not after.startswith(":"):
                raise DsnError("has characters after an IPv6 host's ']' (expected ':' and "
                               "a port)")
            port = after[1:] if after else ""
            hosts.append(addr)
        else:
            addr, _, port = spec.partition(":")
            hosts.append(addr)
        ports.append(port)
    if any(hosts):
        params["host"] = _decode(",".join(hosts))
    if any(ports):
        params["port"] = _decode(",".join(ports))
    if sep == "/":
        dbname, qsep, query = tail.partition("?")
        if dbname:
            params["dbname"] = _decode(dbname)
    else:
        qsep, query = sep, tail
    if qsep:
        params.update(_parse_query(query))
    return params


def _split_at(text: str, stops: str) -> tuple[str, str, str]:
    for i, c in enumerate(text):
        if c in stops:
            return text[:i], c, text[i + 1:]
    return text, "", ""


def _parse_query(query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    if not query:
        return params
    for item in query.split("&"):
        if item.count("=") != 1:
            raise DsnError("has a query parameter without exactly one '=' (a literal '=' or "
                           "'&' in a value is written %3D or %26)")
        key, _, value = item.partition("=")
        key, value = _decode(key), _decode(value)
        if not _KEYWORD.fullmatch(key):
            raise DsnError("has a query parameter whose name is not a keyword")
        if key == "ssl" and value == "true":  # libpq's JDBC compatibility
            key, value = "sslmode", "require"
        params[key] = value
    return params


def _parse_keywords(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        while i < n and text[i] != "=" and not text[i].isspace():
            i += 1
        key = text[start:i]
        while i < n and text[i].isspace():
            i += 1
        if i >= n or text[i] != "=" or not _KEYWORD.fullmatch(key):
            raise DsnError("is not a list of key=value pairs (a value with spaces is quoted: "
                           "password='a b'; a quote or backslash in it is escaped: \\' \\\\)")
        i += 1
        while i < n and text[i].isspace():
            i += 1
        value: list[str] = []
        if i < n and text[i] == "'":
            i += 1
            while True:
                if i >= n:
                    raise DsnError("has an unterminated quoted value")
                if text[i] == "\\" and i + 1 < n:
                    value.append(text[i + 1])
                    i += 2
                elif text[i] == "'":
                    i += 1
                    break
                else:
                    value.append(text[i])
                    i += 1
        else:
            while i < n and not text[i].isspace():
                if text[i] == "\\":
                    i += 1
                    if i < n:
                        value.append(text[i])
                        i += 1
                else:
                    value.append(text[i])
                    i += 1
        params[key] = "".join(value)
    return params


def _check(params: dict[str, str]) -> dict[str, str]:
    for key in params:
        if key != key.lower() and key.lower() in _LIBPQ_KEYWORDS:
            raise DsnError(f"has the parameter {key}: libpq's parameter names are lowercase "
                           f"({key.lower()})")
    for port in filter(None, params.get("port", "").split(",")):
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise DsnError("has a port that is not a number from 1 to 65535")
    hosts = len(params.get("host", "").split(","))
    ports = len(params.get("port", "").split(","))
    if ports > 1 and ports != hosts:
        raise DsnError(f"gives {ports} ports for {hosts} hosts (one port for all, or one "
                       "per host)")
    if any("\x00" in value for value in params.values()):
        raise DsnError("holds a NUL character")
    return params
