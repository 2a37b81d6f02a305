// The built-in page of headlamp-server: lists the clusters from [base]/config,
// signs in to OIDC clusters the way Headlamp's frontend does, and shows who
// the API server says you are.
//
// The sign-in follows Headlamp (frontend/src/components/authchooser and
// oidcauth/OauthPopup.tsx): a popup opens [base]/oidc?dt=<date>&cluster=NAME,
// the server sends it through the IdP to /oidc-callback, which sets the
// HttpOnly token cookie and sends the popup to [base]/auth?cluster=NAME;
// that page writes localStorage.auth_status = "success". This window sees
// the `storage` event (or its poll sees the value), closes the popup and asks
// the API server who it is now.
//
// "Who you are" is a SelfSubjectReview (authentication.k8s.io/v1, Kubernetes
// 1.28+) POSTed through the proxy: the answer is the user as the API server
// authenticated it (passthrough) or as headlamp-server impersonated it, not
// what the token claims. The cookie is HttpOnly and SameSite=Strict, so
// this script never sees the token; `credentials: 'same-origin'` sends it.
'use strict';

const BASE = document.querySelector('meta[name="headlamp-base-url"]')?.content ?? '';
const AUTH_STATUS_KEY = 'auth_status';
const POLL_MS = 500;
// A sign-in left open longer than this stops being watched (the user can
// click Sign in again).
const GIVE_UP_MS = 15 * 60 * 1000;

const statusLine = document.getElementById('status');
const clusterList = document.getElementById('clusters');

/** The one sign-in in progress: { cluster, popup, timer, onStorage }. */
let pendingSignIn = null;

/**
 * A cluster name as one path segment. Headlamp puts the raw name in the path
 * and the cookie's Path attribute is the raw name too (headlamp-compat.md),
 * so only characters that cannot appear in a path segment (RFC 3986 3.3
 * pchar) are escaped: a name made of pchars travels unchanged.
 */
function pathSegment(name) {
  return encodeURIComponent(name).replace(/%(3A|40|24|26|2B|2C|3B|3D)/gi, (match) =>
    decodeURIComponent(match),
  );
}

function clusterUrl(name, rest) {
  return `${BASE}/clusters/${pathSegment(name)}${rest}`;
}

/** Parses a JSON body; `null` when there is none or it is not JSON. */
async function readJson(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** The message of a Kubernetes Status (or Headlamp's {"message"}) body. */
function errorMessage(response, body) {
  const detail = body && typeof body.message === 'string' ? body.message : '';
  const code = `${response.status} ${response.statusText}`.trim();
  return detail ? `${detail} (${code})` : code;
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === 'className') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

// --- Clusters ----------------------------------------------------------------

async function loadClusters() {
  statusLine.textContent = 'Loading clusters…';
  statusLine.className = 'status';
  let response;
  let body;
  try {
    response = await fetch(`${BASE}/config`, {
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { Accept: 'application/json' },
    });
    body = await readJson(response);
  } catch (err) {
    showLoadError(`Cannot reach headlamp-server at ${BASE}/config: ${err.message}`);
    return;
  }
  if (!response.ok || !body || !Array.isArray(body.clusters)) {
    showLoadError(`Cannot load the clusters from ${BASE}/config: ${errorMessage(response, body)}`);
    return;
  }
  clusterList.replaceChildren();
  const clusters = body.clusters;
  if (clusters.length === 0) {
    statusLine.textContent =
      'No clusters are configured. Start headlamp-server with -kubeconfig or -in-cluster.';
    return;
  }
  statusLine.textContent = clusters.length === 1 ? '1 cluster' : `${clusters.length} clusters`;
  clusters.forEach((cluster, index) => {
    const card = clusterCard(cluster, index);
    clusterList.append(element('li', {}, card.root));
    if (!cluster.error) refreshIdentity(card);
  });
}

function showLoadError(message) {
  statusLine.textContent = message;
  statusLine.className = 'status error';
  clusterList.replaceChildren(
    element('li', {}, element('button', { type: 'button', onclick: loadClusters }, 'Try again')),
  );
}

/** The card of one cluster and the parts that change. */
function clusterCard(cluster, index) {
  const headingId = `cluster-${index}-name`;
  const isOidc = cluster.auth_type === 'oidc';
  const identity = element('div', { className: 'identity', 'aria-live': 'polite' });
  const actions = element('div', { className: 'actions' });
  const root = element(
    'article',
    { className: 'cluster', 'data-cluster': cluster.name, 'aria-labelledby': headingId },
    element(
      'div',
      { className: 'cluster-head' },
      element('h2', { id: headingId }, cluster.name),
      element('span', { className: isOidc ? 'badge oidc' : 'badge' }, isOidc ? 'OpenID Connect' : 'kubeconfig credentials'),
    ),
    cluster.server ? element('p', { className: 'server' }, cluster.server) : null,
    identity,
    actions,
  );
  const card = { cluster, isOidc, root, identity, actions };
  if (cluster.error) {
    identity.replaceChildren(
      element('p', { className: 'error' }, `This cluster could not be loaded: ${cluster.error}`),
    );
  }
  return card;
}

// --- Who am I ------------------------------------------------------------------

async function refreshIdentity(card) {
  const { cluster, identity, actions } = card;
  identity.replaceChildren(element('p', { className: 'muted' }, 'Checking who you are…'));
  actions.replaceChildren();
  let response;
  let body;
  try {
    response = await fetch(
      clusterUrl(cluster.name, '/apis/authentication.k8s.io/v1/selfsubjectreviews'),
      {
        method: 'POST',
        credentials: 'same-origin',
        cache: 'no-store',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }),
      },
    );
    body = await readJson(response);
  } catch (err) {
    identity.replaceChildren(
      element('p', { className: 'error' }, `Cannot reach headlamp-server: ${err.message}`),
    );
    actions.replaceChildren(retryButton(card));
    return;
  }

  if (response.ok && body?.status?.userInfo) {
    showSignedIn(card, body.status.userInfo);
  } else if (response.status === 401) {
    showSignedOut(card, body);
  } else {
    identity.replaceChildren(
      element('p', { className: 'error' }, `The cluster did not say who you are: ${errorMessage(response, body)}`),
    );
    actions.replaceChildren(retryButton(card));
    if (card.isOidc) actions.append(signOutButton(card));
  }
}

function showSignedIn(card, userInfo) {
  const groups = Array.isArray(userInfo.groups) ? userInfo.groups : [];
  const groupList = groups.length
    ? element('ul', { className: 'groups', 'aria-label': 'Groups' }, ...groups.map((g) => element('li', {}, g)))
    : element('span', { className: 'muted' }, 'none');
  card.identity.replaceChildren(
    element(
      'dl',
      { className: 'whoami' },
      element('dt', {}, 'Signed in as'),
      element('dd', { className: 'username' }, userInfo.username ?? ''),
      element('dt', {}, 'Groups'),
      element('dd', {}, groupList),
    ),
  );
  card.actions.replaceChildren(card.isOidc ? signOutButton(card) : retryButton(card, 'Refresh'));
}

function showSignedOut(card, body) {
  if (card.isOidc) {
    card.identity.replaceChildren(element('p', { className: 'signed-out' }, 'You are not signed in.'));
    card.actions.replaceChildren(
      element('button', { type: 'button', className: 'primary', 'data-action': 'sign-in', onclick: () => signIn(card) }, 'Sign in'),
    );
  } else {
    card.identity.replaceChildren(
      element(
        'p',
        { className: 'error' },
        `The cluster refused the kubeconfig's credentials: ${body?.message ?? 'Unauthorized'}`,
      ),
    );
    card.actions.replaceChildren(retryButton(card));
  }
}

function retryButton(card, label = 'Try again') {
  return element('button', { type: 'button', 'data-action': 'refresh', onclick: () => refreshIdentity(card) }, label);
}

// --- Sign in (popup) and sign out ----------------------------------------------

function signIn(card) {
  stopWaiting();
  // A stale value would make the next storage event a no-op (an event only
  // fires when the value changes), and would look like an instant success.
  window.localStorage.removeItem(AUTH_STATUS_KEY);

  const { name } = card.cluster;
  const url = `${BASE}/oidc?dt=${encodeURIComponent(Date())}&cluster=${encodeURIComponent(name)}`;
  const width = 520;
  const height = 680;
  const left = window.screenX + (window.outerWidth - width) / 2;
  const top = window.screenY + (window.outerHeight - height) / 2.5;
  const popup = window.open(
    url,
    'headlamp-sign-in',
    `popup=yes,width=${width},height=${height},left=${left},top=${top}`,
  );
  if (!popup) {
    card.identity.replaceChildren(
      element(
        'p',
        { className: 'error' },
        'The browser blocked the sign-in window. Allow pop-ups for this page, or ',
        element('a', { href: url }, 'sign in in this tab'),
        '.',
      ),
    );
    return;
  }
  card.identity.replaceChildren(
    element('p', { className: 'muted' }, `Sign in to ${name} in the window that opened…`),
  );
  card.actions.replaceChildren(
    element('button', { type: 'button', onclick: () => { stopWaiting(); refreshIdentity(card); } }, 'Cancel'),
  );

  const started = Date.now();
  let closedNoted = false;
  const check = () => {
    if (window.localStorage.getItem(AUTH_STATUS_KEY)) {
      window.localStorage.removeItem(AUTH_STATUS_KEY);
      stopWaiting();
      refreshIdentity(card);
      return;
    }
    if (Date.now() - started > GIVE_UP_MS) {
      stopWaiting();
      refreshIdentity(card);
      return;
    }
    // The popup may also look closed when the IdP's pages switched it to
    // another browsing context group (Cross-Origin-Opener-Policy), so keep
    // listening for the signal after saying so.
    if (popup.closed && !closedNoted) {
      closedNoted = true;
      card.identity.replaceChildren(
        element('p', { className: 'muted' }, 'The sign-in window was closed before the sign-in finished.'),
      );
      card.actions.replaceChildren(
        element('button', { type: 'button', className: 'primary', 'data-action': 'sign-in', onclick: () => signIn(card) }, 'Sign in'),
      );
    }
  };
  const onStorage = (event) => {
    if (event.key === AUTH_STATUS_KEY && event.newValue) check();
  };
  window.addEventListener('storage', onStorage);
  pendingSignIn = { popup, onStorage, timer: window.setInterval(check, POLL_MS) };
}

function stopWaiting() {
  if (!pendingSignIn) return;
  const { popup, onStorage, timer } = pendingSignIn;
  pendingSignIn = null;
  window.removeEventListener('storage', onStorage);
  window.clearInterval(timer);
  try {
    if (!popup.closed) popup.close();
  } catch {
    // A popup in another browsing context group cannot be closed from here.
  }
}

function signOutButton(card) {
  return element('button', { type: 'button', 'data-action': 'sign-out', onclick: () => signOut(card) }, 'Sign out');
}

/** Headlamp's logout: POST set-token with an empty token clears the cookie. */
async function signOut(card) {
  card.actions.replaceChildren();
  try {
    const response = await fetch(clusterUrl(card.cluster.name, '/set-token'), {
      method: 'POST',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ token: '' }),
    });
    if (!response.ok) {
      const body = await readJson(response);
      card.identity.replaceChildren(
        element('p', { className: 'error' }, `Signing out failed: ${errorMessage(response, body)}`),
      );
      card.actions.replaceChildren(signOutButton(card));
      return;
    }
  } catch (err) {
    card.identity.replaceChildren(
      element('p', { className: 'error' }, `Cannot reach headlamp-server: ${err.message}`),
    );
    card.actions.replaceChildren(signOutButton(card));
    return;
  }
  refreshIdentity(card);
}

loadClusters();
