// connections.test.mjs - connections are not a scarce resource: 2,000 idle connections and 300
// quiet event streams hold no thread each and deny no one; beyond the per-address cap
// connections are closed, beyond the event-stream cap a stream gets a 503 naming it, and
// /health and a chat from another address still answer. A client that hangs up mid-stream
// frees its stream at once (the subscriber gauge falls). Proxied streams that wait for the
// remote Ollama (a node server here that sends one line and then nothing) hold no thread
// either, and a client that hangs up cuts its request upstream.
//
// The idle sockets and the streams come from other loopback addresses (127.0.0.2 to .4), so
// that the per-address cap is reached without touching the test's own requests from 127.0.0.1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { createServer } from 'node:http';
import { tempHome, makeModel, startDaemon, post, get, eventually, cleanup } from './lib.mjs';

const PER_IP = 1100;
const STREAMS = 300;
let home, d, port;
const sockets = [];

before(async () => {
  home = tempHome('connections');
  makeModel(home, 'tiny');
  d = await startDaemon({
    home,
    // A long idle timeout: the idle sockets must outlast the test, not be cut by it.
    args: ['--max-connections-per-ip', String(PER_IP), '--max-event-streams', String(STREAMS),
      '--connection-timeout', '10m'],
  });
  port = Number(new URL(d.url).port);
});

after(async () => {
  for (const s of sockets) s.destroy();
  assert.equal(await d.stop(), 0, 'daemon exits cleanly (and, under ASan, without leaks)');
  cleanup(home);
});

// A socket from localAddress; resolves once connected. s.closedByPeer is set when the server
// closes it.
function open(localAddress) {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress });
    s.closedByPeer = false;
    s.on('end', () => { s.closedByPeer = true; });
    s.on('close', () => { s.closedByPeer = true; });
    s.on('error', () => { s.closedByPeer = true; });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
    sockets.push(s);
  });
}

async function openMany(n, localAddress) {
  const out = [];
  for (let i = 0; i < n; i += 100) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 100); j++) batch.push(open(localAddress));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

// GET /api/events on its own socket; resolves with the status line's code, and keeps the
// socket open (a quiet subscriber that reads).
function subscribe(localAddress) {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress });
    sockets.push(s);
    let head = '';
    s.on('error', reject);
    s.on('data', (chunk) => {
      if (s.status !== undefined) return;
      head += chunk.toString('latin1');
      const m = head.match(/^HTTP\/1\.1 (\d{3})/);
      if (m && head.includes('\r\n\r\n')) {
        s.status = Number(m[1]);
        s.head = head;
        resolve(s);
      }
    });
    s.write(`GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  });
}

const threads = () => readdirSync(`/proc/${d.proc.pid}/task`).length;

async function metric(name) {
  const text = (await get(d.url, '/metrics')).text;
  const esc = name.replace(/[{}"]/g, (c) => `\\${c}`);
  const m = text.match(new RegExp(`^${esc} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
}

test('2,000 idle connections and 300 quiet event streams: caps hold, no thread each, /health and a chat answer', async (t) => {
  const base = threads();
  // One address up to its cap and 10 beyond: the 10 extra are closed, whichever they are.
  const a = await openMany(PER_IP + 10, '127.0.0.2');
  assert.ok(await eventually(() => a.filter((s) => s.closedByPeer).length >= 10),
    'connections beyond the per-address cap are closed');
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(a.filter((s) => s.closedByPeer).length, 10, `${PER_IP} stay open from one address`);

  const b = await openMany(2000 - PER_IP, '127.0.0.3');
  assert.equal(b.filter((s) => s.closedByPeer).length, 0);

  const streams = [];
  for (let i = 0; i < STREAMS; i += 50) {
    const batch = [];
    for (let j = i; j < i + 50; j++) batch.push(subscribe('127.0.0.4'));
    streams.push(...(await Promise.all(batch)));
  }
  assert.deepEqual([...new Set(streams.map((s) => s.status))], [200]);
  assert.ok(await eventually(async () => (await metric('precharge_event_streams')) === STREAMS));

  const over = await subscribe('127.0.0.5');
  assert.equal(over.status, 503, over.head);
  assert.match(over.head, /max_event_streams/);
  assert.match(over.head, /Retry-After: 1/i);

  // Each waiting stream and idle connection holds no thread: a thread each would be 2,300.
  // The workers that ran the 300 handlers at once exit when idle (5 s); what stays is the
  // daemon's own threads and a few workers.
  assert.ok(await eventually(() => threads() <= base + 8),
    `${threads()} threads now, ${base} before anything was opened`);
  t.diagnostic(`${threads()} threads with 2,000 idle connections and ${STREAMS} streams open; ${base} before`);

  const health = await get(d.url, '/health');
  assert.equal(health.status, 200);
  const chat = await post(d.url, '/api/chat', {
    model: 'tiny', stream: false, messages: [{ role: 'user', content: 'hello' }],
    options: { num_predict: 4, temperature: 0 },
  });
  assert.equal(chat.status, 200, chat.text);
  assert.equal(JSON.parse(chat.text).done, true);
  assert.equal(a.filter((s) => s.closedByPeer).length, 10, 'the idle ones are still open');

  // A stream's end goes out after its producer's free has run: what free records (the
  // LlmCompleted event that leaves the model precharged, the token counters) is there when the
  // client has read the end, with no waiting.
  const before = await metric('precharge_generated_tokens_total{model="tiny"}');
  const streamed = await post(d.url, '/api/chat', {
    model: 'tiny', stream: true, messages: [{ role: 'user', content: 'again' }],
    options: { num_predict: 4, temperature: 0 },
  });
  assert.equal(streamed.status, 200);
  assert.match(streamed.text, /"done":true/);
  const st = JSON.parse((await get(d.url, '/api/models/tiny/state')).text);
  assert.equal(st.state, 'precharged');
  assert.ok((await metric('precharge_generated_tokens_total{model="tiny"}')) > before);

  // Clients that hang up mid-stream free their subscriptions at once, and make room.
  for (const s of streams.slice(0, 20)) s.destroy();
  assert.ok(await eventually(async () => (await metric('precharge_event_streams')) === STREAMS - 20),
    'the gauge falls as clients hang up');
  const again = await subscribe('127.0.0.5');
  assert.equal(again.status, 200);
});

// An Ollama that knows one model and answers /api/generate with one line, then holds every
// stream open until release().
function quietOllama() {
  const held = new Set();
  let closedEarly = 0;
  const srv = createServer((req, res) => {
    const reply = (o) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(o)); };
    if (req.url === '/api/tags') return reply({ models: [{ name: 'far:latest', model: 'far:latest', size: 1, details: {} }] });
    if (req.url === '/api/ps') return reply({ models: [] });
    if (req.url === '/api/version') return reply({ version: '0.0.0' });
    if (req.url !== '/api/generate') { res.statusCode = 404; return reply({ error: 'no' }); }
    req.resume();
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write(JSON.stringify({ model: 'far', response: 'a', done: false }) + '\n');
    held.add(res);
    res.on('close', () => { if (held.delete(res)) closedEarly++; });
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${srv.address().port}`,
    held,
    closedEarly: () => closedEarly,
    release() {
      for (const res of held) {
        held.delete(res);
        res.end(JSON.stringify({ model: 'far', response: '', done: true }) + '\n');
      }
    },
    close: () => new Promise((r) => { srv.closeAllConnections(); srv.close(r); }),
  })));
}

test('40 proxied streams waiting for the remote server hold no thread; a hang-up cuts the request upstream', async (t) => {
  const far = await quietOllama();
  const h = tempHome('connections-proxy');
  const p = await startDaemon({ home: h, env: { OLLAMA_URL: far.url, NO_PROXY: '127.0.0.1' } });
  try {
    const base = readdirSync(`/proc/${p.proc.pid}/task`).length;
    const readers = [];
    for (let i = 0; i < 40; i++) {
      const ctrl = new AbortController();
      const res = await fetch(`${p.url}/api/generate`, {
        method: 'POST', signal: ctrl.signal, body: JSON.stringify({ model: 'far', prompt: 'x' }),
      });
      assert.equal(res.status, 200);
      const reader = res.body.getReader();
      const { value } = await reader.read();
      assert.match(new TextDecoder().decode(value), /"response":"a"/);
      readers.push({ ctrl, reader });
    }
    assert.equal(far.held.size, 40);
    const grown = () => readdirSync(`/proc/${p.proc.pid}/task`).length - base;
    assert.ok(await eventually(() => grown() <= 8), `${grown()} threads more than before the streams`);
    t.diagnostic(`${grown()} threads more than before 40 waiting proxied streams`);

    // Ten clients hang up: their requests upstream are cut.
    for (const r of readers.slice(0, 10)) r.ctrl.abort();
    assert.ok(await eventually(() => far.closedEarly() === 10), `${far.closedEarly()} cut upstream`);

    // The server answers the rest: each of them ends with done:true.
    far.release();
    for (const r of readers.slice(10)) {
      let text = '';
      for (;;) {
        const { value, done } = await r.reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      assert.match(text, /"done":true/);
    }
  } finally {
    assert.equal(await p.stop(), 0);
    await far.close();
    cleanup(h);
  }
});
