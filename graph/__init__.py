"""idgraph's identity-graph core.

Pure Python: identifiers and their normalisers, resolution rules, the resolver
and the stores. Nothing here knows about GraphQL or HTTP.
"""
