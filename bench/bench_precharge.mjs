// bench_precharge.mjs - time to first token through the HTTP API for a ~1,000-token system
// context and a ~25-token question: cold, warm, precharged (live), restored from RAM, and
// restored from disk after a restart. All in one run, on one daemon binary, so the ratios are
// measured side by side.
//
//   node bench/bench_precharge.mjs [MODEL.gguf]   (default: the tinyllama preset, made if missing)
import { mkdtempSync, mkdirSync, symlinkSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { presetModel, start as startIn, post, ttft, context, question } from './common.mjs';

const model = process.argv[2] ?? presetModel();
const home = mkdtempSync('/tmp/pc-bench-');
mkdirSync(join(home, 'models'));
symlinkSync(resolve(model), join(home, 'models/m.gguf'));
const start = () => startIn(home);

const rows = [];
let d = await start();
rows.push(['cold (model not loaded)', await ttft(d.url, context('A'), question)]);
rows.push(['warm (loaded, no snapshot)', await ttft(d.url, context('B'), question)]);
await post(d.url, '/api/precharge', { model: 'm', context: [{ role: 'system', content: context('C') }], wait: true, timeout: 120 });
rows.push(['precharged (live)', await ttft(d.url, context('C'), question)]);
// The same question with no system context: about as many new tokens, one batch of the same size.
rows.push(['the new tokens alone (no context)', await ttft(d.url, null, question)]);
// Push C out of the live tier: more distinct conversations than the context has sequences.
for (let i = 0; i < 9; i++)
  await post(d.url, '/api/generate', { model: 'm', prompt: `${i} unrelated`, raw: true, stream: false, options: { num_predict: 1 } });
rows.push(['restored from RAM', await ttft(d.url, context('C'), question + ' Again?')]);
await post(d.url, '/api/precharge', { model: 'm', context: [{ role: 'system', content: context('D') }], wait: true, timeout: 120 });
await d.stop();
d = await start();
await post(d.url, '/api/generate', { model: 'm', stream: false }); // load the weights first
rows.push(['restored from disk after a restart', await ttft(d.url, context('D'), question)]);
await d.stop();
rmSync(home, { recursive: true, force: true });

const by = Object.fromEntries(rows);
console.log(`model ${model}, 2 threads`);
console.log('case                                 TTFT ms   prompt  cached  prefill ms');
for (const [name, r] of rows)
  console.log(`${name.padEnd(36)} ${r.ms.toFixed(0).padStart(7)} ${String(r.prompt).padStart(8)} ${String(r.cached).padStart(7)} ${r.prefill_ms.toFixed(0).padStart(11)}`);
const warm = by['warm (loaded, no snapshot)'];
const pre = by['precharged (live)'];
const alone = by['the new tokens alone (no context)'];
console.log(`cold / precharged TTFT          ${(by['cold (model not loaded)'].ms / pre.ms).toFixed(1)}x`);
console.log(`recompute / restore from RAM    ${(warm.ms / by['restored from RAM'].ms).toFixed(1)}x`);
console.log(`recompute / restore from disk   ${(warm.ms / by['restored from disk after a restart'].ms).toFixed(1)}x`);
// The target: no more than the cost of prefilling the question's tokens plus one decode step.
// Those tokens are prefilled where they stand, after the context: each attends over the
// context's cells, as it would in a full recompute; what a precharge takes away is the
// context's own prefill. The engine times that prefill (prompt_eval_duration); the TTFT above
// it is everything else the request pays (HTTP, template, tokenizing, finding the snapshot).
const fresh = pre.prompt - pre.cached;
const target = pre.prefill_ms + warm.decode_ms;
console.log(`target: prefill of the ${fresh} new tokens (${pre.prefill_ms.toFixed(0)} ms) + one decode step (${warm.decode_ms.toFixed(0)} ms) = ${target.toFixed(0)} ms; precharged TTFT ${pre.ms.toFixed(0)} ms: ${fresh <= 40 && pre.ms <= target ? 'met' : 'missed'}`);
console.log(`the request's own overhead      ${(pre.ms - pre.prefill_ms).toFixed(0)} ms above the prefill of its new tokens`);
// For scale: the same number of tokens with no context before them. The difference is the
// new tokens' attention over the context's cells, which no cache can take off them.
const bare = alone.prefill_ms * fresh / (alone.prompt - alone.cached);
console.log(`attention over the context      ${(pre.prefill_ms / bare).toFixed(1)}x the prefill of ${fresh} tokens with no context (${bare.toFixed(0)} ms)`);
