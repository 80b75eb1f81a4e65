// pool.test.mjs - the pool through the daemon's API: /v1/models load, preload, pin, unload and
// stats; /api/ps; budget admission and the insufficient-memory error; the eviction policies;
// an unload during a streamed answer; keep-alive expiry; paths and the model-dir allow-list;
// and the CLI's load, unload, pin and ps.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { BIN, MKMODEL, tempHome, makeModel, startDaemon, post, get, eventually, cleanup } from './lib.mjs';

let home, size;
const ctx = { PRECHARGE_CONTEXT_LENGTH: '256' };

const req = async (d, method, path, body) => {
  const res = await fetch(d.url + path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: JSON.parse(await res.text()) };
};
const load = (d, id, body) => req(d, 'POST', `/v1/models/${id}/load`, body);
const preload = (d, id, body) => req(d, 'POST', `/v1/models/${id}/preload`, body);
const pin = (d, id, pinned = true) => req(d, 'POST', `/v1/models/${id}/pin`, { pinned });
const unload = (d, id) => req(d, 'DELETE', `/v1/models/${id}`);
const stats = async (d) => (await req(d, 'GET', '/v1/models/stats')).body;
const ps = async (d) => JSON.parse((await get(d.url, '/api/ps')).text).models;
const names = async (d) => (await ps(d)).map((m) => m.name.replace(/:latest$/, '')).sort().join(',');

// A daemon on this test's home; the budget in tiny models, measured below. Budgets of 2.4
// models: two of them use 83%, above the 80% pressure mark and off its edge.
const daemon = (env = {}, args = []) =>
  startDaemon({ home, args, env: { ...ctx, PRECHARGE_KEEP_ALIVE: '-1', ...env } });
const budget = (models) => `${Math.floor(size * models)}`;

before(async () => {
  home = tempHome('pool');
  for (const m of ['a', 'b', 'c', 'd']) makeModel(home, m);
  // What one tiny model costs at this context, as the pool counts it.
  const d = await daemon();
  try {
    const r = await load(d, 'a');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    size = r.body.size;
    assert.ok(size > 1 << 20, `size ${size}`);
  } finally {
    await d.stop();
  }
});
after(() => cleanup(home));

test('load, preload, stats and unload through /v1/models', async () => {
  const d = await daemon();
  try {
    let r = await load(d, 'a');
    assert.equal(r.status, 200);
    assert.equal(r.body.success, true);
    assert.equal(r.body.model_id, 'a');
    assert.equal(r.body.loaded, true);
    r = await load(d, 'a:latest');
    assert.equal(r.body.loaded, false, 'already resident');
    r = await preload(d, 'b');
    assert.equal(r.status, 200);
    assert.equal(r.body.loaded, true);
    assert.equal(r.body.preload, true);

    let s = await stats(d);
    assert.deepEqual(s.loaded_models.sort(), ['a', 'b']);
    assert.equal(s.total_loaded, 2);
    assert.equal(s.hits, 1);
    assert.equal(s.misses, 1);
    assert.equal(s.preloads, 1);
    assert.equal(s.evictions, 0);
    assert.equal(s.hit_rate, 0.5);
    assert.equal(s.pressure, false);
    assert.equal(s.policy, 'lru');
    assert.equal(s.max_models, 3);
    assert.equal(s.memory_used_bytes, 2 * size);
    assert.equal(s.estimated_memory_mb, Math.round((2 * size) / 1048576));
    assert.ok(s.memory_budget_bytes > s.memory_used_bytes, 'a default budget from the probe');

    // /api/ps reflects the pool: sizes, pins, users.
    const models = await ps(d);
    assert.equal(models.length, 2);
    for (const m of models) {
      assert.equal(m.size, size);
      assert.equal(m.pinned, false);
      assert.equal(m.in_use, 0);
    }

    r = await unload(d, 'a');
    assert.equal(r.status, 200);
    assert.equal(r.body.pending, false);
    assert.ok(await eventually(async () => (await names(d)) === 'b'));
    r = await unload(d, 'a');
    assert.equal(r.status, 404);
    assert.match(r.body.error, /model "a" is not loaded/);

    // Unknown models and bad ids get clear errors, and nothing changes.
    r = await load(d, 'no-such-model');
    assert.equal(r.status, 404);
    assert.match(r.body.error, /unknown model "no-such-model"/);
    r = await load(d, 'a..b');
    assert.equal(r.status, 400);
    assert.match(r.body.error, /invalid model name "a..b"/);
    r = await req(d, 'POST', '/v1/models/a/load', 'not an object');
    assert.equal(r.status, 400);
    r = await req(d, 'POST', '/v1/models/a/load', { keep_alive: 'later' });
    assert.equal(r.status, 400);
    assert.match(r.body.error, /keep_alive/);
    assert.equal(await names(d), 'b');
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test('concurrent loads of one model share one load', async () => {
  const d = await daemon();
  try {
    const rs = await Promise.all([1, 2, 3, 4, 5].map(() => load(d, 'c')));
    for (const r of rs) assert.equal(r.status, 200);
    assert.equal(rs.filter((r) => r.body.loaded).length, 1);
    const s = await stats(d);
    assert.equal(s.hits + s.misses, 5);
    assert.equal(s.total_loaded, 1);
  } finally {
    await d.stop();
  }
});

test('pinned on /load and /preload pins (or unpins) the model as /pin does: it outlives eviction pressure and keep_alive 0', async () => {
  const d = await daemon({ PRECHARGE_MEMORY_BUDGET: budget(2.4) });
  try {
    let r = await load(d, 'a', { pinned: true });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.pinned, true);
    await load(d, 'b');
    // a is the least recently used, but pinned: b makes room for c.
    r = await load(d, 'c');
    assert.equal(r.status, 200);
    assert.equal(await names(d), 'a,c');
    // A request's keep_alive 0 leaves a pinned model loaded.
    const g = await post(d.url, '/api/generate', { model: 'a', prompt: 'hi', stream: false, keep_alive: 0, options: { num_predict: 1 } });
    assert.equal(g.status, 200);
    assert.equal(await names(d), 'a,c');
    r = await preload(d, 'c', { pinned: true });
    assert.equal(r.body.pinned, true);
    assert.deepEqual((await stats(d)).pinned_models.sort(), ['a', 'c']);
    r = await load(d, 'd');
    assert.equal(r.status, 503, 'both pinned: no room for a third');
    // pinned: false unpins; without the field the pin stays as it is.
    r = await load(d, 'a');
    assert.equal(r.body.pinned, undefined);
    assert.deepEqual((await stats(d)).pinned_models.sort(), ['a', 'c']);
    r = await preload(d, 'c', { pinned: false });
    assert.equal(r.body.pinned, false);
    assert.deepEqual((await stats(d)).pinned_models, ['a']);
    r = await load(d, 'd');
    assert.equal(r.status, 200);
    assert.equal(await names(d), 'a,d');
    assert.equal((await load(d, 'a', { pinned: 'yes' })).status, 400);
  } finally {
    await d.stop();
  }
});

test('the budget admits two models of three; pinned ones make the third fail at once', async () => {
  const d = await daemon({ PRECHARGE_MEMORY_BUDGET: budget(2.4) });
  try {
    await load(d, 'a');
    await load(d, 'b');
    await load(d, 'a'); // b is now the least recently used
    let r = await load(d, 'c');
    assert.equal(r.status, 200);
    assert.equal(await names(d), 'a,c');
    let s = await stats(d);
    assert.equal(s.evictions, 1);
    assert.equal(s.pressure, true);
    assert.ok(s.memory_used_bytes <= s.memory_budget_bytes);

    // Pin both: a is exempt from eviction, and d cannot fit beside them.
    r = await pin(d, 'a');
    assert.equal(r.status, 200);
    r = await pin(d, 'c');
    assert.equal(r.body.pinned, true);
    r = await load(d, 'd');
    assert.equal(r.status, 503);
    assert.match(r.body.error, /^insufficient memory: need [\d.]+ MiB, free [\d.]+ MiB, pinned [\d.]+ MiB/);
    // Through the Ollama API too, and the daemon keeps serving what it has.
    const g = await post(d.url, '/api/generate', { model: 'd', prompt: 'hi', options: { num_predict: 1 } });
    assert.equal(g.status, 503);
    assert.match(JSON.parse(g.text).error, /insufficient memory/);
    assert.equal(await names(d), 'a,c');
    const ok = await post(d.url, '/api/generate', { model: 'a', prompt: 'hi', stream: false, options: { num_predict: 1 } });
    assert.equal(ok.status, 200);

    const m = (await ps(d)).find((x) => x.name === 'a:latest');
    assert.equal(m.pinned, true);
    assert.ok(Date.parse(m.expires_at) > Date.now() + 100 * 365 * 86400e3, 'pinned: forever');
    s = await stats(d);
    assert.deepEqual(s.pinned_models.sort(), ['a', 'c']);
    assert.equal(s.rejections, 2);

    // Unpinned, c makes room again.
    r = await pin(d, 'c', false);
    assert.equal(r.status, 200);
    r = await load(d, 'd');
    assert.equal(r.status, 200);
    assert.equal(await names(d), 'a,d');
    r = await pin(d, 'c', false);
    assert.equal(r.status, 404);
  } finally {
    await d.stop();
  }
});

// a b c c c a a b, then d, with room for three: who goes.
for (const [policy, victim] of [['lru', 'c'], ['lfu', 'b'], ['fifo', 'a']]) {
  test(`eviction policy ${policy} evicts ${victim}`, async () => {
    const d = await daemon({ PRECHARGE_EVICTION: policy, PRECHARGE_MAX_LOADED_MODELS: '3' });
    try {
      for (const m of ['a', 'b', 'c', 'c', 'c', 'a', 'a', 'b', 'd']) assert.equal((await load(d, m)).status, 200);
      const left = ['a', 'b', 'c', 'd'].filter((m) => m !== victim).join(',');
      assert.equal(await names(d), left);
      assert.equal((await stats(d)).policy, policy);
    } finally {
      await d.stop();
    }
  });
}

// The answer (600 greedy tokens: the same every time) takes a second or two; the unload asked
// after its first chunk finds the model in use. Should the answer ever have finished first,
// the round is tried again: the test asserts the pending unload, never a time.
async function streamAndUnload(d) {
  const res = await fetch(d.url + '/api/generate', {
    method: 'POST',
    body: JSON.stringify({ model: 'a', prompt: 'Tell me a long story', options: { num_predict: 600, temperature: 0 } }),
  });
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let text = dec.decode((await reader.read()).value);
  const r = await unload(d, 'a');
  assert.equal(r.status, 200);
  const inUse = (await ps(d)).map((m) => m.in_use);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += dec.decode(value);
  }
  return { r, inUse, lines: text.trim().split('\n').map((l) => JSON.parse(l)) };
}

test('an unload during a streamed answer waits for the answer to finish', async () => {
  const d = await daemon({ PRECHARGE_CONTEXT_LENGTH: '2048' });
  try {
    let round;
    for (let i = 0; i < 5; i++) {
      assert.equal((await load(d, 'a')).status, 200);
      round = await streamAndUnload(d);
      if (round.r.body.pending) break;
      assert.ok(await eventually(async () => (await ps(d)).length === 0));
    }
    // The model was in use: the unload was pending, and the answer went on to its end.
    assert.equal(round.r.body.pending, true);
    assert.equal(round.r.body.in_use, 1);
    assert.match(round.r.body.message, /will be unloaded when its 1 user finishes/);
    assert.deepEqual(round.inUse, [1], 'listed, in use, while it answers');
    const last = round.lines.at(-1);
    assert.equal(last.done, true, JSON.stringify(last));
    assert.equal(last.done_reason, 'length');
    assert.ok(last.eval_count > 100);
    // Then it goes.
    assert.ok(await eventually(async () => (await ps(d)).length === 0));
    assert.equal((await stats(d)).total_loaded, 0);
  } finally {
    await d.stop();
  }
});

test('keep-alive expiry unloads an idle model; a pin keeps it', async () => {
  const d = await daemon();
  try {
    await load(d, 'a', { keep_alive: '200ms' });
    await load(d, 'b', { keep_alive: '200ms' });
    await pin(d, 'b');
    assert.ok(await eventually(async () => (await names(d)) === 'b'));
    const s = await stats(d);
    assert.equal(s.expirations, 1);
    // Unpinned, its keep-alive runs again from now.
    await pin(d, 'b', false);
    assert.ok(await eventually(async () => (await names(d)) === ''));
  } finally {
    await d.stop();
  }
});

test('paths in a request are refused, unless inside an allowed model directory', async () => {
  const allowed = join(home, 'allowed');
  mkdirSync(allowed, { recursive: true });
  execFileSync(MKMODEL, ['--preset', 'tiny', '-q', '-o', join(allowed, 'e.gguf')]);
  writeFileSync(join(home, 'outside.gguf'), 'x');
  symlinkSync(join(home, 'outside.gguf'), join(allowed, 'link.gguf'));

  let d = await daemon();
  try {
    const r = await load(d, 'e', { path: join(allowed, 'e.gguf') });
    assert.equal(r.status, 400);
    assert.match(r.body.error, /field "path": models are not loaded by path unless .*--model-dir/);
  } finally {
    await d.stop();
  }

  d = await daemon({ PRECHARGE_MODEL_DIRS: allowed });
  try {
    let r = await load(d, 'e', { path: join(allowed, '..', 'allowed', 'e.gguf') });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    // A model loaded by path is served by its id while it is resident.
    const g = await post(d.url, '/api/generate', { model: 'e', prompt: 'hi', stream: false, options: { num_predict: 2 } });
    assert.equal(g.status, 200, g.text);
    assert.equal(JSON.parse(g.text).eval_count, 2);

    for (const p of [join(home, 'outside.gguf'), join(allowed, 'link.gguf'), join(allowed, 'none.gguf'), '/etc/passwd']) {
      r = await load(d, 'x', { path: p });
      assert.equal(r.status, 400, p);
      assert.match(r.body.error, /is not a model file inside the allowed model directories/);
    }
  } finally {
    await d.stop();
  }

  // A directory that is not there stops the daemon at start, with its name.
  const bad = spawnSync(BIN, ['serve', '--host', '127.0.0.1:0'], {
    encoding: 'utf8',
    timeout: 30000,
    env: { ...process.env, PRECHARGE_HOME: home, PRECHARGE_MODEL_DIRS: join(home, 'missing') },
  });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /model directory ".*missing": No such file or directory/);
});

test('a catalog alias names the model it stands for', async () => {
  writeFileSync(join(home, 'catalog.json'), JSON.stringify({
    models: [{ id: 'c', name: 'Model C', aliases: ['cee:1b'], source_url: 'http://127.0.0.1:1/c.gguf' }],
  }));
  const d = await daemon();
  try {
    const r = await load(d, 'cee:1b');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.model_id, 'c');
    assert.equal(await names(d), 'c');
    assert.equal((await unload(d, 'cee:1b')).status, 200);
  } finally {
    await d.stop();
  }
});

test('precharge load, pin, ps and unload', async () => {
  const d = await daemon({ PRECHARGE_MEMORY_BUDGET: budget(2.4) });
  const cli = (args) =>
    spawnSync(BIN, args, {
      encoding: 'utf8',
      timeout: 60000,
      env: { ...process.env, PRECHARGE_HOME: home, PRECHARGE_HOST: d.url.replace('http://', '') },
    });
  try {
    let r = cli(['load', 'a']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^loaded a in \d+ ms/);
    r = cli(['load', '--preload', '--keep-alive', '10m', 'b']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^preloaded b/);
    r = cli(['pin', 'a']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^pinned a/);

    r = cli(['ps']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(lines[0], /^NAME\s+SIZE\s+PROCESSOR\s+CONTEXT\s+PINNED\s+IN USE\s+UNTIL$/);
    assert.match(r.stdout, /a:latest\s+\d+ MB\s+100% CPU\s+256\s+yes\s+0\s+Forever/);
    assert.match(r.stdout, /b:latest\s+\d+ MB\s+100% CPU\s+256\s+no\s+0\s+\d+ minutes from now/);
    assert.match(r.stdout, /memory \d+ MB of \d+ MB budget \(\d+%, under pressure\); 2 of 3 models; lru eviction; hits 0, misses 1 \(0%\); evictions 0; preloads 1/);

    r = cli(['load', 'c']); // evicts b: a is pinned
    assert.equal(r.status, 0, r.stderr);
    assert.equal(await names(d), 'a,c');
    r = cli(['pin', 'c']);
    assert.equal(r.status, 0, r.stderr);
    r = cli(['load', 'd']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^precharge: insufficient memory: need/);

    r = cli(['pin', '--off', 'c']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^unpinned c/);
    r = cli(['unload', 'c']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^unloaded c/);
    r = cli(['unload', 'c']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /model "c" is not loaded/);

    assert.equal(cli(['load']).status, 2);
    assert.equal(cli(['load', 'a', 'b']).status, 2);
    assert.equal(cli(['pin']).status, 2);
    assert.equal(cli(['pin', 'a', '--sideways']).status, 2);
    assert.equal(cli(['unload']).status, 2);
    r = cli(['load', '--path', join(home, 'models', 'a.gguf'), 'z']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--model-dir/);
  } finally {
    await d.stop();
  }
});
