"""The backing services are real: each one does real work on loopback."""

import os
import time
from pathlib import Path

import pymongo
import pytest
import redis
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings
from django.db import connection

from accounts.models import Customer
from benchmarks.instance import pid_in, service_pid_file
from benchmarks.system import services_home
from infrastructure import namespace

pytestmark = pytest.mark.integration


@pytest.mark.django_db
def test_postgresql_round_trip_through_the_orm(unique):
    assert connection.vendor == "postgresql", "the test command runs against PostgreSQL"
    created = Customer.objects.create_user(f"pg-{unique}", "secret", full_name="Round Trip", email=f"{unique}@x.test")
    fetched = Customer.objects.get(username=f"pg-{unique}")
    assert fetched.customer_id == created.customer_id
    assert fetched.check_password("secret")
    with connection.cursor() as cursor:
        cursor.execute("SELECT full_name FROM customers WHERE customer_id = %s", [created.customer_id])
        assert cursor.fetchone() == ("Round Trip",)


def test_redis_set_and_expire(redis_url, unique):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    key = f"test:{unique}"
    client.set(key, "value", px=200)
    assert client.get(key) == "value"
    assert 0 < client.pttl(key) <= 200
    deadline = time.monotonic() + 5
    while client.exists(key) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not client.exists(key)


def test_kafka_idempotent_produce_and_group_consume_with_manual_commit(kafka_bootstrap, unique):
    # In the run's namespace, so dropping it ends the topic and the group even if the test fails.
    topic = namespace.topic(f"roundtrip-{unique}")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(timeout=30)

    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "acks": "all"})
    delivered = []
    for n in range(5):
        producer.produce(topic, key="room-1", value=f"event-{n}", on_delivery=lambda err, msg: delivered.append(err))
    assert producer.flush(30) == 0
    assert delivered == [None] * 5

    group = f"{settings.KAFKA_GROUP_PREFIX}-roundtrip-{unique}"
    config = {
        "bootstrap.servers": kafka_bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    consumer = Consumer(config)
    consumer.subscribe([topic])
    received = []
    deadline = time.monotonic() + 60
    while len(received) < 5 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        assert message.error() is None or message.error().code() == KafkaError._PARTITION_EOF
        if message.error() is None:
            received.append(message)
    assert [m.value().decode() for m in received] == [f"event-{n}" for n in range(5)], "same key, same order"
    consumer.commit(asynchronous=False)
    partition = received[-1].partition()
    committed = consumer.committed([TopicPartition(topic, partition)], timeout=10)
    assert committed[0].offset == received[-1].offset() + 1
    consumer.close()

    # A new member of the same group starts after the committed offset: nothing is redelivered.
    # It reads every partition to its end (an end-of-partition event each), so the check cannot
    # pass merely because the member had not joined yet.
    again = Consumer({**config, "enable.partition.eof": True})
    again.subscribe([topic])
    at_end = set()
    deadline = time.monotonic() + 30
    while len(at_end) < 2:
        assert time.monotonic() < deadline, f"the new member reached the end of only {sorted(at_end)}"
        message = again.poll(0.5)
        if message is None:
            continue
        assert message.error() is not None, "committed events are not delivered twice"
        assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
        at_end.add(message.partition())
    again.close()
    admin.delete_topics([topic])


def test_mongo_wire_find_sort_limit_upsert_and_unique_index(scratch_mongo_db):
    messages = scratch_mongo_db["messages"]
    messages.insert_many([{"_id": n, "roomId": 1 + n % 2, "content": f"m{n}"} for n in range(1, 11)])
    newest = list(messages.find({"roomId": 1}).sort("_id", pymongo.DESCENDING).limit(3))
    assert [doc["_id"] for doc in newest] == [10, 8, 6]

    views = scratch_mongo_db["views"]
    views.update_one({"_id": 7}, {"$set": {"name": "a"}, "$max": {"last": 5}}, upsert=True)
    views.update_one({"_id": 7}, {"$set": {"name": "b"}, "$max": {"last": 3}}, upsert=True)
    assert views.find_one({"_id": 7}) == {"_id": 7, "name": "b", "last": 5}

    markers = scratch_mongo_db["markers"]
    markers.create_index([("roomId", 1), ("customerId", 1)], unique=True, name="unique_marker")
    markers.insert_one({"roomId": 1, "customerId": 2, "lastReadMessageId": 4})
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        markers.insert_one({"roomId": 1, "customerId": 2, "lastReadMessageId": 9})
    assert markers.count_documents({}) == 1


def test_ferretdb_runs_with_the_garbage_collector_target_scripts_services_gives_it():
    """FerretDB's GOGC (CHAT_FERRETDB_GOGC, default 400) saves a sixth of its CPU a message."""
    pid = pid_in(service_pid_file(services_home(dict(os.environ)), "mongo"))
    assert pid is not None, "FerretDB is not running"
    environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert f"GOGC={os.environ.get('CHAT_FERRETDB_GOGC', '400')}".encode() in environment
