"""The Neo4j store: ``Neo4jStore`` (``store``), with its accounts, tags and audience log."""

from graph.store.neo4j.store import Neo4jStore

__all__ = ["Neo4jStore"]
