from __future__ import annotations

import pydantic
import pytest

from tracking import build_sink, build_writer
from tracking.config import JsonlSinkSettings, SQLiteSinkSettings, TrackingSettings
from tracking.sink import FanoutSink, NullSink
from tracking.sinks.sqlite import SQLiteSink


def test_defaults_are_one_sqlite_sink_and_full_capture():
    settings = TrackingSettings()
    assert settings.sinks == [SQLiteSinkSettings(path="llm-gateway-traces.db")]
    assert settings.capture == "full"
    assert settings.batch_size == 1000
    assert settings.spool_dir == "llm-gateway-spool"


@pytest.mark.parametrize(
    ("data", "types"),
    [
        ({"sink": "none"}, []),
        ({"sink": "sqlite"}, ["sqlite"]),
        ({"sink": ["sqlite", "jsonl"]}, ["sqlite", "jsonl"]),
        ({"sink": {"type": "jsonl", "path": "x.jsonl"}}, ["jsonl"]),
        ({"sinks": [{"type": "sqlite", "path": "a.db"}, {"type": "none"}]}, ["sqlite"]),
        ({"sinks": []}, []),
    ],
)
def test_sink_shorthands(data, types):
    assert [s.type for s in TrackingSettings.model_validate(data).sinks] == types


def test_unknown_keys_are_refused_with_their_path():
    with pytest.raises(pydantic.ValidationError) as info:
        TrackingSettings.model_validate({"batchsize": 10})
    assert "batchsize" in str(info.value)
    assert "Extra inputs are not permitted" in str(info.value)
    with pytest.raises(pydantic.ValidationError) as info:
        TrackingSettings.model_validate({"sinks": [{"type": "sqlite", "pth": "x"}]})
    assert "sinks.0.sqlite.pth" in str(info.value)


def test_unknown_sink_type_names_the_known_ones():
    with pytest.raises(pydantic.ValidationError) as info:
        TrackingSettings.model_validate({"sink": "sqlit"})
    assert "'sqlite'" in str(info.value) and "'jsonl'" in str(info.value)


def test_sink_and_sinks_together_are_refused():
    with pytest.raises(pydantic.ValidationError, match="either 'sink' or 'sinks'"):
        TrackingSettings.model_validate({"sink": "sqlite", "sinks": []})


def test_invalid_redaction_regex_is_named():
    with pytest.raises(pydantic.ValidationError, match=r"redact\[1\]: invalid regular expression"):
        TrackingSettings.model_validate({"redact": ["ok", "(unclosed"]})


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"flush_interval": -1}, {"capture": "everything"}])
def test_bad_values_are_refused(bad):
    with pytest.raises(pydantic.ValidationError):
        TrackingSettings.model_validate(bad)


def test_postgres_dsn_reads_the_environment_and_stays_secret(monkeypatch):
    monkeypatch.setenv("PG_TEST_DSN", "postgresql://u:hunter2@localhost/db")
    settings = TrackingSettings.model_validate({"sinks": [{"type": "postgresql", "dsn": "$PG_TEST_DSN"}]})
    sink = settings.sinks[0]
    assert sink.dsn.get_secret_value() == "postgresql://u:hunter2@localhost/db"
    assert "hunter2" not in repr(settings)
    monkeypatch.delenv("PG_TEST_DSN")
    with pytest.raises(pydantic.ValidationError, match="environment variable PG_TEST_DSN is not set"):
        TrackingSettings.model_validate({"sinks": [{"type": "postgresql", "dsn": "${PG_TEST_DSN}"}]})


def test_per_endpoint_capture():
    settings = TrackingSettings.model_validate({"capture": "full", "endpoints": {"chat": {"capture": "metadata"}}})
    assert settings.capture_for("chat") == "metadata"
    assert settings.capture_for("other") == "full"
    merged = settings.with_endpoint_capture({"embed": "metadata", "other": None})
    assert merged.capture_for("embed") == "metadata"
    assert merged.capture_for("other") == "full"
    assert settings.capture_for("embed") == "full"  # the original is unchanged


@pytest.mark.anyio
async def test_build_sink_and_writer(tmp_path):
    assert isinstance(build_sink(TrackingSettings(sinks=[])), NullSink)
    one = build_sink(TrackingSettings(sinks=[SQLiteSinkSettings(path=str(tmp_path / "a.db"))]))
    assert isinstance(one, SQLiteSink)
    await one.aclose()
    two = build_sink(
        TrackingSettings(
            sinks=[SQLiteSinkSettings(path=str(tmp_path / "a.db")), JsonlSinkSettings(path=str(tmp_path / "a.jsonl"))]
        )
    )
    assert isinstance(two, FanoutSink)
    await two.aclose()
    writer = build_writer(TrackingSettings(sinks=[], spool_dir=str(tmp_path / "spool")))
    assert writer.spool is None  # nothing to write to, so nothing to spill for
    await writer.aclose()
