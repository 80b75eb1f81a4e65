// bench_remote.mjs - the ollama provider's costs, side by side in one run: a second daemon is
// the Ollama server, and this one proxies to it. (1) The proxy's overhead on a short streamed
// answer: time to the first NDJSON line and to the end, straight to the server and through the
// proxy, alternating. (2) Time to first token through the proxy for a ~1,000-token context and
// a question: cold on the server, and after POST /api/precharge sent the context there.
//
//   node bench/bench_remote.mjs [MODEL.gguf] [ROUNDS]   (default: the tinyllama preset, 20)
import { mkdtempSync, mkdirSync, symlinkSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { presetModel, start, post, streamed, ttft, context, question } from './common.mjs';

const model = process.argv[2] ?? presetModel();
const rounds = Number(process.argv[3] ?? 20);
const rhome = mkdtempSync('/tmp/pc-bench-remote-');
const lhome = mkdtempSync('/tmp/pc-bench-local-');
mkdirSync(join(rhome, 'models'));
mkdirSync(join(lhome, 'models'));
symlinkSync(resolve(model), join(rhome, 'models/m.gguf'));

const r = await start(rhome, { OLLAMA_URL: 'off' });
const l = await start(lhome, { OLLAMA_URL: r.url, PRECHARGE_OLLAMA_POLL: '1000' });
await post(r.url, '/api/generate', { model: 'm', stream: false }); // the weights, loaded once

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const short = (i) => ({ model: 'm', prompt: `${i} Hello`, raw: true, options: { num_predict: 8, temperature: 0 } });
const direct = { first: [], total: [] };
const proxied = { first: [], total: [] };
for (let i = 0; i < rounds; i++) {
  for (const [url, into] of [[r.url, direct], [l.url, proxied]]) {
    const s = await streamed(url, '/api/generate', short(i));
    into.first.push(s.first);
    into.total.push(s.total);
  }
}
const cold = await ttft(l.url, context('A'), question);
const pc = await post(l.url, '/api/precharge', { model: 'm', context: [{ role: 'system', content: context('C') }], wait: true, timeout: 300 });
const pre = await ttft(l.url, context('C'), question);
await l.stop();
await r.stop();
rmSync(rhome, { recursive: true, force: true });
rmSync(lhome, { recursive: true, force: true });

console.log(`model ${model}, 2 threads, ${rounds} rounds of 8 tokens`);
console.log('short answer (median ms)      first line     end');
console.log(`  straight to the server       ${median(direct.first).toFixed(1).padStart(9)} ${median(direct.total).toFixed(1).padStart(7)}`);
console.log(`  through the proxy            ${median(proxied.first).toFixed(1).padStart(9)} ${median(proxied.total).toFixed(1).padStart(7)}`);
console.log(`proxy overhead: first line +${(median(proxied.first) - median(direct.first)).toFixed(1)} ms, end +${(median(proxied.total) - median(direct.total)).toFixed(1)} ms`);
console.log(`remote precharge: ${pc.status}, ${pc.context_tokens} tokens, prefill ${pc.prefill_time_ms} ms on the server`);
console.log('through the proxy                  TTFT ms   prompt  cached');
for (const [name, t] of [['cold (context new to the server)', cold], ['precharged on the server', pre]])
  console.log(`  ${name.padEnd(32)} ${t.ms.toFixed(0).padStart(7)} ${String(t.prompt).padStart(8)} ${String(t.cached).padStart(7)}`);
console.log(`cold / precharged TTFT through the proxy   ${(cold.ms / pre.ms).toFixed(1)}x`);
