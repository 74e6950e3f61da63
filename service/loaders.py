"""Per-request DataLoaders, so a list of N resolutions costs one batch, not N reads."""

from __future__ import annotations

from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from graph.accounts.book import Standing
from graph.accounts.buying_groups import Templates
from graph.accounts.models import Account
from graph.identity_graph import IdentityGraph
from service.reads import read
from service.schema.types import Profile


class Loaders:
    def __init__(self, graph: IdentityGraph) -> None:
        self._graph = graph
        self.profiles: DataLoader[str, Profile | None] = DataLoader(self._profiles)
        self.accounts: DataLoader[str, Account | None] = DataLoader(self._accounts)
        self.templates: Templates | None = None
        # Keyed by the account record itself: a request places each account once.
        self.standing: DataLoader[Account, Standing] = DataLoader(
            self._standing, cache_key_fn=lambda a: a.id
        )

    async def _profiles(self, one_ids: list[str]) -> Sequence[Profile | None]:
        found = await read(self._graph, self._graph.profiles, one_ids)
        made = {p.one_id: Profile.of(p) for p in found.values()}
        return [made[p.one_id] if (p := found.get(o)) else None for o in one_ids]

    async def _accounts(self, ids: list[str]) -> Sequence[Account | None]:
        found, templates = await read(self._graph, self._graph.accounts.accounts_and_templates, ids)
        self.templates = self.templates or templates
        return [found.get(i) for i in ids]

    async def buying_templates(self) -> Templates:
        """The templates in force for this request, read with its first accounts if it had any."""
        if self.templates is None:
            self.templates = await read(self._graph, self._graph.accounts.templates)
        return self.templates

    async def _standing(self, accounts: list[Account]) -> Sequence[Standing]:
        found = await read(self._graph, self._graph.accounts.standing, accounts)
        return [found[a.id] for a in accounts]
