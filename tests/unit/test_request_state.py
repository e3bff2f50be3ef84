"""Per-thread request state that localdev.server gives the app, without a server."""

import threading

from chalice import Chalice

from localdev.server import make_request_state_per_thread

THREADS = 8


def test_each_thread_sees_own_request() -> None:
    app = Chalice(app_name="per-thread")
    make_request_state_per_thread(app)
    barrier = threading.Barrier(THREADS)
    seen: dict[int, tuple[object, object]] = {}

    def handle(index: int) -> None:
        app.current_request = f"request-{index}"
        app.lambda_context = f"context-{index}"
        # Every thread has set its values before any reads them back.
        barrier.wait()
        seen[index] = (app.current_request, app.lambda_context)

    threads = [threading.Thread(target=handle, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    for index in range(THREADS):
        assert seen[index] == (f"request-{index}", f"context-{index}")


def test_unset_request_state_is_none() -> None:
    app = Chalice(app_name="per-thread")
    make_request_state_per_thread(app)

    assert app.current_request is None
    assert app.lambda_context is None


def test_conversion_is_idempotent() -> None:
    app = Chalice(app_name="per-thread")
    make_request_state_per_thread(app)
    converted = type(app)

    make_request_state_per_thread(app)

    assert type(app) is converted
    assert isinstance(app, Chalice)


def test_chalice_class_is_unchanged() -> None:
    app = Chalice(app_name="per-thread")
    make_request_state_per_thread(app)
    plain = Chalice(app_name="plain")

    plain.current_request = "shared"

    assert type(plain) is Chalice
    assert plain.current_request == "shared"
    assert app.current_request is None
