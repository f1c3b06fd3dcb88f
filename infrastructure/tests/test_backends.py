import threading
from concurrent.futures import ThreadPoolExecutor

from django.test import override_settings

from infrastructure import backends


def test_threads_asking_first_at_once_share_one_embedded_redis():
    threads = 50
    start = threading.Barrier(threads)

    def count_once(_: int) -> None:
        start.wait(30)
        backends.redis_client().incr("asked")

    backends.reset_clients()
    backends._embedded_redis_server.cache_clear()  # as in a process that has not used it yet
    try:
        with override_settings(REDIS_URL=""):
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(count_once, range(threads)))
            assert backends.redis_client().get("asked") == str(threads)
    finally:
        backends.reset_clients()


def test_on_a_redis_cluster_each_key_goes_to_its_slots_node_and_tagged_keys_share_one(
    backends_on_private_redis_cluster,
):
    import redis

    from infrastructure import namespace

    client = backends.redis_client()
    assert isinstance(client, redis.RedisCluster)
    plain = [f"spread:{n}" for n in range(30)]
    for name in plain:
        client.set(name, name)
    holders = {}
    for node in backends_on_private_redis_cluster.primaries():
        direct = redis.Redis(port=node.port, decode_responses=True)
        holders[node.port] = set(direct.keys("spread:*"))
        direct.close()
    assert set().union(*holders.values()) == set(plain)
    assert sum(1 for held in holders.values() if held) == 3, "thirty keys spread over the three primaries"

    together = [namespace.tagged("group", f"k{n}") for n in range(5)]
    # One script over several keys: a cluster refuses it unless they share a slot.
    assert backends.run_script("return #KEYS", together, []) == 5
    assert len({client.keyslot(name) for name in together}) == 1


def test_the_read_stores_url_carries_a_replica_sets_write_concern_read_preference_and_retries(mongo_url):
    # What a MongoDB replica set is reached with in production; the server here (FerretDB) has no
    # replica set, so the set's name itself cannot be tested, the rest can.
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(mongo_url)
    url = urlunsplit(parts._replace(query="retryWrites=true&w=majority&readPreference=primaryPreferred"))
    backends.reset_clients()
    try:
        with override_settings(MONGO_URL=url):
            database = backends.mongo_db(f"urltest_{threading.get_ident()}")
            assert database.client.write_concern.document == {"w": "majority"}
            assert database.client.read_preference.mongos_mode == "primaryPreferred"
            assert database.client.options.retry_writes
            database.things.insert_one({"_id": 1})
            assert database.things.find_one({"_id": 1}) == {"_id": 1}
            database.client.drop_database(database.name)
    finally:
        backends.reset_clients()
