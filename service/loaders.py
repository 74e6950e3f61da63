"""Per-request DataLoaders, so a list of N resolutions costs one batch, not N reads.

Their batch functions are not methods of ``Loaders``: a loader holding a
bound method of the object that holds the loader is a reference cycle, and
every request's loaders (and all they loaded) would wait for the cyclic
garbage collector instead of going when the request does.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from strawberry.dataloader import DataLoader

from graph.accounts.book import Standing
from graph.accounts.buying_groups import Templates
from graph.accounts.models import Account
from graph.identity_graph import IdentityGraph
from service.reads import read
from service.schema.types import Profile


class _Templates:
    """The buying-group templates a request has read, once it has."""

    def __init__(self) -> None:
        self.held: Templates | None = None


class Loaders:
    def __init__(self, graph: IdentityGraph) -> None:
        self._graph = graph
        self._templates = _Templates()
        self.profiles: DataLoader[str, Profile | None] = DataLoader(partial(_profiles, graph))
        self.accounts: DataLoader[str, Account | None] = DataLoader(
            partial(_accounts, graph, self._templates)
        )
        # Keyed by the account record itself: a request places each account once.
        self.standing: DataLoader[Account, Standing] = DataLoader(
            partial(_standing, graph), cache_key_fn=_account_id
        )

    async def buying_templates(self) -> Templates:
        """The templates in force for this request, read with its first accounts if it had any."""
        if self._templates.held is None:
            self._templates.held = await read(self._graph, self._graph.accounts.templates)
        return self._templates.held


def _account_id(account: Account) -> str:
    return account.id


async def _profiles(graph: IdentityGraph, one_ids: list[str]) -> Sequence[Profile | None]:
    found = await read(graph, graph.profiles, one_ids)
    made = {p.one_id: Profile.of(p) for p in found.values()}
    return [made[p.one_id] if (p := found.get(o)) else None for o in one_ids]


async def _accounts(
    graph: IdentityGraph, templates: _Templates, ids: list[str]
) -> Sequence[Account | None]:
    found, read_templates = await read(graph, graph.accounts.accounts_and_templates, ids)
    templates.held = templates.held or read_templates
    return [found.get(i) for i in ids]


async def _standing(graph: IdentityGraph, accounts: list[Account]) -> Sequence[Standing]:
    found = await read(graph, graph.accounts.standing, accounts)
    return [found[a.id] for a in accounts]
