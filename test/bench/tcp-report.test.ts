// The e2e tcp suite's bookkeeping (bench/e2e/tcp.ts, report.ts): ratios to
// the reference of the same path, MTU and streams; what counts as collapsed;
// the markdown table. No network: the runs are made up.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compare, settle, type TcpReport, type TcpRun, type TcpSystem } from '../../bench/e2e/tcp';
import { median } from '../../bench/e2e/topo';
import { percentile } from '../../bench/e2e/tcp-rr';
import { renderTcpMarkdown, tapCeiling } from '../../bench/e2e/report';

function run(mtu: number, streams: number, receiver: number, extra: Partial<TcpRun> = {}): TcpRun {
  return { mtu, streams, seconds: 5, sender_gbps: receiver, receiver_gbps: receiver, retransmits: 0, ...extra };
}

function sys(id: string, group: 'local' | 'vxlan', runs: TcpRun[], p99?: number): TcpSystem {
  const s: TcpSystem = { id, label: id, family: id.startsWith('ours') || id === 'vx-ours' ? 'ours' : 'linux', group, runs };
  if (p99 !== undefined) s.latency = { size: 64, roundTrips: 1000, min_us: 1, p50_us: p99 / 2, p99_us: p99, p999_us: p99 * 2, max_us: p99 * 3, mtu: 1500 };
  return s;
}

test('ratios are to the same path, MTU and streams of the reference', () => {
  const systems = [
    sys('bridge', 'local', [run(1500, 1, 8), run(1500, 4, 10), run(9000, 1, 16)], 40),
    sys('ours-tap', 'local', [run(1500, 1, 4), run(1500, 4, 12), run(9000, 1, 8)], 60),
    sys('vx-linux', 'vxlan', [run(1500, 1, 2)]),
    sys('vx-ours', 'vxlan', [run(1500, 1, 3)]),
  ];
  compare(systems);
  assert.deepEqual(systems[1]!.runs.map((r) => r.ratio), [0.5, 1.2, 0.5]);
  assert.equal(systems[0]!.runs[0]!.ratio, 1);
  assert.equal(systems[3]!.runs[0]!.ratio, 1.5); // over vx-linux, not over the bridge
  assert.equal(systems[1]!.latency!.ratio_p99, 1.5);
  assert.ok(systems.every((s) => s.runs.every((r) => !r.collapsed)));
});

test('a run below 10% of the reference, a failed run and a zero run are collapsed', () => {
  const systems = [
    sys('bridge', 'local', [run(1500, 1, 8), run(1500, 4, 10)]),
    sys('ours-afpacket', 'local', [run(1500, 1, 0.00025, { retransmits: 115 }), run(1500, 4, 1.01)]),
    sys('ours-afxdp', 'local', [run(1500, 1, 0, { error: 'could not be set up' }), run(9000, 1, 3)]),
  ];
  compare(systems);
  const [p1, p4] = systems[1]!.runs;
  assert.equal(p1!.collapsed, true);
  assert.equal(p1!.ratio, 0); // 0.00003x, rounded
  assert.equal(p4!.collapsed, undefined); // 10.1% of the bridge
  const [failed, jumbo] = systems[2]!.runs;
  assert.equal(failed!.collapsed, true);
  assert.equal(failed!.ratio, undefined); // a failed run has no ratio, only its error
  assert.equal(jumbo!.ratio, undefined); // the bridge has no MTU 9000 run here
  assert.equal(jumbo!.collapsed, undefined);
});

test('no ratio when the reference itself failed', () => {
  const systems = [sys('bridge', 'local', [run(1500, 1, 0, { error: 'iperf3: unable to connect' })]), sys('wire', 'local', [run(1500, 1, 9)])];
  compare(systems);
  assert.equal(systems[1]!.runs[0]!.ratio, undefined);
  assert.equal(systems[1]!.runs[0]!.collapsed, undefined);
  assert.equal(systems[0]!.runs[0]!.collapsed, true);
});

test('the markdown table marks the reference, ratios, collapses and failures', () => {
  const systems = [
    sys('bridge', 'local', [run(1500, 1, 8)], 40),
    sys('ours-afpacket', 'local', [run(1500, 1, 0.00025, { retransmits: 115, switchDrops: { 'pg.oversize': 3 } })], 50),
    sys('ours-afxdp', 'local', [run(1500, 1, 0, { error: 'AF_XDP | no' })]),
  ];
  compare(systems);
  const r: TcpReport = { benchmark: 'e2e-tcp', started: '2026-12-01T00:00:00.000Z', seconds: 60, machine: { cpus: 2 }, note: 'busy machine', method: { seconds: 5 }, systems };
  const md = renderTcpMarkdown(r);
  assert.match(md, /\| local \| bridge \| 1500 \| 1 \| 8\.000 \| 8\.000 \| 0 \| reference \|/);
  assert.match(md, /\| local \| ours-afpacket \| 1500 \| 1 \| 0\.00025 \| 0\.00025 \| 115 \| 0\.00x \| \*\*collapsed\*\*/);
  assert.match(md, /\*\*failed\*\*: AF_XDP \\\| no/); // a | in an error does not break the table
  assert.match(md, /pg\.oversize 3/);
  assert.match(md, /\*\*Note:\*\* busy machine/);
  assert.match(md, /\| local \| ours-afpacket \| 1000 \| 25\.0 \| 50\.0 \| 100 \| 1\.25x \|/);
});

test('percentiles of the request/response samples', () => {
  const s = Array.from({ length: 1000 }, (_, i) => i + 1);
  assert.equal(percentile(s, 0.5), 500);
  assert.equal(percentile(s, 0.99), 990);
  assert.equal(percentile(s, 0.999), 999);
  assert.equal(percentile([], 0.5), 0);
  assert.equal(percentile([7], 0.99), 7);
});

// Interleaved rounds: a system's round i is paired with the reference's
// round i; the run reports medians and the range.
function rounds(mtu: number, streams: number, gbit: Array<number | string>): TcpRun {
  const r: TcpRun = { mtu, streams, seconds: 0, sender_gbps: 0, receiver_gbps: 0, retransmits: 0, rounds: [] };
  for (const g of gbit) {
    r.rounds!.push(typeof g === 'string' ? { seconds: 0, sender_gbps: 0, receiver_gbps: 0, retransmits: 0, error: g } : { seconds: 5, sender_gbps: g, receiver_gbps: g, retransmits: Math.round(g * 10) });
    settle(r);
  }
  return r;
}

test('rounds: medians of the rounds, ratios paired round by round, their median and range', () => {
  // The machine's slow phase hits round 2 of both: paired ratios stay near 0.5.
  const systems = [sys('bridge', 'local', [rounds(1500, 1, [20, 6, 22])]), sys('ours-afpacket', 'local', [rounds(1500, 1, [10, 3.3, 10])])];
  compare(systems);
  const mine = systems[1]!.runs[0]!;
  assert.equal(mine.receiver_gbps, 10);
  assert.equal(mine.retransmits, 100);
  assert.deepEqual(mine.rounds!.map((x) => x.ratio), [0.5, 0.55, 0.455]);
  assert.equal(mine.ratio, 0.5); // not 10 / 20 by chance: the median of the pairs
  assert.equal(mine.ratio_min, 0.455);
  assert.equal(mine.ratio_max, 0.55);
  assert.equal(mine.collapsed, undefined);
  const md = renderTcpMarkdown({ benchmark: 'e2e-tcp', started: '2026-12-01T00:00:00.000Z', seconds: 60, machine: { cpus: 2 }, method: { seconds: 5, rounds: 3 }, systems });
  assert.match(md, /\| local \| ours-afpacket \| 1500 \| 1 \| 10\.00 \(3\.300–10\.00\) \| 10\.00 \| 100 \| 0\.50x \(0\.46–0\.55\) \|/);
  assert.match(md, /3 interleaved rounds/);
});

test('rounds: one round below 10% or failed marks the run; the figures come from the rounds that ran', () => {
  const systems = [
    sys('bridge', 'local', [rounds(1500, 1, [20, 20, 20]), rounds(1500, 4, [20, 20, 20])]),
    sys('ours-tap', 'local', [rounds(1500, 1, [10, 1, 10]), rounds(1500, 4, [10, 'iperf3: unable to connect', 12])]),
    sys('ours-afxdp', 'local', [rounds(1500, 1, ['could not be set up', 'could not be set up', 'x'])]),
  ];
  compare(systems);
  const [p1, p4] = systems[1]!.runs;
  assert.equal(p1!.collapsed, true); // round 2: 5% of the bridge's
  assert.equal(p1!.ratio, 0.5);
  assert.equal(p4!.collapsed, true);
  assert.equal(p4!.failed_rounds, 1);
  assert.equal(p4!.error, undefined);
  assert.equal(p4!.receiver_gbps, 11); // the two rounds that ran: 10 and 12
  const all = systems[2]!.runs[0]!;
  assert.equal(all.error, 'could not be set up; x');
  assert.equal(all.receiver_gbps, 0);
  assert.equal(all.ratio, undefined);
  assert.equal(all.collapsed, true);
  const md = renderTcpMarkdown({ benchmark: 'e2e-tcp', started: '2026-12-01T00:00:00.000Z', seconds: 60, machine: { cpus: 2 }, method: { seconds: 5, rounds: 3 }, systems });
  assert.match(md, /\*\*collapsed\*\* \(a round failed or fell below 10% of the reference's\); 1 of 3 rounds failed: iperf3: unable to connect/);
});

test('tap ports against the tap relay: paired round by round, failed rounds left out, no section without both', () => {
  const systems = [
    sys('bridge', 'local', [rounds(1500, 1, [20, 20, 20]), rounds(1500, 4, [40, 40, 40])]),
    sys('ours-tap', 'local', [rounds(1500, 1, [16, 8, 17]), rounds(1500, 4, [15, 'iperf3: unable to connect', 12])]),
    sys('tap-relay', 'local', [rounds(1500, 1, [16, 10, 17]), rounds(1500, 4, [20, 20, 16])]),
  ];
  compare(systems);
  const r: TcpReport = { benchmark: 'e2e-tcp', started: '2026-12-01T00:00:00.000Z', seconds: 60, machine: { cpus: 2 }, method: { seconds: 5, rounds: 3 }, systems };
  const lines = tapCeiling(r);
  // One stream: 1.0, 0.8, 1.0 -> median 1.0. Four: 0.75 and 0.75 (round 2 failed).
  assert.ok(lines.includes('| 1500 | 1 | 16.00 | 16.00 | 1.00x (0.80–1.00) |'), lines.join('\n'));
  assert.ok(lines.includes('| 1500 | 4 | 13.50 | 20.00 | 0.75x (0.75–0.75) |'), lines.join('\n'));
  assert.match(renderTcpMarkdown(r), /### Tap ports against their ceiling/);
  assert.deepEqual(tapCeiling({ ...r, systems: systems.slice(0, 2) }), []);
});

test('the median of the rounds (shared with the vhost suite)', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([]), 0);
});
