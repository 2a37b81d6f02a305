#!/usr/bin/env node
// Signs in on headlamp-server's built-in page in headless Chromium, the way a
// person would: open the page, click "Sign in" on a cluster, log in through
// the real IdP form in the popup, and read who the page then says you are.
// Run by tests/tests/browser_signin.rs.
//
//   node signin-page.mjs --url PAGE --cluster NAME --user LOGIN \
//        --screenshot PATH [--timeout-ms N]
//   node signin-page.mjs --url PAGE --cluster NAME --abort --screenshot PATH
//
// The password comes from the environment (LOGIN_PASSWORD), not argv.
//
// Steps (screenshots beside PATH, PATH itself is the signed-in page):
//   1. open PAGE, wait for the cluster's "Sign in" button   (-1-signed-out)
//   2. click it; in the popup, log in and allow consent      (-2-login, -3-consent)
//   3. wait until the page closed the popup and shows a user (PATH)
//   4. reload: the HttpOnly cookie keeps the user signed in
//   5. click "Sign out", wait for "Sign in" again            (-4-signed-out-again)
//
// With --abort, step 2 presses Cancel at the IdP instead; the popup shows
// headlamp-server's answer to error=access_denied (-2-denied), the script
// closes it as a person would, and the page must offer "Sign in" again
// (PATH). The report is {"aborted", "popupUrl", "popupTitle", "popupText",
// "pageMessage", "pageErrors", "screenshots"}.
//
// stdout gets exactly one JSON line:
//   {"username", "groups", "popupClosed", "popupUrls", "usernameAfterReload",
//    "signedOut", "pageErrors", "screenshots"}
// or {"error": ...} with exit status 1.

import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { abortAtIdp, consentAtIdp, launchChromium, loginAtIdp } from './lib/browser.mjs';

console.log = console.error;
console.info = console.error;

function finish(result, status) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exitCode = status;
}

function stepPath(finalPath, step) {
  const { dir, name, ext } = path.parse(finalPath);
  return path.join(dir, `${name}-${step}${ext || '.png'}`);
}

/** The card of one cluster on the built-in page. */
function clusterCard(page, cluster) {
  return page.locator(`article.cluster[data-cluster="${cluster.replaceAll('"', '\\"')}"]`);
}

/** Who the card says is signed in: { username, groups }. */
async function readIdentity(card) {
  const username = (await card.locator('.whoami .username').textContent()).trim();
  const groups = (await card.locator('.whoami .groups li').allTextContents()).map((g) => g.trim());
  return { username, groups };
}

/**
 * Runs an IdP step in the popup. The popup may be closed by the page as
 * soon as it reaches /auth, in the middle of the step's wait for the next
 * document: that is success, not an error.
 */
async function inPopup(popup, step) {
  try {
    return await step();
  } catch (err) {
    if (popup.isClosed()) return false;
    throw err;
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      cluster: { type: 'string' },
      user: { type: 'string' },
      screenshot: { type: 'string' },
      'timeout-ms': { type: 'string', default: '60000' },
      abort: { type: 'boolean', default: false },
    },
    strict: true,
  });
  for (const required of ['url', 'cluster', 'screenshot']) {
    if (!values[required]) throw new Error(`--${required} is required`);
  }
  const password = process.env.LOGIN_PASSWORD;
  if (!values.abort && (!values.user || password === undefined)) {
    throw new Error('--user and the LOGIN_PASSWORD environment variable are required unless --abort');
  }
  const timeout = Number(values['timeout-ms']);
  const screenshots = [];
  const shot = async (page, file) => {
    await page.screenshot({ path: file, fullPage: true });
    screenshots.push(file);
  };
  await fs.mkdir(path.dirname(values.screenshot), { recursive: true });

  const browser = await launchChromium({ viewport: { width: 900, height: 640 } });
  const { context, page } = browser;
  context.setDefaultTimeout(timeout);
  // Uncaught exceptions and Content-Security-Policy refusals: the page must
  // have none. (Failed fetches, e.g. the 401 before sign-in, are expected.)
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(`uncaught: ${err.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      pageErrors.push(`console: ${message.text()}`);
    }
  });
  const watchdog = setTimeout(() => {
    finish({ error: `gave up after ${timeout} ms on ${page.url()}` }, 1);
    browser.close().finally(() => process.exit(1));
  }, timeout + 5000);

  try {
    await page.goto(values.url, { waitUntil: 'domcontentloaded' });
    const card = clusterCard(page, values.cluster);
    const signIn = card.locator('[data-action="sign-in"]');
    await signIn.waitFor({ state: 'visible' });
    await shot(page, stepPath(values.screenshot, '1-signed-out'));

    const [popup] = await Promise.all([page.waitForEvent('popup'), signIn.click()]);
    if (values.abort) {
      await popup.waitForLoadState('domcontentloaded');
      await abortAtIdp(popup);
      const popupUrl = popup.url().split('?')[0];
      const popupTitle = await popup.title();
      const popupText = (await popup.locator('body').innerText()).trim();
      await shot(popup, stepPath(values.screenshot, '2-denied'));
      await popup.close();
      await signIn.waitFor({ state: 'visible' });
      const pageMessage = (await card.locator('.identity').innerText()).trim();
      await shot(page, values.screenshot);
      finish({ aborted: true, popupUrl, popupTitle, popupText, pageMessage, pageErrors, screenshots }, 0);
      return;
    }
    const popupUrls = [];
    popup.on('framenavigated', (frame) => {
      // Without queries: they carry the authorization code and state.
      if (frame === popup.mainFrame()) popupUrls.push(frame.url().split('?')[0]);
    });
    await popup.waitForLoadState('domcontentloaded');
    const loginShot = stepPath(values.screenshot, '2-login');
    await inPopup(popup, () => loginAtIdp(popup, { username: values.user, password, screenshotPath: loginShot }));
    if (!popup.isClosed()) {
      screenshots.push(loginShot);
      const consentShot = stepPath(values.screenshot, '3-consent');
      if (await inPopup(popup, () => consentAtIdp(popup, { screenshotPath: consentShot }))) {
        screenshots.push(consentShot);
      }
    }

    await card.locator('.whoami .username').waitFor({ state: 'visible' });
    // The page closes the popup when it sees auth_status; give it the
    // same bound as every other step.
    if (!popup.isClosed()) await popup.waitForEvent('close');
    const identity = await readIdentity(card);
    await shot(page, values.screenshot);

    await page.reload({ waitUntil: 'domcontentloaded' });
    await card.locator('.whoami .username').waitFor({ state: 'visible' });
    const afterReload = await readIdentity(card);

    await card.locator('[data-action="sign-out"]').click();
    await signIn.waitFor({ state: 'visible' });
    await shot(page, stepPath(values.screenshot, '4-signed-out-again'));

    finish(
      {
        username: identity.username,
        groups: identity.groups,
        popupClosed: popup.isClosed(),
        popupUrls,
        usernameAfterReload: afterReload.username,
        signedOut: true,
        pageErrors,
        screenshots,
      },
      0,
    );
  } catch (err) {
    const failShot = stepPath(values.screenshot, 'failed');
    await page.screenshot({ path: failShot, fullPage: true }).catch(() => {});
    finish({ error: `${err.message} (at ${page.url()}; screenshot ${failShot}; page errors: ${JSON.stringify(pageErrors)})` }, 1);
  } finally {
    clearTimeout(watchdog);
    await browser.close();
  }
}

main().catch((err) => finish({ error: err.message }, 1));
