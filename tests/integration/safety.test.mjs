// safety.test.mjs - the daemon under abuse and its safe defaults: listening beyond loopback,
// the API key, body and prompt limits, idle and slow connections, CORS and the Host check.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { BIN, MKMODEL, tempHome, makeModel, startDaemon, post, get, ndjson, cleanup } from './lib.mjs';

const { default: OpenAI } = await import('openai');
const { Ollama } = await import('ollama');

let home;
const daemons = [];

// A context long enough that an answer can outlast the timeout however fast this machine is.
const LONG_CTX = 131072;
let longHome;

before(() => {
  home = tempHome('safety');
  makeModel(home, 'tiny');
  longHome = tempHome('safety-long');
  execFileSync(MKMODEL, ['--preset', 'tiny', '--n-ctx', String(LONG_CTX), '-q', '-o', join(longHome, 'models', 'long.gguf')]);
});

after(async () => {
  for (const d of daemons) assert.equal(await d.stop(), 0, 'daemon exits cleanly on SIGTERM');
  cleanup(home);
  cleanup(longHome);
});

async function daemon(opts) {
  const d = await startDaemon({ home, ...opts });
  d.url = d.url.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:');
  daemons.push(d);
  return d;
}

// Run `precharge serve ARGS` until it exits by itself.
function serveExit(args, env = {}) {
  return new Promise((resolve) => {
    const p = spawn(BIN, ['serve', ...args], {
      env: { ...process.env, PRECHARGE_HOME: home, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => resolve({ code, err }));
  });
}

async function fetchWith(url, path, headers = {}, init = {}) {
  const res = await fetch(url + path, { ...init, headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text };
}

// ---- listening beyond loopback --------------------------------------------------------------

test('a non-loopback address without an API key or --insecure: refused, naming both', async () => {
  for (const host of ['0.0.0.0:0', '[::]:0']) {
    const r = await serveExit(['--host', host]);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /refusing to listen on (0\.0\.0\.0|::)/);
    assert.match(r.err, /--api-key/);
    assert.match(r.err, /--insecure/);
  }
});

test('a non-loopback address with --insecure or with an API key starts', async () => {
  const open = await daemon({ args: ['--host', '0.0.0.0:0', '--insecure'] });
  assert.match(open.log(), /listening on http:\/\/0\.0\.0\.0:/);
  assert.equal((await get(open.url, '/api/tags')).status, 200);
  const keyed = await daemon({ args: ['--host', '0.0.0.0:0'], env: { PRECHARGE_API_KEY: 'k-0' } });
  assert.equal((await get(keyed.url, '/api/tags')).status, 401);
});

// ---- the API key ----------------------------------------------------------------------------

test('with an API key: 401 without it or with a wrong one, 200 with it; probes stay open', async () => {
  const d = await daemon({ env: { PRECHARGE_API_KEY: 'sekrit-1' } });
  for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 'Bearer sekrit-12' },
    { authorization: 'Basic c2Vrcml0LTE=' }, { authorization: 'sekrit-1' }]) {
    const r = await fetchWith(d.url, '/api/tags', headers);
    assert.equal(r.status, 401, JSON.stringify(headers));
    assert.equal(r.headers.get('www-authenticate'), 'Bearer');
    assert.match(JSON.parse(r.text).error, /API key/);
  }
  const ok = await fetchWith(d.url, '/api/tags', { authorization: 'Bearer sekrit-1' });
  assert.equal(ok.status, 200);
  assert.equal(JSON.parse(ok.text).models[0].name, 'tiny:latest');
  assert.equal((await fetchWith(d.url, '/api/tags', { authorization: 'bearer sekrit-1' })).status, 200);
  assert.equal((await get(d.url, '/health')).status, 200);
  assert.notEqual((await get(d.url, '/ready')).status, 401);
  // A refused POST is refused before its body is read.
  const gen = await post(d.url, '/api/generate', { model: 'tiny', prompt: 'hi' });
  assert.equal(gen.status, 401);
});

test('the official openai client sends its apiKey as the bearer token; ollama\'s sends headers', async () => {
  const d = await daemon({ env: { PRECHARGE_API_KEY: 'sekrit-2' } });
  const good = new OpenAI({ baseURL: `${d.url}/v1`, apiKey: 'sekrit-2', maxRetries: 0 });
  const list = await good.models.list();
  assert.ok(list.data.some((m) => m.id.startsWith('tiny')));
  const r = await good.chat.completions.create({
    model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3,
  });
  assert.equal(r.object, 'chat.completion');

  const bad = new OpenAI({ baseURL: `${d.url}/v1`, apiKey: 'nope', maxRetries: 0 });
  await assert.rejects(bad.models.list(), (e) => e.status === 401 && e.error?.type === 'authentication_error');

  const ollama = new Ollama({ host: d.url, headers: { Authorization: 'Bearer sekrit-2' } });
  assert.ok((await ollama.list()).models.length >= 1);
  await assert.rejects(new Ollama({ host: d.url }).list(), (e) => e.status_code === 401);
});

test('the key from --api-key-file; the CLI sends PRECHARGE_API_KEY', async () => {
  const file = join(home, 'key.txt');
  writeFileSync(file, 'file-key-3\n');
  const d = await daemon({ args: ['--api-key-file', file] });
  assert.equal((await fetchWith(d.url, '/api/tags', { authorization: 'Bearer file-key-3' })).status, 200);
  assert.equal((await get(d.url, '/api/tags')).status, 401);
  const host = d.url.replace('http://', '');
  const cli = (env) =>
    new Promise((resolve) =>
      execFile(BIN, ['ps'], { env: { ...process.env, PRECHARGE_HOST: host, ...env } }, (err, stdout, stderr) =>
        resolve({ code: err ? err.code : 0, stdout, stderr })),
    );
  const withKey = await cli({ PRECHARGE_API_KEY: 'file-key-3' });
  assert.equal(withKey.code, 0, withKey.stderr);
  assert.match(withKey.stdout, /NAME/);
  const without = await cli({ PRECHARGE_API_KEY: '' });
  assert.notEqual(without.code, 0);
  assert.match(without.stderr, /API key/);
});

// ---- limits -------------------------------------------------------------------------------

test('a body over --max-body is a 413 naming the limit; under it is parsed', async () => {
  const d = await daemon({ args: ['--max-body', '4K'] });
  const big = await post(d.url, '/api/generate', { model: 'tiny', prompt: 'x'.repeat(5000) });
  assert.equal(big.status, 413);
  assert.match(JSON.parse(big.text).error, /larger than 4096 bytes/);
  // Sent in chunks, without a Content-Length: counted as it arrives.
  const chunked = await fetch(d.url + '/api/generate', {
    method: 'POST',
    body: new Blob(['{"model":"tiny","prompt":"', 'y'.repeat(6000), '"}']).stream(),
    duplex: 'half',
  });
  assert.equal(chunked.status, 413);
  const small = await post(d.url, '/api/generate', { model: 'tiny', prompt: 'hi', options: { num_predict: 1 } });
  assert.equal(small.status, 200, small.text);
});

test('the default body limit is 8 MiB', async () => {
  const d = await daemon({});
  const r = await post(d.url, '/api/generate', '{"model":"tiny","prompt":"' + 'z'.repeat(8 << 20) + '"}');
  assert.equal(r.status, 413);
  assert.match(JSON.parse(r.text).error, /larger than 8388608 bytes/);
});

const long = 'the quick brown fox jumps over the lazy dog '.repeat(40);

test('a prompt over the context is a 400 naming its count and the limit, on all four routes', async () => {
  const d = await daemon({ args: ['--ctx', '128'] });
  // The window of each sequence is what was asked (the cache holds --parallel of them).
  const limit = /the prompt is \d+ tokens; the limit is 127 \(context length 128, less one token for the answer\)/;
  const gen = await post(d.url, '/api/generate', { model: 'tiny', prompt: long, stream: false, truncate: false });
  assert.equal(gen.status, 400);
  assert.match(JSON.parse(gen.text).error, limit);
  const chat = await post(d.url, '/api/chat', { model: 'tiny', messages: [{ role: 'user', content: long }] });
  assert.equal(chat.status, 400);
  assert.match(JSON.parse(chat.text).error, limit);

  const openai = new OpenAI({ baseURL: `${d.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  await assert.rejects(
    openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: long }] }),
    (e) => e.status === 400 && limit.test(e.error.message) && e.error.type === 'invalid_request_error' &&
      e.error.param === 'messages',
  );
  await assert.rejects(
    openai.completions.create({ model: 'tiny', prompt: long, stream: true }),
    (e) => e.status === 400 && limit.test(e.error.message) && e.error.param === 'prompt',
  );
  // A smaller num_ctx is the limit that the message names.
  const small = await post(d.url, '/api/generate', { model: 'tiny', prompt: long.slice(0, 200), truncate: false, options: { num_ctx: 16 } });
  assert.equal(small.status, 400);
  assert.match(JSON.parse(small.text).error, /the limit is 15 \(num_ctx 16/);
  // The daemon goes on serving.
  const ok = await post(d.url, '/api/generate', { model: 'tiny', prompt: 'hi', stream: false, options: { num_predict: 2 } });
  assert.equal(ok.status, 200);
});

test('PRECHARGE_MAX_PROMPT_TOKENS bounds prompts below the context', async () => {
  const d = await daemon({ env: { PRECHARGE_MAX_PROMPT_TOKENS: '20' } });
  const r = await post(d.url, '/v1/completions', { model: 'tiny', prompt: long.slice(0, 300), max_tokens: 1 });
  assert.equal(r.status, 400);
  assert.match(JSON.parse(r.text).error.message, /the prompt is \d+ tokens; the limit is 20 \(max_prompt_tokens\)/);
  const ok = await post(d.url, '/v1/completions', { model: 'tiny', prompt: 'Hello', max_tokens: 1 });
  assert.equal(ok.status, 200, ok.text);
});

// ---- idle and slow connections --------------------------------------------------------------

function port(url) {
  return Number(new URL(url).port);
}

// Open a connection, send what send(socket) sends, and resolve with whether the server closed it
// while the client was still sending.
function connection(url, send) {
  return new Promise((resolve, reject) => {
    const s = connect(port(url), '127.0.0.1');
    let closed = false;
    s.on('error', () => {});
    s.on('close', () => {
      closed = true;
      resolve('closed by the server');
    });
    s.on('connect', async () => {
      try {
        await send(s, () => closed);
        if (!closed) resolve('still open');
        s.destroy();
      } catch (e) {
        reject(e);
      }
    });
  });
}

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

// POST on a connection of its own: fetch's pool would reuse one that the daemon's 1 s idle
// timeout has just closed.
function postFresh(url, path, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = request({
      host: '127.0.0.1', port: port(url), path, method: 'POST', agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
    }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

// Trickle bytes, one every 200 ms, for at most 30 s (the daemon's timeout is 1 s).
async function trickle(s, closed, bytes) {
  for (let i = 0; i < bytes.length && i < 150 && !closed(); i++) {
    s.write(bytes.subarray(i, i + 1));
    await pause(200);
  }
}

test('connections: idle ones and trickled requests are closed; quiet streams are not', async () => {
  const d = await daemon({ home: longHome, env: { PRECHARGE_CONNECTION_TIMEOUT: '1', PRECHARGE_CONTEXT_LENGTH: String(LONG_CTX) } });
  // An idle connection: the server closes it (the test's own timeout bounds the wait).
  assert.equal(await connection(d.url, () => new Promise(() => {})), 'closed by the server');
  // Slowloris: headers a byte at a time, each byte before the idle timeout.
  const headers = Buffer.from('GET /api/tags HTTP/1.1\r\nHost: 127.0.0.1\r\n' + 'X-Pad: ' + 'a'.repeat(200));
  assert.equal(await connection(d.url, (s, closed) => trickle(s, closed, headers)), 'closed by the server');
  // The same with a body.
  const body = '{"model":"long","prompt":"' + 'b'.repeat(300) + '"}';
  const head = `POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\n\r\n`;
  assert.equal(
    await connection(d.url, async (s, closed) => {
      s.write(head);
      await trickle(s, closed, Buffer.from(body));
    }),
    'closed by the server',
  );

  // A server-side pause longer than the timeout (an event stream with nothing to say) does not
  // cut the stream: an event that comes after it still arrives.
  const ctl = new AbortController();
  const res = await fetch(`${d.url}/api/events?stream=models`, { signal: ctl.signal });
  const reader = res.body.getReader();
  let seen = '';
  const loaded = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return 'ended';
      seen += Buffer.from(value).toString();
      if (/ModelLoaded/.test(seen)) return 'event';
    }
  })();
  await pause(2500);
  const gen = await postFresh(d.url, '/api/generate', { model: 'long', prompt: 'hello', options: { num_predict: 1 } });
  assert.equal(gen.status, 200);
  assert.equal(await loaded, 'event', seen);
  ctl.abort();

  // A streamed generation and a whole one finish however long they take past the timeout (and
  // past the watchdog's check, half a timeout later): the answers grow until both took 2 s. A
  // random model may end its turn early, so each try has its own seed.
  let long2s = false;
  for (let i = 0; i < 12 && !long2s; i++) {
    const options = { num_predict: Math.min(100 << i, LONG_CTX / 2), seed: i, temperature: 1 };
    const stream = await postFresh(d.url, '/api/generate', { model: 'long', prompt: long, options });
    assert.equal(stream.status, 200);
    const last = ndjson(stream.text).at(-1);
    assert.equal(last.done, true);
    const whole = await postFresh(d.url, '/api/generate', { model: 'long', prompt: long, stream: false, options });
    assert.equal(whole.status, 200);
    const r = JSON.parse(whole.text);
    assert.equal(r.done, true);
    long2s = r.total_duration > 2e9 && last.total_duration > 2e9;
  }
  assert.ok(long2s, 'no answer took 2 s: the test would prove nothing');
});

// ---- CORS and the Host check ----------------------------------------------------------------

const acHeaders = (h) => [...h.keys()].filter((k) => k.startsWith('access-control-'));

test('CORS off by default: no Access-Control headers, foreign origins and preflights refused', async () => {
  const d = await daemon({});
  const plain = await fetchWith(d.url, '/api/tags');
  assert.equal(plain.status, 200);
  assert.deepEqual(acHeaders(plain.headers), []);
  const foreign = await fetchWith(d.url, '/api/tags', { origin: 'https://evil.example' });
  assert.equal(foreign.status, 403);
  assert.match(JSON.parse(foreign.text).error, /origin "https:\/\/evil\.example" is not allowed.*--cors-origin/);
  assert.deepEqual(acHeaders(foreign.headers), []);
  const pre = await fetchWith(d.url, '/api/chat', {
    origin: 'https://evil.example', 'access-control-request-method': 'POST',
  }, { method: 'OPTIONS' });
  assert.equal(pre.status, 403);
  assert.deepEqual(acHeaders(pre.headers), []);
  // A page of the daemon's own origin is same-origin.
  const own = await fetchWith(d.url, '/api/tags', { origin: d.url });
  assert.equal(own.status, 200);
});

test('CORS with an allow-list: listed origins get the headers and their preflight, others 403', async () => {
  const d = await daemon({
    args: ['--cors-origin', 'https://app.example', '--cors-origin', 'http://localhost:3000'],
    env: { PRECHARGE_API_KEY: 'sekrit-4' },
  });
  const auth = { authorization: 'Bearer sekrit-4' };
  const ok = await fetchWith(d.url, '/api/tags', { origin: 'https://app.example', ...auth });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example');
  assert.equal(ok.headers.get('vary'), 'Origin');
  // A preflight carries no credentials, and is answered before the key is asked for.
  const pre = await fetchWith(d.url, '/v1/chat/completions', {
    origin: 'http://localhost:3000', 'access-control-request-method': 'POST',
    'access-control-request-headers': 'authorization, content-type',
  }, { method: 'OPTIONS' });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), 'http://localhost:3000');
  assert.match(pre.headers.get('access-control-allow-methods'), /POST/);
  assert.match(pre.headers.get('access-control-allow-headers'), /Authorization/);
  assert.match(pre.headers.get('access-control-allow-headers'), /Content-Type/);
  // A refusal that a listed page reads still carries its origin, so the page sees the 401.
  const noKey = await fetchWith(d.url, '/api/tags', { origin: 'https://app.example' });
  assert.equal(noKey.status, 401);
  assert.equal(noKey.headers.get('access-control-allow-origin'), 'https://app.example');
  const other = await fetchWith(d.url, '/api/tags', { origin: 'https://other.example', ...auth });
  assert.equal(other.status, 403);
  assert.deepEqual(acHeaders(other.headers), []);
});

test('CORS "*" allows any origin', async () => {
  const d = await daemon({ env: { PRECHARGE_CORS_ORIGINS: '*' } });
  const r = await fetchWith(d.url, '/api/tags', { origin: 'https://any.example' });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('access-control-allow-origin'), 'https://any.example');
});

test('a loopback daemon answers only to loopback Host names (DNS rebinding)', async () => {
  const d = await daemon({});
  const withHost = (host) =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: port(d.url), path: '/api/tags', headers: { host } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      req.on('error', reject);
      req.end();
    });
  assert.equal(await withHost('evil.example:11435'), 403);
  assert.equal(await withHost(`localhost:${port(d.url)}`), 200);
  assert.equal(await withHost(`127.0.0.1:${port(d.url)}`), 200);
  assert.equal(await withHost(`[::1]:${port(d.url)}`), 200);
});
