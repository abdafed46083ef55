// Relay's runtime against keybin, sending the ids relay-compiler persisted, as the network
// layer of Relay's persisted-queries guide does: `doc_id` and the variables, no text.
// node relay.mjs URL ARTIFACTS STEPS
//   ARTIFACTS: the compiler's artifact directory (`<Operation>.graphql.js`);
//   STEPS: a JSON array of {"operation": "RegionsQuery", "variables"?, "token"?}, each run in
//   an environment of its own.
// One JSON line per request sent ({"sent": body}) and per answer ({"answer": ...}).
import { join } from "node:path";
import { pathToFileURL } from "node:url";

import {
  Environment,
  Network,
  RecordSource,
  Store,
  commitMutation,
  fetchQuery,
} from "relay-runtime";

const [url, artifacts, stepsJson] = process.argv.slice(2);
const print = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);

function environment(token) {
  const network = Network.create(async (params, variables) => {
    const body = { doc_id: params.id, variables };
    print({ sent: body });
    const headers = { "content-type": "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    const response = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
    return response.json();
  });
  return new Environment({ network, store: new Store(new RecordSource()) });
}

function mutate(env, mutation, variables) {
  return new Promise((resolve, reject) => {
    commitMutation(env, {
      mutation,
      variables,
      onCompleted: (response, errors) => resolve({ data: response, errors: errors ?? null }),
      onError: reject,
    });
  });
}

for (const step of JSON.parse(stepsJson)) {
  const artifact = pathToFileURL(join(artifacts, `${step.operation}.graphql.js`)).href;
  const { default: node } = await import(artifact);
  const env = environment(step.token);
  const variables = step.variables ?? {};
  let answer;
  try {
    answer =
      node.params.operationKind === "mutation"
        ? await mutate(env, node, variables)
        : {
            data: await fetchQuery(env, node, variables, {
              fetchPolicy: "network-only",
            }).toPromise(),
            errors: null,
          };
  } catch (error) {
    // Relay rejects an answer with errors and no data: what the server said is in the message.
    answer = { data: null, errors: [String(error.message ?? error)] };
  }
  print({ answer });
}
