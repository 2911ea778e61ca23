"""The fast ROUGE path equals rouge-score exactly, including repeated tokens and multi-line texts."""

from __future__ import annotations

import random

import pytest

from evaluation.metrics.rouge import ROUGE_TYPES, lcs_length, rouge_fmeasures
from tests.unit.evaluation.eval_data import PREDICTIONS, TARGETS

VOCAB = ["the", "a", "cat", "dog", "sat", "on", "mat", "ran", "fast", "slow", "it's", "42", "Über", "end."]


def random_text(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        lines.append(" ".join(rng.choices(VOCAB, k=rng.randint(0, 25))))
    return "\n".join(lines)


def dp_lcs(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = table[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(table[i - 1][j], table[i][j - 1])
    return table[-1][-1]


def test_bit_parallel_lcs_equals_the_dynamic_programme() -> None:
    rng = random.Random(1)
    for _ in range(300):
        a = tuple(rng.choices(VOCAB[:5], k=rng.randint(0, 40)))
        b = tuple(rng.choices(VOCAB[:5], k=rng.randint(0, 40)))
        assert lcs_length(a, b) == dp_lcs(a, b)


def test_fmeasures_equal_rouge_score() -> None:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=False)
    rng = random.Random(2)
    pairs = [(random_text(rng), random_text(rng)) for _ in range(400)] + list(zip(TARGETS, PREDICTIONS, strict=True))
    pairs += [("", ""), ("!!!", "???"), ("same text", "same text"), ("a\n\nb", "a b")]
    for target, prediction in pairs:
        expected = {k: v.fmeasure for k, v in scorer.score(target, prediction).items()}
        assert rouge_fmeasures(target, prediction) == pytest.approx(expected, abs=1e-12), (target, prediction)
