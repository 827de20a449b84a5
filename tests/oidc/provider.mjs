// A real OpenID provider (oidc-provider) for the kcps-server SSO tests,
// served over HTTPS on a free 127.0.0.1 port. Prints "READY <port>" once it
// listens. Environment: OIDC_CERT, OIDC_KEY (PEM of its certificate),
// OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI (the KCPS callback).
// Any login name signs in (devInteractions): sub = name, email = name@idp.test.
// POST /test/stale-jwks: the next /jwks answers an old key set (kid rotation).
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import Provider from 'oidc-provider';

const need = (name) => {
  const v = process.env[name];
  if (!v) {
    process.stderr.write(`provider: ${name} is not set\n`);
    process.exit(2);
  }
  return v;
};

// stdout carries only the READY line (the test may stop reading it).
process.stdout.on('error', () => {});
console.log = console.info = (...args) => console.error(...args);

const server = createServer({ cert: readFileSync(need('OIDC_CERT')), key: readFileSync(need('OIDC_KEY')) });
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rsa-1', use: 'sig', alg: 'RS256' };
  const provider = new Provider(`https://127.0.0.1:${port}`, {
    clients: [{
      client_id: need('OIDC_CLIENT_ID'),
      client_secret: need('OIDC_CLIENT_SECRET'),
      redirect_uris: [need('OIDC_REDIRECT_URI')],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    pkce: { methods: ['S256'], required: () => true },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: true } },
    jwks: { keys: [jwk] },
    cookies: { keys: ['kcps-test-cookie-key'] },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: `${id}@idp.test`, email_verified: true, name: `User ${id}` };
        },
      };
    },
  });
  // Quiet: errors go to stderr for the test log, nothing else.
  provider.on('server_error', (ctx, err) => process.stderr.write(`provider: ${err}\n`));
  // Test hook: each POST /test/stale-jwks makes one later /jwks answer an
  // old key set (another kid), as a provider mid-rotation or a stale cache.
  const { publicKey: oldKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const oldSet = JSON.stringify({ keys: [{ ...oldKey.export({ format: 'jwk' }), kid: 'old-rsa', use: 'sig', alg: 'RS256' }] });
  let stale = 0;
  const handle = provider.callback();
  server.on('request', (req, res) => {
    if (req.method === 'POST' && req.url === '/test/stale-jwks') {
      stale += 1;
      res.end('ok');
    } else if (req.url === '/jwks' && stale > 0) {
      stale -= 1;
      res.setHeader('content-type', 'application/json');
      res.end(oldSet);
    } else {
      handle(req, res);
    }
  });
  process.stderr.write(`provider: oidc-provider on Node.js ${process.version}, https://127.0.0.1:${port}\n`);
  process.stdout.write(`READY ${port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
