// precharge.test.mjs - the precharge API over HTTP: queued and blocking forms, results, model
// state, the precharged list, the event stream, token equality with a later chat request, and
// a restore from disk after the daemon restarts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { BIN, tempHome, makeModel, startDaemon, post, get, del, cleanup, sseEvents, eventually } from './lib.mjs';

let home, d;
const system = { role: 'system', content: 'You are a form assistant. The form has the fields name, ssn and dob. Be brief.' };

before(async () => {
  home = tempHome('precharge');
  makeModel(home, 'tiny');
  d = await startDaemon({ home });
});
after(async () => {
  await d.stop();
  cleanup(home);
});

// Read SSE frames from /api/events until pred says stop (bounded).
async function collectEvents(url, stream, pred, { max = 200, ms = 30000 } = {}) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), ms);
  const res = await fetch(`${url}/api/events${stream ? `?stream=${stream}` : ''}`, { signal: ctrl.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/event-stream/);
  const events = [];
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  const ready = reader.read(); // the stream's opening comment: subscribed from here on
  await ready;
  return {
    events,
    async until() {
      try {
        while (events.length < max) {
          const { value, done } = await reader.read();
          if (done) break;
          buf = sseEvents(buf + dec.decode(value), events);
          if (pred(events)) break;
        }
      } finally {
        clearTimeout(timer);
        ctrl.abort();
      }
      return events;
    },
  };
}

test('a precharge returns a correlation id at once, then a result', async () => {
  const r = await post(d.url, '/api/precharge', { model: 'tiny', category: 'local', context: [system], priority: 'high' });
  assert.equal(r.status, 202);
  const q = JSON.parse(r.text);
  assert.match(q.correlation_id, /^[0-9a-f-]{36}$/);
  let res;
  for (let i = 0; i < 300; i++) {
    res = JSON.parse((await get(d.url, `/api/precharge/${q.correlation_id}`)).text);
    if (!['queued', 'running'].includes(res.status)) break;
    await new Promise((ok) => setTimeout(ok, 50));
  }
  assert.equal(res.status, 'ready');
  assert.equal(res.model_id, 'tiny');
  assert.equal(res.category, 'local');
  assert.ok(res.context_tokens > 10);
  for (const k of ['load_time_ms', 'prefill_time_ms']) assert.ok(Number.isInteger(res[k]), k);
  assert.equal(res.error, null);

  const again = JSON.parse((await post(d.url, '/api/precharge', { model_id: 'tiny', context: [system], wait: true, timeout: 30 })).text);
  assert.equal(again.status, 'already_warm');

  const state = JSON.parse((await get(d.url, '/api/models/tiny/state')).text);
  assert.equal(state.state, 'precharged');
  assert.equal(state.warm, true);
  const list = JSON.parse((await get(d.url, '/api/precharged')).text).precharged;
  const mine = list.find((p) => p.model_id === 'tiny' && p.context_tokens === res.context_tokens);
  assert.ok(mine, JSON.stringify(list));
  assert.equal(mine.category, 'local');
  assert.ok(['ram', 'disk'].includes(mine.tier));
  assert.ok(Date.parse(mine.since) > 0);
});

test('a later chat request reuses every precharged token', async () => {
  const pre = JSON.parse((await post(d.url, '/api/precharge', { model: 'tiny', context: [system], wait: true })).text);
  const chat = JSON.parse((await post(d.url, '/api/chat', {
    model: 'tiny', stream: false, options: { num_predict: 2 },
    messages: [system, { role: 'user', content: 'What is the second field?' }],
  })).text);
  assert.ok(chat.prompt_eval_count > pre.context_tokens);
  assert.equal(chat.prompt_cached_count, pre.context_tokens, 'the precharged tokens lead the request');
  // The OpenAI route renders the same messages the same way (a context of its own, so that
  // nothing else live shares more than the precharge).
  const own = { role: 'system', content: 'You check invoices: number, date, total. Be brief.' };
  const pre2 = JSON.parse((await post(d.url, '/api/precharge', { model: 'tiny', context: [own], wait: true })).text);
  const oai = JSON.parse((await post(d.url, '/v1/chat/completions', {
    model: 'tiny', max_tokens: 2, messages: [own, { role: 'user', content: 'Which field is third?' }],
  })).text);
  assert.equal(oai.usage.prompt_tokens_details.cached_tokens, pre2.context_tokens);
  // /api/generate with a system prompt renders the same leading message.
  const gen = JSON.parse((await post(d.url, '/api/generate', {
    model: 'tiny', stream: false, system: system.content, prompt: 'And the third?', options: { num_predict: 2 },
  })).text);
  assert.ok(gen.prompt_cached_count >= pre.context_tokens);
});

test('events: the sequence for a precharge and for a request, filtered by stream', async () => {
  const sub = await collectEvents(d.url, '', (evs) => evs.some((e) => e.event === 'LlmCompleted'));
  const ctx = [{ role: 'system', content: `A new context ${Date.now()}` }];
  const r = JSON.parse((await post(d.url, '/api/precharge', { model: 'tiny', context: ctx, wait: true })).text);
  await post(d.url, '/api/chat', { model: 'tiny', stream: false, messages: [...ctx, { role: 'user', content: 'hi' }], options: { num_predict: 1 } });
  const evs = await sub.until();
  const names = evs.map((e) => e.event);
  const i = names.indexOf('PrechargeRequested');
  assert.ok(i >= 0 && names.indexOf('PrechargeCompleted') > i, names.join(','));
  assert.ok(names.indexOf('LlmRequested') > names.indexOf('PrechargeCompleted'));
  assert.ok(names.indexOf('LlmCompleted') > names.indexOf('LlmRequested'));
  const done = evs.find((e) => e.event === 'PrechargeCompleted');
  assert.equal(done.data.correlation_id, r.correlation_id);
  assert.equal(done.metadata.correlation_id, r.correlation_id);
  assert.equal(done.stream, 'precharge:responses');
  const llm = evs.filter((e) => e.event.startsWith('Llm'));
  assert.equal(llm[0].data.correlation_id, llm[1].data.correlation_id);

  // Only the stream asked for.
  const only = await collectEvents(d.url, 'precharge:responses', (e) => e.length >= 1);
  await post(d.url, '/api/precharge', { model: 'tiny', context: [{ role: 'system', content: `other ${Date.now()}` }], wait: true });
  const got = await only.until();
  assert.deepEqual([...new Set(got.map((e) => e.event))], ['PrechargeCompleted']);

  const bad = await get(d.url, '/api/events?stream=nope');
  assert.equal(bad.status, 400);
  assert.match(JSON.parse(bad.text).error, /unknown stream "nope"/);
});

test('bad precharges get clear errors', async () => {
  const cases = [
    [{ context: [system] }, 400, /"model" is required/],
    [{ model: 'tiny' }, 400, /needs "context"/],
    [{ model: 'tiny', context: [] }, 400, /non-empty array/],
    [{ model: 'tiny', context: [{ role: 'x', content: 'y' }] }, 400, /"x" is not one of/],
    [{ model: 'tiny', context: [system], priority: 'urgent' }, 400, /priority "urgent"/],
    [{ model: 'tiny', context: [system], category: 'webgpu' }, 400, /category "webgpu".*"mcl"/],
    [{ model: 'tiny', context: [system], correlation_id: 'a b' }, 400, /"correlation_id" may hold only/],
    [{ model: 'tiny', context: [system], correlation_id: 'x'.repeat(65) }, 400, /"correlation_id" must be 1 to 64/],
    [{ model: 'tiny', context: [system], correlation_id: 7 }, 400, /correlation_id/],
    [{ model: 'tiny', context: [system], wait: true, timeout: -1 }, 400, /timeout/],
    [{ model: 'nope', context: [system] }, 404, /model "nope" not found/],
    [{ model: '../x', context: [system] }, 400, /invalid model name/],
  ];
  for (const [body, status, re] of cases) {
    const r = await post(d.url, '/api/precharge', body);
    assert.equal(r.status, status, JSON.stringify(body));
    assert.match(JSON.parse(r.text).error, re);
  }
  // Over the limit: a 400 that names it, as the inference routes give (issue 13).
  const over = await post(d.url, '/api/precharge', { model: 'tiny', prompt: 'word '.repeat(5000), wait: true });
  assert.equal(over.status, 400);
  const long = JSON.parse(over.text);
  assert.equal(long.status, 'failed');
  assert.match(long.error, /^the context is \d+ tokens; the limit is \d+ \(context length \d+, less one token for the answer\)$/);
  assert.equal((await get(d.url, '/api/precharge/00000000-0000-4000-8000-000000000000')).status, 404);
});

test('two contexts for one model are two precharges, each ready with its own tokens', async () => {
  // Issue #14's repro: Alice's form and, 50 ms later, Bob's, both waiting.
  const alice = [{ role: 'system', content: `Alice's form ${Date.now()}: name, email, phone number and street address.` }];
  const bob = [{ role: 'system', content: `Bob's form ${Date.now()}: ssn.` }];
  const first = post(d.url, '/api/precharge', { model: 'tiny', context: alice, wait: true });
  await new Promise((ok) => setTimeout(ok, 50));
  const [a, b] = (await Promise.all([first, post(d.url, '/api/precharge', { model: 'tiny', context: bob, wait: true })]))
    .map((r) => JSON.parse(r.text));
  assert.notEqual(a.correlation_id, b.correlation_id);
  assert.equal(a.status, 'ready');
  assert.equal(b.status, 'ready');
  assert.notEqual(a.context_tokens, b.context_tokens);
  const chat = JSON.parse((await post(d.url, '/api/chat', {
    model: 'tiny', stream: false, options: { num_predict: 1 },
    messages: [...alice, { role: 'user', content: 'Which field is first?' }],
  })).text);
  assert.equal(chat.prompt_cached_count, a.context_tokens, "Alice's whole context is reused");
});

test('category mcl runs on the local provider and is reported as asked', async () => {
  const ctx = [{ role: 'system', content: 'Private: the user types a social security number here.' }];
  const r = JSON.parse((await post(d.url, '/api/precharge', { model: 'tiny', category: 'mcl', context: ctx, wait: true })).text);
  assert.equal(r.status, 'ready', JSON.stringify(r));
  assert.equal(r.category, 'mcl');
  const list = JSON.parse((await get(d.url, '/api/precharged')).text).precharged;
  assert.ok(list.some((p) => p.category === 'mcl' && p.context_tokens === r.context_tokens), JSON.stringify(list));
});

test('keys, caller ids and a snapshot that cannot be stored', async () => {
  // A long debounce, so that keyed precharges stay queued while the test looks at them.
  const h = tempHome('precharge-keys');
  makeModel(h, 'tiny');
  const d2 = await startDaemon({ home: h, env: { PRECHARGE_DEBOUNCE: '5s' } });
  try {
    const one = [{ role: 'system', content: 'Form 9 has a name field.' }];
    const two = [{ role: 'system', content: 'Form 9 has a name field and an email field.' }];
    const a = JSON.parse((await post(d2.url, '/api/precharge', { model: 'tiny', key: 'form-9', context: one, correlation_id: 'app-1' })).text);
    assert.equal(a.correlation_id, 'app-1');
    assert.equal(a.status, 'queued');
    const dup = await post(d2.url, '/api/precharge', { model: 'tiny', context: two, correlation_id: 'app-1' });
    assert.equal(dup.status, 409);
    assert.match(JSON.parse(dup.text).error, /correlation_id "app-1" is a precharge that is queued/);
    // The same work under another caller's id joins it, and answers under that id.
    const joined = JSON.parse((await post(d2.url, '/api/precharge', { model: 'tiny', context: one, correlation_id: 'app-2' })).text);
    assert.equal(joined.correlation_id, 'app-2');
    assert.equal(joined.merged_into, 'app-1');
    const b = JSON.parse((await post(d2.url, '/api/precharge', { model: 'tiny', key: 'form-9', context: two, wait: true })).text);
    assert.equal(b.status, 'ready');
    for (const id of ['app-1', 'app-2']) {
      const old = JSON.parse((await get(d2.url, `/api/precharge/${id}`)).text);
      assert.equal(old.status, 'superseded', id);
      assert.equal(old.superseded_by, b.correlation_id);
      assert.equal(old.correlation_id, id);
    }
    assert.equal(b.snapshot_tier, 'disk');

    // The snapshot directory becomes a file: the precharge is ready, and says where it is kept.
    rmSync(`${h}/snapshots`, { recursive: true });
    writeFileSync(`${h}/snapshots`, '');
    const c = JSON.parse((await post(d2.url, '/api/precharge', { model: 'tiny', prompt: 'Kept in RAM only.', wait: true })).text);
    assert.equal(c.status, 'ready');
    assert.equal(c.error, null);
    assert.equal(c.snapshot_tier, 'ram');
    assert.match(c.snapshot_error, /the snapshot was not stored: .*Not a directory/);
  } finally {
    await d2.stop();
    cleanup(h);
  }
});

test('the precharged list follows the model files, and lists the remote provider\'s contexts', async () => {
  const rhome = tempHome('precharged-remote');
  const h = tempHome('precharged-local');
  makeModel(rhome, 'rtiny');
  makeModel(h, 'gone');
  makeModel(h, 'swapped');
  makeModel(h, 'removed');
  const r = await startDaemon({ home: rhome, env: { OLLAMA_URL: 'off' } });
  const l = await startDaemon({ home: h, env: { OLLAMA_URL: r.url, PRECHARGE_OLLAMA_POLL: '100' } });
  const list = async () => JSON.parse((await get(l.url, '/api/precharged')).text).precharged;
  const snaps = () => readdirSync(`${h}/snapshots`).filter((f) => f.endsWith('.snap'));
  try {
    const ctx = [{ role: 'system', content: 'The form asks for a parcel\'s weight and size.' }];
    for (const model of ['gone', 'swapped', 'removed', 'rtiny']) {
      const p = JSON.parse((await post(l.url, '/api/precharge', { model, context: ctx, wait: true })).text);
      assert.equal(p.status, 'ready', `${model}: ${JSON.stringify(p)}`);
    }
    const before = await list();
    assert.deepEqual(before.map((p) => p.model_id).sort(), ['gone', 'removed', 'rtiny', 'swapped']);
    const remote = before.find((p) => p.model_id === 'rtiny');
    assert.equal(remote.category, 'ollama');
    assert.equal(remote.provider, 'ollama');
    assert.equal(remote.tier, 'remote');
    assert.ok(remote.context_tokens > 5);
    assert.equal(snaps().length, 3);

    // The remote server unloads it: its context is gone there, and from the list.
    await post(r.url, '/api/generate', { model: 'rtiny', keep_alive: 0 });
    assert.ok(await eventually(async () => !(await list()).some((p) => p.model_id === 'rtiny')));

    // /api/delete takes the model's snapshots with it; a replaced file and a file removed by
    // hand drop theirs at the next look.
    const sub = await fetch(`${l.url}/api/events?stream=models`);
    const reader = sub.body.getReader();
    await reader.read();
    assert.equal((await del(l.url, '/api/delete', { model: 'gone' })).status, 200);
    assert.ok(!(await list()).some((p) => p.model_id === 'gone'));
    makeModel(h, 'swapped', 'tiny'); // a new file under the same name
    rmSync(`${h}/models/removed.gguf`);
    assert.deepEqual((await list()).map((p) => p.model_id), []);
    assert.equal(snaps().length, 0);

    // A file deleted from disk: unavailable, and said on the bus.
    const st = JSON.parse((await get(l.url, '/api/models/removed/state')).text);
    assert.equal(st.state, 'unavailable');
    assert.equal(st.warm, false);
    const events = [];
    const dec = new TextDecoder();
    let buf = '';
    while (!events.some((e) => e.event === 'ModelsDiscovered' && (e.data.removed ?? []).includes('removed'))) {
      const { value } = await reader.read();
      buf = sseEvents(buf + dec.decode(value), events);
    }
    const gone = events.find((e) => (e.data.removed ?? []).includes('gone'));
    assert.ok(gone, JSON.stringify(events));
    assert.equal(gone.data.category, 'local');
    await reader.cancel();
    // And it comes back when its file does.
    makeModel(h, 'removed');
    assert.equal(JSON.parse((await get(l.url, '/api/models/removed/state')).text).state, 'pretrained');
  } finally {
    await l.stop();
    await r.stop();
    cleanup(h);
    cleanup(rhome);
  }
});

test('after a restart, a request restores the precharged context from disk', async () => {
  const ctx = [{ role: 'system', content: 'Persistent context: the user fills a tax form with twelve fields.' }];
  const pre = JSON.parse((await post(d.url, '/api/precharge', { model: 'tiny', context: ctx, wait: true })).text);
  assert.equal(pre.status, 'ready');
  assert.equal(await d.stop(), 0);

  d = await startDaemon({ home });
  const list = JSON.parse((await get(d.url, '/api/precharged')).text).precharged;
  assert.ok(list.some((p) => p.context_tokens === pre.context_tokens && p.tier === 'disk'));
  const chat = JSON.parse((await post(d.url, '/api/chat', {
    model: 'tiny', stream: false, options: { num_predict: 1 },
    messages: [...ctx, { role: 'user', content: 'How many fields?' }],
  })).text);
  assert.equal(chat.prompt_cached_count, pre.context_tokens);
  assert.match(d.log(), /indexed \d+ snapshots/);

  // A precharge of the same context is warm without a prefill.
  const again = JSON.parse((await post(d.url, '/api/precharge', { model: 'tiny', context: ctx, wait: true })).text);
  assert.equal(again.status, 'already_warm');
});

test('the CLI precharges a system prompt from a file and lists snapshots', () => {
  const file = `${home}/system.txt`;
  writeFileSync(file, 'You answer questions about a shipping form: sender, recipient, weight.');
  const env = { ...process.env, PRECHARGE_HOST: d.url.replace('http://', '') };
  const r = spawnSync(BIN, ['precharge', 'tiny', '--system', file, '--wait'], { env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.status, 'ready');
  const s = spawnSync(BIN, ['snapshots'], { env, encoding: 'utf8' });
  assert.equal(s.status, 0, s.stderr);
  assert.match(s.stdout, /^MODEL\s+CATEGORY\s+TOKENS\s+TIER/);
  assert.match(s.stdout, new RegExp(`tiny\\s+local\\s+${out.context_tokens}\\s+(ram|disk)`));
  const bad = spawnSync(BIN, ['precharge', 'tiny'], { env, encoding: 'utf8' });
  assert.equal(bad.status, 2);
  const missing = spawnSync(BIN, ['precharge', 'tiny', '--system', '/nonexistent'], { env, encoding: 'utf8' });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /--system: open "\/nonexistent"/);
});

test('a generation that shifts its context keeps the prefix it shares with a precharged sequence: the precharge stays whole', async () => {
  // A precharged prompt of more than half the window: a plain shift (keep num_keep, drop half of
  // the rest) would move cells that the precharged sequence shares.
  const prompt = Array.from({ length: 15 }, (_, i) => `p${i}`).join(' ');
  const pre = JSON.parse((await post(d.url, '/api/precharge', { model: 'tiny', prompt, wait: true })).text);
  assert.equal(pre.status, 'ready', JSON.stringify(pre));
  assert.ok(pre.context_tokens > 24 && pre.context_tokens < 47, `${pre.context_tokens} tokens`);
  const gen = (p, options) => post(d.url, '/api/generate', { model: 'tiny', prompt: p, raw: true, stream: false, options: { temperature: 0, ...options } });
  const first = JSON.parse((await gen(prompt, { num_ctx: 48, num_predict: 60 })).text);
  assert.equal(first.eval_count, 60, JSON.stringify(first));
  assert.ok(first.prompt_eval_cached_count >= pre.context_tokens - 1, 'the precharged sequence was reused');
  // The precharged sequence's cells are where they were: a copy of them decodes on (moved cells
  // would make llama_decode refuse the batch's positions), twice.
  for (const p of [`${prompt} q`, prompt]) {
    const r = await gen(p, { num_predict: 3 });
    assert.equal(r.status, 200, r.text);
    const o = JSON.parse(r.text);
    assert.equal(o.eval_count, 3);
    assert.ok(o.prompt_eval_cached_count >= pre.context_tokens - 1);
  }
});
