// queue.test.mjs - max_queue: with one request generating and max_queue requests waiting for
// the model, the next ones get 503 with Retry-After (Ollama's error under /api, OpenAI's under
// /v1), other models are not held up, and the daemon serves again once the model is free.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { MKMODEL, tempHome, makeModel, startDaemon, post, get, eventually, cleanup } from './lib.mjs';

let home, d;
// A context this long takes the held request minutes to fill (its answer is megabytes, more
// than the socket buffers of a client that reads no further), so it holds the model for the
// whole test.
const CTX = 131072;

before(async () => {
  home = tempHome('queue');
  execFileSync(MKMODEL, ['--preset', 'tiny', '--n-ctx', String(CTX), '-q', '-o', join(home, 'models', 'tiny.gguf')]);
  makeModel(home, 'other');
  // One request decoded at a time, so that a second one waits for its place in the model's
  // decode loop: the queue that max_queue bounds.
  d = await startDaemon({
    home,
    args: ['--max-queue', '1', '--parallel', '1'],
    env: { PRECHARGE_CONTEXT_LENGTH: String(CTX) },
  });
});
after(async () => {
  await d.stop();
  cleanup(home);
});

async function waiting(model) {
  const r = await get(d.url, '/metrics');
  const m = r.text.match(new RegExp(`^precharge_queue_waiting\\{model="${model}"\\} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : 0;
}

async function metric(line) {
  const r = await get(d.url, '/metrics');
  const m = r.text.split('\n').find((l) => l.startsWith(`${line} `));
  return m ? Number(m.slice(line.length + 1)) : 0;
}

const generate = (model, extra = {}) => ({
  model,
  prompt: 'Tell me a story.',
  stream: false,
  options: { num_predict: 2, temperature: 0 },
  ...extra,
});

async function postFull(path, body) {
  const res = await fetch(d.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: JSON.parse(await res.text()) };
}

test('beyond max_queue waiting requests a model answers 503 with Retry-After, then serves again', async () => {
  // The holder: a stream that generates until the context is full; we read its first line only.
  const ctrl = new AbortController();
  const holder = await fetch(`${d.url}/api/generate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny', prompt: 'Hello', options: { num_predict: CTX, temperature: 0 } }),
    signal: ctrl.signal,
  });
  assert.equal(holder.status, 200);
  const reader = holder.body.getReader();
  assert.equal((await reader.read()).done, false); // it has the model's context now
  assert.equal(await waiting('tiny'), 0);

  // One request waits for the context: max_queue is 1.
  const queued = post(d.url, '/api/generate', generate('tiny'));
  assert.ok(await eventually(async () => (await waiting('tiny')) === 1), 'the second request waits');

  // Every API's next request is refused, and counted.
  const busy = /^server busy: 1 requests queued for model tiny \(max_queue 1\)/;
  const g = await postFull('/api/generate', generate('tiny'));
  assert.equal(g.status, 503);
  assert.equal(g.retryAfter, '1');
  assert.match(g.body.error, busy);
  const c = await postFull('/api/chat', { model: 'tiny', messages: [{ role: 'user', content: 'hi' }], stream: false });
  assert.equal(c.status, 503);
  assert.equal(c.retryAfter, '1');
  assert.match(c.body.error, busy);
  const o = await postFull('/v1/chat/completions', { model: 'tiny', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(o.status, 503);
  assert.equal(o.retryAfter, '1');
  assert.match(o.body.error.message, busy);
  assert.equal(o.body.error.type, 'server_error');
  assert.equal(await metric('precharge_queue_rejected_total{model="tiny"}'), 3);
  assert.equal(await metric('precharge_queue_max'), 1);
  assert.equal(await waiting('tiny'), 1);

  // The queue is per model: another model answers meanwhile.
  const other = await post(d.url, '/api/generate', generate('other'));
  assert.equal(other.status, 200, other.text);

  // The holder goes away: the waiting request runs, and so do new ones.
  ctrl.abort();
  const q = await queued;
  assert.equal(q.status, 200, q.text);
  assert.equal(JSON.parse(q.text).done, true);
  const again = await post(d.url, '/api/generate', generate('tiny'));
  assert.equal(again.status, 200, again.text);
  assert.equal(await waiting('tiny'), 0);
  assert.equal(
    await metric('precharge_http_requests_total{route="/api/generate",method="POST",status="503"}'),
    1,
  );
  assert.equal(await metric('precharge_http_requests_total{route="/api/generate",method="POST",status="200"}'), 4);
});
