# idgraph's service image. GraphiQL's assets come from the npm registry at build
# time and are served by the service itself (no CDN at run time).
FROM node:20-slim AS graphiql
WORKDIR /graphiql
COPY service/graphiql/package.json service/graphiql/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error

FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY graph graph
COPY service service
RUN pip install --no-cache-dir . && rm -rf service/graphiql
COPY --from=graphiql /graphiql/node_modules /app/graphiql-assets
ENV IDGRAPH_GRAPHIQL_ASSETS=/app/graphiql-assets \
    IDGRAPH_DATA_DIR=/data \
    IDGRAPH_HOST=0.0.0.0 \
    IDGRAPH_PORT=8000
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["idgraph", "serve"]
