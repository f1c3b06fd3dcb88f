import threading

from infrastructure.messaging import workers


def test_registered_roles_run_in_the_background_until_stopped():
    ran = threading.Event()
    stopped = threading.Event()

    def loop(stop: threading.Event) -> None:
        ran.set()
        stop.wait()
        stopped.set()

    workers.register("test-role", loop)
    try:
        assert "test-role" in workers.start_embedded()
        assert ran.wait(5)
        assert "test-role" not in workers.start_embedded(), "a running role is not started twice"
        workers.stop_embedded()
        assert stopped.is_set()
    finally:
        workers._roles.pop("test-role", None)


def test_a_crashing_role_is_logged_not_raised(caplog):
    def loop(stop: threading.Event) -> None:
        raise ValueError("bad loop")

    workers.register("crashing-role", loop)
    try:
        workers.start_embedded()
        workers.stop_embedded()
        assert any("embedded role crashing-role stopped with an error" in r.message for r in caplog.records)
    finally:
        workers._roles.pop("crashing-role", None)
