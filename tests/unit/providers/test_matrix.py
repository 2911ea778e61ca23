"""The docs' compatibility matrix is the golden cases' coverage, and every gap is refused clearly."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidRequest
from gateway.providers import get_provider_class
from tests.unit.providers.conformance import CAPABILITIES, build, load_cases
from tests.unit.providers.matrix import DOC, covered, doc_table, render

COVERED = covered()
FIRST_CASE = {}
for _case in load_cases():
    FIRST_CASE.setdefault(_case.provider_name, _case.data)
ENDPOINT = {"chat": "llm/v1/chat", "completions": "llm/v1/completions", "embeddings": "llm/v1/embeddings"}
ASK = [{"role": "user", "content": "What's the weather in Paris?"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
IMAGE = [
    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}
]
PROBES = {
    "stream": ({"messages": ASK}, True),
    "tools": ({"messages": ASK, "tools": TOOLS}, False),
    "tools_stream": ({"messages": ASK, "tools": TOOLS}, True),
    "json_mode": ({"messages": ASK, "response_format": {"type": "json_object"}}, False),
    "vision": ({"messages": IMAGE}, False),
}
# Gaps in adapters owned elsewhere: they silently drop the parameter instead of refusing it.
KNOWN_SILENT: dict[tuple[str, str], str] = {}
GAPS = [(p, cap) for p, caps in sorted(COVERED.items()) for cap in CAPABILITIES if cap not in caps]


def test_docs_hold_the_generated_matrix():
    assert doc_table(DOC.read_text()) == render(), "run: .venv/bin/python tests/unit/providers/matrix.py"


@pytest.mark.parametrize(("provider", "capability"), GAPS, ids=[f"{p}-{c}" for p, c in GAPS])
def test_what_the_matrix_says_no_to_is_refused(provider, capability):
    if (provider, capability) in KNOWN_SILENT:
        pytest.xfail(KNOWN_SILENT[(provider, capability)])
    cls = get_provider_class(provider)
    if capability in ENDPOINT:
        assert ENDPOINT[capability] not in cls.endpoint_types
        return
    if "llm/v1/chat" not in cls.endpoint_types:
        return  # no chat at all: the chat-only capabilities can't be asked for
    p = build(provider, {**FIRST_CASE[provider], "endpoint_type": "llm/v1/chat"})
    body, stream = PROBES[capability]
    with pytest.raises(InvalidRequest) as info:
        p.chat_request(body, stream)
    assert provider in info.value.message
