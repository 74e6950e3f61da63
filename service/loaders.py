"""Per-request DataLoaders, so a list of N resolutions costs one profile batch, not N."""

from __future__ import annotations

from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from graph.identity_graph import IdentityGraph
from service.reads import read
from service.schema.types import Profile


class Loaders:
    def __init__(self, graph: IdentityGraph) -> None:
        self._graph = graph
        self.profiles: DataLoader[str, Profile | None] = DataLoader(self._profiles)

    async def _profiles(self, one_ids: list[str]) -> Sequence[Profile | None]:
        def load() -> list[Profile | None]:
            found = []
            for one_id in one_ids:
                p = self._graph.profile(one_id)
                found.append(Profile.of(p) if p is not None else None)
            return found

        return await read(self._graph, load)
