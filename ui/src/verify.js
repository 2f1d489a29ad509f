// Vouch receipt verification in the browser: an independent implementation
// of docs/receipts.md (v1) in JavaScript. It shares no code with the Rust
// node; it uses only BLAKE3 and SHA-512 from @noble/hashes and curve
// arithmetic from @noble/ed25519.
//
// What it checks:
//   - a receipt: the canonical body bytes, id = H_rcpt(body), and the
//     node's ed25519 signature over the 32 id bytes (strict, as the node
//     itself verifies: canonical encodings, no small-order key or R, S < L,
//     and the cofactorless equation [S]B = R + [k]A);
//   - a generated answer: the LLM request encoding (the `in:` digest), the
//     hash chain over (token, released text), the `out:` digest, the trace
//     (one leaf per token, RFC 6962-shaped Merkle tree), and the signed
//     checkpoints of a stream.
//
// Big integers. Seeds are u64 (the node draws random seeds up to 2^63), so
// JSON.parse would silently round them. `parseJson` below is a small strict
// JSON parser that returns every integer literal outside Number's safe range
// as a BigInt (everything else exactly as JSON.parse would), and `toJson`
// writes BigInts back as bare integers. Every u64 field accepts a safe
// integer Number or a BigInt; a Number that is not a safe integer is
// rejected, never rounded. Use parseJson (not JSON.parse) on any text that
// carries a receipt, a request or a transcript.

import { blake3 } from '@noble/hashes/blake3.js';
import { sha512 } from '@noble/hashes/sha2.js';
import * as ed from '@noble/ed25519';

ed.hashes.sha512 = sha512;

// ---------------------------------------------------------------------------
// JSON with exact integers

const WS = /[ \t\n\r]*/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;

/** A JSON syntax or shape error. */
export class JsonError extends Error {}

/**
 * Parses JSON text like JSON.parse, except that integer literals outside
 * Number's safe range become BigInts (so u64 values survive exactly), and
 * duplicate object keys are an error (a verifier must not pick one of two
 * different values silently).
 */
export function parseJson(text) {
  if (typeof text !== 'string') throw new JsonError('expected JSON text');
  let pos = 0;
  const fail = (what) => {
    throw new JsonError(`invalid JSON at character ${pos}: ${what}`);
  };
  const ws = () => {
    WS.lastIndex = pos;
    WS.exec(text);
    pos = WS.lastIndex;
  };
  const match = (re) => {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) return null;
    pos = re.lastIndex;
    return m;
  };
  const value = (depth) => {
    if (depth > 512) fail('nested too deeply');
    ws();
    const c = text[pos];
    if (c === '{') {
      pos++;
      const obj = {};
      const seen = new Set();
      ws();
      if (text[pos] === '}') {
        pos++;
        return obj;
      }
      for (;;) {
        ws();
        const k = match(STRING);
        if (!k) fail('expected a string key');
        const key = JSON.parse(k[0]);
        if (seen.has(key)) fail(`duplicate key ${k[0]}`);
        seen.add(key);
        ws();
        if (text[pos] !== ':') fail("expected ':'");
        pos++;
        // defineProperty: a key "__proto__" is data, as with JSON.parse
        Object.defineProperty(obj, key, {
          value: value(depth + 1), enumerable: true, writable: true, configurable: true,
        });
        ws();
        if (text[pos] === ',') { pos++; continue; }
        if (text[pos] === '}') { pos++; return obj; }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      pos++;
      const arr = [];
      ws();
      if (text[pos] === ']') {
        pos++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[pos] === ',') { pos++; continue; }
        if (text[pos] === ']') { pos++; return arr; }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') {
      const m = match(STRING);
      if (!m) fail('bad string');
      return JSON.parse(m[0]);
    }
    if (c === '-' || (c >= '0' && c <= '9')) {
      const m = match(NUMBER);
      if (!m) fail('bad number');
      const n = Number(m[0]);
      if (m[1] === undefined && m[2] === undefined && !Number.isSafeInteger(n)) return BigInt(m[0]);
      return n;
    }
    for (const [word, v] of [['true', true], ['false', false], ['null', null]]) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return v;
      }
    }
    fail('unexpected ' + (pos < text.length ? JSON.stringify(text[pos]) : 'end of text'));
  };
  const v = value(0);
  ws();
  if (pos !== text.length) fail('trailing characters');
  return v;
}

/** JSON.stringify that writes BigInts as bare integers. */
export function toJson(value, indent = 0) {
  const pad = (n) => (indent ? '\n' + ' '.repeat(indent * n) : '');
  const go = (v, level) => {
    if (typeof v === 'bigint') return v.toString();
    if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
    if (Array.isArray(v)) {
      if (v.length === 0) return '[]';
      return '[' + v.map((x) => pad(level + 1) + go(x, level + 1)).join(',') + pad(level) + ']';
    }
    const keys = Object.keys(v).filter((k) => v[k] !== undefined);
    if (keys.length === 0) return '{}';
    const sep = indent ? ': ' : ':';
    return '{' + keys.map((k) => pad(level + 1) + JSON.stringify(k) + sep + go(v[k], level + 1)).join(',') + pad(level) + '}';
  };
  return go(value, 0);
}

// ---------------------------------------------------------------------------
// Bytes

const utf8 = new TextEncoder();
const U32_MAX = 0xffffffffn;
const U64_MAX = 0xffffffffffffffffn;

/** A failed check, with the reason shown to the user. */
export class Invalid extends Error {}

function toBigInt(v, what, max) {
  let b;
  if (typeof v === 'bigint') b = v;
  else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
  else if (typeof v === 'number' && Number.isInteger(v)) {
    throw new Invalid(`${what} ${v} is past 2^53 and was rounded by a JSON parser: parse with parseJson`);
  } else throw new Invalid(`${what} must be an integer, got ${describe(v)}`);
  if (b < 0n || b > max) throw new Invalid(`${what} ${b} is out of range`);
  return b;
}

function describe(v) {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'bigint') return v.toString();
  if (v === undefined) return 'nothing';
  return toJson(v).slice(0, 60);
}

function str(v, what) {
  if (typeof v !== 'string') throw new Invalid(`${what} must be a string, got ${describe(v)}`);
  return v;
}

function f64(v, what) {
  if (typeof v === 'bigint') return Number(v); // an integer literal past 2^53: still a valid f64
  if (typeof v !== 'number') throw new Invalid(`${what} must be a number, got ${describe(v)}`);
  return v;
}

/** Builds canonical bytes: little-endian integers, u32-length-prefixed strings. */
export class Writer {
  constructor() {
    this.parts = [];
    this.len = 0;
  }
  bytes(b) {
    this.parts.push(b);
    this.len += b.length;
    return this;
  }
  u8(n) {
    return this.bytes(Uint8Array.of(n));
  }
  u32(n, what = 'u32') {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, Number(toBigInt(n, what, U32_MAX)), true);
    return this.bytes(b);
  }
  u64(n, what = 'u64') {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, toBigInt(n, what, U64_MAX), true);
    return this.bytes(b);
  }
  f64(x, what = 'f64') {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, f64(x, what), true);
    return this.bytes(b);
  }
  f32(x, what = 'f32') {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, f64(x, what), true);
    return this.bytes(b);
  }
  str(s, what = 'string') {
    const b = utf8.encode(str(s, what));
    return this.u32(b.length).bytes(b);
  }
  finish() {
    const out = new Uint8Array(this.len);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

export function hex(b) {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

export function unhex(s, n, what, lowercase = false) {
  if (typeof s !== 'string' || s.length !== 2 * n || !(lowercase ? /^[0-9a-f]*$/ : /^[0-9a-fA-F]*$/).test(s)) {
    throw new Invalid(`${what} must be ${2 * n} ${lowercase ? 'lowercase ' : ''}hex digits, got ${describe(s)}`);
  }
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return b;
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

// ---------------------------------------------------------------------------
// Digests

/** Digest kinds: printed prefix -> BLAKE3 derive_key context. */
export const CONTEXTS = {
  model: 'vouch v1 model',
  in: 'vouch v1 input',
  out: 'vouch v1 output',
  leaf: 'vouch v1 trace leaf',
  trace: 'vouch v1 trace node',
  rcpt: 'vouch v1 receipt',
  blob: 'vouch v1 blob',
  chunk: 'vouch v1 blob chunk',
  tdata: 'vouch v1 tensor data',
  chain: 'vouch v1 stream chain',
  ckpt: 'vouch v1 stream checkpoint',
};
const CONTEXT_BYTES = Object.fromEntries(Object.entries(CONTEXTS).map(([k, c]) => [k, utf8.encode(c)]));

/** BLAKE3 derive_key(context of `kind`, data): 32 bytes. */
export function digest(kind, data) {
  const context = CONTEXT_BYTES[kind];
  if (!context) throw new Error(`unknown digest kind ${kind}`);
  return blake3(data, { context });
}

/** `<prefix>:<64 lowercase hex>`. */
export function fmt(kind, raw) {
  return `${kind}:${hex(raw)}`;
}

/** Parses `<prefix>:<64 lowercase hex>`, requiring the given prefix (as the node does). */
export function parseDigest(s, kind, what = kind) {
  if (typeof s !== 'string') throw new Invalid(`${what} must be a "${kind}:…" digest, got ${describe(s)}`);
  const i = s.indexOf(':');
  if (i < 0 || s.slice(0, i) !== kind) {
    throw new Invalid(`${what} must be a "${kind}:…" digest, got ${describe(s)}`);
  }
  return unhex(s.slice(i + 1), 32, what, true);
}

/** Parses `ed25519:<64 hex>`. */
export function parseNodeKey(s, what = 'node') {
  if (typeof s !== 'string' || !s.startsWith('ed25519:')) {
    throw new Invalid(`${what} must be "ed25519:<64 hex>", got ${describe(s)}`);
  }
  return unhex(s.slice('ed25519:'.length), 32, what);
}

// ---------------------------------------------------------------------------
// Signatures

const L = 2n ** 252n + 27742317777372353535851937790883648493n;

function le(bytes) {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}

/**
 * ed25519 verification as strict as the node's own (ed25519-dalek
 * verify_strict and verify): canonical point encodings (noble's RFC 8032
 * branch, zip215: false), S < L, neither the key nor R of small order, and
 * the cofactorless equation [S]B = R + [k]A.
 */
export function verifyStrict(sig, msg, pub) {
  try {
    if (sig.length !== 64 || pub.length !== 32) return false;
    if (!ed.verify(sig, msg, pub, { zip215: false })) return false; // canonical A, R; S < L; A not small
    const A = ed.Point.fromBytes(pub, false);
    const R = ed.Point.fromBytes(sig.subarray(0, 32), false);
    if (A.isSmallOrder() || R.isSmallOrder()) return false;
    const s = le(sig.subarray(32));
    if (s >= L) return false;
    const k = le(sha512(ed.etc.concatBytes(sig.subarray(0, 32), pub, msg))) % L;
    return ed.Point.BASE.multiply(s, false).equals(R.add(A.multiply(k, false)));
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// Receipts

const MAX_NONCE_BYTES = 256;

/** The canonical body bytes of a receipt given as parsed JSON. Throws Invalid. */
export function receiptBody(r) {
  if (r === null || typeof r !== 'object' || Array.isArray(r)) throw new Invalid('a receipt must be a JSON object');
  if (r.version !== 1) throw new Invalid(`unknown receipt version ${describe(r.version)}; this page checks version 1`);
  const w = new Writer();
  w.u8(1);
  w.bytes(parseDigest(r.model, 'model', 'model'));
  w.bytes(parseDigest(r.request, 'in', 'request'));
  w.bytes(parseDigest(r.output, 'out', 'output'));
  if (r.trace === null || typeof r.trace !== 'object') throw new Invalid('trace must be {"root", "len"}');
  w.bytes(parseDigest(r.trace.root, 'trace', 'trace.root'));
  w.u64(r.trace.len, 'trace.len');
  if (r.engine === null || typeof r.engine !== 'object') throw new Invalid('engine must be {"name", "version"}');
  w.str(r.engine.name, 'engine.name');
  w.str(r.engine.version, 'engine.version');
  const det = r.determinism;
  if (det === null || typeof det !== 'object') throw new Invalid('determinism must be {"class": …}');
  if (det.class === 'exact') {
    w.u8(0);
  } else if (det.class === 'tolerant') {
    const rtol = f64(det.rtol, 'determinism.rtol');
    if (!Number.isFinite(rtol) || rtol < 0) throw new Invalid(`rtol ${rtol} must be finite and non-negative`);
    w.u8(1).f64(rtol);
  } else {
    throw new Invalid(`unknown determinism class ${describe(det.class)}`);
  }
  if (r.seed === null) w.u8(0);
  else w.u8(1).u64(r.seed, 'seed');
  w.bytes(parseNodeKey(r.node));
  const nonce = str(r.nonce, 'nonce');
  if (utf8.encode(nonce).length > MAX_NONCE_BYTES) throw new Invalid(`the nonce is over ${MAX_NONCE_BYTES} bytes`);
  w.str(nonce);
  w.u64(r.timestamp_ms, 'timestamp_ms');
  w.u64(r.price, 'price');
  return w.finish();
}

function result(fn) {
  try {
    const extra = fn();
    return { ok: true, reason: null, ...(extra || {}) };
  } catch (e) {
    if (e instanceof Invalid || e instanceof JsonError) return { ok: false, reason: e.message };
    return { ok: false, reason: `error: ${e && e.message ? e.message : e}` };
  }
}

function checkReceipt(r) {
  const body = receiptBody(r);
  const id = digest('rcpt', body);
  if (!equalBytes(id, parseDigest(r.id, 'rcpt', 'id'))) {
    throw new Invalid(`the receipt was altered: its fields hash to ${fmt('rcpt', id)}, not the id ${describe(r.id)}`);
  }
  const sig = unhex(r.signature, 64, 'signature');
  if (!verifyStrict(sig, id, parseNodeKey(r.node))) {
    throw new Invalid(`the signature is not valid for node key ${r.node}`);
  }
}

/**
 * Checks a receipt (parsed JSON): fields well-formed, id = H_rcpt(body),
 * strict ed25519 signature by `node` over the id bytes.
 * Returns {ok, reason}.
 */
export function verifyReceipt(receipt) {
  return result(() => checkReceipt(receipt));
}

// ---------------------------------------------------------------------------
// Generated text

export const LLM_ENCODING = 'vouch llm v1';
export const CHECKPOINT_EVERY = 16;
const MODES = { chat: 1, completion: 2 };
const FINISH = new Set(['stop', 'length']);

/** The canonical bytes of an LLM request given as its JSON object. */
export function encodeRequest(q) {
  if (q === null || typeof q !== 'object') throw new Invalid('the request must be a JSON object');
  const mode = MODES[q.mode];
  if (!mode) throw new Invalid(`request.mode must be "chat" or "completion", got ${describe(q.mode)}`);
  if (!Array.isArray(q.stop)) throw new Invalid('request.stop must be a list of strings');
  const s = q.sampling;
  if (s === null || typeof s !== 'object') throw new Invalid('request.sampling must be an object');
  const w = new Writer().str(LLM_ENCODING).u8(mode).str(q.prompt, 'request.prompt');
  w.u32(q.max_tokens, 'request.max_tokens').u32(q.stop.length);
  q.stop.forEach((x, i) => w.str(x, `request.stop[${i}]`));
  w.f64(s.temperature, 'sampling.temperature').f64(s.top_p, 'sampling.top_p');
  w.u32(s.top_k, 'sampling.top_k').u64(s.seed, 'sampling.seed');
  // A chat's messages and template digest, when the request names them.
  const messages = q.messages ?? [];
  if (!Array.isArray(messages)) throw new Invalid('request.messages must be a list');
  messages.forEach((m, i) => {
    if (m === null || typeof m !== 'object') throw new Invalid(`request.messages[${i}] must be an object`);
  });
  const calls = (m, i) => {
    const c = m.tool_calls ?? [];
    if (!Array.isArray(c)) throw new Invalid(`request.messages[${i}].tool_calls must be a list`);
    return c;
  };
  // A constraint, tools or tool messages extend the encoding.
  const extended = q.constraint != null || q.tools != null || q.logprobs != null
    || messages.some((m, i) => calls(m, i).length > 0 || m.tool_call_id != null);
  if (messages.length > 0 || q.template != null || extended) {
    w.u32(messages.length);
    messages.forEach((m, i) => {
      w.str(m.role, `request.messages[${i}].role`).str(m.content, `request.messages[${i}].content`);
    });
    w.bytes(q.template != null ? parseDigest(q.template, 'blob', 'request.template') : new Uint8Array(32));
  }
  if (extended) {
    w.str(q.constraint ?? '', 'request.constraint').str(q.tools ?? '', 'request.tools');
    w.u8(q.logprobs == null ? 0 : q.logprobs + 1);
    messages.forEach((m, i) => {
      const c = calls(m, i);
      w.u32(c.length);
      c.forEach((call, j) => {
        const at = `request.messages[${i}].tool_calls[${j}]`;
        if (call === null || typeof call !== 'object') throw new Invalid(`${at} must be an object`);
        w.str(call.id, `${at}.id`).str(call.name, `${at}.name`).str(call.arguments, `${at}.arguments`);
      });
      w.str(m.tool_call_id ?? '', `request.messages[${i}].tool_call_id`);
    });
  }
  return w.finish();
}

/** The request's `in:` digest as raw bytes. */
export function requestDigestBytes(q) {
  return digest('in', encodeRequest(q));
}

/** The request's `in:` digest, printed ("in:…"). Throws Invalid on a malformed request. */
export function requestDigest(q) {
  return fmt('in', requestDigestBytes(q));
}

/** The trace leaf of generated token `i`. */
export function tokenLeaf(i, token) {
  const data = new Uint8Array(4);
  new DataView(data.buffer).setUint32(0, Number(toBigInt(token, 'token', U32_MAX)), true); // i32 LE, same bytes
  return traceLeaf(i, 'token', [{ tag: 7, shape: [1], data }]);
}

/** A trace leaf: H_leaf(u64 i || str name || u32 n || (tag, rank, dims, H_tdata(elements))...). */
export function traceLeaf(i, name, outputs) {
  const w = new Writer().u64(i).str(name).u32(outputs.length);
  for (const o of outputs) {
    w.u8(o.tag).u32(o.shape.length);
    for (const d of o.shape) w.u64(d);
    w.bytes(digest('tdata', o.data));
  }
  return digest('leaf', w.finish());
}

function split(n) {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** The RFC 6962-shaped Merkle root of leaf digests. */
export function merkleRoot(leaves, lo = 0, hi = leaves.length) {
  if (hi - lo === 0) return digest('trace', new Uint8Array(0));
  if (hi - lo === 1) return leaves[lo];
  const k = split(hi - lo);
  const w = new Writer().bytes(merkleRoot(leaves, lo, lo + k)).bytes(merkleRoot(leaves, lo + k, hi));
  return digest('trace', w.finish());
}

/** Checks an inclusion path (sibling digests from the leaf upward). */
export function merkleVerify(root, length, index, leaf, path) {
  if (index >= length) return false;
  const sides = [];
  let lo = 0;
  let hi = length;
  let i = index;
  while (hi - lo > 1) {
    const k = split(hi - lo);
    if (i < k) {
      sides.push('right');
      hi = lo + k;
    } else {
      sides.push('left');
      lo += k;
      i -= k;
    }
  }
  if (sides.length !== path.length) return false;
  let acc = leaf;
  sides.reverse().forEach((side, j) => {
    const sib = path[j];
    const w = new Writer();
    if (side === 'right') w.bytes(acc).bytes(sib);
    else w.bytes(sib).bytes(acc);
    acc = digest('trace', w.finish());
  });
  return equalBytes(acc, root);
}

/** The hash chain over a token stream. */
export class Chain {
  constructor(requestDigestRaw) {
    this.link = digest('chain', requestDigestRaw);
    this.len = 0;
  }
  /** With `logprobs` (when the request asked for them): `f32 logprob || bytes || u8 n || (u32 token || f32 logprob || bytes)*n`. */
  push(token, text, logprobs = null) {
    const w = new Writer().bytes(this.link).u32(token, 'token id').str(text, 'token text');
    if (logprobs != null) {
      const blob = (b, what) => {
        if (!Array.isArray(b)) throw new Invalid(`${what} must be a list of bytes`);
        w.u32(b.length).bytes(Uint8Array.from(b));
      };
      w.f32(logprobs.logprob, 'logprob');
      blob(logprobs.bytes, 'logprobs.bytes');
      const top = logprobs.top ?? [];
      w.u8(top.length);
      top.forEach((a, i) => {
        w.u32(a.token, `top[${i}].token`).f32(a.logprob, `top[${i}].logprob`);
        blob(a.bytes, `top[${i}].bytes`);
      });
    }
    this.link = digest('chain', w.finish());
    this.len += 1;
  }
  /** `H_out(str "vouch llm v1" || link || u64 n || str finish_reason)`. */
  output(finishReason) {
    if (!FINISH.has(finishReason)) throw new Invalid(`unknown finish_reason ${describe(finishReason)}`);
    return digest('out', new Writer().str(LLM_ENCODING).bytes(this.link).u64(this.len).str(finishReason).finish());
  }
}

/** `H_ckpt(model || request || u64 n || link_n)`: the bytes a checkpoint signs. */
export function checkpointDigest(modelRaw, requestRaw, tokens, chainRaw) {
  return digest('ckpt', new Writer().bytes(modelRaw).bytes(requestRaw).u64(tokens).bytes(chainRaw).finish());
}

function sameSeed(receiptSeed, requestSeed) {
  if (receiptSeed === null || receiptSeed === undefined) {
    throw new Invalid(`the receipt has no seed, but the request's seed is ${toBigInt(requestSeed, 'sampling.seed', U64_MAX)}`);
  }
  const a = toBigInt(receiptSeed, 'seed', U64_MAX);
  const b = toBigInt(requestSeed, 'sampling.seed', U64_MAX);
  if (a !== b) throw new Invalid(`the receipt's seed ${a} is not the request's ${b}`);
}

// Checks shared by a stream and a transcript, once the receipt is known.
function checkAnswer(receipt, reqDigestRaw, request, chain, leaves, finishReason) {
  checkReceipt(receipt);
  const signed = parseDigest(receipt.request, 'in', 'request');
  if (!equalBytes(signed, reqDigestRaw)) {
    throw new Invalid(`the request does not match the receipt: receipt says ${receipt.request}, this request hashes to ${fmt('in', reqDigestRaw)}`);
  }
  sameSeed(receipt.seed, request.sampling.seed);
  const out = chain.output(finishReason);
  if (!equalBytes(out, parseDigest(receipt.output, 'out', 'output'))) {
    throw new Invalid(`the answer does not match the receipt: receipt says ${receipt.output}, these tokens and texts hash to ${fmt('out', out)}`);
  }
  const len = toBigInt(receipt.trace.len, 'trace.len', U64_MAX);
  if (len !== BigInt(leaves.length)) {
    throw new Invalid(`the receipt's trace has ${len} leaves, but the answer has ${leaves.length} tokens`);
  }
  const root = merkleRoot(leaves);
  if (!equalBytes(root, parseDigest(receipt.trace.root, 'trace', 'trace.root'))) {
    throw new Invalid(`the receipt's trace root ${receipt.trace.root} is not the root of the answer's token leaves, ${fmt('trace', root)}`);
  }
}

/**
 * Checks a whole generated answer (`vouch.receipt` + `vouch.transcript`):
 * the receipt, request digest, seed, chain/output digest and trace.
 * Returns {ok, reason, text}.
 */
export function verifyTranscript(receipt, transcript) {
  return result(() => {
    if (transcript === null || typeof transcript !== 'object') throw new Invalid('the transcript must be an object');
    const { request, tokens, texts } = transcript;
    if (!Array.isArray(tokens) || !Array.isArray(texts)) throw new Invalid('the transcript needs "tokens" and "texts" lists');
    if (tokens.length !== texts.length) {
      throw new Invalid(`the transcript has ${tokens.length} tokens but ${texts.length} texts`);
    }
    const logprobs = transcript.logprobs ?? [];
    if (logprobs.length !== (request != null && request.logprobs != null ? tokens.length : 0)) {
      throw new Invalid('the transcript\'s log-probabilities do not match its tokens');
    }
    const reqDigest = requestDigestBytes(request);
    const chain = new Chain(reqDigest);
    const leaves = [];
    tokens.forEach((t, i) => {
      chain.push(t, texts[i], logprobs.length ? logprobs[i] : null);
      leaves.push(tokenLeaf(i, t));
    });
    checkAnswer(receipt, reqDigest, request, chain, leaves, transcript.finish_reason);
    return { text: texts.join(''), tokens: tokens.length };
  });
}

/**
 * Checks a stream as it arrives. Feed it the first chunk's `vouch.request`
 * and `vouch.model_id`, then each token, each checkpoint, and finally the
 * receipt. Every method returns {ok, reason}; the first failure sticks.
 * Checkpoints are checked against the running chain at once; their
 * signatures at once when `nodeKey` ("ed25519:…") is given, otherwise with
 * the receipt's node key at the end (which must then equal `nodeKey` if
 * given).
 */
export class StreamVerifier {
  constructor(request, modelId, nodeKey = null) {
    this.request = request;
    this.modelId = modelId;
    this.nodeKey = nodeKey;
    this.text = '';
    this.tokens = 0;
    this.checkpoints = 0; // checkpoints whose signature was verified
    this.pending = []; // checkpoints awaiting the node key
    this.leaves = [];
    this.done = false;
    this.failure = null;
    this.step(() => {
      this.reqDigest = requestDigestBytes(request);
      this.modelRaw = parseDigest(modelId, 'model', 'model_id');
      this.keyRaw = nodeKey === null || nodeKey === undefined ? null : parseNodeKey(nodeKey, 'node key');
      this.chain = new Chain(this.reqDigest);
    });
  }

  get ok() {
    return this.failure === null;
  }

  step(fn) {
    if (this.failure !== null) return { ok: false, reason: this.failure };
    const r = result(() => {
      if (this.done) throw new Invalid('the stream went on after its receipt');
      return fn();
    });
    if (!r.ok) this.failure = r.reason;
    return r;
  }

  /** One generated token and the text it released. */
  token(id, text) {
    return this.step(() => {
      this.chain.push(id, text);
      this.leaves.push(tokenLeaf(this.leaves.length, id));
      this.tokens += 1;
      this.text += text;
    });
  }

  /** A checkpoint chunk's `vouch.checkpoint`: {tokens, chain, signature}. */
  checkpoint(ck) {
    return this.step(() => {
      if (ck === null || typeof ck !== 'object') throw new Invalid('a checkpoint must be an object');
      const n = toBigInt(ck.tokens, 'checkpoint.tokens', U64_MAX);
      const link = parseDigest(ck.chain, 'chain', 'checkpoint.chain');
      const sig = unhex(ck.signature, 64, 'checkpoint.signature');
      if (n !== BigInt(this.chain.len) || !equalBytes(link, this.chain.link)) {
        throw new Invalid(`checkpoint at token ${n} signs chain ${ck.chain}, but the tokens received give ${fmt('chain', this.chain.link)} after ${this.chain.len}`);
      }
      const d = checkpointDigest(this.modelRaw, this.reqDigest, n, link);
      if (this.keyRaw) this.checkSig(d, sig, n, this.keyRaw, this.nodeKey);
      else this.pending.push({ d, sig, n });
    });
  }

  checkSig(d, sig, n, key, keyText) {
    if (!verifyStrict(sig, d, key)) throw new Invalid(`checkpoint at token ${n} is not signed by ${keyText}`);
    this.checkpoints += 1;
  }

  /** The last chunk's `vouch.receipt` and `vouch.finish_reason`. */
  finish(receipt, finishReason) {
    return this.step(() => {
      if (receipt === null || typeof receipt !== 'object') throw new Invalid('the stream ended without a receipt');
      if (this.nodeKey && receipt.node !== this.nodeKey) {
        throw new Invalid(`the receipt is signed by ${describe(receipt.node)}, not the expected ${this.nodeKey}`);
      }
      checkAnswer(receipt, this.reqDigest, this.request, this.chain, this.leaves, finishReason);
      if (!equalBytes(parseDigest(receipt.model, 'model', 'model'), this.modelRaw)) {
        throw new Invalid(`the receipt names model ${receipt.model}, but the stream announced ${this.modelId}`);
      }
      const key = parseNodeKey(receipt.node);
      for (const p of this.pending) this.checkSig(p.d, p.sig, p.n, key, receipt.node);
      this.pending = [];
      this.done = true;
      return { tokens: this.tokens, checkpoints: this.checkpoints };
    });
  }
}

// ---------------------------------------------------------------------------
// Pasted text

/**
 * Checks pasted text: a receipt, a whole chat/completion response (with
 * `vouch.receipt` and `vouch.transcript`: the transcript is checked too, and
 * the response's visible text must be the transcript's), an embedding
 * response (`vouch.receipt` only), or `{"receipt", "transcript"}`.
 * Returns {ok, reason, kind, receipt}.
 */
/**
 * A chat answer as the node shapes it from the text the receipt signs
 * (docs/receipts.md, "Tools"): with tools offered, `{"tool_calls": [...]}`
 * becomes `tool_calls` (ids from the request digest) and `{"response": s}`
 * the content; otherwise, or when the text is not such JSON, the text.
 * Returns `{content, toolCalls, finishReason}`; `toolCalls[i].arguments` is
 * the parsed value.
 */
export function assistantMessage(request, text, finishReason) {
  const plain = { content: text, toolCalls: null, finishReason };
  if (request == null || request.tools == null) return plain;
  let said;
  try {
    said = JSON.parse(text);
  } catch {
    return plain;
  }
  if (said === null || typeof said !== 'object') return plain;
  if (typeof said.response === 'string') return { content: said.response, toolCalls: null, finishReason };
  if (!Array.isArray(said.tool_calls)) return plain;
  const d = requestDigest(request).slice('in:'.length, 'in:'.length + 16);
  const toolCalls = said.tool_calls.map((c, i) => ({ id: `call_${d}_${i}`, name: c?.name, arguments: c?.arguments }));
  return { content: null, toolCalls, finishReason: 'tool_calls' };
}

/** Whether a response's tool calls are the derived ones (arguments compared as JSON values). */
function sameToolCalls(shown, derived) {
  if (!Array.isArray(shown) || shown.length !== derived.length) return false;
  return shown.every((c, i) => {
    const f = c?.function;
    if (c?.id !== derived[i].id || f?.name !== derived[i].name || typeof f?.arguments !== 'string') return false;
    try {
      return JSON.stringify(JSON.parse(f.arguments)) === JSON.stringify(derived[i].arguments);
    } catch {
      return false;
    }
  });
}

export function verifyPasted(text) {
  let v;
  try {
    v = parseJson(String(text).trim());
  } catch (e) {
    return { ok: false, reason: e.message, kind: null, receipt: null };
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    return { ok: false, reason: 'paste a receipt or a response JSON object', kind: null, receipt: null };
  }
  let receipt;
  let transcript = null;
  let kind;
  if (v.vouch && typeof v.vouch === 'object' && v.vouch.receipt) {
    receipt = v.vouch.receipt;
    transcript = v.vouch.transcript ?? null;
    kind = transcript ? 'response' : 'receipt';
  } else if (v.receipt && v.transcript) {
    receipt = v.receipt;
    transcript = v.transcript;
    kind = 'response';
  } else if ('signature' in v && 'id' in v) {
    receipt = v;
    kind = 'receipt';
  } else {
    return { ok: false, reason: 'this is neither a receipt nor a response with vouch.receipt', kind: null, receipt: null };
  }
  if (!transcript) return { ...verifyReceipt(receipt), kind, receipt };
  const r = verifyTranscript(receipt, transcript);
  if (!r.ok) return { ...r, kind, receipt };
  const choice = Array.isArray(v.choices) ? v.choices[0] : undefined;
  if (choice) {
    const derived = choice.message
      ? assistantMessage(transcript.request, r.text, transcript.finish_reason)
      : { content: r.text, toolCalls: null, finishReason: transcript.finish_reason };
    const shown = choice.message ? choice.message.content : choice.text;
    if ((shown ?? null) !== derived.content) {
      return { ok: false, reason: "the response's text is not the text the receipt signs", kind, receipt };
    }
    if (derived.toolCalls && !sameToolCalls(choice.message.tool_calls, derived.toolCalls)) {
      return { ok: false, reason: "the response's tool_calls are not what the text the receipt signs says", kind, receipt };
    }
    if (!derived.toolCalls && choice.message && choice.message.tool_calls != null) {
      return { ok: false, reason: 'the response has tool_calls, but the text the receipt signs calls no tool', kind, receipt };
    }
    if (choice.finish_reason !== undefined && choice.finish_reason !== derived.finishReason) {
      return { ok: false, reason: `the response's finish_reason ${describe(choice.finish_reason)} is not the transcript's`, kind, receipt };
    }
  }
  return { ...r, kind, receipt };
}
