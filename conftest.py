"""Shared fixtures: the real services started by `make test`, and the seeded personas."""

from __future__ import annotations

import threading
import uuid

import pytest

# Services of a test's own (a Redis, a Kafka broker) for the tests that stop them, and the hook
# that shows their logs when such a test fails.
pytest_plugins = ["infrastructure.testing.private_services"]


def _require(setting: str) -> str:
    from django.conf import settings

    value = getattr(settings, setting)
    if not value:
        pytest.fail(f"{setting} is not set: integration tests run against the real services (`make test`).")
    return str(value)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return _require("KAFKA_BOOTSTRAP_SERVERS")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _require("REDIS_URL")


@pytest.fixture(params=["redis", "redis-cluster"])
def each_redis(request):
    """The configured Redis, then a Redis Cluster of the test's own: the same code runs on both."""
    if request.param == "redis":
        return request.getfixturevalue("redis_url")
    return request.getfixturevalue("backends_on_private_redis_cluster")


@pytest.fixture(scope="session")
def mongo_url() -> str:
    return _require("MONGO_URL")


@pytest.fixture(scope="session")
def ferretdb_postgres_url() -> str:
    return _require("FERRETDB_POSTGRES_URL")


@pytest.fixture
def running_relay(kafka_bootstrap, transactional_db):
    """The outbox relay on Kafka in a thread of the test process, stopped after the test."""
    from chat_command import relay

    stop = threading.Event()
    thread = threading.Thread(
        target=relay.run_relay, args=(stop, relay.KafkaPublisher(), relay.PostgresCoordinator()), daemon=True
    )
    thread.start()
    yield thread
    stop.set()
    thread.join(15)
    assert not thread.is_alive(), "the relay stops when asked"


@pytest.fixture
def scratch_mongo_db(mongo_url):
    """A MongoDB-wire database of its own for one test, dropped afterwards."""
    import pymongo

    client = pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=5000, tz_aware=True)
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield client[name]
    client.drop_database(name)
    client.close()


@pytest.fixture
def unique() -> str:
    """A short random token so tests can share databases, topics and keys."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session", autouse=True)
def read_store_of_its_own():
    """Each test run projects into a MongoDB database of its own, dropped at the end."""
    from django.conf import settings

    from infrastructure import backends

    settings.MONGO_DB_NAME = f"test_read_{uuid.uuid4().hex[:8]}"
    yield settings.MONGO_DB_NAME
    backends.mongo_client().drop_database(settings.MONGO_DB_NAME)


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing():
    """Password hashing cost is not what these tests measure."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def jwt_keys(tmp_path_factory):
    """A key pair for the whole run, generated the way `generate_keys` does it."""
    from django.conf import settings

    from accounts.keys import generate_key_pair

    folder = tmp_path_factory.mktemp("keys")
    settings.JWT_PRIVATE_KEY_PATH = folder / "private_key.pem"
    settings.JWT_PUBLIC_KEY_PATH = folder / "public_key.pem"
    generate_key_pair(settings.JWT_PRIVATE_KEY_PATH, settings.JWT_PUBLIC_KEY_PATH)
    return folder


@pytest.fixture
def client():
    """A test client from an address of its own, so per-address throttles do not leak across tests."""
    import random

    from django.test import Client

    address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"
    return Client(REMOTE_ADDR=address)


@pytest.fixture
def seeded(db):
    """The reference's customers 1-3 (user1/123, user2/1234, user3/12345), with no failed logins
    counted against them (Redis outlives a test run; the counters last 15 minutes)."""
    from accounts import throttle
    from accounts.seed import seed_customers

    seed_customers()
    for username in ("user1", "user2", "user3"):
        throttle.forget_login_failures(username)


def login(client, username: str, password: str):
    response = client.post("/auth/login", {"username": username, "password": password}, content_type="application/json")
    assert response.status_code == 200, response.content
    return response


@pytest.fixture
def user1(client, seeded):
    """A client logged in as user1 (customer 1)."""
    login(client, "user1", "123")
    return client


@pytest.fixture
def outsider(db, unique):
    """A customer who shares no room with the seeded users, and a client logged in as them."""
    from django.test import Client

    from accounts.models import Customer

    customer = Customer.objects.create_user(
        f"outsider-{unique}", "outsider-pw", full_name=f"Outsider {unique}", email=f"outsider-{unique}@example.test"
    )
    other = Client(REMOTE_ADDR="127.0.0.99")
    login(other, customer.username, "outsider-pw")
    other.customer = customer
    return other


@pytest.fixture
def user2(seeded):
    """A second client, logged in as user2 (customer 2)."""
    from django.test import Client

    other = Client(REMOTE_ADDR="127.0.0.2")
    login(other, "user2", "1234")
    return other


@pytest.fixture
def room(seeded):
    """A fresh room of customers 1 and 2, created through the command service."""
    from chat_command.services import NewRoom, do_create_room

    return do_create_room(1, NewRoom("Room of 1 and 2", [2]))


@pytest.fixture
def operator(seeded, unique):
    """A client logged in to the admin as a superuser of its own."""
    from django.test import Client

    from accounts.models import Customer

    Customer.objects.create_superuser(f"operator-{unique}", "operator-pw", email=f"operator-{unique}@example.test")
    client = Client()
    assert client.login(username=f"operator-{unique}", password="operator-pw")
    return client
