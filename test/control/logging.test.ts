// Log rate limiting: a flood of events of one kind is cut to the bucket and
// summarized in one "suppressed N" line; other kinds are not affected.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger, EventLogger, RateLimiter, resolveLogFormat } from '../../src/control/logging';

test('token bucket per key: burst, refill, suppressed counts', () => {
  let now = 0;
  const r = new RateLimiter({ burst: 3, ratePerSecond: 2, summaryMs: 1000 }, () => now);
  assert.deepEqual([1, 2, 3, 4, 5].map(() => r.take('moved')), [true, true, true, false, false]);
  assert.equal(r.take('link'), true, 'another kind has its own bucket');
  now += 1000; // two tokens back
  assert.deepEqual([1, 2, 3].map(() => r.take('moved')), [true, true, false]);
  assert.deepEqual(r.drainSuppressed(), { moved: 3 });
  assert.deepEqual(r.drainSuppressed(), {});
});

test('a MAC-move storm is logged as JSON lines, rate-limited, with a summary', () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l !== '') lines.push(JSON.parse(l));
      cb();
    },
  });
  const log = createLogger('info', sink);
  const ev = new EventLogger(log, { burst: 5, ratePerSecond: 1, summaryMs: 60_000 });
  for (let i = 0; i < 1000; i++) ev.event({ type: 'moved', switch: 'a', port: 'p1', oldPort: 'p2', vlan: 0, oldVlan: 0, mac: '02:00:00:00:00:01' });
  ev.event({ type: 'link', port: 'p1', up: false });
  ev.event({ type: 'learned', switch: 'a', port: 'p1', vlan: 0, mac: '02:00:00:00:00:02' }); // debug: not at info
  ev.close();
  const moved = lines.filter((l) => l.event === 'moved' && l.msg === 'mac moved');
  assert.equal(moved.length, 5);
  assert.equal(moved[0]!.level, 'info');
  assert.equal(moved[0]!.oldPort, 'p2');
  assert.ok(lines.some((l) => l.event === 'link' && l.up === false && l.msg === 'port link state changed'));
  const summary = lines.find((l) => l.suppressed !== undefined);
  assert.deepEqual([summary?.event, summary?.suppressed, summary?.level], ['moved', 995, 'warn']);
  assert.match(String(summary?.msg), /suppressed 995 moved events/);
  assert.equal(lines.filter((l) => l.event === 'learned').length, 0);
});

test('log format: auto is pretty on a terminal and JSON otherwise; pretty lines are human-readable', () => {
  assert.equal(resolveLogFormat('auto', true), 'pretty');
  assert.equal(resolveLogFormat('auto', false), 'json');
  assert.equal(resolveLogFormat('auto', undefined), 'json');
  assert.equal(resolveLogFormat('json', true), 'json');
  assert.equal(resolveLogFormat('pretty', false), 'pretty');

  let text = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  });
  const log = createLogger('info', sink, 'pretty');
  log.info({ socket: '/run/vpc/vpcd.sock' }, 'vpcd ready');
  log.warn({ port: 'p1' }, 'tap port without io_uring batching');
  const lines = text.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 2, text);
  assert.throws(() => JSON.parse(lines[0]!), 'not JSON');
  assert.match(lines[0]!, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: vpcd ready \{"socket":"\/run\/vpc\/vpcd\.sock"\}$/);
  assert.match(lines[1]!, /WARN: tap port without io_uring batching \{"port":"p1"\}$/);
  assert.doesNotMatch(text, /\x1b\[/, 'no colours when the destination is not a terminal');
});
