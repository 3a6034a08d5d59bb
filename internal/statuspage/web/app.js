// mqtt-rules status page. One EventSource (/api/live) feeds everything:
// "rules" (the rule set), "full"/"tick" (status and per-rule counters, tick
// carrying only the rows that changed), "rates" (chart series) and, in a
// rule's detail view, "rule" (its definition, keys and trace). Rows are
// built once per rule set and updated in place. When the rules event says
// "control", rows and the detail view have enable/disable and acknowledge
// buttons, which POST to /api/rules/NAME/ACTION with the X-Requested-By
// header the API wants of a page signed in by its cookie; the change then
// shows with the next tick. No framework, no build step.
(() => {
  'use strict';

  const el = (id) => document.getElementById(id);
  const make = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const nf = new Intl.NumberFormat();
  const fmtInt = (n) => nf.format(n);
  const fmtRate = (r) => (r === 0 ? '0' : r < 10 ? r.toFixed(1) : nf.format(Math.round(r)));

  // Column indexes of a row, as the "rules" event names them.
  const C = { fires: 0, errors: 1, last_fired: 2, pending: 3, firing: 4, cooldown: 5, watching: 6, next_deadline: 7, keys: 8, enabled: 9, by_control: 10 };

  const S = {
    gen: '',
    rules: [],
    rows: [], // per rule: {r, tr, cells…, vals, hay}
    overviewKeys: 100,
    control: false, // the page may enable, disable and acknowledge
    status: null,
    history: [], // recent [serverNow, received, fires, errors] for the "now" rates
    offset: 0, // server clock minus ours, ms
    rates: null,
    view: 'overview',
    rule: '',
    detail: null, // {def, seen:Set}
    es: null,
    live: 'connecting',
    lastEvent: 0,
    retryDelay: 1000,
    retryAt: 0,
    retryTimer: 0,
    filter: '',
    sort: 'file',
    sortedAt: 0,
  };
  // Measurements, read by the browser test and by anyone curious.
  const perf = (window.__statusPerf = {
    rulesRenderMs: 0, // building the table for a rule set
    firstFullAt: 0, // ms after navigation start when the first snapshot was on screen
    frames: 0,
    totalFrameMs: 0, // applying snapshots and ticks to the table
    lastFrameMs: 0,
    maxFrameMs: 0,
    bytes: 0, // event data received
    lastBytes: 0,
    filterMs: 0, // the last search-box filtering
    longTasks: 0, // main-thread tasks over 50 ms
    longestTaskMs: 0,
  });
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        perf.longTasks++;
        perf.longestTaskMs = Math.max(perf.longestTaskMs, e.duration);
      }
    }).observe({ type: 'longtask', buffered: true });
  } catch (_) {
    // no long task timing in this browser
  }

  const serverNow = () => Date.now() + S.offset;

  // ---- time ----
  function rel(ms) {
    if (!ms) return 'never';
    let d = Math.round((serverNow() - ms) / 1000);
    const future = d < 0;
    d = Math.abs(d);
    let s;
    if (d < 1) return future ? 'now' : 'just now';
    if (d < 60) s = d + ' s';
    else if (d < 600) s = Math.floor(d / 60) + ' min ' + (d % 60) + ' s';
    else if (d < 3600) s = Math.floor(d / 60) + ' min';
    else if (d < 86400) s = Math.floor(d / 3600) + ' h ' + Math.floor((d % 3600) / 60) + ' min';
    else s = Math.floor(d / 86400) + ' d ' + Math.floor((d % 86400) / 3600) + ' h';
    return future ? 'in ' + s : s + ' ago';
  }
  // Formatters are made once: making one per call costs ~0.1 ms, which a
  // table of 1,000 rules updating every second cannot afford.
  const dtf = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  const tf = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });
  const abs = (ms) => dtf.format(ms);
  // setTime makes a <time> show ms relative, the absolute time on hover
  // (its title is set when the pointer comes, see the mouseover listener);
  // 0 reads "never".
  function setTime(t, ms, never) {
    t.dataset.ms = ms || 0;
    t.removeAttribute('title');
    if (ms) {
      t.dateTime = new Date(ms).toISOString();
      t.textContent = rel(ms);
    } else {
      t.removeAttribute('datetime');
      t.textContent = never || 'never';
    }
  }
  function timeEl(ms, never) {
    const t = make('time');
    setTime(t, ms, never);
    return t;
  }
  const parseTime = (s) => (s ? Date.parse(s) || 0 : 0);
  function refreshTimes() {
    if (S.view === 'overview') {
      for (const row of S.rows) if (row.visible && !row.dirty) refreshRow(row);
    } else {
      for (const t of el('detail').querySelectorAll('time[data-ms]')) {
        const ms = +t.dataset.ms;
        if (!ms) continue;
        const s = rel(ms);
        if (t.textContent !== s) t.textContent = s;
      }
    }
    const lr = S.status && S.status.last_reload;
    if (lr && lr.at) renderReload(lr);
  }

  // ---- connection ----
  function setLive(state, extra) {
    S.live = state;
    const pill = el('pill-live');
    const text = {
      live: 'Live',
      connecting: 'Connecting…',
      reconnecting: 'Reconnecting…',
      stalled: 'No update for a while…',
      offline: 'Offline',
      busy: 'Server busy',
      unauthorized: 'Not signed in: reload the page',
    }[state];
    pill.dataset.tone = state === 'live' ? 'ok' : state === 'unauthorized' || state === 'offline' ? 'err' : 'warn';
    el('live-state').textContent = text + (extra || '');
    pill.title = state === 'live' ? 'Receiving live updates' : 'The page is not receiving updates';
  }

  function connect() {
    if (S.es) S.es.close();
    clearTimeout(S.retryTimer);
    const q = new URLSearchParams();
    if (S.gen) q.set('gen', S.gen);
    if (S.view === 'rule') q.set('rule', S.rule);
    const qs = q.toString();
    const es = new EventSource('/api/live' + (qs ? '?' + qs : ''));
    S.es = es;
    if (S.live !== 'live') setLive('connecting');
    es.onopen = () => {
      S.retryDelay = 1000;
    };
    es.onerror = () => {
      if (es !== S.es) return;
      if (es.readyState === EventSource.CLOSED) {
        es.close();
        probe();
      } else {
        setLive('reconnecting');
      }
    };
    const on = (name, fn) =>
      es.addEventListener(name, (e) => {
        if (es !== S.es) return;
        S.lastEvent = Date.now();
        perf.bytes += e.data.length;
        perf.lastBytes = e.data.length;
        if (S.live !== 'live') setLive('live');
        fn(JSON.parse(e.data));
      });
    on('rules', onRules);
    on('full', onFull);
    on('tick', onTick);
    on('rates', onRates);
    on('rule', onRule);
  }

  // probe finds out why the stream was refused, then retries with backoff.
  async function probe() {
    let state = 'offline';
    try {
      const r = await fetch('/api/status', { cache: 'no-store', credentials: 'same-origin' });
      if (r.status === 401) state = 'unauthorized';
      else if (r.ok) state = 'busy';
    } catch (_) {
      state = 'offline';
    }
    if (state === 'unauthorized') {
      setLive(state);
      return; // the cookie is gone: only signing in again helps
    }
    const delay = S.retryDelay;
    S.retryDelay = Math.min(S.retryDelay * 2, 30000);
    S.retryAt = Date.now() + delay;
    setLive(state, ' – retrying in ' + Math.ceil(delay / 1000) + ' s');
    S.retryTimer = setTimeout(connect, delay);
  }

  // ---- rules table ----
  function onRules(d) {
    const t0 = performance.now();
    S.gen = d.gen;
    S.rules = d.rules;
    S.overviewKeys = d.overview_keys || 100;
    S.control = !!d.control;
    el('mode').textContent = S.control ? 'Control on' : 'Read-only';
    (d.columns || []).forEach((c, i) => (C[c] = i));
    const body = el('rules-body');
    const frag = document.createDocumentFragment();
    S.rows = d.rules.map((r, i) => {
      const tr = make('tr');
      tr.dataset.rule = r.name;
      if (!r.enabled) tr.classList.add('disabled');
      const name = make('td', 'name');
      name.dataset.label = 'Rule';
      const a = make('a', '', r.name);
      a.href = '#/rule/' + encodeURIComponent(r.name);
      name.append(a);
      if (r.description) name.append(make('div', 'desc', r.description));
      const topics = make('td', 'topics');
      topics.dataset.label = 'Topics';
      for (const f of r.filters) topics.append(make('code', '', f), ' ');
      const st = make('td', 'state');
      st.dataset.label = 'State';
      const fires = make('td', 'num fires', '0');
      fires.dataset.label = 'Fires';
      const errors = make('td', 'num errors', '0');
      errors.dataset.label = 'Errors';
      const last = make('td', 'last');
      last.dataset.label = 'Last fired';
      const lt = timeEl(0);
      last.append(lt);
      tr.append(name, topics, st, fires, errors, last);
      frag.append(tr);
      const row = {
        r, i, tr, st, fires, errors, lt,
        vals: null, // the latest numbers
        shown: null, // the numbers on screen
        visible: false, // on screen or near it
        dirty: false, // vals not painted yet
        fired: false,
        hay: (r.name + ' ' + r.filters.join(' ') + ' ' + (r.description || '')).toLowerCase(),
      };
      return row; // its state cell is drawn with its first numbers, when on screen
    });
    body.replaceChildren(frag);
    applyFilter();
    if (S.sort !== 'file') applySort(true);
    watchRows();
    perf.rulesRenderMs = performance.now() - t0;
    if (S.view === 'rule') detailCounters();
  }

  function onFull(d) {
    const t0 = performance.now();
    if (!status(d)) return;
    const rows = d.rows || [];
    for (let i = 0; i < rows.length && i < S.rows.length; i++) applyRow(S.rows[i], rows[i], false);
    afterRows(t0);
  }

  function onTick(d) {
    const t0 = performance.now();
    if (!status(d)) return;
    const changed = d.changed || [];
    // When many rows change at once, highlighting them is only noise.
    const live = changed.length <= 30;
    for (const c of changed) {
      const row = S.rows[c[0]];
      if (row) applyRow(row, c.slice(1), live);
    }
    afterRows(t0);
  }

  function afterRows(t0) {
    if (S.sort !== 'file' && S.sort !== 'name' && Date.now() - S.sortedAt > 5000) applySort(false);
    const ms = performance.now() - t0;
    if (!perf.firstFullAt) perf.firstFullAt = performance.now();
    perf.frames++;
    perf.totalFrameMs += ms;
    perf.lastFrameMs = ms;
    perf.maxFrameMs = Math.max(perf.maxFrameMs, ms);
  }

  // applyRow takes a row's new numbers. Only rows on screen (or near it)
  // are painted; the others are marked and painted when they scroll into
  // view, so a tick costs the same with 1,000 rules as with 20.
  function applyRow(row, v, live) {
    const old = row.vals;
    row.vals = v;
    row.fired = live && row.visible && old && v[C.fires] > old[C.fires];
    if (row.visible) paintRow(row);
    else row.dirty = true;
    if (S.view === 'rule' && row.r.name === S.rule) detailCounters();
  }

  function paintRow(row) {
    const v = row.vals;
    const old = row.shown;
    row.dirty = false;
    if (!v) return;
    row.shown = v;
    if (!old || old[C.fires] !== v[C.fires]) row.fires.textContent = fmtInt(v[C.fires]);
    if (!old || old[C.errors] !== v[C.errors]) {
      row.errors.textContent = fmtInt(v[C.errors]);
      row.errors.classList.toggle('has', v[C.errors] > 0);
    }
    if (!old || old[C.last_fired] !== v[C.last_fired]) setTime(row.lt, v[C.last_fired]);
    if (!old || [C.pending, C.firing, C.cooldown, C.watching, C.next_deadline, C.keys, C.enabled, C.by_control].some((k) => old[k] !== v[k])) renderState(row);
    else refreshRow(row);
    if (row.fired) flash(row.tr);
    row.fired = false;
  }

  // refreshRow brings a painted row's relative times up to date.
  function refreshRow(row) {
    for (const t of row.tr.querySelectorAll('time[data-ms]')) {
      const ms = +t.dataset.ms;
      if (!ms) continue;
      const s = rel(ms);
      if (t.textContent !== s) t.textContent = s;
    }
  }

  let observer = null;
  function watchRows() {
    if (observer) observer.disconnect();
    const byTr = new Map(S.rows.map((row) => [row.tr, row]));
    observer = new IntersectionObserver(
      (entries) => {
        for (const e of entries) {
          const row = byTr.get(e.target);
          if (!row) continue;
          row.visible = e.isIntersecting;
          if (row.visible && row.dirty) paintRow(row);
          else if (row.visible) refreshRow(row);
        }
      },
      { rootMargin: '400px 0px' },
    );
    for (const row of S.rows) observer.observe(row.tr);
  }

  // flash highlights a row that just fired. A row already flashing is left
  // alone: restarting its animation would force a layout per row.
  function flash(tr) {
    if (tr.classList.contains('flash')) return;
    tr.classList.add('flash');
    tr.addEventListener('animationend', () => tr.classList.remove('flash'), { once: true });
  }

  // goDur turns Go's "1h30m0s" into "1 h 30 min".
  function goDur(s) {
    if (!s) return '';
    const names = { h: 'h', m: 'min', s: 's', ms: 'ms', 'µs': 'µs', us: 'µs', ns: 'ns' };
    const parts = [];
    for (const [, n, u] of s.matchAll(/([\d.]+)(h|ms|µs|us|ns|m|s)/g)) if (+n) parts.push(n + ' ' + names[u]);
    return parts.join(' ') || '0 s';
  }

  function settings(r) {
    const s = [];
    if (r.for) s.push('for ' + goDur(r.for));
    if (r.cooldown) s.push('cooldown ' + goDur(r.cooldown));
    if (r.absent) s.push('absent ' + goDur(r.absent));
    return s.join(' · ');
  }

  // isOn says whether a rule runs now: its file's enabled, or a
  // control's override (the enabled column).
  function isOn(r, v) {
    return v && v[C.enabled] !== undefined ? v[C.enabled] === 1 : r.enabled;
  }
  const byControl = (v) => !!(v && v[C.by_control] === 1);

  // controls returns a rule's buttons: enable or disable, and acknowledge
  // for a rule whose firings repeat (usable while a key fires).
  function controls(r, v) {
    const box = make('div', 'controls');
    const on = isOn(r, v);
    const b = make('button', 'ctl', on ? 'Disable' : 'Enable');
    b.type = 'button';
    b.dataset.rule = r.name;
    b.dataset.action = on ? 'disable' : 'enable';
    b.title = (on ? 'Disable ' : 'Enable ') + r.name + ' until a reload changes it';
    box.append(b);
    if (r.repeat) {
      const a = make('button', 'ctl', 'Acknowledge');
      a.type = 'button';
      a.dataset.rule = r.name;
      a.dataset.action = 'ack';
      a.title = 'Stop the repeats of every firing key';
      a.disabled = !(v && v[C.firing]);
      box.append(a);
    }
    return box;
  }

  function renderState(row) {
    const r = row.r;
    const v = row.vals;
    const on = isOn(r, v);
    row.tr.classList.toggle('disabled', !on);
    const box = make('div', 'badges');
    const badge = (cls, text, title) => {
      const b = make('span', 'badge ' + cls, text);
      if (title) b.title = title;
      box.append(b);
    };
    const n = (k) => (v[k] >= S.overviewKeys ? S.overviewKeys + '+' : String(v[k]));
    const parts = [box];
    if (on && byControl(v)) badge('info', 'enabled by control', 'Enabled at run time, over MQTT or HTTP, until a reload changes the rule');
    if (!on) {
      if (byControl(v)) badge('warn', 'disabled by control', 'Disabled at run time, over MQTT or HTTP, until a reload changes the rule');
      else badge('', 'disabled', 'Disabled in its file');
    } else if (!r.stateful) {
      badge('', 'stateless', 'Fires on every matching message whose condition holds');
    } else {
      let any = false;
      if (v && v[C.firing]) (any = true), badge('err', n(C.firing) + ' firing', 'Keys that fired and did not clear yet');
      if (v && v[C.pending]) (any = true), badge('warn', n(C.pending) + ' pending', 'Keys whose condition holds, waiting for "for" to pass');
      if (v && v[C.cooldown]) (any = true), badge('info', n(C.cooldown) + ' cooldown', 'Keys whose firings are suppressed for now');
      if (v && v[C.watching]) (any = true), badge('accent', n(C.watching) + ' watched', 'Keys watched for silence ("absent")');
      if (!any) badge('ok', 'idle', 'No key pending, firing or in cooldown');
      const meta = make('div', 'meta');
      meta.append(settings(r));
      if (v && v[C.next_deadline]) {
        meta.append(' · next ');
        meta.append(timeEl(v[C.next_deadline]));
      }
      parts.push(meta);
    }
    if (S.control) parts.push(controls(r, v));
    row.st.replaceChildren(...parts);
  }

  // ---- control ----
  let msgTimer = 0;
  function controlMessage(text, ok) {
    const m = el('control-msg');
    m.textContent = text;
    m.className = 'control-msg ' + (ok ? 'tone-ok' : 'tone-err');
    m.hidden = false;
    clearTimeout(msgTimer);
    msgTimer = setTimeout(() => (m.hidden = true), 8000);
  }

  // sendControl POSTs a button's action. The page is signed in by its
  // cookie, so the API wants the X-Requested-By header, which a form on
  // another site cannot send.
  async function sendControl(b) {
    const rule = b.dataset.rule;
    const action = b.dataset.action;
    b.disabled = true;
    try {
      const r = await fetch('/api/rules/' + encodeURIComponent(rule) + '/' + action, {
        method: 'POST',
        cache: 'no-store',
        credentials: 'same-origin',
        headers: { 'X-Requested-By': 'mqtt-rules' },
      });
      if (!r.ok) {
        if (r.status === 401) setLive('unauthorized');
        controlMessage(rule + ': ' + action + ' refused: ' + (await r.text()).trim(), false);
        return;
      }
      const res = await r.json();
      const done = {
        enable: res.changed ? 'enabled' : 'already enabled',
        disable: res.changed ? 'disabled' : 'already disabled',
        ack: res.acknowledged + ' firing ' + (res.acknowledged === 1 ? 'key' : 'keys') + ' acknowledged',
      }[action];
      controlMessage(rule + ': ' + done, true);
    } catch (e) {
      controlMessage(rule + ': ' + action + ' failed: ' + e.message, false);
    } finally {
      b.disabled = false;
    }
  }

  // ---- filter and sort ----
  function applyFilter() {
    const t0 = performance.now();
    const f = S.filter;
    let shown = 0;
    for (const row of S.rows) {
      const hide = f !== '' && !row.hay.includes(f);
      if (row.tr.hidden !== hide) row.tr.hidden = hide;
      if (!hide) shown++;
    }
    el('rule-count').textContent = f ? shown + ' of ' + S.rows.length : String(S.rows.length);
    const empty = el('rules-empty');
    empty.hidden = shown > 0 && S.rows.length > 0;
    empty.textContent = S.rows.length === 0 ? 'No rule is loaded.' : 'No rule matches “' + f + '”.';
    perf.filterMs = performance.now() - t0;
  }

  function applySort(force) {
    const key = S.sort;
    const by = {
      file: (a, b) => a.i - b.i,
      name: (a, b) => a.r.name.localeCompare(b.r.name),
      recent: (a, b) => val(b, C.last_fired) - val(a, C.last_fired) || a.i - b.i,
      fires: (a, b) => val(b, C.fires) - val(a, C.fires) || a.i - b.i,
      errors: (a, b) => val(b, C.errors) - val(a, C.errors) || a.i - b.i,
    }[key];
    const sorted = S.rows.slice().sort(by);
    S.sortedAt = Date.now();
    const body = el('rules-body');
    if (!force && sorted.every((row, i) => body.children[i] === row.tr)) return;
    const frag = document.createDocumentFragment();
    for (const row of sorted) frag.append(row.tr);
    body.append(frag);
  }
  const val = (row, k) => (row.vals ? row.vals[k] : 0);

  // ---- status ----
  function status(d) {
    if (d.gen !== S.gen) return false;
    S.offset = d.now - Date.now();
    const st = d.status;
    S.status = st;
    el('version').textContent = st.version ? 'v' + st.version.replace(/^v/, '') : '';

    renderBrokers(st.brokers && st.brokers.length ? st.brokers : [{ name: 'default', url: st.broker, connected: st.connected }]);
    const rp = el('pill-ready');
    rp.dataset.tone = st.ready ? 'ok' : 'warn';
    el('ready-state').textContent = st.ready ? 'Ready' : 'Not ready: ' + st.not_ready_reason;

    const h = S.history;
    h.push([d.now, st.received, st.fires, st.errors]);
    while (h.length > 6) h.shift();
    if (h.length > 1) {
      const a = h[0];
      const b = h[h.length - 1];
      const dt = (b[0] - a[0]) / 1000;
      const rate = (i) => (dt > 0 ? Math.max(0, b[i] - a[i]) / dt : 0);
      el('now-received').textContent = fmtRate(rate(1));
      el('now-fires').textContent = fmtRate(rate(2));
      el('now-errors').textContent = fmtRate(rate(3));
    }
    el('total-received').textContent = fmtInt(st.received);
    el('remembered').textContent = fmtInt(st.remembered || 0);
    el('total-fires').textContent = fmtInt(st.fires);
    el('total-errors').textContent = fmtInt(st.errors);
    el('drops').textContent = fmtInt(Object.values(st.drops || {}).reduce((x, y) => x + y, 0));
    renderReload(st.last_reload);

    const bad = !st.connected || !st.last_reload.ok;
    document.title = (bad ? '⚠ ' : '') + (S.view === 'rule' ? S.rule + ' · ' : '') + 'mqtt-rules';
    return true;
  }

  // One pill per broker connection (docs/brokers.md): the first is the
  // page's own; the others are copies of it, named.
  function renderBrokers(bs) {
    const first = el('pill-broker');
    let prev = first;
    bs.forEach((b, i) => {
      let p = i === 0 ? first : document.getElementById('pill-broker-' + i);
      if (!p) {
        p = first.cloneNode(true);
        p.id = 'pill-broker-' + i;
        p.querySelectorAll('[id]').forEach((n) => n.removeAttribute('id'));
        prev.after(p);
      }
      p.dataset.tone = b.connected ? 'ok' : 'err';
      p.querySelector('.label').textContent = bs.length > 1 ? 'Broker ' + b.name : 'Broker';
      p.querySelector('.value').textContent = b.connected ? 'connected' + (b.protocol ? ' (MQTT ' + b.protocol + ')' : '') : 'disconnected';
      const addr = p.querySelector('.addr');
      addr.textContent = b.url;
      addr.title = b.url;
      prev = p;
    });
    for (let i = bs.length; document.getElementById('pill-broker-' + i); i++) {
      document.getElementById('pill-broker-' + i).remove();
    }
  }

  let reloadKey = '';
  function renderReload(lr) {
    const st = el('reload-state');
    const at = parseTime(lr.at);
    const when = at ? rel(at) : '–';
    const key = lr.ok + '|' + when + '|' + lr.errors.length + '|' + lr.rules;
    if (key === reloadKey) return;
    reloadKey = key;
    st.replaceChildren();
    st.className = 'big reload ' + (lr.ok ? 'tone-ok' : 'tone-err');
    st.append(lr.ok ? (lr.reload ? 'Reloaded' : 'Loaded') : 'Rejected');
    st.title = at ? abs(at) : '';
    const detail = el('reload-detail');
    detail.textContent = at
      ? when + ' · ' + lr.rules + ' rules' + (lr.ok ? (lr.took_ms ? ' · took ' + lr.took_ms + ' ms' : '') : ' · the previous rules keep running')
      : '';
    const r = S.status && S.status.reloads;
    if (r && r.ok + r.error > 0) detail.textContent += ' · reloads: ' + r.ok + ' ok, ' + r.error + ' rejected';
    const ul = el('reload-errors');
    ul.hidden = lr.ok || lr.errors.length === 0;
    ul.replaceChildren(...lr.errors.map((e) => make('li', '', e)));
  }

  // ---- charts ----
  function onRates(d) {
    S.rates = d;
    const per = d.step_ms / 1000;
    spark('spark-received', d.received, d, per, 'Messages per second');
    spark('spark-fires', d.fires, d, per, 'Firings per second');
    spark('spark-errors', d.errors, d, per, 'Errors per second');
    const mins = Math.round((d.buckets * d.step_ms) / 60000);
    el('rates-window').textContent =
      'Charts: the last ' + (mins >= 1 ? mins + ' min' : Math.round((d.buckets * d.step_ms) / 1000) + ' s') + ', per ' + fmtStep(d.step_ms);
  }
  const fmtStep = (ms) => (ms >= 1000 ? ms / 1000 + ' s' : ms + ' ms');

  const SVGNS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function spark(id, series, d, per, label) {
    const W = d.buckets;
    const H = 40;
    const box = el(id);
    const root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img' });
    root.append(svg('line', { class: 'base', x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5 }));
    if (series.length < 2) {
      root.setAttribute('aria-label', label + ': collecting data');
      box.replaceChildren(root);
      box.title = 'Collecting data…';
      return;
    }
    const vals = series.map((v) => v / per);
    const max = Math.max(...vals, 0.001);
    const x0 = W - vals.length;
    const pts = vals.map((v, i) => [x0 + i + 0.5, H - 1 - (v / max) * (H - 4)]);
    const line = pts.map((p, i) => (i ? 'L' : 'M') + p[0].toFixed(1) + ' ' + p[1].toFixed(1)).join('');
    root.append(svg('path', { class: 'area', d: line + 'L' + pts[pts.length - 1][0].toFixed(1) + ' ' + H + 'L' + pts[0][0].toFixed(1) + ' ' + H + 'Z' }));
    root.append(svg('path', { class: 'line', d: line }));
    const summary = label + ': peak ' + fmtRate(max === 0.001 ? 0 : max) + ', latest ' + fmtRate(vals[vals.length - 1]);
    root.setAttribute('aria-label', summary);
    box.title = summary;
    box.replaceChildren(root);
  }

  // ---- detail view ----
  function route() {
    const m = location.hash.match(/^#\/rule\/(.+)$/);
    let rule = '';
    try {
      rule = m ? decodeURIComponent(m[1]) : '';
    } catch (_) {
      rule = m[1]; // not valid percent-encoding: take it as written
    }
    const view = rule ? 'rule' : 'overview';
    if (view === S.view && rule === S.rule) return;
    S.view = view;
    S.rule = rule;
    el('overview').hidden = view !== 'overview';
    el('detail').hidden = view !== 'rule';
    if (view === 'rule') {
      S.detail = { seen: null };
      el('d-name').textContent = rule;
      el('d-desc').textContent = '';
      el('d-def').replaceChildren();
      el('d-file').textContent = '';
      el('d-trace').replaceChildren();
      el('d-keys').replaceChildren();
      el('d-actions').textContent = '';
      detailCounters();
      window.scrollTo(0, 0);
    } else {
      S.detail = null;
      refreshTimes();
    }
    connect();
  }

  function ruleRow() {
    return S.rows.find((row) => row.r.name === S.rule);
  }

  function detailCounters() {
    const row = ruleRow();
    const en = el('d-enabled');
    if (!row) {
      en.textContent = '';
      el('d-controls').replaceChildren();
      el('d-controls').dataset.key = '';
      return;
    }
    const r = row.r;
    const v = row.vals;
    const on = isOn(r, v);
    en.textContent = on ? (r.stateful ? 'stateful' : 'stateless') : byControl(v) ? 'disabled by control' : 'disabled';
    en.className = 'badge ' + (on ? 'ok' : byControl(v) ? 'warn' : '');
    const ctl = el('d-controls');
    const key = S.control ? S.gen + '|' + on + '|' + (v ? v[C.firing] : 0) : '';
    if (ctl.dataset.key !== key) {
      ctl.dataset.key = key;
      ctl.replaceChildren(...(S.control ? [controls(r, v)] : []));
    }
    el('d-desc').textContent = r.description || '';
    if (!v) return;
    el('d-fires').textContent = fmtInt(v[C.fires]);
    el('d-errors').textContent = fmtInt(v[C.errors]);
    el('d-errors').className = 'big' + (v[C.errors] ? ' tone-err' : '');
    const last = el('d-last');
    if (last.dataset.ms !== String(v[C.last_fired])) {
      last.replaceChildren(timeEl(v[C.last_fired]));
      last.dataset.ms = v[C.last_fired];
    }
  }

  function onRule(d) {
    if (d.name !== S.rule || !S.detail) return;
    if (!d.found) {
      el('d-desc').textContent = 'No rule of this name is loaded (a reload may have removed or renamed it).';
      el('d-def').replaceChildren();
      return;
    }
    if (d.definition) renderDef(d.definition);
    const ar = Object.entries(d.action_results || {}).map(([k, r]) => k + ' ' + fmtInt(r.ok) + ' ok' + (r.error ? ', ' + fmtInt(r.error) + ' failed' : ''));
    el('d-actions').textContent = ar.join(' · ');
    renderTrace(d.trace);
    renderKeys(d);
  }

  function renderDef(def) {
    el('d-file').textContent = def.file + ':' + def.line;
    const dl = el('d-def');
    dl.replaceChildren();
    const item = (name, ...content) => {
      dl.append(make('dt', '', name));
      const dd = make('dd');
      dd.append(...content);
      dl.append(dd);
    };
    const pre = (s) => make('pre', '', s);
    const codes = (list) => list.flatMap((f) => [make('code', '', f), ' ']);
    item('Topics', ...codes(def.filters));
    item('When', def.when ? pre(def.when) : make('span', 'sub', 'always'));
    if (def.stateful || def.key) item('Key', def.key ? pre(def.key) : make('span', 'sub', 'the topic'));
    if (def.clear_when) item('Clear when', pre(def.clear_when));
    for (const k of ['for', 'cooldown', 'absent']) if (def[k]) item(k[0].toUpperCase() + k.slice(1), goDur(def[k]));
    if (def.schedule) item('Schedule', make('code', '', def.schedule));
    if (def.sun) item('Sun', def.sun);
    if (def.timezone) item('Time zone', def.timezone);
    if (def.windows && def.windows.length) item('Windows', ...def.windows.map((w) => make('div', '', w)));
    if (def.mode) item('Mode', def.mode);
    if (def.repeat) item('Repeat', 'every ' + goDur(def.repeat) + (def.max_repeats ? ', at most ' + def.max_repeats + ' times' : ''));
    item('Enabled', def.enabled ? 'yes' : 'no');
    item('Actions', ...def.actions.map(actionEl));
    if (def.on_clear && def.on_clear.length) item('On clear', ...def.on_clear.map(actionEl));
  }

  function actionEl(a) {
    const box = make('div', 'action');
    const head = make('div');
    head.append(make('span', 'kind', a.kind), make('span', 'sub', '  line ' + a.line));
    box.append(head);
    const dl = make('dl');
    const item = (name, content) => {
      dl.append(make('dt', '', name));
      const dd = make('dd');
      dd.append(content);
      dl.append(dd);
    };
    const code = (s) => make('code', '', s);
    const pre = (s) => make('pre', '', s);
    // Fields as the action's kind describes them: bare text in code, free
    // text (a payload, a body) as a block, a stand-in note when absent.
    for (const f of a.fields || []) {
      if (f.note) item(f.name, make('span', 'sub', f.note));
      else item(f.name, f.text ? pre(f.value) : code(f.value));
    }
    box.append(dl);
    return box;
  }

  const outcomeTone = {
    fired: 'accent',
    error: 'err',
    pending: 'warn',
    cooldown: 'info',
    episode: 'info',
    cleared: 'ok',
    back: 'ok',
    still_firing: 'err',
    heartbeat: 'info',
  };

  function renderTrace(trace) {
    const ol = el('d-trace');
    const seen = new Set();
    const first = S.detail.seen === null;
    const items = [];
    for (let i = trace.length - 1; i >= 0; i--) {
      const ev = trace[i];
      const id = ev.time + '|' + ev.topic + '|' + ev.outcome + '|' + (ev.key || '');
      seen.add(id);
      const li = make('li');
      if (!first && !S.detail.seen.has(id)) li.className = 'new';
      const l1 = make('div', 'line1');
      l1.append(make('span', 'badge ' + (outcomeTone[ev.outcome] || ''), ev.outcome.replace('_', ' ')));
      if (ev.timer) l1.append(make('span', 'badge', 'timer'));
      l1.append(make('code', 'topic', ev.topic));
      const when = make('span', 'when');
      when.append(timeEl(parseTime(ev.time)));
      l1.append(when);
      li.append(l1, explain(ev.explanation));
      if (ev.key && ev.key !== ev.topic) li.append(make('div', 'key', 'key ' + ev.key));
      if (ev.payload) li.append(make('pre', '', ev.payload));
      items.push(li);
    }
    S.detail.seen = seen;
    ol.replaceChildren(...items);
    el('d-trace-empty').hidden = trace.length > 0;
    el('d-trace-count').textContent = trace.length ? '(' + trace.length + ')' : '';
  }

  // explain shows an explanation with its RFC 3339 times as local times
  // ("fires at 14:03:12 (in 9 min)"); the text stays whole in its title.
  function explain(text) {
    const div = make('div', 'why');
    div.title = text;
    let at = 0;
    for (const m of text.matchAll(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)/g)) {
      div.append(text.slice(at, m.index));
      const ms = Date.parse(m[0]);
      const t = make('time', 'mono', tf.format(ms));
      t.dateTime = m[0];
      t.title = abs(ms);
      div.append(t, ' (');
      div.append(timeEl(ms), ')');
      at = m.index + m[0].length;
    }
    div.append(text.slice(at));
    return div;
  }

  function renderKeys(d) {
    const row = ruleRow();
    const stateful = row ? row.r.stateful : d.keys.length > 0;
    el('d-keys-section').hidden = !stateful;
    el('d-keycount').textContent = stateful ? fmtInt(d.keys.length) + (d.keys.length >= 200 ? '+' : '') : '–';
    el('d-keysum').textContent = stateful ? 'active, of ' + fmtInt(d.tracked) + ' tracked' : 'stateless: no keys';
    const body = el('d-keys');
    body.replaceChildren(
      ...d.keys.map((k) => {
        const tr = make('tr');
        const cell = (label, ...content) => {
          const td = make('td');
          td.dataset.label = label;
          td.append(...content);
          tr.append(td);
        };
        const badges = make('div', 'badges');
        const now = serverNow();
        const cooling = parseTime(k.cooldown_until) > now;
        if (k.firing) badges.append(make('span', 'badge err', 'firing'));
        if (k.pending) badges.append(make('span', 'badge warn', 'pending'));
        if (cooling) badges.append(make('span', 'badge info', 'cooldown'));
        if (!k.firing && !k.pending && !cooling && k.deadline) badges.append(make('span', 'badge accent', 'watched'));
        if (k.waiting && k.waiting.length) badges.append(make('span', 'badge accent', 'waiting'));
        if (k.acked) badges.append(make('span', 'badge info', 'acknowledged'));
        const state = [badges];
        // Sequences waiting in a delay step, and repeats of a firing key.
        for (const w of k.waiting || []) {
          const what = (w.on_clear ? 'on_clear' : 'actions') + ' step ' + (w.step + 1);
          const line = make('div', 'sub', w.queued ? 'queued firing' : what + ' ');
          if (!w.queued) line.append(timeEl(parseTime(w.until), '–'));
          state.push(line);
        }
        if (k.repeats || k.next_repeat) {
          const line = make('div', 'sub', k.repeats + ' repeats' + (k.next_repeat ? ', next ' : ''));
          if (k.next_repeat) line.append(timeEl(parseTime(k.next_repeat), ''));
          state.push(line);
        }
        // A key's windows: count, average, range and change over the window.
        for (const [name, w] of Object.entries(k.windows || {})) {
          const n = (v) => (v == null ? '–' : +v.toPrecision(4));
          const txt = w.count === 0 ? name + ': empty'
            : `${name}: ${w.count} × avg ${n(w.avg)}, ${n(w.min)}…${n(w.max)}, Δ ${n(w.delta)}`;
          state.push(make('div', 'sub', txt));
        }
        cell('Key', k.key);
        cell('State', ...state);
        cell('Deadline', timeEl(parseTime(k.deadline), '–'));
        cell('Cooldown until', timeEl(parseTime(k.cooldown_until), '–'));
        cell('Last seen', timeEl(parseTime(k.last_seen), '–'));
        return tr;
      }),
    );
    el('d-keys-empty').hidden = d.keys.length > 0;
  }

  // ---- wiring ----
  let filterTimer = 0;
  el('search').addEventListener('input', (e) => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => {
      S.filter = e.target.value.trim().toLowerCase();
      applyFilter();
    }, 80);
  });
  document.addEventListener('click', (e) => {
    const b = e.target.closest && e.target.closest('button.ctl');
    if (b && !b.disabled && S.control) sendControl(b);
  });
  el('sort').addEventListener('change', (e) => {
    S.sort = e.target.value;
    applySort(true);
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === '/' && document.activeElement.tagName !== 'INPUT' && S.view === 'overview') {
      e.preventDefault();
      el('search').focus();
    }
  });
  window.addEventListener('hashchange', route);
  document.addEventListener('mouseover', (e) => {
    const t = e.target.closest && e.target.closest('time[data-ms]');
    if (t && +t.dataset.ms && !t.title) t.title = abs(+t.dataset.ms);
  });
  document.addEventListener('focusin', (e) => {
    const t = e.target.closest && e.target.closest('time[data-ms]');
    if (t && +t.dataset.ms && !t.title) t.title = abs(+t.dataset.ms);
  });
  setInterval(() => {
    refreshTimes();
    if (S.live === 'live' && S.lastEvent && Date.now() - S.lastEvent > 5000) setLive('stalled');
    if (S.retryAt && S.live !== 'live' && S.live !== 'unauthorized' && S.retryTimer) {
      const left = Math.max(0, Math.ceil((S.retryAt - Date.now()) / 1000));
      if (S.live === 'offline' || S.live === 'busy') setLive(S.live, ' – retrying in ' + left + ' s');
    }
  }, 1000);

  S.view = '';
  route();
})();
