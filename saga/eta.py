"""Remaining-time estimate from how fast overall progress has been moving lately."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class EtaSettings:
    half_life: float = 4.0  # seconds: a sample this old counts half as much as a fresh one
    warmup: float = 1.0  # seconds of work before any estimate is given
    min_progress: float = 1.0  # percent of work before any estimate is given
    min_span: float = 1.0  # seconds the samples must cover before the rate is trusted
    # Share of the remaining time budget in the blend, when there is one. The pipeline runs
    # until its budget unless stopped, while the stage weights make the percent run ahead
    # of the clock in the CP-SAT stage; at 0.8 the ETA ran 5.5 s short at half of a 60 s
    # run (bench/saga_bench.py), so the rate only nudges it.
    budget_weight: float = 0.95


# Samples this many half-lives old weigh under 0.4 % and are dropped.
_MAX_AGE_HALF_LIVES = 8
_MAX_SAMPLES = 512


class EtaEstimator:
    """Estimate seconds to 100 % from (time, overall percent) samples.

    The rate is a least-squares slope whose weights decay with a sample's age in
    seconds and grow with the time it stands for, so a burst of reports does not
    outvote a long quiet stretch. Until the samples span `min_span`, it falls back to
    elapsed / progress. A known time budget (the solver stops by then) is blended in.
    """

    def __init__(self, settings: EtaSettings = EtaSettings()) -> None:
        self.settings = settings
        self._samples: deque[tuple[float, float]] = deque(maxlen=_MAX_SAMPLES)
        self._started: float | None = None
        self._budget: float | None = None

    def start(self, now: float, budget: float | None = None) -> None:
        """Work starts at `now` (monotonic seconds) and should end within `budget` seconds."""
        self._started, self._budget = now, budget
        self._samples.clear()
        self._samples.append((now, 0.0))

    def observe(self, now: float, overall: float) -> None:
        if self._started is None:
            self.start(now)
        self._samples.append((now, overall))
        horizon = now - _MAX_AGE_HALF_LIVES * self.settings.half_life
        while len(self._samples) > 2 and self._samples[0][0] < horizon:
            self._samples.popleft()

    def estimate(self, now: float, overall: float) -> float | None:
        """Seconds left, 0 when done, None while there is too little evidence."""
        if overall >= 100.0:
            return 0.0
        s = self.settings
        if self._started is None:
            return None
        early = now - self._started < s.warmup or overall < s.min_progress
        if self._budget is None:
            return None if early else round(self._by_rate(now, overall), 1)
        # The solver stops by its budget: that alone is an honest bound while the rate is unknown.
        left = max(0.0, self._started + self._budget - now)
        if early:
            return round(left, 1)
        return round(s.budget_weight * left + (1.0 - s.budget_weight) * min(self._by_rate(now, overall), left), 1)

    def _by_rate(self, now: float, overall: float) -> float:
        elapsed = now - self._started  # type: ignore[operator]
        fallback = elapsed * (100.0 - overall) / overall
        rate = self._rate(now)
        return (100.0 - overall) / rate if rate is not None else fallback

    def _rate(self, now: float) -> float | None:
        """Weighted least-squares slope in percent per second, None if not trustworthy.

        A sample weighs the seconds since the previous one times 0.5 ** (age / half_life):
        the fit integrates over time, so how often progress was reported does not matter."""
        samples = self._samples
        if len(samples) < 3 or samples[-1][0] - samples[0][0] < self.settings.min_span:
            return None
        half_life = self.settings.half_life
        points = [
            (t, p, (t - prev) * 0.5 ** ((now - t) / half_life))
            for (prev, _), (t, p) in zip(samples, list(samples)[1:])
        ]
        total = sum(w for *_, w in points)
        if total <= 0.0:
            return None
        t_mean = sum(w * t for t, _, w in points) / total
        p_mean = sum(w * p for _, p, w in points) / total
        var = sum(w * (t - t_mean) ** 2 for t, _, w in points)
        cov = sum(w * (t - t_mean) * (p - p_mean) for t, p, w in points)
        if var <= 1e-9 or cov <= 0.0:
            return None
        return cov / var
