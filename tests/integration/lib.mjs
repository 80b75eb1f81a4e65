// lib.mjs - start the real daemon on an ephemeral loopback port with a temporary home, and
// make models for it with mkmodel.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export const BIN = process.env.PC_BIN ?? 'build/bin/precharge';
export const MKMODEL = process.env.PC_MKMODEL ?? 'build/bin/mkmodel';
const TMP = process.env.PC_TEST_TMP ?? '/tmp';

export function tempHome(name) {
  mkdirSync(TMP, { recursive: true });
  const home = mkdtempSync(join(TMP, `${name}-`));
  mkdirSync(join(home, 'models'), { recursive: true });
  return home;
}

export function makeModel(home, name, preset = 'tiny') {
  const path = join(home, 'models', `${name}.gguf`);
  execFileSync(MKMODEL, ['--preset', preset, '-q', '-o', path]);
  return path;
}

// Start `precharge serve` and resolve once it says where it listens.
export async function startDaemon({ home, args = [], env = {} } = {}) {
  const proc = spawn(BIN, ['serve', '--host', '127.0.0.1:0', ...args], {
    env: { ...process.env, PRECHARGE_HOME: home, PRECHARGE_THREADS: '1', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start:\n${log}`)), 30000);
    proc.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/listening on (http:\/\/[^ ]+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on('exit', (code) => reject(new Error(`daemon exited with ${code}:\n${log}`)));
  });
  return {
    url,
    proc,
    log: () => log,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      const done = new Promise((r) => proc.on('exit', (code, sig) => r(code ?? sig)));
      proc.kill('SIGTERM');
      return done;
    },
  };
}

export async function post(url, path, body) {
  const res = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type'), text };
}

export async function get(url, path) {
  const res = await fetch(url + path);
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type'), text };
}

export const ndjson = (text) => text.trim().split('\n').map((l) => JSON.parse(l));

// Wait for a condition the daemon reaches by itself; bounded, and never a timing assertion.
export async function eventually(fn, { tries = 300, every = 100 } = {}) {
  for (let i = 0; i < tries; i++) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, every));
  }
  return false;
}

export function cleanup(home) {
  rmSync(home, { recursive: true, force: true });
}
