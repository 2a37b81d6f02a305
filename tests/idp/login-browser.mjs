#!/usr/bin/env node
// Logs in through the test IdP's real login form in headless Chromium.
// Run by `browser_login` (crates/headlamp-test-util/src/idp/browser.rs).
//
//   node login-browser.mjs --url START --stop-at PREFIX --user NAME \
//        --screenshot PATH [--intercept] [--abort] [--timeout-ms N]
//
// The password comes from the environment (LOGIN_PASSWORD), not argv.
// START is an IdP authorization URL or a page that leads to one; the run
// ends when the browser reaches a URL starting with PREFIX (the redirect
// URI). With --intercept, requests to PREFIX are answered inside the browser
// (no server needed behind the redirect URI). With --abort, "Cancel" is
// pressed instead of logging in.
//
// Screenshots: PATH (the final page), and PATH with -1-login / -2-consent
// before the extension for the intermediate steps.
//
// stdout gets exactly one JSON line: {"finalUrl": ..., "screenshots": [...]}
// on success, {"error": ...} (exit status 1) otherwise.

import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import {
  abortAtIdp, consentAtIdp, interceptPrefix, launchChromium, loginAtIdp, waitForPrefix,
} from './lib/browser.mjs';

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

async function main() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      'stop-at': { type: 'string' },
      user: { type: 'string' },
      screenshot: { type: 'string' },
      intercept: { type: 'boolean', default: false },
      abort: { type: 'boolean', default: false },
      'timeout-ms': { type: 'string', default: '60000' },
    },
    strict: true,
  });
  for (const required of ['url', 'stop-at', 'screenshot']) {
    if (!values[required]) throw new Error(`--${required} is required`);
  }
  const password = process.env.LOGIN_PASSWORD;
  if (!values.abort && (!values.user || password === undefined)) {
    throw new Error('--user and the LOGIN_PASSWORD environment variable are required unless --abort');
  }
  const timeout = Number(values['timeout-ms']);
  const screenshots = [];
  await fs.mkdir(path.dirname(values.screenshot), { recursive: true });

  const browser = await launchChromium();
  const { page } = browser;
  page.setDefaultTimeout(timeout);
  const watchdog = setTimeout(() => {
    finish({ error: `gave up after ${timeout} ms on ${page.url()}` }, 1);
    browser.close().finally(() => process.exit(1));
  }, timeout + 5000);
  try {
    const seen = values.intercept ? await interceptPrefix(browser.context, values['stop-at']) : undefined;
    await page.goto(values.url, { waitUntil: 'domcontentloaded' });
    if (values.abort) {
      await abortAtIdp(page);
    } else {
      if (await page.locator('#login-form').count()) {
        const loginShot = stepPath(values.screenshot, '1-login');
        await loginAtIdp(page, { username: values.user, password, screenshotPath: loginShot });
        screenshots.push(loginShot);
      }
      const consentShot = stepPath(values.screenshot, '2-consent');
      if (await consentAtIdp(page, { screenshotPath: consentShot })) screenshots.push(consentShot);
    }
    const landed = await waitForPrefix(page, values['stop-at'], timeout);
    await page.screenshot({ path: values.screenshot, fullPage: true });
    screenshots.push(values.screenshot);
    finish({ finalUrl: seen?.url ?? landed, screenshots }, 0);
  } catch (err) {
    const failShot = stepPath(values.screenshot, 'failed');
    await page.screenshot({ path: failShot, fullPage: true }).catch(() => {});
    finish({ error: `${err.message} (at ${page.url()}; screenshot ${failShot})` }, 1);
  } finally {
    clearTimeout(watchdog);
    await browser.close();
  }
}

main().catch((err) => finish({ error: err.message }, 1));
