"""The message generator: every field in the format the contract defines."""

import json
import random
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from chalicelib.messages import (
    ACCOUNT_TYPES,
    generate_message,
    generate_messages,
    is_valid_cpf_or_cnpj,
)

RECEIVER = "12345678"
PAID_AT = datetime(2024, 2, 21, 19, 27, 41, 108_000, tzinfo=UTC)
TIMESTAMP_PATTERN = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\Z")
# The ISO 20022 cash account types that Pix uses.
ISO_ACCOUNT_TYPES = {"CACC", "SVGS", "SLRY", "TRAN"}


@pytest.fixture(scope="module")
def documents() -> list[dict[str, object]]:
    """Two hundred generated messages, parsed, from a fixed seed."""
    rng = random.Random(20240221)
    return [json.loads(generate_message(RECEIVER, PAID_AT, rng).body) for _ in range(200)]


def parties(document: dict[str, object]) -> list[dict[str, str]]:
    return [document["pagador"], document["recebedor"]]  # type: ignore[list-item]


def test_end_to_end_id_follows_format(documents: list[dict[str, object]]) -> None:
    for document in documents:
        end_to_end_id = str(document["endToEndId"])
        payer_ispb = parties(document)[0]["ispb"]

        assert len(end_to_end_id) == 32
        assert end_to_end_id[0] == "E"
        assert end_to_end_id[1:9] == payer_ispb
        assert end_to_end_id[9:21] == "202402211927"
        assert re.fullmatch(r"[A-Za-z0-9]{11}", end_to_end_id[21:])


def test_end_to_end_id_uses_utc_minute() -> None:
    paid_at = datetime(2024, 2, 21, 23, 59, 30, tzinfo=timezone(timedelta(hours=-3)))

    message = generate_message(RECEIVER, paid_at, random.Random(1))

    assert message.end_to_end_id[9:21] == "202402220259"


def test_receiver_is_requested_ispb(documents: list[dict[str, object]]) -> None:
    for document in documents:
        assert parties(document)[1]["ispb"] == RECEIVER


def test_payer_ispb_differs_from_receiver(documents: list[dict[str, object]]) -> None:
    for document in documents:
        payer = parties(document)[0]["ispb"]

        assert re.fullmatch(r"[0-9]{8}", payer)
        assert payer != RECEIVER


def test_cpf_cnpj_has_valid_check_digits(documents: list[dict[str, object]]) -> None:
    for document in documents:
        for party in parties(document):
            assert len(party["cpfCnpj"]) in (11, 14)
            assert is_valid_cpf_or_cnpj(party["cpfCnpj"]), party["cpfCnpj"]


def test_generator_produces_both_cpf_and_cnpj(documents: list[dict[str, object]]) -> None:
    lengths = {len(party["cpfCnpj"]) for document in documents for party in parties(document)}

    assert lengths == {11, 14}


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("52998224725", True),
        ("52998224724", False),
        ("11222333000181", True),
        ("11222333000182", False),
        ("5299822472", False),
        ("5299822472a", False),
    ],
)
def test_check_digit_validation(value: str, valid: bool) -> None:
    assert is_valid_cpf_or_cnpj(value) is valid


def test_valor_has_at_most_two_decimals(documents: list[dict[str, object]]) -> None:
    for document in documents:
        valor = document["valor"]

        assert isinstance(valor, float)
        assert valor > 0
        assert Decimal(repr(valor)).as_tuple().exponent >= -2  # type: ignore[operator]


def test_valor_text_has_no_float_noise() -> None:
    rng = random.Random(7)
    for _ in range(500):
        body = generate_message(RECEIVER, PAID_AT, rng).body
        text = re.search(r'"valor":([^,]+),', body)

        assert text is not None
        assert re.fullmatch(r"[0-9]+(\.[0-9]{1,2})?", text.group(1)), text.group(1)


def test_payment_time_is_iso_utc_with_milliseconds(documents: list[dict[str, object]]) -> None:
    for document in documents:
        assert document["dataHoraPagamento"] == "2024-02-21T19:27:41.108Z"
        assert TIMESTAMP_PATTERN.match(str(document["dataHoraPagamento"]))


def test_payment_time_converts_to_utc() -> None:
    paid_at = datetime(2024, 2, 21, 16, 27, 41, 5_000, tzinfo=timezone(timedelta(hours=-3)))

    document = json.loads(generate_message(RECEIVER, paid_at, random.Random(1)).body)

    assert document["dataHoraPagamento"] == "2024-02-21T19:27:41.005Z"


def test_account_type_is_iso_code(documents: list[dict[str, object]]) -> None:
    assert set(ACCOUNT_TYPES) <= ISO_ACCOUNT_TYPES
    for document in documents:
        for party in parties(document):
            assert party["tipoConta"] in ISO_ACCOUNT_TYPES


def test_document_has_contract_fields(documents: list[dict[str, object]]) -> None:
    top = {
        "endToEndId", "valor", "pagador", "recebedor", "campoLivre", "txId", "dataHoraPagamento",
    }  # fmt: skip
    party = {"nome", "cpfCnpj", "ispb", "agencia", "contaTransacional", "tipoConta"}
    for document in documents:
        assert set(document) == top
        assert set(parties(document)[0]) == party
        assert set(parties(document)[1]) == party


def test_generated_batch_has_distinct_ids_oldest_first() -> None:
    now = datetime(2024, 2, 21, 19, 27, tzinfo=UTC)

    messages = generate_messages(RECEIVER, 300, now)
    times = [json.loads(m.body)["dataHoraPagamento"] for m in messages]

    assert len(messages) == 300
    assert len({m.end_to_end_id for m in messages}) == 300
    assert times == sorted(times)
    assert all(m.receiver_ispb == RECEIVER for m in messages)
