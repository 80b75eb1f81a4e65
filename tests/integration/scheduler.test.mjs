// scheduler.test.mjs - one decode loop per model, seen from clients: concurrent streams are
// decoded together (every one has its first token before any ends), a client that stops
// reading holds nobody up, and a client that hangs up cancels its task at the next step and
// leaves its sequence for the next request. Order of events only, never wall-clock time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { tempHome, makeModel, startDaemon, post, get, eventually, cleanup } from './lib.mjs';

let home, d, solo;

before(async () => {
  home = tempHome('scheduler');
  makeModel(home, 'tiny');
  d = await startDaemon({ home, env: { PRECHARGE_KEEP_ALIVE: '-1' } });
  // One place in the batch: a second request can only run beside a stalled one if the stalled
  // one lets it.
  solo = await startDaemon({ home, args: ['--parallel', '1'], env: { PRECHARGE_KEEP_ALIVE: '-1' } });
});

after(async () => {
  assert.equal(await d.stop(), 0);
  assert.equal(await solo.stop(), 0);
  cleanup(home);
});

async function metric(daemon, name) {
  const r = await get(daemon.url, '/metrics');
  const line = r.text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

test('four concurrent streamed chats overlap: each has its first token before any ends', async () => {
  let clock = 0;
  const first = [], end = [];
  const one = async (i) => {
    const res = await fetch(`${d.url}/api/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'tiny',
        messages: [{ role: 'user', content: `User ${i} asks question number ${i * 17}.` }],
        options: { num_predict: 400, temperature: 0 },
      }),
    });
    assert.equal(res.status, 200);
    const dec = new TextDecoder();
    let buf = '', last = null;
    for await (const chunk of res.body) {
      buf += dec.decode(chunk, { stream: true });
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const o = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (first[i] === undefined && (o.message?.content || o.done)) first[i] = clock++;
        last = o;
      }
    }
    end[i] = clock++;
    assert.equal(last.done, true);
    return last;
  };
  const finals = await Promise.all([0, 1, 2, 3].map(one));
  assert.ok(Math.max(...first) < Math.min(...end), `first tokens ${first}, ends ${end}`);
  // The answers were long enough to need each other's company: they shared batches.
  assert.ok(finals.every((f) => f.eval_count > 1));
  assert.ok((await metric(d, 'precharge_decode_batched_steps_total{model="tiny"}')) > 0);
});

// What the socket buffers hold is the client's; once they are full its task pauses and gives its
// place away (unit/test_loop shows that step with a consumer that never reads).
test('a client that opens a stream and never reads does not delay another request', async () => {
  const port = Number(new URL(solo.url).port);
  const body = JSON.stringify({ model: 'tiny', prompt: 'Tell me everything you know.', options: { num_predict: 1800 } });
  const s = connect({ host: '127.0.0.1', port });
  await new Promise((ok) => s.once('connect', ok));
  let ended = false;
  s.on('end', () => { ended = true; });
  s.on('close', () => { ended = true; });
  s.write(`POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  s.pause(); // never read
  assert.ok(await eventually(async () => (await metric(solo, 'precharge_decode_steps_total{model="tiny"}')) > 0));

  const r = await post(solo.url, '/api/generate', { model: 'tiny', prompt: 'Hello', stream: false, options: { num_predict: 3 } });
  assert.equal(r.status, 200, r.text);
  assert.equal(JSON.parse(r.text).done, true);
  assert.equal(ended, false, 'the stalled stream is still open');
  s.destroy();
});

test('a client that hangs up mid-stream cancels its task; the next request reuses its sequence', async () => {
  const prompt = 'Once upon a time, in a land far away, there lived';
  const before = await metric(d, 'precharge_decode_cancelled_total{model="tiny"}');
  const ctrl = new AbortController();
  const res = await fetch(`${d.url}/api/generate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', prompt, options: { num_predict: 1800, temperature: 0 } }),
    signal: ctrl.signal,
  });
  const reader = res.body.getReader();
  assert.equal((await reader.read()).done, false);
  ctrl.abort();
  assert.ok(await eventually(async () =>
    (await metric(d, 'precharge_decode_cancelled_total{model="tiny"}')) === before + 1 &&
    (await metric(d, 'precharge_decode_active{model="tiny"}')) === 0), 'the cancel is counted');

  const again = JSON.parse((await post(d.url, '/api/generate', {
    model: 'tiny', prompt, stream: false, options: { num_predict: 1, temperature: 0 },
  })).text);
  assert.equal(again.done, true);
  assert.equal(again.prompt_cached_count, again.prompt_eval_count - 1, JSON.stringify(again));
});
