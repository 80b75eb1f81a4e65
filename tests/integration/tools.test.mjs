// tools.test.mjs - structured output, tool calls and thinking end to end on tiny models with
// real templates and random weights: the grammar forces the shape, so a required call names a
// given function with arguments that match its schema, and a schema format gives JSON that
// validates, through both APIs, streamed and not. Templates without tools and models that
// cannot think get a 400 naming the model; a precharge with tools leads the later chat.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { MKMODEL, tempHome, makeModel, startDaemon, post, ndjson, cleanup } from './lib.mjs';

let home, d;

const weather = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', enum: ['Paris', 'Rome'] }, days: { type: 'integer', minimum: 1, maximum: 7 } },
      required: ['city', 'days'],
    },
  },
};
const time = {
  type: 'function',
  function: { name: 'get_time', description: 'The time in a city', parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Oslo', 'Lima'] } }, required: ['city'] } },
};
const tools = [weather, time];
const person = {
  type: 'object',
  properties: { name: { type: 'string', enum: ['Ada', 'Bob'] }, age: { type: 'integer', minimum: 0, maximum: 120 } },
  required: ['name', 'age'],
};
const question = [{ role: 'user', content: 'Weather in Paris for 3 days?' }];

function model(name, args) {
  execFileSync(MKMODEL, ['--preset', 'tiny', ...args, '-q', '-o', join(home, 'models', `${name}.gguf`)]);
}

before(async () => {
  home = tempHome('tools');
  makeModel(home, 'tiny'); // TinyLlama's template: no tools, no thinking
  model('qwen25', ['--arch', 'qwen2', '--template', 'Qwen-Qwen2.5-7B-Instruct']);
  model('qwen3', ['--arch', 'qwen2', '--template', 'Qwen-Qwen3-0.6B']);
  d = await startDaemon({ home });
});
after(async () => {
  assert.equal(await d.stop(), 0);
  cleanup(home);
});

// A call as the schema of the function it names allows.
function checkCall(name, args) {
  const t = tools.find((x) => x.function.name === name);
  assert.ok(t, `the call names a given function: ${name}`);
  const a = typeof args === 'string' ? JSON.parse(args) : args;
  assert.equal(typeof a, 'object');
  const props = t.function.parameters.properties;
  for (const k of t.function.parameters.required) assert.ok(k in a, `${name} has ${k}: ${JSON.stringify(a)}`);
  for (const [k, v] of Object.entries(a)) {
    assert.ok(k in props, `${k} is a parameter of ${name}`);
    if (props[k].enum) assert.ok(props[k].enum.includes(v), `${k} = ${v}`);
    if (props[k].type === 'integer') assert.ok(Number.isInteger(v) && v >= props[k].minimum && v <= props[k].maximum, `${k} = ${v}`);
  }
}

// The chunks of an OpenAI stream (data: lines), without [DONE].
const sse = (text) => text.split('\n\n').filter((f) => f.startsWith('data: ') && f !== 'data: [DONE]').map((f) => JSON.parse(f.slice(6)));

function checkPerson(text) {
  const p = JSON.parse(text);
  assert.deepEqual(Object.keys(p).sort(), ['age', 'name']);
  assert.ok(['Ada', 'Bob'].includes(p.name));
  assert.ok(Number.isInteger(p.age) && p.age >= 0 && p.age <= 120);
}

const oaiBody = (extra) => ({ model: 'qwen25', messages: question, tools, tool_choice: 'required', max_tokens: 300, temperature: 0, ...extra });

test('OpenAI: tool_choice required gives tool_calls that match their schema', async () => {
  const r = await post(d.url, '/v1/chat/completions', oaiBody({}));
  assert.equal(r.status, 200, r.text);
  const choice = JSON.parse(r.text).choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.content, null);
  assert.ok(choice.message.tool_calls.length >= 1);
  for (const c of choice.message.tool_calls) {
    assert.equal(c.type, 'function');
    assert.match(c.id, /^call_[A-Za-z0-9]{24}$/);
    checkCall(c.function.name, c.function.arguments);
  }
});

test('OpenAI streamed: delta.tool_calls with index, id, name and arguments', async () => {
  const r = await post(d.url, '/v1/chat/completions', oaiBody({ stream: true }));
  assert.equal(r.status, 200);
  const chunks = sse(r.text);
  const calls = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
  assert.ok(calls.length >= 1, r.text);
  calls.forEach((c, i) => {
    assert.equal(c.index, i);
    checkCall(c.function.name, c.function.arguments);
  });
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls');
});

test('OpenAI: a named tool_choice calls that function', async () => {
  const r = JSON.parse((await post(d.url, '/v1/chat/completions', oaiBody({ tool_choice: { type: 'function', function: { name: 'get_time' } } }))).text);
  assert.ok(r.choices[0].message.tool_calls.length >= 1);
  for (const c of r.choices[0].message.tool_calls) {
    assert.equal(c.function.name, 'get_time');
    checkCall(c.function.name, c.function.arguments);
  }
});

test('OpenAI: parallel_tool_calls false gives one call, and the answer ends with it', async () => {
  const body = oaiBody({ parallel_tool_calls: false, max_tokens: 400 });
  const r = JSON.parse((await post(d.url, '/v1/chat/completions', body)).text);
  assert.equal(r.choices[0].message.tool_calls.length, 1, JSON.stringify(r));
  checkCall(r.choices[0].message.tool_calls[0].function.name, r.choices[0].message.tool_calls[0].function.arguments);
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  const chunks = sse((await post(d.url, '/v1/chat/completions', { ...body, stream: true })).text);
  const calls = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
  assert.equal(calls.length, 1);
  checkCall(calls[0].function.name, calls[0].function.arguments);
});

test('Ollama: tools with tool_choice required, streamed and not: message.tool_calls', async () => {
  const body = { model: 'qwen25', messages: question, tools, tool_choice: 'required', options: { num_predict: 300, temperature: 0 } };
  const whole = JSON.parse((await post(d.url, '/api/chat', { ...body, stream: false })).text);
  assert.ok(whole.message.tool_calls.length >= 1, JSON.stringify(whole));
  for (const c of whole.message.tool_calls) checkCall(c.function.name, c.function.arguments);
  const lines = ndjson((await post(d.url, '/api/chat', body)).text);
  const calls = lines.flatMap((l) => l.message?.tool_calls ?? []);
  assert.ok(calls.length >= 1);
  for (const c of calls) checkCall(c.function.name, c.function.arguments);
  assert.equal(lines.at(-1).done, true);
});

test('a JSON schema format gives JSON that validates, through both APIs, streamed and not', async () => {
  const ollama = { model: 'qwen25', messages: [{ role: 'user', content: 'Who?' }], format: person, options: { num_predict: 400, temperature: 0 } };
  checkPerson(JSON.parse((await post(d.url, '/api/chat', { ...ollama, stream: false })).text).message.content);
  checkPerson(ndjson((await post(d.url, '/api/chat', ollama)).text).map((l) => l.message.content).join(''));
  const gen = JSON.parse((await post(d.url, '/api/generate', { model: 'qwen25', prompt: 'Who?', format: person, stream: false, options: { num_predict: 400, temperature: 0 } })).text);
  checkPerson(gen.response);
  const oai = { model: 'qwen25', messages: [{ role: 'user', content: 'Who?' }], max_tokens: 400, temperature: 0, response_format: { type: 'json_schema', json_schema: { name: 'person', schema: person, strict: true } } };
  const r = JSON.parse((await post(d.url, '/v1/chat/completions', oai)).text);
  assert.equal(r.choices[0].finish_reason, 'stop');
  checkPerson(r.choices[0].message.content);
  checkPerson(sse((await post(d.url, '/v1/chat/completions', { ...oai, stream: true })).text).map((c) => c.choices[0]?.delta?.content ?? '').join(''));
});

test('thinking: think true on a model that can, false renders it off; 400 on one that cannot', async () => {
  const on = await post(d.url, '/api/chat', { model: 'qwen3', think: true, stream: false, messages: question, options: { num_predict: 4 } });
  assert.equal(on.status, 200, on.text);
  const off = await post(d.url, '/api/chat', { model: 'qwen3', think: false, stream: false, messages: question, options: { num_predict: 4 } });
  assert.equal(off.status, 200);
  // Off renders an empty thinking block into the prompt: more prompt tokens than on.
  assert.ok(JSON.parse(off.text).prompt_eval_count > JSON.parse(on.text).prompt_eval_count);
  const no = await post(d.url, '/api/chat', { model: 'qwen25', think: true, messages: question });
  assert.equal(no.status, 400);
  assert.match(JSON.parse(no.text).error, /"qwen25" does not support thinking/);
  const effort = await post(d.url, '/v1/chat/completions', { model: 'tiny', reasoning_effort: 'high', messages: question });
  assert.equal(effort.status, 400);
  assert.match(JSON.parse(effort.text).error.message, /"tiny" does not support thinking/);
  const bad = await post(d.url, '/api/chat', { model: 'qwen3', think: 'very', messages: question });
  assert.equal(bad.status, 400);
  assert.match(JSON.parse(bad.text).error, /think/);
});

test('tools on a template without tool support: 400 naming the model, both APIs', async () => {
  const o = await post(d.url, '/api/chat', { model: 'tiny', messages: question, tools });
  assert.equal(o.status, 400);
  assert.match(JSON.parse(o.text).error, /model "tiny" does not support tools/);
  const a = await post(d.url, '/v1/chat/completions', { model: 'tiny', messages: question, tools });
  assert.equal(a.status, 400);
  assert.match(JSON.parse(a.text).error.message, /model "tiny" does not support tools/);
  const badTools = await post(d.url, '/v1/chat/completions', { model: 'qwen25', messages: question, tools: [{ type: 'function', function: {} }] });
  assert.equal(badTools.status, 400);
  assert.match(JSON.parse(badTools.text).error.message, /tools\[0\]\.function\.name/);
  const badChoice = await post(d.url, '/v1/chat/completions', { model: 'qwen25', messages: question, tools, tool_choice: { type: 'function', function: { name: 'nope' } } });
  assert.equal(badChoice.status, 400);
  assert.match(JSON.parse(badChoice.text).error.message, /"nope"/);
  const badSchema = await post(d.url, '/v1/chat/completions', { model: 'qwen25', messages: question, response_format: { type: 'json_schema', json_schema: { name: 'x' } } });
  assert.equal(badSchema.status, 400);
  assert.match(JSON.parse(badSchema.text).error.message, /json_schema\.schema/);
});

test('a history with tool calls and tool results renders and answers', async () => {
  const messages = [
    ...question,
    { role: 'assistant', content: '', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","days":3}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '{"sky":"clear"}' },
  ];
  const r = await post(d.url, '/v1/chat/completions', { model: 'qwen25', messages, tools, max_tokens: 3 });
  assert.equal(r.status, 200, r.text);
  const ollama = [...question, { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris', days: 3 } } }] }, { role: 'tool', tool_name: 'get_weather', content: 'clear' }];
  const o = await post(d.url, '/api/chat', { model: 'qwen25', messages: ollama, tools, stream: false, options: { num_predict: 3 } });
  assert.equal(o.status, 200, o.text);
  assert.ok(JSON.parse(o.text).prompt_eval_count > 100, 'the tools and the call are in the prompt');
});

test('a precharge with tools leads the later chat with the same tools (token prefix)', async () => {
  const system = { role: 'system', content: 'You answer weather questions with the tools.' };
  const pre = await post(d.url, '/api/precharge', { model: 'qwen25', context: [system], tools, wait: true });
  assert.equal(pre.status, 200, pre.text);
  const p = JSON.parse(pre.text);
  assert.equal(p.status, 'ready');
  const chat = JSON.parse((await post(d.url, '/api/chat', { model: 'qwen25', stream: false, tools, messages: [system, ...question], options: { num_predict: 2 } })).text);
  assert.ok(chat.prompt_eval_count > p.context_tokens);
  assert.equal(chat.prompt_cached_count, p.context_tokens, 'the precharged tokens lead the chat');
  // Without the tools the rendering differs: the precharge must not claim that chat's tokens.
  const bare = JSON.parse((await post(d.url, '/api/precharge', { model: 'qwen25', context: [system], wait: true })).text);
  assert.ok(bare.context_tokens < p.context_tokens);
  const bad = await post(d.url, '/api/precharge', { model: 'qwen25', context: [system], tools: [{ function: { name: '' } }] });
  assert.equal(bad.status, 400);
});

test('a precharge of a history with tool calls and tool results renders as both chats will: they report its tokens cached', async () => {
  const num_predict = 2;
  // Ollama's spelling: arguments as an object, tool_name; the chat that follows sends the same.
  const sys1 = { role: 'system', content: 'You answer weather questions with the tools. Precharge one.' };
  const history = [sys1, ...question,
    { role: 'assistant', content: '', tool_calls: [{ function: { index: 0, name: 'get_weather', arguments: { city: 'Paris', days: 3 } } }] },
    { role: 'tool', tool_name: 'get_weather', content: '{"sky": "clear"}' },
    { role: 'assistant', content: 'Clear skies in Paris.' }];
  const pre = JSON.parse((await post(d.url, '/api/precharge', { model: 'qwen25', context: history, tools, wait: true })).text);
  assert.equal(pre.status, 'ready', JSON.stringify(pre));
  const chat = JSON.parse((await post(d.url, '/api/chat', {
    model: 'qwen25', stream: false, tools, messages: [...history, { role: 'user', content: 'And Rome?' }], options: { num_predict },
  })).text);
  assert.ok(chat.prompt_eval_count > pre.context_tokens);
  assert.equal(chat.prompt_eval_cached_count, pre.context_tokens, 'the precharged history leads the chat');
  // Rendered without its call and result (role and content alone), the history is shorter.
  const bare = history.map(({ role, content }) => ({ role, content }));
  const plain = JSON.parse((await post(d.url, '/api/precharge', { model: 'qwen25', context: bare, tools, wait: true })).text);
  assert.ok(plain.context_tokens < pre.context_tokens, JSON.stringify([plain, pre]));

  // OpenAI's spelling: arguments as text, tool_call_id; /v1/chat/completions reports it cached.
  const sys2 = { role: 'system', content: 'You answer weather questions with the tools. Precharge two.' };
  const oai = [sys2, ...question,
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris","days":3}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '{"sky": "clear"}' },
    { role: 'assistant', content: 'Clear skies in Paris.' }];
  const pre2 = JSON.parse((await post(d.url, '/api/precharge', { model: 'qwen25', messages: oai, tools, wait: true })).text);
  assert.equal(pre2.status, 'ready', JSON.stringify(pre2));
  const c2 = JSON.parse((await post(d.url, '/v1/chat/completions', {
    model: 'qwen25', tools, messages: [...oai, { role: 'user', content: 'And Rome?' }], max_tokens: num_predict,
  })).text);
  assert.equal(c2.usage.prompt_tokens_details.cached_tokens, pre2.context_tokens);

  // What the chat refuses, the precharge refuses: a field no message has, a bad index.
  for (const [m, re] of [
    [{ role: 'user', content: 'x', audio: {} }, /messages\[0\]\.audio is not a message field/],
    [{ role: 'assistant', content: '', tool_calls: [{ function: { index: 'one', name: 'f' } }] }, /messages\[0\]\.tool_calls\[0\]\.function\.index must be an integer/],
  ]) {
    for (const [path, body] of [['/api/precharge', { context: [m] }], ['/api/chat', { messages: [m], stream: false }]]) {
      const r = await post(d.url, path, { model: 'qwen25', ...body });
      assert.equal(r.status, 400, `${path} ${JSON.stringify(m)}`);
      assert.match(JSON.parse(r.text).error, re);
    }
  }
});

test('precharge: think renders as the chat does and is refused where the chat refuses it; keep_alive sets the model\'s; options are a 400', async () => {
  const sys = { role: 'system', content: 'Think first. Precharge three.' };
  // A model that cannot think: the same 400 as the chat's.
  const r = await post(d.url, '/api/precharge', { model: 'tiny', context: [sys], think: true, wait: true });
  assert.equal(r.status, 400, r.text);
  assert.match(JSON.parse(r.text).error, /model "tiny" does not support thinking/);
  const c = await post(d.url, '/api/chat', { model: 'tiny', messages: [sys], think: true });
  assert.equal(c.status, 400);
  assert.equal((await post(d.url, '/api/precharge', { model: 'qwen3', context: [sys], think: 'maybe' })).status, 400);
  for (const think of [false, true]) {
    const p = JSON.parse((await post(d.url, '/api/precharge', { model: 'qwen3', context: [sys, ...question], think, keep_alive: '3h', wait: true })).text);
    assert.equal(p.status === 'ready' || p.status === 'already_warm', true, JSON.stringify(p));
    const chat = JSON.parse((await post(d.url, '/api/chat', {
      model: 'qwen3', stream: false, think, messages: [sys, ...question, { role: 'assistant', content: 'Sunny.' }, { role: 'user', content: 'And Rome?' }], options: { num_predict: 2 },
    })).text);
    assert.ok(chat.prompt_eval_cached_count >= p.context_tokens, `think ${think}: ${JSON.stringify([chat.prompt_eval_cached_count, p])}`);
  }
  const ps = JSON.parse((await (await fetch(`${d.url}/api/ps`)).text())).models.find((m) => m.name.startsWith('qwen3'));
  const left = Date.parse(ps.expires_at) - Date.now();
  assert.ok(left > 2 * 3600e3 && left <= 3 * 3600e3, `keep_alive 3h set the model's expiry (${ps.expires_at})`);
  for (const [options, re] of [[{ temperature: 0.2 }, /options.temperature does not apply to \/api\/precharge/], [{ num_batch: 7 }, /options.num_batch is 7/]]) {
    const o = await post(d.url, '/api/precharge', { model: 'qwen3', context: [sys], options });
    assert.equal(o.status, 400);
    assert.match(JSON.parse(o.text).error, re);
  }
  assert.equal((await post(d.url, '/api/precharge', { model: 'qwen3', context: [sys], options: { num_batch: 512 }, wait: true })).status, 200);
});

test('OpenAI: tools[].function.strict, true or false, holds the arguments to the schema (the grammar always does); another type is a 400', async () => {
  for (const strict of [true, false]) {
    const strictTools = tools.map((t) => ({ ...t, function: { ...t.function, strict } }));
    const r = await post(d.url, '/v1/chat/completions', oaiBody({ tools: strictTools }));
    assert.equal(r.status, 200, r.text);
    const calls = JSON.parse(r.text).choices[0].message.tool_calls;
    assert.ok(calls.length >= 1);
    for (const c of calls) checkCall(c.function.name, c.function.arguments);
  }
  const r = await post(d.url, '/v1/chat/completions', oaiBody({ tools: [{ ...weather, function: { ...weather.function, strict: 'yes' } }] }));
  assert.equal(r.status, 400);
  assert.match(JSON.parse(r.text).error.message, /tools\[0\]\.function\.strict must be true or false/);
});

test('OpenAI: the deprecated functions and function_call are served through tools, and answered in their shape', async () => {
  const functions = tools.map((t) => t.function);
  const body = { model: 'qwen25', messages: question, functions, function_call: { name: 'get_weather' }, max_tokens: 300, temperature: 0 };
  const r = await post(d.url, '/v1/chat/completions', body);
  assert.equal(r.status, 200, r.text);
  const choice = JSON.parse(r.text).choices[0];
  assert.equal(choice.finish_reason, 'function_call');
  assert.equal(choice.message.tool_calls, undefined);
  assert.equal(choice.message.content, null);
  assert.equal(choice.message.function_call.name, 'get_weather');
  checkCall('get_weather', choice.message.function_call.arguments);
  // The same call as tools with that tool_choice give.
  const viaTools = JSON.parse((await post(d.url, '/v1/chat/completions', oaiBody({ tool_choice: { type: 'function', function: { name: 'get_weather' } }, parallel_tool_calls: false }))).text);
  assert.equal(choice.message.function_call.arguments, viaTools.choices[0].message.tool_calls[0].function.arguments);
  // Streamed: delta.function_call, then finish_reason function_call.
  const chunks = sse((await post(d.url, '/v1/chat/completions', { ...body, stream: true })).text);
  const fc = chunks.map((c) => c.choices[0]?.delta?.function_call).filter(Boolean);
  assert.equal(fc.length, 1);
  assert.equal(fc[0].name, 'get_weather');
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'function_call');
  // The conversation goes on with the old shapes: the assistant's function_call and a function message.
  const next = await post(d.url, '/v1/chat/completions', { model: 'qwen25', functions, max_tokens: 4, temperature: 0,
    messages: [...question, { role: 'assistant', content: null, function_call: choice.message.function_call }, { role: 'function', name: 'get_weather', content: '{"celsius": 21}' }] });
  assert.equal(next.status, 200, next.text);
  assert.ok(JSON.parse(next.text).usage.prompt_tokens > JSON.parse(r.text).usage.prompt_tokens, 'the call and its result are rendered');
  // function_call "none": described, never called.
  const none = JSON.parse((await post(d.url, '/v1/chat/completions', { ...body, function_call: 'none', max_tokens: 8 })).text);
  assert.equal(none.choices[0].message.function_call, undefined);
  for (const [extra, param, why] of [[{ tools }, 'functions', /send one of them/], [{ function_call: 'sometimes' }, 'function_call', /"none", "auto" or/],
    [{ functions: [{ description: 'x' }] }, 'functions', /functions\[0\]\.name/], [{ functions: undefined }, 'function_call', /needs "functions"/]]) {
    const res = await post(d.url, '/v1/chat/completions', { ...body, ...extra });
    assert.equal(res.status, 400, JSON.stringify(extra));
    const e = JSON.parse(res.text).error;
    assert.equal(e.param, param);
    assert.match(e.message, why);
  }
});
