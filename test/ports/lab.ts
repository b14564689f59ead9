// Test helper (not a test file): private network namespaces, veth pairs and
// taps for the port integration tests, and the commands run inside them.
//
// Safety: every name starts with "vt" + a random suffix, every address is
// from 198.18.0.0/15, every command is bounded in time, and cleanup() deletes
// everything the lab created (namespaces take their interfaces with them;
// switch-side veth ends in the root namespace are deleted by name).

import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';
import { Dataplane, type PortSpec } from '../../src/dataplane/index';

const execFileAsync = promisify(execFile);

export const TOOLS = ['ip', 'ping', 'ethtool', 'iperf3', 'tcpdump'] as const;

function which(tool: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    try {
      execFileSync('test', ['-x', `${dir}/${tool}`]);
      return true;
    } catch {
      // next
    }
  }
  return false;
}

// Why these tests cannot run here, or undefined when they can.
export function skipReason(tools: readonly string[] = TOOLS): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux (network namespaces, AF_PACKET, tap)';
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return 'needs root (CAP_NET_ADMIN and CAP_NET_RAW) to create namespaces, veth pairs and taps';
  }
  const missing = tools.filter((t) => !which(t));
  if (missing.length > 0) return `missing tools: ${missing.join(', ')} (install with: bash scripts/setup-deps.sh)`;
  return undefined;
}

export function run(cmd: string, args: string[], timeoutMs = 10_000): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
}

export async function runAsync(cmd: string, args: string[], timeoutMs = 20_000): Promise<{ code: number; out: string }> {
  try {
    const r = await execFileAsync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

export interface Guest {
  ns: string;
  dev: string; // the interface inside the namespace
  mac: string;
  ip: string; // without prefix
}

export class Lab {
  readonly id = randomBytes(3).toString('hex'); // 6 hex chars
  private readonly namespaces: string[] = [];
  private readonly rootLinks: string[] = [];
  private readonly background: Array<{ kill(signal?: NodeJS.Signals): boolean }> = [];

  // A unique name: "vt" + id + tag; at most 15 characters.
  name(tag: string): string {
    const n = `vt${this.id}${tag}`;
    if (n.length > 15) throw new Error(`lab name too long: ${n}`);
    return n;
  }

  netns(tag: string): string {
    const ns = this.name(tag);
    run('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  ns(ns: string, cmd: string, args: string[], timeoutMs = 10_000): string {
    return run('ip', ['netns', 'exec', ns, cmd, ...args], timeoutMs);
  }

  nsAsync(ns: string, cmd: string, args: string[], timeoutMs = 20_000): Promise<{ code: number; out: string }> {
    return runAsync('ip', ['netns', 'exec', ns, cmd, ...args], timeoutMs);
  }

  // A veth pair: `switchSide` stays in the root namespace (the switch
  // attaches to it), the other end goes into `ns` as `dev`.
  veth(switchSide: string, ns: string, dev: string): void {
    const tmp = `${switchSide}p`;
    run('ip', ['link', 'add', switchSide, 'type', 'veth', 'peer', 'name', tmp]);
    this.rootLinks.push(switchSide);
    run('ip', ['link', 'set', tmp, 'netns', ns]);
    run('ip', ['-n', ns, 'link', 'set', tmp, 'name', dev]);
    run('ip', ['link', 'set', switchSide, 'up']);
  }

  // Gives `dev` in `ns` a MAC and an address and brings it up. The guest
  // keeps what a container gets by default: TSO, GSO and checksum offload on.
  configure(ns: string, dev: string, mac: string, cidr: string, mtu = 1500): Guest {
    run('ip', ['-n', ns, 'link', 'set', dev, 'address', mac, 'mtu', String(mtu)]);
    run('ip', ['-n', ns, 'addr', 'add', cidr, 'dev', dev]);
    run('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    return { ns, dev, mac, ip: cidr.split('/')[0] };
  }

  // A guest behind a veth whose switch side is `switchSide`.
  vethGuest(tag: string, switchSide: string, mac: string, cidr: string): Guest {
    const ns = this.netns(tag);
    this.veth(switchSide, ns, 'eth0');
    return this.configure(ns, 'eth0', mac, cidr);
  }

  // A veth pair between two namespaces the lab created: `dev1` in `ns1`,
  // `dev2` in `ns2`. Nothing touches the root namespace; both ends go away
  // with their namespaces.
  vethBetween(ns1: string, dev1: string, ns2: string, dev2: string): void {
    run('ip', ['-n', ns1, 'link', 'add', dev1, 'type', 'veth', 'peer', 'name', dev2, 'netns', ns2]);
    run('ip', ['-n', ns1, 'link', 'set', dev1, 'up']);
    run('ip', ['-n', ns2, 'link', 'set', dev2, 'up']);
  }

  // A veth pair in the root namespace, both ends up: a link between two
  // switches (a trunk) that each hold one end. cleanup() deletes it.
  switchLink(end1: string, end2: string): void {
    run('ip', ['link', 'add', end1, 'type', 'veth', 'peer', 'name', end2]);
    this.rootLinks.push(end1);
    run('ip', ['link', 'set', end1, 'up']);
    run('ip', ['link', 'set', end2, 'up']);
  }

  // A link in the root namespace the test expects to outlive what made it
  // (a persistent tap); cleanup() deletes it.
  ownLink(name: string): void {
    this.rootLinks.push(name);
  }

  // A process the test started itself; cleanup() kills it if still running.
  own(child: { kill(signal?: NodeJS.Signals): boolean }): void {
    this.background.push(child);
  }

  // Forgets a root-namespace link the test already deleted.
  forget(link: string): void {
    const i = this.rootLinks.indexOf(link);
    if (i >= 0) this.rootLinks.splice(i, 1);
  }

  track(link: string): void {
    if (!this.rootLinks.includes(link)) this.rootLinks.push(link);
  }

  // Starts a bounded command in the background; cleanup() kills it if it
  // is still running.
  spawnIn(ns: string, cmd: string, args: string[]): { done: Promise<string>; stop(): void } {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.background.push(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise<string>((resolve) => child.on('close', () => resolve(out)));
    return { done, stop: () => void child.kill('SIGINT') };
  }

  // A one-test iperf3 server (-1), returned once it listens on 5201: on a
  // loaded machine it can take seconds to start.
  async iperf3Server(ns: string, bind?: string): Promise<{ done: Promise<string>; stop(): void }> {
    const srv = this.spawnIn(ns, 'iperf3', ['-s', '-1', ...(bind === undefined ? [] : ['-B', bind])]);
    await untilPasses(async () => {
      if (!(await this.nsAsync(ns, 'ss', ['-ltn'])).out.includes(':5201')) throw new Error(`iperf3 in ${ns} is not listening on 5201`);
    }, 20_000, 100);
    return srv;
  }

  async ping(from: Guest, to: string, count = 3): Promise<{ ok: boolean; received: number; out: string }> {
    const r = await this.nsAsync(from.ns, 'ping', ['-c', String(count), '-i', '0.2', '-W', '1', '-n', to], 5000 + count * 1500);
    const m = /(\d+) received/.exec(r.out);
    const received = m ? Number(m[1]) : 0;
    return { ok: r.code === 0 && received > 0, received, out: r.out };
  }

  cleanup(): void {
    for (const child of this.background) {
      try {
        child.kill('SIGKILL');
      } catch {
        // gone
      }
    }
    for (const ns of this.namespaces.reverse()) {
      try {
        run('ip', ['netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
    for (const link of this.rootLinks) {
      try {
        run('ip', ['link', 'del', link]);
      } catch {
        // went with its peer's namespace, or never existed
      }
    }
  }
}

// Another process whose Dataplane keeps its journal in `journalDir` and
// holds one port (`spec`, on switch "a"); it prints "ready" once the port is
// up, then waits to be killed (the kill -9 tests: what it changed on the
// interface stays, and the journal says what). Own it with lab.own().
export function spawnJournaledPort(journalDir: string, spec: PortSpec): ReturnType<typeof spawn> & { output(): string } {
  const index = path.resolve(__dirname, '..', '..', 'src', 'dataplane', 'index.js');
  const script = `
    const { Dataplane } = require(${JSON.stringify(index)});
    const dp = new Dataplane({ hugepages: false, bufferCount: 1024, bufferSize: 4096, maxPorts: 4, maxSwitches: 2 });
    dp.useOffloadJournal(${JSON.stringify(journalDir)});
    dp.start();
    (async () => {
      await dp.createSwitch({ name: 'a', vni: 1 });
      await dp.createPort(${JSON.stringify(spec)});
      console.log('ready');
      setInterval(() => {}, 1000);
    })().catch((e) => { console.error(e); process.exit(2); });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return Object.assign(child, { output: () => out });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// Retries `check` until it stops throwing (an assertion inside it), then
// returns its value: returning undefined or false is success here. Not
// control/helpers.ts's eventually(), which retries until the check returns
// a value; the names differ so that a check written for one is not passed
// to the other.
export async function untilPasses<T>(check: () => T | Promise<T>, timeoutMs = 5000, stepMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await sleep(stepMs);
    }
  }
}

// A tap created by the switch (port `portName` in switch `sw`), then moved
// into a guest namespace of its own and configured there.
export async function tapGuest(lab: Lab, dp: Dataplane, portName: string, sw: string, tag: string, mac: string, cidr: string, extra: Partial<PortSpec> = {}): Promise<Guest> {
  const tap = lab.name(tag);
  await dp.createPort({ name: portName, type: 'tap', interface: tap, switch: sw, ...extra });
  const ns = lab.netns(`${tag}n`);
  run('ip', ['link', 'set', tap, 'netns', ns]);
  return lab.configure(ns, tap, mac, cidr);
}

// Every guest pings every other one (ARP first, then ICMP).
export async function pingAll(lab: Lab, guests: Guest[]): Promise<void> {
  for (const a of guests) {
    for (const b of guests) {
      if (a === b) continue;
      const r = await lab.ping(a, b.ip);
      assert.ok(r.ok, `ping ${a.ip} -> ${b.ip} failed:\n${r.out}`);
    }
  }
}

// A lab and a started dataplane for one test; skips (with the reason) when
// the tools or privileges are missing; everything is deleted afterwards.
export async function withLab(t: { skip(msg: string): void }, tools: string[] | undefined, fn: (lab: Lab, dp: Dataplane) => Promise<void>): Promise<void> {
  const reason = skipReason(tools);
  if (reason !== undefined) {
    t.skip(reason);
    return;
  }
  const lab = new Lab();
  const dp = new Dataplane({ hugepages: false, bufferCount: 16384, maxPorts: 32, maxSwitches: 16 });
  dp.start();
  try {
    await fn(lab, dp);
  } finally {
    dp.close();
    lab.cleanup();
  }
}

// The pool's free lists are back where they were (engine.buffers_free and
// large_buffers_free, refreshed by housekeeping), give or take what the
// engine's own buffer cache holds (at most 512 regular and 16 large buffers,
// core/buffer_pool.h): a buffer lost per frame shows, a handful in the cache
// does not fail the test.
export async function expectBuffersBack(dp: Dataplane, before: Record<string, number>): Promise<void> {
  const large0 = before.large_buffers_free ?? 0;
  const regular0 = before.buffers_free ?? 0;
  assert.ok(large0 > 0 && regular0 > 0, 'the engine reports its free buffers');
  await untilPasses(() => {
    const e = dp.stats().engine;
    const large = e.large_buffers_free ?? 0;
    const regular = e.buffers_free ?? 0;
    assert.ok(large0 - large <= 16, `large buffers back: ${large} free, ${large0} before`);
    assert.ok(regular0 - regular <= 512, `regular buffers back: ${regular} free, ${regular0} before`);
  }, 3000);
}
