// The server-sent events reader (ui/src/sse.js), fed every way a stream can
// be cut into reads. Run: node --test ui/test/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sseData } from '../src/sse.js';

async function collect(pieces) {
  async function* gen() {
    for (const p of pieces) yield p;
  }
  const out = [];
  for await (const d of sseData(gen())) out.push(d);
  return out;
}

const enc = new TextEncoder();

test('events split at every byte still parse the same', async () => {
  const text = ': keep-alive\r\n\r\ndata: {"a":"é🌍"}\n\ndata:no-space\r\rdata: two\ndata:  lines\r\n\r\nevent: x\nid: 3\ndata: [DONE]\n\n';
  const want = ['{"a":"é🌍"}', 'no-space', 'two\n lines', '[DONE]'];
  const bytes = enc.encode(text);
  assert.deepEqual(await collect([bytes]), want);
  for (let i = 0; i <= bytes.length; i++) {
    assert.deepEqual(await collect([bytes.subarray(0, i), bytes.subarray(i)]), want, `split at ${i}`);
  }
  assert.deepEqual(await collect([...bytes].map((b) => Uint8Array.of(b))), want, 'one byte per read');
});

test('an unfinished last event is dropped; empty data is an event', async () => {
  assert.deepEqual(await collect([enc.encode('data: a\n\ndata: b\n')]), ['a']);
  assert.deepEqual(await collect([enc.encode('data: a\n\ndata: b')]), ['a']);
  assert.deepEqual(await collect([enc.encode('data\n\ndata:\n\n\n\n')]), ['', '']);
  assert.deepEqual(await collect([]), []);
});

test('a ReadableStream body is read and cancelled when the reader stops early', async () => {
  let cancelled = false;
  const body = new ReadableStream({
    start(c) {
      c.enqueue(enc.encode('data: 1\n\ndata: 2\n\n'));
    },
    cancel() {
      cancelled = true;
    },
  });
  for await (const d of sseData(body)) {
    assert.equal(d, '1');
    break;
  }
  assert.ok(cancelled);
});
