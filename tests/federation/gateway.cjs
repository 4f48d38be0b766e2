// A products subgraph (@apollo/subgraph) and an Apollo gateway over it and this service.
// usage: node gateway.cjs BACKINSTOCK_GRAPHQL_URL
// Prints one JSON line {"gateway": URL, "products": URL} once both serve; runs until killed.
const fs = require("node:fs");
const path = require("node:path");
const { ApolloServer } = require("@apollo/server");
const { startStandaloneServer } = require("@apollo/server/standalone");
const { buildSubgraphSchema } = require("@apollo/subgraph");
const {
  ApolloGateway,
  IntrospectAndCompose,
  RemoteGraphQLDataSource,
} = require("@apollo/gateway");
const { parse } = require("graphql");

const PRODUCTS = [
  { id: "p1", name: "Blue shoe", catalogItem: { appId: "stores", catalogItemId: "shoe-1" } },
  { id: "p2", name: "Red shoe", catalogItem: { appId: "stores", catalogItemId: "shoe-2" } },
];

async function startProducts() {
  const typeDefs = parse(
    fs.readFileSync(path.join(__dirname, "products.graphql"), "utf8"),
  );
  const resolvers = {
    Query: { products: () => PRODUCTS },
    Product: {
      __resolveReference: (ref) => PRODUCTS.find((p) => p.id === ref.id),
    },
  };
  const server = new ApolloServer({
    schema: buildSubgraphSchema([{ typeDefs, resolvers }]),
  });
  const { url } = await startStandaloneServer(server, {
    listen: { host: "127.0.0.1", port: 0 },
  });
  return url;
}

// Forwards the caller's API key to every subgraph, as a deployment would.
class AuthorizedDataSource extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    if (context.authorization) {
      request.http.headers.set("authorization", context.authorization);
    }
  }
}

async function startGateway(backinstockUrl, productsUrl) {
  const gateway = new ApolloGateway({
    supergraphSdl: new IntrospectAndCompose({
      subgraphs: [
        { name: "backinstock", url: backinstockUrl },
        { name: "products", url: productsUrl },
      ],
    }),
    buildService: ({ url }) => new AuthorizedDataSource({ url }),
  });
  const server = new ApolloServer({ gateway });
  const { url } = await startStandaloneServer(server, {
    listen: { host: "127.0.0.1", port: 0 },
    context: async ({ req }) => ({ authorization: req.headers.authorization }),
  });
  return url;
}

async function main() {
  const productsUrl = await startProducts();
  const gatewayUrl = await startGateway(process.argv[2], productsUrl);
  process.stdout.write(
    JSON.stringify({ gateway: gatewayUrl, products: productsUrl }) + "\n",
  );
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
