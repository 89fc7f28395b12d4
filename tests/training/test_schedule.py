"""The learning rate as a pure function of the step, against hand computation."""
import math

import pytest

from framework.config.fields import defaults_of
from framework.training.schedule import SchedulerSchema, learning_rate_at

BASE = 0.1
TOTAL = 100


def schedule(**overrides) -> dict:
    return {**defaults_of(SchedulerSchema), **overrides}


def rates(settings, total=TOTAL, plateau_factor=1.0) -> list[float]:
    return [learning_rate_at(step, BASE, settings, total, plateau_factor) for step in range(total)]


def test_constant_by_default():
    assert rates(schedule()) == [BASE] * TOTAL


def test_linear_warmup_from_zero():
    values = rates(schedule(warmup_steps=10))
    assert values[:10] == pytest.approx([BASE * (step + 1) / 10 for step in range(10)])
    assert values[10:] == [BASE] * 90


def test_warmup_fraction_of_all_steps():
    values = rates(schedule(warmup_fraction=0.2))
    assert values[0] == pytest.approx(BASE / 20) and values[19] == pytest.approx(BASE) and values[20] == BASE


def test_warmup_steps_override_warmup_fraction():
    assert rates(schedule(warmup_steps=4, warmup_fraction=0.5))[4] == BASE


def test_linear_decay_after_warmup():
    values = rates(schedule(warmup_steps=10, decay="linear"))
    for step in (10, 40, 99):
        assert values[step] == pytest.approx(BASE * (1 - (step - 10) / 90))


def test_cosine_decay():
    values = rates(schedule(decay="cosine"))
    for step in (0, 25, 50, 99):
        assert values[step] == pytest.approx(BASE * 0.5 * (1 + math.cos(math.pi * step / TOTAL)))


def test_exponential_decay():
    values = rates(schedule(warmup_steps=5, decay="exponential", decay_rate=0.5, decay_steps=10))
    for step in (5, 15, 30, 99):
        assert values[step] == pytest.approx(BASE * 0.5 ** ((step - 5) / 10))


def test_min_learning_rate_is_a_floor_after_warmup():
    values = rates(schedule(decay="linear", min_learning_rate=0.02))
    assert min(values) == 0.02
    assert values[50] == pytest.approx(BASE * 0.5)


def test_plateau_factor_scales_every_phase():
    settings = schedule(warmup_steps=10, decay="cosine")
    for step in (3, 10, 60):
        assert learning_rate_at(step, BASE, settings, TOTAL, 0.25) == pytest.approx(
            0.25 * learning_rate_at(step, BASE, settings, TOTAL))


def test_a_warmup_longer_than_training():
    values = rates(schedule(warmup_steps=200), total=10)
    assert values == pytest.approx([BASE * (step + 1) / 200 for step in range(10)])
