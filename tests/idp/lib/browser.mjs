// Reusable steps for driving headless Chromium through the test bed with
// playwright-core. login-browser.mjs is one script built from them; e2e
// tests that drive headlamp-server's own pages add their steps here and
// compose them the same way.
//
// Chromium is Debian's (/usr/bin/chromium, installed by
// scripts/install-test-deps.sh); playwright-core never downloads a browser.

import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

import { chromium } from 'playwright-core';

export const CHROMIUM_PATH = process.env.HEADLAMP_TEST_CHROMIUM ?? '/usr/bin/chromium';

/** Flags for a quiet, sandbox-less (we run as root in CI) headless browser
 * that makes no requests of its own (the test network is loopback only). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--no-default-browser-check',
];

/**
 * Launches Chromium with a fresh profile (nothing carried over between
 * runs). Returns { context, page, close }; close() also deletes the profile.
 */
export async function launchChromium({ viewport = { width: 1000, height: 760 } } = {}) {
  const userDataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'headlamp-test-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport,
    });
  } catch (err) {
    await fs.rm(userDataDir, { recursive: true, force: true });
    throw new Error(`cannot launch ${CHROMIUM_PATH}: ${err.message}`);
  }
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close().catch(() => {});
      await fs.rm(userDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Answers every request whose URL starts with `prefix` inside the browser
 * with a small page instead of sending it, and records the first such URL.
 * For tests where the redirect URI has no server behind it.
 */
export async function interceptPrefix(context, prefix) {
  const seen = { url: undefined };
  await context.route((url) => url.href.startsWith(prefix), async (route) => {
    seen.url ??= route.request().url();
    await route.fulfill({
      status: 200,
      contentType: 'text/html; charset=utf-8',
      body: `<!DOCTYPE html><title>Redirect URI reached</title>
<h1>Redirect URI reached</h1><p>The IdP sent the browser to:</p>
<pre id="final-url" style="white-space:pre-wrap;word-break:break-all">${htmlSafe(route.request().url())}</pre>`,
    });
  });
  return seen;
}

function htmlSafe(value) {
  return String(value).replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** Clicks `selector` and waits until the page has left its current URL and
 * loaded the next document (a form post followed by redirects). */
async function submitAndWait(page, selector) {
  const before = page.url();
  await page.click(selector);
  await page.waitForURL((url) => url.href !== before, { waitUntil: 'domcontentloaded' });
}

/**
 * Fills and submits the test IdP's login form (tests/idp/server.mjs) as a
 * person would. Throws with the IdP's message if it refuses the credentials.
 */
export async function loginAtIdp(page, { username, password, screenshotPath }) {
  await page.locator('#login-form').waitFor({ state: 'visible' });
  await page.fill('#login', username);
  await page.fill('#password', password);
  if (screenshotPath) await page.screenshot({ path: screenshotPath, fullPage: true });
  await submitAndWait(page, '#login-submit');
  const error = page.locator('#login-error');
  if (await error.count()) {
    throw new Error(`the IdP refused the login of "${username}": ${(await error.textContent()).trim()}`);
  }
}

/** Presses "Allow" on the IdP's consent page when it shows one. */
export async function consentAtIdp(page, { screenshotPath } = {}) {
  if (!(await page.locator('#consent-form').count())) return false;
  if (screenshotPath) await page.screenshot({ path: screenshotPath, fullPage: true });
  await submitAndWait(page, '#consent-submit');
  return true;
}

/** Presses "Cancel" (login page) or "Deny" (consent page) at the IdP. */
export async function abortAtIdp(page) {
  await page.locator('#abort-form').waitFor({ state: 'visible' });
  await submitAndWait(page, '#abort-submit');
}

/** Waits until the browser is on a URL starting with `prefix`. */
export async function waitForPrefix(page, prefix, timeout) {
  await page.waitForURL((url) => url.href.startsWith(prefix), { timeout, waitUntil: 'domcontentloaded' });
  return page.url();
}
