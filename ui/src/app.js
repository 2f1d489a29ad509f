// The Vouch chat page: lists the node's models, streams answers from
// /v1/chat/completions, and checks every answer's receipt, hash chain and
// checkpoints in the browser with ./verify.js as the tokens arrive. A
// "Verify a receipt" box checks pasted receipts and whole responses.
//
// Bundled by scripts/build-ui into crates/node/ui/app.js, which the node
// serves at /ui/app.js.

import { StreamVerifier, verifyPasted, parseJson, toJson } from './verify.js';
import { sseData } from './sse.js';
import { el } from './dom.js';

const $ = (sel) => document.querySelector(sel);
const modelSelect = $('#model');
const promptBox = $('#prompt');
const sendButton = $('#send');
const messages = $('#messages');
const notice = $('#notice');
const pasteBox = $('#paste');
const checkButton = $('#check');
const checkStatus = $('#check-status');

const MAX_TOKENS = 128;
// The system message every chat starts with (small models follow a short,
// plain instruction better than a long persona).
const SYSTEM = { role: 'system', content: 'You are a helpful assistant.' };
const conversation = [SYSTEM]; // {role, content} sent with every request
let busy = false;

function setNotice(text) {
  notice.textContent = text;
  notice.hidden = !text;
}

async function errorText(res) {
  const body = await res.text().catch(() => '');
  try {
    const j = JSON.parse(body);
    if (j && j.error) return typeof j.error === 'string' ? j.error : j.error.message || body;
  } catch { /* not JSON */ }
  return `${res.status} ${res.statusText}${body ? ': ' + body.slice(0, 300) : ''}`;
}

// ---------------------------------------------------------------------------
// Models

async function loadModels() {
  let list;
  try {
    const res = await fetch('/v1/models', { headers: { accept: 'application/json' } });
    if (!res.ok) throw new Error(await errorText(res));
    list = parseJson(await res.text()).data || [];
  } catch (e) {
    setNotice(`Could not list the node's models: ${e.message}`);
    return;
  }
  modelSelect.textContent = '';
  let first = null;
  for (const m of list) {
    const v = m.vouch || {};
    const chat = v.format === 'gguf';
    const label = `${m.id}${v.version ? ' ' + v.version : ''}${chat ? ' — chat' : ` (${v.format || 'unknown'}, not a chat model)`}`;
    const opt = el('option', { value: m.id, text: label, 'data-format': v.format || '' });
    if (v.model_id) opt.dataset.modelId = v.model_id;
    if (chat) opt.dataset.chat = 'true';
    else opt.disabled = true;
    modelSelect.append(opt);
    if (chat && first === null) first = opt;
  }
  if (first) {
    modelSelect.value = first.value;
    setNotice('');
  } else {
    setNotice('This node has no chat (GGUF) model yet. Push one with `vouch model push FILE.gguf`.');
  }
  updateSend();
}

function updateSend() {
  const opt = modelSelect.selectedOptions[0];
  sendButton.disabled = busy || !opt || opt.dataset.chat !== 'true';
}

// ---------------------------------------------------------------------------
// Messages

function addUser(text) {
  const m = el('div', { class: 'message user' }, el('div', { class: 'role', text: 'You' }), el('div', { class: 'content', text }));
  messages.append(m);
  m.scrollIntoView({ block: 'end' });
}

/** An assistant message being streamed, with its receipt panel. */
class Answer {
  constructor(modelName) {
    this.content = el('div', { class: 'content' });
    this.status = el('div', { class: 'receipt-status', role: 'status', text: 'checking as it arrives…' });
    this.details = el('dl', { class: 'receipt-fields' });
    this.panel = el('div', { class: 'receipt' }, this.status, this.details);
    this.root = el('div', { class: 'message assistant streaming' },
      el('div', { class: 'role', text: modelName }), this.content, this.panel);
    messages.append(this.root);
    this.scroll();
  }

  scroll() {
    this.root.scrollIntoView({ block: 'end' });
  }

  append(text) {
    this.content.append(text);
    this.scroll();
  }

  progress(tokens, checkpoints) {
    this.status.textContent = `checking as it arrives… ${tokens} tokens, ${checkpoints} checkpoint${checkpoints === 1 ? '' : 's'} matched`;
  }

  field(name, value, cls = '') {
    this.details.append(el('dt', { text: name }), el('dd', { class: cls, text: value, title: value }));
  }

  done(status, text, receipt = null, copy = null, route = []) {
    this.root.classList.remove('streaming');
    this.status.textContent = text;
    this.status.dataset.status = status;
    if (receipt && typeof receipt === 'object') {
      this.field('receipt', String(receipt.id), 'mono');
      this.field('node key', String(receipt.node), 'mono');
      this.field('model', String(receipt.model), 'mono');
      const e = receipt.engine || {};
      this.field('engine', `${e.name} ${e.version}`);
      if (receipt.seed !== null && receipt.seed !== undefined) this.field('seed', String(receipt.seed), 'mono');
      // Informative, not signed: the node key above is what the receipt binds.
      if (route.length > 1) this.field('route', `this node → peer ${route[route.length - 1]}`, 'mono');
    }
    if (copy) {
      const pre = el('pre', { class: 'json', text: copy });
      const details = el('details', {}, el('summary', { text: 'receipt and transcript (paste into “Verify a receipt”)' }), pre);
      this.panel.append(details);
    }
    this.scroll();
  }
}

// ---------------------------------------------------------------------------
// Streaming

class StreamFailure extends Error {}

/**
 * Whether the request the node committed to is the one this page asked for:
 * chat mode, our token budget and temperature, no stop strings, and a prompt
 * (the model's chat template over our messages) that contains our question,
 * and our messages themselves, which the receipt binds.
 */
function askedFor(request, asked) {
  const q = request || {};
  const s = q.sampling || {};
  if (q.mode !== 'chat') return `the node ran a ${q.mode} request, not a chat`;
  if (q.max_tokens !== asked.max_tokens) return `the node's request allows ${q.max_tokens} tokens, not the ${asked.max_tokens} asked`;
  if (s.temperature !== asked.temperature) return `the node's request has temperature ${s.temperature}, not the ${asked.temperature} asked`;
  if (!Array.isArray(q.stop) || q.stop.length !== 0) return 'the node added stop strings to the request';
  if (typeof q.prompt !== 'string' || !q.prompt.includes(asked.question)) return "the node's prompt does not contain the question asked";
  // The request binds the conversation the model answered: ours, exactly.
  const sent = asked.messages || [];
  const signed = Array.isArray(q.messages) ? q.messages : [];
  if (signed.length !== sent.length || signed.some((m, i) => m.role !== sent[i].role || m.content !== sent[i].content)) {
    return "the node's request signs other messages than the ones this page sent";
  }
  return null;
}

async function stream(res, answer, asked) {
  let verifier = null;
  let receipt = null;
  let finish = null;
  let outcome = null;
  let route = [];
  const tokens = [];
  const texts = [];
  let ended = false;
  for await (const data of sseData(res.body)) {
    if (data === '[DONE]') {
      ended = true;
      break;
    }
    let chunk;
    try {
      chunk = parseJson(data);
    } catch (e) {
      throw new StreamFailure(`the node sent a chunk that is not JSON: ${e.message}`);
    }
    if (chunk && chunk.error) {
      throw new StreamFailure(`the node failed mid-answer: ${chunk.error.message || toJson(chunk.error)}`);
    }
    const v = (chunk && chunk.vouch) || {};
    if (v.request !== undefined) {
      if (verifier) throw new StreamFailure('the stream announced a second request');
      verifier = new StreamVerifier(v.request, v.model_id);
      if (Array.isArray(v.route)) route = v.route.map(String);
      if (!verifier.ok) throw new StreamFailure(verifier.failure);
      const wrong = askedFor(v.request, asked);
      if (wrong) throw new StreamFailure(wrong);
    }
    if (v.token !== undefined || v.checkpoint !== undefined || v.receipt !== undefined) {
      if (!verifier) throw new StreamFailure('the stream did not start with its request (vouch.request)');
    }
    if (v.token !== undefined) {
      const c = (chunk.choices && chunk.choices[0]) || {};
      const text = (c.delta && c.delta.content) ?? c.text ?? '';
      verifier.token(v.token, text);
      tokens.push(v.token);
      texts.push(text);
      answer.append(text);
      answer.progress(verifier.tokens, verifier.pending.length + verifier.checkpoints);
    }
    if (v.checkpoint !== undefined) {
      verifier.checkpoint(v.checkpoint);
      answer.progress(verifier.tokens, verifier.pending.length + verifier.checkpoints);
    }
    if (v.receipt !== undefined) {
      receipt = v.receipt;
      finish = v.finish_reason;
      outcome = verifier.finish(receipt, finish);
    }
    if (verifier && !verifier.ok) break; // keep the first reason; stop reading
  }
  if (verifier && !verifier.ok) return { ok: false, reason: verifier.failure, receipt, text: verifier.text };
  if (!receipt) {
    const n = verifier ? verifier.tokens : 0;
    const why = ended ? 'the stream ended without a receipt' : 'the stream was cut before its receipt';
    return { ok: false, reason: `${why} (${n} tokens received)`, receipt: null, text: verifier ? verifier.text : '' };
  }
  const copy = toJson({ receipt, transcript: { request: verifier.request, tokens, texts, finish_reason: finish } }, 2);
  return { ...outcome, receipt, text: verifier.text, copy, route };
}

async function send() {
  const text = promptBox.value.trim();
  const opt = modelSelect.selectedOptions[0];
  if (!text || busy || !opt || opt.dataset.chat !== 'true') return;
  busy = true;
  updateSend();
  promptBox.value = '';
  conversation.push({ role: 'user', content: text });
  addUser(text);
  const answer = new Answer(opt.value);
  let result;
  try {
    const asked = { model: opt.value, messages: conversation, stream: true, temperature: 0, max_tokens: MAX_TOKENS };
    const res = await fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify(asked),
    });
    if (!res.ok) throw new StreamFailure(await errorText(res));
    result = await stream(res, answer, { ...asked, question: text });
  } catch (e) {
    result = { ok: false, reason: e instanceof StreamFailure ? e.message : `the request failed: ${e.message}`, receipt: null, text: null };
  }
  if (result.ok) {
    answer.done('verified', `✓ verified in your browser: signed by ${result.route.length > 1 ? 'the provider that generated it' : 'the node'}, ${result.tokens} tokens, ${result.checkpoints} checkpoint${result.checkpoints === 1 ? '' : 's'}`, result.receipt, result.copy, result.route);
    conversation.push({ role: 'assistant', content: result.text });
  } else {
    answer.done('failed', `✗ not verified: ${result.reason}`, result.receipt);
    if (result.text) conversation.push({ role: 'assistant', content: result.text });
    else conversation.pop(); // no answer: drop the question so roles keep alternating
  }
  busy = false;
  updateSend();
  promptBox.focus();
}

// ---------------------------------------------------------------------------
// Verify a receipt

function check() {
  const r = verifyPasted(pasteBox.value);
  checkStatus.textContent = '';
  if (r.ok) {
    checkStatus.dataset.status = 'verified';
    const what = r.kind === 'response'
      ? 'the receipt is signed by the node, and the request, seed and answer text match it'
      : 'the receipt is intact and signed by the node';
    checkStatus.append(
      el('strong', { text: '✓ verified in your browser' }), `: ${what}.`,
      el('br'), el('span', { class: 'mono', text: `${r.receipt.id} by ${r.receipt.node}` }),
    );
  } else {
    checkStatus.dataset.status = 'failed';
    checkStatus.append(el('strong', { text: '✗ failed' }), `: ${r.reason}`);
  }
}

// ---------------------------------------------------------------------------

$('#composer').addEventListener('submit', (e) => {
  e.preventDefault();
  send();
});
promptBox.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});
modelSelect.addEventListener('change', updateSend);
checkButton.addEventListener('click', check);
pasteBox.addEventListener('input', () => {
  delete checkStatus.dataset.status;
  checkStatus.textContent = '';
});
loadModels();
