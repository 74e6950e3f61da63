"""The embedded store: one SQLite file, and the graph's shape in memory (see ``store``)."""

from graph.store.embedded.schema import SCHEMA_VERSION
from graph.store.embedded.store import EmbeddedStore

__all__ = ["SCHEMA_VERSION", "EmbeddedStore"]
