"""How a stream under competition picks its batch from the oldest pending messages."""

import zlib

from chalicelib.store import QueueEntry
from chalicelib.streams import pick_share

SPREAD = 6


def entries(count: int) -> list[QueueEntry]:
    return [QueueEntry(f"E{n:031d}", "{}", f"{n:013d}#E{n:031d}") for n in range(count)]


def share_of(entry: QueueEntry) -> int:
    return zlib.crc32(entry.end_to_end_id.encode()) % SPREAD


def test_slots_pick_disjoint_batches() -> None:
    oldest = entries(60)

    batches = [pick_share(oldest, slot, SPREAD, 10)[0] for slot in range(SPREAD)]

    picked = [e.end_to_end_id for batch in batches for e in batch]
    assert len(picked) == len(set(picked))
    for slot, batch in enumerate(batches):
        assert batch
        assert {share_of(e) for e in batch} == {slot}


def test_batch_keeps_order_and_size() -> None:
    oldest = entries(200)

    batch, spare = pick_share(oldest, 2, SPREAD, 10)

    assert len(batch) == 10
    assert [e.queue_sort for e in batch] == sorted(e.queue_sort for e in batch)
    assert spare == [e for e in oldest if share_of(e) == 2][10:]


def test_empty_share_takes_oldest() -> None:
    others = [e for e in entries(60) if share_of(e) != 4]

    batch, spare = pick_share(others, 4, SPREAD, 10)

    assert batch == others[:10]
    assert spare == []
