// provider_ollama.test.mjs - the remote provider `ollama`, against a second precharge daemon on
// another loopback port acting as the Ollama server (our API is Ollama-compatible): discovery,
// the remote models in the model lists, their states from the server's /api/ps, load and unload
// through keep_alive, precharge there, proxied streaming (Ollama's NDJSON and OpenAI's SSE),
// keep-warm (always, and a daily window), and an unreachable server that makes its models
// unavailable and comes back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempHome, makeModel, startDaemon, post, get, del, ndjson, sseEvents, eventually, cleanup } from './lib.mjs';

const { default: OpenAI } = await import('openai');

const json = async (d, path) => JSON.parse((await get(d.url, path)).text);
const remotePs = async (r) => (await json(r, '/api/ps')).models.map((m) => m.name);
const state = async (d, model) => (await json(d, `/api/models/${model}/state`)).state;
const system = { role: 'system', content: 'You are a form assistant. The form has the fields name, email and phone. Be brief.' };

// Read a streamed body up to its first chunk; the rest is read by rest().
async function firstChunk(url, path, body) {
  const res = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  const { value } = await reader.read();
  return {
    res,
    first: dec.decode(value),
    async rest() {
      let text = '';
      for (;;) {
        const { value: v, done } = await reader.read();
        if (done) return text;
        text += dec.decode(v);
      }
    },
  };
}

// SSE frames from /api/events, from the moment this returns; stop() ends the subscription.
async function subscribe(url, stream) {
  const ctrl = new AbortController();
  const res = await fetch(`${url}/api/events?stream=${stream}`, { signal: ctrl.signal });
  const reader = res.body.getReader();
  await reader.read(); // the opening comment: subscribed from here on
  const events = [];
  const dec = new TextDecoder();
  let buf = '';
  const pump = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf = sseEvents(buf + dec.decode(value), events);
      }
    } catch {
      // aborted
    }
  })();
  return { events, stop: async () => { ctrl.abort(); await pump; } };
}

test('ollama provider: discovery, lists, states, precharge, proxy, re-warm, outage and recovery', async () => {
  const rhome = tempHome('remote');
  const lhome = tempHome('local');
  makeModel(rhome, 'rtiny');
  makeModel(rhome, 'rplain');
  makeModel(lhome, 'ltiny');
  let r = await startDaemon({ home: rhome, env: { OLLAMA_URL: 'off' } });
  const port = new URL(r.url).port;
  writeFileSync(join(lhome, 'config.json'), JSON.stringify({
    preload: ['ltiny', { model: 'rtiny', keepWarm: 'always', maxRetries: 100, retryDelayMs: 50 }],
    ollama_url: r.url,
    health_check_interval_ms: 100,
  }));
  const l = await startDaemon({ home: lhome, env: { PRECHARGE_OLLAMA_POLL: '100' } });
  const openai = new OpenAI({ baseURL: `${l.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  try {
    // Preloaded on the remote server through /api/generate; ready counts it.
    assert.ok(await eventually(async () => (await get(l.url, '/ready')).status === 200));
    const st = await json(l, '/api/models/status');
    assert.equal(st.rtiny.provider, 'ollama');
    assert.equal(st.rtiny.status, 'ready');
    assert.equal(st.ltiny.provider, 'local');
    assert.deepEqual(await remotePs(r), ['rtiny:latest']);
    // keep_alive -1: never expires.
    assert.ok(Date.parse((await json(r, '/api/ps')).models[0].expires_at) > Date.now() + 365 * 864e5);

    // Discovered models join the lists with their provider: /api/tags, /v1/models, /api/providers.
    const tags = (await json(l, '/api/tags')).models;
    const rt = tags.find((m) => m.name === 'rtiny:latest');
    assert.equal(rt.provider, 'ollama');
    assert.equal(rt.available, true);
    assert.ok(rt.size > 0); // the server's own entry, with its fields
    const v1 = (await openai.models.list()).data;
    const vr = v1.find((m) => m.id === 'rplain:latest');
    assert.equal(vr.owned_by, 'ollama');
    assert.equal(vr.provider, 'ollama');
    assert.ok(vr.created > 0);
    assert.ok(v1.find((m) => m.id === 'ltiny:latest'), 'local models by the name /api/tags lists');
    assert.equal((await openai.models.retrieve('rplain')).id, 'rplain:latest');
    const prov = await json(l, '/api/providers');
    assert.equal(prov.ollama.url, r.url);
    assert.equal(prov.ollama.available, true);
    assert.deepEqual(prov.ollama.loaded.map((m) => m.name), ['rtiny:latest']);

    // Our /api/ps lists the server's loaded models too, in Ollama's shape, marked.
    const ps = (await json(l, '/api/ps')).models;
    const pr = ps.find((m) => m.name === 'rtiny:latest');
    assert.equal(pr.provider, 'ollama');
    assert.ok(pr.expires_at && pr.size > 0 && pr.details);
    assert.equal(ps.find((m) => m.name === 'ltiny:latest').provider, 'local');

    // States come from the server's /api/ps: loaded is precharged, not loaded is pretrained.
    assert.equal(await state(l, 'rtiny'), 'precharged');
    assert.equal(await state(l, 'rplain'), 'pretrained');
    assert.equal((await json(l, '/api/models/rplain/state')).provider, 'ollama');
    // Load and unload by the lifecycle endpoints: /api/generate with keep_alive on the server.
    const ld = await post(l.url, '/v1/models/rplain/load', { keep_alive: '10m' });
    assert.equal(ld.status, 200, ld.text);
    assert.equal(JSON.parse(ld.text).provider, 'ollama');
    assert.ok((await remotePs(r)).includes('rplain:latest'));
    assert.ok(await eventually(async () => (await state(l, 'rplain')) === 'precharged'));
    // Pinned there is keep_alive -1; unpinned, the server's default again.
    const expires = async (name) => Date.parse((await json(r, '/api/ps')).models.find((m) => m.name === name).expires_at);
    assert.equal((await post(l.url, '/v1/models/rplain/pin', { pinned: true })).status, 200);
    assert.ok((await expires('rplain:latest')) > Date.now() + 365 * 864e5);
    assert.equal((await post(l.url, '/v1/models/rplain/pin', { pinned: false })).status, 200);
    assert.ok((await expires('rplain:latest')) < Date.now() + 864e5);
    // Shown by the server.
    const sh = await post(l.url, '/api/show', { model: 'rplain' });
    assert.equal(sh.status, 200, sh.text);
    assert.equal(JSON.parse(sh.text).details.family, 'llama');
    const ul = await del(l.url, '/v1/models/rplain');
    assert.equal(ul.status, 200, ul.text);
    assert.ok(!(await remotePs(r)).includes('rplain:latest'));
    assert.ok(await eventually(async () => (await state(l, 'rplain')) === 'pretrained'));

    // Precharge there: /api/chat with the context and keep_alive; the result and the events as
    // for a local precharge.
    const sub = await subscribe(l.url, 'precharge:requests,precharge:responses');
    const pc = await post(l.url, '/api/precharge', { model: 'rplain', context: [system], wait: true });
    assert.equal(pc.status, 200, pc.text);
    const res = JSON.parse(pc.text);
    assert.equal(res.status, 'ready');
    assert.equal(res.category, 'ollama');
    assert.equal(res.model_id, 'rplain');
    assert.ok(res.context_tokens > 10, pc.text);
    assert.ok(res.prefill_time_ms >= 0 && res.load_time_ms >= 0);
    assert.equal(res.error, null);
    assert.ok(await eventually(async () => sub.events.some((e) => e.event === 'PrechargeCompleted')));
    await sub.stop();
    const reqEv = sub.events.find((e) => e.event === 'PrechargeRequested');
    const doneEv = sub.events.find((e) => e.event === 'PrechargeCompleted');
    assert.equal(reqEv.data.category, 'ollama');
    assert.equal(reqEv.data.correlation_id, res.correlation_id);
    assert.equal(doneEv.data.correlation_id, res.correlation_id);
    assert.equal(doneEv.data.status, 'ready');
    assert.equal((await json(l, `/api/precharge/${res.correlation_id}`)).status, 'ready');
    // The server holds the model with the context prefilled: the question pays for itself.
    assert.ok((await remotePs(r)).includes('rplain:latest'));
    assert.ok(await eventually(async () => (await state(l, 'rplain')) === 'precharged'));
    const q = await post(l.url, '/api/chat', { model: 'rplain', stream: false, messages: [system, { role: 'user', content: 'My name?' }], options: { num_predict: 1 } });
    assert.equal(q.status, 200, q.text);
    // All but the end of the precharged context (the assistant header that the question's own
    // turn replaces) comes from the server's cache; rplain was unloaded before, so none would.
    assert.ok(JSON.parse(q.text).prompt_cached_count >= res.context_tokens - 8, q.text);
    // A category must be where the model is.
    assert.equal((await post(l.url, '/api/precharge', { model: 'ltiny', category: 'ollama', prompt: 'x' })).status, 404);
    assert.equal((await post(l.url, '/api/precharge', { model: 'rplain', category: 'local', prompt: 'x' })).status, 404);
    assert.equal((await post(l.url, '/api/precharge', { model: 'rplain', category: 'browser', prompt: 'x' })).status, 400);

    // Proxied with streaming intact: several NDJSON lines, the last one done.
    const g = await post(l.url, '/api/generate', { model: 'rtiny', prompt: 'hi', options: { num_predict: 3 } });
    assert.equal(g.status, 200);
    assert.match(g.type, /ndjson/);
    const lines = ndjson(g.text);
    assert.ok(lines.length >= 2);
    assert.equal(lines.at(-1).done, true);
    assert.equal(lines.at(-1).eval_count, 3);
    const c = await post(l.url, '/api/chat', { model: 'rtiny:latest', stream: false, messages: [{ role: 'user', content: 'hi' }], options: { num_predict: 2 } });
    assert.equal(c.status, 200);
    assert.equal(JSON.parse(c.text).done, true);
    // The server's errors come back as they are.
    const bad = await post(l.url, '/api/generate', { model: 'rtiny', prompt: 'hi', options: { num_predict: 'x' } });
    assert.equal(bad.status, 400);

    // OpenAI's routes go to the server's /v1, SSE chunk by chunk: the first chunk is here while
    // the server is still generating (the model is active), and [DONE] ends it.
    const s = await firstChunk(l.url, '/v1/chat/completions', { model: 'rtiny', stream: true, max_tokens: 400, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(s.res.status, 200);
    assert.match(s.res.headers.get('content-type'), /text\/event-stream/);
    assert.match(s.first, /^data: /);
    assert.equal(await state(l, 'rtiny'), 'active');
    const restText = s.first + (await s.rest());
    const frames = restText.split('\n\n').filter((f) => f.startsWith('data: '));
    assert.ok(frames.length >= 3);
    assert.equal(frames.at(-1), 'data: [DONE]');
    assert.equal(JSON.parse(frames[0].slice(6)).object, 'chat.completion.chunk');
    assert.ok(await eventually(async () => (await state(l, 'rtiny')) === 'precharged'));
    // Through the openai client, streamed and not.
    let text = '';
    for await (const chunk of await openai.chat.completions.create({ model: 'rtiny', stream: true, max_tokens: 4, messages: [{ role: 'user', content: 'hi' }] }))
      text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(typeof text, 'string');
    const cmp = await openai.completions.create({ model: 'rtiny', prompt: 'Once', max_tokens: 2 });
    assert.equal(cmp.object, 'text_completion');
    assert.equal(cmp.usage.completion_tokens, 2);

    // Unload is keep_alive 0; the health check (/api/ps) finds it gone and warms it again.
    const u = await post(l.url, '/api/generate', { model: 'rtiny', keep_alive: 0 });
    assert.equal(u.status, 200);
    assert.ok(await eventually(async () => (await json(l, '/api/models/status')).rtiny.warmups >= 2));
    assert.ok((await remotePs(r)).includes('rtiny:latest'));

    // The server goes away: its models are unavailable, one warning, no storm.
    await r.stop();
    assert.ok(await eventually(async () => (await json(l, '/api/providers')).ollama.available === false));
    const down = await post(l.url, '/api/generate', { model: 'rtiny', prompt: 'hi', stream: false });
    assert.equal(down.status, 503);
    assert.match(JSON.parse(down.text).error, /unavailable/);
    assert.ok(JSON.parse(down.text).error.includes(r.url), down.text); // names the server
    const vdown = await post(l.url, '/v1/chat/completions', { model: 'rtiny', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(vdown.status, 503);
    assert.ok(JSON.parse(vdown.text).error.message.includes(r.url), vdown.text);
    const pdown = JSON.parse((await post(l.url, '/api/precharge', { model: 'rplain', prompt: 'x', wait: true })).text);
    assert.equal(pdown.status, 'failed');
    assert.equal(pdown.category, 'ollama');
    assert.ok(pdown.error.includes(r.url), pdown.error);
    assert.equal((await json(l, '/api/tags')).models.find((m) => m.name === 'rtiny:latest').available, false);
    assert.equal(await state(l, 'rtiny'), 'unavailable');
    assert.equal(await state(l, 'rplain'), 'unavailable');
    assert.equal((await json(l, '/api/providers')).ollama.loaded.length, 0);
    assert.ok(!(await json(l, '/api/ps')).models.some((m) => m.provider === 'ollama'));
    // Twenty polls while it is down (and keep-warm retrying): far fewer lines than polls.
    const before = l.log().split('\n').length;
    await new Promise((res) => setTimeout(res, 2000));
    const during = l.log().split('\n').slice(before - 1);
    assert.ok(during.length < 10, during.join('\n'));
    assert.equal(l.log().match(/its models are unavailable/g).length, 1);
    // Local models are untouched.
    const lg = await post(l.url, '/api/generate', { model: 'ltiny', prompt: 'hi', stream: false, options: { num_predict: 1 } });
    assert.equal(lg.status, 200);

    // It comes back on the same port: the provider recovers by itself, and keep-warm warms it.
    r = await startDaemon({ home: rhome, env: { OLLAMA_URL: 'off' }, args: ['--host', `127.0.0.1:${port}`] });
    assert.ok(await eventually(async () => (await json(l, '/api/providers')).ollama.available === true));
    assert.match(l.log(), /is available: 2 models/);
    assert.ok(await eventually(async () => (await remotePs(r)).includes('rtiny:latest')));
    assert.ok(await eventually(async () => (await json(l, '/api/models/status')).rtiny.status === 'ready'));
    assert.ok(await eventually(async () => (await state(l, 'rtiny')) === 'precharged'));
    assert.equal(await state(l, 'rplain'), 'pretrained');
    const back = await post(l.url, '/api/generate', { model: 'rtiny', prompt: 'hi', stream: false, options: { num_predict: 1 } });
    assert.equal(back.status, 200);
    const vback = await openai.chat.completions.create({ model: 'rtiny', max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(vback.object, 'chat.completion');
  } finally {
    await l.stop();
    await r.stop();
    cleanup(rhome);
    cleanup(lhome);
  }
});

// "HH:MM-HH:MM" from minutes after midnight, wrapping.
const hhmm = (min) => {
  const m = ((min % 1440) + 1440) % 1440;
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
};

// The daemon runs in UTC (TZ), so that the windows are computed around its "now": one holds
// now with two hours to spare either side, the other starts three hours from now.
test('keep-warm window: warmed again inside it, left to expire outside it', async () => {
  const now = new Date();
  const min = now.getUTCHours() * 60 + now.getUTCMinutes();
  const inside = `${hhmm(min - 120)}-${hhmm(min + 120)}`;
  const outside = `${hhmm(min + 180)}-${hhmm(min + 300)}`;
  const rhome = tempHome('remote-win');
  const lhome = tempHome('local-win');
  makeModel(rhome, 'rin');
  makeModel(rhome, 'rout');
  makeModel(lhome, 'lin');
  makeModel(lhome, 'lout');
  const r = await startDaemon({ home: rhome, env: { OLLAMA_URL: 'off' } });
  const spec = (model, keepWarm) => ({ model, keepWarm, maxRetries: 100, retryDelayMs: 50 });
  writeFileSync(join(lhome, 'config.json'), JSON.stringify({
    preload: [spec('rin', inside), spec('rout', outside), spec('lin', inside), spec('lout', outside)],
    ollama_url: r.url,
    health_check_interval_ms: 100,
  }));
  const l = await startDaemon({ home: lhome, env: { PRECHARGE_OLLAMA_POLL: '100', TZ: 'UTC', PRECHARGE_MAX_LOADED_MODELS: '4' } });
  try {
    assert.ok(await eventually(async () => (await get(l.url, '/ready')).status === 200));
    const st = await json(l, '/api/models/status');
    assert.equal(st.rin.keepWarm, inside);
    assert.equal(st.rout.keepWarm, outside);
    // Inside its window a model is pinned (keep_alive -1 on the server); outside it is warm
    // from the start, but may expire (the server's default keep_alive).
    assert.deepEqual([st.rin.pinned, st.rout.pinned, st.lin.pinned, st.lout.pinned], [true, false, true, false]);
    const rps = (await json(r, '/api/ps')).models;
    const exp = (name) => Date.parse(rps.find((m) => m.name === name).expires_at);
    assert.ok(exp('rin:latest') > Date.now() + 365 * 864e5);
    assert.ok(exp('rout:latest') < Date.now() + 864e5);
    const lps = (await json(l, '/api/ps')).models.filter((m) => m.provider === 'local');
    assert.equal(lps.find((m) => m.name === 'lin:latest').pinned, true);
    assert.equal(lps.find((m) => m.name === 'lout:latest').pinned, false);

    // All four unloaded at once.
    for (const model of ['rin', 'rout', 'lin', 'lout'])
      assert.equal((await post(l.url, '/api/generate', { model, keep_alive: 0 })).status, 200);
    assert.deepEqual(await remotePs(r), []);

    // Inside the window: the health check finds them gone and warms them again.
    assert.ok(await eventually(async () => {
      const s = await json(l, '/api/models/status');
      return s.rin.warmups >= 2 && s.lin.warmups >= 2 && s.rin.status === 'ready' && s.lin.status === 'ready';
    }));
    assert.ok((await remotePs(r)).includes('rin:latest'));
    // Outside it: found gone by the same checks, and left so.
    assert.ok(await eventually(async () => {
      const s = await json(l, '/api/models/status');
      return s.rout.status === 'unloaded' && s.lout.status === 'unloaded';
    }));
    await new Promise((res) => setTimeout(res, 1000)); // ten more health intervals
    const s = await json(l, '/api/models/status');
    assert.equal(s.rout.warmups, 1);
    assert.equal(s.lout.warmups, 1);
    assert.equal(s.rout.status, 'unloaded');
    assert.ok(!(await remotePs(r)).includes('rout:latest'));
    const names = (await json(l, '/api/ps')).models.map((m) => m.name);
    assert.ok(names.includes('lin:latest') && !names.includes('lout:latest'));
    assert.equal(await state(l, 'rout'), 'pretrained');
    // /ready still holds: a model its own schedule let go is not missing.
    assert.equal((await get(l.url, '/ready')).status, 200);
  } finally {
    await l.stop();
    await r.stop();
    cleanup(rhome);
    cleanup(lhome);
  }
});

// The server answers, but cannot warm the model (its file there is no model): the warm-up fails
// once, the model's state is failed with the server's error, and /ready waits.
test('a remote warm-up that fails: state failed, the server\'s error, /ready pending', async () => {
  const rhome = tempHome('remote-fail');
  const lhome = tempHome('local-fail');
  writeFileSync(join(rhome, 'models', 'rbad.gguf'), 'not a model');
  const r = await startDaemon({ home: rhome, env: { OLLAMA_URL: 'off' } });
  writeFileSync(join(lhome, 'config.json'), JSON.stringify({
    preload: [{ model: 'rbad', maxRetries: 0 }],
    ollama_url: r.url,
  }));
  const l = await startDaemon({ home: lhome, env: { PRECHARGE_OLLAMA_POLL: '100' } });
  try {
    assert.ok(await eventually(async () => (await json(l, '/api/models/status')).rbad.status === 'failed'));
    const st = (await json(l, '/api/models/status')).rbad;
    assert.equal(st.provider, 'ollama');
    assert.ok(st.error.includes(r.url), st.error); // the server's own error, naming it
    assert.equal(await state(l, 'rbad'), 'failed');
    const ready = await get(l.url, '/ready');
    assert.equal(ready.status, 503);
    assert.match(ready.text, /rbad/);
    assert.deepEqual(await remotePs(r), []);
  } finally {
    await l.stop();
    await r.stop();
    cleanup(rhome);
    cleanup(lhome);
  }
});
