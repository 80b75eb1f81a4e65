// common.mjs - what the HTTP benchmarks share: the daemon binary, a preset model made on
// demand, a daemon started on an ephemeral port with its own home, and time to first token of a
// streamed /api/chat for a form's system context and a question.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readlinkSync, lstatSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export const root = resolve(new URL('..', import.meta.url).pathname);
export const bin = process.env.PC_BIN ?? join(root, 'build/bin/precharge');

// The preset (tinyllama) under build/tmp/presets, made with mkmodel the first time.
export function presetModel(preset = 'tinyllama') {
  const model = join(root, `build/tmp/presets/${preset}.gguf`);
  if (!existsSync(model)) {
    mkdirSync(join(root, 'build/tmp/presets'), { recursive: true });
    execFileSync(join(root, 'build/bin/mkmodel'), ['--preset', preset, '-q', '-o', model]);
  }
  return model;
}

// The directories that the store's links (home/models/*.gguf) lead to: the daemon serves a link
// only into a directory it is allowed to read models from (--model-dir).
function linkedDirs(home) {
  const models = join(home, 'models');
  if (!existsSync(models)) return [];
  return readdirSync(models)
    .map((f) => join(models, f))
    .filter((p) => lstatSync(p).isSymbolicLink())
    .map((p) => dirname(resolve(models, readlinkSync(p))));
}

// `precharge serve` on 127.0.0.1, an ephemeral port, with home as PRECHARGE_HOME.
export async function start(home, env = {}) {
  const dirs = [...new Set(linkedDirs(home))].join(':');
  const proc = spawn(bin, ['serve', '--host', '127.0.0.1:0'], {
    env: { ...process.env, PRECHARGE_HOME: home, PRECHARGE_THREADS: '2', PRECHARGE_KEEP_ALIVE: '-1',
           ...(dirs ? { PRECHARGE_MODEL_DIRS: dirs } : {}), ...env },
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

export const post = (url, path, body) =>
  fetch(url + path, { method: 'POST', body: JSON.stringify(body) }).then((r) => r.json());

// Time to the first streamed NDJSON line of path (with body), and the last line (done).
export async function streamed(url, path, body) {
  const t0 = performance.now();
  const res = await fetch(url + path, { method: 'POST', body: JSON.stringify(body) });
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
  return { first, total: performance.now() - t0, last };
}

// Time to the first streamed chunk of model m's answer; the final chunk's counts come back too.
export async function ttft(url, system, question) {
  const { first, last } = await streamed(url, '/api/chat', {
    model: 'm', options: { num_predict: 4, temperature: 0 },
    messages: [...(system ? [{ role: 'system', content: system }] : []), { role: 'user', content: question }],
  });
  return { ms: first, prompt: last.prompt_eval_count, cached: last.prompt_cached_count,
           prefill_ms: last.prompt_eval_duration / 1e6, restored_from: last.restored_from ?? null,
           decode_ms: last.eval_duration / 1e6 / Math.max(1, last.eval_count) };
}

// A form's system context of about 1,000 tokens; seed makes each one new to the cache.
export function context(seed) {
  let s = `You are the assistant of form ${seed}. The form has these fields:`;
  for (let i = 0; i < 66; i++) s += ` field_${i} (text, required, at most ${20 + (i * 7) % 50} characters);`;
  return s;
}
export const question = 'Which of the required fields accept at most forty characters, and which date format do they use?';
