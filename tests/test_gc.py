"""What an API write leaves for the cyclic garbage collector."""

from __future__ import annotations

import gc
from pathlib import Path

from starlette.testclient import TestClient

from service.app import create_app
from tests.conftest import Api, event, make_settings


def test_an_ingest_batch_leaves_no_garbage_cycles_its_size(tmp_path: Path) -> None:
    """The execution of a mutation is a reference cycle; its coerced events must not be in it.

    Held in the cycle, a batch of 500 events was 2,000 objects for the
    collector's full (and slowest) collection to find.
    """
    with TestClient(create_app(make_settings(tmp_path / "data"))) as client:
        api = Api(client)
        batch = [
            event(f"e{n}", "web", ("cookie_id", f"ck-{n}"), ("device_id", f"d-{n}"))
            for n in range(510)
        ]
        api.ingest(*batch[:10])  # what a first request builds once (caches, the loop)
        gc.collect()
        was = gc.isenabled()
        gc.disable()
        try:
            api.ingest(*batch[10:])
            found = gc.collect()
        finally:
            if was:
                gc.enable()
    assert found < 400, f"{found} objects in garbage cycles after one batch"
