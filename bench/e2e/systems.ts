// The systems under test, each built on the same kind of topology:
//
//   [gen ns G] g0 ==veth== (system, in its own namespace) ==veth== s0 [sink ns S]
//
// and, for VXLAN, two hosts with an underlay veth between them:
//
//   [G] g0 == ga [host A] ua ==underlay veth== ub [host B] sb == s0 [S]
//
// setup() returns the trafgen endpoints (afpacket:IF@NS or tapfd:IF@NS) and
// a description of exactly what runs; it throws Missing(reason) when the
// system cannot be started here.

import { type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { Ovs, ovsMissing } from './ovs';
import { Topo, firstLine, sleep, trySh, which } from './topo';
import type { HostConfig } from './switch-host';

export class Missing extends Error {}

export interface Placement {
  genCpu: number;
  sinkCpu: number;
  switchCpu: number; // this switch's engine thread and OVS's PMD thread; -1: the engine is not pinned (vpcd's default)
  busyPoll: boolean;
  idleSpinUs?: number; // this switch's adaptive polling window; undefined: its default
}

// The CPU of OVS's PMD thread and of testpmd's forwarding lcore, which are
// always pinned: switchCpu, or CPU 0 while this switch's engine is not.
export function pmdCpu(p: Placement): number {
  return p.switchCpu >= 0 ? p.switchCpu : 0;
}

// Where the switch side ran, for a run's heading ("the switch on CPU 0").
export function cpuText(switchCpu: number): string {
  return switchCpu >= 0 ? `on CPU ${switchCpu}` : "not pinned (vpcd's default; OVS's PMD and testpmd on CPU 0)";
}

// Where this switch's engine ran, for a row's "what ran".
export function enginePlacement(p: Placement): string {
  return p.switchCpu >= 0 ? `engine pinned to CPU ${p.switchCpu}` : "engine not pinned (vpcd's default)";
}

// A guest: an interface in its own namespace, as a container's would be.
export interface Guest {
  ns: string;
  dev: string;
}

export interface SystemRun {
  tx: string;
  rx: string;
  used: string; // what exactly was run (mode, port types) for the report
  counters?: () => Promise<Record<string, number> | undefined>; // engine counters of this switch
  stats?: () => Promise<Record<string, unknown>>; // this switch's full stats() (port counters and drop reasons)
  idleCpu?: (seconds: number) => Promise<number>; // percent of one CPU this switch's engine uses with no traffic
  guests?: { tx: Guest; rx: Guest }; // the two guest interfaces (not for bridge-tap, where trafgen holds tap fds)
}

export interface SystemDef {
  id: string;
  label: string;
  family: 'wire' | 'linux' | 'ovs' | 'ours';
  setup(t: Topo, p: Placement): Promise<SystemRun>;
}

const VNI = 100;

function endpointsG(t: Topo): { g: string; s: string } {
  return { g: t.netns('g'), s: t.netns('s') };
}

// The usual ends: guest g0 in namespace g sends, guest s0 in namespace s
// receives.
function guestRun(g: string, s: string, used: string, h?: SwitchHost): SystemRun {
  return {
    tx: `afpacket:g0@${g}`,
    rx: `afpacket:s0@${s}`,
    used,
    guests: { tx: { ns: g, dev: 'g0' }, rx: { ns: s, dev: 's0' } },
    ...(h ? { counters: engineCounters(h), stats: () => h.stats(), idleCpu: (sec: number) => h.idleCpu(sec) } : {}),
  };
}

// ------------------------------------------------------------ this switch

// A helper process the system runs (the switch host, the tap relay): its
// stderr kept for the error a failed start reports, and its stdin closed at
// cleanup, which tells it to end (Topo then kills what is left).
function ownChild(t: Topo, child: ChildProcess): () => string {
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  t.onCleanup(() => {
    try {
      child.stdin!.end();
    } catch {
      // gone
    }
  });
  return () => stderr;
}

const ROOT = path.resolve(__dirname, '..', '..', '..');

export class SwitchHost {
  private readonly lines: string[] = [];
  private waiters: Array<(l: string) => void> = [];
  constructor(private readonly child: ChildProcess) {
    const rl = readline.createInterface({ input: child.stdout! });
    rl.on('line', (l) => {
      const w = this.waiters.shift();
      if (w) w(l);
      else this.lines.push(l);
    });
  }

  next(timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('this switch did not answer in time')), timeoutMs);
      const take = (l: string): void => {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(l) as Record<string, unknown>);
        } catch {
          resolve({ error: `unreadable line from the switch host: ${l}` });
        }
      };
      const l = this.lines.shift();
      if (l !== undefined) take(l);
      else this.waiters.push(take);
    });
  }

  async stats(): Promise<Record<string, unknown>> {
    this.child.stdin!.write('stats\n');
    return this.next(5000);
  }

  // Percent of one CPU the engine thread uses over `seconds` with no
  // traffic: after the last frame it spins for its adaptive-polling window
  // (a fraction of a millisecond), so the wait before the first sample is
  // well past it.
  async idleCpu(seconds: number): Promise<number> {
    await new Promise((r) => setTimeout(r, 500));
    const cpu = async (): Promise<number> => {
      this.child.stdin!.write('cpu\n');
      return Number((await this.next(5000)).cpuNs);
    };
    const a = await cpu();
    const t0 = process.hrtime.bigint();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const b = await cpu();
    return (100 * (b - a)) / Number(process.hrtime.bigint() - t0);
  }

  // The switch process's resident memory, in bytes.
  async rss(): Promise<number> {
    this.child.stdin!.write('rss\n');
    return Number((await this.next(5000)).rssBytes);
  }

  // The default pool at every MTU, as a user running jumbo frames has it:
  // frames longer than a 2 KiB buffer holds go to its large buffers.
  static async start(t: Topo, ns: string, cfg: Omit<HostConfig, 'deadlineMs'>): Promise<SwitchHost> {
    const full: HostConfig = { ...cfg, deadlineMs: 300_000 };
    const child = t.spawnIn(ns, process.execPath, [path.join(ROOT, 'dist', 'bench', 'e2e', 'switch-host.js'), JSON.stringify(full)]);
    const stderr = ownChild(t, child);
    const h = new SwitchHost(child);
    const first = await h.next(20_000).catch((e: Error) => ({ error: `${e.message}; stderr: ${stderr().slice(-400)}` }));
    if (first.error !== undefined) throw new Missing(`this switch could not be set up: ${String(first.error)}`);
    return h;
  }
}

function engineCounters(h: SwitchHost): () => Promise<Record<string, number> | undefined> {
  return async () => {
    const r = await h.stats();
    const s = r.stats as { engine?: Record<string, number> } | undefined;
    return s?.engine;
  };
}

// Taps g0 and s0, made in namespace b by whoever holds their fds, move into
// the guests' namespaces, as a container's or a VM's interface would, and
// come up at the run's MTU.
function tapsToGuests(t: Topo, b: string, g: string, s: string): void {
  for (const [ns, dev] of [[g, 'g0'], [s, 's0']] as const) {
    t.ip(b, 'link', 'set', dev, 'netns', ns);
    if (t.mtu !== 1500) t.ip(ns, 'link', 'set', dev, 'mtu', String(t.mtu));
    t.ip(ns, 'link', 'set', dev, 'up');
  }
}

// tapIo 'off': the tap ports' read()/write()-per-frame path, for comparison
// with io_uring batching in the same run. kernelPath false: afpacket ports
// without the kernel fast path (docs/design/kernel-path.md), every frame
// through the engine.
function ours(type: 'afpacket' | 'tap' | 'afxdp', tapIo: 'auto' | 'off' = 'auto', kernelPath = true): SystemDef {
  const rw = type === 'tap' && tapIo === 'off';
  const engineOnly = type === 'afpacket' && !kernelPath;
  return {
    id: rw ? 'ours-tap-rw' : engineOnly ? 'ours-afpacket-engine' : `ours-${type}`,
    label: rw ? 'this switch (tap, read/write)' : engineOnly ? 'this switch (afpacket, kernel path off)' : `this switch (${type})`,
    family: 'ours',
    async setup(t, p) {
      const { g, s } = endpointsG(t);
      const b = t.netns('b');
      if (type === 'tap') {
        // The switch creates the taps in its namespace (it holds their fds);
        // the tap interfaces then move into the guests' namespaces, as a
        // container's or a VM's interface would (the port follows them).
        const h = await SwitchHost.start(t, b, {
          cpu: p.switchCpu,
          busyPoll: p.busyPoll,
          idleSpinUs: p.idleSpinUs,
          switches: [{ name: 'bench', vni: VNI }],
          ports: [
            { name: 'pg', type: 'tap', interface: 'g0', switch: 'bench', ioUring: tapIo, mtu: t.mtu },
            { name: 'ps', type: 'tap', interface: 's0', switch: 'bench', ioUring: tapIo, mtu: t.mtu },
          ],
        });
        tapsToGuests(t, b, g, s);
        await sleep(1200); // the ports notice the move and come back up
        const io = rw ? 'one read()/write() per frame' : 'reads and writes batched through io_uring';
        return guestRun(g, s, `tap ports (the switch holds the tap fds; ${io}); the guests use the tap interfaces; ${enginePlacement(p)}`, h);
      }
      t.veth(g, 'g0', b, 'bg');
      t.veth(s, 's0', b, 'bs');
      const h = await SwitchHost.start(t, b, {
        cpu: p.switchCpu,
        busyPoll: p.busyPoll,
        idleSpinUs: p.idleSpinUs,
        switches: [{ name: 'bench', vni: VNI }],
        ports: [
          { name: 'pg', type, interface: 'bg', switch: 'bench', mtu: t.mtu, ...(engineOnly ? { kernelPath: false } : {}) },
          { name: 'ps', type, interface: 'bs', switch: 'bench', mtu: t.mtu, ...(engineOnly ? { kernelPath: false } : {}) },
        ],
      });
      const kp = type === 'afpacket' ? `, kernel path ${engineOnly ? 'off' : 'on'}` : '';
      return guestRun(g, s, `${type} ports on veth, ${enginePlacement(p)}, busyPoll ${p.busyPoll}${kp}`, h);
    },
  };
}

// ------------------------------------------------------------ Linux

const wire: SystemDef = {
  id: 'wire',
  label: 'wire (veth, no switch)',
  family: 'wire',
  async setup(t) {
    const { g, s } = endpointsG(t);
    t.veth(g, 'g0', s, 's0');
    return guestRun(g, s, 'one veth pair from the generator to the sink');
  },
};

function linuxBridge(b: string, t: Topo, ports: string[]): void {
  t.ip(b, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
  for (const dev of ports) t.ip(b, 'link', 'set', dev, 'master', 'br0');
  t.ip(b, 'link', 'set', 'br0', 'up');
}

const bridge: SystemDef = {
  id: 'bridge',
  label: 'Linux bridge (veth)',
  family: 'linux',
  async setup(t) {
    const { g, s } = endpointsG(t);
    const b = t.netns('b');
    t.veth(g, 'g0', b, 'bg');
    t.veth(s, 's0', b, 'bs');
    linuxBridge(b, t, ['bg', 'bs']);
    return guestRun(g, s, 'kernel bridge, STP off, veth ports');
  },
};

const bridgeTap: SystemDef = {
  id: 'bridge-tap',
  label: 'Linux bridge (tap)',
  family: 'linux',
  async setup(t) {
    // The classic VM setup: the taps are bridge ports; the "VMs" hold the
    // tap fds. Here the VMs are trafgen, one write()/read() per frame, as a
    // hypervisor without vhost-net does.
    const b = t.netns('b');
    t.tap(b, 'tg');
    t.tap(b, 'ts');
    linuxBridge(b, t, ['tg', 'ts']);
    return { tx: `tapfd:tg@${b}`, rx: `tapfd:ts@${b}`, used: 'kernel bridge with tap ports; trafgen holds the tap fds (one write()/read() per frame, like a VM without vhost-net)' };
  },
};

// The ceiling of a switch that holds tap fds on one thread, as this one's
// engine does (bench/taprelay): two taps with this switch's tap ports'
// offloads, moved into the guests' namespaces as ours-tap's are, and one
// thread (placed as the engine is) that reads each frame from one tap and
// writes it to the other, nothing else. Both copies through user space
// stay; everything a switch adds is gone.
const TAPRELAY = path.join(ROOT, 'build', 'taprelay');

const tapRelay: SystemDef = {
  id: 'tap-relay',
  label: 'tap relay, no switch (ceiling for tap ports)',
  family: 'wire',
  async setup(t, p) {
    if (!fs.existsSync(TAPRELAY)) throw new Missing(`${TAPRELAY} not built (cmake --build build --target taprelay)`);
    const { g, s } = endpointsG(t);
    const b = t.netns('b');
    const child = t.spawnIn(b, TAPRELAY, ['--a', 'g0', '--b', 's0', '--cpu', String(p.switchCpu), '--max-seconds', '300']);
    const stderr = ownChild(t, child);
    if ((await firstLine(child, 10_000)) !== 'ready') throw new Missing(`the tap relay did not start: ${stderr().trim().slice(-400)}`);
    tapsToGuests(t, b, g, s);
    const where = p.switchCpu >= 0 ? `pinned to CPU ${p.switchCpu}` : 'not pinned';
    return guestRun(g, s, `two taps (IFF_VNET_HDR, TUNSETOFFLOAD csum tso4 tso6 tso_ecn, as this switch's tap ports) held by one thread, ${where}, that reads each frame from one and writes it to the other: no switching; the guests use the tap interfaces`);
  },
};

// ------------------------------------------------------------ Open vSwitch

// tso: other_config:userspace-tso-enable=true, OVS's own switch for guests
// that send TSO super-frames and checksum-partial packets (off by default).
function ovsL2(portType: 'afxdp' | 'system', tso = false): SystemDef {
  return {
    id: `ovs-${portType === 'afxdp' ? 'afxdp' : 'afpacket'}${tso ? '-tso' : ''}`,
    label: `OVS userspace (${portType === 'afxdp' ? 'AF_XDP' : 'system/AF_PACKET'}${tso ? ', userspace TSO' : ''})`,
    family: 'ovs',
    async setup(t, p) {
      const why = ovsMissing();
      if (why) throw new Missing(why);
      const { g, s } = endpointsG(t);
      const b = t.netns('b');
      t.veth(g, 'g0', b, 'bg');
      t.veth(s, 's0', b, 'bs');
      const o = await Ovs.start(t, b, 'l2', `0x${(1 << pmdCpu(p)).toString(16)}`, tso ? { 'userspace-tso-enable': 'true' } : {});
      o.vsctl(['add-br', 'br0', '--', 'set', 'bridge', 'br0', 'datapath_type=netdev']);
      const used: string[] = [];
      for (const dev of ['bg', 'bs']) {
        if (portType === 'afxdp') o.vsctl(['add-port', 'br0', dev, '--', 'set', 'interface', dev, 'type=afxdp', 'options:n_rxq=1']);
        else o.vsctl(['add-port', 'br0', dev]);
      }
      await sleep(1500);
      for (const dev of ['bg', 'bs']) {
        const st = o.ifaceState(dev);
        if (st.error) throw new Missing(`OVS port ${dev} (${portType}) failed: ${st.error} (log: ${o.log()})`);
        used.push(`${dev}: type=${st.type.replace(/"/g, '') || 'system'}`);
      }
      // What OVS says it did about XDP (mode, copy or zero-copy), from its log.
      const xdp = o.logLines().filter((l) => /xdp|XDP/.test(l) && /mode|copy/i.test(l)).map((l) => l.replace(/^.*\|\s*/, ''));
      if (xdp.length) used.push(`OVS log: ${[...new Set(xdp)].slice(0, 4).join('; ')}`);
      if (tso) used.push(`userspace-tso-enable=true; OVS log: ${o.logLines().filter((l) => /tso|TSO/.test(l)).map((l) => l.replace(/^.*\|\s*/, '')).slice(0, 2).join('; ') || 'nothing about TSO'}`);
      return guestRun(g, s, `${(trySh('ovs-vswitchd', ['--version']).out.split('\n')[0] ?? '').trim()}, datapath_type=netdev, NORMAL action, PMD mask ${(1 << pmdCpu(p)).toString(16)}; ${used.join('; ')}`);
    },
  };
}

// ------------------------------------------------------------ VXLAN

// ours-engine: this switch with kernelPath off on the guest port and the
// uplink, so the engine encapsulates and decapsulates every frame (what an
// IPv6 underlay, a tap or AF_XDP guest, or a trunk gets).
type Side = 'linux' | 'ours' | 'ours-engine' | 'ovs';

async function vxlanSide(t: Topo, p: Placement, side: Side, host: string, guestDev: string, uplinkDev: string, local: string, remote: string, underlay: Underlay = 'veth'): Promise<{ used: string; h?: SwitchHost }> {
  if (side === 'linux') {
    t.ip(host, 'addr', 'add', `${local}/24`, 'dev', uplinkDev);
    t.ip(host, 'link', 'add', 'vx0', 'type', 'vxlan', 'id', String(VNI), 'local', local, 'remote', remote, 'dstport', '4789', 'dev', uplinkDev);
    t.ip(host, 'link', 'set', 'vx0', 'up');
    linuxBridge(host, t, [guestDev, 'vx0']);
    return { used: 'Linux bridge + vxlan device' };
  }
  if (side === 'ours' || side === 'ours-engine') {
    const kp = side === 'ours-engine' ? { kernelPath: false } : {};
    // A NIC-like underlay is still a veth, which xdpDecap's auto leaves
    // alone: 'on' gives it the XDP stage a NIC gets by default.
    const xdp = side === 'ours' && underlay === 'nic' ? { xdpDecap: 'on' as const } : {};
    const h = await SwitchHost.start(t, host, {
      cpu: p.switchCpu,
      busyPoll: p.busyPoll,
      idleSpinUs: p.idleSpinUs,
      switches: [{ name: 'bench', vni: VNI }],
      uplink: { name: 'ul', type: 'afpacket', interface: uplinkDev, localIp: `${local}/24`, mtu: t.underlayMtu, ...kp, ...xdp },
      ports: [{ name: 'pg', type: 'afpacket', interface: guestDev, switch: 'bench', mtu: t.mtu, ...kp }],
      peers: [{ switch: 'bench', ip: remote }],
    });
    return { used: `this switch, afpacket port + afpacket uplink (createUplink + addPeer)${side === 'ours-engine' ? ', kernelPath: false on both' : ''}${'xdpDecap' in xdp ? ', uplink xdpDecap: on' : ''}, ${enginePlacement(p)}`, h };
  }
  const why = ovsMissing();
  if (why) throw new Missing(why);
  const o = await Ovs.start(t, host, host.slice(-2), `0x${(1 << pmdCpu(p)).toString(16)}`);
  // The usual userspace-tunnel layout: br-phy owns the underlay port and the
  // VTEP address (on its internal port), br-int the guest and vxlan ports.
  o.vsctl(['add-br', 'br-phy', '--', 'set', 'bridge', 'br-phy', 'datapath_type=netdev']);
  o.vsctl(['add-port', 'br-phy', uplinkDev, '--', 'set', 'interface', uplinkDev, 'type=afxdp']);
  t.ip(host, 'link', 'set', 'br-phy', 'mtu', String(t.underlayMtu));
  t.ip(host, 'addr', 'add', `${local}/24`, 'dev', 'br-phy');
  t.ip(host, 'link', 'set', 'br-phy', 'up');
  o.vsctl(['add-br', 'br-int', '--', 'set', 'bridge', 'br-int', 'datapath_type=netdev']);
  o.vsctl(['add-port', 'br-int', guestDev, '--', 'set', 'interface', guestDev, 'type=afxdp']);
  o.vsctl(['add-port', 'br-int', 'vx0', '--', 'set', 'interface', 'vx0', 'type=vxlan', `options:remote_ip=${remote}`, `options:key=${VNI}`]);
  await sleep(1000);
  trySh('ovs-appctl', [`--target=${path.join(o.dir, 'ovs-vswitchd.ctl')}`, 'ovs/route/add', `${remote}/32`, 'br-phy'], 5000, o.env);
  for (const dev of [uplinkDev, guestDev, 'vx0']) {
    const st = o.ifaceState(dev);
    if (st.error) throw new Missing(`OVS port ${dev} failed: ${st.error} (log: ${o.log()})`);
  }
  return { used: 'OVS userspace: br-phy (afxdp underlay port, VTEP on its internal port) + br-int (afxdp guest port, vxlan port)' };
}

// wire: the underlay veths take no super-frames (TSO, GSO and UDP
// segmentation off), so every batch is cut before it crosses and each VXLAN
// packet arrives on its own, as it does over a wire or a NIC without GRO for
// tunnels. The default veth underlay carries a sender's 64 KiB batches whole,
// which no physical network does. nic: the same, with GRO on on both ends,
// as a NIC has it by default (a veth's is off): what a receiving host may
// merge before its switch.
type Underlay = 'veth' | 'wire' | 'nic';
function vxlan(id: string, label: string, a: Side, bSide: Side, underlay: Underlay = 'veth'): SystemDef {
  const wire = underlay !== 'veth';
  return {
    id,
    label,
    family: a === 'ours' || a === 'ours-engine' ? 'ours' : a === 'ovs' ? 'ovs' : 'linux',
    async setup(t, p) {
      const { g, s } = endpointsG(t);
      const ha = t.netns('ha');
      const hb = t.netns('hb');
      t.veth(g, 'g0', ha, 'ga');
      t.veth(s, 's0', hb, 'sb');
      t.veth(ha, 'ua', hb, 'ub', t.underlayMtu);
      const segs = ['tso', 'gso', 'tx-udp-segmentation', 'tx-udp_tnl-segmentation', 'tx-udp_tnl-csum-segmentation'];
      for (const [ns, dev] of wire ? ([[ha, 'ua'], [hb, 'ub']] as const) : []) {
        const r = trySh('ip', ['netns', 'exec', ns, 'ethtool', '-K', dev, ...segs.flatMap((k) => [k, 'off'])]);
        if (!r.ok) throw new Missing(`ethtool -K ${dev} ${segs.join(' ')} off failed: ${r.out}`);
        const gro = underlay === 'nic' ? trySh('ip', ['netns', 'exec', ns, 'ethtool', '-K', dev, 'gro', 'on']) : { ok: true, out: '' };
        if (!gro.ok) throw new Missing(`ethtool -K ${dev} gro on failed: ${gro.out}`);
      }
      const A = await vxlanSide(t, p, a, ha, 'ga', 'ua', '198.18.1.1', '198.18.1.2', underlay);
      const B = await vxlanSide(t, { ...p, switchCpu: p.switchCpu }, bSide, hb, 'sb', 'ub', '198.18.1.2', '198.18.1.1', underlay);
      await sleep(300);
      return guestRun(g, s, `host A: ${A.used}; host B: ${B.used}; VNI ${VNI}, underlay 198.18.1.0/24 MTU ${t.underlayMtu}${wire ? ', underlay veths with tso, gso and udp segmentation off' : ''}${underlay === 'nic' ? ', gro on' : ''}`, A.h);
    },
  };
}

// ------------------------------------------------------------ suites

export const SUITES: Record<string, { title: string; systems: SystemDef[]; ours: string; peers: Record<string, string> }> = {
  l2: {
    title: 'Layer 2 port to port (64-byte frames)',
    systems: [wire, bridge, bridgeTap, ovsL2('afxdp'), ovsL2('system'), ours('afxdp'), ours('afpacket'), ours('afpacket', 'auto', false), ours('tap'), ours('tap', 'off')],
    ours: 'ours-afpacket',
    // Like for like: our AF_XDP ports against the wire, the bridge and OVS's
    // AF_XDP ports; AF_PACKET against OVS's AF_PACKET ports; tap against tap.
    peers: { wire: 'ours-afxdp', bridge: 'ours-afxdp', 'ovs-afxdp': 'ours-afxdp', 'ovs-afpacket': 'ours-afpacket', 'bridge-tap': 'ours-tap' },
  },
  vxlan: {
    title: 'VXLAN between two host namespaces (64-byte inner frames)',
    systems: [wire, vxlan('vx-linux', 'Linux bridge + vxlan', 'linux', 'linux'), vxlan('vx-ovs', 'OVS userspace vxlan (AF_XDP)', 'ovs', 'ovs'), vxlan('vx-ours', 'this switch, both hosts', 'ours', 'ours'), vxlan('vx-ours-linux', 'this switch -> Linux vxlan', 'ours', 'linux')],
    ours: 'vx-ours',
    peers: { wire: 'vx-ours', 'vx-linux': 'vx-ours', 'vx-ovs': 'vx-ours' },
  },
};

// Systems only the tcp suite runs (not part of a packet suite's table).
export const TCP_ONLY: SystemDef[] = [
  tapRelay,
  ovsL2('system', true),
  vxlan('vx-linux-wire', 'Linux bridge + vxlan, wire-like underlay', 'linux', 'linux', 'wire'),
  vxlan('vx-ours-wire', 'this switch, both hosts, wire-like underlay', 'ours', 'ours', 'wire'),
  vxlan('vx-linux-nic', 'Linux bridge + vxlan, NIC-like underlay (wire-like, GRO on)', 'linux', 'linux', 'nic'),
  vxlan('vx-ours-nic', 'this switch, both hosts, NIC-like underlay (wire-like, GRO on)', 'ours', 'ours', 'nic'),
  vxlan('vx-ours-engine', 'this switch, both hosts, kernel path off', 'ours-engine', 'ours-engine'),
];

// Port-to-port forwarding per backend of this switch at fixed offered rates
// (issue 3's figures).
export const PORT_BACKENDS: SystemDef[] = [ours('afpacket'), ours('tap'), ours('tap', 'off'), ours('afxdp')];

export function toolsMissing(): string | undefined {
  for (const tool of ['ip', 'ethtool']) if (!which(tool)) return `${tool} not found (bash scripts/setup-deps.sh)`;
  return undefined;
}
