"""Service settings: command-line flags over ``IDGRAPH_*`` environment variables over defaults."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from graph.config import Config, load_config
from graph.errors import ConfigError
from graph.store.embedded import EmbeddedStore
from graph.store.protocol import GraphStore

KEY_FILE = "admin.key"


def _env_int(name: str, default: int, lowest: int = 1, highest: int | None = None) -> int:
    """A whole-number variable, or a CONFIG_ERROR that names it (never a traceback)."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < lowest or (highest is not None and value > highest):
        bounds = f"from {lowest} to {highest}" if highest is not None else f"of at least {lowest}"
        raise ConfigError(f"{name} must be a whole number {bounds}, not {raw!r}")
    return value


def _env_float(name: str, default: float, lowest: float, highest: float) -> float:
    """A number variable within bounds, or a CONFIG_ERROR that names it."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = None
    if value is None or not lowest <= value <= highest:
        raise ConfigError(f"{name} must be a number from {lowest} to {highest}, not {raw!r}")
    return value


@dataclass
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("IDGRAPH_DATA_DIR", "data")))
    config_path: Path | None = field(
        default_factory=lambda: Path(p) if (p := os.environ.get("IDGRAPH_CONFIG")) else None
    )
    admin_key: str | None = field(default_factory=lambda: os.environ.get("IDGRAPH_ADMIN_KEY"))
    host: str = field(default_factory=lambda: os.environ.get("IDGRAPH_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: _env_int("IDGRAPH_PORT", 8000, 1, 65535))
    cors_origins: list[str] = field(
        default_factory=lambda: [
            o.strip() for o in os.environ.get("IDGRAPH_CORS_ORIGINS", "").split(",") if o.strip()
        ]
    )
    # While reads wait, a write in the serving process takes at most this share of the
    # interpreter (1: no pacing); see service.pacing.
    writer_share: float = field(
        default_factory=lambda: _env_float("IDGRAPH_WRITER_SHARE", 1 / 3, 0.05, 1.0)
    )
    # How much lower than the event loop's the CPU priority of write and tag threads is
    # (Linux niceness steps; 0: the same); see service.pacing.
    writer_nice: int = field(default_factory=lambda: _env_int("IDGRAPH_WRITER_NICE", 10, 0, 19))
    # Without a URI the embedded store in data_dir is used.
    neo4j_uri: str | None = field(default_factory=lambda: os.environ.get("IDGRAPH_NEO4J_URI"))
    neo4j_user: str | None = field(default_factory=lambda: os.environ.get("IDGRAPH_NEO4J_USER"))
    neo4j_password: str | None = field(
        default_factory=lambda: os.environ.get("IDGRAPH_NEO4J_PASSWORD")
    )
    neo4j_database: str | None = field(
        default_factory=lambda: os.environ.get("IDGRAPH_NEO4J_DATABASE")
    )
    # A bulk import into Neo4j resolves in parts of at most so many events and new
    # identifiers, one transaction each.
    neo4j_resolve_every: int = field(
        default_factory=lambda: _env_int("IDGRAPH_NEO4J_RESOLVE_EVERY", 40_000)
    )

    # What "now" is to tags (windows, daysAgo); tests set it, a service uses the time.
    clock: Callable[[], datetime] | None = None

    def load_config(self) -> Config:
        return load_config(self.config_path)

    @property
    def embedded(self) -> bool:
        """Whether the store is the embedded one (no Neo4j URI set)."""
        return not self.neo4j_uri

    def open_store(self, load: bool = True) -> GraphStore:
        """The store; with ``load`` false, its working state is left for ``store.load()``."""
        if self.neo4j_uri:
            # Imported only when used: the driver is a fifth of a second of start-up
            # that every embedded command (an import, an export) would pay for nothing.
            from graph.store.neo4j import Neo4jStore

            return Neo4jStore(
                self.neo4j_uri,
                self.neo4j_user,
                self.neo4j_password,
                self.neo4j_database,
                resolve_every=self.neo4j_resolve_every,
            )
        return EmbeddedStore(self.data_dir, load=load)


def ensure_admin_key(settings: Settings) -> tuple[str, bool]:
    """The bootstrap admin key: from the environment, else kept in the data dir.

    Returns the key and whether it was just created, so the caller prints a
    new key exactly once and never again.
    """
    if settings.admin_key:
        return settings.admin_key, False
    path = settings.data_dir / KEY_FILE
    if path.exists():
        return path.read_text("utf-8").strip(), False
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key, True
