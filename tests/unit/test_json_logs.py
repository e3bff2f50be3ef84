"""JsonFormatter: one JSON object per record, with `extra` fields and exceptions."""

import io
import json
import logging

from chalicelib.logs import JsonFormatter


def format_record(logger_name: str, level: int, *args: object, **kwargs: object) -> dict:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(logger_name)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        logger.log(level, *args, **kwargs)  # type: ignore[arg-type]
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    document: dict = json.loads(lines[0])
    return document


def test_formatter_applies_percent_arguments() -> None:
    document = format_record("pix.test", logging.INFO, "freed %d slots of %s", 3, "12345678")

    assert document["message"] == "freed 3 slots of 12345678"
    assert document["level"] == "INFO"
    assert document["logger"] == "pix.test"
    assert document["timestamp"].endswith("Z")


def test_formatter_adds_extra_fields() -> None:
    document = format_record(
        "pix.test", logging.INFO, "stream opened", extra={"ispb": "12345678", "link": 2}
    )

    assert document["ispb"] == "12345678"
    assert document["link"] == 2
    assert "args" not in document
    assert "msg" not in document


def test_formatter_keeps_exception_on_one_line() -> None:
    try:
        raise RuntimeError("store failed")
    except RuntimeError:
        document = format_record("pix.test", logging.ERROR, "unhandled", exc_info=True)

    assert "RuntimeError: store failed" in document["exception"]
    assert document["level"] == "ERROR"
