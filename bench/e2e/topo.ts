// Private network namespaces, veth pairs, taps and child processes for the
// end-to-end benchmark, and their cleanup.
//
// Safety (docs/benchmarks.md, /work/shared/design/testing.md):
// - every namespace is named "vtx" + 4 hex digits + a tag ("x" is not a hex
//   digit, so no test's "vt<hex>" name can match), and every interface lives
//   inside one of them: nothing is created in, or sent on, the host's root
//   namespace; the host's interfaces, routes and firewall are never touched;
// - addresses only from 198.18.0.0/15 and 2001:db8::/32 (IPv6 is disabled in
//   the namespaces, so nothing else appears);
// - every child process is bounded in time by itself and killed at cleanup;
// - cleanup() runs after every system, at exit, on SIGINT/SIGTERM and on
//   uncaught errors; a run that died before cleaning up is cleaned up by the
//   next run (stale "vtx*" namespaces whose owner pid is gone).

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';

export const NS_PREFIX = 'vtx';
const LOCK = path.join(os.tmpdir(), 'vpc-e2e-bench.lock');

export function sh(cmd: string, args: string[], timeoutMs = 15_000, env?: NodeJS.ProcessEnv): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
}

export function trySh(cmd: string, args: string[], timeoutMs = 15_000, env?: NodeJS.ProcessEnv): { ok: boolean; out: string } {
  try {
    return { ok: true, out: sh(cmd, args, timeoutMs, env) };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message?: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}`.trim() || (e.message ?? String(err)) };
  }
}

export function which(tool: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/bin', '/bin'])) {
    const p = path.join(dir, tool);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

// Takes the run lock (one e2e run at a time) and removes what a previous run
// that died left behind.
export function takeLock(): void {
  try {
    const pid = Number(fs.readFileSync(LOCK, 'utf8'));
    if (pid && pid !== process.pid) {
      try {
        process.kill(pid, 0);
        throw new Error(`another e2e benchmark run (pid ${pid}) is in progress; wait for it (lock ${LOCK})`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fs.writeFileSync(LOCK, String(process.pid));
  // Stale namespaces of a dead run (only ours: the "vtx" prefix).
  const list = trySh('ip', ['netns', 'list']);
  for (const line of list.out.split('\n')) {
    const ns = line.split(' ')[0];
    if (ns && ns.startsWith(NS_PREFIX) && /^vtx[0-9a-f]{4}/.test(ns)) trySh('ip', ['netns', 'del', ns]);
  }
}

export function releaseLock(): void {
  try {
    if (Number(fs.readFileSync(LOCK, 'utf8')) === process.pid) fs.unlinkSync(LOCK);
  } catch {
    // gone
  }
}

// How a topology's links are made. Every veth stays as the kernel creates
// it, as a container runtime leaves it (TSO, GSO and checksum offload on, GRO
// off): no suite tunes a guest. trafgen's frames are raw and whole (the
// packet suites), so offloads change nothing for them; iperf3's TCP (the tcp
// suite) gets what a container's TCP gets.
export interface TopoOptions {
  mtu?: number; // guest and switch-side veths (default 1500)
  underlayMtu?: number; // the veth between two VXLAN hosts (default 1600)
}

// Every topology not yet cleaned up, so that an emergency exit (Ctrl-C, an
// uncaught error) can remove them all whoever built them.
const live = new Set<Topo>();

export function cleanupAll(): void {
  for (const t of [...live]) t.cleanup();
}

export class Topo {
  readonly id = randomBytes(2).toString('hex');
  readonly mtu: number;
  readonly underlayMtu: number;
  private readonly namespaces: string[] = [];
  private readonly children: ChildProcess[] = [];
  private readonly dirs: string[] = [];
  private readonly finalizers: Array<() => void> = [];

  constructor(o: TopoOptions = {}) {
    this.mtu = o.mtu ?? 1500;
    this.underlayMtu = o.underlayMtu ?? 1600;
    live.add(this);
  }

  // A namespace "vtx<id><tag>" with lo up and IPv6 off (no stray ND/MLD frames).
  netns(tag: string): string {
    const ns = `${NS_PREFIX}${this.id}${tag}`;
    if (ns.length > 15 || !/^[a-z0-9]+$/.test(tag)) throw new Error(`bad namespace tag ${tag}`);
    sh('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    this.sysctl(ns, 'net.ipv6.conf.all.disable_ipv6', '1');
    this.sysctl(ns, 'net.ipv6.conf.default.disable_ipv6', '1');
    return ns;
  }

  sysctl(ns: string, key: string, value: string): void {
    sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `${key}=${value}`]);
  }

  ip(ns: string, ...args: string[]): string {
    return sh('ip', ['-n', ns, ...args]);
  }

  exec(ns: string, cmd: string, args: string[], timeoutMs = 15_000, env?: NodeJS.ProcessEnv): string {
    return sh('ip', ['netns', 'exec', ns, cmd, ...args], timeoutMs, env);
  }

  // A veth pair between two of our namespaces, both ends up, with the
  // kernel's default offloads.
  veth(ns1: string, dev1: string, ns2: string, dev2: string, mtu = this.mtu): void {
    sh('ip', ['-n', ns1, 'link', 'add', dev1, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', dev2, 'netns', ns2, 'mtu', String(mtu)]);
    for (const [ns, dev] of [[ns1, dev1], [ns2, dev2]] as const) {
      sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    }
  }

  // A persistent tap in `ns` (someone attaches to its fd later).
  tap(ns: string, dev: string): void {
    sh('ip', ['-n', ns, 'tuntap', 'add', 'dev', dev, 'mode', 'tap']);
    sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
  }

  tempDir(tag: string): string {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), `vtx-${this.id}-${tag}-`));
    this.dirs.push(d);
    return d;
  }

  // A child process we own: killed at cleanup if still running.
  own(child: ChildProcess): ChildProcess {
    this.children.push(child);
    return child;
  }

  spawnIn(ns: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess {
    return this.own(spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env }));
  }

  onCleanup(fn: () => void): void {
    this.finalizers.push(fn);
  }

  cleanup(): void {
    for (const fn of this.finalizers.splice(0).reverse()) {
      try {
        fn();
      } catch {
        // best effort
      }
    }
    for (const c of this.children.splice(0)) {
      if (c.exitCode === null && c.signalCode === null) {
        try {
          c.kill('SIGKILL');
        } catch {
          // gone
        }
      }
    }
    for (const ns of this.namespaces.splice(0).reverse()) {
      // Processes started with `ip netns exec` that were not our direct
      // children (daemons' own children) die with a SIGKILL by namespace.
      const pids = trySh('ip', ['netns', 'pids', ns]).out.split('\n').map(Number).filter((p) => p > 0);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      trySh('ip', ['netns', 'del', ns]);
    }
    for (const d of this.dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
    live.delete(this);
  }
}

// The first line a child prints on stdout, or '' if it exits or says
// nothing within `ms` (a helper's "ready").
export function firstLine(child: ChildProcess, ms: number): Promise<string> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(''), ms);
    readline.createInterface({ input: child.stdout! }).once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    child.once('exit', () => {
      clearTimeout(timer);
      resolve('');
    });
  });
}

// The median of a list (the mean of the two middle values for an even
// count; 0 for none). Shared by the suites that repeat a run in rounds.
export function median(v: number[]): number {
  if (v.length === 0) return 0;
  const s = [...v].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

// A run with --only keeps the other systems of the last results. Each kept
// system says which run measured it (`from`, that run's start; a system of
// this run has none), so that no ratio pairs figures from two runs: these
// machines drift by tens of percent between runs, and a ratio is only
// meaningful within one.
export interface FromRun {
  id: string;
  from?: string;
}

export function mergeRuns<T extends FromRun>(prev: T[], fresh: T[], prevStarted: string): T[] {
  const byId = new Map(fresh.map((x) => [x.id, x]));
  const kept = prev.map((x) => byId.get(x.id) ?? { ...x, from: x.from ?? prevStarted });
  return [...kept, ...fresh.filter((x) => !prev.some((y) => y.id === x.id))];
}

export function sameRun(a: FromRun, b: FromRun): boolean {
  return (a.from ?? '') === (b.from ?? '');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
