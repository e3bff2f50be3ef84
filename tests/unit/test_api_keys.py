"""API key parsing and access checks, without a store."""

import pytest

from chalicelib.auth import MAX_AUTHORIZATION_LENGTH, bearer_token, check_access, hash_key
from chalicelib.errors import AccessDenied, Unauthenticated


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER   abc  ", "abc"),
        ("Bearer", None),
        ("Basic abc", None),
        ("abc", None),
        ("", None),
        (None, None),
        ("Bearer caf\u00e9", None),
        ("Bearer " + "a" * MAX_AUTHORIZATION_LENGTH, None),
    ],
)
def test_bearer_token_parses_header(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_hash_key_is_sha256_hex() -> None:
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_check_access_allows_own_ispb() -> None:
    check_access("12345678", "12345678")


@pytest.mark.parametrize("granted", [None, ""])
def test_check_access_without_key_raises_unauthenticated(granted: str | None) -> None:
    with pytest.raises(Unauthenticated):
        check_access(granted, "12345678")


def test_check_access_other_ispb_raises_access_denied() -> None:
    with pytest.raises(AccessDenied) as denied:
        check_access("12345678", "87654321")

    assert denied.value.ispb == "87654321"
