"""The section 9 settings: defaults, read from the environment, and a bad value refused with one
clear line naming the setting, the rule and the value."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestration.settings import Settings


def test_defaults_and_environment(monkeypatch):
    s = Settings(_env_file=None)
    assert (s.EXPERIMENT_SRM_P_THRESHOLD, s.EXPERIMENT_SEQUENTIAL_TUNING, s.EXPERIMENT_MIN_JOURNEYS) == (0.001, 5000, 100)
    monkeypatch.setenv("EXPERIMENT_SRM_P_THRESHOLD", "0.01")
    monkeypatch.setenv("EXPERIMENT_SEQUENTIAL_TUNING", "20000")
    monkeypatch.setenv("EXPERIMENT_MIN_JOURNEYS", "250")
    s = Settings(_env_file=None)
    assert (s.EXPERIMENT_SRM_P_THRESHOLD, s.EXPERIMENT_SEQUENTIAL_TUNING, s.EXPERIMENT_MIN_JOURNEYS) == (0.01, 20000, 250)


def test_section_9_1_defaults_and_environment(monkeypatch):
    s = Settings(_env_file=None)
    assert (s.EXPERIMENT_CORRECTION, s.EXPERIMENT_TARGET_MDE) == ("holm", 0.05)
    for value in ("bh", "none", "holm"):
        monkeypatch.setenv("EXPERIMENT_CORRECTION", value)
        assert Settings(_env_file=None).EXPERIMENT_CORRECTION == value
    monkeypatch.setenv("EXPERIMENT_TARGET_MDE", "0.1")
    assert Settings(_env_file=None).EXPERIMENT_TARGET_MDE == 0.1


@pytest.mark.parametrize(("name", "value", "message"), [
    ("EXPERIMENT_SRM_P_THRESHOLD", "1.5",
     "EXPERIMENT_SRM_P_THRESHOLD must be a p-value between 0 and 1 (default 0.001), got 1.5"),
    ("EXPERIMENT_SRM_P_THRESHOLD", "0", "EXPERIMENT_SRM_P_THRESHOLD must be a p-value between 0 and 1"),
    ("EXPERIMENT_SEQUENTIAL_TUNING", "-5",
     "EXPERIMENT_SEQUENTIAL_TUNING must be a journey count above 0 (default 5000), got -5.0"),
    ("EXPERIMENT_MIN_JOURNEYS", "1",
     "EXPERIMENT_MIN_JOURNEYS must be a whole number of 2 or more (default 100), got 1"),
    ("EXPERIMENT_CORRECTION", "bonferroni",
     "must be holm (default), bh or none, got 'bonferroni'"),
    ("EXPERIMENT_CORRECTION", "Holm", "must be holm (default), bh or none, got 'Holm'"),
    ("EXPERIMENT_TARGET_MDE", "0", "must be a relative lift above 0 (default 0.05 = 5%), got 0.0"),
    ("EXPERIMENT_TARGET_MDE", "-0.05", "must be a relative lift above 0"),
    ("EXPERIMENT_TARGET_MDE", "nan", "must be a relative lift above 0"),
    ("EXPERIMENT_TARGET_MDE", "inf", "must be a relative lift above 0"),
])
def test_bad_values_are_refused_with_one_clear_line(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None)
    [error] = info.value.errors()
    assert error["loc"] == (name,)
    assert message in error["msg"] and "\n" not in error["msg"]
