"""OpenTelemetry spans over OTLP/HTTP (protobuf), one GenAI CLIENT span per call.

Install with `pip install 'llm-gateway[otlp]'`. The spans are built by `tracking.spans` and sent by
the OpenTelemetry SDK's own `OTLPSpanExporter`, so anything that speaks OTLP/HTTP takes them: an
OpenTelemetry Collector, Jaeger, Tempo, Phoenix, Langfuse, MLflow (see also the `mlflow` sink).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tracking.config import OtlpSinkSettings
from tracking.records import TraceRecord
from tracking.sink import register_sink
from tracking.spans import make_resource, record_spans

try:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult
except ImportError:  # pragma: no cover - exercised only without the extra installed
    OTLPSpanExporter = None

_COMPRESSION = {"none": "NoCompression", "gzip": "Gzip", "deflate": "Deflate"}


class OtlpExportError(RuntimeError):
    """Raised by `OtlpSink.write` when the exporter gave up on a batch; the writer spools it."""


@register_sink("otlp")
class OtlpSink:
    """Exports each batch as one OTLP request, from one worker thread (the exporter is blocking)."""

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        compression: str = "none",
        service_name: str = "llm-gateway",
        resource_attributes: Mapping[str, Any] | None = None,
        capture_content: bool = True,
    ) -> None:
        """
        Args:
            endpoint: the full traces URL (`http://host:4318/v1/traces`); None reads
                `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT` like any OTel SDK.
            headers: sent with every export (auth tokens); None reads `OTEL_EXPORTER_OTLP_HEADERS`.
        """
        if OTLPSpanExporter is None:
            raise RuntimeError("the otlp sink needs OpenTelemetry's exporter: pip install 'llm-gateway[otlp]'")
        self._exporter = OTLPSpanExporter(
            endpoint=endpoint,
            headers=dict(headers) if headers else None,
            timeout=timeout,
            compression=getattr(Compression, _COMPRESSION[compression]),
        )
        self.endpoint = self._exporter._endpoint  # resolved from the environment when None
        self.resource = make_resource(service_name, resource_attributes)
        self.capture_content = capture_content
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracking-otlp")

    @classmethod
    def from_settings(cls, settings: OtlpSinkSettings) -> OtlpSink:
        return cls(
            settings.endpoint,
            headers={k: v.get_secret_value() for k, v in settings.headers.items()},
            timeout=settings.timeout,
            compression=settings.compression,
            service_name=settings.service_name,
            resource_attributes=settings.resource_attributes,
            capture_content=settings.capture_content,
        )

    def __repr__(self) -> str:  # never show the headers: they may hold a token
        return f"OtlpSink(endpoint={self.endpoint!r})"

    def _export(self, records: Sequence[TraceRecord]) -> None:
        spans = record_spans(records, self.resource, capture_content=self.capture_content)
        if self._exporter.export(spans) is not SpanExportResult.SUCCESS:
            # The exporter logged why (status, body); raising lets the writer retry and then spool.
            raise OtlpExportError(f"OTLP export of {len(spans)} span(s) to {self.endpoint} failed")

    async def write(self, records: Sequence[TraceRecord]) -> None:
        if records:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._export, list(records))

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._exporter.shutdown)
        self._executor.shutdown(wait=True)
