"""Benchmark: rows/s of the non-model built-in metrics (token_count, readability, ROUGE, exact_match).

    .venv/bin/python bench/eval_metrics.py --rows 5000

Static predictions, no model calls; toxicity is skipped (no scorer). One-time loading (the CMU
dictionary, the cl100k_base ranks) happens in a warm-up run and is reported separately.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

WORDS = (
    "the model answers questions about machine learning platforms experiments tracking deployment and "
    "evaluation while readability depends on sentence length syllables and vocabulary choices made by writers"
).split()


def sentence(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(6, 18))
    return " ".join(words).capitalize() + rng.choice([".", "!", "?"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from evaluation import evaluate

    def make_rows(seed: int) -> list[dict[str, str]]:
        # Fresh texts per run: textstat memoizes per text, and reuse would flatter the numbers.
        rng = random.Random(seed)
        rows = []
        for i in range(args.rows):
            target = " ".join(sentence(rng) for _ in range(rng.randint(1, 3)))
            prediction = target if i % 5 == 0 else " ".join(sentence(rng) for _ in range(rng.randint(1, 4)))
            rows.append({"question": f"q{i}", "answer": target, "prediction": prediction})
        return rows

    rows = make_rows(args.seed)
    started = time.perf_counter()
    evaluate(rows[:20], predictions="prediction", targets="answer", model_type="text-summarization",
             log_to_tracking=False)  # fmt: skip
    warmup = time.perf_counter() - started
    print(f"warm-up (load CMU dictionary, cl100k_base, ROUGE): {warmup:.2f} s")
    worst = float("inf")
    for offset, model_type in enumerate(("question-answering", "text-summarization"), start=1):
        rows = make_rows(args.seed + offset)
        started = time.perf_counter()
        result = evaluate(
            rows, predictions="prediction", targets="answer", model_type=model_type, log_to_tracking=False
        )
        elapsed = time.perf_counter() - started
        rate = args.rows / elapsed
        worst = min(worst, rate)
        keys = sorted({k.split("/")[0] for k in result.metrics})
        print(f"{model_type}: {args.rows} rows in {elapsed:.2f} s = {rate:,.0f} rows/s  ({', '.join(keys)})")
    print(f"target >= 2,000 rows/s: {'met' if worst >= 2000 else 'NOT met'}")
    return 0 if worst >= 2000 else 1


if __name__ == "__main__":
    sys.exit(main())
