"""Drain one ISPB through StreamService directly, without HTTP, to measure the store's ceiling.

    python -m bench.ceiling                  # 20,000 messages, 6 threads
    python -m bench.ceiling --messages 5000 --collectors 3

The threads run the same read path as the API: a start, then reads that follow each link.
They run in one process against a private DynamoDB Local, so their rate is what DynamoDB
Local serves this access pattern on this machine. The drain scenario of `python -m bench`
adds HTTP, `chalice local` and the load client on the same cores.
"""

import argparse
import statistics
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from chalicelib.config import Settings
from chalicelib.messages import generate_messages
from chalicelib.runtime import build_runtime
from localdev.dynamodb_local import DynamoDBLocal, local_client
from localdev.schema import create_table

ISPB = "12345678"
INSERT_BATCH = 1000


@dataclass
class Progress:
    """Messages received so far, sampled once a second."""

    received: int = 0
    samples: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, count: int) -> None:
        with self.lock:
            self.received += count


def drain_messages(messages: int, collectors: int) -> dict[str, float]:
    """Preload `messages` and drain them with `collectors` threads, then return the rates."""
    with DynamoDBLocal() as dynamodb:
        client = local_client(dynamodb.endpoint)
        create_table(client, "pix-stream-ceiling")
        settings = Settings(table_name="pix-stream-ceiling", wait_seconds=0.0)
        runtime = build_runtime(settings, client=client)
        now = datetime.now(UTC)
        for start in range(0, messages, INSERT_BATCH):
            count = min(INSERT_BATCH, messages - start)
            runtime.store.insert_messages(generate_messages(ISPB, count, now))

        progress = Progress()
        done = threading.Event()

        def collect() -> None:
            result = runtime.streams.start(ISPB, settings.batch_size, time.monotonic())
            while result.end_to_end_ids:
                progress.add(len(result.end_to_end_ids))
                result = runtime.streams.read(
                    ISPB, result.link_id, settings.batch_size, time.monotonic()
                )
            runtime.streams.close(ISPB, result.link_id)

        def sample() -> None:
            while not done.wait(1.0):
                progress.samples.append(progress.received)

        began = time.monotonic()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        threads = [threading.Thread(target=collect) for _ in range(collectors)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.monotonic() - began
        done.set()

    per_second = [b - a for a, b in zip(progress.samples, progress.samples[1:], strict=False)]
    second_half = per_second[len(per_second) // 2 :]
    return {
        "messages": progress.received,
        "seconds": round(seconds, 2),
        "messages_per_second": round(progress.received / seconds, 1),
        "second_half_messages_per_second": (
            round(statistics.fmean(second_half), 1) if second_half else float("nan")
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--collectors", type=int, default=6)
    args = parser.parse_args()
    print(drain_messages(args.messages, args.collectors))


if __name__ == "__main__":
    main()
