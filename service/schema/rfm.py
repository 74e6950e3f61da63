"""The RFM model in force and the mutation that cuts it again.

The scores themselves are tags (``rfm_r``, ``rfm_f``, ``rfm_m``,
``rfm_segment`` by default) and are read, explained and used in rules as
any tag is; this is the model behind them.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from graph.errors import Disabled
from graph.identity_graph import IdentityGraph as Core
from graph.segments.rfm import RfmRule
from service.reads import read


@strawberry.type(
    description="Bin edges, lowest first: a bin holds the values above one edge up to the"
    " next (the first holds its lower edge too). Fewer than 6 edges: values tied."
)
class RfmEdges:
    recency: list[float] = strawberry.field(description="Days since the last order.")
    frequency: list[float] = strawberry.field(description="Orders within the window.")
    monetary: list[float] = strawberry.field(description="Order amounts within the window.")


@strawberry.type(
    description="The bins RFM scores are given by, cut over every customer who had ordered."
)
class RfmModel:
    computed_at: datetime
    customers: int = strawberry.field(description="Customers who had ordered, the bins cut over.")
    edges: RfmEdges
    warnings: list[str] = strawberry.field(description="A measure whose values tied on edges.")
    order_event: str
    amount_property: str
    window_days: int
    segments: JSON = strawberry.field(
        description="[{name, r, f, m}]: the first whose score ranges hold names the segment."
    )
    tag_ids: list[strawberry.ID] = strawberry.field(
        description="The tags holding the R, F and M scores (1-5) and the segment name."
    )

    @classmethod
    def of(cls, rule: RfmRule, tag_ids: list[str]) -> RfmModel:
        model = rule.model
        return cls(
            computed_at=model.computed_at,
            customers=model.customers,
            edges=RfmEdges(
                recency=list(model.recency.edges),
                frequency=list(model.frequency.edges),
                monetary=list(model.monetary.edges),
            ),
            warnings=model.warnings,
            order_event=rule.settings.order_event,
            amount_property=rule.settings.amount_property,
            window_days=rule.settings.window_days,
            segments=[s.as_json() for s in rule.segments],
            tag_ids=[strawberry.ID(t) for t in tag_ids],
        )


def _graph(info: strawberry.Info) -> Core:
    graph: Core = info.context["graph"]
    return graph


def _in_force(graph: Core) -> RfmModel | None:
    rule = graph.rfm.current()
    if rule is None:
        return None
    return RfmModel.of(rule, list(graph.rfm.config.tag_ids().values()))


@strawberry.type
class RfmQueries:
    @strawberry.field(description="The RFM bins in force, or null before the first cut.")
    async def rfm_model(self, info: strawberry.Info) -> RfmModel | None:
        graph = _graph(info)
        return await read(graph, _in_force, graph)


@strawberry.type
class RfmMutations:
    @strawberry.mutation(
        description="Cut the RFM bins again over every customer who ordered; each customer's"
        " RFM tags follow in the background. Null when nobody has ordered (the tags in force"
        " stay). DISABLED when rfm.enabled is false."
    )
    async def recompute_rfm(self, info: strawberry.Info) -> RfmModel | None:
        graph = _graph(info)
        if not graph.rfm.enabled:
            raise Disabled("RFM is turned off: set enabled = true under [rfm] in the config")
        if graph.rfm.recompute() is None:
            return None
        wake = info.context.get("wake_tags")
        if wake is not None:
            wake()
        return _in_force(graph)
