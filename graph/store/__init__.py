"""Stores persist and fetch the identity graph; they never decide who belongs together."""

from graph.store.protocol import GraphStore

__all__ = ["GraphStore"]
