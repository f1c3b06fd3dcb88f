import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from infrastructure.env import Env, database_from_url


def test_unset_and_blank_values_fall_back_to_defaults():
    env = Env({"BLANK": "  "})
    assert env.text("MISSING", "fallback") == "fallback"
    assert env.text("BLANK", "fallback") == "fallback"
    assert env.number("MISSING", 7) == 7
    assert env.items("MISSING", ["a"]) == ["a"]
    assert env.url("BLANK", ("redis",)) is None


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("Yes", True), ("on", True), ("0", False), ("off", False)])
def test_booleans_accept_the_usual_spellings(raw, expected):
    assert Env({"FLAG": raw}).flag("FLAG", not expected) is expected


def test_a_bad_boolean_names_the_variable_and_the_value():
    with pytest.raises(ImproperlyConfigured, match=r"DJANGO_DEBUG must be one of .*'maybe'"):
        Env({"DJANGO_DEBUG": "maybe"}).flag("DJANGO_DEBUG", False)


def test_a_bad_integer_is_refused_clearly():
    with pytest.raises(ImproperlyConfigured, match="JWT_LIFETIME_SECONDS must be a whole number, got 'ten'"):
        Env({"JWT_LIFETIME_SECONDS": "ten"}).number("JWT_LIFETIME_SECONDS", 1)
    with pytest.raises(ImproperlyConfigured, match="at least 60, got 5"):
        Env({"JWT_LIFETIME_SECONDS": "5"}).number("JWT_LIFETIME_SECONDS", 1, minimum=60)


def test_lists_are_comma_separated_and_trimmed():
    env = Env({"HOSTS": " a.example , b.example,, "})
    assert env.items("HOSTS", []) == ["a.example", "b.example"]


def test_urls_must_have_an_allowed_scheme_and_a_host():
    env = Env({"REDIS_URL": "http://localhost:6379", "MONGO_URL": "mongodb://", "OK": "redis://127.0.0.1:1/0"})
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL must start with one of redis://"):
        env.url("REDIS_URL", ("redis",))
    with pytest.raises(ImproperlyConfigured, match="MONGO_URL must name a host"):
        env.url("MONGO_URL", ("mongodb",))
    assert env.url("OK", ("redis",)) == "redis://127.0.0.1:1/0"


def test_kafka_bootstrap_servers_must_be_host_port_pairs():
    assert Env({"K": "127.0.0.1:9092,other:9093"}).host_ports("K") == "127.0.0.1:9092,other:9093"
    with pytest.raises(ImproperlyConfigured, match="host:port"):
        Env({"K": "127.0.0.1"}).host_ports("K")
    with pytest.raises(ImproperlyConfigured, match="host:port"):
        Env({"K": "broker:nine"}).host_ports("K")


def test_paths_are_resolved(tmp_path):
    assert Env({"P": str(tmp_path / "x")}).path("P", Path("/nope")) == tmp_path / "x"


def test_database_url_defaults_to_a_sqlite_file(tmp_path):
    config = database_from_url(None, tmp_path / "db.sqlite3")
    assert (config["ENGINE"], config["NAME"]) == ("django.db.backends.sqlite3", str(tmp_path / "db.sqlite3"))


def test_database_url_parses_postgres_with_escaped_password():
    config = database_from_url("postgres://chat:p%40ss@db.example:6543/chat_db", Path("/unused"))
    assert config["ENGINE"] == "infrastructure.postgresql"
    assert (config["USER"], config["PASSWORD"], config["HOST"], config["PORT"], config["NAME"]) == (
        "chat",
        "p@ss",
        "db.example",
        "6543",
        "chat_db",
    )


@pytest.mark.parametrize("url", ["mysql://u@h/db", "postgres://u@h/", "sqlite://"])
def test_database_url_rejects_what_it_cannot_serve(url):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        database_from_url(url, Path("/unused"))


def test_log_format_must_be_plain_or_json():
    assert Env({"LOG_FORMAT": "JSON"}).choice("LOG_FORMAT", "plain", ("plain", "json")) == "json"
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT must be one of plain, json"):
        Env({"LOG_FORMAT": "xml"}).choice("LOG_FORMAT", "plain", ("plain", "json"))


def test_the_metrics_allow_list_takes_addresses_and_networks():
    networks = Env({"METRICS_ALLOW_FROM": "10.0.0.0/8, ::1,192.168.1.5"}).networks("METRICS_ALLOW_FROM", [])
    assert [str(n) for n in networks] == ["10.0.0.0/8", "::1/128", "192.168.1.5/32"]
    with pytest.raises(ImproperlyConfigured, match="METRICS_ALLOW_FROM"):
        Env({"METRICS_ALLOW_FROM": "10.0.0.300"}).networks("METRICS_ALLOW_FROM", [])


def test_the_multiprocess_metrics_folder_must_exist(tmp_path):
    assert Env({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}).existing_folder("PROMETHEUS_MULTIPROC_DIR") == tmp_path
    with pytest.raises(ImproperlyConfigured, match="PROMETHEUS_MULTIPROC_DIR must name an existing folder"):
        Env({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "missing")}).existing_folder("PROMETHEUS_MULTIPROC_DIR")


def test_origins_are_a_scheme_a_host_and_maybe_a_port():
    env = Env({"ORIGINS": "http://localhost:5500, https://chat.example,http://[::1]:8000"})
    assert env.origins("ORIGINS", []) == ["http://localhost:5500", "https://chat.example", "http://[::1]:8000"]
    assert env.origins("MISSING", ["http://a.example"]) == ["http://a.example"]


@pytest.mark.parametrize(
    "origin",
    ["localhost:5500", "ws://chat.example", "http://", "http://chat.example/", "http://chat.example:port", "*", "null"],
)
def test_a_malformed_origin_names_the_variable_and_the_value(origin):
    with pytest.raises(ImproperlyConfigured, match=f"WEBSOCKET_ALLOWED_ORIGINS must be .* got '{re.escape(origin)}'"):
        Env({"WEBSOCKET_ALLOWED_ORIGINS": f"http://ok.example,{origin}"}).origins("WEBSOCKET_ALLOWED_ORIGINS", [])


def test_database_url_takes_libpqs_failover_list_of_hosts_and_its_options():
    url = (
        "postgres://chat:chat@primary:5433,standby,[::1]:6000/chat_db?target_session_attrs=read-write&connect_timeout=3"
    )
    config = database_from_url(url, Path("/unused"))
    assert (config["HOST"], config["PORT"]) == ("primary,standby,::1", "5433,5432,6000")
    assert config["OPTIONS"]["target_session_attrs"] == "read-write"
    assert config["OPTIONS"]["connect_timeout"] == "3"


def test_database_url_refuses_an_option_libpq_would_not_take():
    with pytest.raises(ImproperlyConfigured, match="target_sesion_attrs"):
        database_from_url("postgres://u:p@h/db?target_sesion_attrs=read-write", Path("/unused"))
