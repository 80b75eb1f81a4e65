// preload.test.mjs - the startup preloader over HTTP: retries with backoff against a model file
// that appears later, the per-attempt timeout, parallel preloads under the pool's limit, the
// /ready transitions with systemd's READY=1, a re-warm after a forced unload, and the
// configuration's order (flags over file over environment).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, tempHome, makeModel, startDaemon, post, get, eventually, cleanup } from './lib.mjs';

const status = async (d) => JSON.parse((await get(d.url, '/api/models/status')).text);

// A datagram socket standing in for systemd's $NOTIFY_SOCKET; node has no AF_UNIX datagrams.
function notifySocket(path) {
  const py = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    print(s.recv(4096).decode().replace("\\n", "|"), flush=True)
`;
  const proc = spawn('python3', ['-c', py, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  return {
    lines: () => out.split('\n').filter((l) => l && l !== 'bound'),
    bound: () => eventually(() => out.includes('bound')),
    stop: () => proc.kill(),
  };
}

test('a model that appears later is preloaded by retries; /ready and READY=1 wait for it', async () => {
  const home = tempHome('preload-retry');
  makeModel(home, 'tiny');
  const sock = notifySocket(join(home, 'notify.sock'));
  assert.ok(await sock.bound());
  const d = await startDaemon({
    home,
    env: {
      PRECHARGE_PRELOAD: 'tiny, late',
      PRECHARGE_PRELOAD_RETRIES: '100',
      PRECHARGE_PRELOAD_RETRY_DELAY: '20',
      NOTIFY_SOCKET: join(home, 'notify.sock'),
    },
  });
  try {
    // The server answers from its first moment, while the preloads run.
    assert.equal((await get(d.url, '/health')).status, 200);
    assert.ok(await eventually(async () => (await status(d)).tiny.status === 'ready'));
    assert.ok(await eventually(async () => (await status(d)).late.attempts >= 2));
    const s = (await status(d)).late;
    assert.equal(s.status, 'retrying');
    assert.match(s.error, /not found/);
    assert.equal(s.preloadedAt, null);

    const r = await get(d.url, '/ready');
    assert.equal(r.status, 503);
    assert.deepEqual(JSON.parse(r.text).pending, ['late']);
    assert.equal(JSON.parse(r.text).status, 'warming'); // still retrying
    assert.deepEqual(JSON.parse(r.text).failed, []);
    assert.ok(!sock.lines().some((l) => l.includes('READY=1')), 'READY=1 before every preload');
    assert.ok(sock.lines().some((l) => l.startsWith('STATUS=1 of 2')));

    // The file appears (written aside and renamed, as a download finishes).
    makeModel(home, 'late-tmp');
    renameSync(join(home, 'models', 'late-tmp.gguf'), join(home, 'models', 'late.gguf'));
    assert.ok(await eventually(async () => (await get(d.url, '/ready')).status === 200));
    const late = (await status(d)).late;
    assert.equal(late.status, 'ready');
    assert.ok(late.attempts >= 2);
    assert.equal(late.error, null);
    assert.ok(Date.parse(late.preloadedAt) > 0);
    assert.ok(await eventually(() => sock.lines().some((l) => l.startsWith('READY=1'))));
    assert.match(d.log(), /late: attempt 1 of 101 failed: .*retrying in 20 ms/);
    assert.match(d.log(), /late: attempt 2 of 101 failed: .*retrying in 40 ms/); // backoff
    assert.match(d.log(), /ready: 2 of 2 required models warm/);
  } finally {
    sock.stop();
    await d.stop();
    cleanup(home);
  }
});

// The first attempt loads the model, which takes longer than 1 ms even for the tiny one.
test('an attempt that outlives MODEL_PRELOAD_TIMEOUT fails with the timeout', async () => {
  const home = tempHome('preload-timeout');
  makeModel(home, 'tiny');
  const d = await startDaemon({
    home,
    env: { PRECHARGE_PRELOAD: 'tiny', PRECHARGE_PRELOAD_RETRIES: '0', MODEL_PRELOAD_TIMEOUT: '1' },
  });
  try {
    assert.ok(await eventually(async () => (await status(d)).tiny.status === 'failed'));
    const s = (await status(d)).tiny;
    assert.equal(s.attempts, 1);
    assert.match(s.error, /Preload timeout after 1 ms/);
    assert.match(d.log(), /tiny: attempt 1 of 1 failed: Preload timeout after 1 ms; required: retrying in \d+ ms until warm/);
    const ready = await get(d.url, '/ready');
    assert.equal(ready.status, 503);
    // Nothing is left warming: /ready says the preload failed, and which.
    assert.deepEqual(JSON.parse(ready.text), { status: 'failed', pending: ['tiny'], failed: ['tiny'] });
    // Graceful degradation: the model still serves requests.
    const r = await post(d.url, '/api/generate', { model: 'tiny', prompt: 'hi', stream: false, options: { num_predict: 2 } });
    assert.equal(r.status, 200);
  } finally {
    await d.stop();
    cleanup(home);
  }
});

test('parallel preloads under the pool limit: what does not fit fails by its policy; optional ones do not hold /ready', async () => {
  const home = tempHome('preload-budget');
  makeModel(home, 'a');
  makeModel(home, 'b');
  const config = {
    preload: [
      { model: 'a', displayName: 'Model A', keepWarm: 'always', maxRetries: 1, retryDelayMs: 10 },
      { model: 'b', displayName: 'Model B', keepWarm: 'always', maxRetries: 1, retryDelayMs: 10, required: false },
    ],
  };
  writeFileSync(join(home, 'config.json'), JSON.stringify(config));
  // One model at a time: both start at once, the first to load is pinned, the other has no room.
  let d = await startDaemon({ home, args: ['--max-models', '1'] });
  try {
    assert.ok(await eventually(async () => {
      const s = await status(d);
      return ['ready', 'failed'].includes(s.a.status) && ['ready', 'failed'].includes(s.b.status) &&
        s.a.status !== s.b.status;
    }));
    const s = await status(d);
    const failed = s.a.status === 'failed' ? s.a : s.b;
    assert.match(failed.error, /insufficient memory/);
    // Past its quick retries an optional model gives up; a required one keeps trying.
    if (failed === s.b) assert.equal(failed.attempts, 2);
    else assert.ok(failed.attempts >= 2);
    assert.equal(s.a.displayName, 'Model A');
    const ready = await get(d.url, '/ready');
    assert.equal(ready.status, s.a.status === 'ready' ? 200 : 503); // b is optional
    const ps = JSON.parse((await get(d.url, '/api/ps')).text);
    assert.equal(ps.models.length, 1);
  } finally {
    await d.stop();
  }
  // Room for both: both warm, in parallel, and pinned.
  d = await startDaemon({ home, args: ['--max-models', '2'] });
  try {
    assert.ok(await eventually(async () => (await get(d.url, '/ready')).status === 200));
    assert.ok(await eventually(async () => (await status(d)).b.status === 'ready'));
    const s = await status(d);
    assert.equal(s.a.pinned, true);
    assert.equal(s.b.pinned, true);
    const ps = JSON.parse((await get(d.url, '/api/ps')).text);
    assert.deepEqual(ps.models.map((m) => m.name).sort(), ['a:latest', 'b:latest']);
  } finally {
    await d.stop();
    cleanup(home);
  }
});

// Read SSE frames from /api/events, in the background.
async function subscribe(url) {
  const ctrl = new AbortController();
  const res = await fetch(`${url}/api/events?stream=models`, { signal: ctrl.signal });
  const reader = res.body.getReader();
  await reader.read(); // subscribed from here on
  const events = [];
  const dec = new TextDecoder();
  let buf = '';
  (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = frame.split('\n').find((l) => l.startsWith('data:'));
          if (data) events.push(JSON.parse(data.slice(5)));
        }
      }
    } catch {
      // aborted
    }
  })();
  return { events, stop: () => ctrl.abort() };
}

test('a keep-warm model is warmed again after a forced unload, and health checks report', async () => {
  const home = tempHome('preload-rewarm');
  makeModel(home, 'tiny');
  writeFileSync(join(home, 'config.json'), JSON.stringify({
    preload: [{ model: 'tiny', keepWarm: 'always', warmup: 'Bonjour' }],
    health_check_interval_ms: 100,
  }));
  const d = await startDaemon({ home });
  try {
    assert.ok(await eventually(async () => (await get(d.url, '/ready')).status === 200));
    const sub = await subscribe(d.url);
    assert.ok(await eventually(() => sub.events.some((e) => e.type === 'ModelHealthChecked' && e.data.ok)));
    assert.ok(await eventually(async () => (await status(d)).tiny.lastChecked !== (await status(d)).tiny.preloadedAt));

    // Forced unload: keep_alive 0 wins over the pin.
    const r = await post(d.url, '/api/generate', { model: 'tiny', keep_alive: 0 });
    assert.equal(r.status, 200);
    // The pool's unload, not the next health check, tells the preloader: it warms it again.
    assert.ok(await eventually(() => sub.events.some((e) => e.type === 'ModelEvicted' && e.data.reason === 'unloaded')));
    assert.ok(await eventually(async () => (await status(d)).tiny.warmups >= 2));
    assert.ok(sub.events.some((e) => e.type === 'ModelPreloaded' && e.data.model_id === 'tiny'));
    assert.ok(await eventually(async () => JSON.parse((await get(d.url, '/api/ps')).text).models.length === 1));
    assert.equal((await status(d)).tiny.status, 'ready');
    assert.match(d.log(), /tiny: warming again \(keep-warm always\)/);
    sub.stop();
  } finally {
    await d.stop();
    cleanup(home);
  }
});

test('precharge config: flags over the file over the environment; bad files are named', async () => {
  const home = tempHome('preload-config');
  const file = join(home, 'other.json');
  writeFileSync(file, JSON.stringify({ preload: ['from-file'], health_check_interval_ms: 1234, max_models: 3 }));
  const env = { ...process.env, PRECHARGE_HOME: home, PRECHARGE_PRELOAD: 'from-env', HEALTH_CHECK_INTERVAL: '999', MODEL_PRELOAD_TIMEOUT: '777' };
  const run = (args) => JSON.parse(execFileSync(BIN, ['config', ...args], { env }).toString());
  let c = run([]);
  assert.deepEqual(c.preload.map((p) => p.model), ['from-env']);
  assert.equal(c.health_check_interval_ms, 999);
  assert.equal(c.config_file, null);
  c = run(['--config', file]);
  assert.deepEqual(c.preload.map((p) => p.model), ['from-file']);
  assert.equal(c.health_check_interval_ms, 1234);
  assert.equal(c.preload_timeout_ms, 777);
  assert.equal(c.max_models, 3);
  assert.equal(c.config_file, file);
  c = run(['--config', file, '--preload', 'flag1', '--preload', 'flag2', '--health-interval', '5']);
  assert.deepEqual(c.preload.map((p) => p.model), ['flag1', 'flag2']);
  assert.equal(c.health_check_interval_ms, 5);

  writeFileSync(file, JSON.stringify({ preload: [{ model: 'x', keepWarm: '25:00-26:00' }] }));
  assert.throws(() => execFileSync(BIN, ['config', '--config', file], { env, stdio: 'pipe' }), (e) =>
    /other\.json.*preload.*\[0\].*keep-warm "25:00-26:00"/.test(e.stderr.toString()));
  writeFileSync(file, '{"max_models": 2,');
  assert.throws(() => execFileSync(BIN, ['config', '--config', file], { env, stdio: 'pipe' }), (e) =>
    /other\.json", line 1/.test(e.stderr.toString()));
  cleanup(home);
});

test('precharge config: every setting with where it came from; serve --help lists every one', () => {
  const home = tempHome('config-sources');
  const file = join(home, 'config.json');
  writeFileSync(file, JSON.stringify({ eviction: 'lfu', model_dirs: [home] }));
  const env = { ...process.env, PRECHARGE_HOME: home, PRECHARGE_MEMORY_BUDGET: '2G', PRECHARGE_LOG_LEVEL: 'warn' };
  const c = JSON.parse(execFileSync(BIN, ['config', '--threads', '3', '--no-repack'], { env }).toString());
  // What the configuration used to leave out: budget, eviction, model directories, log levels.
  assert.equal(c.memory_budget, '2147483648');
  assert.equal(c.eviction, 'lfu');
  assert.deepEqual(c.model_dirs, [home]);
  assert.equal(c.log_level, 'warn');
  assert.equal(c.llama_log, 'error');
  assert.equal(c.threads, 3);
  assert.equal(c.repack, false);
  assert.equal(c.sources.memory_budget, 'environment');
  assert.equal(c.sources.log_level, 'environment');
  assert.equal(c.sources.eviction, 'file');
  assert.equal(c.sources.model_dirs, 'file');
  assert.equal(c.sources.threads, 'flag');
  assert.equal(c.sources.repack, 'flag');
  assert.equal(c.sources.keep_alive, 'default');
  assert.equal(c.config_file, file);
  const keys = Object.keys(c).filter((k) => k !== 'sources' && k !== 'config_file');
  assert.deepEqual(Object.keys(c.sources), keys);
  // The help comes from the same table: every setting, its variable and its default.
  const help = execFileSync(BIN, ['serve', '--help'], { env }).toString();
  for (const k of keys) assert.match(help, new RegExp(`file: ${k},`), `serve --help leaves out ${k}`);
  assert.match(help, /--max-models N .*\n.*PRECHARGE_MAX_LOADED_MODELS, file: max_models, default: 3/);
  for (const line of help.split('\n')) assert.ok(line.length <= 100, `a help line over 100 columns: ${line}`);
  // One range, whichever source: the flag's and the environment's messages say the same.
  const bad = (args, extra) => {
    try {
      execFileSync(BIN, ['config', ...args], { env: { ...env, ...extra }, stdio: 'pipe' });
    } catch (e) {
      return e.stderr.toString();
    }
    assert.fail('accepted');
  };
  assert.match(bad(['--max-models', '65'], {}), /--max-models: "65" is not a whole number from 1 to 64/);
  assert.match(bad([], { PRECHARGE_MAX_LOADED_MODELS: '65' }), /PRECHARGE_MAX_LOADED_MODELS: "65" is not a whole number from 1 to 64/);
  cleanup(home);
});

test('a required preload that gave up keeps retrying, its backoff capped, until the model comes; /ready and READY=1 follow', async () => {
  const home = tempHome('preload-recover');
  const sock = notifySocket(join(home, 'notify.sock'));
  assert.ok(await sock.bound());
  const d = await startDaemon({
    home,
    env: {
      PRECHARGE_PRELOAD: 'late',
      PRECHARGE_PRELOAD_RETRIES: '1',
      PRECHARGE_PRELOAD_RETRY_DELAY: '50',
      PRECHARGE_PRELOAD_RETRY_MAX: '200',
      NOTIFY_SOCKET: join(home, 'notify.sock'),
    },
  });
  try {
    // The quick retries are spent: failed, and /ready says so.
    assert.ok(await eventually(async () => (await status(d)).late.status === 'failed'));
    let r = await get(d.url, '/ready');
    assert.equal(r.status, 503);
    assert.deepEqual(JSON.parse(r.text), { status: 'failed', pending: ['late'], failed: ['late'] });
    // ... and it goes on trying, each wait doubled up to the cap.
    assert.ok(await eventually(async () => (await status(d)).late.attempts >= 5));
    assert.equal((await status(d)).late.status, 'failed');
    assert.match(d.log(), /late: attempt 2 of 2 failed: .*required: retrying in 100 ms until warm/);
    assert.match(d.log(), /late: attempt 3 failed: .*retrying in 200 ms/);
    assert.match(d.log(), /late: attempt 4 failed: .*retrying in 200 ms/); // capped
    assert.ok(!sock.lines().some((l) => l.includes('READY=1')));

    makeModel(home, 'late-tmp');
    renameSync(join(home, 'models', 'late-tmp.gguf'), join(home, 'models', 'late.gguf'));
    assert.ok(await eventually(async () => (await get(d.url, '/ready')).status === 200));
    const late = (await status(d)).late;
    assert.equal(late.status, 'ready');
    assert.equal(late.error, null);
    assert.ok(await eventually(() => sock.lines().some((l) => l.startsWith('READY=1'))));
  } finally {
    sock.stop();
    await d.stop();
    cleanup(home);
  }
});

test('Ollama down at start: the provider is unavailable at its URL, not a local model to pull; it recovers', async () => {
  const rhome = tempHome('preload-remote-down');
  const lhome = tempHome('preload-local');
  makeModel(rhome, 'rmodel');
  let r = await startDaemon({ home: rhome, env: { OLLAMA_URL: 'off' } });
  const port = new URL(r.url).port;
  await r.stop(); // the server is down when the local daemon starts
  const l = await startDaemon({
    home: lhome,
    env: {
      OLLAMA_URL: r.url,
      PRECHARGE_OLLAMA_POLL: '100',
      PRECHARGE_PRELOAD: 'rmodel',
      PRECHARGE_PRELOAD_RETRIES: '0',
      PRECHARGE_PRELOAD_RETRY_DELAY: '50',
      PRECHARGE_PRELOAD_RETRY_MAX: '200',
    },
  });
  try {
    assert.ok(await eventually(async () => (await status(l)).rmodel.status === 'failed'));
    const s = (await status(l)).rmodel;
    assert.equal(s.provider, 'ollama');
    assert.match(s.error, /unavailable/);
    assert.ok(s.error.includes(r.url), s.error);
    assert.doesNotMatch(s.error, /pull/);
    // The server comes up on its address, with the model: the preload finds it there.
    r = await startDaemon({ home: rhome, args: ['--host', `127.0.0.1:${port}`], env: { OLLAMA_URL: 'off' } });
    assert.ok(await eventually(async () => (await get(l.url, '/ready')).status === 200));
    const ok = (await status(l)).rmodel;
    assert.equal(ok.status, 'ready');
    assert.equal(ok.provider, 'ollama');
    assert.ok(await eventually(async () => JSON.parse((await get(r.url, '/api/ps')).text).models.length === 1));
  } finally {
    await l.stop();
    await r.stop();
    cleanup(lhome);
    cleanup(rhome);
  }
});

test('/api/models/status follows the pool: an expired or unloaded model is unloaded at once, a reload makes it ready', async () => {
  const home = tempHome('preload-events');
  makeModel(home, 'tiny');
  // Checks far apart: only the pool's events can change the status.
  const d = await startDaemon({ home, env: { PRECHARGE_PRELOAD: 'tiny', PRECHARGE_KEEP_ALIVE: '1s' } });
  try {
    const sub = await subscribe(d.url);
    assert.ok(await eventually(() => sub.events.some((e) => e.type === 'ModelEvicted' && e.data.reason === 'expired')));
    assert.equal((await status(d)).tiny.status, 'unloaded');
    assert.equal((await get(d.url, '/ready')).status, 200); // it expired by its own keep-alive
    // A request loads it again: ready.
    const g = await post(d.url, '/api/generate', { model: 'tiny', keep_alive: '1m' });
    assert.equal(g.status, 200);
    assert.equal((await status(d)).tiny.status, 'ready');
    const u = await fetch(`${d.url}/v1/models/tiny`, { method: 'DELETE' });
    assert.equal(u.status, 200);
    assert.ok(await eventually(() => sub.events.some((e) => e.type === 'ModelEvicted' && e.data.reason === 'unloaded')));
    assert.equal((await status(d)).tiny.status, 'unloaded');
    sub.stop();
  } finally {
    await d.stop();
    cleanup(home);
  }
});

test('health checks are not a use: a model checked more often than its keep-alive still expires', async () => {
  const home = tempHome('preload-checks');
  makeModel(home, 'tiny');
  const d = await startDaemon({
    home,
    env: { PRECHARGE_PRELOAD: 'tiny', PRECHARGE_KEEP_ALIVE: '2s', HEALTH_CHECK_INTERVAL: '200' },
  });
  try {
    const sub = await subscribe(d.url);
    assert.ok(await eventually(() => sub.events.filter((e) => e.type === 'ModelHealthChecked' && e.data.ok).length >= 2));
    assert.ok(await eventually(() => sub.events.some((e) => e.type === 'ModelEvicted' && e.data.reason === 'expired')));
    assert.equal(JSON.parse((await get(d.url, '/api/ps')).text).models.length, 0);
    assert.equal((await status(d)).tiny.status, 'unloaded');
    sub.stop();
  } finally {
    await d.stop();
    cleanup(home);
  }
});

// HH:MM:SS in UTC, seconds from now.
const utcClock = (s) => new Date(Date.now() + s * 1000).toISOString().slice(11, 19);

test('a keep-warm window opens and closes when it says, not at the next check', async () => {
  const home = tempHome('preload-window');
  makeModel(home, 'tiny');
  // Opens 4 s from now, closes 4 s later; health checks and the minute tick are far away.
  const window = `${utcClock(4)}-${utcClock(8)}`;
  writeFileSync(join(home, 'config.json'), JSON.stringify({ preload: [{ model: 'tiny', keepWarm: window }] }));
  const d = await startDaemon({ home, env: { TZ: 'UTC' } });
  try {
    assert.ok(await eventually(async () => (await status(d)).tiny.status === 'ready'));
    assert.equal((await status(d)).tiny.keepWarm, window);
    assert.equal((await status(d)).tiny.pinned, false);
    assert.ok(await eventually(async () => (await status(d)).tiny.pinned === true, { tries: 100 }));
    assert.match(d.log(), /tiny: keep-warm window opens: pinned/);
    assert.ok(await eventually(async () => (await status(d)).tiny.pinned === false, { tries: 100 }));
    assert.match(d.log(), /tiny: keep-warm window closes/);
  } finally {
    await d.stop();
    cleanup(home);
  }
});

test('max_parallel_preloads: one at a time loads the models one after another', async () => {
  const home = tempHome('preload-parallel');
  makeModel(home, 'a');
  copyFileSync(join(home, 'models', 'a.gguf'), join(home, 'models', 'b.gguf'));
  copyFileSync(join(home, 'models', 'a.gguf'), join(home, 'models', 'c.gguf'));
  const d = await startDaemon({ home, args: ['--max-parallel-preloads', '1'], env: { PRECHARGE_PRELOAD: 'a,b,c' } });
  try {
    assert.ok(await eventually(async () => (await get(d.url, '/ready')).status === 200));
    // Each attempt starts after the one before has ended.
    const turns = () => d.log().split('\n').filter((l) => /( is warm|: attempt 1 starts)/.test(l));
    assert.ok(await eventually(() => turns().length === 6), d.log()); // the log comes through a pipe
    const lines = turns();
    for (let i = 0; i < 6; i += 2) {
      const m = lines[i].match(/(\w+): attempt 1 starts/);
      assert.ok(m, lines[i]);
      assert.match(lines[i + 1], new RegExp(`${m[1]} is warm`));
    }
  } finally {
    await d.stop();
    cleanup(home);
  }
});
