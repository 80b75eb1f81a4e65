// dashboard.test.mjs - the dashboard at /ui/ in a real headless Chromium (Debian's chromium,
// driven by playwright-core) against the real daemon with the tiny model: what the page shows
// matches the API, its actions change the daemon, it updates live, and it asks for an API key.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { tempHome, makeModel, startDaemon, get, post, eventually, cleanup } from './lib.mjs';

const CHROMIUM = process.env.PC_CHROMIUM ?? '/usr/bin/chromium';
// The screenshot goes beside the build's scratch directory (build/artifacts/).
const ARTIFACTS =
  process.env.PC_TEST_ARTIFACTS ?? join(dirname(resolve(process.env.PC_TEST_TMP ?? 'build/tmp')), 'artifacts');

let browser, home, d;

before(async () => {
  // --no-sandbox: the suite may run as root (a fresh machine's make test), where Chromium's
  // sandbox refuses to start.
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  home = tempHome('dashboard');
  makeModel(home, 'tiny');
  makeModel(home, 'tiny2');
  // A small budget, so that the two models' segments of the memory bar are wide enough to see.
  d = await startDaemon({ home, args: ['--memory-budget', '300M'] });
});

after(async () => {
  await browser?.close();
  await d?.stop();
  cleanup(home);
});

// A page on the dashboard that records what the console and the page's own errors say.
async function openPage(url) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`page: ${e.message}`));
  await page.goto(`${url}/ui/`);
  return { page, errors };
}

const stateCell = (page, model) => page.locator(`#model-rows tr[data-model="${model}"] td.state`);

async function apiState(model) {
  return JSON.parse((await get(d.url, `/api/models/${model}/state`)).text).state;
}

async function ps() {
  return JSON.parse((await get(d.url, '/api/ps')).text).models.map((m) => ({ ...m, id: m.name.replace(/:latest$/, '') }));
}

// Wait until the page shows what fn reads from it; the page polls and follows the events.
async function pageShows(page, fn, want) {
  let got;
  const ok = await eventually(async () => (got = await fn(page)) === want);
  assert.ok(ok, `the page shows ${JSON.stringify(got)}, not ${JSON.stringify(want)}`);
}

test('the page loads without console errors and shows each model with its API state', async () => {
  const { page, errors } = await openPage(d.url);
  for (const model of ['tiny', 'tiny2']) {
    await stateCell(page, model).waitFor();
    const want = await apiState(model);
    assert.equal(want, 'pretrained');
    await pageShows(page, (p) => stateCell(p, model).textContent(), want);
  }
  // The page's panels filled from the API: readiness, memory bar, charts.
  await pageShows(page, (p) => p.locator('#ready').textContent(), 'ready: ready');
  assert.ok((await page.locator('#membar .seg.free').count()) === 1);
  await pageShows(page, (p) => p.locator('#conn').textContent(), 'live');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a browser asking for / is sent to /ui/; curl still gets the text; the page is strict', async () => {
  const page = await browser.newPage();
  await page.goto(`${d.url}/`);
  assert.equal(new URL(page.url()).pathname, '/ui/');
  await page.close();
  const plain = await get(d.url, '/');
  assert.equal(plain.status, 200);
  assert.equal(plain.text, 'precharge is running');
  const res = await fetch(`${d.url}/ui/`);
  const csp = res.headers.get('content-security-policy');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
  assert.match(res.headers.get('content-type'), /^text\/html/);
  assert.equal((await fetch(`${d.url}/ui/nosuch.js`)).status, 404);
  // Every asset the page names is served from the binary; nothing from another host.
  const html = await res.text();
  for (const m of html.matchAll(/(?:src|href)="([^"]+)"/g)) {
    if (m[1].startsWith('data:')) continue;
    assert.doesNotMatch(m[1], /^(https?:)?\/\//);
    assert.equal((await fetch(new URL(m[1], `${d.url}/ui/`))).status, 200, m[1]);
  }
});

test('a precharge started from the page ends precharged on the page and in the API, with its events in the feed', async () => {
  const { page, errors } = await openPage(d.url);
  await page.locator('button[data-action="precharge"][data-model="tiny"]').click();
  await page.locator('#pc-context').fill('You are a careful assistant for a dashboard test. Answer briefly.');
  await page.locator('#precharge-form button[type="submit"]').click();
  assert.ok(await eventually(async () => (await apiState('tiny')) === 'precharged'), 'the API says precharged');
  await pageShows(page, (p) => stateCell(p, 'tiny').textContent(), 'precharged');
  const feed = page.locator('#event-list');
  await feed.locator('li[data-event="PrechargeRequested"][data-model="tiny"]').waitFor();
  await feed.locator('li[data-event="PrechargeCompleted"][data-model="tiny"]').waitFor();
  // The queue panel follows the precharge to its end.
  await page.locator('#queue-rows tr td.st-ready').first().waitFor();
  // The context panel lists its snapshot.
  const pre = JSON.parse((await get(d.url, '/api/precharged')).text).precharged;
  assert.ok(pre.some((c) => c.model_id === 'tiny'));
  await page.locator('#context-rows tr[data-model="tiny"]').first().waitFor();
  // The feed filters by stream and by model.
  await page.locator('#ev-stream').selectOption('precharge:responses');
  assert.equal(await feed.locator('li[data-event="PrechargeRequested"]').count(), 0);
  assert.ok((await feed.locator('li[data-event="PrechargeCompleted"]').count()) > 0);
  await page.locator('#ev-stream').selectOption('');
  await page.locator('#ev-model').selectOption('tiny');
  assert.equal(await feed.locator('li:not([data-model="tiny"])').count(), 0);
  assert.deepEqual(errors, []);
  await page.close();
});

test('pin and unload from the page change /api/ps; an unload through the API shows without a reload', async () => {
  const { page, errors } = await openPage(d.url);
  await page.locator('button[data-action="pin"][data-model="tiny2"]').click();
  assert.ok(await eventually(async () => (await ps()).some((m) => m.id === 'tiny2' && m.pinned)), 'pinned in /api/ps');
  await pageShows(page, (p) => p.locator('#model-rows tr[data-model="tiny2"] td.pinned').textContent(), 'yes');
  await page.locator('button[data-action="unpin"][data-model="tiny2"]').click();
  assert.ok(await eventually(async () => (await ps()).some((m) => m.id === 'tiny2' && !m.pinned)), 'unpinned in /api/ps');
  await page.locator('button[data-action="unload"][data-model="tiny2"]').click();
  assert.ok(await eventually(async () => !(await ps()).some((m) => m.id === 'tiny2')), 'gone from /api/ps');
  await pageShows(page, (p) => stateCell(p, 'tiny2').textContent(), 'pretrained');

  // Loaded and unloaded through the API: the same page follows.
  assert.equal((await post(d.url, '/v1/models/tiny2/load', {})).status, 200);
  await page.locator('button[data-action="unload"][data-model="tiny2"]').waitFor();
  const del = await fetch(`${d.url}/v1/models/tiny2`, { method: 'DELETE' });
  assert.equal(del.status, 200);
  await page.locator('button[data-action="load"][data-model="tiny2"]').waitFor();
  await pageShows(page, (p) => stateCell(p, 'tiny2').textContent(), await apiState('tiny2'));
  await page.locator('#event-list li[data-event="ModelEvicted"][data-model="tiny2"]').first().waitFor();
  assert.deepEqual(errors, []);
  await page.close();
});

test('a screenshot with two models and a precharge', async () => {
  const { page, errors } = await openPage(d.url);
  await pageShows(page, (p) => p.locator('#conn').textContent(), 'live');
  assert.equal((await post(d.url, '/v1/models/tiny2/load', {})).status, 200);
  const system = 'A second context, for the screenshot.';
  const r = await post(d.url, '/api/precharge', {
    model: 'tiny2', context: [{ role: 'system', content: system }], priority: 'high', wait: true,
  });
  assert.equal(r.status, 200, r.text);
  // Two requests that reuse it, so that the charts have something to draw.
  for (const q of ['first question', 'second question']) {
    const g = await post(d.url, '/api/chat', {
      model: 'tiny2', stream: false, options: { num_predict: 2 },
      messages: [{ role: 'system', content: system }, { role: 'user', content: q }],
    });
    assert.equal(g.status, 200, g.text);
  }
  // The charts draw them: a TTFT bar, and reused and prefilled tokens stacked.
  await page.locator('#chart-ttft rect').first().waitFor();
  await page.locator('#chart-tokens rect.s0').first().waitFor();
  await page.locator('#chart-tokens rect.s1').first().waitFor();
  assert.match(await page.locator('#max-ttft').textContent(), /^top [0-9.]+ ms$/);
  await pageShows(page, (p) => stateCell(p, 'tiny').textContent(), await apiState('tiny'));
  await pageShows(page, (p) => stateCell(p, 'tiny2').textContent(), 'precharged');
  await page.locator('#membar .seg[data-model="tiny"]').waitFor();
  await page.locator('#membar .seg[data-model="tiny2"]').waitFor();
  await page.locator('#context-rows tr[data-model="tiny2"]').first().waitFor();
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, 'dashboard.png');
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
  assert.deepEqual(errors, []);
  await page.close();
});

test('with an API key the page asks for it, says so clearly for a wrong one, and works with the right one', async () => {
  const h = tempHome('dashboard-key');
  makeModel(h, 'tiny');
  const k = await startDaemon({ home: h, env: { PRECHARGE_API_KEY: 'dash-key-1' } });
  try {
    // The API itself is closed without the key; the page is not (it holds no data).
    assert.equal((await get(k.url, '/api/ps')).status, 401);
    assert.equal((await get(k.url, '/ui/')).status, 200);
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${k.url}/ui/`);
    await page.locator('#keybox').waitFor();
    assert.match(await page.locator('#key-message').textContent(), /requires an API key/);
    assert.equal(await page.locator('#model-rows tr').count(), 0);

    await page.locator('#key').fill('not-the-key');
    await page.locator('#keyform button[type="submit"]').click();
    await pageShows(page, (p) => p.locator('#key-message').textContent().then((t) => /refused this API key \(invalid API key\)/.test(t)), true);
    assert.ok(await page.locator('#keybox').isVisible());
    assert.equal(await page.locator('#model-rows tr').count(), 0);

    await page.locator('#key').fill('dash-key-1');
    await page.locator('#keyform button[type="submit"]').click();
    await stateCell(page, 'tiny').waitFor();
    assert.ok(!(await page.locator('#keybox').isVisible()));
    await pageShows(page, (p) => stateCell(p, 'tiny').textContent(), 'pretrained');
    await pageShows(page, (p) => p.locator('#conn').textContent(), 'live');
    // An action with the key: pin from the page.
    await page.locator('button[data-action="pin"][data-model="tiny"]').click();
    assert.ok(await eventually(async () => {
      const r = await fetch(`${k.url}/api/ps`, { headers: { Authorization: 'Bearer dash-key-1' } });
      return (await r.json()).models.some((m) => m.name.startsWith('tiny') && m.pinned);
    }));
    // The key is kept for the tab: a reload does not ask again.
    await page.reload();
    await stateCell(page, 'tiny').waitFor();
    assert.ok(!(await page.locator('#keybox').isVisible()));
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await k.stop();
    cleanup(h);
  }
});

test('the readiness panel shows each preload as /api/models/status and /ready give it', async () => {
  const h = tempHome('dashboard-preload');
  makeModel(h, 'tiny');
  const p = await startDaemon({ home: h, args: ['--preload', 'tiny'] });
  try {
    assert.ok(await eventually(async () => (await get(p.url, '/ready')).status === 200), '/ready');
    const status = JSON.parse((await get(p.url, '/api/models/status')).text).tiny;
    assert.equal(status.status, 'ready');
    const { page, errors } = await openPage(p.url);
    const row = page.locator('#preload-rows tr[data-model="tiny"]');
    await row.waitFor();
    await pageShows(page, () => row.locator('td').nth(1).textContent(), status.status);
    assert.equal(await row.locator('td').nth(2).textContent(), String(status.attempts));
    await pageShows(page, (pg) => pg.locator('#ready').textContent(), 'ready: ready');
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await p.stop();
    cleanup(h);
  }
});
