// hardening.test.mjs - what issue 13 found, each over HTTP against the real daemon: model files
// whose header would make llama.cpp abort the process are refused by name, and the daemon keeps
// serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { BIN, MKMODEL, tempHome, makeModel, startDaemon, post, get, eventually, cleanup } from './lib.mjs';

// The tiny model with header keys set to what llama.cpp asserts on.
function makeBadModel(home, name, ...sets) {
  const args = ['--preset', 'tiny', '-q', '-o', join(home, 'models', `${name}.gguf`)];
  for (const s of sets) args.push('--set', s);
  execFileSync(MKMODEL, args);
}

test('a header that llama.cpp would abort on is refused by key and value; the daemon lives on', async () => {
  const home = tempHome('hard-header');
  makeModel(home, 'tiny');
  makeBadModel(home, 'layers0', 'llama.block_count=u32:0');
  makeBadModel(home, 'layers513', 'llama.block_count=u32:513');
  makeBadModel(home, 'epsnan', 'llama.attention.layer_norm_rms_epsilon=f32:nan');
  makeBadModel(home, 'ctx1', 'llama.context_length=u32:1');
  // In the preload list: before, the daemon exited 134 at every start.
  const d = await startDaemon({
    home,
    env: {
      PRECHARGE_PRELOAD: 'layers513',
      PRECHARGE_PRELOAD_RETRIES: '2',
      PRECHARGE_PRELOAD_RETRY_DELAY: '20',
    },
  });
  try {
    const status = async () => JSON.parse((await get(d.url, '/api/models/status')).text).layers513;
    assert.ok(await eventually(async () => (await status()).status === 'failed'));
    const s = await status();
    assert.ok(s.attempts >= 3); // a required preload goes on retrying past its quick retries
    assert.match(s.error, /header key llama\.block_count is 513; llama\.cpp needs 1 to 512/);
    // Retries keep to the backoff: 20 ms, then 40 ms, then it is failed and retried until warm.
    assert.match(d.log(), /layers513: attempt 1 of 3 failed: .*retrying in 20 ms/);
    assert.match(d.log(), /layers513: attempt 2 of 3 failed: .*retrying in 40 ms/);
    assert.match(d.log(), /layers513: attempt 3 of 3 failed: .*required: retrying in 80 ms until warm/);

    const gen = await post(d.url, '/api/generate', { model: 'layers0', prompt: 'hi', stream: false });
    assert.equal(gen.status, 500);
    assert.match(JSON.parse(gen.text).error, /layers0\.gguf": header key llama\.block_count is 0;/);

    const chat = await post(d.url, '/v1/chat/completions', {
      model: 'epsnan',
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(chat.status, 500);
    assert.match(JSON.parse(chat.text).error.message,
      /header key llama\.attention\.layer_norm_rms_epsilon is nan; llama\.cpp needs a number >= 0/);

    // The lifecycle state is failed, with the reason.
    const st = JSON.parse((await get(d.url, '/api/models/epsnan/state')).text);
    assert.equal(st.state, 'failed');
    assert.match(st.error, /layer_norm_rms_epsilon is nan/);

    // /api/show answered 200 for these files: now the load's error.
    const show = await post(d.url, '/api/show', { model: 'ctx1' });
    assert.equal(show.status, 500);
    assert.match(JSON.parse(show.text).error, /header key llama\.context_length is 1; llama\.cpp needs at least 8/);

    // Everything else still works, in the same process.
    const ok = await post(d.url, '/api/generate', {
      model: 'tiny', prompt: 'hi', stream: false, options: { num_predict: 2 },
    });
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse((await get(d.url, '/api/models/tiny/state')).text).error, null);
    assert.equal(d.proc.exitCode, null);
  } finally {
    assert.equal(await d.stop(), 0);
    cleanup(home);
  }
});

test('a start removes the temp files of writes that a kill cut short, and no others', async () => {
  const home = tempHome('hard-leftovers');
  makeModel(home, 'tiny');
  mkdirSync(join(home, 'snapshots'), { recursive: true });
  const junk = Buffer.alloc(1 << 20, 7);
  writeFileSync(join(home, 'snapshots', '0123456789abcdef-00-5.snap.tmp.AbCdEf'), junk);
  writeFileSync(join(home, 'models', 'manifest.json.tmp.QwErTy'), '{"version":');
  writeFileSync(join(home, 'snapshots', 'notes.txt'), 'not ours');
  const d = await startDaemon({ home, env: { PRECHARGE_SNAPSHOT_DISK: '4M' } });
  try {
    assert.deepEqual(readdirSync(join(home, 'snapshots')), ['notes.txt']);
    assert.ok(!readdirSync(join(home, 'models')).some((f) => f.includes('.tmp.')));
    assert.match(d.log(), /removed 1 unfinished snapshot files/);
    assert.match(d.log(), /removed 1 unfinished manifest files/);
    // A precharge that persists writes its snapshot as before, and leaves no temp file.
    const r = await post(d.url, '/api/precharge', {
      model: 'tiny', messages: [{ role: 'system', content: 'You help with forms.' }], wait: true,
    });
    assert.equal(r.status, 200, r.text);
    assert.ok(await eventually(() => readdirSync(join(home, 'snapshots')).some((f) => f.endsWith('.snap'))));
    assert.ok(!readdirSync(join(home, 'snapshots')).some((f) => f.includes('.tmp.')));
  } finally {
    assert.equal(await d.stop(), 0);
    cleanup(home);
  }
});

// FNV-1a 64, as snapshot.c checks a file.
function fnv1a(buf) {
  let h = 14695981039346656037n;
  for (const b of buf) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 1099511628211n);
  return h;
}

test('a snapshot with a good checksum that does not restore is dropped, not retried', async () => {
  const home = tempHome('hard-restore');
  makeModel(home, 'tiny');
  const system = { role: 'system', content: 'You fill in tax forms. Ask for the year first.' };
  let d = await startDaemon({ home });
  const pre = JSON.parse((await post(d.url, '/api/precharge', { model: 'tiny', context: [system], wait: true })).text);
  assert.equal(pre.snapshot_tier, 'disk', JSON.stringify(pre));
  assert.equal(await d.stop(), 0);

  // Cut its state in half and mend the checksum: the file reads back whole, the state does not
  // fit the context (as a snapshot of another model file with the same key would not).
  const dir = join(home, 'snapshots');
  const name = readdirSync(dir).find((f) => f.endsWith('.snap'));
  const file = readFileSync(join(dir, name));
  const nTokens = file.readUInt32LE(24);
  const blobSize = Number(file.readBigUInt64LE(32));
  const start = 128 + 4 * nTokens;
  const cut = Buffer.from(file.subarray(0, start + Math.floor(blobSize / 2)));
  cut.writeBigUInt64LE(BigInt(Math.floor(blobSize / 2)), 32);
  const sum = Buffer.alloc(8);
  sum.writeBigUInt64LE(fnv1a(cut));
  writeFileSync(join(dir, name), Buffer.concat([cut, sum]));

  d = await startDaemon({ home });
  try {
    const ask = async () => {
      const r = await post(d.url, '/api/chat', {
        model: 'tiny', stream: false, options: { num_predict: 1 },
        messages: [system, { role: 'user', content: 'Which year?' }],
      });
      assert.equal(r.status, 200, r.text);
      return JSON.parse(r.text);
    };
    await ask();
    const failures = () => d.log().match(/restore from disk failed/g)?.length ?? 0;
    assert.equal(failures(), 1, d.log());
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.snap')), []);
    assert.deepEqual(JSON.parse((await get(d.url, '/api/precharged')).text).precharged, []);
    await ask(); // served from the live sequence, or prefilled: never the dropped file again
    assert.equal(failures(), 1);
  } finally {
    assert.equal(await d.stop(), 0);
    cleanup(home);
  }
});

test('a 5 MB precharge context is a 400 that names the limit; max_prompt_tokens holds too', async () => {
  const home = tempHome('hard-big');
  makeModel(home, 'tiny');
  const d = await startDaemon({ home, env: { PRECHARGE_CONTEXT_LENGTH: '512' } });
  const d2 = await startDaemon({ home, env: { PRECHARGE_MAX_PROMPT_TOKENS: '16' } });
  try {
    const big = 'word '.repeat(1 << 20); // 5 MiB, under the 8 MiB body limit
    // Tokenizing 5 MiB takes a while in the sanitizer build: wait for the answer as long as the
    // daemon allows.
    const r = await post(d.url, '/api/precharge', { model: 'tiny', prompt: big, wait: true, timeout: 600 });
    assert.equal(r.status, 400);
    assert.match(JSON.parse(r.text).error,
      /^the context is \d+ tokens; the limit is 511 \(context length 512, less one token for the answer\)$/);
    // Without waiting it is accepted, and fails with the same words.
    const q = JSON.parse((await post(d.url, '/api/precharge', { model: 'tiny', prompt: 'word '.repeat(2000) })).text);
    let s;
    assert.ok(await eventually(async () => {
      s = JSON.parse((await get(d.url, `/api/precharge/${q.correlation_id}`)).text);
      return s.status === 'failed';
    }));
    assert.match(s.error, /the limit is 511/);
    const m = await post(d2.url, '/api/precharge', {
      model: 'tiny', wait: true, context: [{ role: 'system', content: 'A form with twenty fields: '.repeat(4) }],
    });
    assert.equal(m.status, 400);
    assert.match(JSON.parse(m.text).error, /^the context is \d+ tokens; the limit is 16 \(max_prompt_tokens\)$/);
    // Within it, a precharge is as before.
    const ok = await post(d.url, '/api/precharge', { model: 'tiny', prompt: 'A short form.', wait: true });
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.text).status, 'ready');
  } finally {
    assert.equal(await d.stop(), 0);
    assert.equal(await d2.stop(), 0);
    cleanup(home);
  }
});

test('store entries: one rule for links (inside the store or an allowed model directory), and a directory says what it is', async () => {
  const home = tempHome('hard-links');
  const outside = tempHome('hard-links-outside'); // a directory that is not allowed
  const allowed = tempHome('hard-links-allowed');
  makeModel(home, 'tiny');
  const elsewhere = makeModel(outside, 'secret');
  const shared = makeModel(allowed, 'shared');
  const models = join(home, 'models');
  mkdirSync(join(models, 'dir.gguf'));
  symlinkSync(elsewhere, join(models, 'shadow.gguf'));
  symlinkSync('/etc/hostname', join(models, 'etc.gguf'));
  symlinkSync(shared, join(models, 'ok.gguf'));
  symlinkSync('tiny.gguf', join(models, 'alias.gguf'));
  symlinkSync(join(models, 'gone.bin'), join(models, 'dangling.gguf'));
  const d = await startDaemon({ home, env: { PRECHARGE_MODEL_DIRS: allowed } });
  const gen = (model) => post(d.url, '/api/generate', { model, prompt: 'hi', stream: false, options: { num_predict: 1 } });
  try {
    for (const model of ['shadow', 'etc']) {
      for (const r of [await post(d.url, '/api/show', { model }), await gen(model)]) {
        assert.equal(r.status, 400, `${model}: ${r.text}`);
        assert.match(JSON.parse(r.text).error, /is a symbolic link that leads outside the store and the allowed model directories/);
        assert.doesNotMatch(r.text, /secret|hostname/); // where it leads is not told
      }
      const c = await post(d.url, '/api/copy', { source: model, destination: `${model}-copy` });
      assert.equal(c.status, 400);
      assert.ok(!existsSync(join(models, `${model}-copy.gguf`)));
    }
    for (const r of [await post(d.url, '/api/show', { model: 'dir' }), await gen('dir')]) {
      assert.equal(r.status, 500, r.text);
      assert.match(JSON.parse(r.text).error, /dir\.gguf" is a directory, not a model file/);
    }
    const dangling = await post(d.url, '/api/show', { model: 'dangling' });
    assert.equal(dangling.status, 404);
    assert.match(JSON.parse(dangling.text).error, /is a symbolic link to a file that is not there/);

    // Inside the store, or inside an allowed directory: as any entry.
    for (const model of ['ok', 'alias']) {
      assert.equal((await post(d.url, '/api/show', { model })).status, 200, model);
      assert.equal((await gen(model)).status, 200, model);
      const c = await post(d.url, '/api/copy', { source: model, destination: `${model}-copy` });
      assert.equal(c.status, 200, c.text);
      // The copy is the file, not a second link (a link to a link, or a relative one, would
      // lead elsewhere from its new name).
      assert.ok(lstatSync(join(models, `${model}-copy.gguf`)).isFile(), model);
    }
    const tags = JSON.parse((await get(d.url, '/api/tags')).text).models.map((m) => m.name).sort();
    assert.deepEqual(tags, ['alias-copy:latest', 'alias:latest', 'ok-copy:latest', 'ok:latest', 'tiny:latest']);
  } finally {
    assert.equal(await d.stop(), 0);
    cleanup(home);
    cleanup(outside);
    cleanup(allowed);
  }
});

// `precharge serve` in a private mount namespace whose /etc/hosts says what a name resolves to,
// as the probe did. Resolves with the exit code and stderr, or with stderr once it listens.
function serveWithHosts(home, hostsFile, host) {
  const script = 'mount --bind "$0" /etc/hosts && exec "$1" serve --host "$2"';
  const proc = spawn('unshare', ['-rm', 'sh', '-c', script, hostsFile, BIN, host], {
    env: { ...process.env, PRECHARGE_HOME: home, PRECHARGE_THREADS: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  return new Promise((resolve) => {
    proc.stderr.on('data', (d) => {
      log += d;
      if (/listening on/.test(log)) resolve({ proc, log, listening: true });
    });
    proc.on('exit', (code) => resolve({ code, log, listening: false }));
  });
}

test('--host NAME is judged by the addresses it resolves to, not by how it is spelt', async (t) => {
  try {
    execFileSync('unshare', ['-rm', 'true'], { stdio: 'ignore' });
  } catch {
    t.skip('unshare -rm is not permitted here (no user namespaces): unit/test_guard covers the resolution');
    return;
  }
  const home = tempHome('hard-bind');
  const hosts = join(home, 'hosts');
  writeFileSync(hosts, '0.0.0.0 evil.localhost\n127.0.0.1 good.localhost\n127.0.0.1 localhost\n');
  try {
    // It listened on every interface without a key: now refused, naming the address.
    const evil = await serveWithHosts(home, hosts, 'evil.localhost:0');
    assert.equal(evil.listening, false, evil.log);
    assert.equal(evil.code, 2);
    assert.match(evil.log, /refusing to listen on evil\.localhost \(it resolves to 0\.0\.0\.0\), which is not a loopback address, without an API key/);

    // A name that resolves to loopback is loopback, whatever it is called.
    const good = await serveWithHosts(home, hosts, 'good.localhost:0');
    assert.equal(good.listening, true, good.log);
    const port = good.log.match(/listening on http:\/\/[^ ]*:(\d+)/)[1];
    const r = await fetch(`http://127.0.0.1:${port}/health`);
    assert.equal(r.status, 200);
    const closed = new Promise((ok) => good.proc.on('close', ok));
    good.proc.kill('SIGTERM');
    await closed;
  } finally {
    cleanup(home);
  }
});

// One raw request on its own connection; resolves with the status, the headers and the body once
// the reply is whole (its Content-Length) or the server closes. The client never closes first,
// so a reply that waited for a deadline would keep the test waiting.
function raw(url, bytes) {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), '127.0.0.1');
    let data = Buffer.alloc(0);
    const done = (closed) => {
      const text = data.toString('latin1');
      const [head, ...rest] = text.split('\r\n\r\n');
      const m = head.match(/^HTTP\/1\.1 (\d+)/);
      const len = head.match(/\r\ncontent-length: (\d+)/i);
      const body = rest.join('\r\n\r\n');
      if (!closed && !(m && len && Buffer.byteLength(body, 'latin1') >= Number(len[1]))) return false;
      sock.destroy();
      resolve({ status: m ? Number(m[1]) : null, head, body, closed });
      return true;
    };
    sock.on('data', (d) => { data = Buffer.concat([data, d]); done(false); });
    sock.on('close', () => done(true));
    sock.on('error', reject);
    sock.write(bytes);
  });
}

test('malformed framing is answered at once, 400 or 413, and the connection closed', async () => {
  const home = tempHome('hard-framing');
  const d = await startDaemon({ home, args: ['--connection-timeout', '10m'] });
  const body = '{"model":"x"}';
  const post = (headers, rest = body) => `POST /api/show HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n${rest}`;
  try {
    const cases = [
      ['two Host headers', `POST /api/show HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\nContent-Length: 13\r\n\r\n${body}`,
        400, /more than one Host header/],
      ['two different Content-Length', post('Content-Length: 13\r\nContent-Length: 5\r\n'), 400, /Content-Length headers that disagree/],
      ['Transfer-Encoding and Content-Length', post('Transfer-Encoding: chunked\r\nContent-Length: 13\r\n', `d\r\n${body}\r\n0\r\n\r\n`),
        400, /both Transfer-Encoding and Content-Length/],
      ['Transfer-Encoding: gzip', post('Transfer-Encoding: gzip\r\n'), 400, /Transfer-Encoding "gzip" is not supported: only chunked is/],
      ['Content-Length 2^64-1', post('Content-Length: 18446744073709551615\r\n'), 413, /request body is larger than 8388608 bytes/],
      ['Content-Length not a number', post('Content-Length: 13x\r\n'), 400, /Content-Length/], // libmicrohttpd's own 400
      ['1,000 query parameters', `GET /api/tags?${Array.from({ length: 1000 }, (_, i) => `a${i}=1`).join('&')} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
        400, /1000 query parameters; the limit is 100/],
      ['HTTP/1.1 without Host', 'GET /api/tags HTTP/1.1\r\n\r\n', 400, /Host/],
    ];
    for (const [what, bytes, status, re] of cases) {
      const r = await raw(d.url, bytes);
      assert.equal(r.status, status, `${what}: ${r.head}`);
      let msg = r.body; // JSON from the daemon; libmicrohttpd's own page for a missing Host
      try { msg = JSON.parse(r.body).error; } catch { /* HTML */ }
      assert.match(msg, re, what);
      assert.match(r.head, /\r\nconnection: close/i, what);
    }
    // A 50 KB chunk extension is read and ignored, as HTTP allows: the request is answered (it
    // was a 500).
    const ext = await raw(d.url, post('Transfer-Encoding: chunked\r\n', `d;${'x'.repeat(50 * 1024)}\r\n${body}\r\n0\r\n\r\n`));
    assert.equal(ext.status, 404, ext.head);
    assert.match(JSON.parse(ext.body).error, /model "x" not found/);
    // Well-formed requests, chunked or not, are as before.
    for (const bytes of [post('Content-Length: 13\r\n'), post('Transfer-Encoding: chunked\r\n', `d\r\n${body}\r\n0\r\n\r\n`)]) {
      const r = await raw(d.url, bytes);
      assert.equal(r.status, 404, r.head);
    }
    assert.equal((await get(d.url, '/health')).status, 200);
  } finally {
    assert.equal(await d.stop(), 0);
    cleanup(home);
  }
});

test('precharge model info names a header value that llama.cpp would abort on', () => {
  const home = tempHome('hard-info');
  try {
    makeBadModel(home, 'layers0', 'llama.block_count=u32:0');
    const file = join(home, 'models', 'layers0.gguf');
    const env = { ...process.env, PRECHARGE_HOME: home };
    const text = execFileSync(BIN, ['model', 'info', file], { env }).toString();
    assert.match(text, /memory +".*layers0\.gguf": header key llama\.block_count is 0; llama\.cpp needs 1 to 512/);
    const json = JSON.parse(execFileSync(BIN, ['model', 'info', file, '--json'], { env }).toString());
    assert.match(json.memory_error, /header key llama\.block_count is 0/);
    assert.equal(json.memory_estimate, undefined);
  } finally {
    cleanup(home);
  }
});
