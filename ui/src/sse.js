// A server-sent events reader for fetch() bodies: yields the data of each
// event (its `data:` lines joined with "\n"), following the WHATWG
// event-stream rules that matter here: lines end with \r\n, \n or \r;
// one optional space after the colon is dropped; lines starting with ':'
// are comments; a blank line ends an event; an unfinished event at the
// end is dropped.

/**
 * Yields the data string of each event in a stream of UTF-8 bytes (a
 * ReadableStream, or any async iterable of Uint8Array chunks). If the
 * caller stops early, the stream is cancelled.
 */
export async function* sseData(body) {
  const chunks = body.getReader ? readerChunks(body.getReader()) : body;
  const iter = chunks[Symbol.asyncIterator]();
  const decoder = new TextDecoder();
  let buf = '';
  let data = [];
  let done = false;
  try {
    while (!done) {
      const next = await iter.next();
      done = Boolean(next.done);
      buf += done ? decoder.decode() : decoder.decode(next.value, { stream: true });
      let start = 0;
      for (;;) {
        let end = start;
        while (end < buf.length && buf[end] !== '\n' && buf[end] !== '\r') end++;
        if (end === buf.length) break; // no complete line yet
        // A '\r' at the very end may be the first half of "\r\n": wait for more.
        if (buf[end] === '\r' && end + 1 === buf.length && !done) break;
        const line = buf.slice(start, end);
        start = end + (buf[end] === '\r' && buf[end + 1] === '\n' ? 2 : 1);
        if (line === '') {
          if (data.length) yield data.join('\n');
          data = [];
          continue;
        }
        if (line[0] === ':') continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value[0] === ' ') value = value.slice(1);
        if (field === 'data') data.push(value);
      }
      buf = buf.slice(start);
    }
  } finally {
    if (!done && iter.return) await iter.return(); // the caller stopped early
  }
}

async function* readerChunks(reader) {
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        finished = true;
        return;
      }
      yield value;
    }
  } finally {
    // Stopped early: cancel, so the server stops generating.
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
