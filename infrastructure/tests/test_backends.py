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
