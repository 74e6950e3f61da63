"""Customers chosen by a condition: how many, and who, a page at a time.

``where`` is the tag rule language; tags and indexed traits are answered by
the audience index (``graph.segments``), anything else customer by customer
among those the index leaves.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import strawberry
from starlette.concurrency import run_in_threadpool
from strawberry.scalars import JSON

from graph.errors import InvalidCursor
from graph.identity_graph import IdentityGraph as Core
from graph.segments.audiences import Page
from graph.tags.conditions import Condition
from service.reads import read
from service.schema.account_types import PageInfo, page_size
from service.schema.types import Profile


@strawberry.type
class ProfileEdge:
    cursor: str
    one_id: strawberry.ID = strawberry.field(description="The member's OneID, read with the page.")

    @strawberry.field(
        description="The member's profile, batched across the page (null: merged away since)."
    )
    async def node(self, info: strawberry.Info) -> Profile | None:
        found: Profile | None = await info.context["loaders"].profiles.load(str(self.one_id))
        return found


@strawberry.type(description="Profiles in the order their OneIDs were first issued.")
class ProfileConnection:
    total_count: int
    edges: list[ProfileEdge]
    page_info: PageInfo


def _graph(info: strawberry.Info) -> Core:
    graph: Core = info.context["graph"]
    return graph


def query_mark(where: Any) -> str:
    """What a cursor carries of its query, so another query's cursor is refused."""
    text = json.dumps(where or {}, sort_keys=True, ensure_ascii=False)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=6).hexdigest()


def _cursor(mark: str, seq: int) -> str:
    return base64.urlsafe_b64encode(f"p:{mark}:{seq}".encode()).decode("ascii")


def after_cursor(cursor: str | None, mark: str) -> int | None:
    if cursor is None:
        return None
    try:
        kind, given, seq = base64.urlsafe_b64decode(cursor.encode("ascii")).decode().split(":")
        if kind != "p" or given != mark:
            raise ValueError("another query's")
        return int(seq)
    except (ValueError, UnicodeError) as exc:
        raise InvalidCursor(f"{cursor!r} is not a cursor of this query") from exc


async def parsed(graph: Core, where: Any) -> Condition | None:
    """``where`` checked and parsed; in a thread when the index must be made first."""
    if graph.audiences.ready():
        return await read(graph, graph.audiences.parse, where)
    return await run_in_threadpool(graph.audiences.parse, where)


async def choosing(graph: Core, condition: Condition | None, work: Any, *args: Any) -> Any:
    """Inline when the index answers it all; in a thread when it must be made or read per customer.

    Making the index reads every customer, and a part no index answers reads
    each candidate's rollup: neither may hold up the event loop.
    """
    if graph.audiences.answers_at_once(condition):
        return await read(graph, work, *args)
    return await run_in_threadpool(work, *args)


@strawberry.type
class AudienceQueries:
    @strawberry.field(
        description="How many customers meet `where` (INVALID_RULE names a bad part)."
    )
    async def profile_count(self, info: strawberry.Info, where: JSON | None = None) -> int:
        graph = _graph(info)
        condition = await parsed(graph, where)
        found: int = await choosing(graph, condition, graph.audiences.count, condition)
        return found

    @strawberry.field(
        description="The customers meeting `where`, a page at a time (INVALID_CURSOR for a"
        " cursor another query gave)."
    )
    async def profiles(
        self,
        info: strawberry.Info,
        where: JSON | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> ProfileConnection:
        graph = _graph(info)
        mark = query_mark(where)
        start, size = after_cursor(after, mark), page_size(first)
        condition = await parsed(graph, where)
        page: Page = await choosing(graph, condition, graph.audiences.page, condition, size, start)
        return connection(page, mark)


def connection(page: Page, mark: str) -> ProfileConnection:
    """A page of customers, each with its cursor; profiles are read only if asked for."""
    edges = [
        ProfileEdge(cursor=_cursor(mark, seq), one_id=strawberry.ID(one_id))
        for seq, one_id in zip(page.seqs, page.one_ids, strict=True)
    ]
    return ProfileConnection(
        total_count=page.total,
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.more,
            end_cursor=_cursor(mark, page.seqs[-1]) if page.seqs else None,
        ),
    )
