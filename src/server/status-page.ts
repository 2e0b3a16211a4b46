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
import { STATUS_PAGE_SCRIPT } from './status-page-script.js';

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
<script>${STATUS_PAGE_SCRIPT}</script>
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
  `script-src ${cspHash(STATUS_PAGE_SCRIPT)}`,
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
