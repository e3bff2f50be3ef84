"""JSON Lines output that writes each ``endToEndId`` once."""

import json
import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from pixcollect.protocol import Message, end_to_end_id

logger = logging.getLogger(__name__)


class MessageWriter:
    """Append-only JSON Lines output, one message per line, deduplicated by ``endToEndId``.

    A message whose ``endToEndId`` was written before, in this run or (for a file) in an
    earlier run, is dropped. A message without ``endToEndId`` is written every time it
    arrives, because there is nothing to deduplicate it on.
    """

    def __init__(
        self,
        stream: BinaryIO,
        seen_ids: set[str] | None = None,
        *,
        starts_mid_line: bool = False,
        owns_stream: bool = False,
    ) -> None:
        self._stream = stream
        self._seen_ids = seen_ids if seen_ids is not None else set()
        self._starts_mid_line = starts_mid_line
        self._owns_stream = owns_stream
        self._sync_to_disk = _is_regular_file(stream)
        self.written = 0
        self.duplicates = 0

    @classmethod
    def append_to(cls, path: Path) -> Self:
        """Open ``path`` for appending and load the ``endToEndId`` of every line in it."""
        seen_ids, ends_mid_line = _load_ids(path)
        stream = path.open("ab")
        return cls(stream, seen_ids, starts_mid_line=ends_mid_line, owns_stream=True)

    def write_batch(self, messages: Iterable[Message]) -> int:
        """Write the messages not written before and return how many were written.

        The batch goes out in one write, then is flushed and, for a regular file, synced to
        disk. The caller confirms the batch to the server only after this returns, so a
        confirmed message is always on disk. Raises OSError when the output fails.
        """
        lines: list[bytes] = []
        # Ids join _seen_ids only after the write succeeds, so that a failed batch can be
        # written again.
        batch_ids: set[str] = set()
        duplicates = 0
        for message in messages:
            message_id = end_to_end_id(message)
            if message_id is None:
                logger.warning("message without a string endToEndId is written without dedup")
            elif message_id in self._seen_ids or message_id in batch_ids:
                duplicates += 1
                continue
            else:
                batch_ids.add(message_id)
            # NOTE: `valor` was parsed into a float, which keeps 15 significant digits and
            # writes 90.20 as 90.2.
            line = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
            lines.append(line.encode() + b"\n")
        self.duplicates += duplicates
        count = len(lines)
        if count == 0:
            return 0

        if self._starts_mid_line:
            # An earlier run was killed halfway through a line, so start on a new one.
            lines.insert(0, b"\n")
            self._starts_mid_line = False
        self._stream.write(b"".join(lines))
        self._stream.flush()
        if self._sync_to_disk:
            os.fsync(self._stream.fileno())

        self._seen_ids.update(batch_ids)
        self.written += count
        return count

    def close(self) -> None:
        if self._owns_stream:
            self._stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _is_regular_file(stream: BinaryIO) -> bool:
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError):
        # In-memory streams have no file descriptor.
        return False


def _load_ids(path: Path) -> tuple[set[str], bool]:
    """Read the ``endToEndId`` of each line in an existing output file.

    Returns the ids and whether the file ends without a newline. Lines that are not valid
    JSON are skipped with a warning. The last line of a run that was killed mid-write is such
    a line, and its message is written again when the server delivers it again.
    """
    seen_ids: set[str] = set()
    if not path.exists():
        return seen_ids, False

    invalid_lines = 0
    ends_mid_line = False
    with path.open("rb") as stream:
        for line in stream:
            ends_mid_line = not line.endswith(b"\n")
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError):
                invalid_lines += 1
                continue
            message_id = end_to_end_id(message) if isinstance(message, dict) else None
            if message_id is not None:
                seen_ids.add(message_id)

    if invalid_lines:
        logger.warning("skipped %d lines of %s that are not valid JSON", invalid_lines, path)
    logger.info("loaded %d endToEndIds already written to %s", len(seen_ids), path)
    return seen_ids, ends_mid_line
