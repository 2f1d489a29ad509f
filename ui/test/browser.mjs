// What the end-to-end tests share: a failure that is the test's (not a
// crash), headless Chromium with the page's console and errors logged, and
// the report when a test fails (the last of the browser's log, and a
// screenshot at VOUCH_E2E_SCREENSHOT).

import { chromium } from 'playwright-core';

export class Failure extends Error {}

export function expect(cond, message) {
  if (!cond) throw new Failure(message);
}

/**
 * Runs `test(browser)` (`browser.page()` opens the one page, logged);
 * prints `name: ok` or why it failed, sets the exit code, and closes the
 * browser either way.
 */
export async function withBrowser(name, test) {
  const logs = [];
  let browser;
  let page;
  const open = async () => {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage();
    page.on('console', (m) => logs.push(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => logs.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
    return page;
  };
  try {
    await test({ page: open });
    console.log(`${name}: ok`);
  } catch (e) {
    console.error(`${name} FAILED: ${e instanceof Failure ? e.message : e.stack || e}`);
    if (logs.length) console.error('browser log:\n  ' + logs.slice(-40).join('\n  '));
    if (page && process.env.VOUCH_E2E_SCREENSHOT) {
      await page.screenshot({ path: process.env.VOUCH_E2E_SCREENSHOT, fullPage: true }).catch(() => {});
      console.error(`screenshot: ${process.env.VOUCH_E2E_SCREENSHOT}`);
    }
    process.exitCode = 1;
  } finally {
    if (browser) await browser.close().catch(() => {});
  }
}
