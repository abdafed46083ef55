// A certified OpenID Provider (npm oidc-provider) on loopback for the console's sign-in tests.
//
//   node provider.mjs HOST PORT CONFIG.json
//
// CONFIG: {"clientId", "clientSecret", "redirectUri", "accounts": {"login": {claims...}}}.
// The development login and consent pages are the provider's own (devInteractions): any
// password signs in the account named by the login. Claims: email and email_verified (scope
// email), name (profile), keybin_role (roles); the ID token carries only sub, as the provider
// conforms it to the code flow, so the rest comes from UserInfo.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const [host, port, configPath] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const issuer = `http://${host}:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: config.clientId,
      client_secret: config.clientSecret,
      redirect_uris: [config.redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    roles: ['keybin_role'],
  },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const claims = config.accounts[id];
    if (!claims) return undefined;
    return { accountId: id, claims: async () => ({ ...claims, sub: id }) };
  },
});

createServer(provider.callback()).listen(Number(port), host, () => {
  console.log(`listening ${issuer}`);
});
