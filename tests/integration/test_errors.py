"""Every client error of the contract: status, problem document and the bad value named."""

import secrets

import httpx
import pytest

from tests.integration.api import MULTIPART, assert_problem, create, start

# (raw path segment as sent, text the detail must contain)
BAD_ISPBS = [
    pytest.param("1234567", "'1234567'", id="seven-digits"),
    pytest.param("123456789", "'123456789'", id="nine-digits"),
    pytest.param("1234567a", "'1234567a'", id="letter"),
    pytest.param("ABCDEFGH", "'ABCDEFGH'", id="letters"),
    pytest.param("%31%32345678", "'%31%32345678'", id="percent-encoded-digits"),
    # Arabic-Indic digits one to eight, sent as percent-encoded UTF-8.
    pytest.param(
        "%D9%A1%D9%A2%D9%A3%D9%A4%D9%A5%D9%A6%D9%A7%D9%A8",
        "%D9%A1%D9%A2",
        id="non-ascii-digits",
    ),
]
BAD_NUMBERS = ["0", "1001", "-1", "abc", "1.5"]
CREATE_PATHS = ["/api/util/msgs/{ispb}/{number}", "/api/pix/util/msgs/{ispb}/{number}/"]


def unknown_link() -> str:
    return f"{secrets.token_hex(16)}-1"


@pytest.mark.parametrize(("segment", "named"), BAD_ISPBS)
def test_start_rejects_bad_ispb(http: httpx.Client, segment: str, named: str) -> None:
    response = http.get(f"/api/pix/{segment}/stream/start")

    assert_problem(response, 400, named)


@pytest.mark.parametrize(("segment", "named"), BAD_ISPBS)
def test_continue_rejects_bad_ispb(http: httpx.Client, segment: str, named: str) -> None:
    response = http.get(f"/api/pix/{segment}/stream/{unknown_link()}")

    assert_problem(response, 400, named)


@pytest.mark.parametrize(("segment", "named"), BAD_ISPBS)
def test_delete_rejects_bad_ispb(http: httpx.Client, segment: str, named: str) -> None:
    response = http.delete(f"/api/pix/{segment}/stream/{unknown_link()}")

    assert_problem(response, 400, named)


@pytest.mark.parametrize("path", CREATE_PATHS)
@pytest.mark.parametrize(("segment", "named"), BAD_ISPBS)
def test_create_rejects_bad_ispb(http: httpx.Client, path: str, segment: str, named: str) -> None:
    response = http.post(path.format(ispb=segment, number=1))

    assert_problem(response, 400, named)


@pytest.mark.parametrize("path", CREATE_PATHS)
@pytest.mark.parametrize("number", BAD_NUMBERS)
def test_create_rejects_bad_number(http: httpx.Client, ispb: str, path: str, number: str) -> None:
    response = http.post(path.format(ispb=ispb, number=number))

    assert_problem(response, 400, repr(number))


def test_bad_number_creates_nothing(http: httpx.Client, ispb: str) -> None:
    http.post(f"/api/util/msgs/{ispb}/1001")

    response = start(http, ispb)

    assert response.status_code == 204


def test_unknown_stream_is_404(http: httpx.Client, ispb: str) -> None:
    link = unknown_link()

    response = http.get(f"/api/pix/{ispb}/stream/{link}")

    assert_problem(response, 404, link)


def test_delete_of_unknown_stream_is_404(http: httpx.Client, ispb: str) -> None:
    link = unknown_link()

    response = http.delete(f"/api/pix/{ispb}/stream/{link}")

    assert_problem(response, 404, link)


@pytest.mark.parametrize(
    "link",
    [
        "not-a-stream",
        "0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef-0",
        "0123456789ABCDEF0123456789ABCDEF-1",
        "0123456789abcdef0123456789abcde-1",
        "0123456789abcdef0123456789abcdef-x",
    ],
)
def test_malformed_stream_id_is_404(http: httpx.Client, ispb: str, link: str) -> None:
    response = http.get(f"/api/pix/{ispb}/stream/{link}")

    assert_problem(response, 404, link)


def test_link_beyond_newest_is_404(http: httpx.Client, ispb: str) -> None:
    create(http, ispb, 1)
    stream_id = start(http, ispb).headers["pull-next"].rsplit("/", 1)[1].split("-")[0]
    link = f"{stream_id}-5"

    response = http.get(f"/api/pix/{ispb}/stream/{link}")

    assert_problem(response, 404, link)


def test_stream_of_other_ispb_is_404(http: httpx.Client, ispb: str) -> None:
    create(http, ispb, 2)
    owned = start(http, ispb)
    link = owned.headers["pull-next"].rsplit("/", 1)[1]
    other = f"{(int(ispb) + 1) % 10**8:08d}"

    read = http.get(f"/api/pix/{other}/stream/{link}")
    deleted = http.delete(f"/api/pix/{other}/stream/{link}")

    assert_problem(read, 404, link)
    assert_problem(deleted, 404, link)
    assert http.get(owned.headers["pull-next"]).status_code == 200


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "application/json;q=0"])
def test_start_with_unservable_accept_is_406(http: httpx.Client, ispb: str, accept: str) -> None:
    response = start(http, ispb, headers={"Accept": accept})

    assert_problem(response, 406, accept)


def test_continue_with_unservable_accept_is_406(http: httpx.Client, ispb: str) -> None:
    create(http, ispb, 1)
    link = start(http, ispb).headers["pull-next"]

    response = http.get(link, headers={"Accept": "text/csv"})

    assert_problem(response, 406, "text/csv")


def test_unknown_format_value_is_400(http: httpx.Client, ispb: str) -> None:
    response = start(http, ispb, params={"format": "xml"})

    assert_problem(response, 400, "'xml'")


def test_closed_stream_is_410(http: httpx.Client, ispb: str) -> None:
    create(http, ispb, 1)
    link = start(http, ispb).headers["pull-next"]
    assert http.delete(link).status_code == 200

    read = http.get(link)
    multipart = http.get(link, headers=MULTIPART)

    assert_problem(read, 410, link.rsplit("/", 1)[1])
    assert_problem(multipart, 410, link.rsplit("/", 1)[1])


def test_superseded_link_is_410(http: httpx.Client, ispb: str) -> None:
    create(http, ispb, 3)
    first = start(http, ispb)
    second = http.get(first.headers["pull-next"])
    old_link = first.headers["pull-next"]
    assert second.status_code == 200

    third = http.get(second.headers["pull-next"])
    stale = http.get(old_link)

    assert third.status_code == 200
    assert_problem(stale, 410, old_link.rsplit("/", 1)[1])


def test_seventh_stream_is_429_with_retry_after(http: httpx.Client, ispb: str) -> None:
    # One pending message per stream lets each start return at once instead of waiting.
    create(http, ispb, 7)
    for _ in range(6):
        assert start(http, ispb).status_code == 200

    rejected = start(http, ispb)

    assert_problem(rejected, 429, ispb)
    assert int(rejected.headers["retry-after"]) >= 1
    assert "pull-next" not in rejected.headers


def test_failed_starts_take_no_slot(http: httpx.Client, ispb: str) -> None:
    create(http, ispb, 8)
    for _ in range(3):
        assert start(http, ispb, headers={"Accept": "text/html"}).status_code == 406
        assert start(http, ispb, params={"format": "bogus"}).status_code == 400
    links = [start(http, ispb).headers["pull-next"] for _ in range(6)]
    for _ in range(3):
        assert start(http, ispb).status_code == 429

    assert http.delete(links[0]).status_code == 200
    reopened = start(http, ispb)
    rejected = start(http, ispb)

    assert reopened.status_code == 200
    assert rejected.status_code == 429


def test_error_has_no_pull_next(http: httpx.Client, ispb: str) -> None:
    response = start(http, ispb, headers={"Accept": "text/html"})

    assert response.status_code == 406
    assert "pull-next" not in response.headers


def test_unrouted_method_is_problem_document(http: httpx.Client, ispb: str) -> None:
    response = http.post(f"/api/pix/{ispb}/stream/start")

    assert_problem(response, 405, "POST")
    assert sorted(response.headers["allow"].split(", ")) == ["DELETE", "GET"]


def test_delete_on_start_is_unknown_stream(http: httpx.Client, ispb: str) -> None:
    response = http.delete(f"/api/pix/{ispb}/stream/start")

    assert_problem(response, 404, "start")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_any_content_type_is_accepted(http: httpx.Client, ispb: str, content_type: str) -> None:
    headers = {"Content-Type": content_type}

    created = http.post(f"/api/util/msgs/{ispb}/1", content=b"x", headers=headers)
    started = http.get(f"/api/pix/{ispb}/stream/start", headers=headers)
    closed = http.delete(started.headers["pull-next"], headers=headers)

    assert created.status_code == 201
    assert started.json()["endToEndId"] == created.json()["endToEndIds"][0]
    assert closed.status_code == 200
