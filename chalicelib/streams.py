"""Stream lifecycle: open, read, confirm, close and expire.

A stream's reads are numbered by link: the reply to a read on link ``k`` that carries
messages points to link ``k + 1``, and a read on link ``k`` confirms every read before it.
So at any time a stream has at most one unconfirmed batch: the one its newest read
delivered. The transaction that claims a batch also confirms the reads before it.

A process remembers the streams it served last. A read that this memory shows on the
stream's newest link, with enough lease left for the whole wait, goes straight to the
queue: the claim transaction checks the stream anyway, and rejects a read that another
request or process has moved past.
"""

import logging
import re
import secrets
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from chalicelib import observability, tracing
from chalicelib.config import Settings
from chalicelib.errors import StoreUnavailable, StreamGone, StreamLimitReached, StreamNotFound
from chalicelib.polling import LongPoll, PendingSignal
from chalicelib.store import (
    OPEN_SHARDS,
    STATE_CLOSED,
    STATE_EXPIRED,
    STATE_OPEN,
    PixStore,
    QueueEntry,
    StreamRecord,
    open_shard,
)

logger = logging.getLogger(__name__)

LINK_PATTERN = re.compile(r"\A([0-9a-f]{32})-([1-9][0-9]{0,9})\Z")

# A read that finds pending messages but loses every claim to other streams queries again at
# once, this many times, before it waits like an empty read.
CLAIM_ROUNDS = 3

# After a read loses a claim to another stream of its ISPB, the stream claims from its own
# share of the queue for this many reads (see pick_share). A stream that meets no
# competition claims the oldest messages, which keeps a lone stream's deliveries in
# arrival order.
CONTENTION_READS = 100

# A read under competition looks at this many times `claim_spread` batches of the oldest
# pending messages. It claims a batch of its own share and keeps the rest of that share for
# its next read, which then claims without querying the queue first.
READ_AHEAD = 2

# Streams whose spare share a process keeps, each at most READ_AHEAD batches of bodies.
AHEAD_LIMIT = 1_000

# Per-process memory of streams and ISPBs is dropped past this many entries. Losing it only
# costs a spread claim, a reap or a stream read that was not needed.
MEMORY_LIMIT = 10_000

# A read skips reading its stream first only if the stream's lease outlasts the read's wait
# by this share of the lease, which leaves time for the write that ends the read.
LEASE_MARGIN_SHARE = 0.25


@dataclass(frozen=True)
class ReadResult:
    """The outcome of a read: its messages (none for a 204) and the link to follow next."""

    ispb: str
    stream_id: str
    link: int
    bodies: tuple[str, ...]
    end_to_end_ids: tuple[str, ...]
    polls: int = 0
    retried: bool = False

    @property
    def link_id(self) -> str:
        return make_link_id(self.stream_id, self.link)


@dataclass(frozen=True)
class ReadPlan:
    """One read of a stream: which link it serves, as which attempt, and how it claims."""

    ispb: str
    stream_id: str
    link: int
    attempt: str
    slot: int
    batch_size: int
    # Queue position of the stream's newest delivery, or None before its first one.
    last_sort: str | None
    # Whether the read before this one delivered messages that the stream has not confirmed.
    unconfirmed: bool = False


@dataclass(frozen=True)
class KnownStream:
    """The state this process last wrote to a stream, enough to skip reading the stream item."""

    ispb: str
    link: int
    slot: int
    last_sort: str | None
    lease_until: float
    # Whether the read before `link` delivered messages that the stream has not confirmed.
    unconfirmed: bool = False


class _ClaimRejected(Exception):
    """The stream rejected a read's claim; `item` is the stream item as it was."""

    def __init__(self, item: dict[str, object] | None) -> None:
        super().__init__("the stream rejected the claim")
        self.item = item


def make_link_id(stream_id: str, link: int) -> str:
    return f"{stream_id}-{link}"


def parse_link_id(ispb: str, link_id: str) -> tuple[str, int]:
    """Split a link id into stream id and link number; malformed ids are not found."""
    match = LINK_PATTERN.match(link_id)
    if match is None:
        raise StreamNotFound(ispb, link_id)
    return match.group(1), int(match.group(2))


def pick_share(
    entries: Sequence[QueueEntry], slot: int, spread: int, size: int
) -> tuple[list[QueueEntry], list[QueueEntry]]:
    """Choose the batch a stream should claim from the oldest pending messages.

    Each message belongs to one of `spread` shares, by a hash of its endToEndId. Stream
    slot ``s`` takes only messages of share ``s``, so concurrent streams of one ISPB claim
    different messages instead of racing for the same oldest ones. When its share has none
    among `entries`, it takes the oldest, so a share with no stream is still read.

    Returns the batch, in arrival order, and the rest of the stream's share among `entries`,
    which its next reads can claim without asking the queue again.
    """
    own = [e for e in entries if zlib.crc32(e.end_to_end_id.encode()) % spread == slot]
    if not own:
        return list(entries[:size]), []
    return own[:size], own[size:]


class StreamService:
    def __init__(
        self,
        store: PixStore,
        settings: Settings,
        signal: PendingSignal,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
    ) -> None:
        self._store = store
        self._settings = settings
        self._signal = signal
        self._clock = clock
        self._monotonic = monotonic
        self._poll = LongPoll(
            signal, settings.poll_min_seconds, settings.poll_max_seconds, clock=monotonic
        )
        # Reads left in which each stream spreads its claims (see CONTENTION_READS).
        self._contended: dict[str, int] = {}
        # Per ISPB, a time before which none of its open streams can expire, learnt from its
        # last reap. Leases only move later, so a full ISPB is not reaped again before then.
        self._no_expiry_before: dict[str, float] = {}
        # The streams this process served last, by stream id (see KnownStream).
        self._known: dict[str, KnownStream] = {}
        # Per stream, the next link and the pending messages of its share that its previous
        # read saw but did not claim (see READ_AHEAD).
        self._ahead: dict[str, tuple[int, tuple[QueueEntry, ...]]] = {}
        # Streams this process closed, so that its reads still waiting on them end at once.
        self._closed: set[str] = set()

    def _lease_until(self, wait_ends: float | None = None) -> float:
        """Return when a lease taken now ends: a lease after now, or after a wait.

        A request that may wait takes its lease from `wait_ends`, the clock time its wait
        runs out, so that after a `204` the client still has a whole lease to come back.
        """
        return (self._clock() if wait_ends is None else wait_ends) + self._settings.lease_seconds

    def _wait_ends(self, deadline: float) -> float:
        """Return the clock time at which a wait that ends at monotonic `deadline` runs out."""
        return self._clock() + max(0.0, deadline - self._monotonic())

    # Opening

    def start(self, ispb: str, batch_size: int, deadline: float) -> ReadResult:
        """Open a stream for `ispb` and run its first read; raise if the ISPB is full."""
        stream_id = secrets.token_hex(16)
        attempt = secrets.token_hex(8)
        # Streams started at the same moment get different counts, so once they compete
        # they claim from different windows. The slot only spreads claims: two streams that
        # share one still never share a message, and a stream that meets no competition
        # claims the oldest messages whatever its slot.
        # NOTE: a process that dies between this count and the open, or a store failure
        # that also defeats the decrement below, leaves the count too high. That only
        # shifts the slots of later streams.
        claimants = self._store.add_claimants(ispb, 1)
        slot = (claimants - 1) % self._settings.claim_spread
        lease_until = self._lease_until(self._wait_ends(deadline))
        try:
            opened = self._open_or_reap(ispb, stream_id, slot, lease_until)
        except StoreUnavailable:
            self._store.add_claimants(ispb, -1)
            raise
        if not opened:
            self._store.add_claimants(ispb, -1)
            observability.count("limit_rejections")
            raise StreamLimitReached(ispb, self._settings.stream_limit)
        logger.info("stream opened", extra={"ispb": ispb, "stream": stream_id})
        self._remember(stream_id, KnownStream(ispb, 1, slot, None, lease_until))
        try:
            plan = ReadPlan(ispb, stream_id, 1, attempt, slot, batch_size, None)
            return self._poll_read(plan, deadline, renewed=True)
        except StoreUnavailable:
            self._close_unannounced(ispb, stream_id)
            raise

    def _close_unannounced(self, ispb: str, stream_id: str) -> None:
        """Close a stream whose first reply failed, so its slot is free before its lease ends.

        No client received a link of this stream, so no client saw what it delivered. If the
        store still fails, the stream expires after its lease instead.
        """
        try:
            self.close(ispb, make_link_id(stream_id, 1))
        except (StoreUnavailable, StreamGone) as exc:
            logger.warning(
                "could not close stream %s after its first read failed: %s",
                stream_id,
                exc,
                extra={"ispb": ispb, "stream": stream_id},
            )

    def _open_or_reap(self, ispb: str, stream_id: str, slot: int, lease_until: float) -> bool:
        limit = self._settings.stream_limit

        def try_open() -> bool:
            return self._store.open_stream(ispb, stream_id, limit, lease_until, slot)

        # Expired streams may still hold slots: free them, then try once more.
        return try_open() or (bool(self.reap_ispb(ispb)) and try_open())

    def _remember(self, stream_id: str, known: KnownStream) -> None:
        if len(self._known) >= MEMORY_LIMIT:
            self._known.clear()
        self._known[stream_id] = known

    # Reading

    def read(self, ispb: str, link_id: str, batch_size: int, deadline: float) -> ReadResult:
        """Read on a link: confirm earlier reads, then wait for new messages."""
        stream_id, link = parse_link_id(ispb, link_id)
        attempt = secrets.token_hex(8)
        known = self._known.get(stream_id)
        wait_ends = self._wait_ends(deadline)
        if (
            known is not None
            and known.ispb == ispb
            and known.link == link
            and known.lease_until > wait_ends + self._settings.lease_seconds * LEASE_MARGIN_SHARE
        ):
            plan = ReadPlan(
                ispb,
                stream_id,
                link,
                attempt,
                known.slot,
                batch_size,
                known.last_sort,
                known.unconfirmed,
            )
            return self._poll_read(plan, deadline, renewed=False)
        lease_until = self._lease_until(wait_ends)
        began = self._store.begin_read(ispb, stream_id, link, lease_until)
        if not began.applied:
            return self._rejected_read(ispb, link_id, stream_id, link, began.item)
        assert began.item is not None
        before = StreamRecord.from_item(began.item)
        self._remember(
            stream_id, KnownStream(ispb, link, before.slot, before.last_sort, lease_until)
        )
        plan = ReadPlan(ispb, stream_id, link, attempt, before.slot, batch_size, before.last_sort)
        return self._poll_read(plan, deadline, renewed=True)

    def _rejected_read(
        self, ispb: str, link_id: str, stream_id: str, link: int, item: dict[str, object] | None
    ) -> ReadResult:
        self._known.pop(stream_id, None)
        self._ahead.pop(stream_id, None)
        stream = self._visible_stream(ispb, link_id, item)
        self._raise_if_ended(stream, link_id)
        if link > stream.link:
            raise StreamNotFound(ispb, link_id)
        if link == stream.link - 1 and stream.inflight_read == link and stream.acked < link:
            return self._repeat_read(stream, link_id)
        raise StreamGone(link_id, "a newer link of this stream has been issued")

    def _visible_stream(
        self, ispb: str, link_id: str, item: dict[str, object] | None
    ) -> StreamRecord:
        if item is None:
            raise StreamNotFound(ispb, link_id)
        stream = StreamRecord.from_item(item)
        if stream.ispb != ispb:
            raise StreamNotFound(ispb, link_id)
        return stream

    def _raise_if_ended(self, stream: StreamRecord, link_id: str) -> None:
        if stream.state == STATE_CLOSED:
            self._finish_if_listed(stream)
            raise StreamGone(link_id, "the stream was closed")
        if stream.state == STATE_EXPIRED:
            self._finish_if_listed(stream)
            raise StreamGone(link_id, "the stream expired")
        if stream.lease_until <= self._clock():
            self.expire(stream)
            raise StreamGone(link_id, "the stream expired")

    def _repeat_read(self, stream: StreamRecord, link_id: str) -> ReadResult:
        """Return again what the stream's newest read delivered, for a client that lost it."""
        renewed = self._store.renew_lease(
            stream.stream_id, stream.link, stream.acked, self._lease_until()
        )
        if not renewed.applied:
            raise StreamGone(link_id, "the stream changed while the read was repeated")
        bodies = self._store.message_bodies(stream.inflight_ids)
        logger.info(
            "read repeated",
            extra={"ispb": stream.ispb, "stream": stream.stream_id, "link": stream.link - 1},
        )
        return ReadResult(
            ispb=stream.ispb,
            stream_id=stream.stream_id,
            link=stream.link,
            bodies=tuple(bodies[i] for i in stream.inflight_ids),
            end_to_end_ids=stream.inflight_ids,
            retried=True,
        )

    def _poll_read(self, plan: ReadPlan, deadline: float, renewed: bool) -> ReadResult:
        """Wait for messages and claim them. `renewed` is True when the read renewed the lease."""
        ispb, stream_id, link = plan.ispb, plan.stream_id, plan.link
        link_id = make_link_id(stream_id, link)
        # A read served from memory has not yet confirmed the batch the client holds. If it
        # finds nothing to claim, it confirms that batch before it waits, so that a process
        # dying during the wait cannot leave the batch to expire unconfirmed.
        confirm_before_wait = not renewed and plan.unconfirmed

        def claim_once() -> list[QueueEntry] | None:
            nonlocal confirm_before_wait
            if stream_id in self._closed:
                raise _ClaimRejected(self._store.get_stream_item(stream_id))
            with tracing.subsegment("LongPollAttempt") as span:
                span.annotate("ispb", ispb)
                span.annotate("stream_id", stream_id)
                claimed = self._claim(plan)
                span.metadata("claimed", len(claimed or ()))
            if not claimed and confirm_before_wait and self._monotonic() < deadline:
                self._confirm_reads(plan, self._lease_until(self._wait_ends(deadline)))
                confirm_before_wait = False
            return claimed

        began = self._monotonic()
        try:
            claimed, polls = self._poll.run(ispb, deadline, claim_once)
        except _ClaimRejected as rejected:
            return self._rejected_read(ispb, link_id, stream_id, link, rejected.item)
        finally:
            observability.count("wait_ms", round((self._monotonic() - began) * 1000))
        observability.count("polls", polls)
        observability.count("empty_polls", polls - (1 if claimed else 0))
        if claimed:
            return ReadResult(
                ispb,
                stream_id,
                link + 1,
                tuple(e.body for e in claimed),
                tuple(e.end_to_end_id for e in claimed),
                polls=polls,
            )
        if not renewed:
            # A read served from memory renews the lease after an empty wait, which also
            # finds a stream that another process closed meanwhile.
            try:
                self._confirm_reads(plan, self._lease_until())
            except _ClaimRejected as rejected:
                return self._rejected_read(ispb, link_id, stream_id, link, rejected.item)
        return ReadResult(ispb, stream_id, link, (), (), polls=polls)

    def _confirm_reads(self, plan: ReadPlan, lease_until: float) -> None:
        """Confirm the reads before `plan.link` and renew the lease; raise if the stream ended."""
        began = self._store.begin_read(plan.ispb, plan.stream_id, plan.link, lease_until)
        if not began.applied:
            raise _ClaimRejected(began.item)
        known = KnownStream(plan.ispb, plan.link, plan.slot, plan.last_sort, lease_until)
        self._remember(plan.stream_id, known)

    def _claim(self, plan: ReadPlan) -> list[QueueEntry] | None:
        ispb, stream_id, link, attempt = plan.ispb, plan.stream_id, plan.link, plan.attempt
        for _ in range(CLAIM_ROUNDS):
            window, spare, left = self._choose(plan)
            if not window and self._reap_when_idle(ispb):
                window, spare, left = self._choose(plan)
            if not window:
                return None
            while window:
                newest = max(e.queue_sort for e in window)
                lease_until = self._lease_until()
                outcome = self._store.claim_read(
                    ispb, window, stream_id, link, attempt, lease_until, newest
                )
                if outcome.rejected:
                    raise _ClaimRejected(outcome.stream)
                self._note_contention(stream_id, lost=bool(outcome.lost))
                if outcome.applied:
                    self._remember(
                        stream_id,
                        KnownStream(ispb, link + 1, plan.slot, newest, lease_until, True),
                    )
                    self._keep_ahead(stream_id, link + 1, spare[: plan.batch_size * READ_AHEAD])
                    if left:
                        # Others of this ISPB may be waiting for what this read left behind.
                        self._signal.notify(ispb, waiters=left)
                    return window
                # Other streams took some of the window: claim the rest, which the
                # transaction left pending, without asking the queue again.
                window = [e for e in window if e.end_to_end_id not in outcome.lost]
        return None

    def _choose(self, plan: ReadPlan) -> tuple[list[QueueEntry], list[QueueEntry], int]:
        """Pick the batch a read claims.

        Returns the batch, the rest of the stream's share that the next read may claim, and
        how many other pending messages the read saw.
        """
        batch_size, spread = plan.batch_size, self._settings.claim_spread
        ahead = self._ahead.pop(plan.stream_id, None)
        if ahead is not None and ahead[0] == plan.link and len(ahead[1]) >= batch_size:
            # A full batch of this stream's share, seen by its previous read.
            return list(ahead[1][:batch_size]), list(ahead[1][batch_size:]), 0
        spreading = batch_size > 1 and spread > 1 and self._contended.get(plan.stream_id, 0) > 0
        limit = batch_size * spread * READ_AHEAD if spreading else batch_size
        pending = self._store.pending_messages(plan.ispb, limit)
        # Messages after the stream's newest delivery keep its order. Older ones, left by a
        # lost race or returned by an ended stream, are taken when nothing newer is among
        # the candidates, so they are never left behind.
        newer = [e for e in pending if plan.last_sort is None or e.queue_sort > plan.last_sort]
        candidates = newer or pending
        if spreading:
            window, spare = pick_share(candidates, plan.slot, spread, batch_size)
        else:
            window, spare = list(candidates[:batch_size]), []
        return window, spare, len(pending) - len(window) - len(spare)

    def _keep_ahead(self, stream_id: str, link: int, spare: list[QueueEntry]) -> None:
        if not spare:
            return
        if len(self._ahead) >= AHEAD_LIMIT:
            self._ahead.clear()
        self._ahead[stream_id] = (link, tuple(spare))

    def _note_contention(self, stream_id: str, lost: bool) -> None:
        if lost:
            if len(self._contended) >= MEMORY_LIMIT:
                self._contended.clear()
            self._contended[stream_id] = CONTENTION_READS
            return
        left = self._contended.pop(stream_id, 0) - 1
        if left > 0:
            self._contended[stream_id] = left

    # Closing and expiry

    def close(self, ispb: str, link_id: str) -> None:
        """Close a stream: confirm what its reads before `link_id` delivered, free its slot."""
        stream_id, link = parse_link_id(ispb, link_id)
        self._known.pop(stream_id, None)
        self._ahead.pop(stream_id, None)
        for _ in range(3):
            stream = self._visible_stream(ispb, link_id, self._store.get_stream_item(stream_id))
            if link > stream.link:
                raise StreamNotFound(ispb, link_id)
            if stream.state == STATE_CLOSED:
                # A repeated DELETE also finishes a close whose tidying up failed.
                self._finish_if_listed(stream)
                if link != stream.acked + 1:
                    # Only the link that closed the stream may repeat its DELETE.
                    raise StreamGone(link_id, "the stream was closed")
                return
            self._raise_if_ended(stream, link_id)
            if link < stream.link:
                # The newest read delivered messages after this link. The client may have
                # them (a GET racing this DELETE), or may have lost the reply, which a
                # repeated GET fetches again. So they stay with the stream until a DELETE on
                # its newest link confirms them or the stream expires.
                raise StreamGone(
                    link_id, "a newer link of this stream has been issued; DELETE the newest link"
                )
            ended = self._store.end_stream(
                stream,
                STATE_CLOSED,
                "link = :link AND acked = :old_acked AND lease_until > :now",
                {
                    ":link": {"N": str(stream.link)},
                    ":old_acked": {"N": str(stream.acked)},
                    ":now": {"N": repr(self._clock())},
                },
                acked=link - 1,
            )
            if ended.applied:
                logger.info(
                    "stream closed", extra={"ispb": ispb, "stream": stream_id, "link": link}
                )
                if len(self._closed) >= MEMORY_LIMIT:
                    self._closed.clear()
                self._closed.add(stream_id)
                self._signal.notify(ispb)
                self._finish(replace(stream, state=STATE_CLOSED, acked=link - 1))
                return
        raise StreamGone(link_id, "the stream kept changing while it was being closed")

    def expire(self, stream: StreamRecord) -> bool:
        """End a stream whose lease has passed; return True if this call freed its slot.

        The write also requires the link and confirmation that `stream` shows, so that a
        stale record cannot make `_finish` release messages that a later read confirmed.
        """
        ended = self._store.end_stream(
            stream,
            STATE_EXPIRED,
            "lease_until <= :now AND link = :link AND acked = :acked",
            {
                ":now": {"N": repr(self._clock())},
                ":link": {"N": str(stream.link)},
                ":acked": {"N": str(stream.acked)},
            },
        )
        if ended.applied:
            observability.count("expired")
            logger.info(
                "stream expired",
                extra={"ispb": stream.ispb, "stream": stream.stream_id, "link": stream.link},
            )
            self._finish(replace(stream, state=STATE_EXPIRED))
        return ended.applied

    def _finish(self, stream: StreamRecord) -> None:
        """Return an ended stream's unconfirmed messages to pending and unlist it."""
        released = 0
        if stream.inflight_read > stream.acked and stream.committed:
            released = self._store.release(stream.ispb, stream.inflight_ids, stream.committed)
        if released:
            observability.count("released", released)
            logger.info(
                "messages returned to pending",
                extra={"ispb": stream.ispb, "stream": stream.stream_id, "messages": released},
            )
        self._store.forget_stream(stream.stream_id)

    def _finish_if_listed(self, stream: StreamRecord) -> None:
        if stream.indexed:
            self._finish(stream)

    def _reap_when_idle(self, ispb: str) -> bool:
        """End the ISPB's expired streams, so their messages return to the waiting reads.

        Runs when a read finds nothing pending. reap_ispb skips the store until the earliest
        lease it last read can have ended. Returns True if it ended any stream.
        """
        try:
            return self.reap_ispb(ispb) > 0
        except StoreUnavailable as exc:
            # The sweep, or the next empty read, ends them instead.
            logger.warning("reaping ISPB %s failed: %s", ispb, exc, extra={"ispb": ispb})
            return False

    def reap_ispb(self, ispb: str) -> int:
        """End the expired streams of one ISPB; return how many slots that freed."""
        now = self._clock()
        if now < self._no_expiry_before.get(ispb, 0.0):
            return 0
        streams = self._store.get_streams(self._store.indexed_stream_ids(open_shard(ispb), ispb))
        freed = self._reap(streams)
        leases = [s.lease_until for s in streams if s.state == STATE_OPEN and s.lease_until > now]
        if len(self._no_expiry_before) >= MEMORY_LIMIT:
            self._no_expiry_before.clear()
        # The index may lag behind a stream opened a moment ago, whose lease can end before
        # the ones seen here. Half a lease bounds how long such a stream waits.
        horizon = now + self._settings.lease_seconds / 2
        self._no_expiry_before[ispb] = min([*leases, horizon])
        return freed

    def sweep(self) -> int:
        """End the expired streams of every ISPB; return how many slots that freed."""
        freed = 0
        for shard in range(OPEN_SHARDS):
            try:
                ids = self._store.indexed_stream_ids(str(shard))
                freed += self._reap(self._store.get_streams(ids))
            except StoreUnavailable as exc:
                # Its streams stay listed, so the next sweep or stream/start tries again.
                logger.warning("sweeping shard %d failed: %s", shard, exc)
        return freed

    def _reap(self, streams: Sequence[StreamRecord]) -> int:
        freed = 0
        now = self._clock()
        for stream in streams:
            if stream.state == STATE_OPEN and stream.lease_until <= now:
                freed += self.expire(stream)
            elif stream.state != STATE_OPEN and stream.indexed:
                # Ended, but the process that ended it stopped before tidying up.
                self._finish(stream)
        return freed
