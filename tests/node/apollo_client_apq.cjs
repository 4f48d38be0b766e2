// Runs one query twice through Apollo Client's own persisted-query link (APQ) against a
// URL, and prints one JSON line: what the client received each time and every HTTP
// request it made (method, whether it carried the query text, the hash). The Python test
// decides. Usage: node apollo_client_apq.cjs URL QUERY [get]
"use strict";

const { createHash } = require("node:crypto");
const { ApolloClient, HttpLink, InMemoryCache, gql } = require("@apollo/client");
const { PersistedQueryLink } = require("@apollo/client/link/persisted-queries");

async function main() {
  const [url, query, method] = process.argv.slice(2);
  if (!url || !query) {
    throw new Error("usage: node apollo_client_apq.cjs URL QUERY [get]");
  }
  const requests = [];
  const recordingFetch = async (input, init) => {
    const address = new URL(input);
    const body = init.body ? JSON.parse(init.body) : {};
    const extensions =
      body.extensions ?? JSON.parse(address.searchParams.get("extensions") ?? "{}");
    requests.push({
      method: init.method ?? "GET",
      withQuery: Boolean(body.query ?? address.searchParams.get("query")),
      sha256Hash: extensions.persistedQuery?.sha256Hash ?? null,
    });
    return fetch(input, init);
  };
  const persisted = new PersistedQueryLink({
    sha256: (text) => createHash("sha256").update(text).digest("hex"),
    useGETForHashedQueries: method === "get",
  });
  const client = new ApolloClient({
    cache: new InMemoryCache(),
    link: persisted.concat(new HttpLink({ uri: url, fetch: recordingFetch })),
  });
  const results = [];
  for (let run = 0; run < 2; run += 1) {
    const result = await client.query({ query: gql(query), fetchPolicy: "network-only" });
    results.push({ data: result.data ?? null, error: result.error?.message ?? null });
  }
  console.log(JSON.stringify({ results, requests }));
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
