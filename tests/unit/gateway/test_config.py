"""Config loading: MLflow's format unchanged, credentials, and errors that name the key path."""

from __future__ import annotations

import pytest

from gateway.config import load_config
from gateway.errors import ConfigError
from tests.helpers import make_config

MLFLOW_DOCS = """
endpoints:
- name: completions
  endpoint_type: llm/v1/chat
  model:
    provider: openai
    name: gpt-3.5-turbo
    config:
      openai_api_key: $OPENAI_API_KEY
"""


def test_mlflow_docs_config_loads(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    config = make_config(MLFLOW_DOCS)
    (ep,) = config.endpoints
    assert (ep.name, ep.endpoint_type, ep.model.provider, ep.model.name) == (
        "completions",
        "llm/v1/chat",
        "openai",
        "gpt-3.5-turbo",
    )
    assert config.provider_configs["completions"].openai_api_key.get_secret_value() == "sk-from-env"
    assert config.unavailable == {} and config.warnings == []


def test_default_config_file_loads_with_no_keys_set(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    config = load_config("config/gateway.yaml")
    assert config.endpoints and set(config.unavailable) == {ep.name for ep in config.endpoints}


@pytest.mark.parametrize("ref", ["$MY_KEY", "${MY_KEY}"])
def test_key_from_environment(monkeypatch, ref):
    monkeypatch.setenv("MY_KEY", "sk-abc")
    config = make_config(MLFLOW_DOCS.replace("$OPENAI_API_KEY", ref))
    assert config.provider_configs["completions"].openai_api_key.get_secret_value() == "sk-abc"


def test_key_from_file_loses_its_trailing_newline(tmp_path):
    key_file = tmp_path / "key.txt"
    key_file.write_text("sk-from-file\n")
    config = make_config(MLFLOW_DOCS.replace("$OPENAI_API_KEY", str(key_file)))
    assert config.provider_configs["completions"].openai_api_key.get_secret_value() == "sk-from-file"


def test_literal_key():
    config = make_config(MLFLOW_DOCS.replace("$OPENAI_API_KEY", "sk-literal"))
    assert config.provider_configs["completions"].openai_api_key.get_secret_value() == "sk-literal"


def test_missing_variable_marks_endpoint_unavailable_or_refuses_when_strict(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    config = make_config(MLFLOW_DOCS)
    assert config.unavailable["completions"] == (
        "endpoints[0].model.config.openai_api_key: environment variable OPENAI_API_KEY is not set"
    )
    with pytest.raises(ConfigError, match=r"endpoints\[0\].model.config.openai_api_key: .*OPENAI_API_KEY"):
        make_config(MLFLOW_DOCS, strict=True)


def test_legacy_routes_and_route_type_load_with_a_warning():
    config = make_config(
        """
routes:
  - name: old
    route_type: llm/v1/completions
    model: {provider: openai, name: gpt-3.5-turbo-instruct, config: {openai_api_key: k}}
"""
    )
    assert config.endpoints[0].endpoint_type == "llm/v1/completions"
    assert any("deprecated" in w for w in config.warnings)


def test_unknown_keys_are_warned_about_with_their_path():
    config = make_config(
        MLFLOW_DOCS.replace("  model:", "  colour: blue\n  model:").replace(
            "    name: gpt", "    nmae: x\n    name: gpt"
        )
        + "extra_top: 1\n"
    )
    assert "endpoints[0].colour: unknown key, ignored" in config.warnings
    assert "endpoints[0].model.nmae: unknown key, ignored" in config.warnings
    assert "extra_top: unknown key, ignored" in config.warnings


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MLFLOW_DOCS.replace("provider: openai", "provider: opena1"), r"endpoints\[0\].model.provider: unknown provider 'opena1' \(known: .*anthropic, .*openai, "),
        (MLFLOW_DOCS.replace("provider: openai", "provider: palm"), r"retired .* use gemini"),
        (MLFLOW_DOCS + MLFLOW_DOCS.replace("endpoints:\n", ""), r"endpoints\[1\].name: duplicate endpoint name 'completions'"),
        (MLFLOW_DOCS.replace("llm/v1/chat", "llm/v1/chatt"), r"endpoints\[0\].endpoint_type: "),
        (MLFLOW_DOCS + "  limit: {renewal_period: fortnight, calls: 1}\n", r"endpoints\[0\].limit.renewal_period"),
        (MLFLOW_DOCS + "  limit: {renewal_period: minute, calls: 0}\n", r"endpoints\[0\].limit.calls"),
        (MLFLOW_DOCS.replace("name: completions", "name: 'a b/c'"), r"endpoints\[0\].name: .*URLs"),
        (MLFLOW_DOCS.replace("openai_api_key: $OPENAI_API_KEY", "openai_api_type: azure\n      openai_api_key: k"), r"openai_api_base is required"),
        (MLFLOW_DOCS.replace("openai_api_key: $OPENAI_API_KEY", "openai_api_base: x"), r"endpoints\[0\].model.config.openai_api_key: field required"),
        (MLFLOW_DOCS.replace("endpoint_type: llm/v1/chat", "endpoint_type: llm/v1/embeddings").replace("openai", "anthropic").replace("openai_api_key", "anthropic_api_key"), r"does not serve llm/v1/embeddings"),
        ("endpoints: 5", r"endpoints: "),
        ("just a string", r"top level"),
        (MLFLOW_DOCS + "routes:\n  - name: r\n    task_type: llm/v1/chat\n    destinations: [{name: nope, traffic_percentage: 100}]\n", r"routes\[0\].destinations\[0\].name: unknown endpoint 'nope'"),
        (MLFLOW_DOCS + "routes:\n  - name: r\n    task_type: llm/v1/chat\n    destinations: [{name: completions, traffic_percentage: 60}]\n", r"routes\[0\]: .*must sum to 100 \(got 60\)"),
        (MLFLOW_DOCS + "routes:\n  - name: completions\n    task_type: llm/v1/chat\n    destinations: [{name: completions, traffic_percentage: 100}]\n", r"routes\[0\].name: 'completions' is already"),
        (MLFLOW_DOCS + "  fallbacks: [ghost]\n", r"endpoints\[0\].fallbacks\[0\]: unknown endpoint 'ghost'"),
        (MLFLOW_DOCS + "  fallbacks: [completions]\n", r"cannot fall back to itself"),
        (MLFLOW_DOCS + "  retries: {attempts: -1}\n", r"endpoints\[0\].retries.attempts"),
    ],
)  # fmt: skip
def test_invalid_configs_name_the_key_path(text, message):
    with pytest.raises(ConfigError, match=message):
        make_config(text)


def test_load_config_reports_unreadable_and_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("endpoints: [\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(bad)


def test_version_changes_with_the_file(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(MLFLOW_DOCS)
    first = load_config(path).version
    path.write_text(MLFLOW_DOCS + "\n# edited\n")
    assert load_config(path).version != first and len(first) == 12


WEIGHTED = """
endpoints:
- name: chat
  endpoint_type: llm/v1/chat
  models:
    - {provider: openai, name: a, weight: 2, config: {openai_api_key: k}}
    - {provider: opena1, name: b, config: {openai_api_key: k}}
"""


def test_weighted_models_errors_name_the_model():
    with pytest.raises(ConfigError, match=r"endpoints\[0\].models\[1\].provider: unknown provider 'opena1'"):
        make_config(WEIGHTED)
    with pytest.raises(ConfigError, match=r"endpoints\[0\]: .*either 'model' or 'models'"):
        make_config(WEIGHTED.replace("  models:", "  model: {provider: openai, name: a}\n  models:"))
    with pytest.raises(ConfigError, match=r"endpoints\[0\].models\[0\].weight"):
        make_config(WEIGHTED.replace("weight: 2", "weight: 0").replace("opena1", "openai"))
    config = make_config(WEIGHTED.replace("opena1", "openai").replace("name: b,", "name: b, colour: red,"))
    assert [m.weight for m in config.endpoints[0].targets] == [2, 1]
    assert config.endpoints[0].model.name == "a"
    assert "endpoints[0].models[1].colour: unknown key, ignored" in config.warnings
