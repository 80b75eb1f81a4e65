// parity.test.mjs - fields of today's Ollama and OpenAI APIs that used to be silently ignored
// (issue #16): each one now works or is refused with a 400 naming it, and a test here fails if
// it is ignored again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { BIN, MKMODEL, tempHome, makeModel, startDaemon, post, get, cleanup, sha256File } from './lib.mjs';

let home, d, ollama, openai, tinyPath;
const opts = { num_predict: 4, temperature: 0 };
const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

before(async () => {
  home = tempHome('parity');
  tinyPath = makeModel(home, 'tiny');
  makeModel(home, 'bare'); // never verified: no sha256 in the manifest
  // A code model: fill-in-the-middle tokens in its vocabulary (mkmodel --fim); tiny has none.
  execFileSync(MKMODEL, ['--preset', 'tiny', '--fim', '-q', '-o', join(home, 'models', 'coder.gguf')]);
  // Qwen 2.5's template: function tools.
  execFileSync(MKMODEL, ['--preset', 'tiny', '--arch', 'qwen2', '--template', 'Qwen-Qwen2.5-7B-Instruct', '-q', '-o', join(home, 'models', 'qwen25.gguf')]);
  // QwQ's template opens a <think> block in its generation prompt: the model's text is reasoning.
  execFileSync(MKMODEL, ['--preset', 'tiny', '--arch', 'qwen2', '--template', 'Qwen-QwQ-32B', '-q', '-o', join(home, 'models', 'qwq.gguf')]);
  // Record tiny's sha256 in the manifest, as a download does.
  execFileSync(BIN, ['model', 'verify', 'tiny'], { env: { ...process.env, PRECHARGE_HOME: home } });
  d = await startDaemon({ home });
  ollama = new Ollama({ host: d.url });
  openai = new OpenAI({ baseURL: `${d.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  assert.equal(await d.stop(), 0, 'daemon exits cleanly on SIGTERM');
  cleanup(home);
});

test('images on /api/generate and /api/chat: a 400 naming the model and the field', async () => {
  await assert.rejects(ollama.generate({ model: 'tiny', prompt: 'What is this?', images: [png], options: opts }),
    (e) => e.status_code === 400 && /field "images": model "tiny" has no vision encoder/.test(e.message));
  const messages = [{ role: 'system', content: 'Look.' }, { role: 'user', content: 'What is this?', images: [png] }];
  await assert.rejects(ollama.chat({ model: 'tiny', messages, options: opts }),
    (e) => e.status_code === 400 && /field "messages\[1\].images": model "tiny" has no vision encoder/.test(e.message));
  let r = await post(d.url, '/api/generate', { model: 'tiny', prompt: 'x', images: 'abc' });
  assert.equal(r.status, 400);
  assert.match(JSON.parse(r.text).error, /"images" must be an array/);
  // No picture (an empty list or null) is a plain request.
  r = await post(d.url, '/api/generate', { model: 'tiny', prompt: 'x', images: [], stream: false, options: opts });
  assert.equal(r.status, 200);
  r = await post(d.url, '/api/chat', { model: 'tiny', messages: [{ role: 'user', content: 'x', images: null }], stream: false, options: opts });
  assert.equal(r.status, 200);
});

test('prompt_eval_cached_count, Ollama\'s name, with prompt_cached_count as its alias', async () => {
  const body = { model: 'tiny', prompt: 'The same prompt twice', options: opts };
  await ollama.generate(body);
  const again = await ollama.generate(body);
  assert.ok(again.prompt_eval_cached_count > 0, 'the second request reuses the first one\'s prompt');
  assert.ok(again.prompt_eval_cached_count < again.prompt_eval_count);
  assert.equal(again.prompt_cached_count, again.prompt_eval_cached_count);
  const chat = await ollama.chat({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], options: opts });
  assert.equal(typeof chat.prompt_eval_cached_count, 'number');
  assert.equal(chat.prompt_cached_count, chat.prompt_eval_cached_count);
});

test('model names: /v1/models lists what /api/tags lists, and both spellings name the model', async () => {
  const tags = JSON.parse((await get(d.url, '/api/tags')).text).models.map((m) => m.name);
  const v1 = JSON.parse((await get(d.url, '/v1/models')).text).data.map((m) => m.id);
  assert.deepEqual(v1, tags);
  assert.ok(v1.includes('tiny:latest'));
  for (const id of ['tiny', 'tiny:latest']) {
    const m = JSON.parse((await get(d.url, `/v1/models/${id}`)).text);
    assert.equal(m.id, 'tiny:latest');
    const r = await post(d.url, '/v1/chat/completions', { model: id, messages: [{ role: 'user', content: 'x' }], max_tokens: 2 });
    assert.equal(r.status, 200, r.text);
    const g = await ollama.generate({ model: id, prompt: 'x', options: opts });
    assert.equal(g.done, true);
  }
  const ps = JSON.parse((await get(d.url, '/api/ps')).text).models.map((m) => m.name);
  assert.ok(ps.includes('tiny:latest'));
});

test('/v1/completions with an array of prompts: one choice per prompt, with its index', async () => {
  const prompts = ['Once upon a time', 'The weather today', 'In the beginning'];
  const one = async (prompt) => (await openai.completions.create({ model: 'tiny', prompt, max_tokens: 5, temperature: 0 })).choices[0];
  const r = await openai.completions.create({ model: 'tiny', prompt: prompts, max_tokens: 5, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
  let total = 0;
  for (let i = 0; i < prompts.length; i++) {
    const alone = await one(prompts[i]);
    assert.equal(r.choices[i].text, alone.text, `choice ${i} answers prompt ${i}`);
    assert.equal(r.choices[i].finish_reason, 'length');
    total += 5;
  }
  assert.notEqual(r.choices[0].text, r.choices[1].text);
  assert.equal(r.usage.completion_tokens, total);
  assert.ok(r.usage.prompt_tokens > prompts.length);
  await assert.rejects(openai.completions.create({ model: 'tiny', prompt: prompts, max_tokens: 2, stream: true }),
    (e) => e.status === 400 && e.error?.param === 'stream');
  await assert.rejects(openai.completions.create({ model: 'tiny', prompt: [], max_tokens: 2 }),
    (e) => e.status === 400 && e.error?.param === 'prompt');
  await assert.rejects(openai.completions.create({ model: 'tiny', prompt: ['a', 7], max_tokens: 2 }),
    (e) => e.status === 400 && e.error?.param === 'prompt');
});

test('under /v1 every error is OpenAI\'s error object, with param where OpenAI names the field', async () => {
  let r = await get(d.url, '/v1/nothing');
  assert.equal(r.status, 404);
  let e = JSON.parse(r.text).error;
  assert.equal(typeof e, 'object', r.text);
  assert.match(e.message, /no such endpoint: GET \/v1\/nothing/);
  assert.equal(e.type, 'invalid_request_error');
  assert.equal(e.code, 'unknown_url');
  assert.equal(e.param, null);
  r = await get(d.url, '/v1/chat/completions');
  assert.equal(r.status, 405);
  e = JSON.parse(r.text).error;
  assert.equal(e.code, 'method_not_allowed');
  assert.match(e.message, /method GET is not allowed/);
  // Outside /v1 the Ollama shape stays.
  assert.equal(typeof JSON.parse((await get(d.url, '/api/nothing')).text).error, 'string');
  const messages = [{ role: 'user', content: 'x' }];
  for (const [extra, param] of [[{ n: 2 }, 'n'], [{ temperature: 5 }, 'temperature'], [{ top_p: 'x' }, 'top_p'],
    [{ response_format: { type: 'yaml' } }, 'response_format'], [{ stop: [1] }, 'stop'], [{ max_tokens: -1 }, 'max_tokens']]) {
    await assert.rejects(openai.chat.completions.create({ model: 'tiny', messages, ...extra }),
      (err) => err instanceof OpenAI.BadRequestError && err.param === param, JSON.stringify(extra));
  }
  await assert.rejects(openai.completions.create({ model: 'tiny', prompt: 'x', temperature: 5 }),
    (err) => err.status === 400 && err.param === 'temperature');
});

test('/api/tags and /api/ps: details from the GGUF header, digest from the manifest', async () => {
  await ollama.generate({ model: 'tiny', prompt: 'x', options: opts });
  const tags = (await ollama.list()).models;
  const tiny = tags.find((m) => m.name === 'tiny:latest');
  assert.equal(tiny.digest, sha256File(tinyPath));
  assert.equal(tags.find((m) => m.name === 'bare:latest').digest, '', 'not known until verified');
  for (const m of tags) {
    const fam = ['qwen25:latest', 'qwq:latest'].includes(m.name) ? 'qwen2' : 'llama';
    assert.deepEqual({ format: m.details.format, family: m.details.family, families: m.details.families }, { format: 'gguf', family: fam, families: [fam] });
    assert.match(m.details.parameter_size, /^\d+(\.\d+)?[KMB]$/);
    assert.match(m.details.quantization_level, /^[A-Z0-9_]+$/);
  }
  const ps = (await ollama.ps()).models.find((m) => m.name === 'tiny:latest');
  assert.equal(ps.digest, tiny.digest);
  assert.deepEqual(ps.details, tiny.details, '/api/ps says what /api/tags says');
});

test('suffix on /api/generate: fill in the middle with the model\'s FIM tokens, a 400 without them', async () => {
  const prefix = 'def add(a, b):\n    ';
  const suffix = '\n    return c\n';
  const o = { num_predict: 6, temperature: 0 };
  const fim = await ollama.generate({ model: 'coder', prompt: prefix, suffix, options: o });
  assert.equal(fim.done, true);
  assert.equal(fim.eval_count, 6);
  // The same tokens as the FIM prompt written out by hand, raw.
  const raw = await ollama.generate({ model: 'coder', prompt: `<|fim_prefix|>${prefix}<|fim_suffix|>${suffix}<|fim_middle|>`, raw: true, options: o });
  assert.deepEqual(fim.context, raw.context);
  assert.equal(fim.response, raw.response);
  // Not the plain prompt: the suffix is used.
  const plain = await ollama.generate({ model: 'coder', prompt: prefix, raw: true, options: o });
  assert.ok(fim.prompt_eval_count > plain.prompt_eval_count + 3);
  await assert.rejects(ollama.generate({ model: 'tiny', prompt: prefix, suffix, options: o }),
    (e) => e.status_code === 400 && /"suffix": model "tiny" does not support insert/.test(e.message));
  await assert.rejects(ollama.generate({ model: 'coder', prompt: prefix, suffix, format: { type: 'object' }, options: o }),
    (e) => e.status_code === 400 && /"format"/.test(e.message));
  const r = await post(d.url, '/api/generate', { model: 'coder', prompt: 'x', suffix: 5 });
  assert.equal(r.status, 400);
  assert.match(JSON.parse(r.text).error, /"suffix" must be a string/);
});

test('a conversation longer than the context keeps the system message and the newest turns', async () => {
  const system = { role: 'system', content: 'You are the archivist of the northern library. Answer in one short sentence.' };
  const words = 'the quick brown fox jumps over a lazy dog near the river bank today';
  const messages = [system];
  for (let i = 0; i < 40; i++) {
    messages.push({ role: 'user', content: `Question ${i}: ${words} `.repeat(5) });
    messages.push({ role: 'assistant', content: `Answer ${i}: ${words} `.repeat(5) });
  }
  messages.push({ role: 'user', content: 'And the last question?' });
  const o = { num_predict: 3, temperature: 0, num_ctx: 2048 };
  // Over 5,000 tokens: refused whole when the caller asks for no truncation.
  let r = await post(d.url, '/api/chat', { model: 'tiny', messages, stream: false, truncate: false, options: o });
  assert.equal(r.status, 400);
  const m = JSON.parse(r.text).error.match(/the prompt is (\d+) tokens; the limit is (\d+)/);
  assert.ok(m && Number(m[1]) > 5000 && Number(m[2]) < 2048, r.text);

  // The system prompt precharged: the truncated conversation still starts with it.
  const pre = JSON.parse((await post(d.url, '/api/precharge', { model: 'tiny', context: [system], wait: true })).text);
  assert.ok(pre.context_tokens > 0, JSON.stringify(pre));
  const chat = await ollama.chat({ model: 'tiny', messages, options: o });
  assert.equal(chat.done, true);
  assert.ok(chat.truncated_messages > 40 && chat.truncated_messages < 80, `dropped ${chat.truncated_messages}`);
  assert.ok(chat.prompt_eval_count < 2048 && chat.prompt_eval_count > 1000, `${chat.prompt_eval_count} tokens kept`);
  assert.ok(chat.prompt_eval_cached_count >= pre.context_tokens, 'the precharged system prompt leads the kept part');
  // Streamed too; the newest turns are kept (the same ones: the same prompt length).
  const parts = [];
  for await (const p of await ollama.chat({ model: 'tiny', messages, options: o, stream: true })) parts.push(p);
  assert.equal(parts.at(-1).truncated_messages, chat.truncated_messages);
  assert.equal(parts.at(-1).prompt_eval_count, chat.prompt_eval_count);

  // The system message alone over the context: still a 400.
  r = await post(d.url, '/api/chat', { model: 'tiny', stream: false, options: o,
    messages: [{ role: 'system', content: words.repeat(200) }, { role: 'user', content: 'hi' }] });
  assert.equal(r.status, 400);
  assert.match(JSON.parse(r.text).error, /the prompt is \d+ tokens/);
  // A short conversation says nothing of truncation.
  assert.equal((await ollama.chat({ model: 'tiny', messages: [system, { role: 'user', content: 'hi' }], options: o })).truncated_messages, undefined);
});

test('logprobs and top_logprobs in each API\'s shape, from the sampled step\'s logits', async () => {
  const messages = [{ role: 'user', content: 'Tell me a story' }];
  const near = (a, b) => Math.abs(a - b) < 1e-3;
  const checkEntry = (e, nTop) => {
    assert.equal(typeof e.token, 'string');
    assert.ok(e.logprob <= 0 && Number.isFinite(e.logprob), JSON.stringify(e));
    assert.deepEqual(Buffer.from(e.bytes).toString('utf8').length >= 0, true);
    assert.equal(e.top_logprobs.length, nTop);
    for (let i = 1; i < nTop; i++) assert.ok(e.top_logprobs[i - 1].logprob >= e.top_logprobs[i].logprob, 'best first');
    // Greedy: the sampled token is the best one, with its log-probability.
    if (nTop > 0) {
      assert.equal(e.top_logprobs[0].token, e.token);
      assert.ok(near(e.top_logprobs[0].logprob, e.logprob));
    }
  };
  // OpenAI chat, whole and streamed: the same tokens.
  const r = await openai.chat.completions.create({ model: 'tiny', messages, max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 3 });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, 5);
  content.forEach((e) => checkEntry(e, 3));
  assert.equal(content.map((e) => e.token).join(''), r.choices[0].message.content);
  const streamed = [];
  for await (const c of await openai.chat.completions.create({ model: 'tiny', messages, max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 3, stream: true }))
    streamed.push(...(c.choices[0]?.logprobs?.content ?? []));
  assert.deepEqual(streamed.map((e) => e.token), content.map((e) => e.token));
  assert.ok(streamed.every((e, i) => near(e.logprob, content[i].logprob)));
  // Not asked: null.
  assert.equal((await openai.chat.completions.create({ model: 'tiny', messages, max_tokens: 2, temperature: 0 })).choices[0].logprobs, null);
  await assert.rejects(openai.chat.completions.create({ model: 'tiny', messages, max_tokens: 2, top_logprobs: 2 }),
    (e) => e.status === 400 && e.param === 'top_logprobs');
  await assert.rejects(openai.chat.completions.create({ model: 'tiny', messages, max_tokens: 2, logprobs: true, top_logprobs: 21 }),
    (e) => e.status === 400 && e.param === 'top_logprobs');

  // OpenAI completions: the legacy shape.
  const c = await openai.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 4, temperature: 0, logprobs: 2 });
  const lp = c.choices[0].logprobs;
  assert.equal(lp.tokens.length, 4);
  assert.equal(lp.tokens.join(''), c.choices[0].text);
  assert.equal(lp.token_logprobs.length, 4);
  assert.ok(lp.token_logprobs.every((x) => x <= 0));
  assert.ok(lp.top_logprobs.every((t) => Object.keys(t).length >= 1 && Object.keys(t).length <= 2));
  assert.equal(lp.text_offset[0], 0);
  assert.ok(lp.text_offset.every((x, i) => i === 0 || x >= lp.text_offset[i - 1]));
  await assert.rejects(openai.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 2, logprobs: 6 }),
    (e) => e.status === 400 && e.param === 'logprobs');

  // Ollama: "logprobs" beside each chunk's text; the same numbers as OpenAI's for the same prompt.
  const g = await ollama.chat({ model: 'tiny', messages, options: { num_predict: 5, temperature: 0 }, logprobs: true, top_logprobs: 3 });
  assert.equal(g.logprobs.length, 5);
  g.logprobs.forEach((e) => checkEntry(e, 3));
  assert.deepEqual(g.logprobs.map((e) => e.token), content.map((e) => e.token));
  const parts = [];
  for await (const p of await ollama.generate({ model: 'tiny', prompt: 'Once upon a time', raw: true, options: { num_predict: 4, temperature: 0 }, logprobs: true, stream: true }))
    parts.push(...(p.logprobs ?? []));
  assert.equal(parts.length, 4);
  parts.forEach((e) => checkEntry(e, 0));
  assert.deepEqual(parts.map((e) => e.token), lp.tokens, 'raw generate and /v1/completions see the same prompt');
  assert.equal((await ollama.generate({ model: 'tiny', prompt: 'x', options: opts })).logprobs, undefined);
});

test('the Responses API through the openai client: text, instructions, streaming events, previous_response_id, schema, tools', async () => {
  const base = { model: 'tiny', instructions: 'You are terse.', max_output_tokens: 6, temperature: 0 };
  const r = await openai.responses.create({ ...base, input: 'Tell me about the sea' });
  assert.equal(r.object, 'response');
  assert.match(r.id, /^resp_/);
  assert.equal(r.status, 'incomplete');
  assert.equal(r.incomplete_details.reason, 'max_output_tokens');
  assert.equal(r.output[0].type, 'message');
  assert.equal(r.output[0].content[0].type, 'output_text');
  assert.equal(r.output_text, r.output[0].content[0].text);
  assert.ok(r.output_text.length > 0);
  assert.equal(r.usage.output_tokens, 6);
  assert.equal(r.usage.total_tokens, r.usage.input_tokens + 6);
  assert.equal(r.instructions, 'You are terse.');

  // Streamed: typed events in order, the deltas add up to the same text.
  const types = [];
  let text = '';
  let done;
  for await (const e of await openai.responses.create({ ...base, input: 'Tell me about the sea', stream: true })) {
    types.push(e.type);
    if (e.type === 'response.output_text.delta') text += e.delta;
    if (e.type === 'response.completed') done = e.response;
  }
  assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
  assert.ok(types.includes('response.output_text.delta'));
  assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed']);
  assert.equal(text, r.output_text);
  assert.equal(done.output[0].content[0].text, text);
  assert.equal(done.usage.output_tokens, 6);

  // previous_response_id: the conversation goes on, its earlier part reused from the context.
  const r2 = await openai.responses.create({ ...base, input: 'And the mountains?', previous_response_id: r.id });
  assert.equal(r2.previous_response_id, r.id);
  assert.ok(r2.usage.input_tokens > r.usage.input_tokens + 6, 'the earlier turns are in the prompt');
  assert.ok(r2.usage.input_tokens_details.cached_tokens > 0, `and were reused: ${JSON.stringify(r2.usage)}`);
  await assert.rejects(openai.responses.create({ ...base, input: 'x', previous_response_id: 'resp_nope' }),
    (e) => e.status === 404 && e.param === 'previous_response_id' && e.code !== 'model_not_found');

  // text.format json_schema: the grammar holds the answer to the schema.
  const schema = { type: 'object', properties: { name: { type: 'string', enum: ['Ada', 'Bob'] } }, required: ['name'], additionalProperties: false };
  const s = await openai.responses.create({ model: 'tiny', input: 'Who?', max_output_tokens: 40, temperature: 0,
    text: { format: { type: 'json_schema', name: 'person', schema, strict: true } } });
  assert.ok(['Ada', 'Bob'].includes(JSON.parse(s.output_text).name), s.output_text);

  // Function tools: a required call comes back as a function_call item; its output goes on.
  const tools = [{ type: 'function', name: 'get_weather', description: 'The weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Rome'] } }, required: ['city'] } }];
  const t = await openai.responses.create({ model: 'qwen25', input: 'Weather in Paris?', tools, tool_choice: 'required', parallel_tool_calls: false, max_output_tokens: 300, temperature: 0 });
  const call = t.output.find((o) => o.type === 'function_call');
  assert.ok(call, JSON.stringify(t.output));
  assert.equal(call.name, 'get_weather');
  assert.ok(['Paris', 'Rome'].includes(JSON.parse(call.arguments).city));
  const t2 = await openai.responses.create({ model: 'qwen25', previous_response_id: t.id, tools, max_output_tokens: 4, temperature: 0,
    input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"celsius": 21}' }] });
  assert.ok(t2.usage.input_tokens > t.usage.input_tokens);

  // What is not served is refused by name.
  for (const [extra, param] of [[{ reasoning: { effort: 'low' } }, 'reasoning'], [{ truncation: 'auto' }, 'truncation'],
    [{ tools: [{ type: 'web_search' }] }, 'tools'], [{ temperature: 3 }, 'temperature']]) {
    await assert.rejects(openai.responses.create({ model: 'tiny', input: 'x', ...extra }),
      (e) => e.status === 400 && e.param === param, JSON.stringify(extra));
  }
  await assert.rejects(openai.responses.create({ model: 'tiny', input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'data:image/png;base64,AA==' }] }] }),
    (e) => e.status === 400 && /input_text/.test(e.message));
});

test('sampling options typical_p and mirostat change a seeded answer; tfs_z and penalize_newline take only their neutral values', async () => {
  const prompt = 'Once upon a time';
  const base = { seed: 11, temperature: 1.5, top_k: 0, top_p: 1, num_predict: 16 };
  const gen = async (extra) => (await ollama.generate({ model: 'tiny', prompt, options: { ...base, ...extra } })).response;
  const plain = await gen({});
  assert.equal(await gen({}), plain, 'the same seed gives the same answer');
  // Each option, set, gives another answer than without it (ignored, it would give the same),
  // and the same one twice.
  const cases = [
    ['typical_p', { typical_p: 0.2 }, {}],
    ['mirostat', { mirostat: 2, mirostat_tau: 0.5 }, { mirostat_tau: 0.5 }],
    ['mirostat 1', { mirostat: 1, mirostat_tau: 0.5 }, { mirostat_tau: 0.5 }],
    ['mirostat_tau', { mirostat: 2, mirostat_tau: 0.5 }, { mirostat: 2, mirostat_tau: 10 }],
    ['mirostat_eta', { mirostat: 2, mirostat_tau: 3, mirostat_eta: 0 }, { mirostat: 2, mirostat_tau: 3, mirostat_eta: 1 }],
  ];
  for (const [name, on, off] of cases) {
    const a = await gen(on);
    assert.notEqual(a, await gen(off), `${name} changes the answer`);
    assert.equal(a, await gen(on), `${name}: the same seed gives the same answer`);
  }
  // Mirostat with no room for surprise keeps the likeliest token: the greedy answer.
  assert.equal(await gen({ mirostat: 2, mirostat_tau: 0, mirostat_eta: 0 }), await gen({ temperature: 0 }));
  // Neutral values of the removed samplers are a plain request; any other value a 400 naming it.
  assert.equal(await gen({ tfs_z: 1.0, penalize_newline: false }), plain);
  for (const [opt, why] of [[{ tfs_z: 0.95 }, /options\.tfs_z: tail-free sampling is not supported/],
    [{ penalize_newline: true }, /options\.penalize_newline: not supported/],
    [{ mirostat: 3 }, /options\.mirostat must be between 0 and 2/],
    [{ mirostat: 1.5 }, /options\.mirostat must be 0, 1 or 2/],
    [{ typical_p: 2 }, /options\.typical_p must be between 0 and 1/],
    [{ mirostat_eta: 'x' }, /options\.mirostat_eta must be a number/]]) {
    const r = await post(d.url, '/api/generate', { model: 'tiny', prompt, stream: false, options: opt });
    assert.equal(r.status, 400, JSON.stringify(opt));
    assert.match(JSON.parse(r.text).error, why);
  }
});

test('logit_bias on /v1/completions and /v1/chat/completions: -100 bans a token, 100 forces one, bad keys and values are a 400', async () => {
  const prompt = 'The quick brown fox';
  // The greedy answer's first token id, from Ollama's context (the same prompt, the same chain).
  const g = await ollama.generate({ model: 'tiny', prompt, raw: true, options: { temperature: 0, repeat_penalty: 1, num_predict: 1 } });
  const first = g.context.at(-1);
  const greedy = await openai.completions.create({ model: 'tiny', prompt, max_tokens: 8, temperature: 0, logprobs: 0 });
  const tok = greedy.choices[0].logprobs.tokens[0];
  const banned = await openai.completions.create({ model: 'tiny', prompt, max_tokens: 8, temperature: 0, logprobs: 0, logit_bias: { [first]: -100 } });
  assert.notEqual(banned.choices[0].text, greedy.choices[0].text);
  assert.ok(!banned.choices[0].logprobs.tokens.includes(tok), `token ${first} (${JSON.stringify(tok)}) never appears: ${JSON.stringify(banned.choices[0].logprobs.tokens)}`);
  // A small bias is served as a bias: it does not ban.
  const nudged = await openai.completions.create({ model: 'tiny', prompt, max_tokens: 8, temperature: 0, logit_bias: { [first]: -0.0001 } });
  assert.equal(nudged.choices[0].text, greedy.choices[0].text);
  // The chat: 100 makes that token the answer.
  const chat = await openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, temperature: 0, logprobs: true, logit_bias: { [first]: 100 } });
  assert.deepEqual(chat.choices[0].logprobs.content.map((c) => c.token), [tok, tok, tok]);
  for (const [bias, why] of [[{ abc: 1 }, /key "abc" is not a token id/], [{ '-1': 1 }, /key "-1" is not a token id/],
    [{ 5: 101 }, /logit_bias\["5"\] must be a number from -100 to 100/], [{ 5: 'x' }, /must be a number/],
    [{ 99999999: 1 }, /token 99999999 is not in the model's vocabulary/], [[1], /must be an object/]]) {
    for (const route of ['completions', 'chat.completions']) {
      const body = { model: 'tiny', max_tokens: 1, logit_bias: bias };
      const p = route === 'completions' ? openai.completions.create({ ...body, prompt }) : openai.chat.completions.create({ ...body, messages: [{ role: 'user', content: 'x' }] });
      await assert.rejects(p, (e) => e.status === 400 && e.error?.param === 'logit_bias' && why.test(e.message), `${route} ${JSON.stringify(bias)}`);
    }
  }
});

test('/v1/chat/completions: identifiers are checked and logged, stored completions and audio are refused, service_tier is echoed', async () => {
  const messages = [{ role: 'user', content: 'hi' }];
  const base = { model: 'tiny', messages, max_tokens: 3, temperature: 0 };
  const plain = await openai.chat.completions.create(base);
  // Identifiers change nothing in the answer, and each is logged with the request's id.
  const ids = { user: 'user-4242', safety_identifier: 'hash-abcdef', prompt_cache_key: 'conv-17' };
  const r = await openai.chat.completions.create({ ...base, ...ids, store: false, service_tier: 'auto', modalities: ['text'], verbosity: 'medium', metadata: {}, prediction: { type: 'content', content: 'hello there' } });
  assert.equal(r.choices[0].message.content, plain.choices[0].message.content);
  assert.equal(r.service_tier, 'default');
  assert.equal(plain.service_tier, undefined);
  assert.match(d.log(), new RegExp(`/v1/chat/completions ${r.id}: user="user-4242" safety_identifier="hash-abcdef" prompt_cache_key="conv-17"`));
  const refused = [
    [{ user: 7 }, 'user', /"user" must be a string/],
    [{ safety_identifier: 'x'.repeat(65) }, 'safety_identifier', /longer than 64/],
    [{ prompt_cache_key: ['a'] }, 'prompt_cache_key', /must be a string/],
    [{ store: true }, 'store', /not stored/],
    [{ metadata: { k: 'v' } }, 'metadata', /store: true/],
    [{ service_tier: 'flex' }, 'service_tier', /"auto" or "default"/],
    [{ modalities: ['text', 'audio'] }, 'modalities', /only \["text"\]/],
    [{ audio: { voice: 'alloy', format: 'wav' } }, 'audio', /no audio output/],
    [{ web_search_options: {} }, 'web_search_options', /no web search/],
    [{ verbosity: 'low' }, 'verbosity', /only "medium"/],
    [{ prediction: { type: 'content' } }, 'prediction', /"prediction" must be/],
    [{ keep_alive: [] }, 'keep_alive', /keep_alive/],
  ];
  for (const [extra, param, why] of refused)
    await assert.rejects(openai.chat.completions.create({ ...base, ...extra }), (e) => e.status === 400 && e.error?.param === param && why.test(e.message), JSON.stringify(extra));
  // keep_alive, Ollama's field, is served here too: 0 unloads the model after the answer.
  await post(d.url, '/v1/chat/completions', { ...base, keep_alive: 0 });
  assert.ok(!JSON.parse((await get(d.url, '/api/ps')).text).models.some((m) => m.name === 'tiny:latest'));
  // /v1/completions takes the identifiers, and refuses the chat's own fields.
  await openai.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 1, user: 'u1' });
  for (const f of [{ messages: messages }, { tools: [] }, { tool_choice: 'auto' }, { reasoning_effort: 'low' }])
    await assert.rejects(openai.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 1, ...f }),
      (e) => e.status === 400 && e.error?.param === Object.keys(f)[0] && /belongs to \/v1\/chat\/completions/.test(e.message));
});

test('/v1/chat/completions: message fields with no place here are a 400 naming them; stream_options; a participant\'s name', async () => {
  const messages = [{ role: 'user', content: 'hi' }];
  for (const [field, value] of [['audio', { id: 'a1' }], ['refusal', 'no']]) {
    const m = [...messages, { role: 'assistant', content: 'x', [field]: value }, { role: 'user', content: 'y' }];
    await assert.rejects(openai.chat.completions.create({ model: 'tiny', messages: m, max_tokens: 1 }),
      (e) => e.status === 400 && e.error?.param === 'messages' && new RegExp(`messages\\[1\\]\\.${field} is not supported`).test(e.message));
  }
  await assert.rejects(openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x', prefix: true }], max_tokens: 1 }),
    (e) => e.status === 400 && e.error?.param === 'messages' && /messages\[0\]\.prefix is not a field/.test(e.message));
  // stream_options: include_obfuscation is taken (no padding), another key is a 400.
  let r = await post(d.url, '/v1/chat/completions', { model: 'tiny', messages, max_tokens: 1, stream: true, stream_options: { include_usage: true, include_obfuscation: false } });
  assert.equal(r.status, 200);
  assert.match(r.text, /"usage"/);
  r = await post(d.url, '/v1/chat/completions', { model: 'tiny', messages, max_tokens: 1, stream: true, stream_options: { chunk_size: 4 } });
  assert.equal(r.status, 400);
  assert.match(JSON.parse(r.text).error.message, /stream_options\.chunk_size is not supported/);
  assert.equal(JSON.parse(r.text).error.param, 'stream_options');
  // The tools' fields are named as param.
  for (const [extra, param] of [[{ tools: 'x' }, 'tools'], [{ tool_choice: 'sometimes' }, 'tool_choice'], [{ parallel_tool_calls: 1 }, 'parallel_tool_calls'], [{ reasoning_effort: 3 }, 'reasoning_effort']])
    await assert.rejects(openai.chat.completions.create({ model: 'tiny', messages, max_tokens: 1, ...extra }), (e) => e.status === 400 && e.error?.param === param, JSON.stringify(extra));
  // A participant's name on a user message is taken (not rendered: templates have no place for it).
  const named = await openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'hi', name: 'ada' }], max_tokens: 1 });
  assert.equal(named.choices.length, 1);
});

test('/v1/completions: suffix fills in the middle as /api/generate does, echo prepends the prompt, best_of is 1', async () => {
  const prompt = 'def add(a, b):\n    return ';
  const suffix = '\n\nprint(add(1, 2))\n';
  const fim = await openai.completions.create({ model: 'coder', prompt, suffix, max_tokens: 6, temperature: 0 });
  const viaOllama = await ollama.generate({ model: 'coder', prompt, suffix, options: { temperature: 0, repeat_penalty: 1, num_predict: 6 } });
  assert.equal(fim.choices[0].text, viaOllama.response, 'the same FIM prompt as /api/generate');
  const plain = await openai.completions.create({ model: 'coder', prompt, max_tokens: 6, temperature: 0 });
  assert.notEqual(fim.choices[0].text, plain.choices[0].text, 'the suffix is read');
  // Several prompts take the suffix each.
  const two = await openai.completions.create({ model: 'coder', prompt: [prompt, prompt], suffix, max_tokens: 6, temperature: 0 });
  assert.deepEqual(two.choices.map((c) => c.text), [fim.choices[0].text, fim.choices[0].text]);
  await assert.rejects(openai.completions.create({ model: 'tiny', prompt, suffix, max_tokens: 2 }),
    (e) => e.status === 400 && e.error?.param === 'suffix' && /does not support insert/.test(e.message));
  // echo: the prompt, then the answer; streamed, the prompt is the first chunk.
  const base = { model: 'tiny', prompt: 'Once upon a time', max_tokens: 5, temperature: 0 };
  const answer = (await openai.completions.create(base)).choices[0].text;
  const echoed = await openai.completions.create({ ...base, echo: true });
  assert.equal(echoed.choices[0].text, base.prompt + answer);
  const stream = await openai.completions.create({ ...base, echo: true, stream: true });
  const parts = [];
  for await (const c of stream) parts.push(c.choices[0]?.text ?? '');
  assert.equal(parts[0], base.prompt);
  assert.equal(parts.join(''), base.prompt + answer);
  const many = await openai.completions.create({ ...base, prompt: ['A', 'B'], echo: true });
  assert.ok(many.choices[0].text.startsWith('A') && many.choices[1].text.startsWith('B'));
  await assert.rejects(openai.completions.create({ ...base, echo: true, logprobs: 1 }),
    (e) => e.status === 400 && e.error?.param === 'echo' && /prompt's log-probabilities/.test(e.message));
  // best_of: one answer is n's, 1.
  assert.equal((await openai.completions.create({ ...base, best_of: 1 })).choices[0].text, answer);
  await assert.rejects(openai.completions.create({ ...base, best_of: 3 }), (e) => e.status === 400 && e.error?.param === 'best_of');
});

test('logprobs: the tokens a stop string removes are not in logprobs, streamed or not', async () => {
  const prompt = 'The quick brown fox jumps';
  const base = { model: 'tiny', prompt, max_tokens: 12, temperature: 0, logprobs: 0 };
  const full = (await openai.completions.create(base)).choices[0];
  const toks = full.logprobs.tokens;
  assert.equal(toks.join(''), full.text);
  // A stop string that begins where token k begins (its first appearance in the answer).
  let k = -1;
  for (let i = 2; i < toks.length - 1 && k < 0; i++) {
    const at = toks.slice(0, i).join('').length;
    if (toks[i].length > 0 && full.text.indexOf(toks[i]) === at) k = i;
  }
  assert.ok(k > 0, `a usable stop in ${JSON.stringify(toks)}`);
  const stop = toks[k];
  const cut = (await openai.completions.create({ ...base, stop })).choices[0];
  assert.equal(cut.finish_reason, 'stop');
  assert.equal(cut.text, toks.slice(0, k).join(''));
  assert.deepEqual(cut.logprobs.tokens, toks.slice(0, k), 'only the tokens whose text is in the answer');
  assert.equal(cut.logprobs.token_logprobs.length, k);
  // Streamed: the chunks' logprobs together are the same tokens.
  const stream = await openai.completions.create({ ...base, stop, stream: true });
  const streamed = [];
  for await (const c of stream) streamed.push(...(c.choices[0]?.logprobs?.tokens ?? []));
  assert.deepEqual(streamed, toks.slice(0, k));
  // The chat's shape: logprobs.content.
  const chat = await openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: prompt }], max_tokens: 12, temperature: 0, logprobs: true });
  const ct = chat.choices[0].logprobs.content.map((c) => c.token);
  const j = ct.findIndex((t, i) => i >= 2 && t.length > 0 && chat.choices[0].message.content.indexOf(t) === ct.slice(0, i).join('').length);
  if (j > 0) {
    const cc = await openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: prompt }], max_tokens: 12, temperature: 0, logprobs: true, stop: ct[j] });
    assert.deepEqual(cc.choices[0].logprobs.content.map((c) => c.token), ct.slice(0, j));
  }
});

test('/v1/responses: store false is not kept, identifiers are logged, text.verbosity, strict, items\' id and status, a reasoning item when the model thinks', async () => {
  const base = { model: 'tiny', max_output_tokens: 4, temperature: 0 };
  // store: false answers, says so, and is not kept: a later previous_response_id cannot find it.
  const unstored = await openai.responses.create({ ...base, input: 'Hello', store: false });
  assert.equal(unstored.store, false);
  await assert.rejects(openai.responses.create({ ...base, input: 'Again', previous_response_id: unstored.id }),
    (e) => e.status === 404 && e.param === 'previous_response_id');
  const stored = await openai.responses.create({ ...base, input: 'Hello' });
  assert.equal(stored.store, true);
  await openai.responses.create({ ...base, input: 'Again', previous_response_id: stored.id });
  await assert.rejects(openai.responses.create({ ...base, input: 'x', store: 'no' }), (e) => e.status === 400 && e.param === 'store');
  // Identifiers: checked, logged with the response's id, no effect on the answer.
  const withIds = await openai.responses.create({ ...base, input: 'Hello', user: 'u-9', safety_identifier: 'sid-1', prompt_cache_key: 'k-2' });
  assert.equal(withIds.output_text, stored.output_text);
  assert.equal(withIds.user, 'u-9');
  assert.match(d.log(), new RegExp(`/v1/responses ${withIds.id}: user="u-9" safety_identifier="sid-1" prompt_cache_key="k-2"`));
  await assert.rejects(openai.responses.create({ ...base, input: 'x', safety_identifier: 'y'.repeat(65) }), (e) => e.status === 400 && e.param === 'safety_identifier');
  // text.verbosity: medium is taken, another is a 400.
  await openai.responses.create({ ...base, input: 'x', text: { verbosity: 'medium' } });
  await assert.rejects(openai.responses.create({ ...base, input: 'x', text: { verbosity: 'high' } }),
    (e) => e.status === 400 && e.param === 'text' && /text\.verbosity: only "medium"/.test(e.message));
  // Function tools' strict: true or false, the arguments match the schema either way; another type is a 400.
  const tool = { type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Rome'] } }, required: ['city'] } };
  for (const strict of [true, false]) {
    const t = await openai.responses.create({ model: 'qwen25', input: 'Weather?', tools: [{ ...tool, strict }], tool_choice: 'required', parallel_tool_calls: false, max_output_tokens: 300, temperature: 0 });
    const call = t.output.find((o) => o.type === 'function_call');
    assert.ok(['Paris', 'Rome'].includes(JSON.parse(call.arguments).city));
  }
  await assert.rejects(openai.responses.create({ ...base, model: 'qwen25', input: 'x', tools: [{ ...tool, strict: 1 }] }),
    (e) => e.status === 400 && /strict must be true or false/.test(e.message));
  // Items sent back from an output keep their id and status; a wrong type is a 400.
  const back = await openai.responses.create({ ...base, input: [{ role: 'user', content: 'Hello' }, { ...stored.output[0] }, { role: 'user', content: 'More' }] });
  assert.equal(back.status, 'incomplete');
  await assert.rejects(openai.responses.create({ ...base, input: [{ role: 'user', content: 'Hello', status: 'done' }] }),
    (e) => e.status === 400 && e.param === 'input' && /status/.test(e.message));
  // A model that thinks: its reasoning is an item of type reasoning before the message, whole and streamed.
  const think = { model: 'qwq', input: 'Hi', max_output_tokens: 6, temperature: 0 };
  const chat = await openai.chat.completions.create({ model: 'qwq', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 6, temperature: 0 });
  const reasoning = chat.choices[0].message.reasoning_content;
  assert.ok(reasoning.length > 0, 'the model thinks');
  const r = await openai.responses.create(think);
  assert.equal(r.output[0].type, 'reasoning');
  assert.match(r.output[0].id, /^rs_/);
  assert.deepEqual(r.output[0].content, [{ type: 'reasoning_text', text: reasoning }]);
  assert.deepEqual(r.output[0].summary, []);
  const types = [];
  let deltas = '';
  let done;
  for await (const e of await openai.responses.create({ ...think, stream: true })) {
    types.push(e.type);
    if (e.type === 'response.reasoning_text.delta') {
      deltas += e.delta;
      assert.equal(e.output_index, 0);
    }
    if (e.type === 'response.completed') done = e.response;
  }
  assert.equal(types[2], 'response.output_item.added');
  assert.ok(types.includes('response.reasoning_text.done'));
  assert.equal(deltas, reasoning);
  assert.deepEqual(done.output.map((o) => o.type), r.output.map((o) => o.type));
  assert.equal(done.output[0].content[0].text, reasoning);
  // A model that does not think has no reasoning item.
  assert.ok(!stored.output.some((o) => o.type === 'reasoning'));
  // The output sent back as input, its reasoning item with it (it goes with the answer after it;
  // alone, it is an answer that only thought).
  const again = await openai.responses.create({ ...think, input: [{ role: 'user', content: 'Hi' }, ...r.output, { role: 'user', content: 'More' }] });
  assert.ok(again.usage.input_tokens > r.usage.input_tokens);
  const alone = await openai.responses.create({ ...think, input: [{ role: 'user', content: 'Hi' }, r.output[0], { role: 'user', content: 'More' }] });
  assert.equal(alone.object, 'response');
  await assert.rejects(openai.responses.create({ ...think, input: [{ type: 'reasoning', id: 'rs_1', summary: [], content: [{ type: 'input_text', text: 'x' }] }] }),
    (e) => e.status === 400 && e.param === 'input' && /reasoning item's parts must be reasoning_text/.test(e.message));
});

test('under /v1 an unknown field is a 400 naming it, as OpenAI answers; llama-server\'s sampling extensions are served', async () => {
  const messages = [{ role: 'user', content: 'hi' }];
  for (const [path, body] of [['/v1/chat/completions', { model: 'tiny', messages }], ['/v1/completions', { model: 'tiny', prompt: 'x' }],
    ['/v1/embeddings', { model: 'tiny', input: 'x' }], ['/v1/responses', { model: 'tiny', input: 'x' }]]) {
    const r = await post(d.url, path, { ...body, cache_prompt: true });
    const e = JSON.parse(r.text).error;
    assert.equal(r.status, 400, path);
    assert.equal(e.param, 'cache_prompt', path);
    assert.match(e.message, new RegExp(`field "cache_prompt" is not supported by this server's ${path.replace(/\//g, '\\/')}`));
  }
  // The chat's fields on /v1/completions, and top_logprobs there, keep their own refusals.
  await assert.rejects(openai.completions.create({ model: 'tiny', prompt: 'x', max_tokens: 1, top_logprobs: 2 }), (e) => e.status === 400 && e.error?.param === 'top_logprobs');
  // top_k, min_p, repeat_penalty, repeat_last_n, typical_p, mirostat...: as in llama-server, they change a seeded answer.
  const base = { model: 'tiny', prompt: 'Once upon a time', max_tokens: 16, temperature: 1.5, seed: 5 };
  const plain = (await post(d.url, '/v1/completions', base)).text;
  const answer = async (extra) => JSON.parse((await post(d.url, '/v1/completions', { ...base, ...extra })).text).choices[0].text;
  const p = JSON.parse(plain).choices[0].text;
  for (const extra of [{ top_k: 1 }, { min_p: 0.9 }, { typical_p: 0.2 }, { mirostat: 2, mirostat_tau: 0.5 }])
    assert.notEqual(await answer(extra), p, JSON.stringify(extra));
  // The greedy answer repeats itself; a repeat penalty over the whole answer changes it.
  assert.notEqual(await answer({ temperature: 0 }), await answer({ temperature: 0, repeat_penalty: 100, repeat_last_n: -1 }));
  assert.equal(await answer({ tfs_z: 1, penalize_newline: false }), p);
  const bad = await post(d.url, '/v1/chat/completions', { model: 'tiny', messages, mirostat: 7 });
  assert.equal(JSON.parse(bad.text).error.param, 'mirostat');
  // keep_alive on /v1/embeddings, as on the other /v1 routes.
  const emb = await post(d.url, '/v1/embeddings', { model: 'tiny', input: 'x', keep_alive: 'x' });
  assert.equal(JSON.parse(emb.text).error.param, 'keep_alive');
});
