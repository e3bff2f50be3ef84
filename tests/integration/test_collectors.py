"""Six collectors of one ISPB in parallel: every message delivered once, none lost."""

import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from tests.integration.api import MULTIPART, create, start
from tests.integration.conftest import ApiServer

COLLECTORS = 6
BATCHES = 3
BATCH_MESSAGES = 100
# The maximum number of reads per collector, which bounds the loop: 300 messages need
# about 30 reads in total.
MAX_READS = 400
# A loaded machine can make DynamoDB Local slower than the app's client timeouts, which the
# app reports as 503. The contract makes repeating the same request safe.
MAX_ATTEMPTS = 5


@pytest.fixture(scope="module")
def long_lease_server(start_server: Callable[..., ApiServer]) -> ApiServer:
    """A fast server whose streams do not expire while a slow machine serves six collectors."""
    return start_server(PIX_LEASE_SECONDS="60")


def get(client: httpx.Client, url: str) -> httpx.Response:
    """GET `url` with multipart/json, repeating it while the store is unavailable (503)."""
    for _ in range(MAX_ATTEMPTS - 1):
        response = client.get(url, headers=MULTIPART)
        if response.status_code != 503:
            return response
        time.sleep(float(response.headers["retry-after"]))
    return client.get(url, headers=MULTIPART)


def create_batch(client: httpx.Client, ispb: str) -> list[str]:
    """Create BATCH_MESSAGES messages, repeating the request while the store is unavailable.

    A request that failed with 503 may have stored some of its messages. They are not in
    the returned list, so the test checks that every listed message arrives, not the reverse.
    """
    for _ in range(MAX_ATTEMPTS):
        response = client.post(f"/api/util/msgs/{ispb}/{BATCH_MESSAGES}")
        if response.status_code != 503:
            break
        time.sleep(float(response.headers["retry-after"]))
    assert response.status_code == 201, response.text
    ids: list[str] = response.json()["endToEndIds"]
    return ids


def collect(base_url: str, ispb: str, creating: threading.Event, found: list[str]) -> None:
    """Follow one stream until a read finds nothing after all messages exist, then close it."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        response = get(client, f"/api/pix/{ispb}/stream/start")
        for _ in range(MAX_READS):
            assert response.status_code in (200, 204), response.text
            if response.status_code == 200:
                found.extend(m["endToEndId"] for m in response.json())
            elif not creating.is_set():
                break
            response = get(client, response.headers["pull-next"])
        assert client.delete(response.headers["pull-next"]).status_code == 200


def test_parallel_collectors_share_no_message(long_lease_server: ApiServer, ispb: str) -> None:
    http = httpx.Client(base_url=long_lease_server.base_url, timeout=30)
    created = create_batch(http, ispb)
    creating = threading.Event()
    creating.set()
    found: list[list[str]] = [[] for _ in range(COLLECTORS)]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            collect(long_lease_server.base_url, ispb, creating, found[index])
        except BaseException as error:  # reported by the assert below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(COLLECTORS)]
    for thread in threads:
        thread.start()
    for _ in range(BATCHES - 1):
        created.extend(create_batch(http, ispb))
    creating.clear()
    for thread in threads:
        thread.join(timeout=120)
    delivered = [end_to_end_id for ids in found for end_to_end_id in ids]
    repeated = [i for i, n in Counter(delivered).items() if n > 1]
    remaining = start(http, ispb)
    http.close()

    assert not errors, "\n".join(map(str, errors))
    assert len(created) == BATCHES * BATCH_MESSAGES
    assert repeated == []
    assert set(created) - set(delivered) == set()
    assert sum(1 for ids in found if ids) > 1
    assert remaining.status_code == 204


def test_each_collector_gets_oldest_first(http: httpx.Client, ispb: str) -> None:
    created = create(http, ispb, 30)

    response = start(http, ispb, headers=MULTIPART)
    ids = [m["endToEndId"] for m in response.json()]
    while True:
        response = http.get(response.headers["pull-next"], headers=MULTIPART)
        if response.status_code == 204:
            break
        ids.extend(m["endToEndId"] for m in response.json())

    assert ids == created
