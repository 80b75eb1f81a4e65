// fleet.test.mjs - the fleet on a real redis-server (issue #18): three daemons with their own
// homes, ports and model sets take seed 000's PrechargeRequested from precharge:requests as an
// application publishes them (the redis npm client), each answered once on
// precharge:responses by a daemon that serves its model; a daemon killed with requests pending
// has them taken over; Redis stopped and started while the daemons serve; the registry.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempHome, makeModel, startDaemon, startRedis, post, get, cleanup, eventually } from './lib.mjs';

let redis, client;
const homes = [];
const daemons = {}; // name -> {d, id}

// Short periods, so that expiry and takeover happen within the test; the logic is the same.
const fleetEnv = () => ({
  PRECHARGE_REDIS_URL: redis.url,
  PRECHARGE_FLEET_HEARTBEAT: '300ms',
  PRECHARGE_FLEET_EXPIRY: '1500ms',
  PRECHARGE_FLEET_VISIBILITY_TIMEOUT: '2s',
  PRECHARGE_FLEET_UNSERVED_GRACE: '1s',
  PRECHARGE_FLEET_STREAM_MAXLEN: '1000',
});

async function startMember(name, models, env = {}) {
  const home = tempHome(`fleet-${name}`);
  homes.push(home);
  for (const m of models) makeModel(home, m);
  const d = await startDaemon({ home, env: { ...fleetEnv(), ...env } });
  const view = JSON.parse((await get(d.url, '/api/fleet')).text);
  daemons[name] = { d, id: view.daemon_id, models };
  return daemons[name];
}

async function fleetView(url) {
  const r = await get(url, '/api/fleet');
  assert.equal(r.status, 200, r.text);
  return JSON.parse(r.text);
}

const ctx = (i) => [
  { role: 'system', content: `You are form assistant number ${i}. Be brief.` },
  { role: 'user', content: `{"name":"","field":${i}}` },
];

function request(cid, model, extra = {}) {
  return {
    type: 'PrechargeRequested',
    data: JSON.stringify({ correlation_id: cid, model_id: model, category: 'local', context: ctx(cid.length + model.length), priority: 'normal', ...extra }),
    metadata: JSON.stringify({ correlation_id: cid }),
  };
}

// Every response on precharge:responses, by correlation id (a list: answered twice shows).
async function responses() {
  const all = await client.xRange('precharge:responses', '-', '+');
  const by = new Map();
  for (const e of all) {
    const data = JSON.parse(e.message.data);
    assert.equal(e.message.type, 'PrechargeCompleted');
    assert.equal(e.message.correlation_id, data.correlation_id);
    assert.equal(JSON.parse(e.message.metadata).correlation_id, data.correlation_id);
    if (!by.has(data.correlation_id)) by.set(data.correlation_id, []);
    by.get(data.correlation_id).push(data);
  }
  return by;
}

async function answeredAll(cids) {
  let by;
  const ok = await eventually(async () => {
    by = await responses();
    return cids.every((c) => by.has(c));
  });
  assert.ok(ok, `not answered: ${cids.filter((c) => !by.has(c)).join(', ')}`);
  return by;
}

before(async () => {
  redis = await startRedis(join(tempHome('fleet-redis'), 'redis'));
  homes.push(join(redis.dir, '..'));
  client = await redis.client();
  // Each model is served by two of the three daemons, and each daemon lacks one model.
  await startMember('a', ['m1', 'm2']);
  await startMember('b', ['m2', 'm3']);
  await startMember('c', ['m3', 'm1']);
  const ok = await eventually(async () => (await fleetView(daemons.a.d.url)).daemons.length === 3);
  assert.ok(ok, 'the registry lists the three daemons');
});

after(async () => {
  await client?.quit().catch(() => {});
  for (const { d } of Object.values(daemons)) await d.stop();
  await redis?.kill();
  for (const h of homes) cleanup(h);
});

test('30 requests across the fleet: each answered once, by a daemon that serves its model', async () => {
  const models = ['m1', 'm2', 'm3'];
  const cids = [];
  for (let i = 0; i < 30; i++) {
    const cid = `bus-${i}`;
    cids.push(cid);
    await client.xAdd('precharge:requests', '*', request(cid, models[i % 3], { context: ctx(i) }));
  }
  const by = await answeredAll(cids);
  const view = await fleetView(daemons.b.d.url);
  const serves = new Map(view.daemons.map((d) => [d.daemon_id, d.serves]));
  const answeredBy = new Set();
  for (const [i, cid] of cids.entries()) {
    const list = by.get(cid);
    assert.equal(list.length, 1, `${cid} answered ${list.length} times`);
    const r = list[0];
    assert.equal(r.status, 'ready', JSON.stringify(r));
    assert.equal(r.model_id, models[i % 3]);
    assert.ok(r.context_tokens > 0);
    assert.ok(serves.get(r.daemon_id)?.includes(r.model_id), `${cid} (${r.model_id}) answered by ${r.daemon_id}, which does not serve it`);
    answeredBy.add(r.daemon_id);
  }
  assert.ok(answeredBy.size >= 2, 'the work is spread over the fleet');
  // Acknowledged, everywhere: nothing stays pending.
  const settled = await eventually(async () => {
    for (const s of ['precharge:requests', 'precharge:requests:m1', 'precharge:requests:m2', 'precharge:requests:m3']) {
      if ((await client.xPending(s, 'precharge')).pending !== 0) return false;
    }
    return true;
  });
  assert.ok(settled, 'every request is acknowledged');

  // The registry says where each model is warm, as of its next heartbeat.
  let state;
  assert.ok(await eventually(async () => {
    state = JSON.parse((await get(daemons.a.d.url, '/api/models/m3/state?fleet=1')).text);
    return state.fleet.length >= 1;
  }), 'm3 is warm somewhere');
  for (const w of state.fleet) {
    assert.ok([daemons.b.id, daemons.c.id].includes(w.daemon_id), `m3 warm on ${w.daemon_id}`);
    assert.match(w.http, /^http:\/\/127\.0\.0\.1:\d+$/);
  }
  let b;
  assert.ok(await eventually(async () => {
    b = (await fleetView(daemons.a.d.url)).daemons.find((d) => d.daemon_id === daemons.b.id);
    return b.contexts.length > 0;
  }), 'b lists its precharged contexts');
  assert.equal(b.http, daemons.b.d.url);
  assert.deepEqual(b.serves, ['m2', 'm3']);
  assert.ok(b.contexts.every((c) => /^[0-9a-f]{16}$/.test(c.tokens_hash) && c.context_tokens > 0 && ['m2', 'm3'].includes(c.model_id)), JSON.stringify(b.contexts));
});

test('bad requests and models no one serves: answered once, failed or unavailable', async () => {
  await client.xAdd('precharge:requests', '*', request('ghost-1', 'ghost'));
  await client.xAdd('precharge:requests', '*', { type: 'PrechargeRequested', data: '{not json', metadata: '{"correlation_id":"broken-1"}' });
  // Flat fields, as redis-cli writes them; the context is checked by the daemon that serves m2,
  // with the words of POST /api/precharge.
  await client.xAdd('precharge:requests', '*', { correlation_id: 'flat-bad', model_id: 'm2', context: '"just text"' });
  await client.xAdd('precharge:requests', '*', { correlation_id: 'flat-ok', model_id: 'm2', context: JSON.stringify(ctx(99)) });
  await client.xAdd('precharge:requests', '*', { correlation_id: 'flat-odd', model_id: 'm2', context: JSON.stringify(ctx(98)), colour: 'red' });
  const by = await answeredAll(['ghost-1', 'broken-1', 'flat-bad', 'flat-ok', 'flat-odd']);
  assert.equal(by.get('flat-odd')[0].status, 'failed');
  assert.match(by.get('flat-odd')[0].error, /field "colour" is not a field of a PrechargeRequested/);
  assert.equal(by.get('ghost-1').length, 1);
  assert.equal(by.get('ghost-1')[0].status, 'unavailable');
  assert.match(by.get('ghost-1')[0].error, /no live daemon in the fleet serves model "ghost"/);
  assert.equal(by.get('broken-1')[0].status, 'failed');
  assert.match(by.get('broken-1')[0].error, /field "data" must be a JSON object/);
  assert.equal(by.get('flat-bad')[0].status, 'failed');
  assert.match(by.get('flat-bad')[0].error, /field "context" must be a non-empty array/);
  assert.equal(by.get('flat-ok')[0].status, 'ready');
  // Published once each, whoever saw them.
  await new Promise((r) => setTimeout(r, 1500));
  const again = await responses();
  for (const c of ['ghost-1', 'broken-1', 'flat-bad', 'flat-ok', 'flat-odd']) assert.equal(again.get(c).length, 1, c);
});

test('fleet=1 is checked, and /api/fleet and fleet=1 need the fleet', async () => {
  let r = await get(daemons.a.d.url, '/api/models/m1/state?fleet=yes');
  assert.equal(r.status, 400);
  assert.match(JSON.parse(r.text).error, /"fleet"/);
  const home = tempHome('fleet-alone');
  homes.push(home);
  const alone = await startDaemon({ home });
  try {
    r = await get(alone.url, '/api/fleet');
    assert.equal(r.status, 404);
    assert.match(JSON.parse(r.text).error, /no fleet .*--redis/);
    r = await get(alone.url, '/api/models/m1/state?fleet=1');
    assert.equal(r.status, 400);
  } finally {
    await alone.stop();
  }
});

test('a daemon killed with requests pending: taken over after the visibility timeout, each answered once', async () => {
  // d is the only daemon with m4, and its debounce keeps keyed requests queued for an hour:
  // work it holds and cannot finish before the kill, whatever the machine's speed.
  const d = await startMember('d', ['m4'], { PRECHARGE_DEBOUNCE: '1h' });
  assert.ok(await eventually(async () => (await fleetView(daemons.a.d.url)).daemons.some((x) => x.daemon_id === d.id)));
  const cids = [];
  for (let i = 0; i < 6; i++) {
    cids.push(`kill-${i}`);
    await client.xAdd('precharge:requests', '*', request(`kill-${i}`, 'm4', { key: `form-${i}`, context: ctx(100 + i) }));
  }
  const held = await eventually(async () => {
    const p = await client.xPending('precharge:requests:m4', 'precharge');
    return p.pending === 6 && p.consumers.length === 1 && p.consumers[0].name === d.id;
  });
  assert.ok(held, 'the six requests are pending on d');
  assert.equal([...(await responses()).keys()].filter((c) => c.startsWith('kill-')).length, 0);
  d.d.proc.kill('SIGKILL');
  await d.d.stop();
  delete daemons.d;

  // The registry lets d go once its entry expires.
  assert.ok(await eventually(async () => !(await fleetView(daemons.a.d.url)).daemons.some((x) => x.daemon_id === d.id)),
    'the registry expires the killed daemon');
  const m4 = JSON.parse((await get(daemons.a.d.url, '/api/models/m4/state?fleet=1')).text);
  assert.deepEqual(m4.fleet, []);

  // e serves m4 too: it takes the requests over (XAUTOCLAIM) and runs them.
  const e = await startMember('e', ['m4']);
  const by = await answeredAll(cids);
  for (const c of cids) {
    assert.equal(by.get(c).length, 1, `${c} answered ${by.get(c).length} times`);
    assert.equal(by.get(c)[0].status, 'ready');
    assert.equal(by.get(c)[0].daemon_id, e.id);
  }
  assert.ok(await eventually(async () => (await client.xPending('precharge:requests:m4', 'precharge')).pending === 0));
  assert.match(e.d.log(), /took over \d+ requests pending too long on precharge:requests:m4/);
});

test('Redis stopped and started: HTTP keeps serving, one log line, the bus resumes', async () => {
  const members = Object.values(daemons);
  await redis.stop(); // no persistence: it comes back empty, its groups gone
  for (const { d } of members) {
    assert.equal((await get(d.url, '/health')).status, 200);
    assert.ok(await eventually(async () => !(await fleetView(d.url)).connected), 'the registry notices');
  }
  const r = await post(daemons.a.d.url, '/api/precharge', { model: 'm1', context: ctx(500), wait: true });
  assert.equal(r.status, 200, r.text);
  assert.equal(JSON.parse(r.text).status, 'ready');
  await redis.start();
  client.destroy(); // its server went away: nothing to say goodbye to
  client = await redis.client();
  const cids = ['after-1', 'after-2', 'after-3'];
  for (const [i, c] of cids.entries()) await client.xAdd('precharge:requests', '*', request(c, `m${i + 1}`, { context: ctx(600 + i) }));
  const by = await answeredAll(cids);
  for (const c of cids) {
    assert.equal(by.get(c).length, 1);
    assert.equal(by.get(c)[0].status, 'ready');
  }
  assert.ok(await eventually(async () => (await fleetView(daemons.a.d.url)).daemons.length === members.length));
  for (const { d } of members) {
    const log = d.log();
    assert.equal(log.match(/is unreachable/g)?.length, 1, log);
    assert.equal(log.match(/is back; the fleet resumes/g)?.length, 1, log);
  }
  // The lifecycle events went onto precharge:events after the return too.
  assert.ok(await eventually(async () => {
    const evs = await client.xRange('precharge:events', '-', '+');
    return evs.some((e) => e.message.type === 'PrechargeCompleted' && JSON.parse(e.message.data).correlation_id === 'after-1');
  }), 'PrechargeCompleted of after-1 on precharge:events');
});
