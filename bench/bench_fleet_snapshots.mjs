// bench_fleet_snapshots.mjs - the shared snapshot tier (issue #18): host B's first answer for a
// ~1,000-token system context that host A precharged (restored from Redis) against B prefilling
// that context itself. Two daemons with their own homes and the same model file, one
// redis-server on loopback, all in one run, so the ratio is measured side by side.
//
//   node bench/bench_fleet_snapshots.mjs [MODEL.gguf]   (default: the tinyllama preset)
import { execFileSync } from 'node:child_process';
import { copyFileSync, linkSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { bin, root, presetModel, start, post, ttft, context, question } from './common.mjs';
import { startRedis } from '../tests/integration/lib.mjs';

const model = process.argv[2] ?? presetModel();
mkdirSync(join(root, 'build/tmp'), { recursive: true });
const work = mkdtempSync(join(root, 'build/tmp/bench-fleet-'));
const redis = await startRedis(join(work, 'redis'));

// A host: its own home, the same model file, its sha256 recorded (what a download records).
async function host(name) {
  const home = join(work, name);
  mkdirSync(join(home, 'models'), { recursive: true });
  // A file of the store (a link out of it is not verified): a hard link where it can be.
  try {
    linkSync(resolve(model), join(home, 'models/m.gguf'));
  } catch {
    copyFileSync(resolve(model), join(home, 'models/m.gguf'));
  }
  execFileSync(bin, ['model', 'verify', 'm'], { env: { ...process.env, PRECHARGE_HOME: home }, stdio: 'ignore' });
  const d = await start(home, { PRECHARGE_REDIS_URL: redis.url, PRECHARGE_REDIS_SNAPSHOTS: '1' });
  await post(d.url, '/api/generate', { model: 'm', stream: false }); // load the weights first
  return d;
}

let a, b;
try {
  a = await host('a');
  b = await host('b');
} catch (e) {
  await redis.stop();
  throw e;
}
const rows = [];
rows.push(['B prefills the context itself', await ttft(b.url, context('P'), question)]);
const pre = await post(a.url, '/api/precharge', { model: 'm', context: [{ role: 'system', content: context('S') }], wait: true, timeout: 600 });
if (pre.shared_tier !== 'redis') throw new Error(`A's precharge was not shared: ${JSON.stringify(pre)}`);
rows.push(['B restores A\'s precharge from Redis', await ttft(b.url, context('S'), question)]);
rows.push(['B again (now in its RAM and live)', await ttft(b.url, context('S'), question + ' Again?')]);
rows.push(['A after its own precharge (live)', await ttft(a.url, context('S'), question)]);
await a.stop();
await b.stop();
await redis.stop();
rmSync(work, { recursive: true, force: true });

console.log(`model ${model}, 2 threads per daemon`);
console.log('case                                   TTFT ms   prompt  cached  prefill ms  from');
for (const [name, r] of rows)
  console.log(`${name.padEnd(38)} ${r.ms.toFixed(0).padStart(7)} ${String(r.prompt).padStart(8)} ${String(r.cached).padStart(7)} ${r.prefill_ms.toFixed(0).padStart(11)}  ${r.restored_from ?? '-'}`);
const [own, shared] = [rows[0][1], rows[1][1]];
if (shared.restored_from !== 'redis') throw new Error('B did not restore the context from Redis');
console.log(`B's first answer: prefilling / restored from Redis   ${(own.ms / shared.ms).toFixed(1)}x`);
console.log(`snapshot in Redis: ${pre.context_tokens} tokens`);
