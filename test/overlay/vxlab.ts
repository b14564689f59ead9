// Test helper (not a test file) for the VXLAN overlay integration tests:
// switch instances in their own namespaces (agent.ts), Linux VTEP hosts
// (vxlan device + bridge), guests, raw-frame send/count helpers (python3
// AF_PACKET sockets opened inside a namespace) and VXLAN packet builders.
//
// Safety: everything lives in namespaces the Lab created (names "vt<id>..."),
// addresses are 198.18.0.0/15 (underlay 198.18.0.0/24, overlay
// 198.19.100.0/24) and 2001:db8:1::/64; every child process is bounded in
// time and killed by Lab.cleanup().

import { ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Guest, Lab, run, runAsync, skipReason } from '../ports/lab';

// ---------------------------------------------------------------- tools

function which(tool: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` } }).trim() || undefined;
  } catch {
    return undefined;
  }
}

// python3 by absolute path (pyenv shims and the like resolve once, here).
let pythonPath: string | undefined | null = null;
export function python(): string | undefined {
  if (pythonPath === null) {
    const p = which('python3');
    try {
      pythonPath = p ? execFileSync(p, ['-c', 'import sys, socket; socket.AF_PACKET; print(sys.executable)'], { encoding: 'utf8' }).trim() : undefined;
    } catch {
      pythonPath = undefined;
    }
  }
  return pythonPath;
}

// Why the overlay tests cannot run, or undefined. `tshark` is tried through
// scripts/setup-deps.sh once if missing.
let setupTried = false;
export function overlaySkipReason(extra: string[] = []): string | undefined {
  const base = skipReason(['ip', 'bridge', 'ping', 'ethtool', 'sysctl', 'timeout', ...extra.filter((t) => t !== 'python3')]);
  if (base !== undefined && !/missing tools/.test(base)) return base;
  if (base !== undefined || extra.some((t) => t !== 'python3' && which(t) === undefined)) {
    if (!setupTried) {
      setupTried = true;
      try {
        execFileSync('bash', [path.join(repoRoot(), 'scripts', 'setup-deps.sh')], { stdio: 'ignore', timeout: 600_000 });
      } catch {
        // reported below
      }
    }
    const again = skipReason(['ip', 'bridge', 'ping', 'ethtool', 'sysctl', 'timeout', ...extra.filter((t) => t !== 'python3')]);
    if (again !== undefined) return `${again} (scripts/setup-deps.sh was tried)`;
  }
  if (extra.includes('python3') && python() === undefined) return 'missing tool: python3 with AF_PACKET sockets (raw frame helper)';
  if (!vxlanAvailable()) return 'the kernel has no vxlan module (ip link add type vxlan failed): the Linux VTEP is the reference peer';
  return undefined;
}

let vxlanOk: boolean | undefined;
function vxlanAvailable(): boolean {
  if (vxlanOk === undefined) {
    const lab = new Lab();
    try {
      const ns = lab.netns('probe');
      run('ip', ['-n', ns, 'link', 'add', 'vxp', 'type', 'vxlan', 'id', '1', 'dstport', '4789', 'local', '198.18.0.9']);
      vxlanOk = true;
    } catch {
      vxlanOk = false;
    } finally {
      lab.cleanup();
    }
  }
  return vxlanOk;
}

export function repoRoot(): string {
  // dist/test/overlay/vxlab.js -> repo root
  return path.resolve(__dirname, '..', '..', '..');
}

// ---------------------------------------------------------------- agent

// One switch instance in a namespace (see agent.ts).
export class Agent {
  private readonly child: ChildProcessWithoutNullStreams;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; method: string }>();
  private buf = '';
  stderr = '';
  private exited = false;

  constructor(lab: Lab, readonly ns: string, options: Record<string, unknown> = {}) {
    const script = path.join(__dirname, 'agent.js');
    const opts = { hugepages: false, bufferCount: 8192, maxPorts: 16, maxSwitches: 8, ...options };
    this.child = spawn('ip', ['netns', 'exec', ns, process.execPath, script, '--agent', JSON.stringify(opts)], { stdio: ['pipe', 'pipe', 'pipe'] });
    lab.own(this.child);
    this.child.stdout.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        let msg: { id: number; ok: boolean; result?: unknown; error?: { code: string; message: string } };
        try {
          msg = JSON.parse(line);
        } catch {
          continue;
        }
        const p = this.pending.get(msg.id);
        if (!p) continue;
        this.pending.delete(msg.id);
        if (msg.ok) p.resolve(msg.result);
        else p.reject(Object.assign(new Error(`${ns}: ${p.method}: ${msg.error?.code}: ${msg.error?.message}`), { code: msg.error?.code }));
      }
    });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.child.on('exit', (code) => {
      this.exited = true;
      for (const p of this.pending.values()) p.reject(new Error(`${ns}: agent exited (${code}) during ${p.method}: ${this.stderr}`));
      this.pending.clear();
    });
  }

  call<T = unknown>(method: string, ...args: unknown[]): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.ns}: agent has exited: ${this.stderr}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.ns}: ${method} timed out`));
      }, 15_000);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
        method,
      });
      this.child.stdin.write(`${JSON.stringify({ id, method, args })}\n`);
    });
  }

  alive(): boolean {
    return !this.exited;
  }

  // The agent's process id (ip netns exec execs node in place), for sampling
  // its memory and descriptors from /proc.
  get pid(): number | undefined {
    return this.child.pid;
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.on('exit', () => r()));
    this.child.stdin.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }
}

// Stats as the Dataplane returns them (through the agent).
export interface Stats {
  engine: Record<string, number>;
  ports: Record<string, { counters: Record<string, number>; drops: Record<string, number> }>;
  switches: Record<string, { counters: Record<string, number>; drops: Record<string, number>; peers?: Record<string, Record<string, number>> }>;
  peers: Record<string, Record<string, number>>;
  uplink?: { name: string; counters: Record<string, number> };
  // agent 'statsPlus' only: the uplink port's counters read from the engine
  uplinkPortNative?: { id: number; counters: Record<string, number>; drops: Record<string, number> } | null;
}

// The uplink port's drops by reason: from stats().ports[name] when the API
// has them, else from the engine's own counter set (see agent.ts).
export function uplinkDrops(st: Stats, name = 'up'): Record<string, number> {
  return st.ports[name]?.drops ?? st.uplinkPortNative?.drops ?? {};
}

// ---------------------------------------------------------------- processes

// A bounded background command in a namespace; resolves `ready` when
// `readyText` appears in its output (tcpdump's "listening on", the
// counter's "ready").
export function background(lab: Lab, ns: string, cmd: string, args: string[], readyText?: string): { ready: Promise<void>; done: Promise<{ code: number; out: string; err: string }>; stop(): void } {
  const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  lab.own(child);
  let out = '';
  let err = '';
  let readyResolve: () => void = () => undefined;
  const ready = new Promise<void>((r) => (readyResolve = r));
  if (readyText === undefined) readyResolve();
  const check = (): void => {
    if (readyText !== undefined && (out.includes(readyText) || err.includes(readyText))) readyResolve();
  };
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    check();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    check();
  });
  const done = new Promise<{ code: number; out: string; err: string }>((resolve) =>
    child.on('close', (code) => {
      readyResolve();
      resolve({ code: code ?? -1, out, err });
    }),
  );
  return { ready, done, stop: () => void child.kill('SIGINT') };
}

const SENDER = `
import socket, sys, json, time
a = json.loads(sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((a["iface"], 0))
n = 0
for r in range(a.get("repeat", 1)):
    for h in a["frames"]:
        s.send(bytes.fromhex(h))
        n += 1
        if a.get("gap"):
            time.sleep(a["gap"])
print(json.dumps({"sent": n}))
`;

const COUNTER = `
import socket, sys, json, time, select
a = json.loads(sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(a["ethertype"]))
s.bind((a["iface"], 0))
print("ready", flush=True)
n = 0
seqs = {}
end = time.time() + a["max"]
settle = None
while True:
    lim = min(end, settle) if settle else end
    now = time.time()
    if now >= lim:
        break
    r, _, _ = select.select([s], [], [], lim - now)
    if not r:
        continue
    d, addr = s.recvfrom(65535)
    if addr[2] == socket.PACKET_OUTGOING:
        continue
    n += 1
    key = d[14:22].hex()
    seqs[key] = seqs.get(key, 0) + 1
    if a["expect"] > 0 and n >= a["expect"] and settle is None:
        settle = time.time() + a["settle"]
print(json.dumps({"count": n, "distinct": len(seqs), "maxDup": max(seqs.values()) if seqs else 0}), flush=True)
`;

// Sends raw frames out of `iface` in `ns` (AF_PACKET, SOCK_RAW).
export async function sendFrames(ns: string, iface: string, frames: Buffer[], opts: { repeat?: number; gap?: number } = {}): Promise<number> {
  const py = python();
  if (!py) throw new Error('python3 missing');
  const arg = JSON.stringify({ iface, frames: frames.map((f) => f.toString('hex')), ...opts });
  const r = await runAsync('ip', ['netns', 'exec', ns, py, '-c', SENDER, arg], 20_000);
  if (r.code !== 0) throw new Error(`sending frames in ${ns}/${iface} failed: ${r.out}`);
  return (JSON.parse(r.out.trim().split('\n').pop() ?? '{}') as { sent: number }).sent;
}

export interface CountResult {
  count: number;
  distinct: number; // distinct 8-byte payload prefixes (sequence numbers)
  maxDup: number; // most copies of one payload
}

// Counts frames of `ethertype` received on `iface` in `ns`: until `expect`
// arrived and `settle` more seconds passed (to catch duplicates), or `max`
// seconds. `ready` resolves once the socket is bound.
export function countFrames(lab: Lab, ns: string, iface: string, ethertype: number, expect: number, max = 4, settle = 0.6): { ready: Promise<void>; result: Promise<CountResult> } {
  const py = python();
  if (!py) throw new Error('python3 missing');
  const bg = background(lab, ns, py, ['-c', COUNTER, JSON.stringify({ iface, ethertype, expect, max, settle })], 'ready');
  const result = bg.done.then((r) => {
    const line = r.out.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as CountResult;
    } catch {
      throw new Error(`frame counter in ${ns}/${iface} failed: ${r.out}${r.err}`);
    }
  });
  return { ready: bg.ready, result };
}

export function tempDir(lab: Lab): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), `${lab.name('c')}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// ---------------------------------------------------------------- namespaces

// A namespace whose kernel stays quiet on IPv6 (no RS/DAD/MLD noise in frame
// counts) unless `ipv6` is asked for.
export function quietNetns(lab: Lab, tag: string, ipv6 = false): string {
  const ns = lab.netns(tag);
  if (!ipv6) lab.ns(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  return ns;
}

export function linkMac(ns: string, dev: string): string {
  const out = run('ip', ['-n', ns, '-o', 'link', 'show', dev]);
  const m = /link\/ether ([0-9a-f:]{17})/.exec(out);
  if (!m) throw new Error(`no MAC for ${ns}/${dev}: ${out}`);
  return m[1];
}

// A guest namespace attached by a veth whose other end `hostDev` is in
// `hostNs` (the switch's or the Linux host's namespace).
export function guest(lab: Lab, tag: string, hostNs: string, hostDev: string, mac: string, cidr: string, mtu: number): Guest {
  const ns = quietNetns(lab, tag);
  lab.vethBetween(hostNs, hostDev, ns, 'eth0');
  lab.ns(hostNs, 'sysctl', ['-qw', `net.ipv6.conf.${hostDev}.disable_ipv6=1`]);
  run('ip', ['-n', hostNs, 'link', 'set', hostDev, 'mtu', String(mtu)]);
  return lab.configure(ns, 'eth0', mac, cidr, mtu);
}

// A Linux VTEP for `vni` on host namespace `ns`: vxlan device + bridge, the
// flood list `peers` (static all-zeros FDB entries), learning on.
export function linuxVtep(ns: string, vni: number, local: string, underDev: string, peers: string[], opts: { mtu?: number } = {}): { vx: string; br: string } {
  const vx = `vx${vni}`;
  const br = `br${vni}`;
  const v6 = local.includes(':');
  const args = ['-n', ns, 'link', 'add', vx, 'type', 'vxlan', 'id', String(vni), 'local', local, 'dstport', '4789', 'dev', underDev];
  if (v6) args.push('noudp6zerocsumtx', 'noudp6zerocsumrx');
  run('ip', args);
  if (opts.mtu !== undefined) run('ip', ['-n', ns, 'link', 'set', vx, 'mtu', String(opts.mtu)]);
  run('ip', ['-n', ns, 'link', 'add', br, 'type', 'bridge', 'stp_state', '0']);
  run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${vx}.disable_ipv6=1`, `net.ipv6.conf.${br}.disable_ipv6=1`]);
  run('ip', ['-n', ns, 'link', 'set', vx, 'master', br]);
  run('ip', ['-n', ns, 'link', 'set', vx, 'up']);
  run('ip', ['-n', ns, 'link', 'set', br, 'up']);
  for (const p of peers) run('bridge', ['-n', ns, 'fdb', 'append', '00:00:00:00:00:00', 'dev', vx, 'dst', p]);
  return { vx, br };
}

// ---------------------------------------------------------------- ping

export interface PingResult {
  ok: boolean;
  sent: number;
  received: number;
  rttAvgMs?: number;
  out: string;
}

export async function ping(lab: Lab, from: Guest, to: string, count = 3, extra: string[] = []): Promise<PingResult> {
  const r = await lab.nsAsync(from.ns, 'ping', ['-c', String(count), '-i', '0.2', '-W', '1', '-n', ...extra, to], 5000 + count * 1500);
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.out);
  const rtt = /= [\d.]+\/([\d.]+)\//.exec(r.out);
  const received = m ? Number(m[2]) : 0;
  return { ok: r.code === 0 && received > 0, sent: m ? Number(m[1]) : 0, received, rttAvgMs: rtt ? Number(rtt[1]) : undefined, out: r.out };
}

// ---------------------------------------------------------------- packets

export function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

export function ip4Bytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

export function ip6Bytes(ip: string): Buffer {
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

function sum16(buf: Buffer, init = 0): number {
  let s = init;
  for (let i = 0; i + 1 < buf.length; i += 2) s += buf.readUInt16BE(i);
  if (buf.length % 2) s += buf[buf.length - 1] << 8;
  return s;
}

function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}

export function eth(dst: string, src: string, type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(14);
  macBytes(dst).copy(h, 0);
  macBytes(src).copy(h, 6);
  h.writeUInt16BE(type, 12);
  return Buffer.concat([h, payload]);
}

export interface Ip4Opts {
  ttl?: number;
  flagsFrag?: number; // the 16-bit flags + fragment offset field (default DF: 0x4000)
  badChecksum?: boolean;
  totalLength?: number; // override
  version?: number;
}

export function ipv4(src: string, dst: string, proto: number, payload: Buffer, o: Ip4Opts = {}): Buffer {
  const h = Buffer.alloc(20);
  h[0] = ((o.version ?? 4) << 4) | 5;
  h.writeUInt16BE(o.totalLength ?? 20 + payload.length, 2);
  h.writeUInt16BE(o.flagsFrag ?? 0x4000, 6);
  h[8] = o.ttl ?? 64;
  h[9] = proto;
  ip4Bytes(src).copy(h, 12);
  ip4Bytes(dst).copy(h, 16);
  let c = fold(sum16(h));
  if (o.badChecksum) c ^= 0x5a5a;
  h.writeUInt16BE(c, 10);
  return Buffer.concat([h, payload]);
}

export function ipv6(src: string, dst: string, next: number, payload: Buffer, hop = 64): Buffer {
  const h = Buffer.alloc(40);
  h.writeUInt32BE(0x60000000, 0);
  h.writeUInt16BE(payload.length, 4);
  h[6] = next;
  h[7] = hop;
  ip6Bytes(src).copy(h, 8);
  ip6Bytes(dst).copy(h, 24);
  return Buffer.concat([h, payload]);
}

export type UdpChecksum = 'zero' | 'good' | 'bad';

// A UDP datagram; the checksum over the IPv4 or IPv6 pseudo-header.
export function udp(src: string, dst: string, sport: number, dport: number, payload: Buffer, csum: UdpChecksum, lengthOverride?: number): Buffer {
  const u = Buffer.alloc(8);
  u.writeUInt16BE(sport, 0);
  u.writeUInt16BE(dport, 2);
  u.writeUInt16BE(lengthOverride ?? 8 + payload.length, 4);
  const d = Buffer.concat([u, payload]);
  if (csum !== 'zero') {
    const v6 = src.includes(':');
    const pseudo = v6
      ? Buffer.concat([ip6Bytes(src), ip6Bytes(dst), Buffer.from([0, 0, (d.length >> 8) & 0xff, d.length & 0xff, 0, 0, 0, 17])])
      : Buffer.concat([ip4Bytes(src), ip4Bytes(dst), Buffer.from([0, 17, (d.length >> 8) & 0xff, d.length & 0xff])]);
    let c = fold(sum16(d, sum16(pseudo)));
    if (c === 0) c = 0xffff;
    if (csum === 'bad') c = c ^ 0x00ff;
    d.writeUInt16BE(c, 6);
  }
  return d;
}

export function vxlan(vni: number, inner: Buffer, flags = 0x08, reserved = false): Buffer {
  const h = Buffer.alloc(8);
  h[0] = flags;
  if (reserved) {
    h[1] = 0xab;
    h[2] = 0xcd;
    h[3] = 0xef;
    h[7] = 0x5a;
  }
  h.writeUInt32BE((vni << 8) | h[7], 4);
  return Buffer.concat([h, inner]);
}

// An inner test frame: broadcast, EtherType `type`, an 8-byte sequence
// number then padding to 60 bytes.
export function marker(src: string, type: number, seq: number, dst = 'ff:ff:ff:ff:ff:ff'): Buffer {
  const p = Buffer.alloc(46);
  p.writeBigUInt64BE(BigInt(seq), 0);
  p.write('vxlan-overlay-test', 8);
  return eth(dst, src, type, p);
}
