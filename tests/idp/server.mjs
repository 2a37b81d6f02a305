#!/usr/bin/env node
// The test bed's OpenID provider: the OpenID Certified `oidc-provider`
// package, configured as one confidential client and the users of users.mjs,
// on 127.0.0.1. Started by `TestIdp::start` (crates/headlamp-test-util/src/idp.rs);
// docs/testing.md describes the users and options.
//
// Protocol with the harness: once listening, ONE JSON line goes to stdout,
//   {"issuer":"http://127.0.0.1:PORT","port":PORT,"clientId":"..."}
// and nothing else is ever written to stdout (the provider's notices go to
// stderr). Bad options exit with status 2 and a message on stderr.
//
// Options (each also read from the environment as TEST_IDP_<NAME>, upper-case,
// `-` -> `_`, e.g. TEST_IDP_CLIENT_SECRET; a flag wins over the environment):
//   --port N                 0 (default) = a free port
//   --client-id ID           default "headlamp"
//   --client-secret SECRET   default "headlamp-test-secret"
//   --redirect-uri URI       required; repeat for several
//   --post-logout-redirect-uri URI   optional; repeat for several
//   --id-token-ttl S         ID token lifetime in seconds (default 3600)
//   --access-token-ttl S     access token lifetime (default 3600)
//   --refresh-token-ttl S    refresh token lifetime (default 86400)
//   --session-ttl S          IdP login session lifetime (default 86400)
//   --client-auth-method M   client_secret_basic (default) | client_secret_post;
//                            the token endpoint accepts either (oidc-provider
//                            treats the two as one family), the registered one
//                            is what discovery-driven clients pick
//   --require-pkce           reject authorization requests without PKCE S256
//   --refresh-tokens P       always (default) | offline-access | never
//   --access-token-format F  opaque (default) | jwt (RS256 JWT, aud = client id,
//                            with username, email and groups claims)
//   --keys-file PATH         signing and cookie keys; created when missing,
//                            reused when present (a restarted IdP keeps its keys)
//   --issuer-path PATH       serve under a path, e.g. /realms/test
//   --exit-with-stdin        exit when stdin reaches EOF: the harness holds
//                            the other end, so the IdP dies with its test even
//                            when the test binary is killed outright

import { once } from 'node:events';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import { findByLogin, findBySub } from './users.mjs';

// oidc-provider prints notices with console.info; stdout carries only the
// ready line, so every console method writes to stderr.
console.log = console.error;
console.info = console.error;

const OPTIONS = {
  port: { type: 'string', default: '0' },
  'client-id': { type: 'string', default: 'headlamp' },
  'client-secret': { type: 'string', default: 'headlamp-test-secret' },
  'redirect-uri': { type: 'string', multiple: true },
  'post-logout-redirect-uri': { type: 'string', multiple: true },
  'id-token-ttl': { type: 'string', default: '3600' },
  'access-token-ttl': { type: 'string', default: '3600' },
  'refresh-token-ttl': { type: 'string', default: '86400' },
  'session-ttl': { type: 'string', default: '86400' },
  'client-auth-method': { type: 'string', default: 'client_secret_basic' },
  'require-pkce': { type: 'boolean', default: false },
  'refresh-tokens': { type: 'string', default: 'always' },
  'access-token-format': { type: 'string', default: 'opaque' },
  'keys-file': { type: 'string' },
  'issuer-path': { type: 'string', default: '' },
  'exit-with-stdin': { type: 'boolean', default: false },
};

/** The audience-bearing resource of `--access-token-format jwt` tokens. */
const JWT_ACCESS_TOKEN_RESOURCE = 'urn:headlamp-auth:test-api-server';

function fail(message) {
  process.stderr.write(`test-idp: ${message}\n`);
  process.exit(2);
}

function readOptions() {
  let parsed;
  try {
    parsed = parseArgs({ options: OPTIONS, strict: true, allowPositionals: false });
  } catch (err) {
    fail(`${err.message} (options: ${Object.keys(OPTIONS).map((o) => `--${o}`).join(' ')})`);
  }
  const values = { ...parsed.values };
  // The environment fills what no flag set explicitly.
  for (const [name, spec] of Object.entries(OPTIONS)) {
    const fromEnv = process.env[`TEST_IDP_${name.toUpperCase().replaceAll('-', '_')}`];
    const explicit = process.argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`));
    if (fromEnv === undefined || explicit) continue;
    if (spec.multiple) values[name] = fromEnv.split(',').filter(Boolean);
    else if (spec.type === 'boolean') values[name] = fromEnv === 'true' || fromEnv === '1';
    else values[name] = fromEnv;
  }
  return values;
}

function positiveSeconds(values, name) {
  const raw = values[name];
  if (!/^[0-9]+$/.test(raw) || Number(raw) < 1) {
    fail(`--${name} must be a whole number of seconds >= 1, got "${raw}"`);
  }
  return Number(raw);
}

function oneOf(values, name, allowed) {
  if (!allowed.includes(values[name])) {
    fail(`--${name} must be one of ${allowed.join(', ')}, got "${values[name]}"`);
  }
  return values[name];
}

function validateOptions(values) {
  const port = Number(values.port);
  if (!/^[0-9]+$/.test(values.port) || port > 65535) {
    fail(`--port must be 0..65535, got "${values.port}"`);
  }
  const redirectUris = values['redirect-uri'] ?? [];
  if (redirectUris.length === 0) {
    fail('at least one --redirect-uri is required, e.g. --redirect-uri http://127.0.0.1:4466/oidc-callback');
  }
  for (const uri of [...redirectUris, ...(values['post-logout-redirect-uri'] ?? [])]) {
    if (URL.parse(uri) === null) fail(`redirect URI "${uri}" is not an absolute URL`);
  }
  const issuerPath = values['issuer-path'].replace(/\/+$/, '');
  if (issuerPath !== '' && !/^\/[A-Za-z0-9._~/-]+$/.test(issuerPath)) {
    fail(`--issuer-path must start with / and hold only URL path characters, got "${values['issuer-path']}"`);
  }
  if (!values['client-id'] || !values['client-secret']) {
    fail('--client-id and --client-secret must not be empty');
  }
  return {
    port,
    clientId: values['client-id'],
    clientSecret: values['client-secret'],
    redirectUris,
    postLogoutRedirectUris: values['post-logout-redirect-uri'] ?? [],
    idTokenTtl: positiveSeconds(values, 'id-token-ttl'),
    accessTokenTtl: positiveSeconds(values, 'access-token-ttl'),
    refreshTokenTtl: positiveSeconds(values, 'refresh-token-ttl'),
    sessionTtl: positiveSeconds(values, 'session-ttl'),
    clientAuthMethod: oneOf(values, 'client-auth-method', ['client_secret_basic', 'client_secret_post']),
    requirePkce: values['require-pkce'],
    refreshTokens: oneOf(values, 'refresh-tokens', ['always', 'offline-access', 'never']),
    accessTokenFormat: oneOf(values, 'access-token-format', ['opaque', 'jwt']),
    keysFile: values['keys-file'],
    issuerPath,
    exitWithStdin: values['exit-with-stdin'],
  };
}

/**
 * RS256 signing key and cookie-signing keys. Kept in `--keys-file` so that a
 * restarted IdP serves the same JWKS: tokens issued before a restart still
 * verify, as they would with a real IdP that restarts.
 */
function loadOrCreateKeys(keysFile) {
  if (keysFile && fs.existsSync(keysFile)) {
    try {
      return JSON.parse(fs.readFileSync(keysFile, 'utf8'));
    } catch (err) {
      fail(`--keys-file ${keysFile} is not a keys file written by this script (${err.message}); delete it to get new keys`);
    }
  }
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const keys = {
    jwks: { keys: [{ ...jwk, alg: 'RS256', use: 'sig', kid: crypto.randomBytes(8).toString('hex') }] },
    cookieKeys: [crypto.randomBytes(32).toString('base64url')],
  };
  if (keysFile) fs.writeFileSync(keysFile, JSON.stringify(keys), { mode: 0o600 });
  return keys;
}

function htmlSafe(value) {
  return String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

// Pages load nothing from outside (the test network is loopback only).
function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${htmlSafe(title)} · headlamp-auth test IdP</title>
<style>
body{font-family:sans-serif;background:#eef1f5;margin:0;padding:40px}
main{max-width:340px;margin:0 auto;background:#fff;padding:24px 32px;border-radius:6px;box-shadow:0 2px 6px rgba(0,0,0,.2)}
h1{font-weight:300;margin-top:0}
label{display:block;margin-top:12px;font-size:14px}
input{width:100%;box-sizing:border-box;height:36px;font-size:15px;padding:0 8px;margin-top:4px}
button{width:100%;height:36px;margin-top:16px;font-size:15px;border:0;border-radius:3px;background:#2764c5;color:#fff;cursor:pointer}
button.secondary{background:#ddd;color:#333;margin-top:8px}
.error{color:#b00020;font-weight:bold}
.footer{font-size:12px;color:#777;margin-top:16px}
</style>
</head>
<body><main>
${body}
<p class="footer">headlamp-auth test bed IdP (oidc-provider)</p>
</main></body>
</html>
`;
}

function loginPage({ base, uid, clientId, loginHint, error }) {
  return page('Sign in', `<h1>Sign in</h1>
<p>to continue to <strong id="client-id">${htmlSafe(clientId)}</strong></p>
${error ? `<p class="error" id="login-error" role="alert">${htmlSafe(error)}</p>` : ''}
<form id="login-form" method="post" action="${base}/interaction/${uid}/login" autocomplete="off">
<label for="login">Username</label>
<input id="login" name="login" type="text" required autofocus value="${htmlSafe(loginHint)}">
<label for="password">Password</label>
<input id="password" name="password" type="password" required>
<button id="login-submit" type="submit">Sign in</button>
</form>
<form id="abort-form" method="post" action="${base}/interaction/${uid}/abort">
<button id="abort-submit" class="secondary" type="submit">Cancel</button>
</form>`);
}

function consentPage({ base, uid, clientId, login, scopes }) {
  return page('Authorize', `<h1>Authorize</h1>
<p><strong id="client-id">${htmlSafe(clientId)}</strong> asks to act as
<strong id="account">${htmlSafe(login)}</strong> with:</p>
<ul id="scopes">${scopes.map((s) => `<li>${htmlSafe(s)}</li>`).join('')}</ul>
<form id="consent-form" method="post" action="${base}/interaction/${uid}/confirm">
<button id="consent-submit" type="submit">Allow</button>
</form>
<form id="abort-form" method="post" action="${base}/interaction/${uid}/abort">
<button id="abort-submit" class="secondary" type="submit">Deny</button>
</form>`);
}

async function readForm(req) {
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded')) {
    throw Object.assign(new Error(`expected an application/x-www-form-urlencoded form, got "${type}"`), { status: 415 });
  }
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 64 * 1024) throw Object.assign(new Error('form too large'), { status: 413 });
  }
  return new URLSearchParams(body);
}

function send(res, status, html) {
  res.statusCode = status;
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  res.end(html);
}

async function main() {
  const opts = validateOptions(readOptions());
  const keys = loadOrCreateKeys(opts.keysFile);
  const { default: Provider, errors } = await import('oidc-provider');

  // Listen first: with --port 0 the issuer URL is known only once bound.
  const server = http.createServer();
  server.listen(opts.port, '127.0.0.1');
  try {
    await once(server, 'listening');
  } catch (err) {
    fail(`cannot listen on 127.0.0.1:${opts.port}: ${err.message}`);
  }
  const { port } = server.address();
  const origin = `http://127.0.0.1:${port}`;
  const issuer = `${origin}${opts.issuerPath}`;
  const jwtAccessTokens = opts.accessTokenFormat === 'jwt';

  const grantTypes = opts.refreshTokens === 'never'
    ? ['authorization_code']
    : ['authorization_code', 'refresh_token'];

  const provider = new Provider(issuer, {
    clients: [{
      client_id: opts.clientId,
      client_secret: opts.clientSecret,
      redirect_uris: opts.redirectUris,
      post_logout_redirect_uris: opts.postLogoutRedirectUris,
      grant_types: grantTypes,
      response_types: ['code'],
      token_endpoint_auth_method: opts.clientAuthMethod,
      id_token_signed_response_alg: 'RS256',
    }],
    jwks: keys.jwks,
    cookies: { keys: keys.cookieKeys },
    // Standard claims by scope (OIDC Core 5.4) plus `groups` as Dex and
    // Keycloak issue it; the kube-apiserver `--oidc-groups-claim` reads it.
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
    // Headlamp uses the authorization code flow only (OIDC Core 3.1).
    responseTypes: ['code'],
    // OIDC Core 5.4 puts scope-requested claims in the UserInfo response only
    // when an access token is issued; Kubernetes and Headlamp read them from
    // the ID token, as Dex, Keycloak and Entra ID send them.
    conformIdTokenClaims: false,
    async findAccount(_ctx, sub) {
      const user = findBySub(sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        async claims() {
          return structuredClone(user.claims);
        },
      };
    },
    features: {
      // Our own login and consent pages below replace the development ones.
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Without a resource the access token is opaque (for UserInfo);
        // --access-token-format jwt binds every token to one resource whose
        // tokens are JWTs with aud = client id, which is what
        // kube-apiserver's --oidc-client-id check requires of a bearer JWT.
        async defaultResource() {
          return jwtAccessTokens ? JWT_ACCESS_TOKEN_RESOURCE : undefined;
        },
        async useGrantedResource() {
          return jwtAccessTokens;
        },
        async getResourceServerInfo(_ctx, resource) {
          if (!jwtAccessTokens || resource !== JWT_ACCESS_TOKEN_RESOURCE) {
            throw new errors.InvalidTarget();
          }
          return {
            scope: 'kubernetes',
            audience: opts.clientId,
            accessTokenTTL: opts.accessTokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    async extraTokenClaims(_ctx, token) {
      if (!jwtAccessTokens) return undefined;
      const user = findBySub(token.accountId);
      if (!user) return undefined;
      const { sub: _sub, ...claims } = user.claims;
      return claims;
    },
    interactions: {
      url: (_ctx, interaction) => `${opts.issuerPath}/interaction/${interaction.uid}`,
    },
    // PKCE (RFC 7636) is accepted from every client; --require-pkce makes it
    // mandatory so tests can prove the relying party sends it.
    pkce: { required: () => opts.requirePkce },
    // Real IdPs (Keycloak, Entra ID, Dex) hand a confidential client a
    // refresh token without `offline_access`; Headlamp's default scopes do
    // not ask for it.
    async issueRefreshToken(_ctx, client, code) {
      if (!client.grantTypeAllowed('refresh_token')) return false;
      if (opts.refreshTokens === 'offline-access') return code.scopes.has('offline_access');
      return opts.refreshTokens === 'always';
    },
    // Always rotate (RFC 9700 4.14.2) so a client that keeps the old refresh
    // token fails; reuse of a rotated token revokes the grant.
    rotateRefreshToken: () => true,
    ttl: {
      AccessToken: opts.accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: opts.idTokenTtl,
      RefreshToken: opts.refreshTokenTtl,
      Session: opts.sessionTtl,
      Interaction: 600,
      Grant: Math.max(opts.refreshTokenTtl, opts.sessionTtl),
    },
    clientBasedCORS: () => false,
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Error', `<h1>Error</h1>${Object.entries(out)
        .map(([k, v]) => `<p><strong>${htmlSafe(k)}</strong>: <span id="${htmlSafe(k)}">${htmlSafe(v)}</span></p>`)
        .join('')}`);
    },
  });

  for (const event of ['server_error', 'authorization.error', 'grant.error', 'introspection.error', 'revocation.error', 'end_session.error']) {
    provider.on(event, (_ctx, err) => {
      console.error(`test-idp: ${event}: ${err?.name}: ${err?.message}${err?.error_description ? ` (${err.error_description})` : ''}`);
    });
  }

  const providerCallback = provider.callback();

  async function interaction(req, res, uid, action) {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) {
      return send(res, 400, page('Error', '<h1>Error</h1><p class="error">interaction id does not match the interaction cookie</p>'));
    }
    const { prompt, params } = details;
    const common = { base: opts.issuerPath, uid, clientId: params.client_id };

    if (req.method === 'GET' && action === undefined) {
      if (prompt.name === 'login') {
        return send(res, 200, loginPage({ ...common, loginHint: params.login_hint }));
      }
      const user = findBySub(details.session?.accountId);
      return send(res, 200, consentPage({
        ...common,
        login: user?.login ?? details.session?.accountId,
        scopes: String(params.scope ?? '').split(' ').filter(Boolean),
      }));
    }
    if (req.method !== 'POST' || action === undefined) {
      res.setHeader('allow', action === undefined ? 'GET' : 'POST');
      return send(res, 405, page('Error', '<p class="error">method not allowed</p>'));
    }
    const form = await readForm(req);

    if (action === 'abort') {
      // The RP sees error=access_denied (OIDC Core 3.1.2.6).
      return provider.interactionFinished(req, res, {
        error: 'access_denied',
        error_description: 'End-User aborted interaction',
      }, { mergeWithLastSubmission: false });
    }
    if (action === 'login') {
      if (prompt.name !== 'login') {
        return send(res, 400, page('Error', `<p class="error">expected a ${htmlSafe(prompt.name)} step, not a login</p>`));
      }
      const login = form.get('login') ?? '';
      const user = findByLogin(login);
      if (!user || form.get('password') !== user.password) {
        console.error(`test-idp: login rejected for "${login}"`);
        return send(res, 200, loginPage({ ...common, loginHint: login, error: 'Invalid username or password.' }));
      }
      console.error(`test-idp: login accepted for "${login}"`);
      return provider.interactionFinished(req, res, {
        login: { accountId: user.claims.sub },
      }, { mergeWithLastSubmission: false });
    }
    // action === 'confirm'
    if (prompt.name !== 'consent') {
      return send(res, 400, page('Error', `<p class="error">expected a ${htmlSafe(prompt.name)} step, not a consent</p>`));
    }
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    const consent = details.grantId ? {} : { grantId };
    return provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
  }

  server.on('request', (req, res) => {
    const started = Date.now();
    const pathOnly = (req.url ?? '/').split('?')[0];
    res.on('finish', () => {
      console.error(`test-idp: ${req.method} ${pathOnly} -> ${res.statusCode} (${Date.now() - started} ms)`);
    });
    if (opts.issuerPath) {
      if (pathOnly !== opts.issuerPath && !pathOnly.startsWith(`${opts.issuerPath}/`)) {
        return send(res, 404, page('Not found', `<p class="error">everything lives under ${htmlSafe(opts.issuerPath)}</p>`));
      }
      // oidc-provider derives its mount path from originalUrl vs url, as
      // under express' app.use(prefix, ...).
      req.originalUrl = req.url;
      req.url = req.url.slice(opts.issuerPath.length) || '/';
    }
    const path = req.url.split('?')[0];
    const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?$/.exec(path);
    if (!match) return providerCallback(req, res);
    interaction(req, res, match[1], match[2]).catch((err) => {
      if (err instanceof errors.SessionNotFound) {
        return send(res, 400, page('Error', `<p class="error" id="error">interaction session not found or expired: ${htmlSafe(err.error_description ?? err.message)}</p>`));
      }
      console.error(`test-idp: interaction failed: ${err.stack ?? err}`);
      return send(res, err.status ?? 500, page('Error', `<p class="error" id="error">${htmlSafe(err.message)}</p>`));
    });
  });

  const shutdown = () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  };
  for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, shutdown);
  if (opts.exitWithStdin) {
    process.stdin.on('end', shutdown);
    process.stdin.on('error', shutdown);
    process.stdin.resume();
  }

  process.stdout.write(`${JSON.stringify({ issuer, port, clientId: opts.clientId })}\n`);
}

main().catch((err) => {
  fail(`failed to start: ${err.stack ?? err}`);
});
