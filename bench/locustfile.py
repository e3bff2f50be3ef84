"""Locust users for the stream API, for those who want Locust's web UI and live charts.

    .venv/bin/pip install -r requirements-bench.txt
    .venv/bin/locust -f bench/locustfile.py --host http://127.0.0.1:8000

`Collector` users follow Pull-Next with multipart reads on a few ISPBs (at most 6 streams per
ISPB are accepted, so run at most 6 x PIX_BENCH_ISPBS collectors); `Producer` users create
messages for the same ISPBs. Locust reports request rates and durations. Latency from
creation to receipt, duplicates and missing messages need `python -m bench`.
"""

import os
import random

from locust import HttpUser, between, constant, task

ISPBS = [f"{90_000_000 + n:08d}" for n in range(int(os.environ.get("PIX_BENCH_ISPBS", "5")))]
MULTIPART = {"Accept": "multipart/json"}
# Locust groups requests by name; stream ids would make every link a group of its own.
READ_NAME = "/api/pix/[ispb]/stream/[link]"


class Collector(HttpUser):
    """One stream: start, follow Pull-Next, and close it when the user stops."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.ispb = random.choice(ISPBS)
        self.link: str | None = None

    def on_stop(self) -> None:
        if self.link is not None:
            self.client.delete(self.link, name=READ_NAME)

    @task
    def read(self) -> None:
        path = self.link or f"/api/pix/{self.ispb}/stream/start"
        with self.client.get(
            path, headers=MULTIPART, name=READ_NAME, catch_response=True
        ) as response:
            if response.status_code in (200, 204):
                self.link = response.headers["pull-next"]
                response.success()
            elif response.status_code in (404, 410):
                self.link = None
                response.failure(f"stream ended: {response.status_code}")
            elif response.status_code == 429:
                # The ISPB already has 6 streams: not an error of the API.
                response.success()
                self.ispb = random.choice(ISPBS)


class Producer(HttpUser):
    """Create a few messages for a random ISPB about twice a second."""

    wait_time = between(0.3, 0.7)

    @task
    def create(self) -> None:
        ispb = random.choice(ISPBS)
        self.client.post(f"/api/util/msgs/{ispb}/{random.randint(1, 10)}",
                         name="/api/util/msgs/[ispb]/[n]")  # fmt: skip
