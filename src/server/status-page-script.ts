/**
 * The status page's script (src/server/status-page.ts serves it inline, allowed
 * by its hash in the page's Content-Security-Policy). Plain ES5-style browser
 * JavaScript: it polls the JSON document every second and draws the
 * scoreboard, the table and the charts, writing data only through
 * textContent and attributes, never as HTML.
 */
export const STATUS_PAGE_SCRIPT = String.raw`
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
