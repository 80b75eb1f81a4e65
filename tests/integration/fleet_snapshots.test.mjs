// fleet_snapshots.test.mjs - the shared snapshot tier (issue #18): two daemons with their own
// homes and the same model file share a precharged context through a real redis-server; the
// fleet's budget holds; a model without a known sha256 is not shared; without Redis, requests
// are answered by prefilling.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { RESP_TYPES } from 'redis';
import { BIN, tempHome, makeModel, startDaemon, startRedis, post, get, cleanup, sha256File, eventually } from './lib.mjs';

let redis, rc, homeA, homeB, homeC, a, b, c, sha;
const homes = [];
const system = { role: 'system', content: 'You are the assistant of a tax form. Its fields are name, income, deductions and dependants. Answer in one sentence.' };

// A home whose store holds the same tiny model file as every other, with its sha256 recorded
// when verify is true (as a download records it).
function home(name) {
  const h = tempHome(`fleetsnap-${name}`);
  homes.push(h);
  addModel(h, 'tiny', { verify: true });
  return h;
}

function addModel(h, model, { verify }) {
  copyFileSync(join(homes[0], 'models', 'tiny.gguf'), join(h, 'models', `${model}.gguf`));
  if (verify) execFileSync(BIN, ['model', 'verify', model], { env: { ...process.env, PRECHARGE_HOME: h }, stdio: 'ignore' });
}

// What the tier's keys take in Redis, as Redis counts it.
async function tierMemory() {
  let sum = 0;
  for (const k of await rc.keys('precharge:snap:*')) sum += Number(await rc.sendCommand(['MEMORY', 'USAGE', k]));
  return sum;
}

const form = (i) => [{ role: 'system', content: `You fill in form number ${i}. ${'Its fields are name, street, city, postcode and country. '.repeat(1 + (i % 2))}Be brief.` }];

const BUDGET = 40 * 1024; // B's and C's budget for the fleet: three of the small contexts below
const fleetEnv = (extra = {}) => ({ PRECHARGE_REDIS_URL: redis.url, PRECHARGE_REDIS_SNAPSHOTS: '1', ...extra });

async function precharge(d, model, context) {
  const r = await post(d.url, '/api/precharge', { model, context, wait: true });
  assert.equal(r.status, 200, r.text);
  return JSON.parse(r.text);
}

async function chat(d, model, messages) {
  const r = await post(d.url, '/api/chat', { model, messages, stream: false, options: { num_predict: 4, temperature: 0 } });
  assert.equal(r.status, 200, r.text);
  return JSON.parse(r.text);
}

before(async () => {
  const first = tempHome('fleetsnap-model');
  homes.push(first);
  makeModel(first, 'tiny');
  sha = sha256File(join(first, 'models', 'tiny.gguf'));
  redis = await startRedis(join(first, 'redis'));
  rc = await redis.client();
  homeA = home('a');
  homeB = home('b');
  homeC = home('c');
  addModel(homeC, 'plain', { verify: false }); // the same file, put there by hand: no sha256 known
  a = await startDaemon({ home: homeA, env: fleetEnv() });
  b = await startDaemon({ home: homeB, env: fleetEnv({ PRECHARGE_REDIS_SNAPSHOT_BUDGET: String(BUDGET) }) });
  c = await startDaemon({ home: homeC, env: fleetEnv({ PRECHARGE_REDIS_SNAPSHOT_BUDGET: String(BUDGET) }) });
});

after(async () => {
  await rc?.disconnect().catch(() => {});
  for (const d of [a, b, c]) await d?.stop();
  await redis?.stop();
  for (const h of homes) cleanup(h);
});

test('a context precharged through daemon A is restored from Redis by daemon B', async () => {
  const pre = await precharge(a, 'tiny', [system]);
  assert.equal(pre.status, 'ready');
  assert.equal(pre.shared_tier, 'redis');
  assert.ok(pre.context_tokens > 20);
  // Keyed by the file's sha256: the index holds the context's tokens, the value its state.
  const idx = await rc.hLen(`precharge:snap:idx:${sha}`);
  assert.equal(idx, 1);
  const values = await rc.keys(`precharge:snap:v:${sha}:*`);
  assert.equal(values.length, 1);

  // B never saw the context: its first chat restores it from Redis, then keeps it in RAM.
  const question = { role: 'user', content: 'What goes into income?' };
  const c = await chat(b, 'tiny', [system, question]);
  assert.equal(c.prompt_eval_cached_count, pre.context_tokens);
  assert.equal(c.restored_from, 'redis');
  const listed = JSON.parse((await get(b.url, '/api/precharged')).text).precharged;
  assert.deepEqual(listed.map((p) => [p.model_id, p.context_tokens, p.tier]), [['tiny', pre.context_tokens, 'ram']]);
  // Its second chat has it locally: Redis is not asked again for what B holds.
  const c2 = await chat(b, 'tiny', [system, { role: 'user', content: 'And deductions?' }]);
  assert.ok(c2.prompt_eval_cached_count >= pre.context_tokens);
  assert.notEqual(c2.restored_from, 'redis');
  // B's precharge of the same context finds it at home, and does not send it back.
  const again = await precharge(b, 'tiny', [system]);
  assert.equal(again.status, 'already_warm');
  assert.equal(await rc.hLen(`precharge:snap:idx:${sha}`), 1);
});

test('a daemon reads a model\'s index again only when it changed', async () => {
  const reads = async () => Number((await rc.info('commandstats')).match(/cmdstat_hgetall:calls=(\d+)/)?.[1] ?? 0);
  const ask = (i) => chat(b, 'tiny', [{ role: 'system', content: `Unrelated context ${i}.` }, { role: 'user', content: 'Hello?' }]);
  await ask(0);
  const before = await reads();
  for (let i = 1; i <= 3; i++) await ask(i); // each looks in Redis; the index has not changed
  assert.equal(await reads(), before);
  await precharge(c, 'tiny', form(40)); // a store changes it: B's next look reads it again
  const stored = await reads();
  await ask(4);
  assert.equal(await reads(), stored + 1);
});

test('the budget holds: least recently used shared snapshots go, and Redis holds no more than it', async () => {
  const results = [];
  for (let i = 0; i < 6; i++) {
    const pre = await precharge(c, 'tiny', form(i));
    assert.equal(pre.shared_tier, 'redis', JSON.stringify(pre));
    results.push(pre);
    const mem = await tierMemory();
    assert.ok(mem <= BUDGET, `after ${i + 1} precharges the tier takes ${mem} bytes in Redis; the budget is ${BUDGET}`);
    assert.ok(Number(await rc.get('precharge:snap:total')) <= BUDGET);
  }
  // Some went (and A's context, the least recently used, first); the newest is there, and the
  // index lists exactly the values that are left.
  const values = (await rc.keys(`precharge:snap:v:${sha}:*`)).map((k) => k.split(':').at(-1)).sort();
  assert.ok(values.length >= 2 && values.length < 6, `${values.length} values`);
  assert.deepEqual(Object.keys(await rc.hGetAll(`precharge:snap:idx:${sha}`)).sort(), values);
  assert.equal(await rc.zCard('precharge:snap:lru'), values.length);
  // B, which holds none of them, restores the newest from Redis.
  const last = await chat(b, 'tiny', [...form(5), { role: 'user', content: 'Which city?' }]);
  assert.equal(last.restored_from, 'redis');
  assert.equal(last.prompt_eval_cached_count, results[5].context_tokens);
  // Entries expire: the value's key carries the expiry (24 hours by default).
  const ttl = await rc.pTTL(`precharge:snap:v:${sha}:${values[0]}`);
  assert.ok(ttl > 0 && ttl <= 24 * 3600 * 1000, `ttl ${ttl}`);
});

test('two daemons writing at once stay within the budget together', async () => {
  const pres = await Promise.all([0, 1, 2, 3].map((i) => precharge(i % 2 ? b : c, 'tiny', form(20 + i))));
  assert.deepEqual(pres.map((p) => p.shared_tier), ['redis', 'redis', 'redis', 'redis']);
  const mem = await tierMemory();
  assert.ok(mem <= BUDGET, `the tier takes ${mem} bytes in Redis; the budget is ${BUDGET}`);
  const values = await rc.keys(`precharge:snap:v:${sha}:*`);
  assert.equal(await rc.hLen(`precharge:snap:idx:${sha}`), values.length);
  assert.equal(await rc.zCard('precharge:snap:lru'), values.length);
});

test('a value that expired leaves the index when a daemon next looks for it', async () => {
  const pre = await precharge(c, 'tiny', form(30));
  assert.equal(pre.shared_tier, 'redis');
  const total = Number(await rc.get('precharge:snap:total'));
  const [key] = (await rc.zRange('precharge:snap:lru', -1, -1));
  await rc.del(`precharge:snap:v:${key}`); // as its expiry would
  // A, which does not hold it, finds it in the index, not in Redis: it prefills, and the entry
  // leaves the index, the LRU set and the byte count.
  const r = await chat(a, 'tiny', [...form(30), { role: 'user', content: 'Which country?' }]);
  assert.notEqual(r.restored_from, 'redis');
  assert.ok(r.prompt_eval_cached_count < pre.context_tokens);
  assert.ok(!(await rc.hExists(`precharge:snap:idx:${sha}`, key.split(':')[1])));
  assert.equal(await rc.zScore('precharge:snap:lru', key), null);
  assert.ok(Number(await rc.get('precharge:snap:total')) < total);
});

test('a shared context that B passes over (its live conversation gives more) is kept, not fetched again', async () => {
  const s = [{ role: 'system', content: 'You check insurance claims. Ask for the policy number first, then the date.' }];
  const q1 = [...s, { role: 'user', content: 'I had an accident.' }];
  const r1 = await chat(b, 'tiny', q1); // B prefills it itself: live, in no snapshot tier
  const pre = await precharge(a, 'tiny', s);
  assert.equal(pre.shared_tier, 'redis');
  const conv = [...q1, { role: 'assistant', content: r1.message.content }, { role: 'user', content: 'It was yesterday.' }];
  const r2 = await chat(b, 'tiny', conv);
  assert.notEqual(r2.restored_from, 'redis');
  assert.ok(r2.prompt_eval_cached_count > pre.context_tokens, JSON.stringify(r2));
  // Fetched once, checked, and kept: B lists it, and its next turn does not ask Redis for it.
  const listed = JSON.parse((await get(b.url, '/api/precharged')).text).precharged;
  assert.ok(listed.some((p) => p.context_tokens === pre.context_tokens && p.tier === 'ram'), JSON.stringify(listed));
  const [member, score] = await rc.zRangeWithScores('precharge:snap:lru', -1, -1).then((x) => [x[0].value, x[0].score]);
  const r3 = await chat(b, 'tiny', [...conv, { role: 'assistant', content: r2.message.content }, { role: 'user', content: 'Thanks.' }]);
  assert.ok(r3.prompt_eval_cached_count > pre.context_tokens);
  assert.equal(await rc.zScore('precharge:snap:lru', member), score);
});

// FNV-1a, 64 bits: the checksum that ends a shared value (src/precharge/snapwire.h).
function fnv1a(buf) {
  let h = 14695981039346656037n;
  for (const b of buf) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 1099511628211n);
  return h;
}

test('a shared snapshot that does not restore here is refused: prefilled, and not fetched again', async () => {
  const s = [{ role: 'system', content: 'You book train tickets. Ask for the departure station first.' }];
  const pre = await precharge(c, 'tiny', s);
  assert.equal(pre.shared_tier, 'redis');
  const [member] = await rc.zRange('precharge:snap:lru', -1, -1);
  const key = `precharge:snap:v:${member}`;
  // Cut its state in half and mend the checksum: the value reads back whole, the state does not
  // restore (as another host's state would not where the KV cache differs).
  const v = await rc.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }).get(key);
  const n = v.readUInt32LE(8);
  const half = Math.floor(Number(v.readBigUInt64LE(16)) / 2);
  const cut = Buffer.from(v.subarray(0, 24 + 4 * n + half));
  cut.writeBigUInt64LE(BigInt(half), 16);
  const sum = Buffer.alloc(8);
  sum.writeBigUInt64LE(fnv1a(cut));
  await rc.sendCommand(['SET', key, Buffer.concat([cut, sum]), 'KEEPTTL']);

  const failures = () => a.log().match(/restore from redis failed/g)?.length ?? 0;
  const r1 = await chat(a, 'tiny', [...s, { role: 'user', content: 'From Paris.' }]);
  assert.notEqual(r1.restored_from, 'redis');
  assert.equal(failures(), 1, a.log());
  const score = await rc.zScore('precharge:snap:lru', member);
  const r2 = await chat(a, 'tiny', [...s, { role: 'user', content: 'To Lyon, on Monday.' }]);
  assert.notEqual(r2.restored_from, 'redis');
  assert.equal(failures(), 1);
  assert.equal(await rc.zScore('precharge:snap:lru', member), score); // not fetched again
  assert.equal(await rc.exists(key), 1); // another host may restore it: it stays
});

test('a model without a known sha256 is not shared, and its log says so', async () => {
  const before = (await rc.keys('precharge:snap:*')).sort();
  const pre = await precharge(c, 'plain', form(7));
  assert.equal(pre.status, 'ready');
  assert.equal(pre.shared_tier, undefined);
  assert.equal(pre.snapshot_tier, 'disk');
  assert.deepEqual((await rc.keys('precharge:snap:*')).sort(), before);
  assert.match(c.log(), /plain: its snapshots are not shared through redis: the manifest records no sha256/);
  assert.match(c.log(), /tiny: its precharged snapshots are shared through redis/);
});

test('Redis away: B still answers by prefilling, A still precharges, and it is logged once', async () => {
  await rc.disconnect();
  await redis.stop();
  const other = [{ role: 'system', content: 'Translate every answer into French. Keep it short.' }];
  const r = await chat(b, 'tiny', [...other, { role: 'user', content: 'Which postcode?' }]);
  assert.equal(r.done, true);
  assert.notEqual(r.restored_from, 'redis');
  assert.ok(r.prompt_eval_count > r.prompt_eval_cached_count);
  const again = await chat(b, 'tiny', [...form(9), { role: 'user', content: 'Which country?' }]);
  assert.equal(again.done, true);
  assert.notEqual(again.restored_from, 'redis');
  const pre = await precharge(a, 'tiny', form(10));
  assert.equal(pre.status, 'ready');
  assert.equal(pre.snapshot_tier, 'disk');
  assert.equal(pre.shared_tier, undefined);
  assert.equal(b.log().match(/Redis at .* is unreachable/g)?.length, 1, b.log());
  // Back: A's next precharge is shared again.
  await redis.start();
  rc = await redis.client();
  let n = 0;
  assert.ok(await eventually(async () => (await precharge(a, 'tiny', form(11 + n++))).shared_tier === 'redis', { tries: 40, every: 250 }));
});
