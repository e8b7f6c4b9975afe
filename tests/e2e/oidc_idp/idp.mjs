// A real OpenID Provider for the identity tests: panva's oidc-provider (OpenID Certified),
// configured here and nothing more. Not MAE's code and not localauth.
//
//   node idp.mjs <port> <accounts.json> <client_id>:<client_secret>:<redirect_uri> [...]
//
// The issuer is http://127.0.0.1:<port>. Signing keys are generated at start (RS256).
// Who logs in is typed at the provider's own development login form ("login" becomes the
// account id, i.e. the subject; any password); the account's other claims are read from
// <accounts.json> ({"<subject>": {"preferred_username": ..., "email": ..., "name": ...}})
// at each login, so a test may add accounts while the provider runs.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const [port, accountsFile, ...clientSpecs] = process.argv.slice(2);

function accounts() {
  try {
    return JSON.parse(readFileSync(accountsFile, 'utf8'));
  } catch {
    return {};
  }
}

const clients = clientSpecs.map((spec) => {
  const [clientId, secret, ...rest] = spec.split(':');
  return {
    client_id: clientId,
    client_secret: secret,
    redirect_uris: [rest.join(':')],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    // token_endpoint_auth_method: client_secret_basic, the default (OIDC Core 9)
  };
});

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' };

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients,
  jwks: { keys: [jwk] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username', 'nickname'],
    email: ['email', 'email_verified'],
  },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { ...(accounts()[id] || {}), sub: id };
      },
    };
  },
});

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider listening on http://127.0.0.1:${port}`);
});
