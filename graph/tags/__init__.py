"""Tags: conditions on a customer, written as data, evaluated with an explanation.

The rule language (``conditions``) parses JSON into typed conditions and
refuses a bad one with the JSON path of the bad part; ``facts`` is what a
condition may look at; ``evaluation`` decides a condition against those facts
and says why; ``rollups`` answer aggregates without reading events again.
The ``tagger`` and the ``book`` keep tags through the store protocol
(``graph.store.protocol.TagStore``), never a store of their own; nothing
here knows of GraphQL.
"""
