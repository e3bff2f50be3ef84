"""JSON Lines output and dedup in pixcollect.output."""

import io
import json
from pathlib import Path

import pytest

from pixcollect.output import MessageWriter


def message(end_to_end_id: str, valor: float = 10.5) -> dict[str, object]:
    return {"endToEndId": end_to_end_id, "valor": valor, "campoLivre": "pão"}


def read_lines(data: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in data.decode().splitlines()]


def test_writer_one_line_per_message() -> None:
    stream = io.BytesIO()
    writer = MessageWriter(stream)

    written = writer.write_batch([message("E1"), message("E2")])

    assert written == 2
    assert writer.written == 2
    assert stream.getvalue().count(b"\n") == 2
    assert read_lines(stream.getvalue()) == [message("E1"), message("E2")]


def test_writer_keeps_non_ascii_and_amounts() -> None:
    stream = io.BytesIO()
    writer = MessageWriter(stream)

    writer.write_batch([message("E1", valor=90.20), message("E2", valor=0.1)])

    lines = stream.getvalue().decode().splitlines()
    assert '"campoLivre":"pão"' in lines[0]
    assert '"valor":90.2,' in lines[0]
    assert '"valor":0.1,' in lines[1]


def test_writer_drops_duplicates_across_batches() -> None:
    stream = io.BytesIO()
    writer = MessageWriter(stream)

    writer.write_batch([message("E1"), message("E2")])
    written = writer.write_batch([message("E2"), message("E3"), message("E3")])

    assert written == 1
    assert writer.written == 3
    assert writer.duplicates == 2
    ids = [line["endToEndId"] for line in read_lines(stream.getvalue())]
    assert ids == ["E1", "E2", "E3"]


def test_writer_all_duplicates_writes_nothing() -> None:
    stream = io.BytesIO()
    writer = MessageWriter(stream, {"E1"})

    written = writer.write_batch([message("E1")])

    assert written == 0
    assert stream.getvalue() == b""


def test_writer_message_without_id_always_written() -> None:
    stream = io.BytesIO()
    writer = MessageWriter(stream)

    writer.write_batch([{"valor": 1}])
    writer.write_batch([{"valor": 1}])

    assert writer.written == 2
    assert read_lines(stream.getvalue()) == [{"valor": 1}, {"valor": 1}]


def test_append_to_loads_existing_ids(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text(json.dumps(message("E1")) + "\n" + json.dumps(message("E2")) + "\n")

    with MessageWriter.append_to(path) as writer:
        written = writer.write_batch([message("E2"), message("E3")])

    assert written == 1
    ids = [line["endToEndId"] for line in read_lines(path.read_bytes())]
    assert ids == ["E1", "E2", "E3"]


def test_append_to_creates_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"

    with MessageWriter.append_to(path) as writer:
        writer.write_batch([message("E1")])

    assert read_lines(path.read_bytes()) == [message("E1")]


def test_append_to_after_partial_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text(json.dumps(message("E1")) + "\n\n" + '{"endToEndId": "E2", "val')

    with MessageWriter.append_to(path) as writer:
        written = writer.write_batch([message("E2")])

    assert written == 1
    lines = path.read_text().splitlines()
    assert lines[-2] == '{"endToEndId": "E2", "val'
    assert json.loads(lines[-1]) == message("E2")
    assert "skipped 1 lines" in caplog.text


def test_append_to_partial_line_only_once(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"endToEndId": "E1"')

    with MessageWriter.append_to(path) as writer:
        writer.write_batch([message("E1")])
        writer.write_batch([message("E2")])

    assert path.read_text().count("\n") == 3


class FlakyDisk(io.BytesIO):
    """A stream whose first ``failures`` writes fail with ENOSPC."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def write(self, data: object) -> int:
        if self.failures > 0:
            self.failures -= 1
            raise OSError(28, "No space left on device")
        assert isinstance(data, bytes)
        return super().write(data)


def test_writer_raises_output_errors() -> None:
    writer = MessageWriter(FlakyDisk(failures=1))

    with pytest.raises(OSError, match="No space left"):
        writer.write_batch([message("E1")])
    assert writer.written == 0


def test_writer_failed_batch_not_marked_seen() -> None:
    stream = FlakyDisk(failures=1)
    writer = MessageWriter(stream)

    with pytest.raises(OSError):
        writer.write_batch([message("E1")])
    written = writer.write_batch([message("E1")])

    assert written == 1
    assert read_lines(stream.getvalue()) == [message("E1")]


def test_writer_does_not_close_borrowed_stream() -> None:
    stream = io.BytesIO()

    with MessageWriter(stream) as writer:
        writer.write_batch([message("E1")])

    assert not stream.closed
