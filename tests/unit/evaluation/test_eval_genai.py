"""LLM judges: MLflow's v1 prompt word for word, robust reply parsing, failures as explicit row errors."""

from __future__ import annotations

import warnings
from typing import Any

import httpx
import pytest

from evaluation import EvaluationExample, evaluate_async, make_genai_metric
from evaluation.metrics import genai
from evaluation.metrics.judge_parse import JudgeParseError, parse_judge_reply
from tests.unit.evaluation.eval_fakes import GATEWAY_URL, FakeGateway, Reply, echo

JUDGES = ["answer_similarity", "answer_correctness", "faithfulness", "answer_relevance", "relevance"]
ROWS = [
    {"question": "What is MLflow?", "context": "MLflow is a platform.", "answer": "A platform."},
    {"question": "Who made it?", "context": "Databricks made MLflow.", "answer": "Databricks."},
    {"question": "Is it free?", "context": "It is open source.", "answer": "Yes."},
]


def mlflow_genai() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("mlflow.metrics.genai")


@pytest.mark.parametrize("name", JUDGES)
def test_builtin_judge_prompt_is_mlflows(name: str) -> None:
    mlflow_metrics = mlflow_genai()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # MLflow marks its legacy judges deprecated
        theirs = getattr(mlflow_metrics, name)(model="endpoints:/judge")
    ours = getattr(genai, name)(model="endpoints:/judge")
    assert ours.metric_details == theirs.metric_details
    assert ours.key == f"{name}/v1"


def judge_gateway(replies: dict[str, Reply]) -> FakeGateway:
    """`chat` echoes; `judge` answers by the row's question, found in the prompt."""

    def script(body: dict[str, Any]) -> Reply:
        if body["model"] != "judge":
            return echo(body)
        prompt = body["messages"][0]["content"]
        return next((reply for key, reply in replies.items() if key in prompt), Reply("score: 1\njustification: x"))

    return FakeGateway(script)


async def run(gateway: FakeGateway, metric: Any, **kwargs: Any) -> Any:
    return await evaluate_async(
        ROWS,
        model="endpoints:/chat",
        targets="answer",
        extra_metrics=[metric],
        gateway_url=GATEWAY_URL,
        evaluator_config={"col_mapping": {"inputs": "question"}},
        transport=httpx.ASGITransport(app=gateway.app),
        retries=0,
        log_to_tracking=False,
        **kwargs,
    )


def custom_metric(**kwargs: Any) -> Any:
    defaults: dict[str, Any] = {
        "name": "grounded",
        "definition": "Is the output {really} grounded in the context?",
        "grading_prompt": "Score 1: not at all. Score 5: fully.",
        "examples": [
            EvaluationExample(
                input="What is X?", output="X is Y.", score=4, justification="Mostly.", grading_context="X is Y and Z."
            )
        ],
        "model": "endpoints:/judge",
        "grading_context_columns": ["context"],
        "aggregations": ["mean", "min", "max"],
    }
    return make_genai_metric(**{**defaults, **kwargs})


@pytest.mark.anyio
async def test_row_prompt_equals_mlflows_and_judge_gets_mlflow_parameters() -> None:
    gateway = judge_gateway({})
    metric = custom_metric()
    await run(gateway, metric)
    judge_calls = [b for b in gateway.requests if b["model"] == "judge"]
    assert len(judge_calls) == 3
    assert {k: v for k, v in judge_calls[0].items() if k != "messages"} == {
        "model": "judge",
        "temperature": 0.0,
        "max_tokens": 200,
        "top_p": 1.0,
    }

    mlflow_metrics = mlflow_genai()
    pd = pytest.importorskip("pandas")
    from mlflow.metrics.genai.genai_metric import _format_args_string
    from mlflow.metrics.genai.prompt_template import PromptTemplate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # MLflow marks its legacy judges deprecated
        theirs = mlflow_metrics.make_genai_metric(
            name="grounded",
            definition="Is the output {really} grounded in the context?",
            grading_prompt="Score 1: not at all. Score 5: fully.",
            examples=[
                mlflow_metrics.EvaluationExample(
                    input="What is X?",
                    output="X is Y.",
                    score=4,
                    justification="Mostly.",
                    grading_context="X is Y and Z.",
                )
            ],
            model="endpoints:/judge",
            grading_context_columns=["context"],
        )
    # Literal braces in the definition would break MLflow's second format pass; compare around them.
    template = PromptTemplate(theirs.metric_details.replace("{really}", "{{really}}"))
    args = _format_args_string(["context"], {"context": pd.Series([r["context"] for r in ROWS])}, 1)
    expected = template.format(input=ROWS[1]["question"], output="WHO MADE IT?", grading_context_columns=args)
    assert judge_calls[1]["messages"] == [{"role": "user", "content": expected}]


@pytest.mark.anyio
async def test_scores_justifications_and_aggregates() -> None:
    gateway = judge_gateway(
        {
            "What is MLflow?": Reply('{"score": 5, "justification": "Grounded."}'),
            "Who made it?": Reply("**Score:** 3.5\n**Justification:** Partly."),
            "Is it free?": Reply("Sure! Here you go.\nscore: 4\njustification: Fine.\nHope this helps."),
        }
    )
    result = await run(gateway, custom_metric())
    table = result.table
    assert [r["grounded/v1/score"] for r in table] == [5, 3.5, 4]
    assert [r["grounded/v1/justification"] for r in table] == ["Grounded.", "Partly.", "Fine.\nHope this helps."]
    assert [r["grounded/v1/error"] for r in table] == [None, None, None]
    assert {k: v for k, v in result.metrics.items() if k.startswith("grounded")} == {
        "grounded/v1/mean": pytest.approx(12.5 / 3),
        "grounded/v1/min": 3.5,
        "grounded/v1/max": 5.0,
        "grounded/v1/count": 3.0,
        "grounded/v1/error_count": 0.0,
    }


@pytest.mark.anyio
async def test_judge_failures_and_unparseable_replies_are_row_errors() -> None:
    gateway = judge_gateway(
        {
            "What is MLflow?": Reply("judge overloaded", 500),
            "Who made it?": Reply("I think it is pretty good overall."),
            "Is it free?": Reply("score: 2\njustification: Weak."),
        }
    )
    result = await run(gateway, custom_metric())
    errors = [r["grounded/v1/error"] for r in result.table]
    assert errors[0] == "judge call failed: 500: judge overloaded"
    assert errors[1].startswith("unparseable judge reply: no score in the judge's reply")
    assert errors[2] is None
    assert [r["grounded/v1/score"] for r in result.table] == [None, None, 2]
    assert [r["status"] for r in result.table] == ["ok", "ok", "ok"]  # the model answered; the judge failed
    assert result.metrics["grounded/v1/mean"] == 2.0
    assert result.metrics["grounded/v1/count"] == 1.0
    assert result.metrics["grounded/v1/error_count"] == 2.0


@pytest.mark.anyio
async def test_no_valid_score_reports_counts_and_no_nan() -> None:
    gateway = judge_gateway({q: Reply("no idea") for q in ("What is MLflow?", "Who made it?", "Is it free?")})
    result = await run(gateway, custom_metric())
    assert {k: v for k, v in result.metrics.items() if k.startswith("grounded")} == {
        "grounded/v1/count": 0.0,
        "grounded/v1/error_count": 3.0,
    }


@pytest.mark.anyio
async def test_builtin_judge_binds_targets_and_context() -> None:
    gateway = judge_gateway({})
    await run(gateway, genai.answer_similarity(model="endpoints:/judge"))
    await run(gateway, genai.faithfulness(model="endpoints:/judge"))
    prompts = [b["messages"][0]["content"] for b in gateway.requests if b["model"] == "judge"]
    assert "key: targets\nvalue:\nA platform." in prompts[0]
    assert "Input:" not in prompts[0].split("Examples:")[0]  # answer_similarity does not show the input
    assert "key: context\nvalue:\nMLflow is a platform." in prompts[3]


def test_judge_must_be_a_gateway_endpoint_and_examples_must_match_columns() -> None:
    with pytest.raises(ValueError, match="endpoints:/NAME"):
        custom_metric(model="openai:/gpt-4")
    with pytest.raises(ValueError, match="grading_context_columns"):
        custom_metric(examples=[EvaluationExample(output="o", score=1, justification="j", grading_context={"x": "y"})])
    with pytest.raises(ValueError, match="unknown aggregation"):
        custom_metric(aggregations=["p95"])


@pytest.mark.parametrize(
    ("reply", "score", "justification"),
    [
        ("score: 4\njustification: Clear and correct.", 4, "Clear and correct."),
        ('{"score": 3, "justification": "ok"}', 3, "ok"),
        ('{"Score": "5", "Justification": "caps"}', 5, "caps"),
        ('```json\n{"score": 2.5, "justification": "fenced"}\n```', 2.5, "fenced"),
        ("Score: 3.5\nJustification: decimal", 3.5, "decimal"),
        ("**Score:** 4\n**Justification:** bold", 4, "bold"),
        ("**score**: 2\n**justification**: bold keys", 2, "bold keys"),
        ("Here is my assessment.\n\nscore: 5\njustification: prose around.\n", 5, "prose around."),
        ("score: 2, justification: one line", 2, "one line"),
        ("Score: 4/5\nJustification: out of five", 4, "out of five"),
        ("SCORE: 1\nJUSTIFICATION: shouting", 1, "shouting"),
        ("The score is 3 because it is fine.", 3, None),
        ('Result: {"score": 4, "justification": "embedded json"} done', 4, "embedded json"),
    ],
)
def test_parse_judge_replies(reply: str, score: float, justification: str | None) -> None:
    assert parse_judge_reply(reply) == (score, justification)


@pytest.mark.parametrize("reply", ["", "   ", "I cannot grade this.", '{"justification": "no score"}', None])
def test_unparseable_replies_raise(reply: str | None) -> None:
    with pytest.raises(JudgeParseError):
        parse_judge_reply(reply)


def test_standalone_call_without_gateway_reports_errors_per_row() -> None:
    metric = custom_metric()
    value = metric(predictions=["a", "b"], inputs=["q1", "q2"], context=["c1", "c2"])
    assert value.scores == [None, None]
    assert value.errors is not None and value.errors[0].startswith("judge not called: no gateway URL")
