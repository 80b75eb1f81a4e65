// preload.test.mjs - the startup preloader over HTTP: retries with backoff against a model file
// that appears later, the per-attempt timeout, parallel preloads under the pool's limit, the
// /ready transitions with systemd's READY=1, a re-warm after a forced unload, and the
// configuration's order (flags over file over environment).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { renameSync, writeFileSync } from 'node:fs';
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
    assert.match(d.log(), /tiny: attempt 1 of 1 failed: Preload timeout after 1 ms; giving up/);
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
    assert.equal(failed.attempts, 2);
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
    assert.ok(await eventually(() => sub.events.some((e) => e.type === 'ModelHealthChecked' && e.data.loaded === false)));
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
