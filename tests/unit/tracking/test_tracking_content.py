from __future__ import annotations

import pytest

from tracking.config import TrackingSettings
from tracking.content import REDACTED, ContentPolicy


def test_full_capture_keeps_content_but_masks_credentials(make_record):
    policy = ContentPolicy()
    record = make_record(
        request={
            "messages": [{"role": "user", "content": "my key is sk-abcdefghijklmnopqrstuvwx, use it"}],
            "api_key": "plain-secret",
            "extra_headers": {"Authorization": "Bearer abc.def.ghi.jkl"},
            "max_tokens": 5,
        },
        error={"type": "upstream_error", "message": "401 for header Bearer abcdefgh12345678"},
    )
    out = policy.apply(record)
    assert out.request["messages"][0]["content"] == f"my key is {REDACTED}, use it"
    assert out.request["api_key"] == REDACTED
    assert out.request["extra_headers"]["Authorization"] == REDACTED
    assert out.request["max_tokens"] == 5
    assert out.error["message"] == f"401 for header {REDACTED}"
    assert out.response == record.response
    assert record.request["api_key"] == "plain-secret"  # the original record is not mutated


def test_user_redaction_rules_apply_to_request_response_and_error(make_record):
    policy = ContentPolicy(redact=[r"\b\d{3}-\d{2}-\d{4}\b", r"(?i)project\s+\w+"])
    record = make_record(
        request={"messages": [{"role": "user", "content": "SSN 123-45-6789 for PROJECT Apollo"}]},
        response={"choices": [{"message": {"content": "noted 123-45-6789"}}]},
    )
    out = policy.apply(record)
    assert out.request["messages"][0]["content"] == f"SSN {REDACTED} for {REDACTED}"
    assert out.response["choices"][0]["message"]["content"] == f"noted {REDACTED}"


def test_metadata_capture_drops_text_but_keeps_shape(make_record):
    policy = ContentPolicy(capture="metadata")
    out = policy.apply(make_record())
    assert out.request == {"temperature": 0.2}
    assert out.response == {
        "id": "chatcmpl-1",
        "model": "gpt-4o-mini-2024",
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        "choices": [{"index": 0, "finish_reason": "stop"}],
    }
    embed = policy.apply(make_record(request={"input": ["a", "b"]}, response={"data": [{"embedding": [0.1]}] * 2}))
    assert embed.request == {}
    assert embed.response == {"data_count": 2}
    assert policy.apply(make_record(request=None, response=None)).request is None


def test_per_endpoint_capture_from_settings(make_record):
    settings = TrackingSettings.model_validate({"endpoints": {"private": {"capture": "metadata"}}})
    policy = ContentPolicy.from_settings(settings)
    assert "messages" in policy.apply(make_record(endpoint="chat")).request
    assert "messages" not in policy.apply(make_record(endpoint="private")).request


def test_a_record_with_nothing_to_hide_is_passed_through_uncopied(make_record):
    record = make_record()
    assert ContentPolicy().apply(record) is record


@pytest.mark.parametrize(
    "request_body",
    [
        {"headers": {"X-API-KEY": "k"}},
        {"nested": [{"Client_Secret": "k"}]},
        {"messages": [{"content": "BEARER abcdefghijkl"}]},
        {"messages": [{"content": "AKIAABCDEFGHIJKLMNOP"}]},
        {"messages": [{"content": "key AIzaSyA-abcdefghijklmnopqrstuvwxyz0123"}]},
    ],
)
def test_the_fast_precheck_never_skips_a_credential(make_record, request_body):
    out = ContentPolicy().apply(make_record(request=request_body))
    assert REDACTED in str(out.request)


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        (r"\b\d{3}-\d{2}-\d{4}\b", "ssn 123-45-6789"),
        (r"^secret", "secret plans"),  # anchored: checked string by string
        (r"plans(?!.)", "secret plans"),  # lookaround at the string's edge
        (r"line\nbreak", "line\nbreak"),  # JSON escapes the newline: checked string by string
        (r'say "hi"', 'they say "hi"'),
    ],
)
def test_user_rules_are_never_skipped_by_the_precheck(make_record, rule, text):
    policy = ContentPolicy(redact=[rule])
    out = policy.apply(make_record(request={"messages": [{"role": "user", "content": text}]}))
    assert REDACTED in out.request["messages"][0]["content"]


def test_a_plain_user_rule_still_lets_clean_records_through_uncopied(make_record):
    clean = make_record()
    assert ContentPolicy(redact=[r"\b\d{3}-\d{2}-\d{4}\b"]).apply(clean) is clean
