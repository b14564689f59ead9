// npm run bench -- e2e tcp: guest-to-guest TCP with iperf3 (issue 11).
//
// The guests are interfaces in their own namespaces with the kernel's
// defaults (on veth: TSO, GSO, checksum offload on; Topo never changes
// them), as a container runtime leaves them. Each system is one of
// the packet suites' definitions (systems.ts), built afresh per MTU:
//
//   local   wire, Linux bridge, OVS userspace (AF_XDP and system ports),
//           this switch (afpacket, tap, afxdp), and the tap relay (the
//           ceiling of a switch that holds tap fds on one thread: bench/taprelay)
//   vxlan   Linux bridge + vxlan on two hosts, this switch on both hosts
//
// On each: iperf3 with 1 and 4 streams at MTU 1500, 1 stream at the jumbo
// MTU, and a TCP request/response latency run (tcp-rr.ts). The throughput
// runs repeat in interleaved rounds: each round visits every system once, in
// order, so a slow phase of the machine lands on neighbours rather than on
// one system; a run reports the median round, and its ratio is the median of
// the round-by-round ratios to the reference's run of the same round. Every run is
// bounded (iperf3 -t and --connect-timeout, plus a hard kill); a run that
// fails or collapses is recorded with its error and 0 Gbit/s, and the next
// one goes on. Everything a run creates belongs to its Topo and is removed
// after the system's runs.

import { type ChildProcess, execFile } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { type Guest, Missing, type Placement, SUITES, type SystemDef, type SystemRun, TCP_ONLY, cpuText } from './systems';
import type { RrResult } from './tcp-rr';
import { Topo, median, sameRun, sleep, trySh, which } from './topo';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const RR = path.join(ROOT, 'dist', 'bench', 'e2e', 'tcp-rr.js');

// The guests' addresses (each system's guests are alone in their namespaces).
const TX_IP = '198.18.0.1';
const RX_IP = '198.18.0.2';

export const TCP_LOCAL = ['wire', 'bridge', 'ovs-afxdp', 'ovs-afpacket', 'ovs-afpacket-tso', 'ours-afpacket', 'ours-afpacket-engine', 'ours-tap', 'tap-relay', 'ours-afxdp'];
export const TCP_VXLAN = ['vx-linux', 'vx-ours', 'vx-ours-engine'];
// The same over an underlay that segments like a wire (systems.ts, vxlanWire).
export const TCP_VXWIRE = ['vx-linux-wire', 'vx-ours-wire'];
// And with GRO on on the underlay's receiving ends, as a NIC has it.
export const TCP_VXNIC = ['vx-linux-nic', 'vx-ours-nic'];
export type TcpGroup = 'local' | 'vxlan' | 'vxwire' | 'vxnic';
// The reference of each group: ratios are to it, in the same run, at the same
// MTU and number of streams.
export const TCP_REFERENCE: Record<TcpGroup, string> = { local: 'bridge', vxlan: 'vx-linux', vxwire: 'vx-linux-wire', vxnic: 'vx-linux-nic' };
// A result below this share of the reference counts as a collapse (issue 11:
// "any iperf3 result below 10% of the bridge's is a bug").
export const COLLAPSE = 0.1;
const LATENCY_ROUNDS = 3;

export interface TcpOptions {
  seconds: number;
  rounds: number; // interleaved rounds of every throughput run
  jumbo: boolean;
  latency: boolean;
  only?: Set<string>;
  placement: Placement;
  log: (s: string) => void;
}

// One iperf3 run of one round.
export interface TcpRound {
  seconds: number;
  sender_gbps: number;
  receiver_gbps: number;
  retransmits: number;
  cpu?: { sender: number; receiver: number }; // iperf3's host_total / remote_total, percent
  ratio?: number; // receiver Gbit/s over the reference's in the same round, MTU and streams
  switchDrops?: Record<string, number>; // this switch: drop counters that moved during the run
  error?: string;
}

// One (MTU, streams) case of a system: its rounds and what they add up to.
// With rounds, the figures are the medians of the rounds that did not fail
// (error only when every round failed), switchDrops their sum.
export interface TcpRun extends Omit<TcpRound, 'ratio'> {
  mtu: number;
  streams: number;
  ratio?: number; // median of the rounds' ratios (or receiver Gbit/s over the reference's)
  ratio_min?: number;
  ratio_max?: number;
  collapsed?: boolean; // a round failed, or one fell below COLLAPSE of the reference
  failed_rounds?: number;
  rounds?: TcpRound[];
}

export interface TcpSystem {
  id: string;
  label: string;
  family: string;
  group: TcpGroup;
  used?: string;
  guestOffloads?: string; // ethtool -k of the sending guest's interface, as the runs saw it
  runs: TcpRun[];
  latency?: RrResult & { mtu: number; ratio_p99?: number; p99_rounds?: number[] };
  missing?: string; // could not be set up at all (at any MTU)
  from?: string; // kept from the run that started then (a partial run, `mergeRuns`)
}

export interface TcpResult {
  systems: TcpSystem[];
  method: Record<string, unknown>;
}

// What bench/results/e2e-tcp.json holds.
export interface TcpReport extends TcpResult {
  benchmark: 'e2e-tcp';
  started: string;
  seconds: number;
  machine: Record<string, unknown>;
  note?: string;
  partial?: string;
}

function def(id: string): SystemDef {
  const all = [...SUITES.l2!.systems, ...SUITES.vxlan!.systems, ...TCP_ONLY];
  const d = all.find((x) => x.id === id);
  if (!d) throw new Error(`tcp suite: no system ${id} in systems.ts`);
  return d;
}

export function tcpToolsMissing(): string | undefined {
  return which('iperf3') ? undefined : 'iperf3 not found (apt-get install iperf3; scripts/setup-deps.sh installs it)';
}

// ------------------------------------------------------------ processes

// Runs `cmd` in `ns`, owned by the topology, killed (SIGKILL) after
// timeoutMs; resolves with its output whatever happens.
function runIn(t: Topo, ns: string, cmd: string, args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string; killed: boolean; code: number | null }> {
  return new Promise((resolve) => {
    const child = execFile('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const e = err as (Error & { killed?: boolean; code?: number | string }) | null;
      resolve({ stdout, stderr, killed: Boolean(e?.killed), code: e ? (typeof e.code === 'number' ? e.code : -1) : 0 });
    });
    t.own(child);
  });
}

// Starts a server in `ns` and waits for a line of its stdout that matches
// `ready`; the process belongs to the topology (killed at cleanup).
async function startServer(t: Topo, ns: string, cmd: string, args: string[], ready: RegExp, timeoutMs = 5000): Promise<ChildProcess> {
  const child = t.spawnIn(ns, cmd, args);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const rl = readline.createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} server did not start in ${timeoutMs / 1000} s: ${stderr.trim().slice(-300)}`)), timeoutMs);
    rl.on('line', (l) => {
      if (ready.test(l)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} server exited (${String(code)}) before it was ready: ${stderr.trim().slice(-300)}`));
    });
  });
  rl.close();
  return child;
}

function stop(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) {
    try {
      child.kill('SIGKILL');
    } catch {
      // gone
    }
  }
}

// ------------------------------------------------------------ runs

interface IperfJson {
  error?: string;
  end?: {
    sum_sent?: { bits_per_second?: number; retransmits?: number; seconds?: number };
    sum_received?: { bits_per_second?: number };
    cpu_utilization_percent?: { host_total?: number; remote_total?: number };
  };
}

let nextPort = 5201;

async function iperf(t: Topo, g: Guest, s: Guest, streams: number, seconds: number): Promise<TcpRound> {
  const port = nextPort++;
  const failed = (error: string): TcpRound => ({ seconds, sender_gbps: 0, receiver_gbps: 0, retransmits: 0, error });
  let server: ChildProcess;
  try {
    // -1: one test, then exit; --forceflush: "Server listening" reaches the
    // pipe at once; --idle-timeout ends a server whose client vanished.
    server = await startServer(t, s.ns, 'iperf3', ['-s', '-1', '--forceflush', '-B', RX_IP, '-p', String(port), '--idle-timeout', String(seconds + 15)], /listening/i);
  } catch (err) {
    return failed(err instanceof Error ? err.message : String(err));
  }
  const hardMs = (seconds + 20) * 1000;
  const r = await runIn(t, g.ns, 'iperf3', ['-c', RX_IP, '-B', TX_IP, '-p', String(port), '-t', String(seconds), '-P', String(streams), '-J', '--connect-timeout', '3000', '--snd-timeout', '10000'], hardMs);
  stop(server);
  if (r.killed) return failed(`iperf3 killed after ${hardMs / 1000} s (hard timeout): the transfer or its result exchange stalled`);
  let j: IperfJson;
  try {
    j = JSON.parse(r.stdout) as IperfJson;
  } catch {
    return failed(`iperf3 exited ${String(r.code)} without JSON: ${(r.stderr || r.stdout).trim().slice(-300)}`);
  }
  const sent = j.end?.sum_sent;
  const recv = j.end?.sum_received;
  if (j.error || !sent || !recv) {
    const part = sent ? { sender_gbps: (sent.bits_per_second ?? 0) / 1e9, retransmits: sent.retransmits ?? 0 } : {};
    return { ...failed(`iperf3: ${j.error ?? 'no summary in its output'}`), ...part };
  }
  return {
    seconds: sent.seconds ?? seconds,
    sender_gbps: (sent.bits_per_second ?? 0) / 1e9,
    receiver_gbps: (recv.bits_per_second ?? 0) / 1e9,
    retransmits: sent.retransmits ?? 0,
    cpu: { sender: round2(j.end?.cpu_utilization_percent?.host_total ?? 0), receiver: round2(j.end?.cpu_utilization_percent?.remote_total ?? 0) },
  };
}

async function rr(t: Topo, g: Guest, s: Guest, seconds: number): Promise<RrResult> {
  const port = nextPort++;
  const fail = (error: string): RrResult => ({ size: 64, roundTrips: 0, min_us: 0, p50_us: 0, p99_us: 0, p999_us: 0, max_us: 0, error });
  let server: ChildProcess;
  try {
    server = await startServer(t, s.ns, process.execPath, [RR, 'server', RX_IP, String(port), String((seconds + 15) * 1000)], /listening/);
  } catch (err) {
    return fail(err instanceof Error ? err.message : String(err));
  }
  const r = await runIn(t, g.ns, process.execPath, [RR, 'client', RX_IP, String(port), String(seconds), '64'], (seconds + 15) * 1000);
  stop(server);
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as RrResult;
  } catch {
    return fail(r.killed ? 'tcp-rr client killed (hard timeout)' : `tcp-rr client failed: ${(r.stderr || r.stdout).trim().slice(-300)}`);
  }
}

// ------------------------------------------------------------ helpers

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

// The guest's offload state as ethtool shows it (the runs must see the
// kernel's defaults; nothing in this suite changes them).
function offloads(g: Guest): string {
  const r = trySh('ip', ['netns', 'exec', g.ns, 'ethtool', '-k', g.dev]);
  if (!r.ok) return `ethtool -k failed: ${r.out.slice(0, 200)}`;
  const want = ['tx-checksumming', 'tcp-segmentation-offload', 'generic-segmentation-offload', 'generic-receive-offload', 'scatter-gather'];
  const short: Record<string, string> = { 'tx-checksumming': 'tx-csum', 'tcp-segmentation-offload': 'tso', 'generic-segmentation-offload': 'gso', 'generic-receive-offload': 'gro', 'scatter-gather': 'sg' };
  const out: string[] = [];
  for (const line of r.out.split('\n')) {
    const m = /^([a-z-]+): (on|off)/.exec(line.trim());
    if (m && want.includes(m[1]!)) out.push(`${short[m[1]!]} ${m[2]}`);
  }
  return `${g.dev}: ${out.join(', ')}`;
}

// Both guests get an address, then the path is checked with a few pings (ARP
// and the switches' learning happen here, not inside the measured runs).
async function address(t: Topo, run: SystemRun): Promise<string | undefined> {
  const { tx, rx } = run.guests!;
  t.ip(tx.ns, 'addr', 'add', `${TX_IP}/24`, 'dev', tx.dev);
  t.ip(rx.ns, 'addr', 'add', `${RX_IP}/24`, 'dev', rx.dev);
  for (let i = 0; i < 5; i++) {
    if (trySh('ip', ['netns', 'exec', tx.ns, 'ping', '-c', '1', '-W', '1', '-I', tx.dev, RX_IP], 5000).ok) return undefined;
    await sleep(300);
  }
  return `${RX_IP} does not answer ping from ${TX_IP} (5 tries): the system does not forward between the guests`;
}

// This switch's drop counters (ports and switches) flattened to "port.reason".
// The backends' own loss counters (portStatus): frames the kernel dropped
// before the switch saw them, or refused from it; the engine's drop reasons
// do not include these.
const BACKEND_LOSS = ['rx_kernel_drops', 'rx_too_big', 'rx_no_buffer', 'rx_bad_vnet', 'tx_errors', 'tx_too_big'];

function drops(stats: Record<string, unknown> | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  const s = stats?.stats as { ports?: Record<string, { drops?: Record<string, number> }>; switches?: Record<string, { drops?: Record<string, number> }> } | undefined;
  for (const table of [s?.ports, s?.switches]) {
    for (const [name, obj] of Object.entries(table ?? {})) {
      for (const [k, v] of Object.entries(obj.drops ?? {})) if (typeof v === 'number') out[`${name}.${k}`] = v;
    }
  }
  const backends = stats?.ports as Record<string, { counters?: Record<string, number> } | undefined> | undefined;
  for (const [name, st] of Object.entries(backends ?? {})) {
    for (const k of BACKEND_LOSS) {
      const v = st?.counters?.[k];
      if (typeof v === 'number') out[`${name}.${k}`] = v;
    }
  }
  return out;
}

function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return Object.keys(out).length ? out : undefined;
}

async function switchDrops(run: SystemRun): Promise<Record<string, number>> {
  return run.stats ? drops(await run.stats().catch(() => undefined)) : {};
}

// ------------------------------------------------------------ suite

// One system at one MTU in one round: set up, address, runs, tear down.
// Each run's round is added to res's run of the same MTU and streams.
async function runAt(d: SystemDef, group: TcpGroup, mtu: number, o: TcpOptions, res: TcpSystem, round: number): Promise<void> {
  // Over VXLAN the guests' MTU is the underlay's minus the 50 bytes of
  // VXLAN over IPv4: 1500 guests over a 1600 underlay (as the vxlan suite),
  // jumbo guests at 8950 over a 9000 underlay (this switch's largest MTU).
  const jumboVx = group !== 'local' && mtu > 1500;
  const t = new Topo({ mtu: jumboVx ? 8950 : mtu, underlayMtu: jumboVx ? 9000 : 1600 });
  const streamsList = mtu === 1500 ? [1, 4] : [1];
  const add = (streams: number, r: TcpRound): void => {
    let run = res.runs.find((x) => x.mtu === t.mtu && x.streams === streams);
    if (!run) res.runs.push((run = { mtu: t.mtu, streams, seconds: 0, sender_gbps: 0, receiver_gbps: 0, retransmits: 0, rounds: [] }));
    run.rounds!.push(r);
    settle(run);
  };
  const t0 = Date.now();
  try {
    let run: SystemRun;
    try {
      run = await d.setup(t, o.placement);
      if (!run.guests) throw new Error('this system has no guest interfaces');
    } catch (err) {
      const why = err instanceof Missing ? err.message : `could not be set up: ${err instanceof Error ? err.message : String(err)}`;
      for (const streams of streamsList) add(streams, { seconds: 0, sender_gbps: 0, receiver_gbps: 0, retransmits: 0, error: why });
      o.log(`  ${d.id} MTU ${t.mtu}: MISSING: ${why}`);
      return;
    }
    res.used = res.used ?? run.used;
    if (mtu === 1500) res.guestOffloads = res.guestOffloads ?? offloads(run.guests.tx);
    const unreachable = await address(t, run);
    for (const streams of streamsList) {
      const before = await switchDrops(run);
      const r: TcpRound = unreachable
        ? { seconds: 0, sender_gbps: 0, receiver_gbps: 0, retransmits: 0, error: unreachable }
        : await iperf(t, run.guests.tx, run.guests.rx, streams, o.seconds);
      const moved = delta(before, await switchDrops(run));
      if (moved) r.switchDrops = moved;
      add(streams, r);
      o.log(`  ${d.id} MTU ${t.mtu} P${streams}: ${r.receiver_gbps.toFixed(3)} Gbit/s received (${r.sender_gbps.toFixed(3)} sent), ${r.retransmits} retransmits${r.error ? `; ERROR: ${r.error}` : ''}${moved ? `; switch drops ${JSON.stringify(moved)}` : ''}`);
    }
    if (o.latency && mtu === 1500 && round === 0) {
      // Best of LATENCY_ROUNDS short runs (lowest p99), as the packet suites
      // keep their best latency round: a burst of other work on the machine
      // then spoils one round, not the row.
      const rounds: number[] = [];
      let best: RrResult | undefined;
      for (let i = 0; i < LATENCY_ROUNDS; i++) {
        const l = unreachable ? { size: 64, roundTrips: 0, min_us: 0, p50_us: 0, p99_us: 0, p999_us: 0, max_us: 0, error: unreachable } : await rr(t, run.guests.tx, run.guests.rx, 1);
        if (!l.error) rounds.push(l.p99_us);
        if (!best || (best.error && !l.error) || (!l.error && l.p99_us < best.p99_us)) best = l;
        if (l.error) break;
      }
      res.latency = { ...best!, mtu: t.mtu, p99_rounds: rounds };
      const l = res.latency;
      o.log(`  ${d.id} TCP RR (64 B): ${l.roundTrips} round trips, p50 ${l.p50_us.toFixed(1)} us, p99 ${l.p99_us.toFixed(1)} us (rounds ${rounds.map((v) => v.toFixed(0)).join(', ')})${l.error ? `; ERROR: ${l.error}` : ''}`);
    }
  } finally {
    t.cleanup();
    o.log(`  ${d.id} MTU ${t.mtu}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}

function roundsOf(r: TcpRun): TcpRound[] {
  return r.rounds ?? [r];
}

// A run's figures from its rounds: medians of the rounds that did not fail,
// the error only when every round failed, drop counters summed.
export function settle(run: TcpRun): void {
  const all = run.rounds;
  if (!all || all.length === 0) return;
  const ok = all.filter((r) => !r.error);
  run.failed_rounds = all.length - ok.length || undefined;
  const drops: Record<string, number> = {};
  for (const r of all) for (const [k, v] of Object.entries(r.switchDrops ?? {})) drops[k] = (drops[k] ?? 0) + v;
  run.switchDrops = Object.keys(drops).length ? drops : undefined;
  if (ok.length === 0) {
    Object.assign(run, { seconds: 0, sender_gbps: 0, receiver_gbps: 0, retransmits: 0, cpu: undefined, error: [...new Set(all.map((r) => r.error))].join('; ') });
    return;
  }
  run.error = undefined;
  run.seconds = median(ok.map((r) => r.seconds));
  run.receiver_gbps = median(ok.map((r) => r.receiver_gbps));
  run.sender_gbps = median(ok.map((r) => r.sender_gbps));
  run.retransmits = median(ok.map((r) => r.retransmits));
  const cpus = ok.filter((r) => r.cpu).map((r) => r.cpu!);
  run.cpu = cpus.length ? { sender: median(cpus.map((c) => c.sender)), receiver: median(cpus.map((c) => c.receiver)) } : undefined;
}

// Ratios to the group's reference (same MTU and streams), round by round
// (round i of a system over round i of the reference: the two ran minutes
// apart at most), their median, and collapses: a failed round, or one below
// COLLAPSE of the reference's, marks the run. Only a reference of the same
// run counts: a system kept from an earlier run keeps the ratios that run
// gave it, and one of this run without its reference here has none.
export function compare(systems: TcpSystem[]): void {
  for (const x of systems) {
    const found = systems.find((y) => y.id === TCP_REFERENCE[x.group]);
    if (x.from !== undefined && !(found && sameRun(x, found))) continue;
    const ref = found && sameRun(x, found) ? found : undefined;
    for (const r of x.runs) {
      const rr = ref?.runs.find((y) => y.mtu === r.mtu && y.streams === r.streams);
      const mine = roundsOf(r);
      const theirs = rr ? roundsOf(rr) : [];
      const ratios: number[] = [];
      r.collapsed = undefined;
      mine.forEach((m, i) => {
        const o = theirs[i];
        if (r.rounds) m.ratio = undefined;
        if (m.error || m.receiver_gbps === 0) r.collapsed = true;
        if (!o || o.error || o.receiver_gbps <= 0 || m.error) return;
        const q = m.receiver_gbps / o.receiver_gbps;
        if (r.rounds) m.ratio = Math.round(q * 1000) / 1000;
        ratios.push(q);
        if (q < COLLAPSE) r.collapsed = true;
      });
      const round3 = (v: number): number => Math.round(v * 1000) / 1000;
      r.ratio = ratios.length ? round3(median(ratios)) : undefined;
      r.ratio_min = ratios.length > 1 ? round3(Math.min(...ratios)) : undefined;
      r.ratio_max = ratios.length > 1 ? round3(Math.max(...ratios)) : undefined;
      if (r.error || r.receiver_gbps === 0) r.collapsed = true;
    }
    const rl = ref?.latency;
    if (x.latency) x.latency.ratio_p99 = undefined;
    if (x.latency && rl && !rl.error && !x.latency.error && rl.p99_us > 0) x.latency.ratio_p99 = Math.round((x.latency.p99_us / rl.p99_us) * 100) / 100;
  }
}

export async function runTcp(o: TcpOptions): Promise<TcpResult> {
  const groups: Array<[TcpGroup, string[]]> = [['local', TCP_LOCAL], ['vxlan', TCP_VXLAN], ['vxwire', TCP_VXWIRE], ['vxnic', TCP_VXNIC]];
  const systems: TcpSystem[] = [];
  o.log(`tcp: ${o.rounds} interleaved rounds of iperf3 ${o.seconds} s per run, 1 and 4 streams at MTU 1500${o.jumbo ? ', 1 stream at the jumbo MTU' : ''}${o.latency ? ', TCP request/response latency' : ''}; guests keep the kernel's default offloads; switch ${cpuText(o.placement.switchCpu)}, iperf3 not pinned`);
  for (const [group, ids] of groups) {
    for (const id of ids) {
      if (o.only && !o.only.has(id)) continue;
      const d = def(id);
      systems.push({ id, label: d.label, family: d.family, group, runs: [] });
    }
  }
  // Round by round, every system in turn (the same order each round).
  for (let round = 0; round < o.rounds; round++) {
    for (const res of systems) {
      const d = def(res.id);
      o.log(`${res.group}: ${d.label} (round ${round + 1} of ${o.rounds})`);
      for (const mtu of o.jumbo ? [1500, 9000] : [1500]) await runAt(d, res.group, mtu, o, res, round);
    }
  }
  for (const res of systems) if (!res.used) res.missing = res.runs[0]?.error; // set up at no MTU
  compare(systems);
  return {
    systems,
    method: {
      tool: (trySh('iperf3', ['--version']).out.split('\n')[0] ?? '').trim(),
      seconds: o.seconds,
      rounds: o.rounds,
      roundsMethod: 'interleaved: each round runs every system once, in the same order; a run reports the median of its rounds, its ratio the median of the round-by-round ratios to the reference',
      streams: [1, 4],
      mtu: o.jumbo ? [1500, 9000] : [1500],
      vxlanJumbo: 'guests 8950 over a 9000-byte underlay',
      placement: { switchCpu: o.placement.switchCpu, busyPoll: o.placement.busyPoll, iperf3: 'not pinned' },
      guests: "the kernel's defaults, never changed (veth: TSO, GSO, scatter-gather, checksum offload on, GRO off); IPv4 198.18.0.1 -> 198.18.0.2",
      latency: o.latency ? `tcp-rr.ts: 64-byte request, 64-byte echo, Nagle off, ${LATENCY_ROUNDS} rounds of 1 s after 200 warm-up round trips each, the round with the lowest p99 kept; timed in the client (Node) with process.hrtime` : 'off',
      collapse: `a run with a round that failed or received less than ${COLLAPSE * 100}% of the reference's (same round, MTU and streams)`,
      cpus: os.cpus().length,
    },
  };
}
