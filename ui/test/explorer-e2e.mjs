// End-to-end test of the network explorer in headless Chromium, against a
// real local network of node processes (`vouch up --nodes 4 --fault
// perturb --audit-rate 1`): the faulty node answers a request, its peers
// audit, dispute and slash it on the ledger, and the explorer shows the
// dispute (re-checked in the browser) and the slash; a proposal voted
// during the test activates on every node, and the explorer shows it so.
//
//   VOUCH_NET_URLS=http://…,http://…,http://…,http://… VOUCH_NET_DIR=DIR \
//   VOUCH_BIN=target/debug/vouch node ui/test/explorer-e2e.mjs
//
// VOUCH_NET_DIR is the network's data directory (node I's operator key in
// DIR/node-I/operator.key); the last node is the faulty one.
// Environment: CHROMIUM (default /usr/bin/chromium), VOUCH_E2E_SCREENSHOT
// (a .png path written on failure). Exits 0 on success, 1 with the reason
// on failure, 2 on bad usage.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Failure, expect, withBrowser } from './browser.mjs';

if (process.env.NODE_TEST_CONTEXT) {
  console.log('explorer e2e: skipped under node --test (scripts/test runs it against a local network)');
  process.exit(0);
}
const urls = (process.env.VOUCH_NET_URLS || '').split(',').filter(Boolean).map((u) => u.replace(/\/+$/, ''));
const dir = process.env.VOUCH_NET_DIR;
const bin = process.env.VOUCH_BIN;
if (urls.length !== 4 || !dir || !bin) {
  console.error('explorer e2e: set VOUCH_NET_URLS (the 4 nodes of `vouch up --nodes 4`), VOUCH_NET_DIR and VOUCH_BIN');
  process.exit(2);
}
const IRIS = { inputs: { float_input: { dtype: 'float32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] } } };
const AUDIT_RATE_PPM = 400000;

async function json(url, init) {
  const res = await fetch(url, init);
  const text = await res.text();
  expect(res.ok, `${init?.method || 'GET'} ${url} answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/** Polls `check` every 500 ms until it returns a value, for `ms`. */
async function until(what, ms, check) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Failure(`timed out waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
}

const run = promisify(execFile);

/**
 * The vouch CLI against node `i`, having the node sign with its operator
 * key (`--by-node`; the local network's admin token, in DIR): the
 * node orders these with its own transactions (appeals, panel votes), so
 * no two take the same nonce.
 */
async function vouchByNode(i, ...args) {
  const { stdout } = await run(bin, ['--data-dir', dir, ...args, '--by-node'], {
    env: { ...process.env, VOUCH_NODE: urls[i] },
    encoding: 'utf8',
  }).catch((e) => { throw new Failure(`vouch ${args.join(' ')} --by-node (node ${i}): ${e.stderr || e.message}`); });
  return stdout;
}

await withBrowser('explorer e2e', async (browser) => {
  const faulty = (await json(`${urls[3]}/healthz`)).node;
  // The faulty node answers on its own; its peers, which replicate the
  // model, audit every receipt.
  for (const url of urls) {
    await until(`iris on ${url}`, 120000, async () =>
      (await json(`${url}/v1/models`)).data?.some((m) => m.id === 'iris'));
  }
  // A receipt gossiped before the network's gossip mesh has formed reaches
  // no auditor: ask again every few seconds until one is disputed.
  let asked = 0;
  await until('a dispute against the faulty node', 120000, async () => {
    if (asked++ % 6 === 0) {
      await json(`${urls[3]}/v1/infer/iris`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(IRIS),
      });
    }
    const { evidence } = await json(`${urls[1]}/v1/network/evidence`);
    return evidence.some((r) => r.kind === 'dispute');
  });
  console.log(`explorer e2e: the faulty node was disputed after ${Math.ceil(asked / 6)} request(s)`);

  // A proposal, voted yes by three of the four operators.
  // The votes go in at once: the vote lasts 15 blocks.
  const proposal = JSON.parse((await vouchByNode(0, 'propose', '--set', `audit_rate_ppm=${AUDIT_RATE_PPM}`)).trim());
  await Promise.all([0, 1, 2].map((i) => vouchByNode(i, 'vote', String(proposal.id), 'yes')));
  // In force on every ledger, and every node audits at the new rate.
  for (const url of urls) {
    await until(`audit_rate_ppm ${AUDIT_RATE_PPM} in force on ${url}`, 120000, async () =>
      (await json(`${url}/v1/ledger/params`)).audit_rate_ppm === AUDIT_RATE_PPM
      && (await json(`${url}/healthz`)).audit_rate === AUDIT_RATE_PPM / 1e6);
  }
  console.log(`explorer e2e: proposal ${proposal.id} activated on all ${urls.length} nodes`);

  const page = await browser.page();
  const res = await page.goto(`${urls[1]}/explorer`, { waitUntil: 'load' });
  expect(res && res.ok(), `GET ${urls[1]}/explorer answered ${res && res.status()}`);

  // The chain, and the four operators.
  await page.waitForSelector('#validators tbody tr', { timeout: 30000 });
  const validators = await page.$$eval('#validators tbody tr', (rows) => rows.length);
  expect(validators === 4, `the explorer lists ${validators} validators, not 4`);

  // The slash: the faulty operator's row shows what the ledger says it
  // lost (at least 10% of its 100,000: each conviction takes 10%, and the
  // faulty node's appeals, upheld, take 10% more), the others none.
  const row = `#operators tr[data-operator="${faulty}"]`;
  const slashed = await until('the slash in the explorer', 120000, async () => {
    const cells = await page.$$eval(`${row} td`, (tds) => tds.map((td) => td.textContent));
    if (!cells.length || cells[2] === '0') return undefined;
    const ops = await json(`${urls[1]}/v1/ledger/operators`);
    const ledger = ops.find((o) => o.operator === faulty).slashed.toLocaleString('en-US');
    return cells[2] === ledger ? cells[2] : undefined;
  });
  const amount = Number(slashed.replaceAll(',', ''));
  expect(amount >= 10000, `the faulty operator shows ${slashed} slashed, less than 10,000`);
  const others = await page.$$eval('#operators tbody tr', (rows, faulty) =>
    rows.filter((r) => r.dataset.operator !== faulty).map((r) => r.children[2].textContent), faulty);
  expect(others.length === 3 && others.every((s) => s === '0'), `honest operators show slashes: ${others}`);
  console.log(`explorer e2e: the faulty operator shows ${slashed} slashed, the other three none`);

  // Every other operator's uptime, as node 1 heard its announcements.
  const uptimes = await until('the operators\' uptime', 30000, async () => {
    const cells = await page.$$eval('#operators tbody tr [data-uptime]', (tds) => tds.map((td) => td.textContent));
    return cells.length === 4 && cells.filter((c) => /^\d+(\.\d)?% of \d+ min$/.test(c)).length === 3
      && cells.includes('this node') ? cells : undefined;
  });
  console.log(`explorer e2e: uptime as node 1 saw it: ${uptimes.join(', ')}`);

  // The conviction's ruling (the faulty node appeals; the panel upholds),
  // as the ledger settled it.
  const ruling = await until('a ruling in the explorer', 120000, async () => {
    const rows = await page.$$eval('#rulings tbody tr', (trs) => trs.map((r) => [r.dataset.receipt, r.dataset.ruling]));
    const { settled } = await json(`${urls[1]}/v1/ledger/disputes`);
    return rows.length && rows.length === settled.length
      && settled.every((s) => rows.some(([receipt, r]) => receipt === s.receipt && r === s.ruling))
      ? rows[0] : undefined;
  });
  expect(['final', 'upheld'].includes(ruling[1]), `the conviction of the faulty node was ${ruling[1]}`);
  console.log(`explorer e2e: the conviction's ruling is shown: ${ruling[1]}`);

  // The dispute, re-checked in the browser.
  await page.waitForSelector('#disputes tbody tr', { timeout: 30000 });
  const dispute = await page.$eval('#disputes tbody tr', (r) => [...r.children].map((td) => td.textContent));
  expect(dispute[4] === 'executor', `the dispute names ${dispute[4]} faulty, not the executor`);
  await page.click('#disputes tbody tr button');
  const checked = await page.waitForSelector('#disputes tbody tr [data-status]', { timeout: 10000 });
  const status = await checked.getAttribute('data-status');
  const text = await checked.textContent();
  expect(status === 'verified', `the dispute's re-check failed: ${text}`);
  console.log(`explorer e2e: dispute re-checked in the browser:${text}`);
  // The page refreshes every 3 s; the result stays.
  await page.waitForTimeout(3500);
  const kept = await page.$eval('#disputes tbody tr [data-status]', (e) => e.dataset.status).catch(() => null);
  expect(kept === 'verified', `the re-check result did not survive a refresh (${kept})`);
  // The same check refuses a record whose receipt was altered.
  const { evidence } = await json(`${urls[1]}/v1/network/evidence`);
  const record = evidence.find((r) => r.kind === 'dispute');
  expect(record, 'node 1 holds no tensor dispute');
  const tampered = structuredClone(record);
  tampered.dispute.executor.output = tampered.dispute.auditor.output;
  const refused = await page.evaluate((r) => globalThis.vouchExplorer.recheck(r), tampered);
  expect(!refused.ok && /altered/.test(refused.text), `a tampered dispute passed the re-check: ${refused.text}`);
  console.log(`explorer e2e: a tampered dispute is refused: ${refused.text}`);

  // The proposal, activated.
  const p = await until('the activated proposal in the explorer', 30000, async () =>
    page.$eval(`#proposals tr[data-proposal="${proposal.id}"]`, (r) => r.dataset.status === 'activated' && r.textContent));
  expect(p.includes(`audit_rate_ppm = ${AUDIT_RATE_PPM}`), `the proposal row does not show its change: ${p}`);
  expect(await page.$eval('#notice', (n) => n.hidden), 'the explorer shows an error notice');
});
