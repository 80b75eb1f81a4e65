// metrics.test.mjs - GET /metrics in Prometheus's text format: every line parses, and the
// counters, histograms and gauges move by what a few requests (chats, a 404, a precharge, an
// unload, a restart) make them move.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tempHome, makeModel, startDaemon, post, get, eventually, ndjson, cleanup } from './lib.mjs';

let home, d;

before(async () => {
  home = tempHome('metrics');
  makeModel(home, 'tiny');
  d = await startDaemon({ home });
});
after(async () => {
  await d.stop();
  cleanup(home);
});

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const SAMPLE = new RegExp(
  `^(${NAME})(\\{(?:${LABEL})(?:,${LABEL})*\\})? (NaN|[+-]Inf|[-+]?[0-9]+(?:\\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)$`,
);
const COMMENT = new RegExp(`^# (HELP|TYPE) (${NAME}) (.*)$`);

// Scrape: check the type and the grammar of every line; samples by 'name{labels}' as written,
// and each family's TYPE.
async function scrape() {
  const r = await get(d.url, '/metrics');
  assert.equal(r.status, 200);
  assert.equal(r.type, 'text/plain; version=0.0.4; charset=utf-8');
  const samples = new Map();
  const types = new Map();
  for (const line of r.text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = line.match(COMMENT);
      assert.ok(m, `comment does not parse: ${line}`);
      if (m[1] === 'TYPE') {
        assert.match(m[3], /^(counter|gauge|histogram)$/);
        types.set(m[2], m[3]);
      }
      continue;
    }
    const m = line.match(SAMPLE);
    assert.ok(m, `sample does not parse: ${line}`);
    const family = m[1].replace(/_(bucket|sum|count)$/, '');
    assert.ok(types.has(m[1]) || types.get(family) === 'histogram', `no TYPE before ${line}`);
    assert.ok(!samples.has(m[1] + (m[2] ?? '')), `sample twice: ${line}`);
    samples.set(m[1] + (m[2] ?? ''), Number(m[3]));
  }
  return { text: r.text, samples, types, v: (key) => samples.get(key) ?? 0 };
}

// A histogram's buckets for one label set: cumulative, ending with +Inf == _count.
function histogram(s, name, labels) {
  const buckets = [];
  for (const [key, value] of s.samples) {
    const m = key.match(new RegExp(`^${name}_bucket\\{${labels},le="([^"]+)"\\}$`));
    if (m) buckets.push({ le: m[1], value });
  }
  const count = s.v(`${name}_count{${labels}}`);
  assert.ok(buckets.length > 1, `${name}{${labels}} has buckets`);
  for (let i = 1; i < buckets.length; i++) {
    assert.ok(Number(buckets[i].le) > Number(buckets[i - 1].le) || buckets[i].le === '+Inf');
    assert.ok(buckets[i].value >= buckets[i - 1].value, `${name} buckets are cumulative`);
  }
  assert.equal(buckets.at(-1).le, '+Inf');
  assert.equal(buckets.at(-1).value, count);
  return { count, sum: s.v(`${name}_sum{${labels}}`) };
}

const system = { role: 'system', content: 'You are a form assistant. The form has the fields name, email and phone.' };
const chat = (content, extra = {}) => ({
  model: 'tiny',
  messages: [system, { role: 'user', content }],
  stream: false,
  options: { num_predict: 4, temperature: 0 },
  ...extra,
});

test('the scrape parses, and counters, histograms and gauges follow the requests', async () => {
  const s0 = await scrape();
  for (const [name, type] of [
    ['precharge_http_requests_total', 'counter'],
    ['precharge_time_to_first_token_seconds', 'histogram'],
    ['precharge_prefill_seconds', 'histogram'],
    ['precharge_queue_waiting', 'gauge'],
    ['precharge_memory_budget_bytes', 'gauge'],
  ])
    assert.equal(s0.types.get(name), type, name);
  assert.equal(s0.v('precharge_models_loaded'), 0);

  // A precharge of the system prompt (it loads the model), then its result by id.
  const pre = await post(d.url, '/api/precharge', { model: 'tiny', context: [system], wait: true });
  assert.equal(pre.status, 200, pre.text);
  const id = JSON.parse(pre.text).correlation_id;
  assert.equal((await get(d.url, `/api/precharge/${id}`)).status, 200);

  // Two whole chats and a streamed one, on top of the precharged prefix.
  const replies = [];
  for (const q of ['What is your name?', 'And your email?']) {
    const r = await post(d.url, '/api/chat', chat(q));
    assert.equal(r.status, 200, r.text);
    replies.push(JSON.parse(r.text));
  }
  const streamed = await post(d.url, '/api/chat', chat('Phone?', { stream: true }));
  assert.equal(streamed.status, 200);
  replies.push(ndjson(streamed.text).at(-1));

  // A 404, a 400 and a 405.
  assert.equal((await get(d.url, '/no/such/thing')).status, 404);
  assert.equal((await post(d.url, '/api/chat', '{not json')).status, 400);
  assert.equal((await post(d.url, '/api/tags', {})).status, 405);

  const sum = (k) => replies.reduce((a, r) => a + r[k], 0);
  const m = '{model="tiny"}';
  let s;
  // A stream's tokens are counted when it closes, a moment after its client has the last line.
  assert.ok(
    await eventually(async () => {
      s = await scrape();
      return s.v(`precharge_generated_tokens_total${m}`) === sum('eval_count');
    }),
    'the generated tokens are counted',
  );
  const req = (route, method, status) =>
    s.v(`precharge_http_requests_total{route="${route}",method="${method}",status="${status}"}`) -
    s0.v(`precharge_http_requests_total{route="${route}",method="${method}",status="${status}"}`);
  assert.equal(req('/api/chat', 'POST', 200), 3);
  assert.equal(req('/api/chat', 'POST', 400), 1);
  assert.equal(req('/api/precharge', 'POST', 200), 1);
  assert.equal(req('/api/precharge/{}', 'GET', 200), 1);
  assert.equal(req('other', 'GET', 404), 1);
  assert.equal(req('other', 'POST', 405), 1);
  assert.ok(req('/metrics', 'GET', 200) >= 1); // s0's scrape, counted once it was answered
  assert.ok(!s.text.includes('/no/such/thing'), 'a raw path never becomes a label');
  assert.ok(!s.text.includes(id), 'a raw id never becomes a label');

  // Tokens: the replies' own counts, reused plus prefilled.
  assert.equal(s.v(`precharge_prompt_tokens_total${m}`), sum('prompt_eval_count'));
  assert.equal(s.v(`precharge_prompt_tokens_reused_total${m}`), sum('prompt_cached_count'));
  assert.equal(
    s.v(`precharge_prompt_tokens_prefilled_total${m}`),
    sum('prompt_eval_count') - sum('prompt_cached_count'),
  );
  assert.ok(sum('prompt_cached_count') > 0, 'the chats reused the precharged prefix');

  // One TTFT and one prefill per chat; a precharge is neither.
  const ttft = histogram(s, 'precharge_time_to_first_token_seconds', 'model="tiny"');
  assert.equal(ttft.count, 3);
  assert.ok(ttft.sum > 0);
  assert.equal(histogram(s, 'precharge_prefill_seconds', 'model="tiny"').count, 3);

  // Every chat found its prefix live: the precharge left it in the context.
  assert.equal(s.v('precharge_snapshot_hits_total{model="tiny",tier="live"}'), 3);
  assert.equal(s.v(`precharge_snapshot_misses_total${m}`), 0);

  // One load (the precharge's), resident now, with its memory; the precharge's snapshot is in
  // RAM and on disk.
  assert.equal(s.v(`precharge_model_loads_total${m}`), 1);
  assert.equal(histogram(s, 'precharge_model_load_seconds', 'model="tiny"').count, 1);
  assert.equal(s.v('precharge_models_loaded'), 1);
  assert.ok(s.v(`precharge_model_memory_bytes${m}`) > 0);
  assert.ok(s.v('precharge_memory_used_bytes') >= s.v(`precharge_model_memory_bytes${m}`));
  assert.ok(s.v('precharge_memory_budget_bytes') > 0);
  assert.ok(s.v('precharge_snapshot_bytes{tier="ram"}') > 0);
  assert.ok(s.v('precharge_snapshot_bytes{tier="disk"}') > 0);
  assert.ok(s.v('precharge_snapshot_budget_bytes{tier="disk"}') > 0);
  assert.equal(s.v(`precharge_queue_waiting${m}`), 0);
  assert.equal(s.v('precharge_precharge_queued'), 0);
  assert.equal(s.v('precharge_precharge_running'), 0);

  // An unload: counted with its reason, and the model's gauges go.
  const un = await post(d.url, '/api/generate', { model: 'tiny', prompt: '', keep_alive: 0 });
  assert.equal(un.status, 200, un.text);
  // As in Ollama, the reply comes when the unload is asked for; the pool's timer does it.
  assert.ok(await eventually(async () => (await scrape()).v('precharge_models_loaded') === 0));
  s = await scrape();
  assert.equal(s.v('precharge_model_unloads_total{model="tiny",reason="unloaded"}'), 1);
  assert.equal(s.v('precharge_models_loaded'), 0);
  assert.ok(!s.samples.has(`precharge_model_memory_bytes${m}`));

  // The unload kept the model's sequences in RAM: the next chat restores its prefix from there.
  const fromRam = await post(d.url, '/api/chat', chat('Which fields are required?'));
  assert.equal(fromRam.status, 200, fromRam.text);
  s = await scrape();
  assert.equal(s.v('precharge_snapshot_hits_total{model="tiny",tier="ram"}'), 1);
  assert.equal(s.v(`precharge_model_loads_total${m}`), 2);
});

test('after a restart a chat restores the precharged prefix from disk', async () => {
  await d.stop();
  d = await startDaemon({ home });
  const r = await post(d.url, '/api/chat', chat('Is the phone optional?'));
  assert.equal(r.status, 200, r.text);
  assert.ok(JSON.parse(r.text).prompt_cached_count > 0);
  const s = await scrape();
  assert.equal(s.v('precharge_snapshot_hits_total{model="tiny",tier="disk"}'), 1);
  assert.equal(s.v('precharge_snapshot_hits_total{model="tiny",tier="live"}'), 0);
  assert.ok(s.v('precharge_snapshot_bytes{tier="disk"}') > 0);
});

test('HEAD /metrics answers like GET, without a body', async () => {
  const r = await fetch(`${d.url}/metrics`, { method: 'HEAD' });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  assert.equal(await r.text(), '');
});
