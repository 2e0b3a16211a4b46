/**
 * `GET /status` on the HTTP stats server (issue 16): one self-contained page
 * that polls the JSON document from the same server every second and shows
 * a scoreboard (like Apache's server-status), a row per worker and charts of
 * the last five minutes. It renders in the browser, so serving it costs the
 * stats server one constant string, and the request path nothing.
 *
 * No request leaves the page's origin (apps run behind firewalls, and a CDN
 * would see who watches what): no library, no font, no image; the charts are
 * hand-written SVG. The Content-Security-Policy says so to the browser: only
 * `connect-src 'self'`, and the inline script and style allowed by their
 * SHA-256 hashes rather than 'unsafe-inline', so an injected script could not
 * run even if text from the document (request paths are user input) ever
 * reached markup. It never does: the script writes data with textContent and
 * setAttribute only.
 *
 * The script and style are kept ASCII (non-ASCII as \u escapes) and free of
 * `${`, so the hashes computed here are over exactly the bytes sent.
 */
import { createHash } from 'node:crypto';
import type { HttpRoute } from './routes.js';

const STYLE = `
:root{--fg:#1d2127;--mut:#5c6370;--bg:#f6f7f9;--card:#fff;--line:#dde1e6;--busy:#e8590c;--idle:#2b8a3e;--cheap:#adb5bd;--stuck:#c92a2a;--other:#5f3dc4;--chart:#1c7ed6}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 12px;padding:10px 16px;background:var(--card);border-bottom:1px solid var(--line)}
h1{font-size:18px;margin:0}
h2{font-size:14px;margin:0 0 8px;color:var(--mut);text-transform:uppercase;letter-spacing:.04em}
#where{color:var(--mut);overflow-wrap:anywhere}
#pill{margin-left:auto;padding:1px 10px;border-radius:10px;font-weight:600;background:var(--cheap);color:#fff}
#pill.live{background:var(--idle)}#pill.down{background:var(--stuck)}
#down{margin:12px 16px 0;padding:10px 14px;border-radius:6px;background:#fff0f0;border:1px solid var(--stuck);color:var(--stuck);font-weight:600}
main{padding:12px 16px;display:grid;gap:12px;max-width:1400px}
main.stale{opacity:.55}
section{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:12px;min-width:0}
#summary{display:flex;flex-wrap:wrap;gap:8px 24px}
#summary div{display:flex;flex-direction:column}
#summary b{font-size:20px;font-variant-numeric:tabular-nums}
#summary span,.legend,figcaption span,.axis,footer{color:var(--mut);font-size:12px}
#board{display:grid;grid-template-columns:repeat(auto-fill,minmax(104px,1fr));gap:6px}
.cell{border-radius:5px;padding:6px 8px;color:#fff;background:var(--other);min-width:0}
.cell b{display:block;font-size:16px}.cell span{display:block;font-size:12px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.busy{background:var(--busy)}.idle{background:var(--idle)}.cheap{background:var(--cheap)}.stuck{background:var(--stuck)}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;margin-top:8px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
#charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(250px,1fr));gap:12px}
figure{margin:0;min-width:0}
figcaption{display:flex;justify-content:space-between;gap:8px;font-weight:600}
svg{display:block;width:100%;height:80px;background:#f8f9fb;border:1px solid var(--line);border-radius:4px}
svg .area{fill:var(--chart);fill-opacity:.15;stroke:none}svg .line{fill:none;stroke:var(--chart);stroke-width:1.5;vector-effect:non-scaling-stroke}
.axis{display:flex;justify-content:space-between}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:4px 6px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{font-size:12px;color:var(--mut);font-weight:600}
th:nth-child(-n+3),td:nth-child(-n+3),th:last-child,td:last-child{text-align:left}
td:last-child{max-width:320px;overflow:hidden;text-overflow:ellipsis}
td.state{font-weight:600}td.state.busy{color:var(--busy)}td.state.idle{color:var(--idle)}td.state.cheap{color:var(--mut)}td.state.stuck{color:var(--stuck)}
td.state{background:none}
#empty{color:var(--mut)}
footer{padding:0 16px 16px}
@media (max-width:900px){
 header{padding:8px 12px}main{padding:8px 12px}#down{margin:8px 12px 0}
 thead{display:none}
 table,tbody,tr,td{display:block;width:100%}
 tr{border:1px solid var(--line);border-radius:5px;margin-bottom:8px;padding:4px 8px}
 tr{display:grid;grid-template-columns:1fr 1fr;column-gap:16px}
 td{display:flex;justify-content:space-between;gap:8px;border:0;padding:2px 0;white-space:normal;text-align:right!important;min-width:0}
 td::before{content:attr(data-label);color:var(--mut);font-weight:400;white-space:nowrap;text-align:left}
 td:last-child{grid-column:1/-1;max-width:none;overflow-wrap:anywhere}
 td:last-child:empty{display:none}
}
`;

const SCRIPT = String.raw`
'use strict';
(function () {
  var POLL_MS = 1000, TIMEOUT_MS = 2500, MIN_WINDOW_MS = 60 * 1000, WINDOW_MS = 5 * 60 * 1000, SKEW_SAMPLES = 60;
  // The JSON document is what every path but /status and /metrics answers; './' keeps a proxy's prefix.
  var source = new URL('./', location.href).href;
  var $ = function (id) { return document.getElementById(id); };
  var previous = null, history = [], seen = {}, skews = [], lastOk = null, downSince = null;
  var COLUMNS = [
    ['id', 'id'], ['pid', 'pid'], ['state', 'state'], ['requests', 'requests'], ['rate', 'req/s'],
    ['in_flight', 'in-flight'], ['avg_rt', 'avg time'], ['exceptions', 'exceptions'], ['rss', 'RSS'],
    ['heap_used', 'heap'], ['elu', 'loop util.'], ['delay', 'loop delay'], ['current', 'current request']
  ];

  function num(value) { return typeof value === 'number' && isFinite(value) ? value : 0; }
  function integer(value) { return Math.round(num(value)).toLocaleString('en-US'); }
  function bytes(value) {
    var v = num(value);
    if (v >= 1073741824) return (v / 1073741824).toFixed(2) + ' GiB';
    if (v >= 1048576) return (v / 1048576).toFixed(1) + ' MiB';
    return (v / 1024).toFixed(0) + ' KiB';
  }
  function micros(value) {
    var v = num(value);
    if (v >= 1000000) return (v / 1000000).toFixed(2) + ' s';
    if (v >= 1000) return (v / 1000).toFixed(1) + ' ms';
    return Math.round(v) + ' \u00b5s';
  }
  function rate(value) { return value === null ? '\u2013' : value < 10 ? value.toFixed(1) : Math.round(value).toLocaleString('en-US'); }
  function clock(ms) { return new Date(ms).toLocaleTimeString([], { hour12: false }); }
  function text(id, value) { var node = $(id); if (node.textContent !== value) node.textContent = value; }

  // Clock skew between the server and this browser: last_update is the server's
  // clock. The freshest entry is at most one interval old, so the largest
  // (last_update - now) seen recently is a lower bound of the skew that
  // underestimates ages, never overestimates them (no false "stuck").
  function serverNow(workers, now) {
    var newest = 0;
    workers.forEach(function (w) { if (num(w.pid) > 0) newest = Math.max(newest, num(w.last_update)); });
    if (newest > 0) { skews.push(newest - now); if (skews.length > SKEW_SAMPLES) skews.shift(); }
    return skews.length ? now + Math.max.apply(null, skews) : now;
  }

  // The write interval is not in the document: it is the typical gap between
  // two values of a worker's last_update (an overestimate when it is shorter
  // than the poll period, which only makes "stuck" later, never wrong).
  function writeInterval(workers) {
    var gaps = [], kept = {};
    workers.forEach(function (w) {
      var key = w.id + ':' + w.pid, entry = seen[key], lu = num(w.last_update);
      if (!entry) entry = { lu: lu, gap: 0 };
      else if (lu > entry.lu) { entry.gap = lu - entry.lu; entry.lu = lu; }
      kept[key] = entry;
      if (entry.gap > 0) gaps.push(entry.gap);
    });
    seen = kept; // processes that are gone are forgotten
    if (!gaps.length) return 1000;
    gaps.sort(function (a, b) { return a - b; });
    return gaps[Math.floor(gaps.length / 2)];
  }

  // uWSGI's states, plus "stuck": a live pid whose entry missed writes for 1.5 intervals (DESIGN.md).
  function stateOf(w, now, interval) {
    if (w.status === 'cheap' || num(w.pid) === 0) return 'cheap';
    if (num(w.last_update) > 0 && now - w.last_update > 1.5 * interval) return 'stuck';
    if (w.status === 'busy' || w.status === 'idle') return w.status;
    return typeof w.status === 'string' ? w.status : 'unknown';
  }

  function sync(container, tag, keys, create) {
    var byKey = {};
    Array.prototype.forEach.call(container.children, function (child) { byKey[child.dataset.key] = child; });
    keys.forEach(function (key, index) {
      var node = byKey[key];
      delete byKey[key];
      if (!node) { node = document.createElement(tag); node.dataset.key = key; create(node); }
      if (container.children[index] !== node) container.insertBefore(node, container.children[index] || null);
    });
    Object.keys(byKey).forEach(function (key) { container.removeChild(byKey[key]); });
  }

  function update(doc, now) {
    var workers = doc.workers.filter(function (w) { return w !== null && typeof w === 'object'; });
    workers.sort(function (a, b) { return num(a.id) - num(b.id); });
    var reference = serverNow(workers, now), interval = writeInterval(workers);
    var seconds = previous ? (now - previous.at) / 1000 : 0, counts = {}, total = 0, rates = {}, totalRate = null, used = {};
    workers.forEach(function (w) {
      // uWSGI lists cheaped workers with id 0, several of them: keys must stay unique.
      var key = String(num(w.id));
      used[key] = (used[key] || 0) + 1;
      w.key = used[key] > 1 ? key + '#' + used[key] : key;
      var state = stateOf(w, reference, interval), before = previous && previous.requests[w.key];
      w.state = state;
      counts[state] = (counts[state] || 0) + 1;
      total += num(w.requests);
      rates[w.key] = null;
      if (seconds > 0 && typeof before === 'number') {
        rates[w.key] = Math.max(0, num(w.requests) - before) / seconds;
        totalRate = (totalRate || 0) + rates[w.key];
      }
    });
    previous = { at: now, requests: {} };
    workers.forEach(function (w) { previous.requests[w.key] = num(w.requests); });
    var busy = (counts.busy || 0) + (counts.stuck || 0);
    history.push({ t: now, rps: totalRate, busy: busy, queue: num(doc.listen_queue) });
    while (history.length && history[0].t < now - WINDOW_MS) history.shift();

    text('version', typeof doc.version === 'string' ? doc.version : '');
    text('s-workers', String(workers.length));
    ['busy', 'idle', 'cheap', 'stuck'].forEach(function (s) { text('s-' + s, String(counts[s] || 0)); });
    text('s-rate', rate(totalRate));
    text('s-requests', integer(total));
    text('s-queue', integer(doc.listen_queue));
    document.title = 'wsgi-status \u00b7 ' + busy + '/' + workers.length + ' busy';
    $('empty').hidden = workers.length > 0;

    var keys = workers.map(function (w) { return w.key; });
    sync($('board'), 'div', keys, function (cell) {
      cell.appendChild(document.createElement('b'));
      cell.appendChild(document.createElement('span'));
      cell.appendChild(document.createElement('span'));
      cell.appendChild(document.createElement('span'));
    });
    sync($('rows'), 'tr', keys, function (row) {
      COLUMNS.forEach(function (column) {
        var cell = document.createElement('td');
        cell.dataset.field = column[0];
        cell.setAttribute('data-label', column[1]);
        row.appendChild(cell);
      });
    });
    workers.forEach(function (w, index) {
      var cell = $('board').children[index], row = $('rows').children[index];
      var current = w.state === 'busy' || w.state === 'stuck' ? [w.method, w.uri].filter(function (s) { return typeof s === 'string'; }).join(' ') : '';
      cell.className = 'cell ' + w.state;
      cell.dataset.state = w.state;
      cell.dataset.pid = String(num(w.pid));
      cell.children[0].textContent = String(num(w.id));
      cell.children[1].textContent = num(w.pid) ? 'pid ' + num(w.pid) : 'no process';
      cell.children[2].textContent = w.state;
      cell.children[3].textContent = current || '\u00a0';
      cell.title = 'worker ' + num(w.id) + ': ' + w.state + (current ? ', ' + current : '');
      var values = {
        id: String(num(w.id)), pid: String(num(w.pid)), state: w.state, requests: integer(w.requests),
        rate: rate(rates[w.key]), in_flight: integer(w.in_flight), avg_rt: micros(w.avg_rt), exceptions: integer(w.exceptions),
        rss: bytes(w.rss), heap_used: bytes(w.heap_used), elu: (num(w.event_loop_utilization) / 10).toFixed(1) + ' %',
        delay: micros(w.event_loop_delay), current: current
      };
      Array.prototype.forEach.call(row.children, function (td) {
        var value = values[td.dataset.field];
        if (td.textContent !== value) td.textContent = value;
      });
      row.children[2].className = 'state ' + w.state;
      row.lastChild.title = current;
    });
    // The charts span the history kept, at least a minute and at most five.
    var span = Math.min(WINDOW_MS, Math.max(MIN_WINDOW_MS, history.length ? now - history[0].t : 0));
    var since = '\u2212' + (span >= 90000 ? Math.round(span / 60000) + ' min' : Math.round(span / 1000) + ' s');
    Array.prototype.forEach.call(document.querySelectorAll('.since'), function (node) { node.textContent = since; });
    chart('rps', function (p) { return p.rps; }, 1, rate, span);
    chart('busy', function (p) { return p.busy; }, Math.max(1, workers.length), String, span);
    chart('queue', function (p) { return p.queue; }, 1, String, span);
  }

  // A line and its area over the last span ms; null points (no answer) break the line.
  function chart(name, pick, floor, format, span) {
    var now = Date.now(), max = floor, line = '', area = '', run = [];
    history.forEach(function (p) { var v = pick(p); if (typeof v === 'number') max = Math.max(max, v); });
    var flush = function () {
      if (!run.length) return;
      line += 'M' + run.join('L');
      area += 'M' + run[0].split(',')[0] + ',60L' + run.join('L') + 'L' + run[run.length - 1].split(',')[0] + ',60Z';
      run = [];
    };
    history.forEach(function (p) {
      var v = pick(p);
      if (typeof v !== 'number') { flush(); return; }
      var x = Math.max(0, 300 - (now - p.t) / span * 300), y = 59 - (v / max) * 55;
      run.push(x.toFixed(1) + ',' + y.toFixed(1));
    });
    flush();
    var svg = $('c-' + name);
    svg.children[0].setAttribute('d', area);
    svg.children[1].setAttribute('d', line);
    var last = history.length ? pick(history[history.length - 1]) : null;
    text('n-' + name, (typeof last === 'number' ? format(last) : '\u2013') + ' (max ' + format(max) + ')');
  }

  function showState() {
    var pill = $('pill'), banner = $('down');
    if (downSince === null) {
      pill.className = 'live';
      pill.textContent = 'live';
      banner.hidden = true;
      $('main').className = '';
      text('updated', lastOk === null ? '' : 'updated ' + clock(lastOk));
      return;
    }
    pill.className = 'down';
    pill.textContent = 'not reachable';
    banner.hidden = false;
    $('main').className = lastOk === null ? '' : 'stale';
    text('down', 'Not reachable since ' + clock(downSince) + ' (' + Math.round((Date.now() - downSince) / 1000) + ' s): ' +
      downReason + '. Retrying every second' + (lastOk === null ? '.' : '; the figures below are from ' + clock(lastOk) + '.'));
  }

  var downReason = '';
  function poll() {
    var started = Date.now(), controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, TIMEOUT_MS);
    fetch(source, { cache: 'no-store', credentials: 'omit', redirect: 'error', signal: controller.signal })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.json();
      })
      .then(function (doc) {
        if (!doc || !Array.isArray(doc.workers)) throw new Error('the answer is not a stats document');
        lastOk = Date.now();
        if (downSince !== null) history.push({ t: downSince, rps: null, busy: null, queue: null });
        downSince = null;
        update(doc, lastOk);
      })
      .catch(function (error) {
        if (downSince === null) downSince = started;
        downReason = error && error.name === 'AbortError' ? 'no answer within ' + TIMEOUT_MS / 1000 + ' s' : String(error && error.message || error);
      })
      .then(function () {
        clearTimeout(timer);
        showState();
        setTimeout(poll, Math.max(0, started + POLL_MS - Date.now()));
      });
  }

  text('where', location.host);
  poll();
})();
`;

/** `'sha256-...'`, a CSP source matching an inline element whose content is exactly `text`. */
function cspHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** The page, byte for byte the same on every answer (the data comes from polling). */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wsgi-status</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header><h1>wsgi-status</h1><span id="where"></span><span id="version"></span><span id="pill">connecting</span></header>
<div id="down" role="alert" hidden></div>
<main id="main">
<section id="summary" aria-label="summary">
<div><b id="s-workers">&ndash;</b><span>workers</span></div>
<div><b id="s-busy">&ndash;</b><span>busy</span></div>
<div><b id="s-idle">&ndash;</b><span>idle</span></div>
<div><b id="s-cheap">&ndash;</b><span>cheap</span></div>
<div><b id="s-stuck">&ndash;</b><span>stuck</span></div>
<div><b id="s-rate">&ndash;</b><span>req/s</span></div>
<div><b id="s-requests">&ndash;</b><span>requests</span></div>
<div><b id="s-queue">&ndash;</b><span>listen queue</span></div>
</section>
<section>
<h2>Scoreboard</h2>
<div id="board"></div>
<p id="empty" hidden>No worker in the document.</p>
<div class="legend"><span><i class="busy"></i>busy: a request in flight</span><span><i class="idle"></i>idle</span><span><i class="cheap"></i>cheap: no process in the slot</span><span><i class="stuck"></i>stuck: alive but not written for 1.5 intervals</span></div>
</section>
<section id="charts">
<figure><figcaption>Requests/s<span id="n-rps"></span></figcaption><svg id="c-rps" viewBox="0 0 300 60" preserveAspectRatio="none" aria-hidden="true"><path class="area"/><path class="line"/></svg><div class="axis"><span class="since"></span><span>now</span></div></figure>
<figure><figcaption>Busy workers<span id="n-busy"></span></figcaption><svg id="c-busy" viewBox="0 0 300 60" preserveAspectRatio="none" aria-hidden="true"><path class="area"/><path class="line"/></svg><div class="axis"><span class="since"></span><span>now</span></div></figure>
<figure><figcaption>Listen queue<span id="n-queue"></span></figcaption><svg id="c-queue" viewBox="0 0 300 60" preserveAspectRatio="none" aria-hidden="true"><path class="area"/><path class="line"/></svg><div class="axis"><span class="since"></span><span>now</span></div></figure>
</section>
<section>
<h2>Workers</h2>
<table><thead><tr><th>id</th><th>pid</th><th>state</th><th>requests</th><th>req/s</th><th>in-flight</th><th>avg time</th><th>exceptions</th><th>RSS</th><th>heap</th><th>loop util.</th><th>loop delay</th><th>current request</th></tr></thead><tbody id="rows"></tbody></table>
</section>
</main>
<footer>Polled every second from this server's JSON document; <span id="updated"></span></footer>
<script>${SCRIPT}</script>
</body>
</html>
`;

/**
 * Nothing from any other origin: only fetches to this server, and only this
 * page's own script and style (by hash). The favicon is `data:,` so that the
 * browser asks for no /favicon.ico (which would answer JSON).
 */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  "connect-src 'self'",
  `script-src ${cspHash(SCRIPT)}`,
  `style-src ${cspHash(STYLE)}`,
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The `/status` route of {@link HTTP_ROUTES}. */
export const STATUS_PAGE: HttpRoute = {
  contentType: 'text/html; charset=utf-8',
  headers: {
    'Content-Security-Policy': STATUS_PAGE_CSP,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
  },
  body: () => STATUS_PAGE_HTML,
};
