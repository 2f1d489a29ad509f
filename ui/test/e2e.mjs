// End-to-end test of the chat page against a running node, in headless
// Chromium: the page lists the GGUF model, streams an answer and verifies
// its receipt in the browser; the "Verify a receipt" box accepts a whole
// non-streamed response and rejects tampered ones.
//
//   VOUCH_URL=http://127.0.0.1:8080 node ui/test/e2e.mjs
//
// With VOUCH_GATEWAY_URL (a node without the model, joined to VOUCH_URL's),
// the same streamed answer is asked of the gateway's page, which relays the
// provider's stream: it must verify too and show the route.
//
// Environment: VOUCH_URL (required), CHROMIUM (default /usr/bin/chromium),
// VOUCH_E2E_TIMEOUT_MS (per wait for an answer, default 300000),
// VOUCH_E2E_SCREENSHOT (a .png path written on failure).
// Exits 0 on success, 1 with the reason on failure, 2 on bad usage.

import { Failure, expect, withBrowser } from './browser.mjs';

// `node --test ui/test/` runs every .mjs under test/; this file needs a node
// and a browser and runs only as `node ui/test/e2e.mjs` (scripts/test-ui).
if (process.env.NODE_TEST_CONTEXT) {
  console.log('ui e2e: skipped under node --test (run scripts/test-ui with VOUCH_URL set)');
  process.exit(0);
}
const base = (process.env.VOUCH_URL || '').replace(/\/+$/, '');
if (!base) {
  console.error('ui e2e: set VOUCH_URL to a running node, e.g. VOUCH_URL=http://127.0.0.1:8080');
  process.exit(2);
}
const answerTimeout = Number(process.env.VOUCH_E2E_TIMEOUT_MS || 300000);
const QUESTION = 'What is the capital of France?';

/** Changes one character of the first transcript text (or inserts one if it is empty). */
function tamperFirstText(json) {
  const m = /"texts"\s*:\s*\[\s*"/.exec(json);
  expect(m, 'the non-streamed response has no vouch.transcript.texts');
  const at = m.index + m[0].length;
  const c = json[at];
  if (c === '"' || c === '\\') return json.slice(0, at) + 'X' + json.slice(at);
  return json.slice(0, at) + (c === 'X' ? 'Y' : 'X') + json.slice(at + 1);
}

/** Changes one hex digit of the receipt's output digest. */
function tamperOutput(json) {
  const m = /"output"\s*:\s*"out:([0-9a-f])/.exec(json);
  expect(m, 'the non-streamed response has no receipt output field');
  const at = m.index + m[0].length - 1;
  return json.slice(0, at) + (m[1] === '0' ? '1' : '0') + json.slice(at + 1);
}

/** Opens the chat page at `url` and waits for a GGUF model to be selected. */
async function openChat(page, url) {
  const res = await page.goto(url + '/', { waitUntil: 'load' })
    .catch((e) => { throw new Failure(`cannot open ${url}/: ${e.message.split('\n')[0]}`); });
  expect(res && res.ok(), `GET ${url}/ answered ${res && res.status()}`);
  expect(await page.locator('#model').count() === 1, `${url}/ is not the Vouch chat page (no #model)`);
  await page.waitForSelector('#model option[data-format="gguf"]', { state: 'attached', timeout: 60000 })
    .catch(() => { throw new Failure(`the model list at ${url} has no GGUF (chat) model`); });
  const model = await page.$eval('#model', (s) => ({ value: s.value, format: s.selectedOptions[0]?.dataset.format }));
  expect(model.format === 'gguf', `the selected model ${model.value} is not a GGUF model`);
  return model;
}

/** Asks QUESTION and waits for the answer's receipt status. */
async function ask(page) {
  await page.fill('#prompt', QUESTION);
  await page.click('#send');
  const status = page.locator('#messages .message.assistant .receipt-status[data-status]').first();
  await status.waitFor({ timeout: answerTimeout })
    .catch(() => { throw new Failure(`no receipt status within ${answerTimeout} ms`); });
  return page.$eval('#messages .message.assistant', (m) => {
    const dts = [...m.querySelectorAll('dt')];
    const route = dts.find((d) => d.textContent === 'route');
    return {
      status: m.querySelector('.receipt-status').dataset.status,
      reason: m.querySelector('.receipt-status').textContent,
      text: m.querySelector('.content').textContent,
      route: route ? route.nextElementSibling.textContent : '',
    };
  });
}

await withBrowser('ui e2e', async (browser) => {
  const page = await browser.page();

  const model = await openChat(page, base);
  const streamed = await ask(page);
  expect(streamed.status === 'verified', `the streamed answer was not verified: ${streamed.reason}`);
  expect(/paris/i.test(streamed.text), `the answer does not mention Paris: ${JSON.stringify(streamed.text)}`);
  console.log(`ui e2e: streamed answer verified (${streamed.reason}): ${JSON.stringify(streamed.text.slice(0, 80))}`);

  // A whole response, checked in the "Verify a receipt" box.
  const whole = await page.evaluate(async ({ model, question }) => {
    const r = await fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: question }], temperature: 0, max_tokens: 32 }),
    });
    return { status: r.status, text: await r.text() };
  }, { model: model.value, question: QUESTION });
  expect(whole.status === 200, `POST /v1/chat/completions answered ${whole.status}: ${whole.text.slice(0, 300)}`);

  const check = async (text, want, label) => {
    await page.fill('#paste', text);
    await page.click('#check');
    const el = await page.waitForSelector('#check-status[data-status]', { timeout: 30000 });
    const got = { status: await el.getAttribute('data-status'), text: await el.textContent() };
    expect(got.status === want, `${label}: expected "${want}", got "${got.status}": ${got.text}`);
    console.log(`ui e2e: ${label}: ${got.status} (${got.text.slice(0, 120)})`);
  };
  await check(whole.text, 'verified', 'pasted response');
  await check(tamperFirstText(whole.text), 'failed', 'response with a changed transcript text');
  await check(tamperOutput(whole.text), 'failed', 'response with a changed receipt output');

  const gateway = (process.env.VOUCH_GATEWAY_URL || '').replace(/\/+$/, '');
  if (gateway) {
    await openChat(page, gateway);
    const relayed = await ask(page);
    expect(relayed.status === 'verified', `the answer relayed by ${gateway} was not verified: ${relayed.reason}`);
    expect(/paris/i.test(relayed.text), `the relayed answer does not mention Paris: ${JSON.stringify(relayed.text)}`);
    expect(/this node → peer/.test(relayed.route), `the relayed answer shows no route: ${JSON.stringify(relayed.route)}`);
    console.log(`ui e2e: answer relayed by a node without the model verified (${relayed.reason}; route ${relayed.route})`);
  }
});
