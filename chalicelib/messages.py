"""Pix messages: the JSON document a PSP receives, and a generator of realistic fakes."""

import json
import random
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

ISPB_PATTERN = re.compile(r"\A[0-9]{8}\Z")
END_TO_END_PATTERN = re.compile(r"\AE[0-9]{8}[0-9]{12}[A-Za-z0-9]{11}\Z")

# ISPBs of real Brazilian payment institutions, used as payers of generated messages.
PAYER_ISPBS = (
    "00000000",  # Banco do Brasil
    "00360305",  # Caixa Economica Federal
    "60701190",  # Itau Unibanco
    "60746948",  # Bradesco
    "90400888",  # Santander
    "18236120",  # Nu Pagamentos
    "32074986",  # Example payer of the contract
    "10573521",  # Mercado Pago
)

# ISO 20022 cash account type codes used by Pix.
ACCOUNT_TYPES = ("CACC", "SVGS", "SLRY", "TRAN")

FIRST_NAMES = (
    "Ana", "Beatriz", "Carlos", "Daniela", "Eduardo", "Fernanda", "Gabriel", "Helena",
    "Igor", "Juliana", "Lucas", "Mariana", "Nicolas", "Patricia", "Rafael", "Sofia",
)  # fmt: skip
LAST_NAMES = (
    "Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira",
    "Lima", "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Araujo",
)  # fmt: skip
COMPANY_SUFFIXES = ("Comercio Ltda", "Servicos SA", "Alimentos ME", "Tecnologia Ltda")
FREE_TEXTS = ("", "", "", "Aluguel", "Pedido 4821", "Mensalidade", "Reembolso")

_ALPHANUMERIC = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Message:
    """One Pix message as stored: its key, its receiver and its JSON text.

    The JSON text is produced once, at creation, and sent as it is, so amounts keep
    exactly the digits they were created with.
    """

    end_to_end_id: str
    receiver_ispb: str
    body: str


def is_valid_ispb(value: str) -> bool:
    return bool(ISPB_PATTERN.match(value))


def check_digits(digits: Sequence[int], weights: Sequence[int]) -> int:
    """Return the modulo-11 check digit used by CPF and CNPJ for `digits`."""
    remainder = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
    return 0 if remainder < 2 else 11 - remainder


def make_cpf(rng: random.Random) -> str:
    base = [rng.randrange(10) for _ in range(9)]
    if len(set(base)) == 1:
        base[0] = (base[0] + 1) % 10
    first = check_digits(base, range(10, 1, -1))
    second = check_digits([*base, first], range(11, 1, -1))
    return "".join(map(str, [*base, first, second]))


def make_cnpj(rng: random.Random) -> str:
    base = [rng.randrange(10) for _ in range(8)] + [0, 0, 0, 1]
    first = check_digits(base, (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2))
    second = check_digits([*base, first], (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2))
    return "".join(map(str, [*base, first, second]))


def is_valid_cpf_or_cnpj(value: str) -> bool:
    if not value.isdigit() or len(value) not in (11, 14):
        return False
    digits = [int(c) for c in value]
    if len(value) == 11:
        first = check_digits(digits[:9], range(10, 1, -1))
        second = check_digits(digits[:10], range(11, 1, -1))
    else:
        first = check_digits(digits[:12], (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2))
        second = check_digits(digits[:13], (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2))
    return digits[-2:] == [first, second]


def make_end_to_end_id(payer_ispb: str, paid_at: datetime, rng: random.Random) -> str:
    suffix = "".join(rng.choice(_ALPHANUMERIC) for _ in range(11))
    return f"E{payer_ispb}{paid_at.astimezone(UTC):%Y%m%d%H%M}{suffix}"


def format_timestamp(moment: datetime) -> str:
    """Format `moment` as ISO 8601 UTC with milliseconds and a `Z`."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def _make_party(rng: random.Random, ispb: str) -> dict[str, str]:
    is_company = rng.random() < 0.3
    if is_company:
        name = f"{rng.choice(LAST_NAMES)} {rng.choice(COMPANY_SUFFIXES)}"
        document = make_cnpj(rng)
    else:
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)} {rng.choice(LAST_NAMES)}"
        document = make_cpf(rng)
    return {
        "nome": name,
        "cpfCnpj": document,
        "ispb": ispb,
        "agencia": f"{rng.randrange(1, 10000):04d}",
        "contaTransacional": str(rng.randrange(10_000, 100_000_000)),
        "tipoConta": rng.choice(ACCOUNT_TYPES),
    }


def generate_message(
    receiver_ispb: str, paid_at: datetime, rng: random.Random | None = None
) -> Message:
    """Create one realistic random message addressed to `receiver_ispb`, paid at `paid_at`."""
    rng = rng or random.Random()
    payer_ispb = rng.choice([i for i in PAYER_ISPBS if i != receiver_ispb])
    end_to_end_id = make_end_to_end_id(payer_ispb, paid_at, rng)
    cents = rng.choice((rng.randrange(1, 10_000), rng.randrange(1, 10_000_000)))
    document = {
        "endToEndId": end_to_end_id,
        # cents / 100 is the double nearest to the decimal amount, and json writes the
        # shortest text that reads back as that double: "90.2", never "90.20000000000000284".
        "valor": cents / 100,
        "pagador": _make_party(rng, payer_ispb),
        "recebedor": _make_party(rng, receiver_ispb),
        "campoLivre": rng.choice(FREE_TEXTS),
        "txId": "".join(rng.choice(_ALPHANUMERIC) for _ in range(rng.randrange(26, 36))),
        "dataHoraPagamento": format_timestamp(paid_at),
    }
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return Message(end_to_end_id=end_to_end_id, receiver_ispb=receiver_ispb, body=body)


def generate_messages(receiver_ispb: str, count: int, now: datetime) -> list[Message]:
    """Create `count` messages with distinct `endToEndId` values, oldest payment first.

    Payment times are one millisecond apart and end at `now`, so the order of the list,
    the order of `dataHoraPagamento` and the order of delivery agree.
    """
    rng = random.SystemRandom()
    messages: dict[str, Message] = {}
    while len(messages) < count:
        paid_at = now - timedelta(milliseconds=count - len(messages))
        message = generate_message(receiver_ispb, paid_at, rng)
        messages.setdefault(message.end_to_end_id, message)
    return list(messages.values())
