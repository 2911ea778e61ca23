"""What each row sends to the model: one feature column, a mapped column, or a prompt template.

A template is a string or a chat template (a list of `{"role", "content"}` messages) with
`{column}` placeholders filled from the row; literal braces are doubled, as in `str.format`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evaluation.datasets import Dataset

Template = str | Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class ModelInput:
    """The chat messages for one row, and the text judges see as that row's input."""

    messages: list[dict[str, Any]]
    text: str


class _Row(dict[str, Any]):
    def __missing__(self, key: str) -> Any:
        raise KeyError(f"prompt template names column {key!r}, which the dataset lacks (columns: {', '.join(self)})")


def _fill(template: str, row: Mapping[str, Any]) -> str:
    try:
        return template.format_map(_Row(row))
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None


def render(template: Template, row: Mapping[str, Any]) -> ModelInput:
    if isinstance(template, str):
        text = _fill(template, row)
        return ModelInput([{"role": "user", "content": text}], text)
    messages = [{**m, "content": _fill(str(m.get("content", "")), row)} for m in template]
    users = [m["content"] for m in messages if m.get("role") == "user"]
    return ModelInput(messages, users[-1] if users else messages[-1]["content"] if messages else "")


def from_value(value: Any) -> ModelInput:
    """A cell as model input: text, a list of chat messages, or `{"messages": [...]}`."""
    if isinstance(value, Mapping) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if isinstance(value, list) and value and all(isinstance(m, Mapping) and "role" in m for m in value):
        messages = [dict(m) for m in value]
        users = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
        return ModelInput(messages, users[-1] if users else str(messages[-1].get("content", "")))
    text = "" if value is None else str(value)
    return ModelInput([{"role": "user", "content": text}], text)


def input_column(dataset: Dataset, *, exclude: Sequence[str], col_mapping: Mapping[str, Any]) -> str:
    """The column sent to the model: `col_mapping["inputs"]`, the only feature column, or `inputs`."""
    if isinstance(mapped := col_mapping.get("inputs"), str):
        if mapped not in dataset.columns:
            raise ValueError(f"col_mapping['inputs'] names column {mapped!r}, which the dataset lacks")
        return mapped
    features = [c for c in dataset.columns if c not in exclude]
    if len(features) == 1:
        return features[0]
    if "inputs" in features:
        return "inputs"
    if not features:
        raise ValueError("the dataset has no feature column to send to the model")
    raise ValueError(
        f"the dataset has several feature columns ({', '.join(features)}): name the one to send with "
        "evaluator_config={'col_mapping': {'inputs': COLUMN}}, or pass prompt_template="
    )


def build_inputs(
    dataset: Dataset,
    *,
    exclude: Sequence[str],
    col_mapping: Mapping[str, Any],
    prompt_template: Template | None = None,
) -> list[ModelInput]:
    if prompt_template is not None:
        return [render(prompt_template, row) for row in dataset.rows]
    column = input_column(dataset, exclude=exclude, col_mapping=col_mapping)
    return [from_value(row.get(column)) for row in dataset.rows]
