// lib.mjs - start the real daemon on an ephemeral loopback port with a temporary home, and
// make models for it with mkmodel.
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join, resolve } from 'node:path';

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
  // 'close' comes once stderr is read to its end, and so after any sanitizer report.
  const closed = new Promise((r) => proc.on('close', (code, sig) => r(code ?? sig)));
  return {
    url,
    proc,
    log: () => log,
    // SIGTERM, and the exit code. In the ASan build the daemon reports leaks (LeakSanitizer, at
    // exit) and memory errors on stderr: any such report fails the test that stops it.
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const code = await closed;
      const at = log.search(/ERROR: (LeakSanitizer|AddressSanitizer)|runtime error:/);
      if (at >= 0) throw new Error(`the daemon's sanitizer report:\n${log.slice(at)}`);
      return code;
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

// Move the complete frames of an /api/events SSE text off buf into events, as
// {event, ...data}; returns what is left of buf (a frame not yet complete).
export function sseEvents(buf, events) {
  let i;
  while ((i = buf.indexOf('\n\n')) >= 0) {
    const frame = buf.slice(0, i);
    buf = buf.slice(i + 2);
    const ev = frame.match(/^event: (.*)$/m);
    const data = frame.match(/^data: (.*)$/m);
    if (ev && data) events.push({ event: ev[1], ...JSON.parse(data[1]) });
  }
  return buf;
}

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

// --- the store's tests: a real nginx serving models, a catalog, and hashes -------------------

// DELETE with a JSON body, as Ollama's /api/delete takes it.
export async function del(url, path, body) {
  const res = await fetch(url + path, {
    method: 'DELETE',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type'), text };
}

export function sha256File(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

// A user catalog at <home>/catalog.json: entries get the fields the catalog requires.
export function writeCatalog(home, entries) {
  const models = entries.map((e) => ({
    name: e.id,
    family: 'llama',
    parameters: '4M',
    quantization: 'Q8_0',
    context_window: 2048,
    file_size_mb: 5,
    ram_required_mb: 100,
    recommended: false,
    description: 'a test model',
    tags: ['test'],
    ...e,
  }));
  writeFileSync(join(home, 'catalog.json'), JSON.stringify({ models }, null, 2));
}

const NGINX = process.env.PC_NGINX ?? '/usr/sbin/nginx';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function connectable(port) {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.on('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });
}

// Start a server with spawnAt(port) on port, or on a free loopback port when port is 0 (a
// port taken meanwhile by another process: try another), and resolve to {proc, port} once it
// accepts connections. A fixed port (a restart) is retried while the old one lets it go.
async function listenOn(port, what, log, spawnAt) {
  const fixed = port !== 0;
  for (let tries = 0; tries < 10; tries++) {
    const at = fixed ? port : await freePort();
    const p = spawnAt(at);
    let exited = false;
    p.on('exit', () => (exited = true));
    for (let i = 0; i < 500 && !exited; i++) {
      if (await connectable(at)) return { proc: p, port: at };
      await new Promise((r) => setTimeout(r, 10));
    }
    p.kill('SIGKILL');
    if (fixed) await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} would not start; see ${log}`);
}

// A real nginx (the Debian package) on an ephemeral loopback port, with its own prefix,
// config, logs and www/ under dir. Locations: / (fast), /slow/ (the first MiB fast, then
// 256 KiB/s unless the request is a resume with a Range), /medium/ (4 MiB/s), /crawl/ (like
// /slow/, resumes too), /fail/ (500).
// The access log has "METHOD URI?QUERY STATUS RANGE BYTES" per request, written once the
// response is out: a client may have all of a response a moment before its line is there.
export async function startNginx(where) {
  const dir = resolve(where); // nginx takes relative paths from its prefix
  const www = join(dir, 'www');
  mkdirSync(www, { recursive: true });
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  chmodSync(dir, 0o755); // the worker may run as another user when the tests run as root
  let port = 0;
  let proc = null;
  const conf = () => `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 64; }
http {
  log_format t '$request_method $request_uri $status $http_range $body_bytes_sent';
  access_log ${dir}/access.log t;
  client_body_temp_path ${dir}/tmp/body; proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fcgi; uwsgi_temp_path ${dir}/tmp/uwsgi; scgi_temp_path ${dir}/tmp/scgi;
  sendfile on;
  map $http_range $slow_rate { "" 256k; default 0; }
  server {
    listen 127.0.0.1:${port};
    root ${www};
    location /slow/ { alias ${www}/; limit_rate_after 1m; limit_rate $slow_rate; }
    location /medium/ { alias ${www}/; limit_rate 4m; }
    location /crawl/ { alias ${www}/; limit_rate_after 1m; limit_rate 256k; }
    location /fail/ { return 500; }
    # As the Hugging Face Hub: the file's sha256 in X-Linked-Etag (quoted), from the path; slow
    # enough for progress lines while bytes arrive.
    location ~ "^/hub/([0-9a-f]{64})/(.*)$" { alias ${www}/$2; limit_rate 4m; add_header X-Linked-Etag "\\"$1\\"" always; }
  }
}
`;
  async function launch() {
    ({ proc, port } = await listenOn(port, 'nginx', join(dir, 'error.log'), (at) => {
      port = at;
      writeFileSync(join(dir, 'nginx.conf'), conf());
      return spawn(
        NGINX,
        ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'],
        { stdio: 'ignore' },
      );
    }));
  }
  await launch();
  const n = {
    dir,
    www,
    get port() {
      return port;
    },
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    // Stop; start() brings it back on the same port.
    async stop() {
      if (proc === null) return;
      const p = proc;
      proc = null;
      const done = new Promise((r) => p.on('exit', r));
      p.kill('SIGTERM');
      await done;
    },
    start: launch,
    // The worker process: SIGKILL cuts its connections (the master starts another).
    worker() {
      const text = readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8');
      return Number(text.trim().split(/\s+/)[0]);
    },
    log() {
      try {
        return readFileSync(join(dir, 'access.log'), 'utf8').split('\n').filter((l) => l);
      } catch {
        return [];
      }
    },
  };
  return n;
}

// --- the fleet's tests: a real redis-server, and the npm client an application would use ------

const REDIS_SERVER = process.env.PC_REDIS_SERVER ?? 'redis-server';

// A real redis-server (the Debian package) on a free loopback port, working in dir (its log is
// dir/redis.log), without persistence unless persist: then stop() and start() keep the data
// (an RDB file written at shutdown, read at start), as a restarted production Redis would.
// stop() is a clean shutdown (SIGTERM), kill() a SIGKILL; start() brings it back on the same
// port. client() is a connected client of the `redis` npm package; the caller closes it
// (client.quit()).
export async function startRedis(where, { persist = false } = {}) {
  const dir = resolve(where);
  mkdirSync(dir, { recursive: true });
  let port = 0;
  let proc = null;
  async function launch() {
    ({ proc, port } = await listenOn(port, 'redis-server', join(dir, 'redis.log'), (at) =>
      spawn(REDIS_SERVER, ['--port', String(at), '--bind', '127.0.0.1', '--dir', dir,
        '--logfile', join(dir, 'redis.log'), '--appendonly', 'no',
        '--save', persist ? '3600 1' : ''], { stdio: 'ignore' })));
  }
  async function end(signal) {
    if (proc === null) return;
    const p = proc;
    proc = null;
    const done = new Promise((r) => p.on('exit', r));
    p.kill(signal);
    await done;
  }
  await launch();
  return {
    dir,
    get port() {
      return port;
    },
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
    start: launch,
    async client() {
      const { createClient } = await import('redis');
      const c = createClient({ url: `redis://127.0.0.1:${port}` });
      c.on('error', () => {}); // a stopped server is part of the tests; they read the failures
      await c.connect();
      return c;
    },
  };
}
