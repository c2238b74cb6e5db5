"""EtaEstimator: unknown early, age-weighted rate, budget blend, 0 at the end."""

from __future__ import annotations

import pytest

from saga.eta import EtaEstimator, EtaSettings

NO_BUDGET = EtaSettings(half_life=2.0, warmup=1.0, min_progress=1.0, min_span=1.0)


def _fed(settings: EtaSettings, samples: list[tuple[float, float]], budget: float | None = None) -> EtaEstimator:
    eta = EtaEstimator(settings)
    eta.start(0.0, budget)
    for t, p in samples:
        eta.observe(t, p)
    return eta


def test_unknown_before_warmup_or_any_progress_without_a_budget() -> None:
    eta = _fed(NO_BUDGET, [(0.5, 10.0)])
    assert eta.estimate(0.5, 10.0) is None  # too early
    eta = _fed(NO_BUDGET, [(3.0, 0.5)])
    assert eta.estimate(3.0, 0.5) is None  # too little progress
    assert EtaEstimator(NO_BUDGET).estimate(5.0, 50.0) is None  # never started


def test_falls_back_to_elapsed_over_progress_before_the_samples_span_enough() -> None:
    eta = EtaEstimator(EtaSettings(warmup=1.0, min_span=5.0))
    eta.start(0.0)
    eta.observe(2.0, 20.0)
    assert eta.estimate(2.0, 20.0) == pytest.approx(8.0)  # 2 s for 20 % -> 8 s for the other 80 %


def test_steady_rate_gives_the_remaining_time() -> None:
    samples = [(t / 10, t / 10 * 5.0) for t in range(1, 101)]  # 5 %/s for 10 s
    eta = _fed(NO_BUDGET, samples)
    assert eta.estimate(10.0, 50.0) == pytest.approx(10.0, abs=0.1)


def test_weights_decay_with_sample_age_not_sample_count() -> None:
    # 10 s at 1 %/s reported 100 times a second, then 5 s at 4 %/s reported every 1.25 s.
    burst = [(i / 100, i / 100) for i in range(1, 1001)]
    sparse = [(10.0 + k * 1.25, 10.0 + 4.0 * k * 1.25) for k in range(1, 5)]
    eta = _fed(NO_BUDGET, burst + sparse)
    left = eta.estimate(15.0, 30.0)
    # Count weighting would see ~1000 samples at 1 %/s against 4 at 4 %/s: about 70 s.
    count_weighted_rate = (1000 * 1.0 + 4 * 4.0) / 1004
    assert left is not None and left < 0.5 * 70.0 / count_weighted_rate
    assert left == pytest.approx(70.0 / 4.0, rel=0.35)  # recent seconds dominate: close to 17.5 s


def test_known_budget_is_blended_in() -> None:
    # Fast early progress (80 % in 2 s) but the solver runs until its 20 s budget.
    samples = [(t / 10, t / 10 * 40.0) for t in range(1, 21)]
    settings = EtaSettings(half_life=2.0, budget_weight=0.8)
    by_rate_only = _fed(settings, samples).estimate(2.0, 80.0)
    blended = _fed(settings, samples, budget=20.0).estimate(2.0, 80.0)
    assert by_rate_only is not None and blended is not None
    assert by_rate_only < 1.0 and blended == pytest.approx(0.8 * 18.0 + 0.2 * by_rate_only, abs=0.1)


def test_zero_when_done_even_without_evidence() -> None:
    assert EtaEstimator().estimate(0.0, 100.0) == 0.0
    assert _fed(NO_BUDGET, [(5.0, 100.0)], budget=60.0).estimate(5.0, 100.0) == 0.0


def test_a_known_budget_answers_before_the_rate_is_known() -> None:
    eta = _fed(NO_BUDGET, [(0.25, 0.5)], budget=10.0)
    assert eta.estimate(0.25, 0.5) == pytest.approx(9.75, abs=0.1)
