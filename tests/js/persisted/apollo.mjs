// Apollo Client and its persisted-queries link against keybin, as an app would use them.
// node apollo.mjs URL STEPS [MANIFEST]
//   STEPS: a JSON array of {"document", "variables"?, "token"?}, each asked by a client of
//   its own (so each starts from the hash alone);
//   MANIFEST: Apollo's persisted-query-manifest.json: ids from it (trusted documents),
//   without it the SHA-256 of the text (automatic persisted queries).
// One JSON line per request sent ({"sent": body}) and per answer ({"answer": ...}).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { generatePersistedQueryIdsFromManifest } from "@apollo/persisted-query-lists";

const [url, stepsJson, manifestPath] = process.argv.slice(2);
const print = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);

function persistedLink() {
  if (manifestPath) {
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    return new PersistedQueryLink(
      generatePersistedQueryIdsFromManifest({ loadManifest: () => manifest }),
    );
  }
  return new PersistedQueryLink({
    sha256: (text) => createHash("sha256").update(text).digest("hex"),
  });
}

function newClient() {
  const http = new HttpLink({
    uri: url,
    fetch: (uri, options) => {
      print({ sent: JSON.parse(options.body) });
      return fetch(uri, options);
    },
  });
  return new ApolloClient({ link: persistedLink().concat(http), cache: new InMemoryCache() });
}

for (const step of JSON.parse(stepsJson)) {
  const document = gql(step.document);
  const context = step.token ? { headers: { authorization: `Bearer ${step.token}` } } : {};
  const isMutation = document.definitions.some((d) => d.operation === "mutation");
  const request = { variables: step.variables ?? {}, context, errorPolicy: "all" };
  const result = isMutation
    ? await newClient().mutate({ mutation: document, ...request })
    : await newClient().query({ query: document, fetchPolicy: "no-cache", ...request });
  print({ answer: { data: result.data ?? null, errors: result.error?.errors ?? null } });
}
