// What the benchmark reports compare (bench/e2e/report.ts, tcp.ts, vhost.ts).
// A run with --only keeps the other systems of the last results
// (bench/e2e/main.ts). No ratio may pair figures from two runs: each kept
// system says which run measured it (`mergeRuns`), and every table and goal
// that divides one system's figure by another's checks `sameRun` first. The
// packet suites' goals judge latency for each backend of this switch.
// No network: the results are made up.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compare, type TcpReport, type TcpRun, type TcpSystem } from '../../bench/e2e/tcp';
import { mergeRuns, sameRun } from '../../bench/e2e/topo';
import { renderMarkdown, renderTcpMarkdown, tapCeiling } from '../../bench/e2e/report';
import { renderVhostMarkdown, vhostCompare, type VhostReport, type VhostSystemResult } from '../../bench/e2e/vhost';
import type { SuiteResult, SystemResult, TrafgenResult } from '../../bench/e2e/main';

const OLD = '2026-12-02T13:44:26.233Z';
const OLDER = '2026-11-30T09:00:00.000Z';

function run(mtu: number, streams: number, rounds: number[]): TcpRun {
  const rs = rounds.map((g) => ({ mtu, streams, seconds: 5, sender_gbps: g, receiver_gbps: g, retransmits: 0 }));
  return { mtu, streams, seconds: 5, sender_gbps: rounds[1]!, receiver_gbps: rounds[1]!, retransmits: 0, rounds: rs };
}

function tsys(id: string, runs: TcpRun[]): TcpSystem {
  return { id, label: id, family: id.startsWith('ours') ? 'ours' : 'linux', group: 'local', runs };
}

test('mergeRuns: fresh systems replace old ones in place, new ones come last, kept ones say which run measured them', () => {
  const prev = [{ id: 'bridge' }, { id: 'ours-tap', from: OLDER }, { id: 'wire' }];
  const fresh = [{ id: 'wire' }, { id: 'tap-relay' }];
  const merged = mergeRuns(prev, fresh, OLD);
  assert.deepEqual(merged, [{ id: 'bridge', from: OLD }, { id: 'ours-tap', from: OLDER }, { id: 'wire' }, { id: 'tap-relay' }]);
  assert.equal(merged[2], fresh[0]); // this run's own object
  assert.equal(prev[0]!.from, undefined); // the old results are not changed
  assert.ok(sameRun(merged[2]!, merged[3]!));
  assert.ok(!sameRun(merged[0]!, merged[2]!));
  assert.ok(!sameRun(merged[0]!, merged[1]!)); // kept, but from two different runs
});

test('tcp: a kept system keeps the ratio its own run gave it; a fresh one without its reference in this run has none', () => {
  // The last whole run: bridge 20, tap 10 (0.5x), relay 16.
  const last = [tsys('bridge', [run(1500, 4, [20, 20, 20])]), tsys('ours-tap', [run(1500, 4, [10, 10, 10])]), tsys('tap-relay', [run(1500, 4, [16, 16, 16])])];
  compare(last);
  assert.equal(last[1]!.runs[0]!.ratio, 0.5);
  // A partial run of the bridge alone, on a quieter machine: 40.
  const fresh = [tsys('bridge', [run(1500, 4, [40, 40, 40])])];
  const merged = mergeRuns(last, fresh, OLD);
  compare(merged);
  assert.equal(merged[1]!.runs[0]!.ratio, 0.5, 'not 10 / 40');
  assert.equal(merged[1]!.from, OLD);
  // A partial run of the tap ports alone: no reference of this run, no ratio.
  const fresh2 = [tsys('ours-tap', [run(1500, 4, [12, 12, 12])])];
  const merged2 = mergeRuns(last, fresh2, OLD);
  compare(merged2);
  assert.equal(merged2[1]!.runs[0]!.ratio, undefined);
  assert.equal(merged2[1]!.runs[0]!.collapsed, undefined);
  const r: TcpReport = { benchmark: 'e2e-tcp', started: '2026-12-03T00:00:00.000Z', seconds: 60, machine: { cpus: 2 }, method: { seconds: 5, rounds: 3 }, systems: merged2 };
  const md = renderTcpMarkdown(r);
  assert.match(md, /\| local \| bridge \| 1500 \| 4 \| .* \| reference \| kept from the run of 2026-12-02T13:44:26\.233Z \|/);
  assert.match(md, /\| local \| tap-relay \| 1500 \| 4 \| .* \| 0\.80x \(0\.80–0\.80\) \| kept from the run of 2026-12-02T13:44:26\.233Z; its ratio is to that run's reference \|/);
  assert.match(md, /\| local \| ours-tap \| 1500 \| 4 \| 12\.00 .* \| - \| no ratio: the reference was not run with it \|/);
  // The tap relay was kept, the tap ports were run: no ceiling table across runs.
  assert.deepEqual(tapCeiling(r), []);
  assert.doesNotMatch(md, /against their ceiling/);
});

function tg(pps: number, p99 = 50): TrafgenResult {
  return {
    tx: 'a', rx: 'b', size: 64, rate: 0, seconds: 3, sent: pps * 3, tx_pps: pps, delivered: pps * 3, duplicates: 0, sink_ring_drops: 0, lost: 0, loss_pct: 0, rx_pps: pps, gbps: (pps * 68 * 8) / 1e9,
    latency_us: { probes: 1000, min: 1, p50: p99 / 2, p99, p999: p99 * 2, max: p99 * 3 },
  };
}

function psys(id: string, pps: number, p99: number, from?: string): SystemResult {
  return { id, label: id, family: id.startsWith('ours') ? 'ours' : id === 'wire' ? 'wire' : 'linux', throughput: tg(pps), latency: tg(pps, p99), ...(from ? { from } : {}) };
}

test('packet suites: no "this switch ÷ system" cell and no goal from two runs', () => {
  const l2: SuiteResult = {
    id: 'l2', title: 'Layer 2 port to port (64-byte frames)', ours: 'ours-afxdp', size: 64,
    peers: { wire: 'ours-afxdp', bridge: 'ours-afxdp' },
    // A partial run of wire and bridge; AF_XDP kept from the last run.
    systems: [psys('wire', 400_000, 40), psys('bridge', 200_000, 60), psys('ours-afxdp', 380_000, 50, OLD)],
  };
  const r = { started: '2026-12-03T00:00:00.000Z', seconds: 100, machine: { cpus: 2 }, method: { latencyRate: 20000, rounds: 3, throughputSeconds: 3, placement: { genCpu: 1, switchCpu: 0, busyPoll: false } }, suites: [l2] };
  const md = renderMarkdown(r);
  assert.match(md, /\| wire \| 0\.400 .*\| - \(not measured in one run\) \|/);
  assert.match(md, /\| ours-afxdp \(run of 2026-12-02T13:44:26\.233Z\) \| 0\.380 /);
  assert.match(md, /\| this switch >= 3x Linux bridge \| - \| not measured in one run \(ours-afxdp from 2026-12-02T13:44:26\.233Z, bridge from this run\) \|/);
  assert.doesNotMatch(md, /1\.90x/); // 380k / 200k across runs
  // All from one run: the ratios are there.
  l2.systems[2] = psys('ours-afxdp', 380_000, 50);
  const md2 = renderMarkdown(r);
  assert.match(md2, /\| bridge \| 0\.200 .*\| 1\.90x \(afxdp\), p99 0\.83x \|/);
  assert.match(md2, /\| this switch >= 3x Linux bridge \| 1\.90x \| \*\*not met\*\* \|/);
});

function vsys(id: string, mpps: number, from?: string): VhostSystemResult {
  const family = id === 'ours' ? 'ours' : id === 'ceiling' ? 'ceiling' : 'ovs';
  const cases = [64, 1518].flatMap((size) => (['one', 'many'] as const).map((flows) => ({ size, flows, mpps: [mpps], min: mpps, median: mpps, max: mpps })));
  return { id, label: id, family, cases, ...(from ? { from } : {}) };
}

test('vhost: rows of another run are not divided into ours', () => {
  const systems = mergeRuns([vsys('ours', 6), vsys('ovs-normal', 3), vsys('ovs-flow', 4), vsys('ceiling', 8)], [vsys('ours', 5), vsys('ovs-normal', 2.5), vsys('ceiling', 6)], OLD);
  const { ratios, goals } = vhostCompare(systems);
  assert.ok(ratios.every((x) => x.vsOvsNormal === 2 && x.vsCeiling === 5 / 6 && x.vsOvsFlow === undefined), JSON.stringify(ratios));
  assert.equal(goals[0]!.met, true);
  const r: VhostReport = {
    benchmark: 'e2e-vhost', started: '2026-12-03T00:00:00.000Z', seconds: 10, machine: { cpus: 2 },
    method: { rounds: 3, seconds: 5, placement: { testpmdCpu: 1, switchCpu: 0 } }, systems, ratios, goals,
  } as VhostReport;
  const md = renderVhostMarkdown(r);
  assert.match(md, /\| ovs-flow \(run of 2026-12-02T13:44:26\.233Z\) \|/);
  assert.match(md, /\| OVS-DPDK in_port -> output \| - \| - \| - \| - \|/);
  // Ours kept, the others run again: no goal can be judged.
  const g2 = vhostCompare(mergeRuns([vsys('ours', 6), vsys('ovs-normal', 3), vsys('ceiling', 8)], [vsys('ovs-normal', 2), vsys('ceiling', 6)], OLD)).goals;
  assert.ok(g2.every((g) => g.met === undefined && g.why === 'not every case was measured for both rows in one run'), JSON.stringify(g2));
});

test('goals: p99 is judged for each backend of this switch that ran, against the bridge of its kind', () => {
  const l2: SuiteResult = {
    id: 'l2', title: 'Layer 2 port to port (64-byte frames)', ours: 'ours-afxdp', size: 64, peers: {},
    systems: [psys('bridge', 200_000, 60), psys('bridge-tap', 150_000, 30), psys('ours-afxdp', 380_000, 70), psys('ours-afpacket', 300_000, 20), psys('ours-tap', 280_000, 90)],
  };
  const r = { started: '2026-12-03T00:00:00.000Z', seconds: 100, machine: { cpus: 2 }, method: { latencyRate: 20000, rounds: 3, throughputSeconds: 3, placement: { genCpu: 1, switchCpu: 0, busyPoll: false } }, suites: [l2] };
  const md = renderMarkdown(r);
  assert.match(md, /\| p99 no worse than the Linux bridge at 20k frames\/s \(AF_PACKET ports; bridge with veth ports\) \| 20\.0 vs 60\.0 us \| met \|/);
  assert.match(md, /\| p99 no worse than the Linux bridge at 20k frames\/s \(AF_XDP ports; bridge with veth ports\) \| 70\.0 vs 60\.0 us \| \*\*not met\*\* \|/);
  assert.match(md, /\| p99 no worse than the Linux bridge at 20k frames\/s \(tap ports; bridge with tap ports\) \| 90\.0 vs 30\.0 us \| \*\*not met\*\* \|/);
  assert.match(md, /\| this switch >= 3x Linux bridge \| 1\.90x \| \*\*not met\*\* \|/); // throughput: still the fastest backend
});
