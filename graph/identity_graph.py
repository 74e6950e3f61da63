"""The one entry point the service and the CLI use: config, registry, store and resolver."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from graph.accounts.book import AccountBook
from graph.accounts.event_links import EventAccounts
from graph.accounts.models import AccountWrite
from graph.batch import StoredReads
from graph.bulk_load import BulkLoad
from graph.config import Config
from graph.errors import (
    BatchTooLarge,
    NotFound,
    StoreConflict,
    StoreUnavailable,
    UnknownIdentifierType,
)
from graph.events import EventInput, IdentifierInput, ImportedAccount, account_evidence
from graph.explain import Explanation, explain_link
from graph.identifiers import (
    IdentifierRegistry,
    IdentifierStatus,
    Normalised,
    has_lone_surrogate,
)
from graph.models import ChangeSet, EdgeObservation, HistoryEntry, Key, NodeRecord, pair
from graph.pacing import holding
from graph.profiles import Profile, build_profile
from graph.resolver import EventResult, Resolver
from graph.segments.account_book import AccountSegments
from graph.segments.audiences import Audiences
from graph.segments.book import SegmentBook
from graph.segments.rfm_book import RfmBook
from graph.store.protocol import GraphReads, GraphStore
from graph.store.read_retry import read_steadily
from graph.tags.book import TagBook
from graph.tags.tagger import Tagger

T = TypeVar("T")
log = logging.getLogger(__name__)


class _Customers:
    """The identity graph as accounts see it: OneIDs and identifiers to customers, in one read."""

    def __init__(self, graph: IdentityGraph) -> None:
        self._graph = graph

    def current(
        self, one_ids: Iterable[str], keys: Iterable[Key]
    ) -> tuple[dict[str, str | None], dict[Key, str | None]]:
        wanted_ids = [o for o in set(one_ids) if not has_lone_surrogate(o)]
        wanted_keys = list(set(keys))
        if not wanted_ids and not wanted_keys:
            return {}, {}
        canonical, holders = self._graph._whole(lambda v: v.placements(wanted_ids, wanted_keys))
        return dict(canonical), holders


@dataclass
class Resolution:
    type: str
    value: str
    normalized: str | None
    status: str  # LINKED | UNKNOWN | BLOCKED | INVALID | SHARED
    one_id: str | None
    reason: str | None = None


@dataclass
class GraphNode:
    key: Key
    status: str  # LINKED | SHARED | BLOCKED
    one_id: str | None
    first_seen: datetime
    last_seen: datetime


@dataclass
class CustomerGraph:
    one_id: str
    nodes: list[GraphNode]
    edges: list[EdgeObservation]


class IdentityGraph:
    def __init__(
        self, config: Config, store: GraphStore, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.config = config
        # What "now" is to tags: a window or ``daysAgo`` is measured from it.
        self.clock = clock or (lambda: datetime.now(UTC))
        self.registry = IdentifierRegistry(config)
        self.store = store
        self.resolver = Resolver(store, self.registry)
        self.email_types = frozenset(
            name for name, t in config.types.items() if t.normaliser == "email"
        )
        self.accounts = AccountBook(
            store.account_store,
            _Customers(self),
            config.accounts.seniority_rules(),
            config.accounts.buying_groups(),
            config.accounts.domain_matcher(),
            config.accounts.link_strong_matches,
        )
        self.resolver.on_history = self._follow_customers
        self.tagger = Tagger(
            store.tag_store, config.traits.source_priority, links_of=self._account_links
        )
        self.tags = TagBook(store, self.tagger, self._writing, self.clock)
        self.rfm = RfmBook(config.rfm, self.tags, self.clock)
        self.audiences = Audiences(
            store,
            self.tags,
            self.clock,
            config.traits.source_priority,
            config.segments.indexed_traits,
            links_of=self._account_links,
        )
        self.segments = SegmentBook(self.tags, self.audiences, self.clock)
        self.account_segments = AccountSegments(self.accounts, self.audiences, self.clock)
        self.resolver.on_applied = self.audiences.changed
        self.tags.on_written = self.audiences.tags_written
        self.resolver.deriving = self._derive_tags
        self.accounts.on_written = self._retag_contacts
        self._settled = False
        # A database that is down now: serve health checks, settle on the first write.
        with contextlib.suppress(StoreUnavailable):
            self._settle()

    def _settle(self) -> None:
        """Finish a bulk import that stopped before it was resolved; take the config's tags."""
        if not self._settled:
            if self.resolver.resolve_pending():
                self.tags.stale_all()
            self.tags.sync(self.config.tags.parsed().values())
            self._settled = True

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Be the graph's only writer: what tags write never interleaves with an ingest."""
        with holding(self.resolver.writing), self.store.exclusive():
            yield

    def _retag_contacts(self, write: AccountWrite) -> None:
        """Decide again the tags of the contacts an account write names, if a tag reads links.

        The account write is committed by now, so a failure here is logged, not
        raised: those tags are decided again at the customer's next change.
        """
        try:
            one_ids = {link.one_id for account in write.put for link in account.links}
            if one_ids:
                cause = {"kind": "ACCOUNT", "accountIds": sorted(a.id for a in write.put)}
                self.tags.account_links_changed(one_ids, cause)
        except Exception:
            log.exception("tags were not decided again after an account write")

    def _derive_tags(self, changes: ChangeSet, batch: StoredReads) -> None:
        changes.tags = self.tagger.derive(changes, self.store, self.clock(), batch)

    def _account_links(
        self, one_id: str, aliases: Sequence[str], keys: Iterable[Key]
    ) -> list[dict[str, Any]]:
        """A customer's account links as tag rules read them (``account`` conditions)."""
        views = self.accounts.accounts_of(one_id, aliases, keys)
        accounts = self.accounts.accounts({v.account_id for v in views})
        found = []
        for v in views:
            account = accounts.get(v.account_id)
            if account is None:
                continue
            found.append(
                {
                    "id": account.id,
                    "industry": account.industry,
                    "region": account.region,
                    "sizeBand": account.size_band,
                    "title": v.title,
                    "department": v.department,
                    "seniority": v.seniority.value,
                    "roles": [r.role for r in v.roles],
                }
            )
        return found

    def close(self) -> None:
        self.store.close()

    # --- writes ---------------------------------------------------------------------
    def ingest(self, events: list[EventInput], bulk: bool = False) -> list[EventResult]:
        def write() -> list[EventResult]:
            self._settle()
            return self.resolver.ingest(events, bulk=bulk)

        results = _retried(write)
        if not bulk:
            self.accounts.record_events(self._account_evidence(events, results))
        return results

    def record_imported_accounts(self, imported: list[ImportedAccount]) -> None:
        """Link an import's account events as ``ingest`` links the API's, once all is resolved."""
        if not imported:
            return
        wanted = list({k for i in imported for k in i.keys})
        holders = self._consistent(lambda view: view.nodes(wanted))
        items = []
        for i in imported:
            one_id = next((h.one_id for k in i.keys if (h := holders.get(k)) and h.one_id), None)
            if one_id is None:  # every identifier of it shared: nobody to link
                continue
            emails = tuple(k for k in i.keys if k[0] in self.email_types)
            items.append(
                EventAccounts(i.event_id, one_id, i.source, i.keys, emails, i.account, i.fresh)
            )
        self.accounts.record_events(items)

    def _account_evidence(
        self, events: list[EventInput], results: list[EventResult]
    ) -> list[EventAccounts]:
        """What applied events say about accounts: those naming one, or from a verified source."""
        verified = self.accounts.matcher.verified_sources if self.accounts.link_strong else set()
        found = []
        for r in results:
            if r.one_id is None or r.event_id is None or r.status == "REJECTED":
                continue
            event = events[r.index]
            source = event.source.strip()
            if event.account is None and source not in verified:
                continue
            keys = []
            for ident in event.identifiers:
                with contextlib.suppress(UnknownIdentifierType):
                    n = self.registry.normalise(ident.type, ident.value)
                    if n.status is IdentifierStatus.VALID:
                        keys.append(n.key)
            found.append(
                EventAccounts(
                    r.event_id,
                    r.one_id,
                    source,
                    tuple(dict.fromkeys(keys)),
                    tuple(k for k in dict.fromkeys(keys) if k[0] in self.email_types),
                    None if event.account is None else account_evidence(event.account),
                    fresh=r.status == "ACCEPTED",
                )
            )
        return found

    def _follow_customers(self, history: list[HistoryEntry]) -> None:
        """Re-file account links after merges and splits; reads place them right regardless.

        The identity change is committed by now, so a failure here is logged,
        not raised: the links still read under the right customers (placement),
        only the rows saying they moved are missing.
        """
        try:
            self.accounts.follow_customers(history)
        except Exception:
            log.exception("account links were not re-filed after %d identity changes", len(history))

    def bulk_load(self, now: datetime) -> BulkLoad:
        """A bulk import (the import command): chunks written as they come, resolved at the end."""
        return BulkLoad(self.resolver, now)

    def resolve_pending(self) -> int:
        resolved = self.resolver.resolve_pending()
        if resolved:
            self.tags.stale_all()
        return resolved

    def remove_identifier(self, identifier: IdentifierInput) -> list[str]:
        n = self.registry.normalise(identifier.type, identifier.value)
        if n.value is None:
            raise NotFound(f"{identifier.type}={identifier.value!r} is not a valid identifier")
        key = n.key

        def write() -> list[str]:
            self._settle()
            return self.resolver.remove(key)

        return _retried(write)

    def rebuild(self) -> None:
        self.resolver.rebuild()
        self.tags.stale_all()

    # --- reads ----------------------------------------------------------------------
    def normalise(self, identifier: IdentifierInput) -> Normalised:
        return self.registry.normalise(identifier.type, identifier.value)

    def resolve(self, identifiers: list[IdentifierInput]) -> list[Resolution]:
        """Each identifier's customer, in input order; a bad item is answered INVALID alone.

        A client resolving a thousand identifiers from its own tables should
        not lose all of them to one type it has not configured here.
        """
        limit = self.config.query.max_identifiers
        if len(identifiers) > limit:
            raise BatchTooLarge(
                f"resolve at most {limit} identifiers at once; got {len(identifiers)}",
                limit=limit,
                size=len(identifiers),
            )
        normalised: list[Normalised | UnknownIdentifierType] = []
        for identifier in identifiers:
            try:
                normalised.append(self.normalise(identifier))
            except UnknownIdentifierType as exc:
                normalised.append(exc)
        wanted = [n.key for n in normalised if isinstance(n, Normalised) and n.value is not None]
        nodes = self._consistent(lambda view: view.nodes(wanted))
        out = []
        for identifier, n in zip(identifiers, normalised, strict=True):
            if isinstance(n, UnknownIdentifierType):
                out.append(
                    Resolution(identifier.type, identifier.value, None, "INVALID", None, n.message)
                )
                continue
            node = nodes.get(n.key) if n.value is not None else None
            if n.status is IdentifierStatus.INVALID:
                status = "INVALID"
            elif n.status is IdentifierStatus.BLOCKED:
                status = "BLOCKED"
            elif node is None:
                status = "UNKNOWN"
            elif node.shared:
                status = "SHARED"
            else:
                status = "LINKED"
            one_id = node.one_id if node is not None and status == "LINKED" else None
            out.append(Resolution(n.type, n.raw, n.value, status, one_id, n.reason))
        return out

    def resolve_one(self, identifier: IdentifierInput) -> Resolution:
        """One identifier's customer; an unknown type is the caller's error, typed."""
        self.normalise(identifier)
        (found,) = self.resolve([identifier])
        return found

    def _consistent(self, read: Callable[[GraphReads], T]) -> T:
        """``read`` against one state of the graph, run again if a write committed meanwhile.

        The embedded store's views never change under a reader; a Neo4j read
        transaction sees each statement's own committed state, so a write
        between two statements is caught by the version and the read repeated.
        """

        def attempt() -> tuple[T, bool]:
            with self.store.reading() as view:
                before = view.version()
                found = read(view)
                return found, view.version() == before

        return read_steadily(attempt)

    def _whole(self, read: Callable[[GraphReads], T]) -> T:
        """A read of one batch call (``placements``, ``customer_sources``), consistent.

        A store whose every read is a round trip checks the commit marks
        within that one statement; the embedded store's version is in
        memory, so the usual check costs nothing there.
        """
        if self.store.reads_block:
            with self.store.reading() as view:
                return read(view)
        return self._consistent(read)

    @staticmethod
    def _customer(view: GraphReads, one_id: str) -> tuple[str, set[Key]] | None:
        """The surviving OneID for ``one_id`` (aliases followed) and its identifiers."""
        if has_lone_surrogate(one_id):  # not text: never issued, and no store takes it
            return None
        canonical = view.canonical_one_id(one_id)
        if canonical is None:
            return None
        members = view.members([canonical])[canonical]
        return (canonical, members) if members else None

    def profile(self, one_id: str) -> Profile | None:
        return self.profiles([one_id]).get(one_id)

    def profiles(self, one_ids: Iterable[str]) -> dict[str, Profile]:
        """Each OneID's customer (an alias gives its survivor's), in one read for them all."""
        wanted = [o for o in set(one_ids) if not has_lone_surrogate(o)]
        if not wanted:
            return {}
        sources = self._whole(lambda view: view.customer_sources(wanted))
        built: dict[str, Profile] = {}
        for source in sources.values():
            if source.one_id not in built:
                built[source.one_id] = build_profile(
                    source.one_id,
                    source.nodes,
                    source.events,
                    self.config.traits,
                    source.aliases,
                    source.history,
                )
        return {asked: built[s.one_id] for asked, s in sources.items()}

    def customer_graph(self, one_id: str) -> CustomerGraph | None:
        def read(view: GraphReads) -> CustomerGraph | None:
            found = self._customer(view, one_id)
            if found is None:
                return None
            canonical, members = found
            adjacency = view.neighbours(members)
            around = {k for others in adjacency.values() for k in others}
            records: dict[Key, NodeRecord] = view.nodes(members | around)
            shown = set(members) | {k for k in around if not records[k].linkable}
            nodes = [
                GraphNode(
                    k,
                    "BLOCKED"
                    if records[k].blocked
                    else "SHARED"
                    if records[k].shared
                    else "LINKED",
                    records[k].one_id,
                    records[k].first_seen,
                    records[k].last_seen,
                )
                for k in sorted(shown, key=lambda k: records[k].seq)
            ]
            pairs = {pair(a, b) for a in members for b in adjacency[a] if b in shown}
            return CustomerGraph(canonical, nodes, view.observations(sorted(pairs)))

        return self._consistent(read)

    def explain(self, a: IdentifierInput, b: IdentifierInput) -> Explanation:
        try:
            first, second = self.normalise(a), self.normalise(b)
        except UnknownIdentifierType as exc:
            return Explanation(False, "INVALID", exc.message)
        return self._consistent(lambda view: explain_link(view, self.registry, first, second))


def _status(record: NodeRecord) -> str:
    return "BLOCKED" if record.blocked else "SHARED" if record.shared else "LINKED"


def _retried(write: Callable[[], T], attempts: int = 5) -> T:
    """A write another writer got in the way of was rolled back whole: run it again.

    Ingest is idempotent by eventId and removal by key, so a second run does
    exactly what the first would have.
    """
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except StoreConflict:
            if attempt == attempts:
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")
