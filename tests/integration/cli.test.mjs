// cli.test.mjs - the precharge command: run (one prompt, chat on stdin, bad models),
// ps and stop against a live daemon, and usage errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { BIN, tempHome, makeModel, startDaemon, post, eventually, cleanup } from './lib.mjs';

let home, modelPath;

before(() => {
  home = tempHome('cli');
  modelPath = makeModel(home, 'tiny');
});
after(() => cleanup(home));

const run = (args, { input, env = {} } = {}) =>
  spawnSync(BIN, args, {
    input,
    encoding: 'utf8',
    env: { ...process.env, PRECHARGE_HOME: home, PRECHARGE_THREADS: '1', ...env },
    timeout: 120000,
  });

test('run answers a prompt from a path or a store name', () => {
  const byPath = run(['run', '-n', '5', '--temperature', '0', modelPath, 'Hello', 'there']);
  assert.equal(byPath.status, 0, byPath.stderr);
  assert.ok(byPath.stdout.trim().length > 0);
  const byName = run(['run', '-n', '5', '--temperature', '0', 'tiny', 'Hello', 'there']);
  assert.equal(byName.status, 0, byName.stderr);
  assert.equal(byName.stdout, byPath.stdout, 'greedy output is the same either way');
});

test('run with no prompt chats line by line on stdin', () => {
  const r = run(['run', '-n', '3', '--temperature', '0', '--verbose', 'tiny'], {
    input: 'first question\nsecond question\n/bye\nnever read\n',
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.split('\n').filter((l) => l.length).length >= 2, true);
  // The second turn reuses the KV cache of the first.
  const cached = [...r.stderr.matchAll(/\((\d+) cached\)/g)].map((m) => Number(m[1]));
  assert.equal(cached.length, 2);
  assert.equal(cached[0], 0);
  assert.ok(cached[1] > 0);
});

test('run reports bad models and bad flags with a non-zero exit', () => {
  let r = run(['run', 'no-such-model', 'hi']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /model "no-such-model" not found/);

  writeFileSync(`${home}/junk.gguf`, 'not a model at all');
  r = run(['run', `${home}/junk.gguf`, 'hi']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /junk.gguf" is not a GGUF file/);

  r = run(['run', '-n', 'many', 'tiny', 'hi']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /"many" is not a number/);

  r = run(['run']);
  assert.equal(r.status, 2);
  r = run(['frobnicate']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command "frobnicate"/);
  r = run(['serve', '--host', 'localhost:99999']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /invalid listen address/);
  r = run(['serve'], { env: { PRECHARGE_KEEP_ALIVE: 'later' } });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /PRECHARGE_KEEP_ALIVE/);
});

test('ps and stop talk to the daemon', async () => {
  const d = await startDaemon({ home });
  try {
    const host = d.url.replace('http://', '');
    const env = { PRECHARGE_HOST: host };
    await post(d.url, '/api/generate', { model: 'tiny' });
    let r = run(['ps'], { env });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^NAME\s+SIZE\s+PROCESSOR\s+CONTEXT\s+PINNED\s+IN USE\s+UNTIL/);
    assert.match(r.stdout, /tiny:latest\s+\d+ MB\s+100% CPU\s+\d+\s+no\s+0\s+\d+ minutes from now/);

    r = run(['stop', 'tiny'], { env });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(await eventually(() => !run(['ps'], { env }).stdout.includes('tiny:latest')));

    r = run(['stop', '../x'], { env });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /invalid model name/);
  } finally {
    await d.stop();
  }
  const r = run(['ps'], { env: { PRECHARGE_HOST: '127.0.0.1:1' } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /cannot reach the daemon/);
});
