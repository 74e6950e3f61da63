"""Deciding customers' tags whenever something they read changes, as rows for the tag store.

``derive`` runs between the resolver's decision and the store's write: from
the store as it is and the ``ChangeSet`` about to be written, it finds every
customer the change touches, brings their rollups up to date (adding the new
events, or rebuilding from the events after a merge or split), decides their
tags and writes them with the change, in its transaction. ``refresh`` does
the same for customers whose tags something else may have changed: time, a
definition, a manual tag, an account link.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from graph.batch import StoredReads
from graph.models import ChangeSet, Key
from graph.pacing import every_few, step_aside
from graph.store.protocol import GraphReads, TagStore
from graph.tags.aggregates import canonical
from graph.tags.conditions import AccountsAre, Condition, ProfileIs, TraitIs, walk
from graph.tags.definitions import (
    TagDefinition,
    TagKind,
    TagOutcome,
    evaluate_tags,
    evaluation_order,
    tag_values,
)
from graph.tags.evaluation import Explanation, evaluate
from graph.tags.models import (
    CustomerTag,
    ManualTag,
    StoredDefinition,
    TagChange,
    TagSource,
    TagWrites,
)
from graph.tags.moments import DaysAgo, Window
from graph.tags.rollups import Plans, Rollup, RollupFacts, rollup_of
from graph.tags.timing import clocks, clocks_of, next_tick, next_tick_with

# The due time of a customer whose tags time alone will never change: kept, not left
# out, so a customer whose tags were decided is told from one never decided.
NEVER = datetime(9999, 1, 1, tzinfo=UTC)

# A customer's account links as rules read them (see ``graph.tags.facts.Facts.links``),
# from its OneID, its aliases and its identifiers.
LinksOf = Callable[[str, Sequence[str], Iterable[Key]], list[dict[str, Any]]]


@dataclass
class _Customer:
    """One customer after the change: what its tags are decided from."""

    one_id: str
    members: set[Key] | frozenset[Key]  # read when something needs them (links, a rebuild)
    rollup: Rollup
    cause: dict[str, Any]
    # Events that are all that changed for it (None: anything may have): only the
    # tags that read what they carry are decided again.
    arrived: Sequence[Any] | None = None


@dataclass(frozen=True)
class _Reads:
    """What a definition looks at, to tell whether new events can change it."""

    selections: tuple[tuple[tuple[str, ...] | None, str | None, Window | None], ...]
    traits: frozenset[str]
    profile: bool
    tags: frozenset[str]

    @classmethod
    def of(cls, definition: TagDefinition) -> _Reads:
        found = [x for c in definition.conditions() for x in walk(c)]
        aggregates = definition.aggregates()
        return cls(
            tuple((a.events, a.source, a.within) for a in aggregates),
            frozenset(x.name for x in found if isinstance(x, TraitIs)),
            any(isinstance(x, ProfileIs) for x in found),
            frozenset(definition.reads()),
        )

    def at(self, now: datetime) -> _ReadsNow:
        """What events can change it from ``now`` on: their names, source and times."""
        selections = []
        for names, source, within in self.selections:
            low, high = (None, None) if within is None else within.bounds(now)
            if within is not None and isinstance(within.end, DaysAgo):
                # The window's end moves on with time: an event after it now is in it later.
                high = None
            selections.append((names, source, low, high))
        return _ReadsNow(tuple(selections), self.traits, self.profile, self.tags)


@dataclass(frozen=True)
class _ReadsNow:
    """``_Reads`` at one moment: which new events can change a tag decided then."""

    selections: tuple[
        tuple[tuple[str, ...] | None, str | None, datetime | None, datetime | None], ...
    ]
    traits: frozenset[str]
    profile: bool
    tags: frozenset[str]

    def moved_by(self, events: Sequence[Any], traits: set[str], moved: set[str]) -> bool:
        if self.profile or self.traits & traits or self.tags & moved:
            return True
        # An event outside a window changes nothing of it: before its start, it never
        # will be in it (a window's start only moves on); after a fixed end, neither.
        return any(
            (names is None or e.name in names)
            and (source is None or e.source == source)
            and (low is None or e.timestamp >= low)
            and (high is None or e.timestamp <= high)
            for names, source, low, high in self.selections
            for e in events
        )


class Tagger:
    """Decides tags from rollups; knows the rules, not how rows are kept."""

    def __init__(
        self,
        tags: TagStore,
        source_priority: Mapping[str, Sequence[str]],
        links_of: LinksOf | None = None,
    ) -> None:
        self.tags = tags
        self._priority = source_priority
        self._links_of = links_of

    def definitions(self) -> dict[str, StoredDefinition]:
        return {s.definition.id: s for s in self.tags.tag_definitions()}

    @staticmethod
    def _reads_links(order: Sequence[TagDefinition]) -> bool:
        """Whether any tag looks at account links: they are found by members and aliases."""
        return any(
            isinstance(x, AccountsAre) for d in order for c in d.conditions() for x in walk(c)
        )

    @classmethod
    def _reads_names(cls, order: Sequence[TagDefinition]) -> bool:
        """Whether any tag looks at a customer's aliases: manual tags and account links do."""
        return any(d.kind is TagKind.MANUAL for d in order) or cls._reads_links(order)

    def order(self) -> list[TagDefinition]:
        """The definitions in force, each after the tags it reads."""
        return evaluation_order({k: s.definition for k, s in self.definitions().items()})

    # --- after an identity change ----------------------------------------------------------
    def derive(
        self,
        changes: ChangeSet,
        reads: GraphReads,
        now: datetime,
        batch: StoredReads | None = None,
    ) -> TagWrites:
        """The tag rows ``changes`` calls for, read from the store as it is before them.

        ``batch`` gives identifiers' records and customers' members as the change's
        batch read them (the store's own reads otherwise): most of what is asked,
        it has read already.
        """
        if changes.deferred:
            return TagWrites()  # a bulk load: ``retag`` decides every tag once it is resolved
        order = self.order()
        if not order:
            # No tags at all: nothing is kept, rollups neither (the first definition
            # to come drops them all, and its build makes them from the events).
            return TagWrites()
        removed = set(changes.removed_nodes)
        assigned = changes.assignments
        new_keys = {n.key for n in changes.new_nodes}
        event_keys = {k for e in changes.events for k in e.keys}
        asked = (event_keys | set(assigned) | removed) - new_keys
        records = reads.nodes if batch is None else batch.stored
        stored_members = reads.members if batch is None else batch.stored_members
        before = {k: n.one_id for k, n in records(asked).items()}
        step_aside()

        def owner(key: Key) -> str | None:
            if key in removed:
                return None
            return assigned[key] if key in assigned else before.get(key)

        moved = [
            k
            for k in (*assigned, *removed)
            if before.get(k) is not None and before.get(k) != owner(k)
        ]
        reshaped = {o for k in moved for o in (before[k], owner(k)) if o is not None}
        touched = {o for k in event_keys | set(assigned) if (o := owner(k)) is not None}
        touched |= reshaped
        # Whose members this change alters: theirs are read. The others only got events,
        # so they are customers still and their members matter only to a rebuild.
        changing = reshaped | {o for k in assigned if (o := owner(k)) is not None}
        changing |= {o for k in (*assigned, *removed) if (o := before.get(k)) is not None}
        read_now = touched if self._reads_links(order) else touched & changing
        members = _members_after(stored_members, read_now, removed, assigned)
        step_aside()
        living = {o for o in read_now if members.get(o)} | (touched - read_now)
        gone = (touched - living) | {
            u.one_id for u in changes.customer_updates if u.merged_into or u.retired
        }
        gone -= living
        absorbed = {o for k in moved if (o := owner(k)) is not None and before[k] in gone}
        arrived: dict[str, list[Any]] = {}  # each customer's new events, in batch order
        for e in changes.events:
            for o in dict.fromkeys(owner(k) for k in e.keys):
                if o is not None:
                    arrived.setdefault(o, []).append(e)

        def cause(one_id: str) -> dict[str, Any]:
            if one_id in absorbed:
                return {"kind": "MERGE"}
            if one_id in reshaped:
                return {"kind": "SPLIT"}
            first = arrived.get(one_id)
            return {"kind": "EVENT", "eventId": first[0].event_id if first else None}

        step_aside()
        stored, current, due = self.tags.tag_state(living | gone)
        step_aside()
        rebuild = {o for o in living if o in reshaped or o not in stored}
        members.update(_members_after(stored_members, rebuild - members.keys(), removed, assigned))
        step_aside()
        merged = {
            o: sources
            for o, sources in _merges(moved, before, owner, changes, new_keys).items()
            if o in rebuild and o in stored and sources <= stored.keys()
        }
        rollups = self._rebuilt(
            reads,
            {o: members[o] for o in rebuild - merged.keys()},
            removed,
            arrived,
            unstored=new_keys,
        )
        for one_id, sources in merged.items():
            taken = [stored[s] for s in sorted(sources)]
            rollups[one_id] = stored[one_id].united(taken).with_events(arrived.get(one_id, ()))
        for one_id in living - rebuild:
            step_aside()
            rollups[one_id] = stored[one_id].with_events(arrived.get(one_id, ()))
        customers = []
        for o in sorted(living):
            step_aside()
            customers.append(
                _Customer(
                    o,
                    members.get(o, frozenset()),
                    rollups[o],
                    cause(o),
                    None if o in rebuild else arrived.get(o, ()),
                )
            )
        names = (
            _names_after(changes, reads, living, gone)
            if self._reads_names(order)
            else {o: [o] for o in living}
        )
        writes = self._decide(
            order, customers, names, now, gone, {"kind": "MERGE"}, known=(current, due)
        )
        writes.rollups, writes.rebuilt = rollups, rebuild
        return writes

    def _rebuilt(
        self,
        reads: GraphReads,
        members: Mapping[str, set[Key]],
        removed: set[Key],
        arrived: Mapping[str, Sequence[Any]],
        unstored: set[Key] | frozenset[Key] = frozenset(),
        traits_only: bool = False,
    ) -> dict[str, Rollup]:
        """Rollups made anew from the stored events and those ``arrived`` (a merge, a split).

        ``unstored`` keys are new in this change: no stored event carries them.
        ``traits_only`` makes them from the events that carry traits alone.
        """
        if not members:
            return {}
        by_key: dict[Key, list[Any]] = {}
        stored = {k for held in members.values() for k in held} - unstored
        for e in reads.events_for(stored, traits_only) if stored else ():
            step_aside()
            for k in e.keys:
                if k not in removed:
                    by_key.setdefault(k, []).append(e)
        made = {}
        for one_id, mine in members.items():
            step_aside()
            found = {e.seq: e for k in mine for e in by_key.get(k, ())}
            found.update((e.seq, e) for e in arrived.get(one_id, ()))
            made[one_id] = rollup_of(found.values())
        return made

    # --- anything else that may change tags ----------------------------------------------
    def refresh(
        self,
        one_ids: Iterable[str],
        reads: GraphReads,
        now: datetime,
        cause: dict[str, Any],
        rebuild: bool = False,
        added: Sequence[ManualTag] = (),
        removed: Sequence[tuple[str, str]] = (),
    ) -> TagWrites:
        """Decide these customers' tags again (time, a definition, a manual tag, a link).

        A OneID that is no customer any more loses its tags. With ``rebuild``
        the rollups are made again from the events, as ``idgraph retag`` does.
        ``added`` and ``removed`` are manual tags being written with the result.
        """
        wanted = sorted(set(one_ids))
        members, rollups, remade = self._rollups(wanted, reads, rebuild)
        customers = [_Customer(o, members[o], rollups[o], cause) for o in sorted(members)]
        gone = set(wanted) - set(members)
        order = self.order()
        aliased = self._reads_names(order)
        names = {o: [o, *reads.aliases(o)] if aliased else [o] for o in members}
        writes = self._decide(order, customers, names, now, gone, cause, (added, removed))
        writes.rollups = {o: rollups[o] for o in remade}
        writes.rebuilt = remade
        return writes

    def rollups(self, one_ids: Sequence[str], reads: GraphReads) -> dict[str, Rollup]:
        """These customers' rollups, as stored or made from their events where none is."""
        return self._rollups(one_ids, reads)[1]

    def trait_rollups(self, one_ids: Sequence[str], reads: GraphReads) -> dict[str, Rollup]:
        """These customers' rollups made from their events that carry traits, for their
        traits alone: counts, windows and properties in them are not the customer's."""
        members = {o: held for o, held in reads.members(list(one_ids)).items() if held}
        return self._rebuilt(reads, members, set(), {}, traits_only=True)

    def _rollups(
        self, one_ids: Sequence[str], reads: GraphReads, rebuild: bool = False
    ) -> tuple[dict[str, set[Key]], dict[str, Rollup], set[str]]:
        """Members and rollups of the OneIDs that are customers, and which rollups were made."""
        members = {o: held for o, held in reads.members(list(one_ids)).items() if held}
        stored = {} if rebuild else self.tags.rollups(members)
        remake = {o: members[o] for o in members if o not in stored}
        return members, {**stored, **self._rebuilt(reads, remake, set(), {})}, set(remake)

    # --- deciding --------------------------------------------------------------------------
    def _decide(
        self,
        order: Sequence[TagDefinition],
        customers: Sequence[_Customer],
        names: Mapping[str, Sequence[str]],
        now: datetime,
        gone: set[str],
        gone_cause: dict[str, Any],
        manual_writes: tuple[Sequence[ManualTag], Sequence[tuple[str, str]]] = ((), ()),
        known: tuple[Mapping[str, dict[str, CustomerTag]], Mapping[str, datetime]] | None = None,
    ) -> TagWrites:
        """The rows for these customers' tags; ``known``: their tags and due times, if read."""
        writes = TagWrites(dropped=set(gone))
        one_ids = [c.one_id for c in customers]
        current: Mapping[str, dict[str, CustomerTag]]
        due: Mapping[str, datetime]
        if known is None:
            current = self.tags.customer_tags([*one_ids, *gone])
            due = self.tags.due_of(c.one_id for c in customers if c.arrived is not None)
        else:
            current, due = known
        manual = self._manual(order, names, *manual_writes)
        links = self._links(order, customers, names)
        reads = {d.id: _Reads.of(d).at(now) for d in order}
        built = _built(order, customers)
        clocks_by_tag = {d.id: clocks_of(d) for d in order}
        every_clock = clocks([c for d in order for c in clocks_by_tag[d.id]])
        plans = Plans(now)
        for c in customers:
            step_aside()  # a customer's tags at a time: reads that wait go first
            facts = self.facts(c, now, links.get(c.one_id, ()), plans)
            held = current.get(c.one_id, {})
            was_due = due.get(c.one_id)
            mine = manual.get(c.one_id) or {}
            if c.arrived is None or was_due is None or was_due <= now:
                values = tag_values(order, facts, mine)
                found = {t: _tagged(v, held.get(t), mine.get(t), now) for t, v in values.items()}
                next_due = next_tick(every_clock, facts) or NEVER
                if next_due != was_due:
                    writes.due[c.one_id] = next_due
            else:
                # Only new events changed, and time has changed nothing since the
                # tags were last decided: the tags that read none of it stand.
                traits = {t for e in c.arrived for t, v in e.traits.items() if v is not None}
                moved: set[str] = set()
                for d in order:
                    if reads[d.id].moved_by(c.arrived, traits, moved):
                        moved.add(d.id)
                found = {k: t for k, t in held.items() if k in reads and k not in moved}
                facts.tags.update((k, t.value) for k, t in found.items())
                again = [d for d in order if d.id in moved]
                values = tag_values(again, facts, mine)
                found.update(
                    (t, _tagged(v, held.get(t), mine.get(t), now)) for t, v in values.items()
                )
                moving = clocks([x for d in again for x in clocks_by_tag[d.id]])
                soonest = next_tick_with(moving, facts, c.arrived)
                if soonest is not None and soonest < was_due:
                    writes.due[c.one_id] = soonest
            rows: dict[str, CustomerTag | None] = {
                tag_id: tag
                for tag_id, tag in found.items()
                if (was := held.get(tag_id)) is not tag and was != tag
            }
            rows.update((tag_id, None) for tag_id in held.keys() - found.keys())
            if rows:
                writes.tags[c.one_id] = found
                writes.rows[c.one_id] = rows
                writes.changes.extend(_changes(c.one_id, held, found, now, c.cause, built))
        for one_id in sorted(gone):
            writes.changes.extend(_changes(one_id, current.get(one_id, {}), {}, now, gone_cause))
        return writes

    def facts(
        self,
        customer: _Customer,
        now: datetime,
        links: Sequence[Mapping[str, Any]] = (),
        plans: Plans | None = None,
    ) -> RollupFacts:
        traits = customer.rollup.surviving_traits(self._priority)
        return RollupFacts(now, traits, customer.rollup, links, plans=plans)

    def _manual(
        self,
        order: Sequence[TagDefinition],
        names: Mapping[str, Sequence[str]],
        added: Sequence[ManualTag] = (),
        removed: Sequence[tuple[str, str]] = (),
    ) -> dict[str, dict[str, ManualTag]]:
        """Each customer's manual tags: put on its OneID or on one merged into it.

        ``added`` and ``removed`` are being written beside the result: they
        count as if they were there already.
        """
        if not any(d.kind is TagKind.MANUAL for d in order):
            return {}
        owner = {name: o for o, all_names in names.items() for name in all_names}
        taken = set(removed)
        rows = [m for m in self.tags.manual_tags(owner) if (m.one_id, m.tag_id) not in taken]
        found: dict[str, dict[str, ManualTag]] = {}
        for m in sorted([*rows, *added], key=lambda m: m.at):
            if m.one_id in owner:
                found.setdefault(owner[m.one_id], {}).setdefault(m.tag_id, m)
        return found

    def _links(
        self,
        order: Sequence[TagDefinition],
        customers: Sequence[_Customer],
        names: Mapping[str, Sequence[str]],
    ) -> dict[str, list[dict[str, Any]]]:
        if not self._reads_links(order) or self._links_of is None:
            return {}
        return {
            c.one_id: self._links_of(c.one_id, names[c.one_id][1:], c.members) for c in customers
        }

    # --- reading ---------------------------------------------------------------------------
    def explain(self, one_id: str, reads: GraphReads, now: datetime) -> dict[str, TagOutcome]:
        """Every tag of a customer with its explanation, decided now from its rollup."""
        found = self._explained(one_id, reads, now)
        return {} if found is None else found[0]

    def explain_rule(
        self, one_id: str, condition: Condition, reads: GraphReads, now: datetime
    ) -> tuple[bool, Explanation] | None:
        """``condition`` decided for a customer now, its tags as they are (None: no customer)."""
        found = self._explained(one_id, reads, now, links=True)
        return None if found is None else evaluate(condition, found[1])

    def _explained(
        self, one_id: str, reads: GraphReads, now: datetime, links: bool = False
    ) -> tuple[dict[str, TagOutcome], RollupFacts] | None:
        members = reads.members([one_id]).get(one_id)
        if not members:
            return None
        rollup = self.tags.rollups([one_id]).get(one_id)
        if rollup is None:
            rollup = self._rebuilt(reads, {one_id: members}, set(), {})[one_id]
        customer = _Customer(one_id, members, rollup, {})
        order = self.order()
        names = {one_id: [one_id, *reads.aliases(one_id)]}
        linked: Sequence[Mapping[str, Any]] = ()
        if links and self._links_of is not None:
            linked = self._links_of(one_id, names[one_id][1:], members)
        else:
            linked = self._links(order, [customer], names).get(one_id, ())
        facts = self.facts(customer, now, linked)
        manual = self._manual(order, names).get(one_id, {})
        outcomes = evaluate_tags(
            order, facts, {k: {"by": m.by, "at": m.at.isoformat()} for k, m in manual.items()}
        )
        return outcomes, facts


def _merges(
    moved: Sequence[Key],
    before: Mapping[Key, str | None],
    owner: Callable[[Key], str | None],
    changes: ChangeSet,
    new_keys: set[Key],
) -> dict[str, set[str]]:
    """Customers that only took in whole customers merged into them, and those customers.

    Their events are the events of the customers united (and the change's
    own): their rollups are united, not made again from events read. Each
    customer is judged on its own, so a split elsewhere in a batch leaves a
    plain merge united. A customer is made again from its events when it
    lost an identifier, took one from a customer that was split rather than
    merged whole, or took one that had no customer.
    """
    merged_into = {u.one_id: u.merged_into for u in changes.customer_updates if u.merged_into}
    takers: dict[str, set[str]] = {}
    spoilt: set[str] = set()
    for key in moved:
        was, now = before[key], owner(key)
        if was is not None and now is not None and merged_into.get(was) == now:
            takers.setdefault(now, set()).add(was)
            continue
        # A split or a removal: neither side's rollup is a union of whole customers.
        spoilt.update(o for o in (was, now) if o is not None)
    for key, now in changes.assignments.items():
        if now is not None and before.get(key) is None and key not in new_keys:
            spoilt.add(now)  # its stored events are in no customer's rollup
    return {
        taker: sources
        for taker, sources in takers.items()
        if taker not in spoilt and not sources & spoilt
    }


def _members_after(
    members: Callable[[list[str]], Mapping[str, set[Key]]],
    one_ids: set[str],
    removed: set[Key],
    assigned: Mapping[Key, str | None],
) -> dict[str, set[Key]]:
    """These customers' members once a change removing and assigning these keys is written."""
    found: dict[str, set[Key]] = {}
    for one_id, held in every_few(members(sorted(one_ids)).items(), 64):
        # A member not reassigned stays; one reassigned is counted with its new owner.
        found[one_id] = {k for k in held if k not in removed and assigned.get(k, one_id) == one_id}
    for key, new_owner in assigned.items():
        if new_owner is not None and new_owner in one_ids:
            found.setdefault(new_owner, set()).add(key)
    return found


def _names_after(
    changes: ChangeSet, reads: GraphReads, one_ids: Iterable[str], gone: Iterable[str]
) -> dict[str, list[str]]:
    """Each customer's OneID and aliases once ``changes`` is written (manual tags follow them).

    ``gone`` are OneIDs that stop being customers: whose aliases they become.
    """
    merged_into: dict[str, str | None] = {}
    one_ids = set(one_ids)
    candidates = one_ids | set(gone) | {u.one_id for u in changes.customer_updates}
    for one_id in sorted(candidates):
        for alias in reads.aliases(one_id):
            merged_into[alias] = one_id
            candidates.add(alias)
    for u in changes.customer_updates:  # merged now, or given back on a split
        merged_into[u.one_id] = u.merged_into

    def canonical(name: str) -> str:
        seen = {name}
        while (nxt := merged_into.get(name)) is not None and nxt not in seen:
            seen.add(nxt)
            name = nxt
        return name

    found: dict[str, list[str]] = {o: [o] for o in one_ids}
    for name in sorted(candidates):
        owner = canonical(name)
        if owner in found and owner != name:
            found[owner].append(name)
    return found


def _tagged(
    value: Any, held: CustomerTag | None, manual: ManualTag | None, now: datetime
) -> CustomerTag:
    if manual is not None:
        return CustomerTag(True, manual.at, TagSource.MANUAL, manual.by)
    if held is not None and held.source is TagSource.RULE and same_value(held.value, value):
        return held
    return CustomerTag(value, now, TagSource.RULE)


def same_value(a: Any, b: Any) -> bool:
    """One JSON value: 1 and 1.0 are one number, ``true`` is not 1."""
    if type(a) is type(b) and type(a) in (str, bool, int, float):
        return bool(a == b)
    return canonical(a) == canonical(b)


def _built(order: Sequence[TagDefinition], customers: Sequence[_Customer]) -> set[str] | None:
    """For a definition build: the tags it builds and those reading them (None: not a build).

    A build decides every tag of a customer; another tag that moves then
    moved because time passed since it was last decided, and is logged so.
    """
    causes = {c.cause.get("kind") for c in customers}
    versions = [c.cause.get("versions") for c in customers]
    if causes != {"DEFINITION"} or not all(isinstance(v, dict) for v in versions):
        return None
    found = {tag_id for v in versions if isinstance(v, dict) for tag_id in v}
    for d in order:  # each after the tags it reads
        if d.reads() & found:
            found.add(d.id)
    return found


def _changes(
    one_id: str,
    held: Mapping[str, CustomerTag],
    found: Mapping[str, CustomerTag],
    now: datetime,
    cause: dict[str, Any],
    built: set[str] | None = None,
) -> list[TagChange]:
    log = []
    for tag_id in sorted(held.keys() | found.keys()):
        before, after = held.get(tag_id), found.get(tag_id)
        if before is not None and after is not None and same_value(before.value, after.value):
            continue
        log.append(
            TagChange(
                one_id,
                tag_id,
                None if before is None else before.value,
                None if after is None else after.value,
                now,
                cause if built is None or tag_id in built else {"kind": "TIME"},
            )
        )
    return log
