// npm run bench -- e2e [SUITE...] [options]
//
// The switch side by side with the Linux bridge (veth and tap ports), Open
// vSwitch's userspace datapath and the wire, on identical topologies in
// private network namespaces, with the project's own generator/sink
// (build/trafgen, bench/trafgen/trafgen.cc). See docs/benchmarks.md.
//
//   SUITE     l2 | vxlan | ports | frames | tcp | vhost | idle | reopen   (default: the first four)
//   --seconds S      length of each throughput run (default 3; tcp: 5)
//   --rounds N       throughput/latency runs per system; the best is kept (default 3);
//                    tcp: interleaved rounds, the median is kept
//   --latency-rate R offered load of the latency runs, frames/s (default 20000)
//   --only ID[,ID]   only these systems (ids as in the tables)
//   --busy-poll      this switch's engine spins instead of sleeping when idle
//   --switch-cpu N   the CPU of this switch's engine and OVS's PMD (default 0;
//                    1 puts it beside the generator and sink, which run on CPU 1;
//                    any: the engine is not pinned, as vpcd runs it by default,
//                    and OVS's PMD stays on CPU 0)
//   --idle-spin-us N this switch's adaptive polling window (default: the engine's, 200)
//   --no-jumbo       tcp: no MTU 9000 runs
//   --no-latency     tcp: no request/response latency runs
//   --note TEXT      tcp: a remark kept with the results (e.g. "machine busy")
//   --taps N[,N]     idle: the numbers of idle tap ports to measure (default 0,30,300)
//   --afpacket N[,N] idle: the numbers of idle AF_PACKET ports (on veths) to measure (default 300)
//
// Writes bench/results/e2e.json (raw figures, machine), e2e.md (tables) and
// e2e.svg (chart); the tcp suite (tcp.ts) writes e2e-tcp.json and e2e-tcp.md,
// the vhost suite (vhost.ts: testpmd virtio-user <-> vhost-user switches)
// e2e-vhost.json and e2e-vhost.md, the idle suite (idle.ts: the engine's CPU
// with N idle ports) e2e-idle.json, the reopen suite (reopen.ts: how long the
// engine stops while a port's interface is deleted and made again)
// e2e-reopen.json. Everything is bounded: each trafgen run stops by itself,
// each system is torn down after its runs, and the namespaces go away on
// exit, on errors and on Ctrl-C.

import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ovsVersion } from './ovs';
import { Missing, PORT_BACKENDS, type Placement, SUITES, type SystemDef, type SystemRun, cpuText, toolsMissing } from './systems';
import { type TcpReport, compare, runTcp, tcpToolsMissing } from './tcp';
import { type VhostReport, renderVhostMarkdown, runVhost, vhostCompare, vhostMissing } from './vhost';
import { runIdle } from './idle';
import { runReopen } from './reopen';
import { Topo, cleanupAll, mergeRuns, releaseLock, takeLock, trySh } from './topo';
import { renderMarkdown, renderSvg, renderTcpMarkdown } from './report';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const TRAFGEN = path.join(ROOT, 'build', 'trafgen');
const RESULTS = path.join(ROOT, 'bench', 'results');

export interface TrafgenResult {
  tx: string;
  rx: string;
  size: number;
  rate: number;
  seconds: number;
  sent: number;
  tx_pps: number;
  delivered: number;
  duplicates: number;
  sink_ring_drops: number;
  lost: number;
  loss_pct: number;
  rx_pps: number;
  gbps: number;
  latency_us: { probes: number; min: number; p50: number; p99: number; p999: number; max: number };
  error?: string;
}

export interface EngineProfile {
  packets: number;
  batches: number;
  mean_batch: number;
  busy_ns_per_packet: number;
  busy_fraction: number;
  sleeps: number;
}

export interface SystemResult {
  id: string;
  label: string;
  family: string;
  missing?: string;
  used?: string;
  throughput?: TrafgenResult; // best round at the maximum offered rate
  latency?: TrafgenResult; // best round at --latency-rate
  rounds?: { throughput: number[]; p99: number[] };
  engine?: EngineProfile;
  steps?: TrafgenResult[]; // ports suite: one per offered rate
  load1?: number[]; // the machine's 1-minute load average when each round started
  idle_cpu_pct?: number; // this switch: percent of one CPU its engine used while no traffic ran
  from?: string; // kept from the run that started then (a partial run, `mergeRuns`)
}

export interface SuiteResult {
  id: string;
  title: string;
  ours: string;
  peers: Record<string, string>;
  size: number;
  systems: SystemResult[];
}

const PACKET_SUITES = ['l2', 'vxlan', 'ports', 'frames'];

interface Options {
  suites: string[];
  seconds: number;
  tcpSeconds: number;
  jumbo: boolean;
  tcpLatency: boolean;
  note?: string;
  rounds: number;
  latencyRate: number;
  only?: Set<string>;
  placement: Placement;
  taps: number[];
  afpacket: number[];
}

function parseArgs(argv: string[]): Options {
  const o: Options = { suites: [], seconds: 3, tcpSeconds: 5, jumbo: true, tcpLatency: true, rounds: 3, latencyRate: 20_000, placement: { genCpu: 1, sinkCpu: 1, switchCpu: 0, busyPoll: false }, taps: [0, 30, 300], afpacket: [300] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a} needs a positive number`);
      return v;
    };
    if (a === '--seconds') o.seconds = o.tcpSeconds = Math.min(num(), 30);
    else if (a === '--no-jumbo') o.jumbo = false;
    else if (a === '--no-latency') o.tcpLatency = false;
    else if (a === '--note') o.note = argv[++i] ?? '';
    else if (a === '--rounds') o.rounds = Math.min(Math.round(num()), 5);
    else if (a === '--latency-rate') o.latencyRate = num();
    else if (a === '--only') o.only = new Set((argv[++i] ?? '').split(','));
    else if (a === '--taps' || a === '--afpacket') {
      const v = (argv[++i] ?? '').split(',').filter((x) => x !== '').map(Number);
      if (!v.every((n) => Number.isInteger(n) && n >= 0 && n <= 1000)) throw new Error(`${a} needs integers in 0..1000, comma-separated`);
      if (a === '--taps') o.taps = v;
      else o.afpacket = v;
    }
    else if (a === '--busy-poll') o.placement.busyPoll = true;
    else if (a === '--switch-cpu') {
      const arg = argv[++i];
      const v = arg === 'any' ? -1 : Number(arg);
      if (!Number.isInteger(v) || v < -1 || v >= os.cpus().length) throw new Error(`--switch-cpu needs a CPU number in 0..${os.cpus().length - 1}, or any`);
      o.placement.switchCpu = v;
    }
    else if (a === '--idle-spin-us') {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 0 || v > 100_000) throw new Error('--idle-spin-us needs an integer in 0..100000');
      o.placement.idleSpinUs = v;
    }
    else if ([...PACKET_SUITES, 'tcp', 'vhost', 'idle', 'reopen'].includes(a)) o.suites.push(a);
    else throw new Error(`unknown argument ${a} (suites: l2, vxlan, ports, frames, tcp, vhost, idle, reopen; options: --seconds, --rounds, --latency-rate, --only, --busy-poll, --switch-cpu, --idle-spin-us, --no-jumbo, --no-latency, --note, --taps, --afpacket)`);
  }
  if (o.suites.length === 0) o.suites = [...PACKET_SUITES];
  return o;
}

function trafgen(run: SystemRun, args: string[], seconds: number, p: Placement): Promise<TrafgenResult> {
  const full = ['--tx', run.tx, '--rx', run.rx, '--seconds', String(seconds), '--gen-cpu', String(p.genCpu), '--sink-cpu', String(p.sinkCpu), ...args];
  return new Promise((resolve) => {
    const child = execFile(TRAFGEN, full, { encoding: 'utf8', timeout: (seconds + 20) * 1000 }, (err, stdout, stderr) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        const r = JSON.parse(line) as TrafgenResult;
        resolve(r);
      } catch {
        resolve({ error: `trafgen failed: ${err?.message ?? ''} ${stderr.trim()}` } as TrafgenResult);
      }
    });
    current?.own(child); // killed at cleanup (Ctrl-C) if still running
  });
}

function profile(before: Record<string, number> | undefined, after: Record<string, number> | undefined): EngineProfile | undefined {
  if (!before || !after) return undefined;
  const d = (k: string): number => (after[k] ?? 0) - (before[k] ?? 0);
  const packets = d('packets');
  const busy = d('busy_ns');
  const idle = d('idle_ns');
  return {
    packets,
    batches: d('batches'),
    mean_batch: d('batches') ? packets / d('batches') : 0,
    busy_ns_per_packet: packets ? busy / packets : 0,
    busy_fraction: busy + idle ? busy / (busy + idle) : 0,
    sleeps: d('sleeps'),
  };
}

let current: Topo | undefined;

// Folds one round into the best so far: highest delivered rate, lowest p99.
function merge(best: SystemResult, r: SystemResult): void {
  best.used = r.used ?? best.used;
  best.load1 = [...(best.load1 ?? []), ...(r.load1 ?? [])];
  const rounds = best.rounds ?? { throughput: [], p99: [] };
  rounds.throughput.push(...(r.rounds?.throughput ?? []));
  rounds.p99.push(...(r.rounds?.p99 ?? []));
  best.rounds = rounds;
  if (r.throughput && (!best.throughput || r.throughput.rx_pps > best.throughput.rx_pps)) {
    best.throughput = r.throughput;
    best.engine = r.engine;
  }
  if (r.latency && (!best.latency || r.latency.latency_us.p99 < best.latency.latency_us.p99)) best.latency = r.latency;
  if (r.idle_cpu_pct !== undefined) best.idle_cpu_pct = Math.max(best.idle_cpu_pct ?? 0, r.idle_cpu_pct); // the worst round
  if (best.throughput) delete best.missing;
  else if (r.missing) best.missing = r.missing;
}

async function runSystem(def: SystemDef, o: Options, size: number, mode: 'full' | 'steps' | 'throughput'): Promise<SystemResult> {
  const res: SystemResult = { id: def.id, label: def.label, family: def.family, load1: [Math.round(os.loadavg()[0]! * 100) / 100] };
  const t = new Topo();
  current = t;
  const t0 = Date.now();
  try {
    let run: SystemRun;
    try {
      run = await def.setup(t, o.placement);
    } catch (err) {
      res.missing = err instanceof Missing ? err.message : `could not be set up: ${err instanceof Error ? err.message : String(err)}`;
      log(`  ${def.id}: MISSING: ${res.missing}`);
      return res;
    }
    res.used = run.used;
    const common = ['--size', String(size), '--flows', '64', '--macs', '8'];
    if (mode === 'steps') {
      res.steps = [];
      for (const rate of [100_000, 200_000, 300_000, 0]) {
        const r = await trafgen(run, [...common, '--rate', String(rate), '--probe-rate', '1000'], Math.min(o.seconds, 2), o.placement);
        if (r.error) throw new Error(r.error);
        res.steps.push(r);
        log(`  ${def.id} @${rate ? `${rate / 1000}k` : 'max'}: ${fmtK(r.tx_pps)} offered, ${fmtK(r.rx_pps)} delivered, loss ${r.loss_pct.toFixed(2)}%`);
      }
      return res;
    }
    const tps: number[] = [];
    const p99s: number[] = [];
    for (let round = 0; round < o.rounds; round++) {
      const before = run.counters ? await run.counters() : undefined;
      const r = await trafgen(run, [...common, '--rate', '0', '--probe-rate', '1000'], o.seconds, o.placement);
      const after = run.counters ? await run.counters() : undefined;
      if (r.error) throw new Error(r.error);
      if (r.delivered === 0) throw new Error(`nothing delivered (sent ${r.sent}): the system does not forward on this topology`);
      tps.push(r.rx_pps);
      if (!res.throughput || r.rx_pps > res.throughput.rx_pps) {
        res.throughput = r;
        res.engine = profile(before, after);
      }
      if (mode === 'full') {
        const l = await trafgen(run, [...common, '--rate', String(o.latencyRate), '--probe-rate', '2000', '--batch', '16'], 2, o.placement);
        if (l.error) throw new Error(l.error);
        p99s.push(l.latency_us.p99);
        if (!res.latency || l.latency_us.p99 < res.latency.latency_us.p99) res.latency = l;
      }
    }
    res.rounds = { throughput: tps, p99: p99s };
    if (mode === 'full' && run.idleCpu) res.idle_cpu_pct = Math.round((await run.idleCpu(3)) * 1000) / 1000;
    const tp = res.throughput!;
    const lat = res.latency;
    log(
      `  ${def.id}: ${fmtK(tp.rx_pps)} delivered of ${fmtK(tp.tx_pps)} offered (loss ${tp.loss_pct.toFixed(1)}%)` +
        (lat ? `; at ${fmtK(o.latencyRate)}: p50 ${lat.latency_us.p50.toFixed(1)} us, p99 ${lat.latency_us.p99.toFixed(1)} us, loss ${lat.loss_pct.toFixed(2)}%` : '') +
        (res.engine ? `; engine ${res.engine.busy_ns_per_packet.toFixed(0)} ns/pkt busy, batch ${res.engine.mean_batch.toFixed(1)}` : '') +
        (res.idle_cpu_pct !== undefined ? `; idle ${res.idle_cpu_pct.toFixed(2)}% CPU` : '') +
        ` [${((Date.now() - t0) / 1000).toFixed(1)} s]`,
    );
  } catch (err) {
    res.missing = `failed while running: ${err instanceof Error ? err.message : String(err)}`;
    res.throughput = undefined;
    res.latency = undefined;
    log(`  ${def.id}: FAILED: ${res.missing}`);
  } finally {
    t.cleanup();
    current = undefined;
  }
  return res;
}

function fmtK(pps: number): string {
  return pps >= 1e6 ? `${(pps / 1e6).toFixed(2)} Mpps` : `${(pps / 1e3).toFixed(0)} kpps`;
}

function log(s: string): void {
  process.stdout.write(`${s}\n`);
}

function machine(): Record<string, unknown> {
  const git = trySh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']);
  const dirty = trySh('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no']);
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    distro: trySh('sh', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"']).out.trim(),
    node: process.version,
    ovs: ovsVersion(),
    commit: git.ok ? `${git.out.trim()}${dirty.out.trim() ? ' (with uncommitted changes)' : ''}` : 'unknown',
    loadAverage: os.loadavg().map((v) => Math.round(v * 100) / 100),
  };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces, veth, tap, AF_PACKET): run as root');
  const tools = toolsMissing() ?? (o.suites.includes('tcp') ? tcpToolsMissing() : undefined) ?? (o.suites.includes('vhost') ? vhostMissing() : undefined);
  if (tools) throw new Error(tools);
  const packetSuites = o.suites.filter((s) => s !== 'tcp' && s !== 'vhost' && s !== 'idle' && s !== 'reopen');
  if (packetSuites.length && !fs.existsSync(TRAFGEN)) throw new Error(`${TRAFGEN} not built (cmake --build build --target trafgen)`);
  takeLock();
  if (o.suites.includes('tcp')) await tcp(o);
  if (o.suites.includes('vhost')) await vhost(o);
  if (o.suites.includes('idle')) await idle(o);
  if (o.suites.includes('reopen')) await reopen(o);
  if (packetSuites.length) await packets({ ...o, suites: packetSuites });
}

// The idle suite: bench/results/e2e-idle.json.
async function idle(o: Options): Promise<void> {
  const started = new Date();
  const m0 = machine();
  const rows = await runIdle({ seconds: o.seconds, taps: o.taps, afpacket: o.afpacket, log });
  const result = { benchmark: 'e2e-idle', started: started.toISOString(), machine: m0, seconds_each: o.seconds, rows };
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(path.join(RESULTS, 'e2e-idle.json'), `${JSON.stringify(result, null, 2)}\n`);
  log(`e2e idle: wrote bench/results/e2e-idle.json in ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s`);
}

// The reopen suite: bench/results/e2e-reopen.json.
async function reopen(o: Options): Promise<void> {
  const started = new Date();
  const m0 = machine();
  const rows = await runReopen({ rounds: o.rounds, log });
  const result = { benchmark: 'e2e-reopen', started: started.toISOString(), machine: m0, rows };
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(path.join(RESULTS, 'e2e-reopen.json'), `${JSON.stringify(result, null, 2)}\n`);
  log(`e2e reopen: wrote bench/results/e2e-reopen.json in ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s`);
}

// The vhost suite: bench/results/e2e-vhost.{json,md}. A run with --only
// merges its systems into the last results (marked partial).
async function vhost(o: Options): Promise<void> {
  const started = new Date();
  const m0 = machine();
  log(`e2e vhost: ${o.seconds} s per round, ${o.rounds} rounds per case; testpmd on CPU ${o.placement.genCpu}, the switch ${cpuText(o.placement.switchCpu)}`);
  const r = await runVhost({ seconds: o.seconds, rounds: o.rounds, only: o.only, placement: o.placement, log });
  const result: VhostReport = {
    benchmark: 'e2e-vhost',
    started: started.toISOString(),
    seconds: (Date.now() - started.getTime()) / 1000,
    machine: { ...m0, loadAverageAtEnd: os.loadavg().map((v) => Math.round(v * 100) / 100) },
    ...(o.note ? { note: o.note } : {}),
    method: r.method,
    systems: r.systems,
    ratios: r.ratios,
    goals: r.goals,
  };
  fs.mkdirSync(RESULTS, { recursive: true });
  const jsonPath = path.join(RESULTS, 'e2e-vhost.json');
  if (o.only && fs.existsSync(jsonPath)) {
    try {
      const prev = JSON.parse(fs.readFileSync(jsonPath, 'utf8')) as VhostReport;
      result.systems = mergeRuns(prev.systems, result.systems, prev.started);
      Object.assign(result, vhostCompare(result.systems));
      result.partial = `this run: only ${[...o.only].join(', ')}; other systems from ${prev.started}`;
    } catch {
      // unreadable: overwrite
    }
  }
  fs.writeFileSync(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
  const md = renderVhostMarkdown(result);
  fs.writeFileSync(path.join(RESULTS, 'e2e-vhost.md'), md);
  log('');
  log(md);
  log(`e2e vhost: wrote bench/results/e2e-vhost.json, e2e-vhost.md in ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s`);
}

// The tcp suite: bench/results/e2e-tcp.{json,md}. A run with --only merges
// its systems into the last results (marked partial; a kept system keeps
// the ratios of the run that measured it, `mergeRuns`).
async function tcp(o: Options): Promise<void> {
  const started = new Date();
  const m0 = machine();
  const r = await runTcp({ seconds: o.tcpSeconds, rounds: o.rounds, jumbo: o.jumbo, latency: o.tcpLatency, only: o.only, placement: o.placement, log });
  const result: TcpReport = {
    benchmark: 'e2e-tcp',
    started: started.toISOString(),
    seconds: (Date.now() - started.getTime()) / 1000,
    machine: { ...m0, loadAverageAtEnd: os.loadavg().map((v) => Math.round(v * 100) / 100) },
    ...(o.note ? { note: o.note } : {}),
    method: r.method,
    systems: r.systems,
  };
  fs.mkdirSync(RESULTS, { recursive: true });
  const jsonPath = path.join(RESULTS, 'e2e-tcp.json');
  if (o.only && fs.existsSync(jsonPath)) {
    try {
      const prev = JSON.parse(fs.readFileSync(jsonPath, 'utf8')) as TcpReport;
      result.systems = mergeRuns(prev.systems, result.systems, prev.started);
      compare(result.systems);
      result.partial = `this run: only ${[...o.only].join(', ')}; other systems from ${prev.started}`;
    } catch {
      // unreadable: overwrite
    }
  }
  fs.writeFileSync(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
  const md = renderTcpMarkdown(result);
  fs.writeFileSync(path.join(RESULTS, 'e2e-tcp.md'), md);
  log('');
  log(md);
  log(`e2e tcp: wrote bench/results/e2e-tcp.json, e2e-tcp.md in ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s`);
}

async function packets(o: Options): Promise<void> {
  const started = new Date();
  const m0 = machine();
  const suites: SuiteResult[] = [];
  const keep = (d: SystemDef): boolean => !o.only || o.only.has(d.id);
  log(`e2e: suites ${o.suites.join(', ')}; ${o.seconds} s per throughput run, best of ${o.rounds}; latency at ${o.latencyRate} frames/s; generator+sink on CPU ${o.placement.genCpu}, switch ${cpuText(o.placement.switchCpu)}`);
  for (const s of o.suites) {
    if (s === 'l2' || s === 'vxlan') {
      const def = SUITES[s]!;
      log(`${s}: ${def.title}`);
      // Rounds are interleaved (every system once, then every system again)
      // so that a burst of other work on the machine does not hit all of one
      // system's rounds; each round builds the topology afresh.
      const systems: SystemResult[] = def.systems.filter(keep).map((d) => ({ id: d.id, label: d.label, family: d.family }));
      for (let round = 0; round < o.rounds; round++) {
        log(`  round ${round + 1} of ${o.rounds}`);
        for (const [i, d] of def.systems.filter(keep).entries()) {
          const best = systems[i]!;
          if (best.missing && !best.throughput && round > 0 && !best.missing.startsWith('failed while running')) continue; // cannot start here
          merge(best, await runSystem(d, { ...o, rounds: 1 }, 64, 'full'));
        }
      }
      suites.push({ id: s, title: def.title, ours: def.ours, peers: def.peers, size: 64, systems });
    } else if (s === 'ports') {
      log('ports: this switch, port to port per backend at fixed offered rates (64-byte frames)');
      const systems: SystemResult[] = [];
      for (const d of PORT_BACKENDS.filter(keep)) systems.push(await runSystem(d, o, 64, 'steps'));
      suites.push({ id: s, title: 'This switch, port to port per backend at fixed offered rates (64-byte frames)', ours: 'ours-afpacket', peers: {}, size: 64, systems });
    } else if (s === 'frames') {
      const l2 = SUITES.l2!;
      for (const size of [512, 1518]) {
        log(`frames: ${size}-byte frames, throughput only`);
        const systems: SystemResult[] = [];
        const ids = ['wire', 'bridge', 'ovs-afxdp', 'ours-afpacket'];
        for (const d of l2.systems.filter((x) => ids.includes(x.id) && keep(x))) systems.push(await runSystem(d, { ...o, rounds: 1 }, size, 'throughput'));
        suites.push({ id: `frames-${size}`, title: `Layer 2 port to port, ${size}-byte frames (throughput only)`, ours: 'ours-afpacket', peers: { wire: 'ours-afpacket', bridge: 'ours-afpacket', 'ovs-afxdp': 'ours-afpacket' }, size, systems });
      }
    }
  }
  const result = {
    benchmark: 'e2e',
    started: started.toISOString(),
    seconds: (Date.now() - started.getTime()) / 1000,
    machine: { ...m0, loadAverageAtEnd: os.loadavg().map((v) => Math.round(v * 100) / 100) },
    method: {
      throughputSeconds: o.seconds,
      rounds: o.rounds,
      latencyRate: o.latencyRate,
      placement: o.placement,
      flows: 64,
      macs: 8,
      note: 'throughput = distinct sequence numbers delivered per second at the maximum offered rate (best round); latency = probes at latencyRate (round with the lowest p99); Gbit/s counts the frame with its FCS',
    },
    suites,
  };
  fs.mkdirSync(RESULTS, { recursive: true });
  // Partial runs (some suites, --only) merge into the last full results.
  let merged = result;
  const jsonPath = path.join(RESULTS, 'e2e.json');
  if (fs.existsSync(jsonPath) && (o.only || o.suites.length < PACKET_SUITES.length)) {
    try {
      const prev = JSON.parse(fs.readFileSync(jsonPath, 'utf8')) as typeof result;
      const bySuite = new Map(prev.suites.map((s) => [s.id, s]));
      for (const s of suites) {
        const old = bySuite.get(s.id);
        if (old && o.only) s.systems = mergeRuns(old.systems, s.systems, prev.started);
        bySuite.set(s.id, s);
      }
      merged = { ...result, suites: [...bySuite.values()], partial: `this run: ${o.suites.join(', ')}${o.only ? ` (only ${[...o.only].join(', ')})` : ''}; other suites from ${prev.started}` } as typeof result;
    } catch {
      // unreadable: overwrite
    }
  }
  fs.writeFileSync(jsonPath, `${JSON.stringify(merged, null, 2)}\n`);
  const md = renderMarkdown(merged);
  fs.writeFileSync(path.join(RESULTS, 'e2e.md'), md);
  fs.writeFileSync(path.join(RESULTS, 'e2e.svg'), renderSvg(merged));
  log('');
  log(md);
  log(`e2e: wrote bench/results/e2e.json, e2e.md, e2e.svg in ${result.seconds.toFixed(0)} s`);
}

function emergency(code: number): void {
  try {
    cleanupAll();
  } finally {
    releaseLock();
    process.exit(code);
  }
}

process.on('SIGINT', () => emergency(130));
process.on('SIGTERM', () => emergency(143));
process.on('exit', () => {
  cleanupAll();
  releaseLock();
});

main()
  .then(() => releaseLock())
  .catch((err) => {
    process.stderr.write(`e2e: ${err instanceof Error ? err.message : String(err)}\n`);
    emergency(1);
  });
