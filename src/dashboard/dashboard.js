/* dashboard.js: darner's admin dashboard (docs/operations.md, "The dashboard").
 *
 * Polls stats.json every PERIOD ms (the page's ?period=MS, 2000 by default),
 * keeps the last WINDOW_MS of samples of the busiest queues in memory
 * (bounded), and draws them with Chart.js: depth, oldest-item age, in/out
 * rate and open items of the TOP deepest queues; below, a table of every
 * queue, sorted by a click on any column header. Rates are computed here:
 * in = the rise of total_items, out = the rise of removed_items, a second.
 *
 * window.dashboard exposes the charts and the last sample (for the test). */
(function () {
  'use strict';

  const params = new URLSearchParams(window.location.search);
  const PERIOD = clamp(parseInt(params.get('period'), 10) || 2000, 100, 60000);
  const WINDOW_MS = 10 * 60 * 1000; // history kept and charted
  const MAX_POINTS = 600;           // per queue and metric, whatever the period
  const TOP = 8;                    // queues charted
  const TRACKED = 64;               // queues whose history is kept
  const TICK_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600].map(s => s * 1000); // time axis, ms
  const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];

  const COLUMNS = {
    // key: [value of a row, formatter (value, row), text column]
    name: [r => r.name, s => s, true],
    items: [r => r.items, fmtInt],
    bytes: [r => r.bytes, fmtBytes],
    open: [r => r.open, fmtInt],
    waiters: [r => r.waiters, fmtInt],
    age: [r => r.age, (v, r) => r.items === 0 ? '\u2013' : fmtAge(v)], // an empty queue has no oldest item
    in: [r => r.in, fmtRate],
    out: [r => r.out, fmtRate],
    delayed: [r => r.delayed, fmtInt],
    dead: [r => r.dead, fmtInt],
  };

  const prev = new Map();    // queue -> {t, total, removed}: the last sample, for rates
  const series = new Map();  // queue -> {t: [], items: [], age: [], in: [], out: [], open: []}
  const colorOf = new Map(); // charted queue -> palette index
  let rows = [];             // the table's rows, one per queue of the last sample
  let sortKey = 'items';
  let sortDir = -1;          // -1 descending, 1 ascending
  let lastOk = 0;
  let tickStep = 1000;       // the time axis' step, ms

  const charts = {
    depth: makeChart('chart-depth', 0),
    age: makeChart('chart-age', null),
    // only the "in" lines in the legend: the dashed "out" line has the same color
    rate: makeChart('chart-rate', null, item => !item.text.endsWith(' out')),
    open: makeChart('chart-open', 0),
  };

  window.dashboard = {period: PERIOD, top: TOP, charts: charts, samples: 0, last: null, rows: () => rows};

  function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }

  function num(v) { return typeof v === 'number' && isFinite(v) ? v : null; }

  function fmtInt(v) { return v === null ? '\u2013' : Math.round(v).toLocaleString('en-US'); }

  function fmtBytes(v) {
    if (v === null) return '\u2013';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? String(v) : v.toFixed(v < 10 ? 1 : 0)) + ' ' + units[i];
  }

  function fmtAge(ms) {
    if (ms === null) return '\u2013';
    const s = ms / 1000;
    if (s < 1) return Math.round(ms) + ' ms';
    if (s < 60) return s.toFixed(1) + ' s';
    const two = n => String(Math.floor(n)).padStart(2, '0');
    if (s < 3600) return Math.floor(s / 60) + 'm ' + two(s % 60) + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + two((s % 3600) / 60) + 'm';
    return Math.floor(s / 86400) + 'd ' + two((s % 86400) / 3600) + 'h';
  }

  function fmtRate(v) {
    if (v === null) return '\u2013';
    return v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US');
  }

  function fmtClock(ms) {
    return new Date(ms).toLocaleTimeString('en-GB', {hour12: false});
  }

  /* The time axis' ticks: on whole multiples of tickStep (whole seconds or minutes). */
  function clockTicks(axis) {
    const ticks = [];
    for (let v = Math.ceil(axis.min / tickStep) * tickStep; v <= axis.max; v += tickStep) ticks.push({value: v});
    axis.ticks = ticks;
  }

  function tickLabel(ms) {
    return tickStep >= 60000 ? fmtClock(ms).slice(0, 5) : fmtClock(ms); // HH:MM on whole minutes
  }

  function makeChart(id, precision, legendFilter) {
    const ticks = {};
    if (precision !== null) ticks.precision = precision;
    const labels = {boxWidth: 12, boxHeight: 12};
    if (legendFilter) labels.filter = legendFilter;
    return new Chart(document.getElementById(id), {
      type: 'line',
      data: {datasets: []},
      options: {
        animation: false,
        parsing: false,
        normalized: true,
        responsive: true,
        maintainAspectRatio: false,
        interaction: {mode: 'nearest', axis: 'x', intersect: false},
        elements: {point: {radius: 0, hitRadius: 6, hoverRadius: 3}, line: {borderWidth: 2, tension: 0}},
        scales: {
          x: {type: 'linear', afterBuildTicks: clockTicks, ticks: {callback: tickLabel, maxRotation: 0}},
          y: {beginAtZero: true, ticks: ticks},
        },
        plugins: {
          legend: {position: 'bottom', labels: labels},
          tooltip: {callbacks: {title: items => items.length ? fmtClock(items[0].parsed.x) : ''}},
        },
      },
    });
  }

  /* One queue's row from its stats.json object; rates from the last sample. */
  function rowOf(name, q, t) {
    const total = num(q.total_items), removed = num(q.removed_items);
    const p = prev.get(name);
    let rin = null, rout = null;
    if (p && t > p.t) {
      const dt = (t - p.t) / 1000;
      // a counter that went down was reset (the queue was deleted and made again)
      if (total !== null && p.total !== null && total >= p.total) rin = (total - p.total) / dt;
      if (removed !== null && p.removed !== null && removed >= p.removed) rout = (removed - p.removed) / dt;
    }
    prev.set(name, {t: t, total: total, removed: removed});
    return {
      name: name,
      items: num(q.items),
      bytes: num(q.bytes),
      open: num(q.open_transactions),
      waiters: num(q.waiters),
      age: num(q.oldest_item_age_msec),
      in: rin,
      out: rout,
      delayed: num(q.delayed_items),
      dead: num(q.dead_lettered),
    };
  }

  /* Deepest first; then most open, busiest, and by name, so the order is stable. */
  function byDepth(a, b) {
    return (b.items || 0) - (a.items || 0) || (b.open || 0) - (a.open || 0) ||
      ((b.in || 0) + (b.out || 0)) - ((a.in || 0) + (a.out || 0)) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  }

  function ingest(j, t) {
    const queues = (j && typeof j.queues === 'object' && j.queues) || {};
    rows = Object.keys(queues).map(name => rowOf(name, queues[name] || {}, t));
    const present = new Set(rows.map(r => r.name));
    for (const name of [...prev.keys()]) if (!present.has(name)) prev.delete(name);

    // history of the TRACKED deepest queues only, so memory stays bounded however many queues
    const tracked = rows.slice().sort(byDepth).slice(0, TRACKED);
    const keep = new Set(tracked.map(r => r.name));
    for (const name of [...series.keys()]) if (!keep.has(name)) series.delete(name);
    for (const r of tracked) {
      let s = series.get(r.name);
      if (!s) series.set(r.name, s = {t: [], items: [], age: [], in: [], out: [], open: []});
      s.t.push(t);
      s.items.push(r.items);
      s.age.push(r.age === null ? null : r.age / 1000);
      s.in.push(r.in);
      s.out.push(r.out);
      s.open.push(r.open);
      while (s.t.length > MAX_POINTS || (s.t.length && s.t[0] < t - WINDOW_MS))
        for (const k of Object.keys(s)) s[k].shift();
    }
    window.dashboard.samples++;
    window.dashboard.last = j;
  }

  function points(s, key) {
    const out = new Array(s.t.length);
    for (let i = 0; i < s.t.length; i++) out[i] = {x: s.t[i], y: s[key][i]};
    return out;
  }

  function line(label, name, data, dashed) {
    const color = PALETTE[colorOf.get(name) % PALETTE.length];
    return {label: label, queue: name, data: data, borderColor: color, backgroundColor: color,
            borderDash: dashed ? [6, 4] : [], spanGaps: false};
  }

  function renderCharts(t) {
    const top = rows.slice().sort(byDepth).slice(0, TOP).map(r => r.name);
    // a queue keeps its color while it stays charted
    for (const name of [...colorOf.keys()]) if (!top.includes(name)) colorOf.delete(name);
    const used = new Set(colorOf.values());
    for (const name of top) {
      if (colorOf.has(name)) continue;
      let c = 0;
      while (used.has(c)) c++;
      colorOf.set(name, c);
      used.add(c);
    }
    const shown = top.filter(name => series.has(name));
    charts.depth.data.datasets = shown.map(n => line(n, n, points(series.get(n), 'items')));
    charts.age.data.datasets = shown.map(n => line(n, n, points(series.get(n), 'age')));
    charts.open.data.datasets = shown.map(n => line(n, n, points(series.get(n), 'open')));
    charts.rate.data.datasets = [];
    for (const n of shown) {
      charts.rate.data.datasets.push(line(n + ' in', n, points(series.get(n), 'in')));
      charts.rate.data.datasets.push(line(n + ' out', n, points(series.get(n), 'out'), true));
    }
    let first = t;
    for (const n of shown) first = Math.min(first, series.get(n).t[0]);
    const min = Math.min(first, t - 10 * PERIOD);
    // 6 ticks at most (clockTicks)
    tickStep = TICK_STEPS.find(s => (t - min) / s <= 6) || TICK_STEPS[TICK_STEPS.length - 1];
    for (const c of Object.values(charts)) {
      c.options.scales.x.min = min;
      c.options.scales.x.max = t;
      c.update('none');
    }
    document.getElementById('charted').textContent = rows.length > TOP
      ? 'Charts: the ' + TOP + ' deepest of ' + rows.length.toLocaleString('en-US') + ' queues.'
      : '';
  }

  function compare(a, b) {
    const get = COLUMNS[sortKey][0];
    const va = get(a), vb = get(b);
    if (va === vb) return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
    if (va === null) return 1; // no value: last, whichever the direction
    if (vb === null) return -1;
    return (va < vb ? -1 : 1) * sortDir;
  }

  function renderTable() {
    const body = document.querySelector('#queues-table tbody');
    const frag = document.createDocumentFragment();
    for (const r of rows.slice().sort(compare)) {
      const tr = document.createElement('tr');
      tr.dataset.queue = r.name;
      for (const key of Object.keys(COLUMNS)) {
        const [get, fmt, text] = COLUMNS[key];
        const v = get(r);
        const td = document.createElement('td');
        td.dataset.key = key;
        if (text) {
          td.className = 'text';
          if (colorOf.has(r.name)) {
            const sw = document.createElement('span');
            sw.className = 'swatch';
            sw.style.background = PALETTE[colorOf.get(r.name) % PALETTE.length];
            td.appendChild(sw);
          }
          td.appendChild(document.createTextNode(v));
        } else {
          td.dataset.value = v === null ? '' : String(Math.round(v * 1000) / 1000);
          td.textContent = fmt(v, r);
          if (v === 0 || v === null) td.className = 'zero';
          else if (key === 'dead') td.className = 'alert';
          if (key === 'bytes' && v !== null) td.title = v.toLocaleString('en-US') + ' bytes';
        }
        tr.appendChild(td);
      }
      frag.appendChild(tr);
    }
    body.replaceChildren(frag);
    document.getElementById('no-queues').hidden = rows.length > 0;
    for (const th of document.querySelectorAll('#queues-table th')) {
      if (th.dataset.key === sortKey) th.setAttribute('aria-sort', sortDir < 0 ? 'descending' : 'ascending');
      else th.removeAttribute('aria-sort');
    }
  }

  function setText(id, text) { document.getElementById(id).textContent = text; }

  function fmtUptime(s) {
    if (s === null) return '\u2013';
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
    return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
  }

  function setStatus(text, cls) {
    const el = document.getElementById('status');
    el.textContent = text;
    el.className = 'pill ' + cls;
  }

  function renderServer(j, t) {
    const s = (j && typeof j.server === 'object' && j.server) || {};
    const status = typeof s.status === 'string' ? s.status.toLowerCase() : 'unknown';
    setStatus(status, status === 'up' ? 'ok' : status === 'unknown' ? '' : 'warn');
    setText('version', typeof s.version === 'string' ? s.version : '\u2013');
    setText('uptime', fmtUptime(num(s.uptime)));
    setText('connections', fmtInt(num(s.curr_connections)));
    setText('items', fmtInt(num(s.curr_items)));
    setText('total-items', fmtInt(num(s.total_items)));
    setText('queues', fmtInt(num(s.queues)));
    setText('updated', 'updated ' + fmtClock(t) + ', every ' + PERIOD / 1000 + ' s');
  }

  function setError(err, t) {
    const box = document.getElementById('error');
    if (!err) {
      box.hidden = true;
      document.body.classList.remove('stale');
      return;
    }
    box.hidden = false;
    box.textContent = 'Cannot read stats.json: ' + err.message +
      (lastOk ? '; the numbers below are from ' + fmtClock(lastOk) + ' (' +
                Math.round((t - lastOk) / 1000) + ' s ago)' : '');
    document.body.classList.add('stale');
    setStatus('unreachable', 'bad');
  }

  async function poll() {
    const started = Date.now();
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), Math.max(PERIOD, 5000));
    try {
      const r = await fetch('stats.json', {cache: 'no-store', signal: ctl.signal});
      if (!r.ok) throw new Error('HTTP ' + r.status);
      const j = await r.json();
      const t = Date.now();
      ingest(j, t);
      renderServer(j, t);
      renderCharts(t);
      renderTable();
      lastOk = t;
      setError(null);
    } catch (e) {
      setError(e.name === 'AbortError' ? new Error('no answer') : e, Date.now());
    } finally {
      clearTimeout(timer);
      setTimeout(poll, Math.max(0, PERIOD - (Date.now() - started)));
    }
  }

  for (const th of document.querySelectorAll('#queues-table th')) {
    th.addEventListener('click', () => {
      const key = th.dataset.key;
      if (key === sortKey) sortDir = -sortDir;
      else {
        sortKey = key;
        sortDir = COLUMNS[key][2] ? 1 : -1; // names A to Z, numbers largest first
      }
      renderTable();
    });
  }

  poll();
})();
