"""idgraph's ASGI service: GraphQL over HTTP on top of the ``graph`` core."""
