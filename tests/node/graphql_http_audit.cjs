// Runs graphql-http's GraphQL-over-HTTP server audits against a URL and prints one JSON
// line per audit ({id, name, status, reason}). Exits 0 whatever the audits say: the
// Python test reads the lines and decides. Usage: node graphql_http_audit.cjs URL
"use strict";

const { serverAudits } = require("graphql-http");

async function main() {
  const url = process.argv[2];
  if (!url) {
    throw new Error("usage: node graphql_http_audit.cjs URL");
  }
  for (const audit of serverAudits({ url })) {
    const result = await audit.fn();
    const line = { id: result.id, name: result.name, status: result.status };
    if (result.status !== "ok") {
      line.reason = result.reason;
    }
    console.log(JSON.stringify(line));
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
