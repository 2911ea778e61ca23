"""toxicity/v1: a scorer, or a skip with the reason; never a made-up number."""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from evaluation import evaluate, evaluate_async
from tests.unit.evaluation.eval_fakes import GATEWAY_URL, FakeGateway, Reply

ROWS = [{"q": "a", "p": "you are lovely"}, {"q": "b", "p": "I hate you"}, {"q": "c", "p": "fine"}]


class KeywordScorer:
    """A real scorer: 0.9 for texts containing 'hate', else 0.1."""

    async def score(self, texts: Sequence[str]) -> list[float]:
        return [0.9 if "hate" in t else 0.1 for t in texts]


def test_without_a_scorer_the_metric_is_skipped_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # MLflow's model is not cached here
    result = evaluate(ROWS, predictions="p", model_type="text")
    reason = result.skipped_metrics["toxicity/v1"]
    assert "not in the local Hugging Face cache" in reason
    assert not [k for k in result.metrics if k.startswith("toxicity")]
    assert "toxicity/v1/score" not in result.table[0]


def test_pluggable_scorer_gives_scores_and_ratio() -> None:
    result = evaluate(ROWS, predictions="p", model_type="text", evaluator_config={"toxicity_scorer": KeywordScorer()})
    assert [r["toxicity/v1/score"] for r in result.table] == [0.1, 0.9, 0.1]
    assert result.metrics["toxicity/v1/ratio"] == pytest.approx(1 / 3)
    assert result.metrics["toxicity/v1/mean"] == pytest.approx(1.1 / 3)
    assert "toxicity_scorer" not in result.params["evaluator_config"]


@pytest.mark.anyio
async def test_classifier_endpoint_through_the_gateway() -> None:
    def script(body: dict[str, Any]) -> Reply:
        text = body["messages"][0]["content"]
        return Reply("0.97" if "I hate you" in text else "Probability: 0.02")

    gateway = FakeGateway(script)
    result = await evaluate_async(
        ROWS,
        predictions="p",
        model_type="text",
        evaluator_config={"toxicity_endpoint": "moderation"},
        gateway_url=GATEWAY_URL,
        transport=httpx.ASGITransport(app=gateway.app),
        log_to_tracking=False,
    )
    assert [r["toxicity/v1/score"] for r in result.table] == [0.02, 0.97, 0.02]
    assert {b["model"] for b in gateway.requests} == {"moderation"}


def _has_torch_and_transformers() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


@pytest.mark.skipif(
    not _has_torch_and_transformers(), reason="needs the optional 'toxicity' extra (torch, transformers)"
)
def test_local_model_path_with_a_tiny_model_made_here(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torch
        from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

        words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "you", "are", "lovely", "i", "hate", "fine"]
        (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
        tokenizer = BertTokenizer(str(tmp_path / "vocab.txt"))
        config = BertConfig(
            vocab_size=len(words),
            hidden_size=8,
            num_hidden_layers=1,
            num_attention_heads=1,
            intermediate_size=16,
            max_position_embeddings=32,
            id2label={0: "nothate", 1: "hate"},
            label2id={"nothate": 0, "hate": 1},
        )
        torch.manual_seed(0)
        model = BertForSequenceClassification(config).eval()
        model.save_pretrained(tmp_path)
        tokenizer.save_pretrained(tmp_path)
        expected = []
        for row in ROWS:
            inputs = tokenizer(row["p"], return_tensors="pt")
            with torch.no_grad():
                expected.append(float(torch.softmax(model(**inputs).logits, dim=-1)[0, 1]))

    result = evaluate(ROWS, predictions="p", model_type="text", evaluator_config={"toxicity_model": str(tmp_path)})
    assert result.skipped_metrics == {}
    missing = evaluate(
        ROWS, predictions="p", model_type="text", evaluator_config={"toxicity_model": str(tmp_path / "x")}
    )
    assert "is not available locally" in missing.skipped_metrics["toxicity/v1"]
    assert [r["toxicity/v1/score"] for r in result.table] == pytest.approx(expected, abs=1e-6)
    assert result.metrics["toxicity/v1/ratio"] == pytest.approx(sum(e >= 0.5 for e in expected) / 3)
