"""Replay datasets through the gateway and compute metrics."""
