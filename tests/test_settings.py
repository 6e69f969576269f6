"""The log-policy settings: the prediction log's rotation and buffer, and the orphan sweep's
grace — read once, with units, and refused naming the variable and the accepted form."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopline.errors import ConfigurationError
from loopline.settings import DECLARED, Settings

POLICY = (
    "LOOPLINE_PREDICTION_LOG_MAX_BYTES",
    "LOOPLINE_PREDICTION_LOG_MAX_AGE",
    "LOOPLINE_PREDICTION_LOG_BUFFER_BYTES",
    "LOOPLINE_ORPHAN_GRACE",
)


def test_the_log_policy_settings_are_declared_and_unset_by_default(tmp_path: Path) -> None:
    declared = {s.env: s for s in DECLARED}
    for env in POLICY:
        assert declared[env].default == ""  # the built-in default lives with its user
        assert declared[env].description
    settings = Settings.from_env({}, cwd=tmp_path)
    assert settings.prediction_log_max_bytes is None
    assert settings.prediction_log_max_age is None
    assert settings.prediction_log_buffer_bytes is None
    assert settings.orphan_grace is None


def test_the_log_policy_settings_read_sizes_and_ages_with_units(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "LOOPLINE_PREDICTION_LOG_MAX_BYTES": "64MiB",
            "LOOPLINE_PREDICTION_LOG_MAX_AGE": "7d",
            "LOOPLINE_PREDICTION_LOG_BUFFER_BYTES": "500000",
            "LOOPLINE_ORPHAN_GRACE": "90m",
        },
        cwd=tmp_path,
    )
    assert settings.prediction_log_max_bytes == 64 << 20
    assert settings.prediction_log_max_age == 7 * 86_400.0
    assert settings.prediction_log_buffer_bytes == 500_000
    assert settings.orphan_grace == 5_400.0


FORMS = {
    "LOOPLINE_PREDICTION_LOG_MAX_BYTES": "LOOPLINE_PREDICTION_LOG_MAX_BYTES=64MiB",
    "LOOPLINE_PREDICTION_LOG_BUFFER_BYTES": "LOOPLINE_PREDICTION_LOG_BUFFER_BYTES=64MiB",
    "LOOPLINE_PREDICTION_LOG_MAX_AGE": "LOOPLINE_PREDICTION_LOG_MAX_AGE=30d",
    "LOOPLINE_ORPHAN_GRACE": "LOOPLINE_ORPHAN_GRACE=1h",
}


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("LOOPLINE_PREDICTION_LOG_MAX_BYTES", "lots"),
        ("LOOPLINE_PREDICTION_LOG_MAX_BYTES", "0"),
        ("LOOPLINE_PREDICTION_LOG_BUFFER_BYTES", "-5"),
        ("LOOPLINE_PREDICTION_LOG_MAX_AGE", "a week"),
        ("LOOPLINE_ORPHAN_GRACE", "0"),
    ],
)
def test_a_malformed_log_policy_setting_names_the_variable_and_the_accepted_form(
    tmp_path: Path, env: str, value: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({env: value}, cwd=tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{env}={value!r} ")
    assert f"e.g. {FORMS[env]}." in message
