"""LLM-as-a-judge metrics: `make_genai_metric` and the five built-in judges, MLflow's v1 prompt.

The judge is a gateway endpoint (`endpoints:/NAME`). Each row gets one judge call (bounded by
`max_workers`, retried like model calls). A reply without a readable score, or a call that failed,
is an explicit per-row error (`NAME/v1/error` in the table); the aggregates are over the valid
scores only and `count` / `error_count` say how many there were.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evaluation.client import GatewayCallError, GatewayClient, current_client, parse_endpoint_uri, resolve_gateway_url
from evaluation.metrics.base import EvaluationMetric, MetricValue, aggregate, make_metric, valid_scores
from evaluation.metrics.genai_prompts import DEFAULT_PARAMETERS, JUDGES, fill, grading_template
from evaluation.metrics.judge_parse import JudgeParseError, parse_judge_reply

JUDGE_ENV_VAR = "LLM_GATEWAY_JUDGE"
DEFAULT_JUDGE = "endpoints:/judge"


def default_judge() -> str:
    return os.environ.get(JUDGE_ENV_VAR) or DEFAULT_JUDGE


@dataclass
class EvaluationExample:
    """A few-shot example for the judge prompt, as `mlflow.metrics.genai.EvaluationExample`."""

    output: str
    score: float
    justification: str
    input: str | None = None
    grading_context: dict[str, str] | str | None = None

    def _format_grading_context(self) -> str | None:
        if isinstance(self.grading_context, dict):
            return "\n".join(f"key: {key}\nvalue:\n{value}" for key, value in self.grading_context.items())
        return self.grading_context

    def __str__(self) -> str:
        # MLflow drops a section whose value is missing; the spacing below is its spacing.
        parts = []
        if self.input is not None:
            parts.append(f"\nExample Input:\n{self.input}\n")
        parts.append(f"\nExample Output:\n{self.output}\n")
        if (context := self._format_grading_context()) is not None:
            parts.append(f"\nAdditional information used by the model:\n{context}\n")
        parts.append(f"\nExample score: {self.score}\nExample justification: {self.justification}\n        ")
        return "".join(parts)


def _context_block(columns: Sequence[str], values: dict[str, Any], index: int) -> str:
    if not columns:
        return ""
    lines = [f"key: {column}\nvalue:\n{_cell(values[column], index)}" for column in columns]
    return "Additional information used by the model:\n" + "\n".join(lines)


def _cell(column: Any, index: int) -> Any:
    return column.iloc[index] if hasattr(column, "iloc") else column[index]


def _check_example(example: EvaluationExample, columns: list[str], include_input: bool) -> EvaluationExample:
    context = example.grading_context
    if context is None and not columns:
        keys: set[str] = set()
    elif isinstance(context, dict):
        keys = set(context)
    else:
        # A bare string is the first grading context column's value, as MLflow reads it.
        context = {columns[0]: context} if columns else context
        keys = set(context) if isinstance(context, dict) else set()
    if keys != set(columns):
        raise ValueError(
            f"example grading_context has columns {sorted(keys)}, but the metric's grading_context_columns are "
            f"{columns}"
        )
    return EvaluationExample(
        output=example.output,
        score=example.score,
        justification=example.justification,
        input=example.input if include_input else None,
        grading_context=context,
    )


def make_genai_metric(
    name: str,
    definition: str,
    grading_prompt: str,
    examples: Sequence[EvaluationExample] | None = None,
    version: str = "v1",
    model: str | None = None,
    grading_context_columns: str | Sequence[str] | None = None,
    include_input: bool = True,
    parameters: dict[str, Any] | None = None,
    aggregations: Sequence[str] | None = None,
    greater_is_better: bool = True,
    max_workers: int = 10,
    metric_metadata: dict[str, Any] | None = None,
    extra_headers: dict[str, str] | None = None,
) -> EvaluationMetric:
    """An LLM-judged metric with MLflow's v1 prompt; the judge is the gateway endpoint `model`."""
    if version != "v1":
        raise ValueError(f"judge prompt version {version!r} is unknown (known: v1)")
    model = model or default_judge()
    endpoint = parse_endpoint_uri(model)
    if isinstance(grading_context_columns, str):
        grading_context_columns = [grading_context_columns]
    columns = list(grading_context_columns or [])
    aggregations = list(aggregations or ("mean", "variance", "p90"))
    aggregate([], aggregations)  # unknown names fail here, not after the judge calls
    shots = [_check_example(e, columns, include_input) for e in examples or ()]
    examples_text = f"Examples:\n{chr(10).join(map(str, shots))}" if shots else ""
    template = fill(
        grading_template(include_input),
        name=name,
        definition=definition,
        grading_prompt=grading_prompt,
        examples=examples_text,
    )
    params = dict(DEFAULT_PARAMETERS if parameters is None else parameters)

    def prompt_for(output: Any, input_text: Any, values: dict[str, Any], index: int) -> str:
        fields = {"output": str(output), "grading_context_columns": _context_block(columns, values, index)}
        if include_input:
            fields["input"] = str(input_text)
        return fill(template, **fields)

    async def eval_fn(predictions: Any, metrics: Any = None, inputs: Any = None, **context: Any) -> MetricValue:
        outputs = list(predictions)
        input_list = list(inputs) if inputs is not None else [""] * len(outputs)
        prompts = [prompt_for(o, input_list[i], context, i) for i, o in enumerate(outputs)]
        results = await _judge_all(endpoint, prompts, params, max_workers, extra_headers)
        scores = [r[0] for r in results]
        errors = [r[2] for r in results]
        agg = aggregate(scores, aggregations)
        agg["count"] = float(len(valid_scores(scores)))
        agg["error_count"] = float(sum(1 for e in errors if e is not None))
        return MetricValue(scores, [r[1] for r in results], agg, errors=errors)

    signature = [
        inspect.Parameter("predictions", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("metrics", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("inputs", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        *(inspect.Parameter(c, inspect.Parameter.KEYWORD_ONLY) for c in columns),
    ]
    eval_fn.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    genai_args = {
        "name": name,
        "definition": definition,
        "grading_prompt": grading_prompt,
        "examples": [vars(e) for e in shots],
        "version": version,
        "model": model,
        "grading_context_columns": columns,
        "include_input": include_input,
        "parameters": params,
        "aggregations": aggregations,
        "greater_is_better": greater_is_better,
        "max_workers": max_workers,
    }
    return make_metric(
        eval_fn=eval_fn,
        greater_is_better=greater_is_better,
        name=name,
        version=version,
        metric_details=template,
        metric_metadata=metric_metadata,
        genai_metric_args=genai_args,
    )


async def _judge_all(
    endpoint: str,
    prompts: list[str],
    params: dict[str, Any],
    max_workers: int,
    extra_headers: dict[str, str] | None,
) -> list[tuple[float | None, str | None, str | None]]:
    """(score, justification, error) per prompt."""
    client = current_client()
    own_client = None
    if client is None:
        try:
            client = own_client = GatewayClient(resolve_gateway_url(), concurrency=max_workers)
        except ValueError as exc:
            return [(None, None, f"judge not called: {exc}")] * len(prompts)
    semaphore = asyncio.Semaphore(max(1, max_workers))

    async def one(prompt: str) -> tuple[float | None, str | None, str | None]:
        async with semaphore:
            try:
                answer = await client.ask(endpoint, messages=[{"role": "user", "content": prompt}], **params)
            except GatewayCallError as exc:
                return None, None, f"judge call failed: {exc}"
        try:
            score, justification = parse_judge_reply(answer.text)
        except JudgeParseError as exc:
            return None, None, f"unparseable judge reply: {exc}"
        return score, justification, None

    try:
        return list(await asyncio.gather(*(one(p) for p in prompts)))
    finally:
        if own_client is not None:
            await own_client.aclose()


def _builtin_judge(
    key: str,
    model: str | None,
    metric_version: str | None,
    examples: Sequence[EvaluationExample] | None,
    metric_metadata: dict[str, Any] | None,
    parameters: dict[str, Any] | None,
) -> EvaluationMetric:
    text = JUDGES[key]
    default_examples = [EvaluationExample(**e) for e in text.examples]
    return make_genai_metric(
        name=key,
        definition=text.definition,
        grading_prompt=text.grading_prompt,
        examples=default_examples if examples is None else examples,
        version=metric_version or "v1",
        model=model,
        grading_context_columns=list(text.grading_context_columns),
        include_input=text.include_input,
        parameters=parameters,
        aggregations=["mean", "variance", "p90"],
        greater_is_better=True,
        metric_metadata=metric_metadata,
    )


def answer_similarity(
    model: str | None = None,
    metric_version: str | None = None,
    examples: Sequence[EvaluationExample] | None = None,
    metric_metadata: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
) -> EvaluationMetric:
    """Semantic similarity of the output to `targets` (1-5); the judge does not see the input."""
    return _builtin_judge("answer_similarity", model, metric_version, examples, metric_metadata, parameters)


def answer_correctness(
    model: str | None = None,
    metric_version: str | None = None,
    examples: Sequence[EvaluationExample] | None = None,
    metric_metadata: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
) -> EvaluationMetric:
    """Factual correctness of the output against `targets` (1-5)."""
    return _builtin_judge("answer_correctness", model, metric_version, examples, metric_metadata, parameters)


def faithfulness(
    model: str | None = None,
    metric_version: str | None = None,
    examples: Sequence[EvaluationExample] | None = None,
    metric_metadata: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
) -> EvaluationMetric:
    """How much of the output the `context` column supports (1-5); the input is not shown."""
    return _builtin_judge("faithfulness", model, metric_version, examples, metric_metadata, parameters)


def answer_relevance(
    model: str | None = None,
    metric_version: str | None = None,
    examples: Sequence[EvaluationExample] | None = None,
    metric_metadata: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
) -> EvaluationMetric:
    """How directly the output answers the input (1-5)."""
    return _builtin_judge("answer_relevance", model, metric_version, examples, metric_metadata, parameters)


def relevance(
    model: str | None = None,
    metric_version: str | None = None,
    examples: Sequence[EvaluationExample] | None = None,
    metric_metadata: dict[str, Any] | None = None,
    parameters: dict[str, Any] | None = None,
) -> EvaluationMetric:
    """How well the output answers the input given the `context` column (1-5)."""
    return _builtin_judge("relevance", model, metric_version, examples, metric_metadata, parameters)


JUDGE_FACTORIES = {
    "answer_similarity": answer_similarity,
    "answer_correctness": answer_correctness,
    "faithfulness": faithfulness,
    "answer_relevance": answer_relevance,
    "relevance": relevance,
}
