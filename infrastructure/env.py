"""Typed environment helpers that fail fast with a clear ImproperlyConfigured."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

from infrastructure.namespace import check as check_namespace

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class Env:
    """Read settings from a mapping (os.environ by default) with typed accessors."""

    def __init__(self, source: Mapping[str, str] | None = None) -> None:
        self._source = os.environ if source is None else source

    def raw(self, name: str) -> str | None:
        value = self._source.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    def text(self, name: str, default: str) -> str:
        return self.raw(name) or default

    def optional_text(self, name: str) -> str | None:
        return self.raw(name)

    def flag(self, name: str, default: bool) -> bool:
        value = self._source.get(name)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ImproperlyConfigured(f"{name} must be one of true/false/1/0/yes/no/on/off, got {value!r}.")

    def number(self, name: str, default: int, *, minimum: int | None = None) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}.") from None
        if minimum is not None and number < minimum:
            raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}.")
        return number

    def items(self, name: str, default: list[str]) -> list[str]:
        value = self.raw(name)
        if value is None:
            return list(default)
        return [item.strip() for item in value.split(",") if item.strip()]

    def origins(self, name: str, default: list[str]) -> list[str]:
        """A comma-separated list of web origins (scheme://host[:port]), such as http://localhost:5500."""
        origins = self.items(name, default)
        for origin in origins:
            if parse_origin(origin) is None:
                raise ImproperlyConfigured(
                    f"{name} must be a comma-separated list of origins like https://chat.example:8443, got {origin!r}."
                )
        return origins

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() not in choices:
            raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}.")
        return value.lower()

    def networks(self, name: str, default: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """A comma-separated list of addresses or networks (CIDR), such as 127.0.0.1,10.0.0.0/8."""
        networks = []
        for item in self.items(name, default):
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ImproperlyConfigured(
                    f"{name} must be a comma-separated list of addresses or networks, got {item!r}."
                ) from None
        return networks

    def namespace(self, name: str) -> str:
        """A deployment's namespace on the shared services (infrastructure/namespace.py); "" when unset."""
        value = self.raw(name) or ""
        try:
            return check_namespace(value)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}: {exc}.") from None

    def existing_folder(self, name: str) -> Path | None:
        """A folder that must already exist, if the variable is set."""
        value = self.raw(name)
        if value is None:
            return None
        folder = Path(value).expanduser()
        if not folder.is_dir():
            raise ImproperlyConfigured(f"{name} must name an existing folder, got {value!r}.")
        return folder

    def path(self, name: str, default: Path) -> Path:
        value = self.raw(name)
        return Path(value).expanduser().resolve() if value else default

    def url(self, name: str, schemes: tuple[str, ...]) -> str | None:
        """Return the URL in `name` if set, after checking its scheme and host."""
        value = self.raw(name)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in schemes:
            allowed = ", ".join(f"{s}://" for s in schemes)
            raise ImproperlyConfigured(f"{name} must start with one of {allowed}; got {value!r}.")
        if not parts.hostname:
            raise ImproperlyConfigured(f"{name} must name a host, got {value!r}.")
        return value

    def host_ports(self, name: str) -> str | None:
        """Return a comma-separated host:port list (Kafka bootstrap servers) if set."""
        value = self.raw(name)
        if value is None:
            return None
        for item in value.split(","):
            host, sep, port = item.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ImproperlyConfigured(f"{name} must be a comma-separated list of host:port, got {value!r}.")
        return value


Origin = tuple[str, str, int]  # scheme, host, port
_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_origin(text: str) -> Origin | None:
    """Scheme, host and port of a web origin such as http://localhost:5500; None for anything
    else ("null", a path, credentials), whether it comes from a setting or an Origin header."""
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        return None
    return parts.scheme, parts.hostname, port or _DEFAULT_PORTS[parts.scheme]


def database_from_url(url: str | None, sqlite_default: Path) -> dict[str, Any]:
    """Translate DATABASE_URL (postgres:// or sqlite:///path) into a Django DATABASES entry."""
    if url is None:
        return sqlite_database(str(sqlite_default))
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if not path or path == "/":
            raise ImproperlyConfigured(f"DATABASE_URL sqlite:// needs a file path, got {url!r}.")
        return sqlite_database(path)
    if parts.scheme in ("postgres", "postgresql"):
        return _postgresql_database(url, parts)
    raise ImproperlyConfigured(f"DATABASE_URL must start with postgres:// or sqlite:///, got {url!r}.")


# libpq's connection parameters that DATABASE_URL's query may set; anything else is a typo.
POSTGRES_URL_OPTIONS = frozenset(
    {"target_session_attrs", "load_balance_hosts", "connect_timeout", "application_name", "keepalives_idle"}
    | {"sslmode", "sslrootcert", "sslcert", "sslkey", "keepalives", "keepalives_interval", "keepalives_count"}
)


def _postgresql_database(url: str, parts: SplitResult) -> dict[str, Any]:
    """postgres://user:password@host[:port][,host[:port]...]/name[?libpq options]

    Several hosts are libpq's failover list: a connection tries them in order, and with
    `target_session_attrs=read-write` it skips a standby, so after a failover new connections
    reach the promoted server.
    """
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    name = unquote(parts.path.lstrip("/"))
    hosts, ports = [], []
    for item in hostlist.split(","):
        host, port = _host_and_port(item)
        hosts.append(host)
        ports.append(port)
    if not name or not all(hosts):
        raise ImproperlyConfigured(f"DATABASE_URL must be postgres://user:password@host:port/name, got {url!r}.")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - POSTGRES_URL_OPTIONS)
    if unknown:
        raise ImproperlyConfigured(
            f"DATABASE_URL has options libpq would not take here: {', '.join(unknown)};"
            f" allowed: {', '.join(sorted(POSTGRES_URL_OPTIONS))}."
        )
    return {
        "ENGINE": "infrastructure.postgresql",
        "NAME": name,
        "USER": unquote(user),
        "PASSWORD": unquote(password),
        "HOST": ",".join(hosts),
        "PORT": ",".join(ports),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        # Django turns prepared statements off (for transaction-mode poolers). Allowed, but
        # never automatic: only the send command asks for one (chat_command/services.py).
        "OPTIONS": {"prepare_threshold": 2**31 - 1, **query},
    }


def _host_and_port(item: str) -> tuple[str, str]:
    """ "host", "host:port", "[::1]:port" -> (host, port), with 5432 when none is given."""
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = item.partition(":")
    if port and not port.isdigit():
        raise ImproperlyConfigured(f"DATABASE_URL has a port that is not a number: {item!r}.")
    return unquote(host), port or "5432"


# The web process's requests and its embedded relay write the one file at once.
SQLITE_BUSY_TIMEOUT_S = 20


def sqlite_database(path: str) -> dict[str, Any]:
    """A DATABASES entry for a SQLite file that concurrent writers wait for instead of failing on."""
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        "OPTIONS": {
            # A writer waits up to this long for the write lock before "database is locked".
            "timeout": SQLITE_BUSY_TIMEOUT_S,
            # A transaction takes the write lock at BEGIN, where the wait above applies. A
            # deferred one that read first and writes second cannot wait: SQLite fails it at
            # once (SQLITE_BUSY), as another writer may have changed what it read.
            "transaction_mode": "IMMEDIATE",
            # WAL: readers do not block the writer nor it them. NORMAL syncs at checkpoints,
            # not at every commit; a power cut may lose the last commits, never corrupt the file.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        },
    }
