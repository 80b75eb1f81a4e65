// provider_ollama.test.mjs - the remote provider `ollama`, against a second precharge daemon on
// another loopback port acting as the Ollama server (our API is Ollama-compatible): discovery,
// preload and re-warm through /api/generate with keep_alive, status from /api/ps, proxied
// streaming, and an unreachable server that makes its models unavailable and comes back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempHome, makeModel, startDaemon, post, get, ndjson, eventually, cleanup } from './lib.mjs';

const json = async (d, path) => JSON.parse((await get(d.url, path)).text);
const remotePs = async (r) => (await json(r, '/api/ps')).models.map((m) => m.name);

test('ollama provider: discovery, preload, proxy, re-warm, outage and recovery', async () => {
  const rhome = tempHome('remote');
  const lhome = tempHome('local');
  makeModel(rhome, 'rtiny');
  makeModel(lhome, 'ltiny');
  let r = await startDaemon({ home: rhome, env: { OLLAMA_URL: 'off' } });
  const port = new URL(r.url).port;
  writeFileSync(join(lhome, 'config.json'), JSON.stringify({
    preload: ['ltiny', { model: 'rtiny', keepWarm: 'always', maxRetries: 100, retryDelayMs: 50 }],
    ollama_url: r.url,
    health_check_interval_ms: 100,
  }));
  const l = await startDaemon({ home: lhome, env: { PRECHARGE_OLLAMA_POLL: '100' } });
  try {
    // Preloaded on the remote server through /api/generate; ready counts it.
    assert.ok(await eventually(async () => (await get(l.url, '/ready')).status === 200));
    const st = await json(l, '/api/models/status');
    assert.equal(st.rtiny.provider, 'ollama');
    assert.equal(st.rtiny.status, 'ready');
    assert.equal(st.ltiny.provider, 'local');
    assert.deepEqual(await remotePs(r), ['rtiny:latest']);
    // keep_alive -1: never expires.
    assert.ok(Date.parse((await json(r, '/api/ps')).models[0].expires_at) > Date.now() + 365 * 864e5);

    // Discovered models join the list with their provider.
    const tags = (await json(l, '/api/tags')).models;
    const rt = tags.find((m) => m.name === 'rtiny:latest');
    assert.equal(rt.provider, 'ollama');
    assert.equal(rt.available, true);
    const prov = await json(l, '/api/providers');
    assert.equal(prov.ollama.url, r.url);
    assert.equal(prov.ollama.available, true);

    // Proxied with streaming intact: several NDJSON lines, the last one done.
    const g = await post(l.url, '/api/generate', { model: 'rtiny', prompt: 'hi', options: { num_predict: 3 } });
    assert.equal(g.status, 200);
    assert.match(g.type, /ndjson/);
    const lines = ndjson(g.text);
    assert.ok(lines.length >= 2);
    assert.equal(lines.at(-1).done, true);
    assert.equal(lines.at(-1).eval_count, 3);
    const c = await post(l.url, '/api/chat', { model: 'rtiny:latest', stream: false, messages: [{ role: 'user', content: 'hi' }], options: { num_predict: 2 } });
    assert.equal(c.status, 200);
    assert.equal(JSON.parse(c.text).done, true);
    // The server's errors come back as they are.
    const bad = await post(l.url, '/api/generate', { model: 'rtiny', prompt: 'hi', options: { num_predict: 'x' } });
    assert.equal(bad.status, 400);

    // Unload is keep_alive 0; the health check (/api/ps) finds it gone and warms it again.
    const u = await post(l.url, '/api/generate', { model: 'rtiny', keep_alive: 0 });
    assert.equal(u.status, 200);
    assert.ok(await eventually(async () => (await json(l, '/api/models/status')).rtiny.warmups >= 2));
    assert.deepEqual(await remotePs(r), ['rtiny:latest']);

    // The server goes away: its models are unavailable, one warning, no storm.
    await r.stop();
    assert.ok(await eventually(async () => (await json(l, '/api/providers')).ollama.available === false));
    const down = await post(l.url, '/api/generate', { model: 'rtiny', prompt: 'hi', stream: false });
    assert.equal(down.status, 503);
    assert.match(JSON.parse(down.text).error, /unavailable/);
    assert.equal((await json(l, '/api/tags')).models.find((m) => m.name === 'rtiny:latest').available, false);
    await new Promise((res) => setTimeout(res, 500)); // several polls while it is down
    assert.equal(l.log().match(/its models are unavailable/g).length, 1);
    // Local models are untouched.
    const lg = await post(l.url, '/api/generate', { model: 'ltiny', prompt: 'hi', stream: false, options: { num_predict: 1 } });
    assert.equal(lg.status, 200);

    // It comes back on the same port: the provider recovers by itself, and keep-warm warms it.
    r = await startDaemon({ home: rhome, env: { OLLAMA_URL: 'off' }, args: ['--host', `127.0.0.1:${port}`] });
    assert.ok(await eventually(async () => (await json(l, '/api/providers')).ollama.available === true));
    assert.match(l.log(), /is available: 1 models/);
    assert.ok(await eventually(async () => (await remotePs(r)).includes('rtiny:latest')));
    assert.ok(await eventually(async () => (await json(l, '/api/models/status')).rtiny.status === 'ready'));
    const back = await post(l.url, '/api/generate', { model: 'rtiny', prompt: 'hi', stream: false, options: { num_predict: 1 } });
    assert.equal(back.status, 200);
  } finally {
    await l.stop();
    await r.stop();
    cleanup(rhome);
    cleanup(lhome);
  }
});
