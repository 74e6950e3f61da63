"""Per-request DataLoaders, so a list of N resolutions costs one batch, not N reads."""

from __future__ import annotations

from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from graph.accounts.book import Standing
from graph.accounts.models import Account
from graph.identity_graph import IdentityGraph
from service.reads import read
from service.schema.types import Profile


class Loaders:
    def __init__(self, graph: IdentityGraph) -> None:
        self._graph = graph
        self.profiles: DataLoader[str, Profile | None] = DataLoader(self._profiles)
        self.accounts: DataLoader[str, Account | None] = DataLoader(self._accounts)
        # Keyed by the account record itself: a request places each account once.
        self.standing: DataLoader[Account, Standing] = DataLoader(
            self._standing, cache_key_fn=lambda a: a.id
        )

    async def _profiles(self, one_ids: list[str]) -> Sequence[Profile | None]:
        def load() -> list[Profile | None]:
            found = []
            for one_id in one_ids:
                p = self._graph.profile(one_id)
                found.append(Profile.of(p) if p is not None else None)
            return found

        return await read(self._graph, load)

    async def _accounts(self, ids: list[str]) -> Sequence[Account | None]:
        found = await read(self._graph, self._graph.accounts.accounts, ids)
        return [found.get(i) for i in ids]

    async def _standing(self, accounts: list[Account]) -> Sequence[Standing]:
        found = await read(self._graph, self._graph.accounts.standing, accounts)
        return [found[a.id] for a in accounts]
