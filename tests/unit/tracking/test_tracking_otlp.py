"""The otlp sink against a local OTLP/HTTP receiver that decodes what the SDK's exporter sends."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytest.importorskip("opentelemetry.exporter.otlp.proto.http")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tracking import TrackingSettings, build_writer
from tracking.records import Usage
from tracking.sink import get_sink_class
from tracking.sinks.otlp import OtlpExportError, OtlpSink
from tracking.spans import span_ids

pytestmark = pytest.mark.anyio


class Receiver:
    """An OTLP/HTTP traces endpoint on 127.0.0.1 that keeps every decoded request."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        self.fail_with: int | None = None  # answer this status instead of 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                if receiver.fail_with is not None:
                    self.send_response(receiver.fail_with)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.requests.append(request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def spans(self) -> list[Span]:
        return [s for r in self.requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]

    def resources(self) -> list[dict[str, Any]]:
        return [attributes(rs.resource.attributes) for r in self.requests for rs in r.resource_spans]


def value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in kvs}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r._thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


async def test_chat_call_becomes_a_genai_client_span(receiver, make_record):
    record = make_record(
        provider="gemini",
        response_model="gpt-4o-mini-2024",
        upstream_id="chatcmpl-1",
        finish_reason="stop",
        ttft_ms=4.0,
        client_request_id="req-7",
        request={"messages": [{"role": "user", "content": "hello"}], "temperature": 0.2, "max_tokens": 5},
    )
    sink = OtlpSink(receiver.url, service_name="gw-test", resource_attributes={"deployment.environment": "test"})
    await sink.write([record])
    await sink.aclose()

    [span] = receiver.spans()
    attrs = attributes(span.attributes)
    assert span.name == "chat gpt-4o-mini"
    assert span.kind == Span.SPAN_KIND_CLIENT
    assert span.status.code == Status.STATUS_CODE_OK
    assert span.start_time_unix_nano == int(record.timestamp * 1e9)
    assert span.end_time_unix_nano - span.start_time_unix_nano == 12_500_000  # latency_ms=12.5
    trace_id, span_id = span_ids(record.id)
    assert span.trace_id == trace_id.to_bytes(16, "big")
    assert span.span_id == span_id.to_bytes(8, "big")
    assert not span.parent_span_id
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "gcp.gemini"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini-2024"
    assert attrs["gen_ai.response.id"] == "chatcmpl-1"
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["gen_ai.usage.input_tokens"] == 3
    assert attrs["gen_ai.usage.output_tokens"] == 1
    assert attrs["gen_ai.request.temperature"] == 0.2
    assert attrs["gen_ai.request.max_tokens"] == 5
    assert attrs["http.response.status_code"] == 200
    assert attrs["llm_gateway.endpoint"] == "chat"
    assert attrs["llm_gateway.record_id"] == record.id
    assert attrs["llm_gateway.ttft_ms"] == 4.0
    assert attrs["llm_gateway.client_request_id"] == "req-7"
    assert "error.type" not in attrs
    assert attrs["gen_ai.input.messages"] == '[{"role":"user","parts":[{"type":"text","content":"hello"}]}]'
    assert attrs["gen_ai.output.messages"] == (
        '[{"role":"assistant","parts":[{"type":"text","content":"hi"}],"finish_reason":"stop"}]'
    )
    [resource] = receiver.resources()
    assert resource["service.name"] == "gw-test"
    assert resource["deployment.environment"] == "test"
    scope = receiver.requests[0].resource_spans[0].scope_spans[0].scope
    assert scope.name == "llm-gateway"


async def test_failed_call_has_error_status_and_type(receiver, make_record):
    record = make_record(
        status=504,
        response=None,
        error={"type": "timeout_error", "message": "upstream timed out after 30 s"},
        usage=Usage(),
        endpoint_type="llm/v1/completions",
        request={"prompt": "once upon"},
    )
    sink = OtlpSink(receiver.url)
    await sink.write([record])
    await sink.aclose()
    [span] = receiver.spans()
    attrs = attributes(span.attributes)
    assert span.name == "text_completion gpt-4o-mini"
    assert span.status.code == Status.STATUS_CODE_ERROR
    assert span.status.message == "upstream timed out after 30 s"
    assert attrs["error.type"] == "timeout_error"
    assert attrs["http.response.status_code"] == 504
    assert "gen_ai.usage.input_tokens" not in attrs
    assert "gen_ai.output.messages" not in attrs
    assert attrs["gen_ai.input.messages"] == '[{"role":"user","parts":[{"type":"text","content":"once upon"}]}]'


async def test_embeddings_and_content_off(receiver, make_record):
    record = make_record(
        endpoint_type="llm/v1/embeddings",
        model="text-embedding-3-small",
        request={"input": ["a", "b"]},
        response={"data": [{"embedding": [0.1]}], "usage": {"prompt_tokens": 2}},
        usage=Usage(2, None, 2),
    )
    sink = OtlpSink(receiver.url, capture_content=False)
    await sink.write([record])
    await sink.aclose()
    [span] = receiver.spans()
    attrs = attributes(span.attributes)
    assert span.name == "embeddings text-embedding-3-small"
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert attrs["gen_ai.usage.input_tokens"] == 2
    assert "gen_ai.usage.output_tokens" not in attrs
    assert not [k for k in attrs if k.startswith(("gen_ai.input", "gen_ai.output"))]


async def test_settings_build_the_sink_with_headers_from_env_and_gzip(receiver, make_record, monkeypatch):
    monkeypatch.setenv("OTLP_TEST_TOKEN", "tok-123456")
    settings = TrackingSettings.model_validate(
        {
            "sinks": [
                {
                    "type": "otlp",
                    "endpoint": receiver.url,
                    "headers": {"authorization": "$OTLP_TEST_TOKEN"},
                    "compression": "gzip",
                }
            ],
            "spool_dir": None,
        }
    )
    assert "tok-123456" not in repr(settings)
    writer = build_writer(settings)
    assert "tok-123456" not in repr(writer.sink)
    await writer.start()
    records = [make_record() for _ in range(25)]
    for r in records:
        writer.submit(r)
    await writer.aclose()
    assert sorted(attributes(s.attributes)["llm_gateway.record_id"] for s in receiver.spans()) == [
        r.id for r in records
    ]
    assert receiver.headers[0]["authorization"] == "tok-123456"
    assert receiver.headers[0]["content-encoding"] == "gzip"
    assert receiver.headers[0]["content-type"] == "application/x-protobuf"
    assert get_sink_class("otlp") is OtlpSink


async def test_receiver_down_spools_then_replays(receiver, make_record, tmp_path):
    settings = TrackingSettings.model_validate(
        {"sinks": [{"type": "otlp", "endpoint": receiver.url, "timeout": 1}], "spool_dir": str(tmp_path / "spool")}
    )
    writer = build_writer(settings)
    writer.retry_delay = 0.0
    writer.max_sink_backoff = 0.0
    await writer.start()
    receiver.fail_with = 400  # not retryable for the exporter: fails fast
    first = [make_record() for _ in range(10)]
    for r in first:
        writer.submit(r)
    await writer.flush()
    assert writer.spilled == 10
    assert receiver.spans() == []

    receiver.fail_with = None
    second = [make_record() for _ in range(5)]
    for r in second:
        writer.submit(r)
    await writer.aclose()
    got = [attributes(s.attributes)["llm_gateway.record_id"] for s in receiver.spans()]
    assert sorted(got) == sorted(r.id for r in first + second)
    assert writer.dropped == 0


async def test_write_raises_when_the_export_fails(receiver, make_record):
    receiver.fail_with = 401
    sink = OtlpSink(receiver.url, timeout=1)
    with pytest.raises(OtlpExportError, match="failed"):
        await sink.write([make_record()])
    await sink.aclose()


def test_settings_refuse_an_unset_header_variable(monkeypatch):
    monkeypatch.delenv("OTLP_UNSET_TOKEN", raising=False)
    with pytest.raises(ValueError, match="OTLP_UNSET_TOKEN is not set"):
        TrackingSettings.model_validate({"sinks": [{"type": "otlp", "headers": {"x": "${OTLP_UNSET_TOKEN}"}}]})


async def test_metadata_capture_sends_no_messages_even_with_capture_content(receiver, make_record):
    settings = TrackingSettings.model_validate(
        {"sinks": [{"type": "otlp", "endpoint": receiver.url}], "capture": "metadata", "spool_dir": None}
    )
    writer = build_writer(settings)
    await writer.start()
    writer.submit(make_record(finish_reason="stop", upstream_id="chatcmpl-1"))
    await writer.aclose()
    [span] = receiver.spans()
    attrs = attributes(span.attributes)
    assert not [k for k in attrs if k.startswith(("gen_ai.input", "gen_ai.output"))]
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["gen_ai.request.temperature"] == 0.2  # parameters are metadata, kept
    assert attrs["gen_ai.usage.input_tokens"] == 3
