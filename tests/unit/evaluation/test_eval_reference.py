"""Built-in metrics match textstat, rouge-score, tiktoken and numpy on the same texts, to 1e-6."""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.resources
from typing import Any

import numpy as np
import pytest

from evaluation import evaluate
from evaluation.metrics.offline import get_encoding
from tests.unit.evaluation.eval_data import PREDICTIONS, TARGETS

TOL = 1e-6
# tiktoken's published sha256 of cl100k_base.tiktoken (tiktoken_ext/openai_public.py).
CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|"""
    r"""\s+(?!\S)|\s"""
)


def reference_aggregates(scores: list[float]) -> dict[str, float]:
    return {"mean": np.mean(scores), "variance": np.var(scores), "p90": np.percentile(scores, 90)}


def reference_scores() -> dict[str, list[Any]]:
    import textstat
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=False)
    rouge = [scorer.score(t, p) for p, t in zip(PREDICTIONS, TARGETS, strict=True)]
    return {
        "flesch_kincaid_grade_level/v1": [textstat.flesch_kincaid_grade(p) for p in PREDICTIONS],
        "ari_grade_level/v1": [textstat.automated_readability_index(p) for p in PREDICTIONS],
        **{f"{k}/v1": [r[k].fmeasure for r in rouge] for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")},
    }


def tiktoken_cl100k() -> Any:
    """tiktoken's own encoder over the ranks file bpe-openai ships, after checking its hash."""
    tiktoken = pytest.importorskip("tiktoken")
    get_encoding("cl100k_base")  # imports bpe_openai with its deprecation warning silenced
    raw = gzip.decompress((importlib.resources.files("bpe_openai") / "data" / "cl100k_base.tiktoken.gz").read_bytes())
    assert hashlib.sha256(raw).hexdigest() == CL100K_SHA256
    ranks = {base64.b64decode(tok): int(rank) for tok, rank in (line.split() for line in raw.splitlines() if line)}
    return tiktoken.Encoding("cl100k_base", pat_str=CL100K_PATTERN, mergeable_ranks=ranks, special_tokens={})


@pytest.fixture(scope="module")
def summarization_result() -> Any:
    rows = [
        {"text": f"doc {i}", "summary": t, "prediction": p}
        for i, (p, t) in enumerate(zip(PREDICTIONS, TARGETS, strict=True))
    ]
    return evaluate(rows, predictions="prediction", targets="summary", model_type="text-summarization")


def test_readability_and_rouge_match_references(summarization_result: Any) -> None:
    result = summarization_result
    assert result.metric_errors == {}
    for key, scores in reference_scores().items():
        column = [row[f"{key}/score"] for row in result.table]
        assert column == pytest.approx(scores, abs=TOL), key
        for agg, value in reference_aggregates(scores).items():
            assert result.metrics[f"{key}/{agg}"] == pytest.approx(value, abs=TOL), f"{key}/{agg}"


def test_token_count_matches_tiktoken_ids(summarization_result: Any) -> None:
    encoding = tiktoken_cl100k()
    expected = [len(encoding.encode_ordinary(p)) for p in PREDICTIONS]
    assert [row["token_count"] for row in summarization_result.table] == expected
    # MLflow reports token_count per row only, with no aggregate keys.
    assert not [k for k in summarization_result.metrics if k.startswith("token_count")]


def test_bpe_openai_token_ids_equal_tiktoken() -> None:
    ours, theirs = get_encoding("cl100k_base"), tiktoken_cl100k()
    texts = [*PREDICTIONS, *TARGETS, "  leading spaces\n\n\ttabs  ", "<|endoftext|> as plain text", "1234567890" * 7]
    for text in texts:
        assert ours.encode_ordinary(text) == theirs.encode_ordinary(text), text


def test_exact_match_is_share_of_identical_rows() -> None:
    rows = [{"q": str(i), "a": t, "p": p} for i, (p, t) in enumerate(zip(PREDICTIONS, TARGETS, strict=True))]
    result = evaluate(rows, predictions="p", targets="a", model_type="question-answering")
    expected = sum(p == t for p, t in zip(PREDICTIONS, TARGETS, strict=True)) / len(TARGETS)
    assert result.metrics["exact_match/v1"] == pytest.approx(expected, abs=TOL)
    assert expected == pytest.approx(2 / 12)  # "Paris" and "Yes."
    assert "exact_match/v1/score" not in result.table[0]  # aggregate only, as in MLflow


def test_model_type_text_has_no_target_metrics() -> None:
    rows = [{"q": "x", "p": p} for p in PREDICTIONS]
    result = evaluate(rows, predictions="p", model_type="text")
    assert {k.split("/")[0] for k in result.metrics} == {"flesch_kincaid_grade_level", "ari_grade_level"}
    assert "toxicity/v1" in result.skipped_metrics
