// load.test.mjs - the daemon under load: wrk against GET /api/ps and GET /health (no socket
// errors, only 2xx, still serving afterwards), and rounds of concurrent streamed chats (each
// ends with done:true, nothing fails but a 503, memory flat from round to round). The daemon
// must exit 0 afterwards; in the ASan build stop() fails on LeakSanitizer's report.
// Throughput is not asserted here; bench/bench_http.sh measures it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tempHome, makeModel, startDaemon, post, get, ndjson, cleanup } from './lib.mjs';

const SANITIZED = process.env.PC_TEST_SANITIZE === 'ON';
let home, d;

before(async () => {
  home = tempHome('load');
  makeModel(home, 'tiny');
  d = await startDaemon({ home });
});

after(async () => {
  assert.equal(await d.stop(), 0, 'daemon exits cleanly (and, under ASan, without leaks)');
  cleanup(home);
});

// wrk's summary: requests done, socket errors, and responses outside 2xx/3xx.
function wrk(url) {
  return new Promise((resolve, reject) => {
    execFile('wrk', ['-t2', '-c32', '-d5s', '--timeout', '30s', url], (e, stdout, stderr) => {
      if (e) return reject(new Error(`wrk failed: ${e.message}\n${stderr}`));
      const requests = Number(stdout.match(/(\d+) requests in/)?.[1]);
      const sock = stdout.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
      const errors = sock ? sock.slice(1).reduce((a, n) => a + Number(n), 0) : 0;
      const non2xx = Number(stdout.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
      resolve({ requests, errors, non2xx, text: stdout });
    });
  });
}

for (const path of ['/api/ps', '/health']) {
  test(`wrk -t2 -c32 -d5s GET ${path}: no socket errors, only 2xx, still serving`, async (t) => {
    const r = await wrk(d.url + path);
    t.diagnostic(`${r.requests} requests`);
    assert.ok(r.requests > 0, r.text);
    assert.equal(r.errors, 0, r.text);
    assert.equal(r.non2xx, 0, r.text);
    const after = await get(d.url, path);
    assert.equal(after.status, 200);
    JSON.parse(after.text);
  });
}

const rssBytes = () => {
  const m = readFileSync(`/proc/${d.proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Number(m[1]) * 1024;
};

// N streamed chats at once; each either streams to a final done:true or is refused with a 503
// (the model's queue is full), never anything else.
async function chatRound(n) {
  const one = async (i) => {
    const body = {
      model: 'tiny',
      messages: [{ role: 'user', content: `Tell me about load, number ${i}.` }],
      stream: true,
      options: { num_predict: 8, temperature: 0, seed: i },
    };
    const r = await post(d.url, '/api/chat', body);
    if (r.status === 503) {
      assert.ok(JSON.parse(r.text).error, r.text);
      return 'busy';
    }
    assert.equal(r.status, 200, r.text);
    const lines = ndjson(r.text);
    assert.ok(lines.every((l) => !l.error), r.text);
    assert.equal(lines.at(-1).done, true, r.text);
    assert.ok(lines.slice(0, -1).every((l) => l.done === false));
    return 'done';
  };
  return Promise.all(Array.from({ length: n }, (_, i) => one(i)));
}

test('8 concurrent streamed chats, 3 rounds: all end with done:true, memory stays flat', async (t) => {
  const rss = [];
  for (let round = 0; round < 3; round++) {
    const results = await chatRound(8);
    assert.ok(results.includes('done'), `round ${round}: every chat was refused`);
    rss.push(rssBytes());
    t.diagnostic(`round ${round + 1}: ${results.join(' ')}; RSS ${rss.at(-1)} bytes`);
  }
  // Round 1 warms the model, its contexts and the snapshot tier; the same load again must not
  // grow. ASan's quarantine holds freed memory, so there only LeakSanitizer judges (at exit).
  if (!SANITIZED) {
    const grew = rss[2] - rss[0];
    assert.ok(grew < 32 * 1024 * 1024, `RSS grew ${grew} bytes from round 1 to round 3 (${rss})`);
  }
  assert.equal((await get(d.url, '/health')).status, 200);
});
