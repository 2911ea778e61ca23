"""LLM gateway: one OpenAI- and MLflow-compatible API in front of every LLM provider."""

__version__ = "0.1.0"
