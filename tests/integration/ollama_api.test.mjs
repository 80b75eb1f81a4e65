// ollama_api.test.mjs - the daemon's Ollama-compatible API over real HTTP: generate and chat
// (streamed and not), ps, tags, version, keep_alive load/unload/expiry, context, num_ctx,
// template and format, bad input; and the raw SSE framing of the OpenAI routes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tempHome, makeModel, startDaemon, post, get, ndjson, eventually, cleanup } from './lib.mjs';

let home, d;
const opts = { num_predict: 6, temperature: 0 };

before(async () => {
  home = tempHome('ollama-api');
  makeModel(home, 'tiny');
  d = await startDaemon({ home });
});

after(async () => {
  assert.equal(await d.stop(), 0, 'daemon exits cleanly on SIGTERM');
  cleanup(home);
});

const psNames = async () => JSON.parse((await get(d.url, '/api/ps')).text).models.map((m) => m.name);

test('generate streams NDJSON chunks and a final summary', async () => {
  const r = await post(d.url, '/api/generate', { model: 'tiny', prompt: 'Hello there', options: opts });
  assert.equal(r.status, 200);
  assert.match(r.type, /application\/x-ndjson/);
  const lines = ndjson(r.text);
  assert.ok(lines.length >= 2, 'several chunks');
  for (const l of lines.slice(0, -1)) {
    assert.equal(l.model, 'tiny');
    assert.equal(l.done, false);
    assert.equal(typeof l.response, 'string');
    assert.match(l.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/);
  }
  const last = lines.at(-1);
  assert.equal(last.done, true);
  assert.equal(last.done_reason, 'length');
  assert.equal(last.eval_count, 6);
  assert.ok(last.prompt_eval_count > 0);
  for (const k of ['total_duration', 'load_duration', 'prompt_eval_duration', 'eval_duration'])
    assert.ok(Number.isInteger(last[k]) && last[k] >= 0, k);
});

test('generate with stream:false gives one object equal to the streamed text', async () => {
  const body = { model: 'tiny', prompt: 'Count with me', options: { ...opts, seed: 7 } };
  const streamed = ndjson((await post(d.url, '/api/generate', body)).text);
  const r = await post(d.url, '/api/generate', { ...body, stream: false });
  assert.equal(r.status, 200);
  assert.match(r.type, /application\/json/);
  const o = JSON.parse(r.text);
  assert.equal(o.done, true);
  assert.equal(o.response, streamed.map((l) => l.response).join(''));
  // The second identical request reuses the cached prompt.
  assert.ok(o.prompt_cached_count >= o.prompt_eval_count - 1);
});

test('chat streams assistant messages; stream:false returns one message', async () => {
  const messages = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Say hi' },
  ];
  const lines = ndjson((await post(d.url, '/api/chat', { model: 'tiny', messages, options: opts })).text);
  assert.ok(lines.length >= 2);
  for (const l of lines) {
    assert.equal(l.message.role, 'assistant');
    assert.equal(typeof l.message.content, 'string');
  }
  assert.equal(lines.at(-1).done, true);
  const o = JSON.parse((await post(d.url, '/api/chat', { model: 'tiny', messages, stream: false, options: opts })).text);
  assert.equal(o.message.role, 'assistant');
  assert.equal(o.message.content, lines.map((l) => l.message.content).join(''));
  assert.equal(o.eval_count, 6);
});

test('stop strings end the answer without the stop text', async () => {
  const full = JSON.parse((await post(d.url, '/api/generate', { model: 'tiny', prompt: 'abc', stream: false, options: { ...opts, num_predict: 20 } })).text);
  const stop = full.response.slice(Math.floor(full.response.length / 2)).slice(0, 2);
  assert.ok(stop.length === 2);
  const cut = JSON.parse((await post(d.url, '/api/generate', { model: 'tiny', prompt: 'abc', stream: false, options: { ...opts, num_predict: 20, stop: [stop] } })).text);
  assert.equal(cut.done_reason, 'stop');
  assert.ok(!cut.response.includes(stop));
  assert.ok(full.response.startsWith(cut.response));
});

test('ps, tags, version, health and root', async () => {
  const ps = JSON.parse((await get(d.url, '/api/ps')).text);
  assert.equal(ps.models.length, 1);
  const m = ps.models[0];
  assert.equal(m.name, 'tiny:latest');
  assert.equal(m.model, 'tiny:latest');
  assert.ok(m.size > 0);
  assert.equal(m.size_vram, 0);
  assert.equal(m.context_length, 4096 > m.context_length ? m.context_length : 4096);
  assert.ok(Date.parse(m.expires_at) > Date.now());
  assert.equal(m.details.format, 'gguf');
  assert.equal(m.details.family, 'llama');

  const tags = JSON.parse((await get(d.url, '/api/tags')).text);
  assert.deepEqual(tags.models.map((t) => t.name), ['tiny:latest']);
  assert.ok(tags.models[0].size > 0);

  // Each answered request is a use in the store's manifest.
  const { readFileSync } = await import('node:fs');
  const manifest = JSON.parse(readFileSync(`${home}/models/manifest.json`, 'utf8'));
  const entry = manifest.models.find((e) => e.id === 'tiny');
  assert.ok(entry.use_count >= 3, JSON.stringify(entry));
  assert.ok(Date.parse(entry.last_used) > 0);

  const v = JSON.parse((await get(d.url, '/api/version')).text);
  assert.match(v.version, /^\d+\.\d+\.\d+/);
  assert.equal(JSON.parse((await get(d.url, '/health')).text).status, 'ok');
  assert.equal((await get(d.url, '/')).text, 'precharge is running');
});

test('empty prompt loads; with keep_alive 0 it unloads', async () => {
  let o = JSON.parse((await post(d.url, '/api/generate', { model: 'tiny', keep_alive: 0 })).text);
  assert.equal(o.done_reason, 'unload');
  assert.ok(await eventually(async () => (await psNames()).length === 0));

  o = JSON.parse((await post(d.url, '/api/generate', { model: 'tiny:latest' })).text);
  assert.equal(o.done, true);
  assert.equal(o.done_reason, 'load');
  assert.deepEqual(await psNames(), ['tiny:latest']);

  o = JSON.parse((await post(d.url, '/api/chat', { model: 'tiny', messages: [], keep_alive: '0s' })).text);
  assert.equal(o.done_reason, 'unload');
  assert.ok(await eventually(async () => (await psNames()).length === 0));
});

test('keep_alive expires idle models; negative keeps them forever', async () => {
  await post(d.url, '/api/generate', { model: 'tiny', prompt: 'hi', keep_alive: '1s', options: opts });
  assert.ok(await eventually(async () => (await psNames()).length === 0), 'unloaded after 1s');

  await post(d.url, '/api/generate', { model: 'tiny', prompt: 'hi', keep_alive: -1, options: opts });
  const m = JSON.parse((await get(d.url, '/api/ps')).text).models[0];
  assert.ok(Date.parse(m.expires_at) > Date.now() + 100 * 365 * 86400e3, 'forever');

  await post(d.url, '/api/generate', { model: 'tiny', prompt: 'hi', keep_alive: 0, options: opts });
  assert.ok(await eventually(async () => (await psNames()).length === 0), 'keep_alive 0 unloads after the answer');
});

test('bad input gets a 4xx with an error that names the problem', async () => {
  const cases = [
    ['{"model": "tiny", "prompt": ', 400, /invalid JSON/],
    ['[1,2]', 400, /JSON object/],
    ['', 400, /missing request body/],
    [{ prompt: 'x' }, 400, /"model" is required/],
    [{ model: 42, prompt: 'x' }, 400, /"model" must be a string/],
    [{ model: 'tiny', prompt: 7 }, 400, /"prompt" must be a string/],
    [{ model: 'tiny', prompt: 'x', stream: 'yes' }, 400, /"stream" must be true or false/],
    [{ model: 'tiny', prompt: 'x', options: { temperature: 'hot' } }, 400, /options.temperature must be a number/],
    [{ model: 'tiny', prompt: 'x', options: { stop: [1] } }, 400, /options.stop/],
    [{ model: 'tiny', prompt: 'x', keep_alive: 'soon' }, 400, /keep_alive: invalid duration "soon"/],
    [{ model: 'nope', prompt: 'x' }, 404, /model "nope" not found/],
    [{ model: '../../etc/passwd', prompt: 'x' }, 400, /invalid model name/],
    [{ model: 'tiny', prompt: 'word '.repeat(5000), truncate: false }, 400, /the prompt is \d+ tokens; the limit is \d+ \(context length/],
  ];
  for (const [body, status, re] of cases) {
    const r = await post(d.url, '/api/generate', body);
    assert.equal(r.status, status, JSON.stringify(body).slice(0, 80));
    assert.match(JSON.parse(r.text).error, re);
  }
  const chatCases = [
    [{ model: 'tiny', messages: 'hi' }, /"messages" must be an array/],
    [{ model: 'tiny', messages: [{ content: 'x' }] }, /messages\[0\].role must be a string/],
    [{ model: 'tiny', messages: [{ role: 'wizard', content: 'x' }] }, /"wizard" is not one of/],
    [{ model: 'tiny', messages: [{ role: 'user', content: 5 }] }, /messages\[0\].content must be a string/],
  ];
  for (const [body, re] of chatCases) {
    const r = await post(d.url, '/api/chat', body);
    assert.equal(r.status, 400);
    assert.match(JSON.parse(r.text).error, re);
  }
  let r = await get(d.url, '/api/nothing');
  assert.equal(r.status, 404);
  assert.match(JSON.parse(r.text).error, /no such endpoint/);
  r = await get(d.url, '/api/generate');
  assert.equal(r.status, 405);
  r = await post(d.url, '/api/generate', JSON.stringify({ model: 'tiny', prompt: 'x'.repeat(9 << 20) }));
  assert.equal(r.status, 413);

  // A model file that is not a GGUF: a clear error, and the daemon lives on.
  const { writeFileSync } = await import('node:fs');
  writeFileSync(`${home}/models/junk.gguf`, 'this is not a model');
  r = await post(d.url, '/api/generate', { model: 'junk', prompt: 'x' });
  assert.equal(r.status, 500);
  assert.match(JSON.parse(r.text).error, /junk.gguf" is not a GGUF file/);

  // Still serving.
  r = await post(d.url, '/api/generate', { model: 'tiny', prompt: 'still there?', stream: false, options: opts });
  assert.equal(r.status, 200);
});

test('a client that goes away mid-stream frees the model for the next request', async () => {
  const ctrl = new AbortController();
  const res = await fetch(d.url + '/api/generate', {
    method: 'POST',
    body: JSON.stringify({ model: 'tiny', prompt: 'go on forever', options: { num_predict: -1 } }),
    signal: ctrl.signal,
  });
  const reader = res.body.getReader();
  await reader.read();
  ctrl.abort();
  const r = await post(d.url, '/api/generate', { model: 'tiny', prompt: 'next', stream: false, options: opts });
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.text).eval_count, 6);
});

test('generate: context continues the conversation; template, format and context are checked', async () => {
  const first = JSON.parse((await post(d.url, '/api/generate', { model: 'tiny', prompt: 'One', stream: false, options: opts })).text);
  assert.equal(first.context.length, first.prompt_eval_count + first.eval_count);
  const second = JSON.parse((await post(d.url, '/api/generate', {
    model: 'tiny', prompt: 'Two', stream: false, context: first.context, options: opts,
  })).text);
  assert.ok(second.prompt_eval_count > first.context.length);
  assert.ok(second.prompt_cached_count >= first.prompt_eval_count, 'the live sequence is reused');
  assert.deepEqual(second.context.slice(0, first.context.length), first.context);

  const cases = [
    [{ template: '{{ .Prompt }}' }, 400, /template.*not supported.*raw/],
    [{ format: { type: 'object' }, raw: true }, 400, /JSON schema is applied through the chat template/],
    [{ format: { type: 'object', properties: { n: { type: 'nonsense' } } } }, 400, /JSON schema gives no grammar/],
    [{ format: 'yaml' }, 400, /format/],
    [{ context: [1, 'x'] }, 400, /context\[1\]/],
    [{ context: [99999999] }, 400, /context\[0\] = 99999999 is not a token/],
    [{ options: { num_ctx: 4 }, truncate: false }, 400, /the limit is 3 \(num_ctx 4,/],
  ];
  for (const [extra, status, re] of cases) {
    const r = await post(d.url, '/api/generate', { model: 'tiny', prompt: 'Hello there', stream: false, ...extra });
    assert.equal(r.status, status, JSON.stringify(extra));
    assert.match(JSON.parse(r.text).error, re);
  }
  // raw needs no template, so one is harmless there.
  const raw = await post(d.url, '/api/generate', { model: 'tiny', prompt: 'x', raw: true, template: '{{ .Prompt }}', stream: false, options: opts });
  assert.equal(raw.status, 200);
});

test('generate: num_ctx below the loaded context bounds prompt + answer', async () => {
  const r = JSON.parse((await post(d.url, '/api/generate', {
    model: 'tiny', prompt: 'Hi', stream: false, shift: false, options: { num_ctx: 24, num_predict: 100 },
  })).text);
  assert.equal(r.done_reason, 'length');
  assert.equal(r.prompt_eval_count + r.eval_count, 24);
});

test('openai streams are server-sent events ending in [DONE]', async () => {
  const r = await post(d.url, '/v1/chat/completions', {
    model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3, stream: true,
  });
  assert.equal(r.status, 200);
  assert.match(r.type, /text\/event-stream/);
  const events = r.text.split('\n\n').filter(Boolean);
  assert.ok(events.every((e) => e.startsWith('data: ')));
  assert.equal(events.at(-1), 'data: [DONE]');
  const last = JSON.parse(events.at(-2).slice(6));
  assert.equal(last.choices[0].finish_reason, 'length');
  const bad = await post(d.url, '/v1/completions', { model: 'tiny', prompt: 'x', n: 2 });
  assert.equal(bad.status, 400);
  assert.deepEqual(Object.keys(JSON.parse(bad.text).error).sort(), ['code', 'message', 'param', 'type']);
});

// Issue #16: nothing in a request is silently dropped.
test('options: load settings pass at the daemon\'s values and are refused otherwise; unknown names are refused', async () => {
  const gen = (options, extra = {}) =>
    post(d.url, '/api/generate', { model: 'tiny', prompt: 'Hi', stream: false, options: { ...opts, ...options }, ...extra });
  // The values this daemon loads with (its defaults), and Ollama's "decide for me".
  // The pinned llama.cpp prebuilt has CPU backends only: num_gpu 0 (every layer on the CPU) is
  // what the daemon does, as -1 is.
  for (const o of [{ num_batch: 512 }, { num_gpu: -1 }, { num_gpu: 0 }, { main_gpu: 0 }, { num_thread: 0 }, { num_thread: 1 }, { use_mmap: true },
    { numa: false }, { low_vram: false }, { num_keep: 4 }, { num_keep: -1 }, { draft_num_predict: 0 }, { f16_kv: true }]) {
    const r = await gen(o);
    assert.equal(r.status, 200, `${JSON.stringify(o)}: ${r.text}`);
  }
  const cases = [
    [{ num_batch: 64 }, /options.num_batch is 64, but prompts are prefilled 512 tokens per decode.*send 512/],
    [{ num_gpu: 3 }, /options.num_gpu is 3, but there is no GPU here: every layer runs on the CPU.*send -1/],
    [{ main_gpu: 1 }, /options.main_gpu is 1/],
    // lib.mjs starts the daemon with PRECHARGE_THREADS=1.
    [{ num_thread: 3 }, /options.num_thread is 3, but each decode uses 1 threads \(PRECHARGE_THREADS\).*send 1/],
    [{ use_mmap: false }, /options.use_mmap is false, but model files are mapped/],
    [{ numa: true }, /options.numa is true/],
    [{ low_vram: true }, /options.low_vram is true/],
    [{ num_batch: 'big' }, /options.num_batch must be a number/],
    [{ use_mmap: 1 }, /options.use_mmap must be true or false/],
    [{ num_keep: -2 }, /options.num_keep must be between -1/],
    [{ temprature: 0.5 }, /options.temprature is not an option/],
  ];
  for (const [o, re] of cases) {
    const r = await gen(o);
    assert.equal(r.status, 400, JSON.stringify(o));
    assert.match(JSON.parse(r.text).error, re);
    const c = await post(d.url, '/api/chat', { model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], options: o });
    assert.equal(c.status, 400, `chat ${JSON.stringify(o)}`);
  }
});

test('fields of the other route are refused with where they belong', async () => {
  const chat = { model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], stream: false, options: opts };
  const cases = [
    [{ system: 'Be terse' }, /field "system" is a \/api\/generate field; send a system message/],
    [{ prompt: 'Hi' }, /field "prompt" is a \/api\/generate field/],
    [{ template: '{{ .Prompt }}' }, /field "template" is a \/api\/generate field/],
    [{ context: [1, 2] }, /field "context" is \/api\/generate's token array/],
    [{ suffix: 'end' }, /field "suffix" is a \/api\/generate field/],
    [{ images: ['aGk='] }, /field "images" is on \/api\/chat a message's field: messages\[i\].images/],
  ];
  for (const [extra, re] of cases) {
    const r = await post(d.url, '/api/chat', { ...chat, ...extra });
    assert.equal(r.status, 400, JSON.stringify(extra));
    assert.match(JSON.parse(r.text).error, re);
  }
  // Empty values carry nothing and pass.
  assert.equal((await post(d.url, '/api/chat', { ...chat, system: '', images: [], context: [] })).status, 200);
  for (const [extra, re] of [
    [{ messages: [{ role: 'user', content: 'Hi' }] }, /field "messages" is a \/api\/chat field/],
    [{ tools: [{ type: 'function', function: { name: 'f' } }] }, /field "tools" is a \/api\/chat field/],
    [{ tool_choice: 'required' }, /field "tool_choice" is a \/api\/chat field/],
  ]) {
    const r = await post(d.url, '/api/generate', { model: 'tiny', prompt: 'Hi', stream: false, options: opts, ...extra });
    assert.equal(r.status, 400, JSON.stringify(extra));
    assert.match(JSON.parse(r.text).error, re);
  }
  for (const f of ['truncate', 'shift']) {
    const r = await post(d.url, '/api/chat', { ...chat, [f]: 'yes' });
    assert.equal(r.status, 400);
    assert.match(JSON.parse(r.text).error, new RegExp(`"${f}" must be true or false`));
  }
});

test('generate: a prompt over num_ctx is cut as Ollama cuts it, keeping num_keep; truncate:false refuses it', async () => {
  const prompt = Array.from({ length: 60 }, (_, i) => `w${i}`).join(' ');
  const body = { model: 'tiny', prompt, raw: true, stream: false, options: { ...opts, num_predict: 1 } };
  const whole = JSON.parse((await post(d.url, '/api/generate', body)).text);
  const n = whole.prompt_eval_count;
  assert.ok(n > 40, `the prompt is long enough (${n})`);
  const all = whole.context.slice(0, n);
  for (const numKeep of [4, 10]) {
    const r = await post(d.url, '/api/generate', { ...body, options: { ...body.options, num_ctx: 32, num_keep: numKeep } });
    assert.equal(r.status, 200, r.text);
    const cut = JSON.parse(r.text);
    // keep (+ the BOS when the model has one); then the newest tokens, half of the rest left free.
    const bos = all[0] === cut.context[0] && whole.context[0] !== all[1] ? 1 : 0;
    const keep = numKeep + bos;
    const limit = 32 - Math.max(Math.floor((32 - keep) / 2), 1);
    assert.equal(cut.prompt_eval_count, limit, `num_keep ${numKeep}`);
    const kept = cut.context.slice(0, limit);
    assert.deepEqual(kept.slice(0, keep), all.slice(0, keep), 'the first num_keep tokens stay');
    assert.deepEqual(kept.slice(keep), all.slice(n - (limit - keep)), 'then the newest');
  }
  const no = await post(d.url, '/api/generate', { ...body, truncate: false, options: { ...body.options, num_ctx: 32 } });
  assert.equal(no.status, 400);
  assert.match(JSON.parse(no.text).error, /the prompt is \d+ tokens; the limit is 31 \(num_ctx 32/);
});

test('generate and chat: shift goes on past num_ctx by shifting the context; shift:false stops at it', async () => {
  const o = { temperature: 0, seed: 3, num_ctx: 24, num_predict: 40 };
  const body = { model: 'tiny', prompt: 'Hi', stream: false, options: o };
  const shifts = async () =>
    Number((/^precharge_decode_context_shifts_total\{model="tiny"\} (\d+)$/m.exec((await get(d.url, '/metrics')).text) ?? [0, 0])[1]);
  const before = await shifts();
  const shifted = JSON.parse((await post(d.url, '/api/generate', body)).text);
  assert.ok((await shifts()) > before, '/metrics counts the shift');
  assert.equal(shifted.done_reason, 'length');
  assert.equal(shifted.eval_count, 40, 'the answer went on past the window');
  assert.ok(shifted.prompt_eval_count + shifted.eval_count > 24);
  const stopped = JSON.parse((await post(d.url, '/api/generate', { ...body, shift: false })).text);
  assert.equal(stopped.done_reason, 'length');
  assert.equal(stopped.prompt_eval_count + stopped.eval_count, 24);
  // The shifted answer begins as the unshifted one: the shift only comes at the window.
  assert.ok(shifted.response.startsWith(stopped.response), JSON.stringify([shifted.response, stopped.response]));
  // Its context is what the window kept: the BOS and num_keep tokens, then the newest.
  assert.ok(shifted.context.length < 24);
  assert.deepEqual(shifted.context.slice(0, 5), stopped.context.slice(0, 5));
  const messages = [{ role: 'user', content: 'Hi' }];
  const chat = JSON.parse((await post(d.url, '/api/chat', { model: 'tiny', messages, stream: false, options: o })).text);
  assert.equal(chat.eval_count, 40);
  const chatStopped = JSON.parse((await post(d.url, '/api/chat', { model: 'tiny', messages, stream: false, shift: false, options: o })).text);
  assert.equal(chatStopped.prompt_eval_count + chatStopped.eval_count, 24);
  // The model serves on: the shifted sequences left the cache consistent.
  const after = JSON.parse((await post(d.url, '/api/generate', { ...body, options: { ...o, num_ctx: 0, num_predict: 3 } })).text);
  assert.equal(after.eval_count, 3);
});

test('an unknown field is a 400 naming it and the route, on every Ollama route and precharge\'s own', async () => {
  const cases = [
    ['POST', '/api/generate', { model: 'tiny', prompt: 'Hi' }],
    ['POST', '/api/chat', { model: 'tiny', messages: [{ role: 'user', content: 'Hi' }] }],
    ['POST', '/api/embed', { model: 'tiny', input: 'x' }],
    ['POST', '/api/embeddings', { model: 'tiny', prompt: 'x' }],
    ['POST', '/api/show', { model: 'tiny' }],
    ['POST', '/api/copy', { source: 'tiny', destination: 'tiny2' }],
    ['POST', '/api/pull', { model: 'tiny' }],
    ['DELETE', '/api/delete', { model: 'tiny2' }],
    ['POST', '/api/precharge', { model: 'tiny', prompt: 'x' }],
    ['POST', '/v1/models/tiny/load', {}],
    ['POST', '/v1/models/tiny/preload', {}],
    ['POST', '/v1/models/tiny/pin', { pinned: false }],
  ];
  for (const [method, path, body] of cases) {
    const r = await fetch(d.url + path, { method, body: JSON.stringify({ ...body, _debug_render_only: true }) });
    assert.equal(r.status, 400, `${method} ${path}`);
    assert.match((await r.json()).error, new RegExp(`field "_debug_render_only" is not a field of ${path}`), path);
    // null is absent.
    if (path === '/api/show') {
      assert.equal((await fetch(d.url + path, { method, body: JSON.stringify({ ...body, bogus: null }) })).status, 200);
    }
  }
  // Each embedding route's own text field.
  const e = await post(d.url, '/api/embeddings', { model: 'tiny', input: 'x' });
  assert.equal(e.status, 400);
  assert.match(JSON.parse(e.text).error, /field "input" is not a field of \/api\/embeddings; send "prompt"/);
});
