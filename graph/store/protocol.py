"""The store protocol: what the resolver and the API need from any graph store.

Stores persist nodes, evidence, events, OneIDs and history, and answer graph
questions (a component, a neighbourhood). The rules live in the resolver, in
Python, once; a store applies a ``ChangeSet`` whole or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from graph.accounts.models import Account, AccountFilter, AccountHistoryEntry, AccountWrite
from graph.event_chunk import EventChunk
from graph.models import (
    ChangeSet,
    CustomerRecord,
    CustomerSource,
    EdgeObservation,
    FirstLoad,
    HistoryEntry,
    Key,
    Neighbourhood,
    NodeRecord,
    Pair,
    StoredEvent,
)
from graph.tags.models import CustomerTag, ManualTag, StoredDefinition, TagChange, TagWrites
from graph.tags.rollups import Rollup

TagState = tuple[dict[str, Rollup], dict[str, dict[str, CustomerTag]], dict[str, datetime]]


class GraphReads(Protocol):
    """What a store answers about the graph: to the resolver, and to the API through ``reading``."""

    def version(self) -> int:
        """A number that changes whenever a write commits.

        A read that found it unchanged from its start to its end saw one state
        of the graph, never half of a write.
        """
        ...

    # --- reads used by the resolver -------------------------------------------------
    def nodes(self, keys: Iterable[Key]) -> dict[Key, NodeRecord]:
        """The stored nodes among ``keys``; unknown keys are absent.

        Records are read-only to the caller (a store may hand out the objects it
        keeps); the resolver copies the ones it changes.
        """
        ...

    def existing_pairs(self, pairs: Iterable[Pair]) -> set[Pair]: ...

    def neighbours(self, keys: Iterable[Key]) -> dict[Key, set[Key]]:
        """Each key's neighbours in the evidence graph; read-only to the caller, like ``nodes``."""
        ...

    def neighbourhood(self, keys: Iterable[Key]) -> Neighbourhood:
        """``neighbours(keys)`` and the records of all those neighbours, in one read.

        The sharing rules look at every neighbour right after reading it: a
        networked store answers both in one round trip instead of two.
        """
        ...

    def component(
        self, seeds: Iterable[Key], linkable: Mapping[Key, bool]
    ) -> tuple[set[Key], set[Pair]]:
        """Nodes reachable from ``seeds`` through linkable nodes, and the edges among them.

        ``linkable`` overrides the stored flags for nodes whose state is about to
        change. Non-linkable seeds are returned alone and are not expanded.
        """
        ...

    def customers(self, one_ids: Iterable[str]) -> dict[str, CustomerRecord]: ...

    def anchored(self, seqs: Iterable[int]) -> list[CustomerRecord]:
        """Customers first issued for any of these identifiers (by ``seq``), in any state."""
        ...

    def members(self, one_ids: Iterable[str]) -> dict[str, set[Key]]: ...

    def known_events(self, event_ids: Iterable[str]) -> set[str]: ...

    def dirty_keys(self) -> list[Key]:
        """Nodes whose evidence changed while resolution was deferred (a bulk import)."""
        ...

    def node_count(self) -> int: ...

    def last_event_seq(self) -> int:
        """The highest event sequence number handed out; cheap even during a bulk load."""
        ...

    def counters(self) -> tuple[int, int, int]:
        """The highest node, customer and event sequence numbers handed out so far."""
        ...

    # --- reads used by the API ------------------------------------------------------
    def canonical_one_id(self, one_id: str) -> str | None:
        """The surviving OneID for ``one_id``, following aliases; None if never issued."""
        ...

    def canonical_one_ids(self, one_ids: Iterable[str]) -> dict[str, str]:
        """Each OneID's surviving OneID, for those whose survivor is a customer now.

        A OneID never issued, or whose survivor was retired (its identifiers
        all removed), is left out.
        """
        ...

    def placements(
        self, one_ids: Iterable[str], keys: Iterable[Key]
    ) -> tuple[dict[str, str], dict[Key, str | None]]:
        """``canonical_one_ids(one_ids)`` and each stored key's OneID, in one round trip.

        Accounts place their links by both at once (see ``graph.accounts.placement``).
        A store whose reads block (a round trip each) makes this and
        ``customer_sources`` consistent within their one statement.
        """
        ...

    def customer_sources(self, one_ids: Iterable[str]) -> dict[str, CustomerSource]:
        """Each OneID's customer now (aliases followed) and all its profile is made of.

        One round trip for any number of customers, so a page of profiles
        costs one read; a OneID of no customer now is left out.
        """
        ...

    def aliases(self, one_id: str) -> list[str]: ...

    def events_for(self, keys: Iterable[Key], traits_only: bool = False) -> list[StoredEvent]:
        """The events that carry any of ``keys``, by sequence number.

        ``traits_only`` leaves out events with no traits: a reader of a
        customer's traits alone (the audience index, on a store that keeps no
        rollups) then reads its identity events, not every order and view.
        """
        ...

    def observations(self, pairs: Iterable[Pair]) -> list[EdgeObservation]: ...

    def history(self, one_ids: Iterable[str]) -> list[HistoryEntry]: ...

    def all_keys(self) -> Iterator[Key]: ...

    def assignments(self) -> Iterator[tuple[Key, str | None]]: ...


class GraphStore(GraphReads, Protocol):
    account_store: AccountStore  # accounts, kept in the same database
    tag_store: TagStore  # tags, kept in the same database and written with the graph
    # How many deferred events one resolution may take on at most, or None for
    # no limit. A resolution is one transaction, and a database server may cap
    # a transaction's memory; a bulk load resolves every so many events then.
    resolve_every: int | None

    def load(self) -> None:
        """Bring the store's working state into memory.

        Until it returns only ``healthy`` and ``close`` may be called: a
        service calls it in the background, answering health checks with
        "starting" meanwhile.
        """
        ...

    def close(self) -> None: ...

    def exclusive(self) -> AbstractContextManager[None]:
        """Be the only writer for one batch: its reads and its ``apply`` form one transaction.

        The resolver reads a region, decides, and writes; a second writer
        changing the region in between would make the decision stale. A store
        that several processes share serialises those batches here; a store
        one process owns (the embedded one) has nothing to do.
        """
        ...

    def healthy(self) -> bool:
        """True when reads and writes can be served right now."""
        ...

    def changed_since(self, position: int | None) -> tuple[int, list[str]] | None:
        """The customers other processes' writes touched after ``position``, and the new position.

        ``position`` None asks for the position only. None back: the log no
        longer reaches back to ``position``; read everything again.
        """
        ...

    # Whether a read waits on the network: the API then reads from a thread, so the
    # event loop serves other requests meanwhile; a store in memory is read in place.
    reads_block: bool
    # Whether a write waits other than through ``graph.pacing.blocking`` (on the
    # network): the API then writes from a thread. The embedded store hands each
    # of its waits to ``blocking`` (a commit) or ``statement``, so a serving process
    # runs its writes on the event loop, between reads (``service.pacing``).
    writes_block: bool

    def reading(self) -> AbstractContextManager[GraphReads]:
        """Reads for one API request, never waiting for a writer.

        The embedded store answers from one published shape and a SQLite read
        transaction of the same generation; Neo4j from one read transaction,
        whose ``version`` tells the caller whether a write committed meanwhile.
        """
        ...

    # --- writes ---------------------------------------------------------------------
    def apply(self, changes: ChangeSet) -> None:
        """Write ``changes`` atomically and durably: all of it is kept, or none."""
        ...

    def apply_first_load(self, load: FirstLoad) -> None:
        """Write a resolved bulk load into this empty store: as ``apply(load.changes())`` would."""
        ...

    def append_deferred(self, events: EventChunk, first_seq: int, received_at: datetime) -> None:
        """Write a bulk chunk's events, numbered from ``first_seq``, their resolution deferred.

        What ``apply`` does for a deferred ``ChangeSet`` of these events, from
        the encoded text the chunk already holds: atomic and durable alike. A
        chunk may hold that text in a scratch SQLite file (``spilled``); a
        store that cannot copy from there reads it back with ``loaded()``.
        """
        ...


class AccountStore(Protocol):
    """Accounts: one record each (see ``graph.accounts.models``), found by what callers know.

    The rules (cycles, roles, merges) live in ``graph.accounts``; a store
    keeps records and the columns it finds them by, and writes an
    ``AccountWrite`` whole or not at all.
    """

    def accounts(self, ids: Iterable[str]) -> dict[str, Account]: ...

    def accounts_and_templates(
        self, ids: Iterable[str]
    ) -> tuple[dict[str, Account], dict[str, str]]:
        """``accounts(ids)`` and ``saved_templates()`` in one round trip."""
        ...

    def account_ids_by_domain(self, domains: Iterable[str]) -> dict[str, list[str]]: ...

    def account_ids_by_contact(self, one_ids: Iterable[str]) -> dict[str, list[str]]: ...

    def subsidiary_ids(self, ids: Iterable[str]) -> dict[str, list[str]]: ...

    def account_page(
        self, where: AccountFilter, after: str | None, first: int
    ) -> tuple[list[Account], int]:
        """Up to ``first`` accounts in id order after id ``after``, and how many match in all."""
        ...

    def accounts_in_order(
        self, where: AccountFilter, after: str | None, first: int
    ) -> list[Account]:
        """``account_page`` without the count, for a reader going through many pages."""
        ...

    def account_history(self, account_id: str) -> list[AccountHistoryEntry]: ...

    def saved_templates(self) -> dict[str, str]:
        """Buying-group templates saved by mutation: id -> the template as JSON."""
        ...

    def account_segments(self) -> dict[str, str]:
        """Saved account segments: id -> the segment as JSON."""
        ...

    def accounts_exclusive(self) -> AbstractContextManager[None]:
        """Be the only account writer while a change is checked (a cycle, say) and written."""
        ...

    def write_accounts(self, write: AccountWrite) -> None: ...


class TagStore(Protocol):
    """Tag definitions, each customer's tags, rollups, due times and the log of changes.

    The rules live in ``graph.tags``; a store keeps rows. A ``TagWrites``
    travels with the ``ChangeSet`` it follows from (``ChangeSet.tags``) and is
    written in the same transaction, so a response and every later read agree;
    ``write_tags`` writes one of its own (a manual tag, time passing, a build),
    inside the current ``exclusive`` batch if there is one.
    """

    def tag_definitions(self) -> list[StoredDefinition]: ...

    def definition_versions(self, tag_id: str) -> list[StoredDefinition]:
        """Every version of a definition, oldest first (a deleted one's too)."""
        ...

    def save_definition(self, stored: StoredDefinition, keep_version: bool = True) -> None:
        """Save the current state; with ``keep_version`` also record it as a version."""
        ...

    def delete_definition(self, tag_id: str) -> None: ...

    def rollups(self, one_ids: Iterable[str]) -> dict[str, Rollup]:
        """The rollups kept for these customers (a customer without one is left out)."""
        ...

    def rollup_heads(self, one_ids: Iterable[str]) -> dict[str, Rollup]:
        """Of the rollups kept, the traits and span only: no event is read.

        What a reader of traits needs; a customer without one is left out.
        """
        ...

    def customer_tags(self, one_ids: Iterable[str]) -> dict[str, dict[str, CustomerTag]]: ...

    def manual_tags(self, one_ids: Iterable[str]) -> list[ManualTag]:
        """Manual tags put on any of these OneIDs."""
        ...

    def tag_changes(self, one_ids: Iterable[str], tag_id: str | None) -> list[TagChange]:
        """The log for these OneIDs, oldest first; of one tag, or of all."""
        ...

    def segment_log(self, tag_id: str) -> list[TagChange]:
        """Every change of a saved segment's membership (``is_segment``), oldest first."""
        ...

    def due(self, until: datetime, limit: int) -> list[str]:
        """Customers whose tags time could have changed by ``until``, soonest first."""
        ...

    def tagged(self, tag_id: str) -> list[str]:
        """Every customer that has the tag."""
        ...

    def tag_state(self, one_ids: Iterable[str]) -> TagState:
        """``rollups``, ``customer_tags`` and ``due_of`` at once (one round trip to a server)."""
        ...

    def due_of(self, one_ids: Iterable[str]) -> dict[str, datetime]:
        """When each of these customers is next due (one never due is left out)."""
        ...

    def forget_rollups(self) -> None:
        """Drop every rollup: events arrived without them (an import); each is made again."""
        ...

    def write_tags(self, writes: TagWrites) -> None: ...
