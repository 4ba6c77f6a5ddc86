// weir's dashboard: a hand-written single-page app, no build step and
// nothing loaded from elsewhere. Charts are SVG drawn by the server
// (/api/v1/chart/…) and inlined, so their hover titles work; tables come
// from /api/v1/overview, /api/v1/utilisation and SQL (/api/v1/query).
// The token lives in sessionStorage (localStorage with "remember") and
// goes out as "Authorization: Token …" on every request.
'use strict';

(() => {
  const TOKEN_KEY = 'weir.token';
  const DB_KEY = 'weir.db';
  // weir up's agent writes here; a fresh server's first choice.
  const DEFAULT_DB = 'telemetry';
  const AUTH = document.body.dataset.auth !== 'off';
  const SPANS = { '1h': 3600, '6h': 21600, '24h': 86400, '7d': 604800, '30d': 2592000 };
  const STEPS = [10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
    172800, 604800];
  const MAX_ROWS_SHOWN = 1000;

  const state = {
    db: '',
    databases: [],
    // Bumped whenever the page is rebuilt: answers for an older page are dropped.
    generation: 0,
    loaders: [],
    timer: null,
  };

  // ---------- small DOM helpers

  const $ = (selector) => document.querySelector(selector);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function message(kind, text) {
    return el('p', { class: kind, role: kind === 'error' ? 'alert' : undefined }, text);
  }

  // ---------- token and requests

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || localStorage.getItem(TOKEN_KEY) || '';
  }

  function saveToken(value, remember) {
    clearToken();
    (remember ? localStorage : sessionStorage).setItem(TOKEN_KEY, value);
  }

  function clearToken() {
    sessionStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(TOKEN_KEY);
  }

  // Thrown after a 401 or 403 has sent the user back to the login form.
  class AuthError extends Error {}

  async function errorText(response) {
    const text = await response.text();
    try {
      const body = JSON.parse(text);
      return body.error || body.message || text;
    } catch (_) {
      return text || response.statusText;
    }
  }

  async function api(path, options) {
    const headers = new Headers((options && options.headers) || {});
    if (AUTH) headers.set('Authorization', 'Token ' + token());
    const response = await fetch(path, Object.assign({}, options, { headers, cache: 'no-store' }));
    if (AUTH && (response.status === 401 || response.status === 403)) {
      const why = await errorText(response);
      showLogin(why);
      throw new AuthError(why);
    }
    return response;
  }

  async function apiJson(path, options) {
    const response = await api(path, options);
    if (!response.ok) throw new Error(await errorText(response));
    return response.json();
  }

  async function sql(query) {
    return apiJson('/api/v1/query', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ db: state.db, sql: query, format: 'json' }),
    });
  }

  const literal = (text) => "'" + String(text).replace(/'/g, "''") + "'";

  function download(data, type, name) {
    const blob = data instanceof Blob ? data : new Blob([data], { type });
    const url = URL.createObjectURL(blob);
    const link = el('a', { href: url, download: name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // ---------- time range

  function range() {
    if ($('#range').value === 'custom') {
      const start = Date.parse($('#start').value + 'Z') / 1000;
      const end = Date.parse($('#end').value + 'Z') / 1000;
      if (Number.isFinite(start) && Number.isFinite(end) && start < end) return { start, end };
    }
    const end = Math.floor(Date.now() / 1000);
    return { start: end - (SPANS[$('#range').value] || SPANS['24h']), end };
  }

  // About 60 buckets over the range, as the server would choose.
  function every(r) {
    const wanted = Math.ceil((r.end - r.start) / 60);
    const step = STEPS.find((s) => s >= wanted) || STEPS[STEPS.length - 1];
    return step + 's';
  }

  function toInput(secs) {
    return new Date(secs * 1000).toISOString().slice(0, 16);
  }

  // ---------- formatting

  function num(v, digits) {
    if (v === undefined || v === null || v === '') return '–';
    const n = Number(v);
    if (!Number.isFinite(n)) return String(v);
    return n.toLocaleString('en', { maximumFractionDigits: digits === undefined ? 2 : digits });
  }

  function duration(secs) {
    if (secs === undefined || secs === null) return '–';
    const s = Number(secs);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    return d > 0 ? `${d} d ${h} h` : h > 0 ? `${h} h ${m} min` : `${m} min`;
  }

  // Bytes per second as Mbit/s.
  const mbit = (v) => (v === undefined || v === null ? '–' : num((Number(v) * 8) / 1e6, 1));
  const percent = (v) => (v === undefined || v === null ? '–' : num(v, 1) + ' %');
  const when = (v) => (v ? String(v).replace('T', ' ').replace('Z', '') : '–');

  function table(columns, rows, rowClass) {
    return el('div', { class: 'table-wrap' },
      el('table', {},
        el('thead', {}, el('tr', {}, columns.map((c) => el('th', { class: c.numeric ? 'num' : undefined }, c.label)))),
        el('tbody', {}, rows.map((row) =>
          el('tr', { class: rowClass ? rowClass(row) : undefined },
            columns.map((c) => el('td', { class: c.numeric ? 'num' : undefined },
              c.format ? c.format(row[c.key], row) : (row[c.key] ?? '–'))))))));
  }

  // ---------- charts

  // A chart card: the SVG from /api/v1/chart/<chart>.svg, with SVG and CSV
  // downloads (CSV: the analytics endpoint behind it, same parameters).
  function chart(parent, spec) {
    const body = el('div', { class: 'chart-body' }, message('muted', 'loading…'));
    const status = el('span', { class: 'chart-status' });
    let svg = null;
    const name = () => spec.file || spec.chart;
    const svgButton = el('button', {
      type: 'button', title: 'download this chart as SVG',
      onclick: () => svg && download(svg, 'image/svg+xml', name() + '.svg'),
    }, 'SVG');
    const csvButton = el('button', {
      type: 'button', title: 'download the figures as CSV',
      onclick: async () => {
        const params = spec.params();
        params.set('format', 'csv');
        try {
          const response = await api(`/api/v1/${spec.endpoint}?${params}`);
          if (!response.ok) throw new Error(await errorText(response));
          download(await response.blob(), 'text/csv', name() + '.csv');
          status.textContent = '';
        } catch (e) {
          if (!(e instanceof AuthError)) status.textContent = 'CSV: ' + e.message;
        }
      },
    }, 'CSV');
    const figure = el('figure', { class: 'chart', 'data-chart': spec.chart },
      body, el('figcaption', {}, status, svgButton, csvButton));
    parent.append(figure);

    state.loaders.push(async (generation) => {
      const params = spec.params();
      const width = Math.round(Math.min(1600, Math.max(400, body.clientWidth || 760)));
      params.set('width', width);
      params.set('height', spec.height || 360);
      for (const [key, value] of Object.entries(spec.look || {})) params.set(key, value);
      try {
        const response = await api(`/api/v1/chart/${spec.chart}.svg?${params}`);
        const text = response.ok ? await response.text() : null;
        if (generation !== state.generation) return;
        if (!response.ok) throw new Error(await errorText(response));
        svg = text;
        body.innerHTML = text;
        figure.classList.toggle('empty', body.querySelector('.weir-no-data') !== null);
      } catch (e) {
        if (e instanceof AuthError || generation !== state.generation) return;
        svg = null;
        body.replaceChildren(message('error', e.message));
      }
    });
  }

  // Parameters shared by the charts of a page.
  function params(values) {
    const p = new URLSearchParams();
    p.set('db', state.db);
    for (const [key, value] of Object.entries(values)) {
      if (value === undefined || value === null || value === '') continue;
      if (Array.isArray(value)) value.forEach((v) => p.append(key, v));
      else p.set(key, value);
    }
    return p;
  }

  function timed(values) {
    const r = range();
    return params(Object.assign({ start: r.start, end: r.end }, values));
  }

  // ---------- schema, for the selectors

  async function schema(tableName) {
    const rows = await sql(
      'SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ' +
      literal(state.db) + ' AND table_name = ' + literal(tableName) + ' ORDER BY ordinal_position');
    return {
      tags: rows.filter((r) => /^Dictionary/.test(r.data_type)).map((r) => r.column_name),
      numbers: rows.filter((r) => /^(Float|Int|UInt)/.test(r.data_type)).map((r) => r.column_name),
    };
  }

  async function tableNames() {
    const rows = await sql(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = ' +
      literal(state.db) + " AND table_type = 'BASE TABLE' ORDER BY table_name");
    return rows.map((r) => r.table_name);
  }

  function select(label, options, value, onchange) {
    const node = el('select', { onchange: (e) => onchange(e.target.value) },
      options.map((o) => {
        const [v, text] = Array.isArray(o) ? o : [o, o];
        return el('option', { value: v, selected: v === value }, text);
      }));
    return el('label', {}, label + ' ', node);
  }

  function section(parent, title, ...extra) {
    const head = el('div', { class: 'section-head' }, el('h2', {}, title), ...extra);
    parent.append(head);
    return head;
  }

  function grid(parent) {
    const node = el('div', { class: 'grid' });
    parent.append(node);
    return node;
  }

  // ---------- pages

  function overview(main) {
    section(main, 'Hosts');
    const hosts = el('div', {}, message('muted', 'loading…'));
    main.append(hosts);
    section(main, 'Interfaces', el('span', { class: 'hint' },
      'overload risk from the rate monitor; rows at risk are highlighted'));
    const interfaces = el('div', {}, message('muted', 'loading…'));
    main.append(interfaces);

    state.loaders.push(async (generation) => {
      try {
        const o = await apiJson('/api/v1/overview?' + params({}));
        if (generation !== state.generation) return;
        hosts.replaceChildren(o.hosts.length === 0
          ? message('muted', 'No host measurements (system, cpu, mem) in this database yet.')
          : table([
            { key: 'host', label: 'host' },
            { key: 'time', label: 'last seen (UTC)', format: when },
            { key: 'uptime', label: 'uptime', format: duration, numeric: true },
            { key: 'load1', label: 'load 1 min', format: (v) => num(v), numeric: true },
            { key: 'load5', label: '5 min', format: (v) => num(v), numeric: true },
            { key: 'load15', label: '15 min', format: (v) => num(v), numeric: true },
            { key: 'n_cpus', label: 'CPUs', format: (v) => num(v, 0), numeric: true },
            { key: 'cpu_used_percent', label: 'CPU used', format: percent, numeric: true },
            { key: 'mem_used_percent', label: 'memory used', format: percent, numeric: true },
          ], o.hosts));
        interfaces.replaceChildren(o.interfaces.length === 0
          ? message('muted', 'No rate monitor measurements (ratemon) in this database yet.')
          : table([
            { key: 'host', label: 'host' },
            { key: 'interface', label: 'interface' },
            { key: 'time', label: 'last seen (UTC)', format: when },
            { key: 'linerate', label: 'line rate Mbit/s', format: mbit, numeric: true },
            { key: 'tx', label: 'tx Mbit/s', format: mbit, numeric: true },
            { key: 'rx', label: 'rx Mbit/s', format: mbit, numeric: true },
            { key: 'overload_risk_tx', label: 'risk tx', format: percent, numeric: true },
            { key: 'overload_risk_rx', label: 'risk rx', format: percent, numeric: true },
            { key: 'alarm_trigger_value', label: 'alarm above', format: percent, numeric: true },
            { key: 'at_risk', label: 'at risk', format: (v) => (v ? 'yes' : 'no') },
          ], o.interfaces, (row) => (row.at_risk ? 'risk' : undefined)));
      } catch (e) {
        if (e instanceof AuthError || generation !== state.generation) return;
        hosts.replaceChildren(message('error', e.message));
        interfaces.replaceChildren();
      }
    });

    section(main, 'Over time');
    const charts = grid(main);
    for (const [field, title] of [['overload_risk_tx', 'Overload risk, transmit'],
      ['overload_risk_rx', 'Overload risk, receive']]) {
      chart(charts, {
        chart: 'lines', endpoint: 'quantiles', file: field,
        params: () => timed({ table: 'ratemon', field, group_by: 'host,interface', q: 1, every: every(range()) }),
        look: { title: title + ' (highest per bucket)', unit: '%' },
      });
    }
    chart(charts, {
      chart: 'lines', endpoint: 'quantiles', file: 'load1',
      params: () => timed({ table: 'system', field: 'load1', group_by: 'host', q: 1, every: every(range()) }),
      look: { title: 'Load (1 min, highest per bucket)', unit: 'load' },
    });
    chart(charts, {
      chart: 'lines', endpoint: 'quantiles', file: 'mem_used_percent',
      params: () => timed({ table: 'mem', field: 'used_percent', group_by: 'host', q: 1, every: every(range()) }),
      look: { title: 'Memory used (highest per bucket)', unit: '%' },
    });
  }

  async function probes(main, generation) {
    const choice = { group: sessionStorage.getItem('weir.probes.group') || 'target' };
    let tags = ['target', 'vantage'];
    try {
      const s = await schema('probe_http');
      // error and phase are what the rainbow shows, not groups.
      const groups = s.tags.filter((t) => t !== 'error' && t !== 'phase');
      if (groups.length > 0) tags = groups;
    } catch (e) {
      if (e instanceof AuthError) return;
    }
    if (generation !== state.generation) return;
    if (!tags.includes(choice.group)) choice.group = tags.includes('target') ? 'target' : tags[0];
    section(main, 'Probes',
      select('Group by', tags, choice.group, (v) => {
        sessionStorage.setItem('weir.probes.group', v);
        route();
      }),
      el('span', { class: 'hint' }, 'probe_http: downloads; probe_echo: echo round trips'));
    const charts = grid(main);
    const g = () => choice.group;
    const cdf = (table, field, file, title, unit, scale) => chart(charts, {
      chart: 'cdf', endpoint: 'cdf', file,
      params: () => timed({ table, field, group_by: g() }),
      look: { title, unit, scale },
    });
    cdf('probe_http', 'ttfb_us', 'ttfb', 'Time to first byte', 'ms', 0.001);
    cdf('probe_http', 'ttlb_us', 'ttlb', 'Time to last byte', 'ms', 0.001);
    cdf('probe_http', 'dl_last_mib_bps', 'throughput', 'Download throughput (last MiB)', 'Mbit/s', 1e-6);
    cdf('probe_echo', 'rtt_us', 'rtt', 'Echo round-trip time', 'ms', 0.001);

    section(main, 'Over time');
    const wide = el('div', { class: 'wide' });
    main.append(wide);
    chart(wide, {
      chart: 'bands', endpoint: 'quantiles', file: 'ttfb-bands', height: 300,
      params: () => timed({ table: 'probe_http', field: 'ttfb_us', group_by: g(), every: every(range()) }),
      look: { title: 'Time to first byte: quantile bands (5 % steps) and median', unit: 'ms', scale: 0.001 },
    });
    chart(wide, {
      chart: 'rainbow', endpoint: 'rainbow', file: 'failures', height: 300,
      params: () => timed({ table: 'probe_http', group_by: g(), every: every(range()) }),
      look: { title: 'Failure rainbow: share of each failure class' },
    });
  }

  async function network(main, generation) {
    const saved = JSON.parse(sessionStorage.getItem('weir.network') || '{}');
    const choice = Object.assign({ table: 'ratemon', field: 'tx', node: 'host', role: '', window: '1h' }, saved);
    let tables = [];
    let s = { tags: [], numbers: [] };
    try {
      tables = await tableNames();
      if (!tables.includes(choice.table)) choice.table = tables.includes('ratemon') ? 'ratemon' : (tables[0] || 'ratemon');
      s = await schema(choice.table);
    } catch (e) {
      if (e instanceof AuthError) return;
    }
    if (generation !== state.generation) return;
    if (s.numbers.length > 0 && !s.numbers.includes(choice.field)) choice.field = s.numbers[0];
    if (s.tags.length > 0 && !s.tags.includes(choice.node)) choice.node = s.tags[0];
    if (choice.role && !s.tags.includes(choice.role)) choice.role = '';
    const set = (key) => (v) => {
      choice[key] = v;
      sessionStorage.setItem('weir.network', JSON.stringify(choice));
      route();
    };
    section(main, 'Utilisation and balance',
      select('Table', tables.length ? tables : [choice.table], choice.table, set('table')),
      select('Rate field', s.numbers.length ? s.numbers : [choice.field], choice.field, set('field')),
      select('Node', s.tags.length ? s.tags : [choice.node], choice.node, set('node')),
      select('Role', [['', '(none)'], ...s.tags], choice.role, set('role')),
      select('Window', [['5m', '5 min'], ['15m', '15 min'], ['1h', '1 hour'], ['6h', '6 hours'], ['1d', '1 day']],
        choice.window, set('window')));
    main.append(el('p', { class: 'hint' },
      'utilisation: a node\'s mean rate over the window ÷ its peak over the whole range; ' +
      'balance: its mean ÷ the mean of its role\'s nodes (1 = its fair share).'));
    const windowSecs = { '5m': 300, '15m': 900, '1h': 3600, '6h': 21600, '1d': 86400 };
    const query = () => {
      const r = range();
      const peak = Math.max(windowSecs[choice.window] || 3600, r.end - r.start);
      return params({
        table: choice.table, field: choice.field, node: choice.node, role: choice.role,
        window: choice.window, peak_window: peak + 's', end: r.end,
      });
    };
    const charts = grid(main);
    chart(charts, { chart: 'utilisation', endpoint: 'utilisation', params: query });
    chart(charts, { chart: 'balance', endpoint: 'utilisation', params: query });

    section(main, 'Nodes');
    const nodes = el('div', {}, message('muted', 'loading…'));
    main.append(nodes);
    state.loaders.push(async (gen) => {
      try {
        const response = await api('/api/v1/utilisation?' + query());
        if (gen !== state.generation) return;
        if (!response.ok) {
          // A table or column not written yet is no data, not a failure.
          nodes.replaceChildren(message([400, 404].includes(response.status) ? 'muted' : 'error',
            'No nodes: ' + await errorText(response)));
          return;
        }
        const u = await response.json();
        const rows = u.roles.flatMap((r) => r.nodes.map((n) => Object.assign({ role: r.role }, n)));
        nodes.replaceChildren(rows.length === 0
          ? message('muted', 'No nodes in this range.')
          : el('div', {},
            u.bottleneck && u.roles.length > 1 ? el('p', {}, 'Bottleneck role (highest median utilisation): ',
              el('strong', {}, u.bottleneck)) : null,
            table([
              { key: 'role', label: 'role' },
              { key: 'node', label: 'node' },
              { key: 'mean', label: 'mean', format: (v) => num(v), numeric: true },
              { key: 'peak', label: 'peak', format: (v) => num(v), numeric: true },
              { key: 'utilisation', label: 'utilisation', format: (v) => num(v, 3), numeric: true },
              { key: 'balance', label: 'balance', format: (v) => num(v, 3), numeric: true },
            ], rows)));
      } catch (e) {
        if (e instanceof AuthError || gen !== state.generation) return;
        nodes.replaceChildren(message('error', e.message));
      }
    });
  }

  function explore(main) {
    section(main, 'Explore', el('span', { class: 'hint' },
      'SQL over database ' + state.db + ' (DataFusion; last_rows(\'table\') gives each series\' latest row). Ctrl+Enter runs.'));
    const editor = el('textarea', { id: 'sql', rows: 6, spellcheck: 'false', 'aria-label': 'SQL' });
    editor.value = sessionStorage.getItem('weir.sql') ||
      'SELECT table_name FROM information_schema.tables WHERE table_schema = ' + literal(state.db) +
      " AND table_type = 'BASE TABLE' ORDER BY table_name";
    const result = el('div', { id: 'result' });
    const run = async () => {
      const generation = state.generation;
      sessionStorage.setItem('weir.sql', editor.value);
      result.replaceChildren(message('muted', 'running…'));
      try {
        const rows = await sql(editor.value);
        if (generation !== state.generation) return;
        const keys = [];
        for (const row of rows.slice(0, MAX_ROWS_SHOWN)) {
          for (const k of Object.keys(row)) if (!keys.includes(k)) keys.push(k);
        }
        const cell = (v) => (v !== null && typeof v === 'object' ? JSON.stringify(v) : v);
        result.replaceChildren(
          message('muted', rows.length > MAX_ROWS_SHOWN
            ? `${rows.length} rows; the first ${MAX_ROWS_SHOWN} shown (CSV has them all)`
            : `${rows.length} row${rows.length === 1 ? '' : 's'}`),
          rows.length === 0 ? null
            : table(keys.map((k) => ({ key: k, label: k, format: cell })), rows.slice(0, MAX_ROWS_SHOWN)));
      } catch (e) {
        if (e instanceof AuthError || generation !== state.generation) return;
        result.replaceChildren(message('error', e.message));
      }
    };
    const csv = async () => {
      try {
        const response = await api('/api/v1/query', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ db: state.db, sql: editor.value, format: 'csv' }),
        });
        if (!response.ok) throw new Error(await errorText(response));
        download(await response.blob(), 'text/csv', 'query.csv');
      } catch (e) {
        if (!(e instanceof AuthError)) result.replaceChildren(message('error', e.message));
      }
    };
    editor.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        run();
      }
    });
    main.append(el('div', { class: 'card' }, editor,
      el('div', { class: 'buttons' },
        el('button', { id: 'run', type: 'button', onclick: run }, 'Run'),
        el('button', { type: 'button', onclick: csv }, 'CSV')),
      result));
    run();
  }

  const PAGES = { overview, probes, network, explore };

  // ---------- routing, refresh, login

  function currentPage() {
    const name = location.hash.replace(/^#\/?/, '').split('?')[0];
    return PAGES[name] ? name : 'overview';
  }

  function reload() {
    const generation = state.generation;
    for (const load of state.loaders) load(generation);
  }

  async function route() {
    if ($('#page').hidden) return;
    const name = currentPage();
    state.generation += 1;
    state.loaders = [];
    const generation = state.generation;
    for (const a of document.querySelectorAll('nav a')) {
      a.classList.toggle('active', a.dataset.page === name);
    }
    document.title = `weir · ${name}`;
    const main = $('#page');
    main.replaceChildren();
    main.dataset.page = name;
    main.setAttribute('aria-busy', 'true');
    await PAGES[name](main, generation);
    if (generation !== state.generation) return;
    reload();
    main.removeAttribute('aria-busy');
  }

  function setRefresh() {
    clearInterval(state.timer);
    const secs = Number($('#refresh').value);
    state.timer = secs > 0 ? setInterval(reload, secs * 1000) : null;
  }

  function showLogin(why) {
    clearToken();
    clearInterval(state.timer);
    state.generation += 1;
    $('#bar').hidden = true;
    $('#page').hidden = true;
    $('#foot').hidden = true;
    $('#login').hidden = false;
    const error = $('#login-error');
    error.textContent = why || '';
    error.hidden = !why;
    $('#token').focus();
  }

  async function loadDatabases() {
    const answer = await apiJson('/query?q=' + encodeURIComponent('SHOW DATABASES'));
    const series = ((answer.results || [])[0] || {}).series || [];
    state.databases = ((series[0] || {}).values || []).map((v) => v[0]);
    const saved = localStorage.getItem(DB_KEY);
    state.db = state.databases.includes(saved) ? saved
      : state.databases.includes(DEFAULT_DB) ? DEFAULT_DB
        : (state.databases[0] || DEFAULT_DB);
    const names = state.databases.includes(state.db) ? state.databases : [state.db, ...state.databases];
    $('#db').replaceChildren(...names.map((d) => el('option', { value: d, selected: d === state.db }, d)));
  }

  async function enter() {
    try {
      await loadDatabases();
    } catch (e) {
      if (e instanceof AuthError) return;
      showLogin('The server did not answer: ' + e.message);
      return;
    }
    $('#login').hidden = true;
    $('#bar').hidden = false;
    $('#page').hidden = false;
    $('#foot').hidden = false;
    $('#logout').hidden = !AUTH;
    setRefresh();
    route();
  }

  function start() {
    $('#version').textContent = document.body.dataset.version || '';
    $('#login-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const value = $('#token').value.trim();
      if (!value) return;
      saveToken(value, $('#remember').checked);
      $('#token').value = '';
      enter();
    });
    $('#logout').addEventListener('click', () => showLogin(''));
    $('#db').addEventListener('change', (e) => {
      state.db = e.target.value;
      localStorage.setItem(DB_KEY, state.db);
      route();
    });
    $('#range').addEventListener('change', () => {
      const custom = $('#range').value === 'custom';
      $('#custom-range').hidden = !custom;
      if (custom) {
        const r = { end: Math.floor(Date.now() / 1000) };
        r.start = r.end - SPANS['24h'];
        if (!$('#start').value) $('#start').value = toInput(r.start);
        if (!$('#end').value) $('#end').value = toInput(r.end);
        return;
      }
      reload();
    });
    $('#apply-range').addEventListener('click', reload);
    $('#refresh').addEventListener('change', setRefresh);
    $('#reload').addEventListener('click', reload);
    window.addEventListener('hashchange', route);
    if (!AUTH || token()) enter();
    else showLogin('');
  }

  start();
})();
