"""Read a score and a justification out of an LLM judge's reply.

Accepts what MLflow accepts (JSON, or `score:` / `justification:` lines) and the replies MLflow
turns into NaN: decimal scores, markdown bold (`**Score:** 4`), code fences, `4/5` or `4 out of 5`,
and prose around the fields. Anything without a score raises `JudgeParseError`.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_NUMBER = r"[-+]?(?:\d+(?:\.\d+)?|\.\d+)"
# `score`, optionally in bold or a heading, then `:` or `=`, then the number (optionally bold/quoted).
_SCORE = re.compile(rf"(?im)^[\s>#*_-]*score[\s*_]*[:=][\s*_\"']*({_NUMBER})")
_SCORE_ANYWHERE = re.compile(rf"(?i)\bscore\b[\s*_]*(?:[:=]|\bis\b|\bof\b)[\s*_\"']*({_NUMBER})")
_JUSTIFICATION = re.compile(r"(?is)[\s>#*_-]*justification[\s*_]*[:=][\s*_]*(.+)")


class JudgeParseError(ValueError):
    """The judge's reply holds no score we can read."""


def _from_json(text: str) -> tuple[float, str | None] | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        data: Any = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    fields = {str(k).strip().lower(): v for k, v in data.items()}
    score = fields.get("score")
    if isinstance(score, bool) or score is None:
        return None
    try:
        value = float(score)
    except (TypeError, ValueError):
        match = re.search(_NUMBER, str(score))
        if match is None:
            return None
        value = float(match.group(0))
    justification = fields.get("justification")
    return value, None if justification is None else str(justification).strip()


def _clean_justification(text: str) -> str:
    text = text.strip().strip("*_").strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return text.strip()


def parse_judge_reply(reply: str | None) -> tuple[float, str | None]:
    """(score, justification); a whole-number score comes back as an int, as MLflow gives it."""
    score, justification = _parse(reply)
    return (int(score) if score.is_integer() else score), justification


def _parse(reply: str | None) -> tuple[float, str | None]:
    if not reply or not reply.strip():
        raise JudgeParseError("the judge's reply is empty")
    text = reply.strip()
    if fence := _FENCE.search(text):
        parsed = _from_json(fence.group(1))
        if parsed is not None:
            return parsed
    parsed = _from_json(text)
    if parsed is not None:
        return parsed
    match = _SCORE.search(text) or _SCORE_ANYWHERE.search(text)
    if match is None:
        raise JudgeParseError(f"no score in the judge's reply: {text[:300]!r}")
    score = float(match.group(1))
    justification_match = _JUSTIFICATION.search(text, match.end())
    if justification_match is None:
        justification_match = _JUSTIFICATION.search(text)
    justification = _clean_justification(justification_match.group(1)) if justification_match else None
    return score, justification
