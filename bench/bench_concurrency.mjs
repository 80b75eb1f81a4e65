// bench_concurrency.mjs - many users of one model at once, through the HTTP API: a ~1,000-token
// form context is precharged, then 1, 4 and 8 users ask their own ~30-token question at the
// same moment and stream a 32-token answer. Prints, measured side by side in one run:
//   - the worst time to first token of N streams against one stream's, and the tokens/s that
//     all N streams produce together against one stream's (targets: 4 streams <= 1.5 and >= 2.5);
//   - one precharged request's TTFT against its floor (the prefill of its new tokens where they
//     stand, after the context, plus one decode step; target <= 1.05);
//   - decode tokens/s with one core kept busy by another process: the default thread policy
//     against the best fixed thread count (target >= 0.95).
//
//   node bench/bench_concurrency.mjs [MODEL.gguf] [ROUNDS]   (default: the tinyllama preset, 3)
import { mkdtempSync, mkdirSync, symlinkSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { presetModel, start, post, streamed, context } from './common.mjs';

const model = process.argv[2] || presetModel();
const rounds = Number(process.argv[3] ?? 3);
const home = mkdtempSync('/tmp/pc-bench-');
mkdirSync(join(home, 'models'));
symlinkSync(resolve(model), join(home, 'models/m.gguf'));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const words = ['apple', 'river', 'stone', 'cloud', 'maple', 'tiger', 'ocean', 'piano', 'lemon', 'eagle'];
// A question of the same length for every user and round, new to the cache each time.
const question = (round, user) =>
  `User ${words[user % 10]} ${words[round % 10]} asks: which required fields accept at most ` +
  `forty characters, and which date format does field ${user * 3 + round} use?`;

// N users at once on the precharged context; their TTFTs, and tokens/s over the whole burst.
async function burst(url, system, n, round) {
  const t0 = performance.now();
  const runs = await Promise.all(Array.from({ length: n }, (_, i) => {
    const s = performance.now();
    return streamed(url, '/api/chat', {
      model: 'm', options: { num_predict: 32, temperature: 0 },
      messages: [{ role: 'system', content: system }, { role: 'user', content: question(round, i) }],
    }).then((r) => ({ ...r, offset: s - t0 }));
  }));
  const wall = Math.max(...runs.map((r) => r.offset + r.total));
  const tokens = runs.reduce((a, r) => a + r.last.eval_count, 0);
  return {
    worst: Math.max(...runs.map((r) => r.offset + r.first)),
    tps: (tokens / wall) * 1000,
    prefill_ms: runs[0].last.prompt_eval_duration / 1e6,
    decode_ms: runs[0].last.eval_duration / 1e6 / Math.max(1, runs[0].last.eval_count),
    cached: runs.map((r) => r.last.prompt_cached_count),
    first: runs[0].first,
  };
}

async function concurrency(parallel, sizes) {
  const d = await start(home, { PRECHARGE_PARALLEL: String(parallel) });
  const system = context(`P${parallel}`);
  await post(d.url, '/api/precharge', { model: 'm', context: [{ role: 'system', content: system }], wait: true, timeout: 300 });
  await burst(d.url, system, 1, 99); // the first decode of a fresh context pays for its graph
  const out = {};
  for (const n of sizes) out[n] = [];
  for (let r = 0; r < rounds; r++)
    for (const n of sizes) out[n].push(await burst(d.url, system, n, r * 10 + n));
  await d.stop();
  return out;
}

// Decode tokens/s of one long answer while another process keeps one core busy.
async function decodeRate(threads) {
  const d = await start(home, { PRECHARGE_THREADS: String(threads) });
  await post(d.url, '/api/generate', { model: 'm', prompt: 'warm up', stream: false, options: { num_predict: 4 } });
  const rates = [];
  for (let r = 0; r < rounds; r++) {
    const o = await post(d.url, '/api/generate', {
      model: 'm', prompt: `Tell me a long story, number ${r}.`, stream: false, options: { num_predict: 96, temperature: 0 },
    });
    rates.push(o.eval_count / (o.eval_duration / 1e9));
  }
  await d.stop();
  return median(rates);
}

const c4 = await concurrency(4, [1, 4, 8]);
const c8 = await concurrency(8, [8]);

// One core kept busy by another process for the whole thread measurement.
const busy = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
await new Promise((ok) => setTimeout(ok, 1500));
const rate = { default: await decodeRate(0), 1: await decodeRate(1), 2: await decodeRate(2) };
busy.kill();
rmSync(home, { recursive: true, force: true });

const one = { worst: median(c4[1].map((b) => b.worst)), tps: median(c4[1].map((b) => b.tps)) };
console.log(`model ${model}, ${rounds} rounds (medians), 32-token answers after a precharged ~1,000-token context`);
console.log('streams  parallel  worst TTFT ms  tokens/s   TTFT ratio  tokens/s ratio');
const row = (n, parallel, bs) => {
  const w = median(bs.map((b) => b.worst)), t = median(bs.map((b) => b.tps));
  console.log(`${String(n).padStart(7)}  ${String(parallel).padStart(8)}  ${w.toFixed(0).padStart(13)}  ${t.toFixed(1).padStart(8)}  ${(w / one.worst).toFixed(2).padStart(10)}x  ${(t / one.tps).toFixed(2).padStart(13)}x`);
};
row(1, 4, c4[1]);
row(4, 4, c4[4]);
row(8, 4, c4[8]);
row(8, 8, c8[8]);
const single = c4[1][c4[1].length - 1];
const floor = median(c4[1].map((b) => b.prefill_ms + b.decode_ms));
const ttft1 = median(c4[1].map((b) => b.first));
console.log(`one precharged request: TTFT ${ttft1.toFixed(0)} ms against its floor ${floor.toFixed(0)} ms (prefill of its new tokens in place + one decode step): ${(ttft1 / floor).toFixed(3)}x (cached ${single.cached[0]} tokens)`);
const best = Math.max(rate[1], rate[2]);
console.log(`decode with one core busy: default policy ${rate.default.toFixed(1)} tokens/s, 1 thread ${rate[1].toFixed(1)}, 2 threads ${rate[2].toFixed(1)}: default / best fixed ${(rate.default / best).toFixed(2)}x`);
