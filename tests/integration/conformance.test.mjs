// conformance.test.mjs - the official `ollama` and `openai` npm clients (pinned in package.json,
// installed by scripts/setup.sh) against the real daemon: what a user's code calls, and the
// shapes and errors that it expects back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MKMODEL, tempHome, makeModel, startDaemon, cleanup } from './lib.mjs';

const here = new URL('.', import.meta.url).pathname;
if (!existsSync(join(here, 'node_modules', 'ollama')) || !existsSync(join(here, 'node_modules', 'openai')))
  throw new Error('the npm clients are missing: run scripts/setup.sh (npm ci --prefix tests/integration)');
const { Ollama } = await import('ollama');
const { default: OpenAI } = await import('openai');
const { zodResponseFormat } = await import('openai/helpers/zod');
const { z } = await import('zod');

let home, d, ollama, openai;
const options = { num_predict: 5, temperature: 0 };

before(async () => {
  home = tempHome('conformance');
  makeModel(home, 'tiny');
  // An embedding model: the tiny shape with a pooling type in its GGUF (mean pooling).
  execFileSync(MKMODEL, ['--preset', 'tiny', '--pooling', 'mean', '-q', '-o', join(home, 'models', 'tiny-embed.gguf')]);
  // Qwen 2.5's own template (tools, tool calls) on the tiny shape: the grammar forces the shape
  // of schema answers and tool calls whatever the random weights say.
  execFileSync(MKMODEL, ['--preset', 'tiny', '--arch', 'qwen2', '--template', 'Qwen-Qwen2.5-7B-Instruct', '-q', '-o', join(home, 'models', 'qwen25.gguf')]);
  d = await startDaemon({ home });
  ollama = new Ollama({ host: d.url });
  openai = new OpenAI({ baseURL: `${d.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  assert.equal(await d.stop(), 0, 'daemon exits cleanly on SIGTERM');
  cleanup(home);
});

// ---- ollama ---------------------------------------------------------------------------------

test('ollama.generate, not streamed: text, stats and a context that continues', async () => {
  const r = await ollama.generate({ model: 'tiny', prompt: 'Hello', options });
  assert.equal(r.done, true);
  assert.equal(typeof r.response, 'string');
  assert.equal(r.eval_count, 5);
  assert.equal(r.done_reason, 'length');
  assert.ok(Array.isArray(r.context) && r.context.length > r.prompt_eval_count);
  const next = await ollama.generate({ model: 'tiny', prompt: 'More', context: r.context, options });
  assert.equal(next.done, true);
  assert.ok(next.prompt_eval_count > r.context.length, 'the new prompt follows the context');
});

test('ollama.generate, streamed: chunks then a final summary', async () => {
  const parts = [];
  for await (const part of await ollama.generate({ model: 'tiny', prompt: 'Hi', stream: true, options }))
    parts.push(part);
  assert.ok(parts.length >= 2);
  assert.ok(parts.slice(0, -1).every((p) => p.done === false));
  assert.equal(parts.at(-1).done, true);
  assert.equal(parts.at(-1).eval_count, 5);
});

test('ollama.generate with format json answers JSON', async () => {
  const r = await ollama.generate({
    model: 'tiny', prompt: 'Give JSON', format: 'json', options: { num_predict: 48, temperature: 0 },
  });
  // The grammar holds every token to JSON; an answer cut by num_predict may be unfinished.
  assert.match(r.response.trimStart(), /^[{]/);
  if (r.done_reason === 'stop') JSON.parse(r.response);
});

test('ollama.chat, streamed and not; tools on a template without them are refused', async () => {
  const messages = [{ role: 'user', content: 'Say hi' }];
  const tools = [{ type: 'function', function: { name: 'f', description: 'd', parameters: { type: 'object', properties: {} } } }];
  await assert.rejects(ollama.chat({ model: 'tiny', messages, tools, options }),
    (e) => e.status_code === 400 && /model "tiny" does not support tools/.test(e.message));
  const r = await ollama.chat({ model: 'tiny', messages, options });
  assert.equal(r.message.role, 'assistant');
  assert.equal(typeof r.message.content, 'string');
  assert.equal(r.done, true);
  let text = '';
  let last;
  for await (const part of await ollama.chat({ model: 'tiny', messages, stream: true, options })) {
    text += part.message.content;
    last = part;
  }
  assert.equal(last.done, true);
  assert.equal(text, r.message.content, 'same answer at temperature 0');
});

test('ollama.list, ps, version', async () => {
  const list = await ollama.list();
  assert.ok(list.models.some((m) => m.name === 'tiny:latest'));
  const ps = await ollama.ps();
  assert.ok(ps.models.some((m) => m.name === 'tiny:latest'), 'loaded by the generate above');
  const v = await ollama.version();
  assert.equal(typeof v.version, 'string');
});

test('ollama.show: details, model_info, template, parameters, capabilities', async () => {
  const s = await ollama.show({ model: 'tiny' });
  assert.equal(s.details.format, 'gguf');
  assert.equal(s.details.family, 'llama');
  assert.equal(s.model_info['general.architecture'], 'llama');
  assert.ok(s.model_info['llama.context_length'] > 0);
  assert.match(s.template, /message/);
  assert.match(s.parameters, /temperature/);
  assert.deepEqual(s.capabilities, ['completion']);
  await assert.rejects(ollama.show({ model: 'nope' }), (e) => e.status_code === 404 && /not found/.test(e.message));
});

test('ollama.copy, then the copy generates; copy of an unknown model is a 404', async () => {
  assert.deepEqual(await ollama.copy({ source: 'tiny', destination: 'tiny-copy' }), { status: 'success' });
  assert.ok((await ollama.list()).models.some((m) => m.name === 'tiny-copy:latest'));
  const r = await ollama.generate({ model: 'tiny-copy', prompt: 'Hi', options });
  assert.equal(r.done, true);
  await assert.rejects(ollama.copy({ source: 'nope', destination: 'x' }), (e) => e.status_code === 404);
  await assert.rejects(ollama.copy({ source: 'tiny', destination: '../x' }), (e) => e.status_code === 400);
});

test('ollama.delete removes the copy and leaves the original; an unknown model is a 404', async () => {
  await ollama.copy({ source: 'tiny', destination: 'tiny-gone' });
  assert.deepEqual(await ollama.delete({ model: 'tiny-gone' }), { status: 'success' });
  const names = (await ollama.list()).models.map((m) => m.name);
  assert.ok(!names.includes('tiny-gone:latest'));
  assert.ok(names.includes('tiny:latest'), 'a hard link: the original stays');
  await assert.rejects(ollama.delete({ model: 'tiny-gone' }), (e) => e.status_code === 404);
});

test('ollama.embed and embeddings: a clear error for a generation model', async () => {
  const unsupported = (e) => e.status_code === 400 && /does not support embeddings/.test(e.message);
  await assert.rejects(ollama.embed({ model: 'tiny', input: 'x' }), unsupported);
  await assert.rejects(ollama.embed({ model: 'tiny', input: ['a', 'b'] }), unsupported);
  await assert.rejects(ollama.embeddings({ model: 'tiny', prompt: 'x' }), unsupported);
  await assert.rejects(ollama.embed({ model: 'nope', input: 'x' }), (e) => e.status_code === 404);
});

test('ollama.embed and embeddings: unit vectors of the model\'s width, one per input, the same text the same vector', async () => {
  const norm = (v) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
  const one = await ollama.embed({ model: 'tiny-embed', input: 'The form has a date field.' });
  assert.equal(one.model, 'tiny-embed');
  assert.equal(one.embeddings.length, 1);
  assert.equal(one.embeddings[0].length, 64); // the tiny preset's n_embd
  assert.ok(Math.abs(norm(one.embeddings[0]) - 1) < 1e-5);
  assert.ok(one.prompt_eval_count > 0);
  const two = await ollama.embed({ model: 'tiny-embed', input: ['The form has a date field.', 'Something else entirely.'] });
  assert.equal(two.embeddings.length, 2);
  // Embedded alone each time (no shared prefix, no batch neighbours): the same text, the same vector.
  assert.deepEqual(two.embeddings[0], one.embeddings[0]);
  assert.notDeepEqual(two.embeddings[1], one.embeddings[0]);
  const legacy = await ollama.embeddings({ model: 'tiny-embed', prompt: 'The form has a date field.' });
  assert.deepEqual(legacy.embedding, one.embeddings[0]);
  // /api/show says what each model is for.
  assert.deepEqual((await ollama.show({ model: 'tiny-embed' })).capabilities, ['embedding']);
  assert.deepEqual((await ollama.show({ model: 'tiny' })).capabilities, ['completion']);
  // A text over the batch: cut by default, a 400 naming the counts with truncate: false.
  const long = 'word '.repeat(700);
  assert.equal((await ollama.embed({ model: 'tiny-embed', input: long })).prompt_eval_count, 512);
  await assert.rejects(ollama.embed({ model: 'tiny-embed', input: long, truncate: false }),
    (e) => e.status_code === 400 && /the limit for an embedding is 512/.test(e.message));
  await assert.rejects(ollama.embed({ model: 'tiny-embed', input: 5 }),
    (e) => e.status_code === 400 && /"input" must be a string or an array of strings/.test(e.message));
});

test('ollama.embed and embeddings: options.num_ctx bounds each text; dimensions on both routes; other options are a 400', async () => {
  const long = 'word '.repeat(100);
  assert.equal((await ollama.embed({ model: 'tiny-embed', input: long, options: { num_ctx: 32 } })).prompt_eval_count, 32);
  await assert.rejects(ollama.embed({ model: 'tiny-embed', input: long, truncate: false, options: { num_ctx: 32 } }),
    (e) => e.status_code === 400 && /the limit for an embedding is 32/.test(e.message));
  // Same text, same first 32 tokens: the same vector as the text cut by hand would give.
  const a = await ollama.embeddings({ model: 'tiny-embed', prompt: long, options: { num_ctx: 32 } });
  const b = await ollama.embeddings({ model: 'tiny-embed', prompt: long });
  assert.notDeepEqual(a.embedding, b.embedding, 'num_ctx changed what was embedded');
  // dimensions on the older route too, as /api/embed does it: the first N, length 1 again.
  const raw = async (body) => {
    const r = await fetch(`${d.url}/api/embeddings`, { method: 'POST', body: JSON.stringify(body) });
    return { status: r.status, body: await r.json() };
  };
  const full = (await raw({ model: 'tiny-embed', prompt: 'The form' })).body.embedding;
  const cut = (await raw({ model: 'tiny-embed', prompt: 'The form', dimensions: 8 })).body.embedding;
  assert.equal(cut.length, 8);
  const n = Math.sqrt(full.slice(0, 8).reduce((s, x) => s + x * x, 0));
  cut.forEach((x, i) => assert.ok(Math.abs(x - full[i] / n) < 1e-5));
  assert.equal((await raw({ model: 'tiny-embed', prompt: 'x', dimensions: 65 })).status, 400);
  for (const [options, re] of [
    [{ temperature: 0.5 }, /options.temperature does not apply to \/api\/embed \(nothing is sampled there\)/],
    [{ num_batch: 7 }, /options.num_batch is 7, but prompts are prefilled 512 tokens per decode/],
    [{ bogus: 1 }, /options.bogus is not an option/],
  ]) {
    await assert.rejects(ollama.embed({ model: 'tiny-embed', input: 'x', options }), (e) => e.status_code === 400 && re.test(e.message));
    const r = await raw({ model: 'tiny-embed', prompt: 'x', options });
    assert.equal(r.status, 400);
  }
  assert.equal((await ollama.embed({ model: 'tiny-embed', input: 'x', options: { num_batch: 512, num_gpu: -1 } })).embeddings.length, 1);
});

test('ollama.show: verbose fills the header\'s arrays (the vocabulary); system is shown; template and options are a 400', async () => {
  const plain = await ollama.show({ model: 'tiny' });
  assert.equal(plain.model_info['tokenizer.ggml.tokens'], null);
  const v = await ollama.show({ model: 'tiny', verbose: true });
  const toks = v.model_info['tokenizer.ggml.tokens'];
  assert.ok(Array.isArray(toks) && toks.length > 1000, 'the vocabulary is listed');
  assert.ok(toks.every((t) => typeof t === 'string'));
  const types = v.model_info['tokenizer.ggml.token_type'];
  assert.equal(types.length, toks.length);
  assert.ok(types.every(Number.isInteger));
  // Everything else is as without verbose.
  for (const [k, x] of Object.entries(plain.model_info)) if (x !== null) assert.deepEqual(v.model_info[k], x, k);
  assert.equal((await ollama.show({ model: 'tiny', system: 'Be terse.' })).system, 'Be terse.');
  const show = async (body) => {
    const r = await fetch(`${d.url}/api/show`, { method: 'POST', body: JSON.stringify({ model: 'tiny', ...body }) });
    return { status: r.status, body: await r.json() };
  };
  for (const [extra, field] of [[{ template: '{{ .Prompt }}' }, 'template'], [{ options: { temperature: 1 } }, 'options']]) {
    const r = await show(extra);
    assert.equal(r.status, 400);
    assert.match(r.body.error, new RegExp(`field "${field}" is a deprecated /api/show field`));
  }
  assert.equal((await show({ template: '', options: {} })).status, 200);
  assert.equal((await show({ verbose: 'yes' })).status, 400);
});

test('ollama client: truncate, shift and num_keep pass through and act; a load setting other than the daemon\'s is a ResponseError', async () => {
  const prompt = Array.from({ length: 60 }, (_, i) => `w${i}`).join(' ');
  // Cut to fit num_ctx 32 (keeping num_keep), or refused with truncate: false.
  const cut = await ollama.generate({ model: 'tiny', prompt, raw: true, options: { num_ctx: 32, num_keep: 4, num_predict: 1, temperature: 0 } });
  assert.ok(cut.prompt_eval_count < 32);
  await assert.rejects(ollama.generate({ model: 'tiny', prompt, raw: true, truncate: false, options: { num_ctx: 32, num_predict: 1 } }),
    (e) => e.status_code === 400 && /the limit is 31 \(num_ctx 32/.test(e.message));
  // shift: false stops the chat at num_ctx; by default it goes on.
  const messages = [{ role: 'user', content: 'Hi' }];
  const o = { num_ctx: 24, num_predict: 40, temperature: 0 };
  const stopped = await ollama.chat({ model: 'tiny', messages, shift: false, options: o });
  assert.equal(stopped.done_reason, 'length');
  assert.equal(stopped.prompt_eval_count + stopped.eval_count, 24);
  assert.equal((await ollama.chat({ model: 'tiny', messages, options: o })).eval_count, 40);
  await assert.rejects(ollama.generate({ model: 'tiny', prompt: 'x', options: { num_batch: 8 } }),
    (e) => e.status_code === 400 && /options.num_batch is 8/.test(e.message));
});

test('ollama: unknown model is a 404 with the model named', async () => {
  await assert.rejects(ollama.generate({ model: 'nope', prompt: 'x' }), (e) => e.status_code === 404 && /nope/.test(e.message));
});

// ---- openai ---------------------------------------------------------------------------------

test('openai.models.list and retrieve', async () => {
  const ids = [];
  for await (const m of openai.models.list()) ids.push(m.id);
  assert.ok(ids.includes('tiny:latest'));
  const m = await openai.models.retrieve('tiny');
  assert.equal(m.object, 'model');
  await assert.rejects(openai.models.retrieve('nope'), OpenAI.NotFoundError);
});

test('openai.chat.completions.create, not streamed: message, finish_reason, usage', async () => {
  const r = await openai.chat.completions.create({
    model: 'tiny', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }],
    max_tokens: 4, temperature: 0,
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 4);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 4);
});

test('openai.chat.completions.create, streamed with usage: deltas, finish, [DONE]', async () => {
  const body = { model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], max_completion_tokens: 4, temperature: 0, seed: 1 };
  const whole = await openai.chat.completions.create(body);
  const stream = await openai.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish, usage, role;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      role ??= c.delta.role;
      text += c.delta.content ?? '';
      finish = c.finish_reason ?? finish;
    }
  }
  assert.equal(role, 'assistant');
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, 'length');
  assert.equal(usage.completion_tokens, 4);
});

test('openai.chat.completions.create: a stop string ends with finish_reason stop', async () => {
  const probe = await openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 6, temperature: 0 });
  const text = probe.choices[0].message.content;
  const stop = text.trim().slice(0, 1);
  const r = await openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 6, temperature: 0, stop: [stop] });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.ok(!r.choices[0].message.content.includes(stop));
});

test('openai.completions.create, streamed and not', async () => {
  const r = await openai.completions.create({ model: 'tiny', prompt: 'Once upon', max_tokens: 4, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 4);
  let text = '';
  let finish;
  for await (const chunk of await openai.completions.create({ model: 'tiny', prompt: 'Once upon', max_tokens: 4, temperature: 0, stream: true })) {
    text += chunk.choices[0]?.text ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, r.choices[0].text);
  assert.equal(finish, 'length');
});

test('openai.embeddings.create: base64 (the client\'s default) and float, the same vectors as ollama.embed', async () => {
  const input = ['The form has a date field.', 'Something else entirely.'];
  const ours = (await ollama.embed({ model: 'tiny-embed', input })).embeddings;
  const b64 = await openai.embeddings.create({ model: 'tiny-embed', input });
  assert.equal(b64.object, 'list');
  assert.equal(b64.model, 'tiny-embed');
  assert.deepEqual(b64.data.map((d) => d.index), [0, 1]);
  assert.ok(b64.usage.prompt_tokens > 0);
  assert.equal(b64.usage.total_tokens, b64.usage.prompt_tokens);
  const flt = await openai.embeddings.create({ model: 'tiny-embed', input: input[0], encoding_format: 'float' });
  assert.equal(flt.data.length, 1);
  for (const [got, want] of [[b64.data[0].embedding, ours[0]], [b64.data[1].embedding, ours[1]], [flt.data[0].embedding, ours[0]]]) {
    assert.equal(got.length, 64);
    // float32 either way: base64 carries its bytes, JSON its shortest decimal.
    got.forEach((x, i) => assert.equal(Math.fround(x), Math.fround(want[i])));
  }
  await assert.rejects(openai.embeddings.create({ model: 'tiny', input: 'x' }),
    (e) => e.status === 400 && /does not support embeddings/.test(e.message));
  // dimensions: the first N components, normalized again, in both APIs (as Ollama does).
  const short = await openai.embeddings.create({ model: 'tiny-embed', input, dimensions: 8, encoding_format: 'float' });
  const shortOllama = (await ollama.embed({ model: 'tiny-embed', input, dimensions: 8 })).embeddings;
  for (let k = 0; k < 2; k++) {
    const v = short.data[k].embedding;
    assert.equal(v.length, 8);
    assert.equal(shortOllama[k].length, 8);
    const norm = Math.hypot(...ours[k].slice(0, 8));
    v.forEach((x, i) => {
      assert.ok(Math.abs(x - ours[k][i] / norm) < 1e-5, `component ${i}`);
      assert.equal(Math.fround(x), Math.fround(shortOllama[k][i]));
    });
    assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5, 'length 1 again');
  }
  await assert.rejects(openai.embeddings.create({ model: 'tiny-embed', input: 'x', dimensions: 65 }),
    (e) => e.status === 400 && e.error?.param === 'dimensions' && /65 is above the width of model "tiny-embed", 64/.test(e.message));
  await assert.rejects(openai.embeddings.create({ model: 'tiny-embed', input: 'x', dimensions: 0 }),
    (e) => e.status === 400 && e.error?.param === 'dimensions');
  await assert.rejects(ollama.embed({ model: 'tiny-embed', input: 'x', dimensions: 65 }),
    (e) => e.status_code === 400 && /"dimensions": 65 is above the width/.test(e.message));
  await assert.rejects(openai.embeddings.create({ model: 'nope', input: 'x' }),
    (e) => e.status === 404 && e.code === 'model_not_found');
});

test('openai errors: unknown model is NotFoundError, bad input is BadRequestError', async () => {
  await assert.rejects(
    openai.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && /nope/.test(e.message) && e.code === 'model_not_found',
  );
  await assert.rejects(
    openai.chat.completions.create({ model: 'tiny', messages: [] }),
    (e) => e instanceof OpenAI.BadRequestError && e.error?.type === 'invalid_request_error' && e.param === 'messages',
  );
  await assert.rejects(
    openai.completions.create({ model: 'tiny', prompt: 'x', temperature: 5 }),
    (e) => e instanceof OpenAI.BadRequestError && /temperature/.test(e.message),
  );
});

// ---- structured output and tools ------------------------------------------------------------

const person = {
  type: 'object',
  properties: { name: { type: 'string', enum: ['Ada', 'Bob'] }, age: { type: 'integer', minimum: 0, maximum: 120 } },
  required: ['name', 'age'],
};

test('ollama.chat({format: schema}): the content validates against the schema', async () => {
  const r = await ollama.chat({ model: 'qwen25', messages: [{ role: 'user', content: 'Who?' }], format: person, options: { num_predict: 400, temperature: 0 } });
  const p = JSON.parse(r.message.content);
  assert.ok(['Ada', 'Bob'].includes(p.name));
  assert.ok(Number.isInteger(p.age) && p.age >= 0 && p.age <= 120);
});

test('openai.chat.completions.create({tools, tool_choice: "required"}): tool_calls', async () => {
  const tools = [{
    type: 'function',
    function: { name: 'get_weather', description: 'The weather in a city', parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Rome'] } }, required: ['city'] } },
  }];
  const r = await openai.chat.completions.create({
    model: 'qwen25', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools, tool_choice: 'required', max_tokens: 300, temperature: 0,
  });
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  const calls = r.choices[0].message.tool_calls;
  assert.ok(calls.length >= 1);
  for (const c of calls) {
    assert.equal(c.function.name, 'get_weather');
    assert.ok(['Paris', 'Rome'].includes(JSON.parse(c.function.arguments).city));
  }
});

test('openai.chat.completions.parse with a zod schema (zodResponseFormat): message.parsed', async () => {
  const Person = z.object({ name: z.enum(['Ada', 'Bob']), age: z.number().int().min(0).max(120) });
  const r = await openai.chat.completions.parse({
    model: 'qwen25', messages: [{ role: 'user', content: 'Who?' }], max_tokens: 400, temperature: 0,
    response_format: zodResponseFormat(Person, 'person'),
  });
  const parsed = r.choices[0].message.parsed;
  assert.ok(parsed, r.choices[0].message.content);
  assert.deepEqual(Person.parse(parsed), parsed);
});

test('openai.embeddings.create: an input longer than one embedding takes is a 400 naming the limit, never cut; user is an identifier', async () => {
  const long = Array.from({ length: 600 }, (_, i) => `word${i}`).join(' ');
  await assert.rejects(openai.embeddings.create({ model: 'tiny-embed', input: ['short', long] }),
    (e) => e.status === 400 && e.error?.param === 'input' && /the input is \d+ tokens; the limit for an embedding is 512/.test(e.message));
  // Ollama's route still cuts it by default.
  assert.equal((await ollama.embed({ model: 'tiny-embed', input: long })).prompt_eval_count, 512);
  const withUser = await openai.embeddings.create({ model: 'tiny-embed', input: 'hello', user: 'user-77', encoding_format: 'float' });
  const without = await openai.embeddings.create({ model: 'tiny-embed', input: 'hello', encoding_format: 'float' });
  assert.deepEqual(withUser.data[0].embedding, without.data[0].embedding);
  assert.match(d.log(), /\/v1\/embeddings tiny-embed: user="user-77"/);
  await assert.rejects(openai.embeddings.create({ model: 'tiny-embed', input: 'x', user: 5 }),
    (e) => e.status === 400 && e.error?.param === 'user');
});
