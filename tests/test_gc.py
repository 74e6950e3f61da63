"""What an API request leaves for the cyclic garbage collector."""

from __future__ import annotations

import gc
from pathlib import Path

from starlette.testclient import TestClient

from service.app import create_app
from tests.conftest import Api, event, make_settings


def test_an_ingest_batch_leaves_no_garbage_cycles_its_size(tmp_path: Path) -> None:
    """The coerced events of a batch go with the request, not with a later collection.

    Held in a cycle with the execution, a batch of 500 events was 2,000
    objects for the collector's full (and slowest) collection to find.
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


REQUEST_OBJECTS = {
    "service.schema.execution.Execution",
    "service.loaders.Loaders",
    "strawberry.dataloader.DataLoader",
    "starlette.requests.Request",
}
PROFILE = "query($t: String!, $v: String!) { profileByIdentifier(type: $t, value: $v) { oneId } }"


def test_a_read_leaves_nothing_of_its_own_in_garbage_cycles(tmp_path: Path) -> None:
    """A request's execution, loaders and HTTP request go when it is answered.

    They were a reference cycle (graphql-core's execution holds bound methods
    of itself; each DataLoader held a bound method of the loaders holding
    it): at 50 concurrent clients 64 objects a request piled up for full
    collections of up to 100 ms, paid by every request in flight.
    """
    with TestClient(create_app(make_settings(tmp_path / "data"))) as client:
        api = Api(client)
        api.ingest(event("e1", "web", ("cookie_id", "ck-1"), ("email", "a@example.com")))
        variables = {"t": "email", "v": "a@example.com"}
        api(PROFILE, variables)  # what a first request builds once
        gc.collect()
        was = gc.isenabled()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(5):
                assert api(PROFILE, variables)["profileByIdentifier"]["oneId"]
            gc.collect()
            left = {f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage}
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            if was:
                gc.enable()
    assert not left & REQUEST_OBJECTS, sorted(left & REQUEST_OBJECTS)
