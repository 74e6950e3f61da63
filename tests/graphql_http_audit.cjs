// Runs the graphql-http server audit against a live idgraph and prints the results as JSON.
// usage: node graphql_http_audit.cjs NODE_MODULES_DIR URL KEY
const path = require("node:path");
const { createRequire } = require("node:module");

const [modules, url, key] = process.argv.slice(2);
const load = createRequire(path.join(path.resolve(modules), "noop.js"));
const { auditServer } = load("graphql-http");

const fetchWithKey = (input, init = {}) => {
  const headers = new Headers(init.headers || {});
  headers.set("Authorization", `Bearer ${key}`);
  return fetch(input, { ...init, headers });
};

auditServer({ url, fetchFn: fetchWithKey }).then(async (results) => {
  const out = [];
  for (const r of results) {
    const entry = { id: r.id, name: r.name, status: r.status };
    if (r.status !== "ok") {
      entry.reason = r.reason;
      entry.body = await r.response.text();
    }
    out.push(entry);
  }
  console.log(JSON.stringify(out));
});
