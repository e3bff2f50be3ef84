"""The pix-collect command line: options, output file, exit status, progress and signals."""

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from pixcollect.cli import main

ISPB = "12345678"
STREAM_PREFIX = f"/api/pix/{ISPB}/stream/"
REPO_ROOT = Path(__file__).resolve().parents[2]


def make_message(number: int) -> dict[str, object]:
    return {"endToEndId": f"E32074986202402211927{number:011d}", "valor": number + 0.5}


class ScriptedServer:
    """One-stream server that hands out batches of up to 10 on links l1, l2, ...

    It returns 204 on the last link once the messages run out, and calls ``on_idle`` then.
    """

    def __init__(self, messages: int) -> None:
        self.pending = [make_message(n) for n in range(messages)]
        self.link_number = 0
        self.requests: list[httpx.Request] = []
        self.on_idle: Callable[[], None] | None = None
        self.start_response: httpx.Response | None = None

    async def handle(self, request: httpx.Request) -> httpx.Response:
        # Suspend as a real request does, so that the other tasks get to run.
        await asyncio.sleep(0)
        self.requests.append(request)
        if request.method == "DELETE":
            return httpx.Response(200, json={})
        if request.url.path.endswith("/start") and self.start_response is not None:
            return self.start_response

        single = request.headers["Accept"] == "application/json"
        size = 1 if single else 10
        batch, self.pending = self.pending[:size], self.pending[size:]
        if not batch:
            if self.on_idle is not None:
                self.on_idle()
            return httpx.Response(204, headers={"Pull-Next": self.link()})
        self.link_number += 1
        body = batch[0] if single else batch
        return httpx.Response(200, json=body, headers={"Pull-Next": self.link()})

    def link(self) -> str:
        return f"{STREAM_PREFIX}l{self.link_number}"

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def deleted(self) -> list[str]:
        return [r.url.path for r in self.requests if r.method == "DELETE"]


class TerminalStringIO(io.StringIO):
    def isatty(self) -> bool:
        return True


def read_ids(path: Path) -> list[str]:
    return [json.loads(line)["endToEndId"] for line in path.read_text().splitlines()]


def test_cli_writes_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = ScriptedServer(25)
    output = tmp_path / "messages.jsonl"

    status = main(
        ["--ispb", ISPB, "--streams", "1", "-o", str(output), "--max-messages", "25"],
        transport=server.transport(),
    )

    assert status == 0
    assert read_ids(output) == [make_message(n)["endToEndId"] for n in range(25)]
    assert server.deleted() == [f"{STREAM_PREFIX}l3"]
    assert "stopped after writing 25 messages (0 duplicates dropped)" in capsys.readouterr().err


def test_cli_defaults_to_stdout_multipart(capsys: pytest.CaptureFixture[str]) -> None:
    server = ScriptedServer(3)

    status = main(["--ispb", ISPB, "--max-messages", "3"], transport=server.transport())

    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [make_message(n) for n in range(3)]
    first = server.requests[0]
    assert first.url == httpx.URL(f"http://127.0.0.1:8000{STREAM_PREFIX}start")
    assert first.headers["Accept"] == "multipart/json"
    assert len(server.deleted()) == 6


def test_cli_single_format(tmp_path: Path) -> None:
    server = ScriptedServer(2)
    output = tmp_path / "messages.jsonl"

    status = main(
        ["--ispb", ISPB, "--streams", "1", "--single", "-o", str(output), "--max-messages", "2"],
        transport=server.transport(),
    )

    assert status == 0
    assert {r.headers["Accept"] for r in server.requests if r.method == "GET"} == {
        "application/json"
    }
    assert len(read_ids(output)) == 2


def test_cli_base_url(tmp_path: Path) -> None:
    server = ScriptedServer(1)

    main(
        [
            "--ispb",
            ISPB,
            "--base-url",
            "http://localhost:9001",
            "--streams",
            "1",
            "-o",
            str(tmp_path / "out.jsonl"),
            "--max-messages",
            "1",
        ],
        transport=server.transport(),
    )

    assert {r.url.netloc for r in server.requests} == {b"localhost:9001"}


def test_cli_skips_ids_already_in_file(tmp_path: Path) -> None:
    output = tmp_path / "messages.jsonl"
    output.write_text("".join(json.dumps(make_message(n)) + "\n" for n in range(5)))
    server = ScriptedServer(10)
    server.on_idle = lambda: os.kill(os.getpid(), signal.SIGTERM)

    status = main(
        ["--ispb", ISPB, "--streams", "1", "-o", str(output)], transport=server.transport()
    )

    assert status == 0
    assert read_ids(output) == [make_message(n)["endToEndId"] for n in range(10)]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cli_signal_closes_streams(
    signum: signal.Signals, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = ScriptedServer(15)
    server.on_idle = lambda: os.kill(os.getpid(), signum)
    output = tmp_path / "messages.jsonl"

    status = main(
        ["--ispb", ISPB, "--streams", "1", "-o", str(output)], transport=server.transport()
    )

    assert status == 0
    assert len(read_ids(output)) == 15
    assert server.deleted() == [f"{STREAM_PREFIX}l2"]
    assert f"received {signum.name}, closing the streams" in capsys.readouterr().err


def test_cli_duration_stops(tmp_path: Path) -> None:
    server = ScriptedServer(0)

    status = main(
        ["--ispb", ISPB, "--streams", "2", "-o", str(tmp_path / "o"), "--duration", "0.3"],
        transport=server.transport(),
    )

    assert status == 0
    assert len(server.deleted()) == 2


def test_cli_rejected_request_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = ScriptedServer(5)
    server.start_response = httpx.Response(
        400,
        json={"type": "about:blank", "title": "Bad Request", "status": 400, "detail": "bad"},
    )

    status = main(
        ["--ispb", ISPB, "--streams", "1", "-o", str(tmp_path / "o")],
        transport=server.transport(),
    )

    assert status == 1
    assert "ERROR stopped: stream 1: GET returned 400: bad" in capsys.readouterr().err


def test_cli_unwritable_output_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = ScriptedServer(5)

    status = main(
        ["--ispb", ISPB, "-o", str(tmp_path / "missing" / "out.jsonl")],
        transport=server.transport(),
    )

    assert status == 1
    assert "cannot open the output file" in capsys.readouterr().err
    assert server.requests == []


@pytest.mark.parametrize(
    ("arguments", "expected_error"),
    [
        ([], "the following arguments are required: --ispb"),
        (["--ispb", "1234567"], "invalid ISPB '1234567'"),
        (["--ispb", "123456789"], "invalid ISPB '123456789'"),
        (["--ispb", "1234567a"], "invalid ISPB '1234567a'"),
        (["--ispb", ISPB, "--streams", "0"], "invalid value '0'"),
        (["--ispb", ISPB, "--streams", "two"], "invalid value 'two'"),
        (["--ispb", ISPB, "--max-messages", "-1"], "invalid value '-1'"),
        (["--ispb", ISPB, "--duration", "0"], "invalid value '0'"),
        (["--ispb", ISPB, "--duration", "nan"], "invalid value 'nan'"),
        (["--ispb", ISPB, "--timeout", "inf"], "invalid value 'inf'"),
        (["--ispb", ISPB, "--base-url", "ftp://host"], "invalid base URL 'ftp://host'"),
        (["--ispb", ISPB, "--base-url", "127.0.0.1:8000"], "invalid base URL"),
        (["--ispb", ISPB, "--multipart", "--single"], "not allowed with argument"),
        (["--ispb", ISPB, "--quiet", "--verbose"], "not allowed with argument"),
    ],
)
def test_cli_invalid_arguments(
    arguments: list[str], expected_error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)

    assert exit_info.value.code == 2
    assert expected_error in capsys.readouterr().err


def test_cli_progress_on_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = TerminalStringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    server = ScriptedServer(5)

    main(
        ["--ispb", ISPB, "--streams", "1", "-o", str(tmp_path / "o"), "--max-messages", "5"],
        transport=server.transport(),
    )

    text = stderr.getvalue()
    assert "\r\x1b[K0 messages written, 0.0 msg/s, 0/1 streams open" in text
    assert text.endswith("stopped after writing 5 messages (0 duplicates dropped)\n")


def test_cli_no_progress_when_quiet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = TerminalStringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    server = ScriptedServer(5)

    main(
        ["--ispb", ISPB, "-q", "--streams", "1", "-o", str(tmp_path / "o"), "--max-messages", "5"],
        transport=server.transport(),
    )

    assert stderr.getvalue() == ""


def test_cli_no_progress_off_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = ScriptedServer(5)

    main(
        ["--ispb", ISPB, "--streams", "1", "-o", str(tmp_path / "o"), "--max-messages", "5"],
        transport=server.transport(),
    )

    err = capsys.readouterr().err
    assert "INFO stream 1: opened" in err
    assert "\r" not in err
    assert "messages written," not in err


def test_module_entry_point_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pixcollect", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0
    assert result.stdout.startswith("usage: pix-collect")
    assert "--max-messages" in result.stdout


def test_cli_interrupt_before_start_exits_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupt(path: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("pixcollect.cli.MessageWriter.append_to", interrupt)
    server = ScriptedServer(5)

    status = main(["--ispb", ISPB, "-o", str(tmp_path / "o")], transport=server.transport())

    assert status == 0
    assert "INFO interrupted" in capsys.readouterr().err
    assert server.requests == []
