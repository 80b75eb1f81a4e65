// bench_precharge.mjs - time to first token through the HTTP API for a ~1,000-token system
// context and a ~25-token question: cold, warm, precharged (live), restored from RAM, and
// restored from disk after a restart. All in one run, on one daemon binary, so the ratios are
// measured side by side.
//
//   node bench/bench_precharge.mjs [MODEL.gguf]   (default: the tinyllama preset, made if missing)
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, existsSync, symlinkSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(new URL('..', import.meta.url).pathname);
const bin = process.env.PC_BIN ?? join(root, 'build/bin/precharge');
let model = process.argv[2];
if (!model) {
  model = join(root, 'build/tmp/presets/tinyllama.gguf');
  if (!existsSync(model)) {
    mkdirSync(join(root, 'build/tmp/presets'), { recursive: true });
    execFileSync(join(root, 'build/bin/mkmodel'), ['--preset', 'tinyllama', '-q', '-o', model]);
  }
}
const home = mkdtempSync('/tmp/pc-bench-');
mkdirSync(join(home, 'models'));
symlinkSync(resolve(model), join(home, 'models/m.gguf'));

async function start() {
  const proc = spawn(bin, ['serve', '--host', '127.0.0.1:0'], {
    env: { ...process.env, PRECHARGE_HOME: home, PRECHARGE_THREADS: '2', PRECHARGE_KEEP_ALIVE: '-1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const url = await new Promise((ok, fail) => {
    proc.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/listening on (http:\/\/\S+)/);
      if (m) ok(m[1]);
    });
    proc.on('exit', () => fail(new Error(log)));
  });
  return { url, stop: () => new Promise((ok) => { proc.on('exit', ok); proc.kill('SIGTERM'); }) };
}

const post = (url, path, body) =>
  fetch(url + path, { method: 'POST', body: JSON.stringify(body) }).then((r) => r.json());

// Time to the first streamed chunk that carries text; the final chunk's counts come back too.
async function ttft(url, system, question) {
  const t0 = performance.now();
  const res = await fetch(url + '/api/chat', {
    method: 'POST',
    body: JSON.stringify({
      model: 'm', options: { num_predict: 4, temperature: 0 },
      messages: [...(system ? [{ role: 'system', content: system }] : []), { role: 'user', content: question }],
    }),
  });
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let first = null, buf = '', last = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value);
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      if (first === null) first = performance.now() - t0;
      if (line.done) last = line;
    }
  }
  return { ms: first, prompt: last.prompt_eval_count, cached: last.prompt_cached_count,
           prefill_ms: last.prompt_eval_duration / 1e6,
           decode_ms: last.eval_duration / 1e6 / Math.max(1, last.eval_count) };
}

function context(seed) {
  let s = `You are the assistant of form ${seed}. The form has these fields:`;
  for (let i = 0; i < 66; i++) s += ` field_${i} (text, required, at most ${20 + (i * 7) % 50} characters);`;
  return s;
}
const question = 'Which of the required fields accept at most forty characters, and which date format do they use?';

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
// The question's tokens prefilled with nothing before them (a prompt of about as many tokens,
// scaled to the exact count), plus one decode step. A floor: in a request, those tokens also
// attend over the context's cells, which a precharge cannot take off them.
const target = alone.prefill_ms * (pre.prompt - pre.cached) / (alone.prompt - alone.cached) + warm.decode_ms;
console.log(`cold / precharged TTFT          ${(by['cold (model not loaded)'].ms / pre.ms).toFixed(1)}x`);
console.log(`recompute / restore from RAM    ${(warm.ms / by['restored from RAM'].ms).toFixed(1)}x`);
console.log(`recompute / restore from disk   ${(warm.ms / by['restored from disk after a restart'].ms).toFixed(1)}x`);
console.log(`target: prefill of ${pre.prompt - pre.cached} new tokens + one decode step = ${target.toFixed(0)} ms; precharged TTFT ${pre.ms.toFixed(0)} ms: ${pre.ms <= target * 1.1 ? 'met' : 'missed'}`);
