// The test IdP's users. docs/testing.md lists them for humans, and
// crates/headlamp-test-util/src/idp/users.rs (`TestUser`) mirrors them for
// Rust tests; the self-test `every_test_user_can_log_in` keeps the three in step.
//
// Each password is `<login>-password`, so a test that logs in with the wrong
// user's password fails instead of silently succeeding.

/** Groups of `gwen`: enough, with long names, that her ID token exceeds the
 * 3800-byte cookie chunk Headlamp uses, so cookie chunking gets exercised. */
const MANY_GROUPS = Array.from(
  { length: 150 },
  (_, i) => `headlamp-test-group-${String(i).padStart(3, '0')}`,
);

const USERS = [
  {
    login: 'alice',
    claims: {
      sub: 'sub-alice',
      email: 'alice@example.com',
      email_verified: true,
      preferred_username: 'alice',
      name: 'Alice Liddell',
      groups: ['dev', 'ops'],
    },
  },
  {
    // No `groups` claim at all (not an empty array): the claim being absent
    // is what an IdP sends for a user without groups.
    login: 'bob',
    claims: {
      sub: 'sub-bob',
      email: 'bob@example.com',
      email_verified: true,
      preferred_username: 'bob',
      name: 'Bob Builder',
    },
  },
  {
    // An attacker-controlled IdP account whose username and groups collide
    // with Kubernetes' reserved `system:` prefix (kube-apiserver rejects or
    // prefixes such OIDC usernames; see the `--oidc-username-prefix` docs).
    login: 'mallory',
    claims: {
      sub: 'sub-mallory',
      email: 'mallory@example.com',
      email_verified: true,
      preferred_username: 'system:admin',
      name: 'Mallory',
      groups: ['system:masters', 'dev'],
    },
  },
  {
    // kube-apiserver refuses an `email` username claim whose
    // `email_verified` is false.
    login: 'erin',
    claims: {
      sub: 'sub-erin',
      email: 'erin@example.com',
      email_verified: false,
      preferred_username: 'erin',
      name: 'Erin Unverified',
      groups: ['dev'],
    },
  },
  {
    login: 'gwen',
    claims: {
      sub: 'sub-gwen',
      email: 'gwen@example.com',
      email_verified: true,
      preferred_username: 'gwen',
      name: 'Gwen Manygroups',
      groups: MANY_GROUPS,
    },
  },
];

for (const user of USERS) {
  user.password = `${user.login}-password`;
}

export function findByLogin(login) {
  return USERS.find((user) => user.login === login);
}

export function findBySub(sub) {
  return USERS.find((user) => user.claims.sub === sub);
}

export { USERS };
