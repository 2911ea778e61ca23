"""Shared predictions and targets for reference-value tests: prose, numbers, lists, unicode, newlines."""

from __future__ import annotations

PREDICTIONS = [
    "MLflow is an open-source platform for managing the end-to-end machine learning lifecycle.",
    "The cat sat on the mat. It was a sunny day, and everyone was happy!",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Paris",
    "1. Install the package.\n2. Run the server.\n3. Send a request to /v1/chat/completions.",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism notwithstanding, the committee adjourned.",
    "Yes.",
    "Die Hauptstadt von Deutschland ist Berlin. Café naïve résumé — 東京 🤖.",
    "In 2023, revenue grew 12.5% to $4.2 billion; margins were 31%.",
    "the quick brown fox jumps over the lazy dog\nthe lazy dog sleeps\nthe fox runs away quickly",
    "",
    "It's a well-known fact that you'll want to re-run tests after you've changed code, isn't it?",
]

TARGETS = [
    "MLflow is an open source platform for the machine learning lifecycle.",
    "A cat sat on a mat on a sunny day.",
    "Photosynthesis turns light into chemical energy.",
    "Paris",
    "Install the package, run the server, then send a request.",
    "The committee adjourned.",
    "Yes.",
    "Berlin is the capital of Germany.",
    "Revenue grew 12.5% to $4.2 billion.",
    "the quick brown fox jumps over the lazy dog\nthe fox runs away",
    "Nothing.",
    "You will want to re-run tests after changing code.",
]
