// The Vouch network explorer: the ledger as the serving node holds it
// (chain, validators, operators with their paid audits, convictions and
// their appeals, proposals, fees and concentration per epoch) and the
// disputes it holds, each re-checkable in the browser with
// ./verify.js. Reads only public routes; refreshes every few seconds.
//
// Bundled by scripts/build-ui into crates/http/ui/explorer.js, which the
// node serves at /explorer/explorer.js (the page at /explorer).

import { verifyReceipt, verifyTranscript } from './verify.js';
import { el } from './dom.js';

const REFRESH_MS = 3000;
const $ = (sel) => document.querySelector(sel);

/** A key shortened for a table cell, whole in its title. */
function short(key) {
  const s = String(key ?? '');
  return el('span', { class: 'mono', title: s, text: s.length > 24 ? `${s.slice(0, 16)}…${s.slice(-6)}` : s });
}

function num(n) {
  return Number(n ?? 0).toLocaleString('en-US');
}

async function get(path) {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const message = body?.error?.message || `${res.status} ${res.statusText}`;
    throw new Error(`${path}: ${message}`);
  }
  return body;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function facts(dl, pairs) {
  dl.replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', {}, v)]));
}

function renderChain(status) {
  facts($('#chain-facts'), [
    ['chain', el('span', { class: 'mono', text: status.chain_id })],
    ['height', el('span', { id: 'height', text: String(status.height) })],
    ['epoch', el('span', { id: 'epoch', text: `${status.epoch} (ends at height ${status.epoch_end})` })],
    ['state root', el('span', { class: 'mono', text: status.state_root })],
    ['supply · burned', el('span', { text: `${num(status.supply)} · ${num(status.burned)}` })],
  ]);
  fill($('#validators tbody'), status.validators.map((v) =>
    el('tr', {}, el('td', {}, short(v.operator)), el('td', { class: 'num', text: num(v.power) }))));
}

/** An operator's uptime as the serving node saw its announcements. */
function uptime(node) {
  if (!node) return '—';
  if (node.local) return 'this node';
  const u = node.uptime;
  return u ? `${(100 * u.ratio).toFixed(1)}% of ${num(u.minutes_observed)} min` : '—';
}

function renderOperators(operators, economics, network) {
  const earned = new Map(economics.operators.map((o) => [o.account, o.earned]));
  const nodes = new Map((network.nodes || []).filter((n) => n.operator).map((n) => [n.operator, n]));
  fill($('#operators tbody'), operators.map((o) => {
    const slashed = el('td', { class: o.slashed > 0 ? 'num bad' : 'num', text: num(o.slashed) });
    const audits = o.audits || { performed: 0, passed: 0, earned: 0 };
    return el('tr', { 'data-operator': o.operator },
      el('td', {}, short(o.operator)),
      el('td', { class: 'num', text: num(o.stake) }),
      slashed,
      el('td', { class: 'num', text: num(earned.get(o.account)) }),
      el('td', { class: 'num', text: num(o.requests_paid) }),
      el('td', { class: 'num', text: num(o.price) }),
      el('td', { class: 'num', title: (o.models || []).join('\n'), text: String((o.models || []).length) }),
      el('td', { class: 'num', 'data-audits': '', text: `${num(audits.performed)} / ${num(audits.passed)} · ${num(audits.earned)}` }),
      el('td', { 'data-uptime': '', text: uptime(nodes.get(o.operator)) }),
      el('td', { text: o.contact || '' }));
  }));
}

/** Where a conviction stands: its appeal window, or its appeal's panel and votes. */
function standing(c) {
  if (!c.appeal) return `appealable until height ${c.appeal_until}`;
  const a = c.appeal;
  if (!a.panel) return `appealed at ${a.filed} · panel drawn next block`;
  const against = (party) => a.votes.filter((v) => v.faulty === party).length;
  return `appealed at ${a.filed} · panel of ${a.panel.length}: ${against('executor')} executor, ${against('auditor')} auditor · decided by ${a.decide_by}`;
}

function renderConvictions(d) {
  fill($('#convictions tbody'), d.pending.map((c) =>
    el('tr', { 'data-receipt': c.receipt, 'data-appealed': c.appeal ? 'yes' : 'no' },
      el('td', {}, short(c.receipt)),
      el('td', {}, short(c.executor)),
      el('td', { class: 'bad', text: c.faulty }),
      el('td', { class: 'num', text: num(c.held) }),
      el('td', { text: standing(c) }))));
  const settled = d.settled.slice().reverse();
  const verdict = { final: 'final (not appealed)', upheld: 'upheld on appeal', overturned: 'overturned on appeal', undecided: 'stands (the panel did not decide)' };
  fill($('#rulings tbody'), settled.map((r) =>
    el('tr', { 'data-receipt': r.receipt, 'data-ruling': r.ruling },
      el('td', {}, short(r.receipt)),
      el('td', { class: r.ruling === 'overturned' ? 'ok' : '', text: verdict[r.ruling] || r.ruling }))));
}

/** When a proposal takes or took effect, after its votes' end. */
function effect(p) {
  if (p.activates != null) return ` · takes effect at ${p.activates}`;
  if (p.activated != null) return ` · ${p.status} at ${p.activated}`;
  return '';
}

function renderProposals(proposals) {
  fill($('#proposals tbody'), proposals.slice().reverse().map((p) => {
    const items = [
      ...p.changes.map((c) => `${c.name} = ${c.value}`),
      ...p.spends.map((s) => `pay ${num(s.amount)} to ${String(s.to).slice(0, 16)}…`),
      ...p.releases.map((r) => `${r.allowed ? 'allow' : 'retire'} release ${r.version}`),
    ];
    const t = p.tally;
    return el('tr', { 'data-proposal': String(p.id), 'data-status': p.status },
      el('td', { text: String(p.id) }),
      el('td', { class: 'mono', text: items.join(', ') }),
      el('td', { class: p.status === 'activated' ? 'ok' : '', text: p.status }),
      el('td', { class: 'num', text: t ? `${num(t.yes)} / ${num(t.no)} / ${num(t.total_stake)}` : '—' }),
      el('td', { text: `${p.voting_ends}${effect(p)}` }));
  }));
}

/** Bars of `values` in an SVG, labelled with the first and last epoch. */
function bars(svg, epochs, values) {
  const W = 300, H = 100, pad = 12;
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  const max = Math.max(1, ...values);
  const w = (W - 2 * pad) / Math.max(1, values.length);
  const shapes = values.map((v, i) => {
    const h = (H - 2 * pad) * (v / max);
    const r = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
    for (const [k, val] of Object.entries({ x: pad + i * w + 1, y: H - pad - h, width: Math.max(1, w - 2), height: h, fill: '#2457c5' })) r.setAttribute(k, val);
    const title = document.createElementNS('http://www.w3.org/2000/svg', 'title');
    title.textContent = `epoch ${epochs[i]}: ${num(v)}`;
    r.append(title);
    return r;
  });
  svg.replaceChildren(...shapes, ...axis(epochs, W, H, pad, `max ${num(max)}`));
}

/** Lines of several series in an SVG. */
function lines(svg, epochs, series) {
  const W = 300, H = 100, pad = 12;
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const x = (i) => pad + (W - 2 * pad) * (epochs.length > 1 ? i / (epochs.length - 1) : 0.5);
  const y = (v) => H - pad - (H - 2 * pad) * (v / max);
  const shapes = series.map((s) => {
    const p = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    p.setAttribute('points', s.values.map((v, i) => `${x(i)},${y(v)}`).join(' '));
    p.setAttribute('fill', 'none');
    p.setAttribute('stroke', s.color);
    p.setAttribute('stroke-width', '2');
    return p;
  });
  svg.replaceChildren(...shapes, ...axis(epochs, W, H, pad, `max ${max}`));
}

function axis(epochs, W, H, pad, top) {
  const text = (x, y, s, anchor = 'start') => {
    const t = document.createElementNS('http://www.w3.org/2000/svg', 'text');
    t.setAttribute('x', x);
    t.setAttribute('y', y);
    t.setAttribute('text-anchor', anchor);
    t.textContent = s;
    return t;
  };
  if (!epochs.length) return [text(W / 2, H / 2, 'no epoch yet', 'middle')];
  return [
    text(pad, H - 1, `epoch ${epochs[0]}`),
    text(W - pad, H - 1, `epoch ${epochs[epochs.length - 1]}`, 'end'),
    text(pad, pad - 2, top),
  ];
}

function renderEconomics(e) {
  const pct = (x) => `${(100 * x).toFixed(1)}%`;
  facts($('#economics'), [
    ['fees settled', el('span', { id: 'fees', text: num(e.fees) })],
    ['split', el('span', { text: `operator ${e.fee_split.operator_bp / 100}% · auditors ${e.fee_split.auditors_bp / 100}% · treasury ${e.fee_split.treasury_bp / 100}%` })],
    ['treasury · auditors\u2019 pool', el('span', { text: `${num(e.treasury)} · ${num(e.auditors_pool)}` })],
    ['top 1 / 3 / 10 of fees', el('span', { text: `${pct(e.fees_share.top1)} / ${pct(e.fees_share.top3)} / ${pct(e.fees_share.top10)}` })],
    ['top 1 / 3 / 10 of stake', el('span', { text: `${pct(e.stake_share.top1)} / ${pct(e.stake_share.top3)} / ${pct(e.stake_share.top10)}` })],
    ['paid for audits', el('span', { id: 'audit-pay', text: num(e.operators.reduce((sum, o) => sum + (o.audit_earned || 0), 0)) })],
    ['Nakamoto coefficient', el('span', { id: 'nakamoto', text: `stake ${e.nakamoto_coefficient.stake}, validator power ${e.nakamoto_coefficient.validator_power}, fees ${e.nakamoto_coefficient.fees}, requests paid ${e.nakamoto_coefficient.served_requests}` })],
  ]);
  // Finished epochs only: the current one's concentration is not final.
  const done = e.epochs.slice(0, -1);
  const epochs = done.map((r) => r.epoch);
  bars($('#plot-fees'), epochs, done.map((r) => r.fees));
  lines($('#plot-nakamoto'), epochs, [
    { color: '#2457c5', values: done.map((r) => r.nakamoto_coefficient.stake) },
    { color: '#c5702a', values: done.map((r) => r.nakamoto_coefficient.validator_power) },
    { color: '#2a9d5c', values: done.map((r) => r.nakamoto_coefficient.fees) },
    { color: '#8a4fc5', values: done.map((r) => r.nakamoto_coefficient.served_requests) },
  ]);
}

/**
 * Re-checks a dispute record in the browser. A tensor dispute: both
 * receipts are signed by their nodes, for the same model and request,
 * with different outputs. An LLM dispute: the executor's receipt is signed
 * and its transcript is the one it signs. Returns {ok, text}.
 */
export function recheck(record) {
  const d = record.dispute;
  if (!d) return { ok: false, text: 'the record has no dispute' };
  const checks = [];
  const receipt = (r, who) => {
    const v = verifyReceipt(r);
    checks.push(v.ok ? null : `${who}'s receipt: ${v.reason}`);
  };
  receipt(d.executor, 'the executor');
  if (record.kind === 'dispute') {
    receipt(d.auditor, 'the auditor');
    if (d.executor.model !== d.auditor.model || d.executor.request !== d.auditor.request) {
      checks.push('the two receipts are for different models or requests');
    } else if (d.executor.output === d.auditor.output) {
      checks.push('the two receipts agree: nothing is disputed');
    }
  } else {
    const t = verifyTranscript(d.executor, d.transcript);
    checks.push(t.ok ? null : `the transcript: ${t.reason}`);
  }
  const failed = checks.filter(Boolean);
  if (failed.length) return { ok: false, text: `✗ ${failed.join('; ')}` };
  return record.kind === 'dispute'
    ? { ok: true, text: '✓ both receipts are signed, for one request, and disagree' }
    : { ok: true, text: '✓ the executor signed this transcript' };
}

// Re-check results by the disputed receipt, kept across refreshes.
const rechecked = new Map();

function showRecheck(result, { ok, text }) {
  result.textContent = ` ${text}`;
  result.className = ok ? 'ok' : 'bad';
  result.setAttribute('data-status', ok ? 'verified' : 'failed');
}

function renderDisputes(records) {
  const disputes = records
    .map((r, i) => ({ r, i }))
    .filter(({ r }) => r.kind === 'dispute' || r.kind === 'llm_dispute');
  fill($('#disputes tbody'), disputes.map(({ r, i }) => {
    const result = el('span', { class: 'muted', text: '' });
    const button = el('button', { type: 'button', text: 'Re-check' });
    const key = r.dispute?.executor?.id ?? String(i);
    if (rechecked.has(key)) showRecheck(result, rechecked.get(key));
    button.addEventListener('click', () => {
      const outcome = recheck(r);
      rechecked.set(key, outcome);
      showRecheck(result, outcome);
    });
    const d = r.dispute || {};
    return el('tr', { 'data-dispute': String(i) },
      el('td', { text: String(i) }),
      el('td', { text: r.kind === 'dispute' ? 'tensor' : 'LLM' }),
      el('td', {}, short(d.executor?.node)),
      el('td', {}, short(d.executor?.model)),
      el('td', { class: 'bad', text: String(d.faulty ?? '') }),
      el('td', {}, button, result));
  }));
}

async function refresh() {
  try {
    const [status, operators, proposals, economics, convictions, evidence, network] = await Promise.all([
      get('/v1/ledger/status'),
      get('/v1/ledger/operators'),
      get('/v1/ledger/proposals'),
      get('/v1/ledger/economics'),
      get('/v1/ledger/disputes'),
      get('/v1/network/evidence').catch(() => ({ evidence: [] })),
      get('/v1/network/nodes').catch(() => ({ nodes: [] })),
    ]);
    renderChain(status);
    renderOperators(operators, economics, network);
    renderConvictions(convictions);
    renderProposals(proposals);
    renderEconomics(economics);
    renderDisputes(evidence.evidence || []);
    $('#notice').hidden = true;
  } catch (e) {
    $('#notice').textContent = `Could not read the ledger: ${e.message}`;
    $('#notice').hidden = false;
  }
}

// For the end-to-end test (and the curious, from the console).
globalThis.vouchExplorer = { recheck };
$('#served-by').textContent = location.origin;
refresh();
setInterval(refresh, REFRESH_MS);
