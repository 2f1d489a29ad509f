// Checks ui/src/verify.js against docs/receipt-vectors.json (made by the
// Rust implementation) and ui/test/llm-fixture.json (made by the Python
// reference, tests/python/vouch_ref.py), and that any tampering fails.
// Run: node --test ui/test/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';

import {
  parseJson, toJson, digest, fmt, hex, unhex, CONTEXTS, traceLeaf, tokenLeaf, merkleRoot, merkleVerify,
  parseDigest, receiptBody, verifyReceipt, verifyStrict, encodeRequest, requestDigest, requestDigestBytes,
  Chain, checkpointDigest, verifyTranscript, StreamVerifier, verifyPasted, assistantMessage,
} from '../src/verify.js';

const root = new URL('../../', import.meta.url);
const read = (p) => readFileSync(fileURLToPath(new URL(p, root)), 'utf8');
const VECTORS = parseJson(read('docs/receipt-vectors.json'));
const FIXTURE_TEXT = read('ui/test/llm-fixture.json');
const LLM = parseJson(FIXTURE_TEXT);
const clone = (v) => parseJson(toJson(v));
const SEED = unhex(VECTORS.signing_key_seed_hex, 32, 'seed');
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

test('parseJson reads JSON like JSON.parse, with exact big integers', () => {
  const samples = [
    '{"a":[1,2.5,-0,1e3,-1.25e-7,true,false,null,"x\\u00e9\\n\\"\\\\\\/"],"b":{}}',
    '  [ ]  ', '"\\ud83c\\udf0d"', '0', '-12', '{"__proto__": 1, "k": {"__proto__": [2]}}',
    '9007199254740991', '{"n": 1.0}', '[1E400, -1e-400]',
  ];
  for (const s of samples) assert.deepEqual(parseJson(s), JSON.parse(s), s);
  assert.equal(Object.getPrototypeOf(parseJson('{"__proto__": {"x": 1}}')), Object.prototype);
  assert.equal(parseJson('9007199254740992'), 9007199254740992n);
  assert.equal(parseJson('{"seed":18446744073709551615}').seed, 18446744073709551615n);
  assert.equal(parseJson('-9007199254740993'), -9007199254740993n);
  assert.equal(parseJson('9007199254740993.0'), 9007199254740992, 'a float literal stays a float');
  for (const bad of ['', '{', '[1,]', '{"a":1,}', '01', '1.', '"\n"', "'a'", '{"a":1}x', 'nul', '{"a":1,"a":2}', '-', '[1 2]']) {
    assert.throws(() => parseJson(bad), undefined, JSON.stringify(bad));
  }
  const v = { seed: 2n ** 63n + 5n, s: 'é"', a: [1, null, { b: 0.1 }] };
  assert.deepEqual(parseJson(toJson(v)), v);
  assert.deepEqual(parseJson(toJson(v, 2)), v);
  assert.equal(toJson({ a: 1n, b: [true] }), '{"a":1,"b":[true]}');
});

test('digests match the vectors', () => {
  const prefixes = Object.fromEntries(Object.entries(CONTEXTS).map(([p, c]) => [c, p]));
  assert.ok(VECTORS.digests.length >= 18);
  for (const d of VECTORS.digests) {
    const p = prefixes[d.context];
    assert.ok(p, d.context);
    assert.equal(fmt(p, digest(p, unhex(d.data_hex, d.data_hex.length / 2, 'data'))), d.digest);
  }
});

test('trace leaves, Merkle roots and inclusion paths match the vectors', () => {
  assert.ok(VECTORS.merkle.length > 0);
  for (const m of VECTORS.merkle) {
    const leaves = [];
    for (let i = 0; i < m.len; i++) leaves.push(traceLeaf(i, `step${i}`, [{ tag: 2, shape: [1], data: Uint8Array.of(i) }]));
    assert.deepEqual(leaves.map((l) => fmt('leaf', l)), m.leaves);
    const r = merkleRoot(leaves);
    assert.equal(fmt('trace', r), m.root);
    m.proofs.forEach((proof, i) => {
      const path = proof.map((p) => parseDigest(p, 'trace'));
      assert.ok(merkleVerify(r, m.len, i, leaves[i], path), `len ${m.len} leaf ${i}`);
      if (m.len > 1) assert.ok(!merkleVerify(r, m.len, i, leaves[(i + 1) % m.len], path));
    });
  }
});

test('receipt bodies and signatures match the vectors', () => {
  assert.ok(VECTORS.receipts.length >= 2);
  for (const c of VECTORS.receipts) {
    assert.equal(hex(receiptBody(c.receipt)), c.body_hex);
    assert.deepEqual(verifyReceipt(c.receipt), { ok: true, reason: null });
  }
});

function tamperings() {
  const flip = (s) => s.slice(0, -1) + (s.endsWith('0') ? '1' : '0');
  return [
    ['version', () => 2], ['nonce', () => 'other'], ['timestamp_ms', () => 1], ['price', () => 8],
    ['seed', (r) => (r.seed === 43 ? 44 : 43)], ['seed', (r) => (r.seed === null ? 0 : null)],
    ['engine', () => ({ name: 'tract-onnx', version: '0.0.0' })],
    ['determinism', () => ({ class: 'tolerant', rtol: 0.5 })],
    ['determinism', (r) => (r.determinism.class === 'exact' ? { class: 'tolerant', rtol: 0 } : { class: 'exact' })],
    ['signature', () => '00'.repeat(64)], ['signature', (r) => flip(r.signature)],
    ['id', (r) => flip(r.id)], ['model', (r) => flip(r.model)], ['request', (r) => flip(r.request)],
    ['output', (r) => flip(r.output)], ['node', (r) => flip(r.node)],
    ['trace', (r) => ({ ...r.trace, root: flip(r.trace.root) })], ['trace', (r) => ({ ...r.trace, len: 6 })],
    ['request', (r) => r.request.replace('in:', 'out:')],
    ['output', (r) => r.output.toUpperCase().replace('OUT:', 'out:')],
    ['nonce', () => 'x'.repeat(300)], ['price', () => -1], ['price', () => 2 ** 60], ['price', () => '7'],
  ];
}

test('tampering any receipt field fails', () => {
  for (const c of [...VECTORS.receipts, { receipt: LLM.receipt }]) {
    for (const [field, make] of tamperings()) {
      const r = clone(c.receipt);
      const value = make(r);
      if (toJson(r[field]) === toJson(value)) continue;
      r[field] = value;
      const got = verifyReceipt(r);
      assert.equal(got.ok, false, `${field} = ${toJson(value)} should fail`);
      assert.equal(typeof got.reason, 'string');
    }
  }
  assert.equal(verifyReceipt(null).ok, false);
  assert.equal(verifyReceipt({}).ok, false);
});

test('signatures are checked strictly', () => {
  const r = VECTORS.receipts[0].receipt;
  const id = parseDigest(r.id, 'rcpt');
  const pub = unhex(r.node.slice(8), 32, 'key');
  const sig = unhex(r.signature, 64, 'sig');
  assert.ok(verifyStrict(sig, id, pub));
  // S + L: the same signature, non-canonical.
  const s = [...sig.subarray(32)].reduceRight((n, b) => (n << 8n) | BigInt(b), 0n) + L;
  const big = new Uint8Array(64);
  big.set(sig.subarray(0, 32));
  for (let i = 0, x = s; i < 32; i++, x >>= 8n) big[32 + i] = Number(x & 0xffn);
  assert.ok(!verifyStrict(big, id, pub));
  assert.equal(verifyReceipt({ ...r, signature: hex(big) }).ok, false);
  // A signature whose R has a small-order component passes the cofactored
  // equation (ed25519 verify in noble's strict branch) but not the
  // cofactorless one the node uses.
  ed.hashes.sha512 = sha512;
  const { scalar, pointBytes } = ed.utils.getExtendedPublicKey(SEED);
  assert.equal(hex(pointBytes), r.node.slice(8));
  let T = null;
  for (let y = 2n; !T; y++) { // find a point of order 8
    try {
      const b = new Uint8Array(32);
      for (let i = 0, x = y; i < 32; i++, x >>= 8n) b[i] = Number(x & 0xffn);
      const Q = ed.Point.fromBytes(b);
      const P = Q.multiply(L - 1n, false).add(Q); // [L]Q: Q's small-order component
      if (!P.multiply(4n, false).is0()) T = P; // of order 8
    } catch { /* not on the curve */ }
  }
  const rnd = 123456789n;
  const R = ed.Point.BASE.multiply(rnd).add(T).toBytes();
  const k = [...sha512(ed.etc.concatBytes(R, pointBytes, id))].reduceRight((n, b) => (n << 8n) | BigInt(b), 0n) % L;
  const S = (rnd + k * scalar) % L;
  const forged = new Uint8Array(64);
  forged.set(R);
  for (let i = 0, x = S; i < 32; i++, x >>= 8n) forged[32 + i] = Number(x & 0xffn);
  assert.ok(ed.verify(forged, id, pointBytes, { zip215: false }), 'cofactored verification accepts it');
  assert.ok(!verifyStrict(forged, id, pointBytes), 'strict verification rejects it');
});

test('the LLM request encoding, chain, output, trace and checkpoint match the Python reference', () => {
  assert.equal(typeof LLM.request.sampling.seed, 'bigint');
  assert.equal(hex(encodeRequest(LLM.request)), LLM.request_encoding_hex);
  assert.equal(requestDigest(LLM.request), LLM.request_digest);
  const chain = new Chain(requestDigestBytes(LLM.request));
  LLM.tokens.forEach((t, i) => {
    chain.push(t, LLM.texts[i]);
    assert.equal(fmt('chain', chain.link), LLM.links[i]);
    assert.equal(fmt('leaf', tokenLeaf(i, t)), LLM.leaves[i]);
  });
  assert.equal(fmt('out', chain.output('stop')), LLM.receipt.output);
  assert.equal(fmt('out', chain.output('length')), LLM.output_length);
  assert.equal(fmt('trace', merkleRoot(LLM.tokens.map((t, i) => tokenLeaf(i, t)))), LLM.receipt.trace.root);
  assert.equal(LLM.checkpoints.length, 1);
  const ck = LLM.checkpoints[0];
  const d = checkpointDigest(parseDigest(LLM.model_id, 'model'), requestDigestBytes(LLM.request),
    ck.checkpoint.tokens, parseDigest(ck.checkpoint.chain, 'chain'));
  assert.equal(fmt('ckpt', d), ck.digest);
  assert.deepEqual(verifyReceipt(LLM.receipt), { ok: true, reason: null });
  // A different request field changes the digest.
  for (const [path, value] of [['mode', 'completion'], ['prompt', 'x'], ['max_tokens', 127], ['stop', ['\n\n']],
    ['sampling.temperature', 0.70000001], ['sampling.top_p', 1], ['sampling.top_k', 0], ['sampling.seed', 2n ** 63n + 4n]]) {
    const q = clone(LLM.request);
    const parts = path.split('.');
    (parts.length === 2 ? q[parts[0]] : q)[parts.at(-1)] = value;
    assert.notEqual(requestDigest(q), LLM.request_digest, path);
  }
  assert.throws(() => requestDigest({ ...LLM.request, mode: 'x' }));
  // A chat's messages and template are bound when named; without them the
  // bytes are as before they existed.
  assert.equal(requestDigest({ ...LLM.request, messages: [] }), LLM.request_digest);
  const chat = { ...LLM.request, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hi' }],
    template: `blob:${'ab'.repeat(32)}` };
  assert.notEqual(requestDigest(chat), LLM.request_digest);
  const rewritten = clone(chat);
  rewritten.messages[0].content = 'Be rude.';
  assert.notEqual(requestDigest(rewritten), requestDigest(chat));
  assert.notEqual(requestDigest({ ...chat, template: `blob:${'cd'.repeat(32)}` }), requestDigest(chat));
  assert.throws(() => requestDigest({ ...chat, template: 'model:00' }));
  // A constraint, tools and tool messages extend the encoding as the
  // Python reference writes it, and each is bound.
  const ext = LLM.extended_request;
  assert.equal(requestDigest(ext), LLM.extended_request_digest);
  const bound = new Chain(requestDigestBytes(ext));
  bound.push(7, ' Paris', LLM.logprobs);
  assert.equal(fmt('chain', bound.link), LLM.logprobs_link);
  const other = clone(LLM.logprobs);
  other.top[1].logprob = -1.5;
  const moved = new Chain(requestDigestBytes(ext));
  moved.push(7, ' Paris', other);
  assert.notEqual(fmt('chain', moved.link), LLM.logprobs_link);
  for (const change of [{ constraint: null }, { tools: null }, { logprobs: 3 }, { logprobs: null },
    { constraint: '{"type":"json_object"}' }]) {
    assert.notEqual(requestDigest({ ...ext, ...change }), LLM.extended_request_digest, JSON.stringify(change));
  }
  const args = clone(ext);
  args.messages[1].tool_calls[0].arguments = '{"city": "Lyon"}';
  assert.notEqual(requestDigest(args), LLM.extended_request_digest);
  const answered = clone(ext);
  answered.messages[2].tool_call_id = 'call_2';
  assert.notEqual(requestDigest(answered), LLM.extended_request_digest);
});

test('a pasted tool call checks against the text the receipt signs', () => {
  const resp = LLM.tool_response;
  const ok = verifyPasted(JSON.stringify(resp));
  assert.deepEqual([ok.ok, ok.reason], [true, null]);
  const derived = assistantMessage(resp.vouch.transcript.request, resp.vouch.transcript.texts.join(''), 'stop');
  assert.equal(derived.toolCalls[0].id, resp.choices[0].message.tool_calls[0].id);
  const edits = [
    (r) => { r.choices[0].message.tool_calls[0].function.arguments = '{"city":"Berlin","t":20.0}'; },
    (r) => { r.choices[0].message.tool_calls[0].function.name = 'time'; },
    (r) => { r.choices[0].message.tool_calls[0].id = 'call_0'; },
    (r) => { r.choices[0].message.tool_calls.push(r.choices[0].message.tool_calls[0]); },
    (r) => { r.choices[0].message.content = 'It is sunny.'; },
    (r) => { r.choices[0].finish_reason = 'stop'; },
  ];
  for (const edit of edits) {
    const r = clone(resp);
    edit(r);
    assert.equal(verifyPasted(JSON.stringify(r)).ok, false, edit.toString());
  }
  // Arguments are compared as JSON values: 20.0 and 20 are one number.
  const same = clone(resp);
  same.choices[0].message.tool_calls[0].function.arguments = '{"city": "Paris", "t": 20}';
  assert.equal(verifyPasted(JSON.stringify(same)).ok, true);
});

test('a transcript checks, and the seed must survive JSON parsing exactly', () => {
  const transcript = { request: LLM.request, tokens: LLM.tokens, texts: LLM.texts, finish_reason: 'stop' };
  const ok = verifyTranscript(LLM.receipt, transcript);
  assert.equal(ok.ok, true, ok.reason);
  assert.equal(ok.text, LLM.texts.join(''));
  // JSON.parse rounds 2^63 + 5: the check must fail loudly, not pass or hash a rounded seed.
  const lossy = JSON.parse(FIXTURE_TEXT);
  assert.equal(lossy.request.sampling.seed, 2 ** 63);
  const bad = verifyTranscript(lossy.receipt, { ...transcript, request: lossy.request });
  assert.equal(bad.ok, false);
  assert.match(bad.reason, /rounded/);
  const cases = [
    ['texts', (t) => { t.texts[0] = 'Pbr'; }],
    ['texts', (t) => { t.texts[2] = ' '; }],
    ['tokens', (t) => { t.tokens[3] += 1; }],
    ['tokens', (t) => { t.tokens.pop(); t.texts.pop(); }],
    ['texts', (t) => { t.texts.pop(); }],
    ['finish', (t) => { t.finish_reason = 'length'; }],
    ['finish', (t) => { t.finish_reason = 'eos'; }],
    ['seed', (t) => { t.request.sampling.seed += 1n; }],
    ['prompt', (t) => { t.request.prompt += ' '; }],
  ];
  for (const [what, change] of cases) {
    const t = clone(transcript);
    change(t);
    assert.equal(verifyTranscript(LLM.receipt, t).ok, false, what);
  }
});

function signReceipt(fields) {
  ed.hashes.sha512 = sha512;
  const { id: _id, signature: _sig, ...body } = fields;
  const id = digest('rcpt', receiptBody(body));
  return { id: fmt('rcpt', id), ...body, signature: hex(ed.sign(id, SEED)) };
}

test('the receipt seed must equal the request seed', () => {
  const r = signReceipt({ ...clone(LLM.receipt), seed: 5 });
  assert.equal(verifyReceipt(r).ok, true);
  const t = verifyTranscript(r, { request: LLM.request, tokens: LLM.tokens, texts: LLM.texts, finish_reason: 'stop' });
  assert.equal(t.ok, false);
  assert.match(t.reason, /seed/);
});

function stream(verifier, { mutate = () => {}, finish = 'stop', receipt = LLM.receipt } = {}) {
  const events = [];
  LLM.tokens.forEach((t, i) => {
    events.push(['token', t, LLM.texts[i]]);
    for (const ck of LLM.checkpoints) if (ck.after_token === i + 1) events.push(['checkpoint', clone(ck.checkpoint)]);
  });
  events.push(['finish', clone(receipt), finish]);
  mutate(events);
  let last;
  for (const [kind, ...args] of events) last = verifier[kind](...args);
  return last;
}

test('a stream checks as it arrives', () => {
  for (const key of [null, LLM.receipt.node]) {
    const v = new StreamVerifier(LLM.request, LLM.model_id, key);
    const r = stream(v);
    assert.equal(r.ok, true, r.reason);
    assert.equal(r.tokens, LLM.tokens.length);
    assert.equal(r.checkpoints, 1);
    assert.equal(v.text, LLM.texts.join(''));
  }
  // With the node key known, a changed token is caught at the checkpoint, before the receipt.
  const v = new StreamVerifier(LLM.request, LLM.model_id, LLM.receipt.node);
  LLM.tokens.forEach((t, i) => { if (i < 16) v.token(t, i === 5 ? 'X' : LLM.texts[i]); });
  const at = v.checkpoint(LLM.checkpoints[0].checkpoint);
  assert.equal(at.ok, false);
  assert.match(at.reason, /checkpoint at token 16/);
  assert.equal(v.token(1, 'a').ok, false, 'failures stick');

  const other = ed.utils.getExtendedPublicKey(new Uint8Array(32).fill(9)).pointBytes;
  const bad = [
    ['a later token text', { mutate: (e) => { e[e.length - 3][2] = '!'; } }],
    ['a dropped token', { mutate: (e) => { e.splice(e.length - 2, 1); } }],
    ['an extra token', { mutate: (e) => { e.splice(e.length - 1, 0, ['token', 5, '']); } }],
    ['the finish reason', { finish: 'length' }],
    ['no receipt', { mutate: (e) => { e[e.length - 1][1] = null; } }],
    ['a checkpoint signature', { mutate: (e) => { e[16][1].signature = '00'.repeat(64); } }],
    ['a checkpoint count', { mutate: (e) => { e[16][1].tokens = 15; } }],
    ['a tampered receipt', { mutate: (e) => { e[e.length - 1][1].price = 1; } }],
    ['another receipt', { receipt: VECTORS.receipts[1].receipt }],
    ['a token after the receipt', { mutate: (e) => { e.push(['token', 1, 'x']); } }],
  ];
  for (const [what, opts] of bad) {
    const r = stream(new StreamVerifier(LLM.request, LLM.model_id), opts);
    assert.equal(r.ok, false, what);
  }
  const wrongModel = stream(new StreamVerifier(LLM.request, fmt('model', digest('model', Uint8Array.of(1)))));
  assert.equal(wrongModel.ok, false);
  assert.equal(stream(new StreamVerifier(LLM.request, LLM.model_id, 'ed25519:' + hex(other))).ok, false);
  const q = clone(LLM.request);
  q.max_tokens = 64;
  assert.equal(stream(new StreamVerifier(q, LLM.model_id)).ok, false);
  assert.equal(new StreamVerifier({}, LLM.model_id).ok, false);
});

test('pasted receipts and responses', () => {
  const text = LLM.texts.join('');
  const response = {
    id: 'cmpl-x', object: 'chat.completion', created: 1, model: 'tiny',
    choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop', logprobs: null }],
    usage: { prompt_tokens: 10, completion_tokens: LLM.tokens.length, total_tokens: 10 + LLM.tokens.length },
    vouch: { receipt: LLM.receipt, transcript: { request: LLM.request, tokens: LLM.tokens, texts: LLM.texts, finish_reason: 'stop' } },
  };
  const full = toJson(response);
  assert.match(full, /"seed":9223372036854775813/);
  let r = verifyPasted(full);
  assert.equal(r.ok, true, r.reason);
  assert.equal(r.kind, 'response');
  r = verifyPasted(toJson(LLM.receipt, 2));
  assert.equal(r.ok, true, r.reason);
  assert.equal(r.kind, 'receipt');
  assert.equal(verifyPasted(toJson(VECTORS.receipts[0].receipt)).ok, true);
  assert.equal(verifyPasted(toJson({ receipt: LLM.receipt, transcript: response.vouch.transcript })).ok, true);
  // Tampered: a transcript text, the shown text, the receipt's output, the finish reason, the seed.
  const tampered = [
    full.replace('"texts":["Par"', '"texts":["Pbr"'),
    full.replace(`"content":${JSON.stringify(text)}`, `"content":${JSON.stringify(text.replace('Paris', 'Lyon'))}`),
    full.replace(/"output":"out:[0-9a-f]/, (m) => m.slice(0, -1) + (m.endsWith('0') ? '1' : '0')),
    full.replace('"finish_reason":"stop","logprobs"', '"finish_reason":"length","logprobs"'),
    full.replaceAll('9223372036854775813', '9223372036854775812'),
    full.replace('"seed":9223372036854775813', '"seed":9223372036854775808'),
    '{"id": 1', '[]', '{"hello": 1}',
  ];
  tampered.forEach((t, i) => {
    assert.notEqual(t, full, `case ${i} changes the text`);
    const got = verifyPasted(t);
    assert.equal(got.ok, false, `case ${i}`);
    assert.equal(typeof got.reason, 'string');
  });
});
