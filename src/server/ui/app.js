// app.js - the dashboard: reads the daemon's public API, /metrics and /api/events (through
// fetch, so that the API key can go in a header) and keeps the panels up to date.
'use strict';

const KEY_STORE = 'precharge.apiKey';
const POLL_MS = 2000;
const CHART_WINDOW_MS = 5 * 60 * 1000;
const MAX_EVENTS = 300;
const DONE = new Set(['ready', 'already_warm', 'failed', 'superseded']);

const S = {
  key: sessionStorage.getItem(KEY_STORE) || '',
  locked: false,         // a 401 came: wait for a key before asking again
  events: [],            // newest last
  precharges: new Map(), // correlation id -> {id, model, priority, status, tokens}
  samples: [],           // metrics over time, for the charts
  models: [],
  timer: null,
  refreshing: false,
  again: false,
  feed: null,            // the event stream's AbortController
  version: null,         // /api/version, once read
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c ?? ''));
  return e;
}

function bytes(n) {
  if (!Number.isFinite(n) || n <= 0) return '0 B';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(n < 10 && i > 0 ? 1 : 0)} ${u[i]}`;
}

function ago(iso) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '';
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function until(iso) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '';
  if (t - Date.now() > 10 * 365 * 86400e3) return 'never';
  const s = Math.round((t - Date.now()) / 1000);
  if (s <= 0) return 'now';
  return s < 90 ? `in ${s} s` : `in ${Math.round(s / 60)} min`;
}

const bare = (name) => String(name).replace(/:latest$/, '');

// ---- the API, with the key ----------------------------------------------------------------

class KeyNeeded extends Error {}

async function api(path, { method = 'GET', json, signal } = {}) {
  const headers = {};
  if (S.key) headers.Authorization = `Bearer ${S.key}`;
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  }
  const res = await fetch(path, { method, headers, body, signal, cache: 'no-store' });
  if (res.status === 401) {
    let why = '';
    try { why = (await res.json()).error || ''; } catch { /* not JSON */ }
    askKey(why);
    throw new KeyNeeded(why);
  }
  return res;
}

async function apiJson(path, opts) {
  const res = await api(path, opts);
  let data = null;
  try { data = await res.json(); } catch { /* an empty or text body */ }
  return { status: res.status, ok: res.ok, data };
}

function askKey(why) {
  S.locked = true;
  const msg = S.key
    ? `The daemon refused this API key (${why || 'invalid API key'}). Enter the key it was started with (PRECHARGE_API_KEY).`
    : 'This daemon requires an API key. Enter it to see the dashboard.';
  $('key-message').textContent = msg;
  $('keybox').hidden = false;
  $('conn').textContent = 'API key needed';
  $('conn').className = 'badge bad';
  $('key').focus();
}

function useKey(key) {
  S.key = key;
  if (key) sessionStorage.setItem(KEY_STORE, key);
  else sessionStorage.removeItem(KEY_STORE);
  S.locked = false;
  $('keybox').hidden = true;
  $('forget-key').hidden = !key;
  startFeed();
  refresh();
}

// ---- the event feed ---------------------------------------------------------------------

// An SSE frame's data: {type, stream, at, data: {..., model_id, correlation_id}, metadata}.
function onEvent(name, frame) {
  const data = frame.data || {};
  const at = new Date(frame.at);
  const ev = { name, stream: frame.stream || '', data, at: Number.isFinite(at.getTime()) ? at : new Date() };
  S.events.push(ev);
  if (S.events.length > MAX_EVENTS) S.events.shift();
  if (name === 'PrechargeRequested' && data.correlation_id) {
    S.precharges.set(data.correlation_id, {
      id: data.correlation_id, model: data.model_id, priority: data.priority,
      status: 'queued', tokens: '',
    });
  } else if (name === 'PrechargeCompleted' && data.correlation_id) {
    const p = S.precharges.get(data.correlation_id) || { id: data.correlation_id, model: data.model_id, priority: '' };
    p.status = data.status || 'ready';
    p.tokens = data.context_tokens ?? '';
    S.precharges.set(p.id, p);
  }
  drawEvents();
  soon();
}

function parseFrames(buf) {
  let i;
  while ((i = buf.indexOf('\n\n')) >= 0) {
    const frame = buf.slice(0, i);
    buf = buf.slice(i + 2);
    const ev = frame.match(/^event: (.*)$/m);
    const data = frame.match(/^data: (.*)$/m);
    if (ev && data) {
      try { onEvent(ev[1], JSON.parse(data[1])); } catch { /* a frame we cannot read */ }
    }
  }
  return buf;
}

async function readFeed(ctl) {
  const res = await api('/api/events', { signal: ctl.signal });
  if (!res.ok || !res.body) throw new Error(`event stream: HTTP ${res.status}`);
  $('conn').textContent = 'live';
  $('conn').className = 'badge ok';
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf = parseFrames(buf + dec.decode(value, { stream: true }));
  }
}

function startFeed() {
  if (S.feed) S.feed.abort();
  const ctl = new AbortController();
  S.feed = ctl;
  (async () => {
    while (S.feed === ctl && !S.locked) {
      try {
        await readFeed(ctl);
      } catch (e) {
        if (ctl.signal.aborted || e instanceof KeyNeeded) return;
      }
      if (S.feed !== ctl || S.locked) return;
      $('conn').textContent = 'reconnecting…';
      $('conn').className = 'badge warn';
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
}

function drawEvents() {
  const stream = $('ev-stream').value, model = $('ev-model').value;
  const models = new Set(S.events.map((e) => e.data.model_id).filter(Boolean));
  const sel = $('ev-model');
  for (const m of models) {
    if (![...sel.options].some((o) => o.value === m)) sel.append(el('option', { value: m }, m));
  }
  const items = [];
  for (let i = S.events.length - 1; i >= 0; i--) {
    const e = S.events[i];
    if (stream && e.stream !== stream) continue;
    if (model && e.data.model_id !== model) continue;
    const { type, model_id, correlation_id, ...rest } = e.data;
    void type;
    const detail = JSON.stringify(rest);
    items.push(el('li', { 'data-event': e.name, 'data-model': model_id || '' },
      `${e.at.toLocaleTimeString()} `, el('span', { class: 'ev-stream' }, `[${e.stream}] `),
      el('span', { class: 'ev-name' }, e.name), model_id ? ` ${model_id}` : '',
      correlation_id ? ` ${correlation_id.slice(0, 8)}` : '',
      ` ${detail.length > 300 ? detail.slice(0, 300) + '…' : detail}`));
  }
  $('event-list').replaceChildren(...items);
}

// ---- /metrics -----------------------------------------------------------------------------

// Sum every series of a family (all models), or those whose labels match want.
function parseMetrics(text) {
  const m = new Map();
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const r = line.match(/^([a-zA-Z_:][\w:]*)(\{([^}]*)\})? ([^ ]+)/);
    if (!r) continue;
    const labels = {};
    for (const l of (r[3] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    if (!m.has(r[1])) m.set(r[1], []);
    m.get(r[1]).push({ labels, value: Number(r[4]) });
  }
  return m;
}

function total(m, name, want = {}) {
  let sum = 0;
  for (const s of m.get(name) || []) {
    if (Object.entries(want).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}

function sample(m) {
  const now = Date.now();
  S.samples.push({
    t: now,
    ttftSum: total(m, 'precharge_time_to_first_token_seconds_sum'),
    ttftCount: total(m, 'precharge_time_to_first_token_seconds_count'),
    prefillSum: total(m, 'precharge_prefill_seconds_sum'),
    prefillCount: total(m, 'precharge_prefill_seconds_count'),
    reused: total(m, 'precharge_prompt_tokens_reused_total'),
    prefilled: total(m, 'precharge_prompt_tokens_prefilled_total'),
    active: total(m, 'precharge_decode_active'),
    waiting: total(m, 'precharge_decode_waiting'),
  });
  while (S.samples.length > 2 && S.samples[0].t < now - CHART_WINDOW_MS) S.samples.shift();
}

// Per-interval values from the samples: f(previous, current) for each pair.
function deltas(f) {
  const out = [];
  for (let i = 1; i < S.samples.length; i++) out.push({ t: S.samples[i].t, v: f(S.samples[i - 1], S.samples[i]) });
  return out;
}

function meanMs(sum, count) {
  return (a, b) => {
    const n = b[count] - a[count];
    return n > 0 ? ((b[sum] - a[sum]) / n) * 1000 : null;
  };
}

const SVG = 'http://www.w3.org/2000/svg';

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

// Bars, one per interval between two scrapes, stacked when there are several series; x is
// time over the last CHART_WINDOW_MS, y is scaled to the largest stack. The caption's
// "max" label says what the top is.
function drawBars(svg, series) {
  const t0 = Date.now() - CHART_WINDOW_MS;
  const n = series[0].length;
  let max = 0;
  for (let i = 0; i < n; i++) max = Math.max(max, series.reduce((a, s) => a + (s[i].v || 0), 0));
  const kids = [];
  for (let i = 0; i < n && max > 0; i++) {
    const x1 = ((series[0][i].t - t0) / CHART_WINDOW_MS) * 300;
    const x0 = i > 0 ? ((series[0][i - 1].t - t0) / CHART_WINDOW_MS) * 300 : x1 - 3;
    const w = Math.max(2, x1 - x0 - 0.5);
    let y = 100;
    series.forEach((s, k) => {
      const h = ((s[i].v || 0) / max) * 95;
      if (h <= 0) return;
      y -= h;
      kids.push(svgEl('rect', { class: `s${k}`, x: (x1 - w).toFixed(1), y: y.toFixed(1), width: w.toFixed(1), height: h.toFixed(1) }));
    });
  }
  svg.replaceChildren(...kids);
  return max;
}

// Step lines, one per series, from the samples themselves (gauges).
function drawLines(svg, series) {
  const t0 = Date.now() - CHART_WINDOW_MS;
  let max = 0;
  for (const s of series) for (const p of s) max = Math.max(max, p.v);
  const top = Math.max(1, max);
  const kids = series.map((s, k) => svgEl('polyline', {
    class: `s${k}`,
    points: s.map((p) => `${(((p.t - t0) / CHART_WINDOW_MS) * 300).toFixed(1)},${(98 - (p.v / top) * 93).toFixed(1)}`).join(' '),
  }));
  svg.replaceChildren(...kids);
  return max;
}

function caption(id, max, unit) {
  $(id).textContent = max > 0 ? `top ${max < 10 ? max.toFixed(1) : Math.round(max)} ${unit}` : 'nothing yet';
}

function drawCharts() {
  caption('max-ttft', drawBars($('chart-ttft'), [deltas(meanMs('ttftSum', 'ttftCount'))]), 'ms');
  caption('max-prefill', drawBars($('chart-prefill'), [deltas(meanMs('prefillSum', 'prefillCount'))]), 'ms');
  caption('max-tokens', drawBars($('chart-tokens'), [deltas((a, b) => b.reused - a.reused), deltas((a, b) => b.prefilled - a.prefilled)]), 'tokens');
  caption('max-decode', drawLines($('chart-decode'), [S.samples.map((s) => ({ t: s.t, v: s.active })), S.samples.map((s) => ({ t: s.t, v: s.waiting }))]), 'tasks');
}

// ---- the panels ---------------------------------------------------------------------------

function drawMemory(stats, ps, m) {
  const budget = stats?.memory_budget_bytes || 0;
  const snapRam = total(m, 'precharge_snapshot_bytes', { tier: 'ram' });
  const snapBudget = total(m, 'precharge_snapshot_budget_bytes', { tier: 'ram' });
  const local = ps.filter((x) => (x.provider || 'local') === 'local');
  const used = local.reduce((a, x) => a + (x.size || 0), 0);
  // The RAM tier's snapshots live in the same memory as the models: the bar is the models'
  // budget (or what is held, when there is no byte budget), the snapshots a segment of it.
  const whole = Math.max(1, budget, used + snapRam);
  const free = Math.max(0, whole - used - snapRam);
  const segs = local.map((x) => el('div', {
    class: x.pinned ? 'seg pinned' : 'seg model', title: `${bare(x.name)}: ${bytes(x.size)}${x.pinned ? ' (pinned)' : ''}`,
    'data-model': bare(x.name),
  }, bare(x.name)));
  local.forEach((x, i) => { segs[i].style.width = `${(100 * (x.size || 0)) / whole}%`; });
  const snap = el('div', { class: 'seg snap', title: `RAM snapshots: ${bytes(snapRam)}` }, 'snapshots');
  snap.style.width = `${(100 * snapRam) / whole}%`;
  const freeSeg = el('div', { class: 'seg free', title: `free: ${bytes(free)}` }, 'free');
  freeSeg.style.flex = '1';
  const bar = $('membar');
  bar.replaceChildren(...segs, snap, freeSeg);
  const pressure = !!stats?.pressure;
  bar.classList.toggle('pressure', pressure);
  $('memlegend').replaceChildren(
    el('span', {}, `models ${bytes(used)}`), el('span', {}, `RAM snapshots ${bytes(snapRam)} of ${bytes(snapBudget)}`),
    el('span', {}, budget > 0 ? `free ${bytes(free)}` : 'no byte budget'));
  const t = $('memtext');
  t.textContent = `${budget > 0 ? `budget ${bytes(budget)} for models` : 'no memory budget'}; ` +
    `${stats?.total_loaded ?? 0} loaded (at most ${stats?.max_models ?? '?'}), eviction ${stats?.policy ?? '?'}` +
    (pressure ? ' — memory pressure' : '');
  t.classList.toggle('pressure', pressure);
}

function actionButton(label, action, model, extra) {
  return el('button', { type: 'button', 'data-action': action, 'data-model': model, ...extra }, label);
}

function drawModels() {
  const rows = S.models.map((x) => {
    const st = x.state || '';
    return el('tr', { 'data-model': x.id },
      el('td', {}, x.id),
      el('td', { class: `state state-${st}`, title: x.error || '' },
        st + (x.error && st === 'failed' ? ` (${x.error})` : '') +
        (st === 'loading' && x.since ? ` (${ago(x.since)})` : '')),
      el('td', {}, x.provider || 'local'),
      el('td', { class: 'num' }, x.size ? bytes(x.size) : ''),
      el('td', { class: 'num' }, x.context || ''),
      el('td', { class: 'pinned' }, x.resident ? (x.pinned ? 'yes' : 'no') : ''),
      el('td', { class: 'num' }, x.resident ? String(x.in_use ?? 0) : ''),
      el('td', {}, x.resident ? (x.pinned ? 'never' : until(x.expires_at)) : ''),
      el('td', {},
        x.resident ? actionButton('unload', 'unload', x.id) : actionButton('load', 'load', x.id),
        actionButton(x.pinned ? 'unpin' : 'pin', x.pinned ? 'unpin' : 'pin', x.id),
        actionButton('precharge…', 'precharge', x.id)));
  });
  $('model-rows').replaceChildren(...rows);
}

function drawContexts(list) {
  const order = { live: 0, ram: 1, disk: 2, remote: 3 };
  list.sort((a, b) => (order[a.tier] ?? 9) - (order[b.tier] ?? 9) || String(a.model_id).localeCompare(b.model_id));
  $('context-rows').replaceChildren(...list.map((c) => el('tr', { 'data-model': c.model_id, 'data-tier': c.tier },
    el('td', {}, c.model_id), el('td', {}, c.tier), el('td', { class: 'num' }, c.context_tokens),
    el('td', { class: 'num' }, c.bytes ? bytes(c.bytes) : ''), el('td', {}, ago(c.since)))));
}

function drawQueue(m) {
  $('queue-gauges').textContent =
    `(${total(m, 'precharge_precharge_queued')} queued, ${total(m, 'precharge_precharge_running')} running)`;
  const list = [...S.precharges.values()].slice(-20).reverse();
  $('queue-rows').replaceChildren(...list.map((p) => el('tr', { 'data-precharge': p.id },
    el('td', { title: p.id }, p.id.slice(0, 8)), el('td', {}, p.model), el('td', {}, p.priority || ''),
    el('td', { class: `st-${p.status}` }, p.status), el('td', { class: 'num' }, p.tokens ?? ''))));
}

function drawReadiness(ready, status) {
  const verdict = ready?.data?.status || (ready?.ok ? 'ready' : 'unknown');
  const badge = $('ready');
  badge.textContent = `ready: ${verdict}`;
  badge.className = `badge ${verdict === 'ready' ? 'ok' : verdict === 'failed' ? 'bad' : 'warn'}`;
  const pending = ready?.data?.pending || [], failed = ready?.data?.failed || [];
  $('ready-text').textContent = `/ready: ${ready?.status} ${verdict}` +
    (pending.length ? `; pending: ${pending.join(', ')}` : '') + (failed.length ? `; failed: ${failed.join(', ')}` : '');
  const entries = Object.entries(status || {});
  $('preload-rows').replaceChildren(...(entries.length ? entries.map(([name, s]) => el('tr', { 'data-model': name },
    el('td', {}, name), el('td', { class: `st-${s.status}` }, s.status), el('td', { class: 'num' }, s.attempts),
    el('td', {}, s.preloadedAt ? ago(s.preloadedAt) + ' ago' : ''),
    el('td', {}, s.lastChecked ? ago(s.lastChecked) + ' ago' : ''), el('td', {}, s.error || '')))
    : [el('tr', {}, el('td', { colSpan: 6 }, 'no preloads configured'))]));
}

// ---- refresh ------------------------------------------------------------------------------

async function fetchState() {
  const [tags, ps, stats, pre, status, ready, metrics] = await Promise.all([
    apiJson('/api/tags'), apiJson('/api/ps'), apiJson('/v1/models/stats'), apiJson('/api/precharged'),
    apiJson('/api/models/status'), apiJson('/ready'), api('/metrics').then((r) => r.text()),
  ]);
  const byId = new Map();
  for (const t of tags.data?.models || []) {
    const id = bare(t.name);
    byId.set(id, { id, provider: t.provider || 'local', size: t.size, available: t.available });
  }
  const local = [];
  for (const p of ps.data?.models || []) {
    const id = bare(p.name);
    const x = byId.get(id) || { id };
    Object.assign(x, { provider: p.provider || x.provider || 'local', resident: true, size: p.size || x.size,
      context: p.context_length, pinned: !!p.pinned, in_use: p.in_use, expires_at: p.expires_at });
    byId.set(id, x);
    local.push(p);
  }
  const models = [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
  const states = await Promise.all(models.map((x) => apiJson(`/api/models/${encodeURIComponent(x.id)}/state`)));
  models.forEach((x, i) => {
    x.state = states[i].data?.state;
    x.error = states[i].data?.error;
    x.since = states[i].data?.since;
  });
  for (const p of S.precharges.values()) {
    if (DONE.has(p.status)) continue;
    const r = await apiJson(`/api/precharge/${encodeURIComponent(p.id)}`);
    if (r.ok && r.data?.status) { p.status = r.data.status; p.tokens = r.data.context_tokens ?? p.tokens; }
  }
  return { models, local, stats: stats.data, pre: pre.data?.precharged || [], status: status.data, ready, metrics: parseMetrics(metrics) };
}

async function refresh() {
  if (S.locked) return;
  if (S.refreshing) { S.again = true; return; }
  S.refreshing = true;
  try {
    const st = await fetchState();
    if (!S.version) {
      S.version = (await apiJson('/api/version')).data;
      if (S.version) $('version').textContent = `${S.version.version} · llama.cpp ${S.version.llama_cpp}`;
    }
    S.models = st.models;
    sample(st.metrics);
    drawMemory(st.stats, st.local, st.metrics);
    drawModels();
    drawContexts(st.pre);
    drawQueue(st.metrics);
    drawReadiness(st.ready, st.status);
    drawCharts();
    document.body.dataset.refreshed = String(Date.now());
  } catch (e) {
    if (!(e instanceof KeyNeeded)) {
      $('conn').textContent = 'daemon unreachable';
      $('conn').className = 'badge bad';
    }
  } finally {
    S.refreshing = false;
    if (S.again) { S.again = false; soon(); }
  }
}

let soonTimer = null;
function soon() {
  if (soonTimer) return;
  soonTimer = setTimeout(() => { soonTimer = null; refresh(); }, 150);
}

// ---- actions ------------------------------------------------------------------------------

function say(text, error) {
  const m = $('action-message');
  m.textContent = text;
  m.classList.toggle('error', !!error);
}

async function act(action, model) {
  const enc = encodeURIComponent(model);
  const calls = {
    load: () => apiJson(`/v1/models/${enc}/load`, { method: 'POST', json: {} }),
    unload: () => apiJson(`/v1/models/${enc}`, { method: 'DELETE' }),
    pin: () => apiJson(`/v1/models/${enc}/pin`, { method: 'POST', json: { pinned: true } }),
    unpin: () => apiJson(`/v1/models/${enc}/pin`, { method: 'POST', json: { pinned: false } }),
  };
  if (action === 'precharge') {
    $('pc-model').textContent = model;
    $('precharge-form').dataset.model = model;
    $('precharge-form').hidden = false;
    $('pc-context').focus();
    return;
  }
  say(`${action} ${model}…`);
  try {
    const r = await calls[action]();
    say(r.ok ? `${action} ${model}: ${r.data?.message || 'done'}` : `${action} ${model} failed: ${errorText(r.data)}`, !r.ok);
  } catch (e) {
    if (!(e instanceof KeyNeeded)) say(`${action} ${model} failed: ${e.message}`, true);
  }
  refresh();
}

function errorText(data) {
  const e = data?.error;
  return typeof e === 'string' ? e : e?.message || 'unknown error';
}

async function submitPrecharge(ev) {
  ev.preventDefault();
  const form = $('precharge-form'), model = form.dataset.model, text = $('pc-context').value;
  if (!text.trim()) { say('type or paste a context to precharge first', true); return; }
  const body = { model, context: [{ role: 'system', content: text }], priority: $('pc-priority').value };
  try {
    const r = await apiJson('/api/precharge', { method: 'POST', json: body });
    if (!r.ok) { say(`precharge ${model} failed: ${errorText(r.data)}`, true); return; }
    const id = r.data?.correlation_id;
    if (id && !S.precharges.has(id)) {
      S.precharges.set(id, { id, model, priority: body.priority, status: r.data.status || 'queued', tokens: '' });
    }
    say(`precharge ${model}: ${r.data?.status || 'queued'} (${id || 'no id'})`);
    form.hidden = true;
    $('pc-context').value = '';
  } catch (e) {
    if (!(e instanceof KeyNeeded)) say(`precharge ${model} failed: ${e.message}`, true);
  }
  refresh();
}

function start() {
  $('model-rows').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-action]');
    if (b) act(b.dataset.action, b.dataset.model);
  });
  $('precharge-form').addEventListener('submit', submitPrecharge);
  $('pc-cancel').addEventListener('click', () => { $('precharge-form').hidden = true; });
  $('keyform').addEventListener('submit', (e) => { e.preventDefault(); useKey($('key').value.trim()); });
  $('forget-key').addEventListener('click', () => { useKey(''); });
  $('forget-key').hidden = !S.key;
  $('ev-stream').addEventListener('change', drawEvents);
  $('ev-model').addEventListener('change', drawEvents);
  startFeed();
  refresh();
  S.timer = setInterval(refresh, POLL_MS);
}

start();
