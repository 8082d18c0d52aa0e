"""The scoring worker's traces: a `gen_ai.evaluation.result` event for each scored pair, on a
short span that is a child of the mirror's span (its context travels in the pair record), so
the verdict sits in the trace of the call it judges.

Needs the `otel` extra; the worker's entry point builds this only when tracing is on.
"""

from __future__ import annotations

from typing import Any, Final

from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.constants import ARM_SHADOW
from gateway.records import PairRecord, ScoreRecord
from gateway.tracing.spans import SHADOWGATE_ARM, Tracing

# GenAI semantic conventions (development status); a test checks them against the semconv
# package's incubating module.
GEN_AI_EVALUATION_RESULT: Final = "gen_ai.evaluation.result"
GEN_AI_EVALUATION_NAME: Final = "gen_ai.evaluation.name"
GEN_AI_EVALUATION_SCORE_VALUE: Final = "gen_ai.evaluation.score.value"
GEN_AI_EVALUATION_SCORE_LABEL: Final = "gen_ai.evaluation.score.label"
GEN_AI_EVALUATION_EXPLANATION: Final = "gen_ai.evaluation.explanation"

# The evaluation's name; its score is the divergence above production's own noise floor, and
# its label says whether the pair went to human review.
EVALUATION: Final = "shadowgate.divergence"
LABEL_REVIEW: Final = "review"
LABEL_PASS: Final = "pass"
SHADOWGATE_PAIR_ID: Final = "shadowgate.pair.id"


class EvaluationEvents:
    """Emits one evaluation event per scored pair into the pair's mirror trace."""

    def __init__(self, tracing: Tracing) -> None:
        self._tracer = tracing.tracer
        # The pair record carries a W3C traceparent whatever OTEL_PROPAGATORS says.
        self._parser: TextMapPropagator = TraceContextTextMapPropagator()

    def emit(self, pair: PairRecord, score: ScoreRecord) -> None:
        """Nothing for a pair whose mirror was not traced: an event outside the mirror's trace
        would tie the verdict to nothing."""
        if pair.traceparent is None:
            return
        parent = self._parser.extract({"traceparent": pair.traceparent})
        attributes: dict[str, Any] = {
            GEN_AI_EVALUATION_NAME: EVALUATION,
            GEN_AI_EVALUATION_SCORE_LABEL: LABEL_REVIEW if score.queued else LABEL_PASS,
        }
        if score.excess is not None:
            attributes[GEN_AI_EVALUATION_SCORE_VALUE] = score.excess
        if score.reasons:
            attributes[GEN_AI_EVALUATION_EXPLANATION] = "; ".join(score.reasons)
        span = self._tracer.start_span(
            "evaluate divergence",
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes={SHADOWGATE_ARM: ARM_SHADOW, SHADOWGATE_PAIR_ID: pair.id},
        )
        span.add_event(GEN_AI_EVALUATION_RESULT, attributes=attributes)
        span.end()
