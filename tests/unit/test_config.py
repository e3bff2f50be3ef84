"""Settings: the contract's defaults, environment parsing and validation."""

import pytest

from chalicelib.config import Settings, SettingsError


def defaults() -> Settings:
    return Settings.from_env({})


def test_default_wait_is_eight_seconds() -> None:
    assert defaults().wait_seconds == 8.0


def test_default_stream_limit_is_six() -> None:
    assert defaults().stream_limit == 6


def test_default_batch_size_is_ten() -> None:
    assert defaults().batch_size == 10


def test_default_lease_is_sixty_seconds() -> None:
    assert defaults().lease_seconds == 60.0


def test_default_retention_is_seven_days() -> None:
    settings = defaults()

    assert settings.retention_days == 7.0
    assert settings.retention_seconds == 7 * 86400


def test_environment_values_are_parsed() -> None:
    settings = Settings.from_env(
        {
            "PIX_TABLE_NAME": "other-table",
            "PIX_WAIT_SECONDS": "2.5",
            "PIX_STREAM_LIMIT": "3",
            "PIX_BATCH_SIZE": "4",
            "PIX_LEASE_SECONDS": "30",
            "PIX_RETENTION_DAYS": "1",
            "PIX_TEST_ENDPOINTS": "off",
        }
    )

    assert settings.table_name == "other-table"
    assert settings.wait_seconds == 2.5
    assert settings.stream_limit == 3
    assert settings.batch_size == 4
    assert settings.lease_seconds == 30.0
    assert settings.retention_days == 1.0
    assert settings.test_endpoints is False


def test_empty_variable_keeps_default() -> None:
    assert Settings.from_env({"PIX_WAIT_SECONDS": ""}).wait_seconds == 8.0


def test_explicit_argument_beats_environment() -> None:
    settings = Settings.from_env({"PIX_STREAM_LIMIT": "3"}, stream_limit=2)

    assert settings.stream_limit == 2


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"PIX_WAIT_SECONDS": "0"}, "PIX_WAIT_SECONDS"),
        ({"PIX_WAIT_SECONDS": "-1"}, "PIX_WAIT_SECONDS"),
        ({"PIX_WAIT_SECONDS": "26"}, "PIX_WAIT_SECONDS"),
        ({"PIX_WAIT_SECONDS": "eight"}, "PIX_WAIT_SECONDS"),
        ({"PIX_STREAM_LIMIT": "0"}, "PIX_STREAM_LIMIT"),
        ({"PIX_STREAM_LIMIT": "1.5"}, "PIX_STREAM_LIMIT"),
        ({"PIX_BATCH_SIZE": "0"}, "PIX_BATCH_SIZE"),
        ({"PIX_BATCH_SIZE": "11"}, "PIX_BATCH_SIZE"),
        ({"PIX_LEASE_SECONDS": "9"}, "PIX_LEASE_SECONDS"),
        ({"PIX_RETENTION_DAYS": "0"}, "PIX_RETENTION_DAYS"),
        ({"PIX_POLL_MIN_SECONDS": "1", "PIX_POLL_MAX_SECONDS": "0.5"}, "PIX_POLL_MIN_SECONDS"),
        ({"PIX_RETRY_AFTER_SECONDS": "0"}, "PIX_RETRY_AFTER_SECONDS"),
        ({"PIX_TEST_ENDPOINTS": "maybe"}, "PIX_TEST_ENDPOINTS"),
        ({"PIX_CLAIM_SPREAD": "0"}, "PIX_CLAIM_SPREAD"),
    ],
)
def test_invalid_setting_is_rejected(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(environ)

    assert named in str(raised.value)


def test_empty_table_name_is_rejected() -> None:
    with pytest.raises(SettingsError, match="PIX_TABLE_NAME"):
        Settings.from_env({}, table_name="")


def test_lease_must_outlast_wait_by_more_than_a_second() -> None:
    with pytest.raises(SettingsError, match="PIX_LEASE_SECONDS"):
        Settings.from_env({"PIX_WAIT_SECONDS": "8", "PIX_LEASE_SECONDS": "9"})

    assert Settings.from_env({"PIX_WAIT_SECONDS": "8", "PIX_LEASE_SECONDS": "9.5"})


def test_boolean_setting_accepts_common_spellings() -> None:
    for raw, expected in [("on", True), ("TRUE", True), ("1", True), ("off", False), ("no", False)]:
        assert Settings.from_env({"PIX_TEST_ENDPOINTS": raw}).test_endpoints is expected, raw
