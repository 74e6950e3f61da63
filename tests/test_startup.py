"""Starting: health checks and API calls answer at once while the store is read into memory."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from graph.store.embedded import EmbeddedStore
from service.app import create_app
from tests.conftest import INGEST, KEY, Api, event, make_settings


def test_healthz_says_starting_until_the_store_is_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    with TestClient(create_app(make_settings(data))) as client:
        Api(client).ingest(event("a", "web", ("email", "a@x.com"), ("phone", "13800138000")))
    opening = threading.Event()
    release = threading.Event()
    load = EmbeddedStore.load

    def held_load(self: EmbeddedStore) -> None:
        opening.set()
        release.wait(timeout=30)
        load(self)

    monkeypatch.setattr(EmbeddedStore, "load", held_load)
    with TestClient(create_app(make_settings(data), background=True)) as client:
        assert opening.wait(timeout=10)
        started = time.monotonic()
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json() == {"status": "starting"}
        api = client.post(
            "/graphql",
            json={"query": INGEST, "variables": {"events": []}},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        assert api.status_code == 503
        assert api.json()["errors"][0]["extensions"]["code"] == "STORE_UNAVAILABLE"
        assert time.monotonic() - started < 5  # at once, not after the store opened
        release.set()
        deadline = time.monotonic() + 30
        while client.get("/healthz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert Api(client).one_id("email", "a@x.com") == Api(client).one_id("phone", "13800138000")


def test_a_store_that_fails_to_open_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_load(self: EmbeddedStore) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(EmbeddedStore, "load", failing_load)
    with TestClient(create_app(make_settings(tmp_path / "data"), background=True)) as client:
        deadline = time.monotonic() + 10
        while (health := client.get("/healthz").json())["status"] == "starting":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert health == {"status": "failed", "error": "OSError: disk gone"}
