"""How much of the overall 0-100 % each pipeline stage covers."""

from __future__ import annotations

from dataclasses import dataclass

from solver.progress import CLUSTERING, CPSAT, GA, LOADING, REFINEMENT


@dataclass(frozen=True)
class StageSpan:
    stage: str
    start: float  # overall percent when the stage begins
    end: float  # overall percent when the stage is complete


@dataclass(frozen=True)
class StageWeights:
    """Consecutive spans from 0 to 100 %, in pipeline order."""

    spans: tuple[StageSpan, ...]

    def __post_init__(self) -> None:
        edge = 0.0
        for span in self.spans:
            if span.start != edge or span.end < span.start:
                raise ValueError(f"stage weights: {span.stage} must start at {edge} % and not end before it starts")
            edge = span.end
        if edge != 100.0:
            raise ValueError(f"stage weights: the last stage must end at 100 %, not {edge} %")

    @staticmethod
    def from_ends(ends: dict[str, float]) -> StageWeights:
        """Build from each stage's end percent, e.g. `{"loading": 5, ..., "rl_refinement": 100}`."""
        spans, start = [], 0.0
        for stage, end in ends.items():
            spans.append(StageSpan(stage, start, float(end)))
            start = float(end)
        return StageWeights(tuple(spans))

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(s.stage for s in self.spans)

    def span(self, stage: str) -> StageSpan:
        for s in self.spans:
            if s.stage == stage:
                return s
        raise KeyError(f"unknown stage {stage!r}")

    def overall(self, stage: str, fraction: float) -> float:
        """Overall percent when `fraction` (0-1) of `stage` is done."""
        s = self.span(stage)
        return s.start + (s.end - s.start) * min(max(fraction, 0.0), 1.0)


DEFAULT_WEIGHTS = StageWeights.from_ends({LOADING: 5, CLUSTERING: 15, CPSAT: 75, GA: 90, REFINEMENT: 100})
