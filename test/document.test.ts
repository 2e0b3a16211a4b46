import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { buildDocument, buildWorker, type ProcessEntry, toUint, type WorkerSnapshot } from '../src/model/document.ts';
import { formatMinifiedJson, formatUwsgiJson } from '../src/model/format.ts';
import { parseStatus } from '../src/model/parse.ts';
import { RequestTracker } from '../src/model/tracker.ts';
import {
  canonicalAddress,
  findListenQueue,
  parseProcNetTcp,
  readMemorySize,
  readProcFile,
  readVirtualMemorySize,
} from '../src/system/proc.ts';
import { VERSION } from '../src/version.ts';
import { assertAllUint, jsonType } from './support/helpers.ts';

const fixture = (name: string) => readFileSync(new URL(`fixtures/uwsgi-2.0.21-${name}`, import.meta.url), 'utf8');

function snapshot(overrides: Partial<WorkerSnapshot> = {}): WorkerSnapshot {
  return {
    id: 1,
    pid: 1234,
    accepting: true,
    requests: 10,
    deltaRequests: 4,
    exceptions: 1,
    inFlight: 0,
    rss: 1000,
    vsz: 2000,
    heapUsed: 300,
    runningTime: 5000,
    lastSpawn: 1_795_618_028,
    respawnCount: 2,
    tx: 420,
    avgRt: 100,
    requestStart: 0,
    eventLoopUtilization: 12.6,
    eventLoopDelay: 1500.4,
    now: 1_795_618_028_123,
    listen: [{ name: '127.0.0.1:3000', port: 3000, max_queue: 511 }],
    ...overrides,
  };
}

describe('formatUwsgiJson(document)', () => {
  for (const name of ['stats-raw', 'stats-busy-raw', 'stats-queued-raw', 'stats-threads-busy-raw']) {
    it(`should reproduce uWSGI's ${name}.json byte for byte`, () => {
      const raw = fixture(`${name}.json`);
      assert.equal(formatUwsgiJson(JSON.parse(raw)), raw);
    });
  }

  it('should give valid JSON equal to the input for any value: non-finite numbers as null, undefined members left out, arrays in arrays, strings escaped', () => {
    // More distinct keys than the formatter quotes once and keeps (256), so both paths run.
    const many = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`key "${i}"\n`, i]));
    const value = {
      many,
      odd: [Number.NaN, Number.POSITIVE_INFINITY, -0, true, null, 'tab\there'],
      nested: [[1, [2]], []],
      gone: undefined,
    };
    const text = formatUwsgiJson(value);
    assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(value)));
    // Formatting again (keys now quoted from the cache) gives the same text.
    assert.equal(formatUwsgiJson(value), text);
  });

  it("should reproduce uWSGI's --stats-minified output byte for byte", () => {
    const raw = fixture('stats-cheap-minified-raw.json');
    assert.equal(formatMinifiedJson(JSON.parse(raw)), raw);
  });
});

describe('buildWorker(snapshot)', () => {
  it('should give every key of a real uWSGI worker, in order, with the same JSON types', () => {
    const real = JSON.parse(fixture('stats-busy.json')).workers[1];
    const built = buildWorker(snapshot({ inFlight: 1, requestStart: 1_795_618_213 })) as unknown as Record<string, unknown>;
    const ours = Object.keys(built);
    assert.deepEqual(ours.slice(0, Object.keys(real).length), Object.keys(real));
    for (const key of Object.keys(real)) assert.equal(jsonType(built[key]), jsonType(real[key]), key);
    assert.deepEqual(Object.keys((built.apps as object[])[0]), Object.keys(real.apps[0]));
    assert.deepEqual(Object.keys((built.cores as object[])[0]), Object.keys(real.cores[0]));
  });

  it('should say busy with in_request 1 and request_start while a request is in flight', () => {
    const worker = buildWorker(snapshot({ inFlight: 2, requestStart: 1_795_618_213, method: 'GET', uri: '/slow' }));
    assert.equal(worker.status, 'busy');
    assert.equal(worker.in_flight, 2);
    assert.equal(worker.cores[0].in_request, 1);
    assert.deepEqual(worker.cores[0].req_info, { request_start: 1_795_618_213 });
    assert.equal(worker.uri, '/slow');
  });

  it('should say idle, with no method or uri, when nothing is in flight', () => {
    const worker = buildWorker(snapshot({ inFlight: 0, method: 'GET', uri: '/x' }));
    assert.equal(worker.status, 'idle');
    assert.equal(worker.cores[0].in_request, 0);
    assert.deepEqual(worker.cores[0].req_info, {});
    assert.equal(worker.method, undefined);
    assert.equal(worker.uri, undefined);
  });

  it('should turn floats, negatives and NaN into non-negative integers', () => {
    const worker = buildWorker(snapshot({ rss: -5, vsz: Number.NaN, avgRt: 12.7, eventLoopDelay: Number.POSITIVE_INFINITY }));
    assertAllUint(worker);
    assert.equal(worker.rss, 0);
    assert.equal(worker.vsz, 0);
    assert.equal(worker.avg_rt, 13);
    assert.equal(worker.event_loop_utilization, 13);
  });

  it('should carry the same requests and exceptions into apps[0] and cores[0]', () => {
    const worker = buildWorker(snapshot());
    assert.equal(worker.apps[0].requests, 10);
    assert.equal(worker.apps[0].exceptions, 1);
    assert.equal(worker.cores[0].requests, 10);
  });
});

describe('buildDocument(header, workers)', () => {
  const header = {
    version: `wsgi-status/${VERSION}`,
    queues: new Map([['127.0.0.1:3000', { queue: 7 }]]),
    pid: 99,
    uid: 1000,
    gid: 1000,
    cwd: '/srv/app',
  };

  it('should give every top-level key of a real uWSGI document, in order, with the same JSON types', () => {
    const real = JSON.parse(fixture('stats-idle.json'));
    const built = buildDocument(header, [buildWorker(snapshot())]) as unknown as Record<string, unknown>;
    assert.deepEqual(Object.keys(built), Object.keys(real));
    for (const key of Object.keys(real)) assert.equal(jsonType(built[key]), jsonType(real[key]), key);
    assertAllUint(built);
  });

  it('should sort workers by id and list each listening address once, with its measured queue', () => {
    const document = buildDocument(header, [buildWorker(snapshot({ id: 3, pid: 3 })), buildWorker(snapshot({ id: 1, pid: 1 }))]);
    assert.deepEqual(
      document.workers.map((w) => w.id),
      [1, 3],
    );
    assert.equal(document.sockets.length, 1);
    assert.deepEqual(document.sockets[0], {
      name: '127.0.0.1:3000',
      proto: 'http',
      queue: 7,
      max_queue: 511,
      shared: 0,
      can_offload: 0,
    });
    assert.equal(document.listen_queue, 7);
    assert.equal(document.load, 7);
  });

  it('should give an empty workers array, never a missing one, when no worker is alive', () => {
    const document = buildDocument(header, []);
    assert.deepEqual(document.workers, []);
    assert.deepEqual(document.sockets, []);
  });
});

describe('parseStatus(text)', () => {
  const entry = (pid: number, fields: Record<string, unknown> = {}) => ({
    ...{ pid, id: 1, accepting: 1, requests: 10, exceptions: 1, tx: 100, running_time: 1000, in_flight: 0, avg_rt: 5 },
    ...{ rss: 1, vsz: 1, heap_used: 1, event_loop_utilization: 0, event_loop_delay: 0, last_spawn: 1, started_at: 1 },
    ...{ last_update: 1000, interval: 1000, request_start: 0, listen: [], ...fields },
  });
  const ledger = {
    processes: [entry(1234)] as ProcessEntry[],
    slots: [{ id: 1, pid: 1234, respawn_count: 1, requests: 0, exceptions: 0, tx: 0, running_time: 0, cheap_since: 0 }],
  };
  const valid = formatUwsgiJson(
    buildDocument({ version: 'v', queues: new Map(), pid: 1, uid: 0, gid: 0, cwd: '/' }, [buildWorker(snapshot())], ledger),
  );

  it('should read back the ledger the builder wrote, with no problem', () => {
    const parsed = parseStatus(valid);
    assert.equal(parsed.problem, null);
    assert.deepEqual(parsed.processes, ledger.processes);
    assert.deepEqual(parsed.slots, ledger.slots);
  });

  it('should treat an empty file, or a document with no workers and no ledger, as empty, with no problem', () => {
    assert.deepEqual(parseStatus(''), { processes: [], slots: [], problem: null });
    assert.deepEqual(parseStatus('{"workers": []}'), { processes: [], slots: [], problem: null });
  });

  for (const [name, text, problem] of [
    ['garbage', 'not json at all \u0000', 'corrupt'],
    ['truncated JSON', valid.slice(0, valid.length / 2), 'corrupt'],
    ['{"workers": 5}', '{"workers": 5}', 'foreign'],
    ['a JSON array', '[1,2,3]', 'foreign'],
    ['a real uWSGI document', fixture('stats-busy.json'), 'foreign'],
    ['a ledger that is not arrays', '{"workers": [], "processes": {}, "slots": []}', 'foreign'],
  ] as const) {
    it(`should drop everything untrusted in ${name} and say ${problem}`, () => {
      const parsed = parseStatus(text);
      assert.equal(parsed.problem, problem);
      assert.deepEqual(parsed.processes, []);
      assert.deepEqual(parsed.slots, []);
    });
  }

  it('should drop a process entry with a float, a string number or a missing key, and keep the valid one', () => {
    const document = JSON.parse(valid);
    const good = document.processes[0];
    document.processes.push({ ...good, pid: 2, requests: 1.5 });
    document.processes.push({ ...good, pid: 3, requests: '7' });
    const { tx: _tx, ...missing } = good;
    document.processes.push({ ...missing, pid: 4 });
    document.slots.push({ ...document.slots[0], id: 2, requests: -1 });
    const parsed = parseStatus(JSON.stringify(document));
    assert.equal(parsed.problem, 'foreign');
    assert.deepEqual(
      parsed.processes.map((p) => p.pid),
      [1234],
    );
    assert.deepEqual(
      parsed.slots.map((slot) => slot.id),
      [1],
    );
  });

  it("should keep an entry's listen-queue reading, and drop an entry whose reading is malformed", () => {
    const document = JSON.parse(valid);
    const good = document.processes[0];
    const reading = { measured_at: 5000, sockets: [{ name: '127.0.0.1:3000', queue: 2 }] };
    document.processes[0] = { ...good, listen_queues: reading };
    document.processes.push({ ...good, pid: 2, listen_queues: { ...reading, measured_at: -1 } });
    document.processes.push({ ...good, pid: 3, listen_queues: { measured_at: 5000, sockets: [{ name: 3000, queue: 2 }] } });
    document.processes.push({ ...good, pid: 4, listen_queues: { measured_at: 5000 } });
    const parsed = parseStatus(JSON.stringify(document));
    assert.equal(parsed.problem, 'foreign');
    assert.deepEqual(
      parsed.processes.map((p) => [p.pid, p.listen_queues]),
      [[1234, reading]],
    );
  });

  it('should keep the most recently updated of two entries with one pid', () => {
    const document = JSON.parse(valid);
    document.processes.push({ ...document.processes[0], id: 2, last_update: document.processes[0].last_update + 1 });
    const parsed = parseStatus(JSON.stringify(document));
    assert.deepEqual(
      parsed.processes.map((p) => [p.pid, p.id]),
      [[1234, 2]],
    );
  });
});

describe('RequestTracker', () => {
  it("should keep uWSGI's halving average and the running total in microseconds", () => {
    const tracker = new RequestTracker();
    tracker.begin(0);
    tracker.end(100, false); // 100 ms
    assert.equal(tracker.avgRt, 50_000);
    assert.equal(tracker.runningTime, 100_000);
    tracker.begin(0);
    tracker.end(20, true); // 20 ms
    assert.equal(tracker.avgRt, 35_000);
    assert.equal(tracker.runningTime, 120_000);
    assert.equal(tracker.requests, 2);
    assert.equal(tracker.exceptions, 1);
    assert.equal(tracker.inFlight, 0);
  });

  it('should never let in-flight go negative', () => {
    const tracker = new RequestTracker();
    tracker.end(1, false);
    assert.equal(tracker.inFlight, 0);
  });
});

describe('toUint(value)', () => {
  it('should round, clamp at zero and reject non-finite values', () => {
    assert.deepEqual([1.4, 1.5, -3, Number.NaN, Number.POSITIVE_INFINITY, '12', null].map(toUint), [1, 2, 0, 0, 0, 12, 0]);
  });
});

describe('/proc/net/tcp parsing', () => {
  const tcp = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:0BB8 00000000:0000 0A 000001FF:00000014 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0',
    '   1: 0100007F:0BB8 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0',
    '   2: 00000000:1F90 00000000:0000 0A 00000080:00000003 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0',
  ].join('\n');
  const tcp6 = [
    '  sl  local_address                         remote_address                        st tx_queue rx_queue',
    '   0: 00000000000000000000000001000000:0BB9 00000000000000000000000000000000:0000 0A 000001FF:00000002 00:00000000',
  ].join('\n');

  it('should read the LISTEN rows, with rx_queue as the accept queue', () => {
    assert.deepEqual(parseProcNetTcp(tcp, 4), [
      { address: '127.0.0.1', port: 3000, queue: 20 },
      { address: '0.0.0.0', port: 8080, queue: 3 },
    ]);
    assert.deepEqual(parseProcNetTcp(tcp6, 6), [{ address: '0000:0000:0000:0000:0000:0000:0000:0001', port: 3001, queue: 2 }]);
  });

  it('should match an address exactly, then a wildcard on the same port', () => {
    const rows = [...parseProcNetTcp(tcp, 4), ...parseProcNetTcp(tcp6, 6)];
    assert.equal(findListenQueue(rows, '127.0.0.1', 3000)?.queue, 20);
    assert.equal(findListenQueue(rows, '::1', 3001)?.queue, 2);
    assert.equal(findListenQueue(rows, '10.0.0.1', 8080)?.queue, 3);
    assert.equal(findListenQueue(rows, '127.0.0.1', 9999), undefined);
  });

  it('should canonicalise the address forms Node reports', () => {
    assert.equal(canonicalAddress('::'), '0000:0000:0000:0000:0000:0000:0000:0000');
    assert.equal(canonicalAddress('[::1]'), '0000:0000:0000:0000:0000:0000:0000:0001');
    assert.equal(canonicalAddress('::ffff:127.0.0.1'), '0000:0000:0000:0000:0000:ffff:7f00:0001');
    assert.equal(canonicalAddress('/run/app.sock'), null);
  });
});

describe('/proc readers', () => {
  it('should read a small /proc file whole, and null for one that is missing', () => {
    const stat = readProcFile('/proc/self/stat');
    assert.ok(stat?.startsWith(`${process.pid} (`), String(stat));
    assert.equal(readProcFile('/proc/self/cmdline'), readFileSync('/proc/self/cmdline', 'latin1'));
    const status = readProcFile('/proc/self/status');
    assert.match(status ?? '', /^VmSize:/m);
    assert.match(status ?? '', /^voluntary_ctxt_switches:/m, 'the whole file, not a first chunk');
    assert.equal(readProcFile('/proc/self/no-such-file'), null);
  });

  it("should give rss and vsz in bytes, agreeing with Node's rss and with VmSize", () => {
    const memory = readMemorySize();
    const rss = process.memoryUsage.rss();
    assert.ok(Math.abs(memory.rss - rss) < rss * 0.1, `rss ${memory.rss} vs ${rss}`);
    const vsz = readVirtualMemorySize();
    assert.ok(Math.abs(memory.vsz - vsz) < 64 * 1024 * 1024, `vsz ${memory.vsz} vs VmSize ${vsz}`);
    assert.equal(memory.vsz % 4096, 0, 'a whole number of pages');
  });
});

describe('VERSION', () => {
  it("should equal package.json's version", () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    assert.equal(VERSION, pkg.version);
  });
});
