// bench_fleet_bus.mjs - the fleet's bus (issue #18): the latency from publishing a
// PrechargeRequested on precharge:requests to its PrechargeCompleted on precharge:responses,
// against POST /api/precharge with wait, on the same daemon, interleaved in one run, so that the
// ratio is measured side by side. Each round precharges a context of its own (real work: a
// prefill), once through each path.
//
//   node bench/bench_fleet_bus.mjs [MODEL.gguf] [ROUNDS]   (default: the tiny preset, 20)
import { copyFileSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { root, presetModel, start, post } from './common.mjs';
import { startRedis } from '../tests/integration/lib.mjs';

const model = process.argv[2] || presetModel('tiny');
const rounds = Number(process.argv[3] ?? 20);
mkdirSync(join(root, 'build/tmp'), { recursive: true });
const work = mkdtempSync(join(root, 'build/tmp/bench-fleet-bus-'));
const home = join(work, 'home');
mkdirSync(join(home, 'models'), { recursive: true });
copyFileSync(resolve(model), join(home, 'models/m.gguf'));
const redis = await startRedis(join(work, 'redis'));
const d = await start(home, { PRECHARGE_REDIS_URL: redis.url }).catch(async (e) => {
  await redis.stop();
  throw e;
});
const pub = await redis.client();
const sub = await redis.client(); // its blocking reads hold its connection

const ctx = (tag, i) => [
  { role: 'system', content: `You are the assistant of form ${tag}-${i}. The form has the fields name, email, ssn and date of birth. Answer in one short sentence.` },
  { role: 'user', content: `{"form":"${tag}-${i}","name":"","email":""}` },
];

// Wait (blocking reads) for cid's response on precharge:responses after entry id last.
async function response(cid, last) {
  for (;;) {
    const got = await sub.xRead({ key: 'precharge:responses', id: last }, { BLOCK: 10000, COUNT: 100 });
    if (got === null) throw new Error(`no response for ${cid}`);
    for (const e of got[0].messages) {
      last = e.id;
      if (e.message.correlation_id === cid) return JSON.parse(e.message.data);
    }
  }
}

async function viaBus(i) {
  const cid = `bench-bus-${i}-${Date.now()}`;
  const last = (await pub.xInfoStream('precharge:responses').catch(() => null))?.['last-generated-id'] ?? '0-0';
  const t0 = performance.now();
  await pub.xAdd('precharge:requests', '*', {
    type: 'PrechargeRequested',
    data: JSON.stringify({ correlation_id: cid, model_id: 'm', category: 'local', context: ctx('bus', i), priority: 'normal' }),
    metadata: JSON.stringify({ correlation_id: cid }),
  });
  const r = await response(cid, last);
  const ms = performance.now() - t0;
  if (r.status !== 'ready') throw new Error(JSON.stringify(r));
  return ms;
}

async function viaHttp(i) {
  const t0 = performance.now();
  const r = await post(d.url, '/api/precharge', { model: 'm', category: 'local', context: ctx('http', i), wait: true });
  const ms = performance.now() - t0;
  if (r.status !== 'ready') throw new Error(JSON.stringify(r));
  return ms;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const bus = [], http = [];
try {
  await viaHttp(-1); // the load, out of the figures
  await viaBus(-1);
  for (let i = 0; i < rounds; i++) {
    // Alternate which goes first, so that neither always runs on a warmer machine.
    if (i % 2 === 0) {
      bus.push(await viaBus(i));
      http.push(await viaHttp(i));
    } else {
      http.push(await viaHttp(i));
      bus.push(await viaBus(i));
    }
  }
} finally {
  sub.destroy();
  pub.destroy();
  await d.stop();
  await redis.stop();
  rmSync(work, { recursive: true, force: true });
}
console.log(`model ${model}, ${rounds} rounds, one daemon, one redis-server on loopback`);
console.log('path                                          median ms   min ms   max ms');
for (const [name, xs] of [['POST /api/precharge, wait', http], ['precharge:requests -> precharge:responses', bus]])
  console.log(`${name.padEnd(45)} ${median(xs).toFixed(1).padStart(9)} ${Math.min(...xs).toFixed(1).padStart(8)} ${Math.max(...xs).toFixed(1).padStart(8)}`);
console.log(`bus / HTTP (median): ${(median(bus) / median(http)).toFixed(2)}x`);
