// Guests with their default offloads (TSO, GSO and checksum offload on, MTU
// 1500) through the kernel-facing ports: iperf3 TCP through afpacket ports,
// tap ports, AF_XDP ports (native and generic XDP), between every pair of
// them (IPv4 and IPv6), across a VLAN trunk between two instances of this
// switch, and from an afpacket
// guest to an AF_XDP guest whose interface has its offloads off
// (disableOffloads: the kernel's software GSO cuts the super-frames), each
// next to the Linux bridge on the same kind of topology in the same test;
// guests with MTU 9000 on ports of MTU 1500 (answered with ICMP too big); and
// the segments a 64 KiB TSO frame becomes on its way to that AF_XDP guest,
// checked by tshark. (The switch's own segmentation, for an egress that takes
// no TSO, is checked the same way where it cuts frames for a VXLAN overlay:
// test/overlay/overlay.test.ts.)
//
// Throughput is reported (t.diagnostic), and asserted only against collapse:
// a run under 10% of the bridge's is what the 0.00025 Gbit/s of a switch that
// dropped super-frames looked like, whatever the machine's load. For the
// port without offloads the bridge's port has them off too (like for like),
// and the default bridge's 10% applies as well.
//
// Safety: namespaces and veths the lab creates (the bridge lives in a
// namespace of its own), addresses from 198.18.0.0/15 and 2001:db8::/32,
// iperf3 bounded by -t or -n, tcpdump by -c and a timeout.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dataplane } from '../../src/dataplane/index';
import { untilPasses, expectBuffersBack, Guest, Lab, run, tapGuest, withLab } from './lab';
import { checkContiguous, segmentsIn } from './tcp-segments';

const SECONDS = '3';

function mac(n: number): string {
  return `02:00:5e:30:00:${n.toString(16).padStart(2, '0')}`;
}

interface Tcp {
  gbps: number;
  bytes: number;
  retransmits: number;
}

// One bounded iperf3 TCP run from `from` to `to` (one stream).
async function iperf(lab: Lab, from: Guest, to: Guest, args: string[] = ['-t', SECONDS], toAddr = to.ip): Promise<Tcp> {
  const srv = await lab.iperf3Server(to.ns, toAddr);
  const r = await lab.nsAsync(from.ns, 'iperf3', ['-c', toAddr, ...args, '-J'], 30_000);
  srv.stop();
  await srv.done;
  assert.equal(r.code, 0, `iperf3 ${from.ip} -> ${toAddr} failed:\n${r.out.slice(0, 2000)}`);
  const j = JSON.parse(r.out) as { end: { sum_received: { bits_per_second: number; bytes: number }; sum_sent: { retransmits?: number } } };
  return { gbps: j.end.sum_received.bits_per_second / 1e9, bytes: j.end.sum_received.bytes, retransmits: j.end.sum_sent.retransmits ?? 0 };
}

// Two guests on a Linux bridge inside a namespace of its own: the reference.
// `off`: features turned off on the receiving guest's bridge port (p2), so
// that the kernel does the work a switch port without them makes it do.
function bridgeGuests(lab: Lab, off: string[] = []): [Guest, Guest] {
  const nsB = lab.netns('br');
  run('ip', ['-n', nsB, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
  run('ip', ['-n', nsB, 'link', 'set', 'br0', 'up']);
  const guests = [1, 2].map((k) => {
    const ns = lab.netns(`b${k}`);
    lab.vethBetween(nsB, `p${k}`, ns, 'eth0');
    run('ip', ['-n', nsB, 'link', 'set', `p${k}`, 'master', 'br0']);
    return lab.configure(ns, 'eth0', mac(0x80 + k), `198.18.60.${k}/24`);
  });
  if (off.length > 0) run('ip', ['netns', 'exec', nsB, 'ethtool', '-K', 'p2', ...off.flatMap((f) => [f, 'off'])]);
  return [guests[0], guests[1]];
}

function offloadsOf(g: Guest): string {
  const k = run('ip', ['netns', 'exec', g.ns, 'ethtool', '-k', g.dev]);
  const on = (name: string): string => new RegExp(`^${name}: (\\w+)`, 'm').exec(k)?.[1] ?? '?';
  return `tso ${on('tcp-segmentation-offload')}, gso ${on('generic-segmentation-offload')}, tx-csum ${on('tx-checksumming')}`;
}

// Runs the switch path and the bridge in the same test, reports both, and
// asserts that the switch's throughput did not collapse. `off`: the bridge's
// port to the receiving guest has these features off, as the switch's port
// does (the reference then segments too); the ratio to the default bridge is
// reported beside it.
async function compareWithBridge(t: { diagnostic(m: string): void }, lab: Lab, what: string, a: Guest, b: Guest, off: string[] = []): Promise<{ sw: Tcp; br: Tcp; bridge: [Guest, Guest] }> {
  t.diagnostic(`guest offloads (${a.dev}): ${offloadsOf(a)}`);
  assert.match(offloadsOf(a), /tso on, gso on, tx-csum on/, 'the guest keeps its default offloads');
  const sw = await iperf(lab, a, b);
  const [b1, b2] = bridgeGuests(lab, off);
  const br = await iperf(lab, b1, b2);
  const ratio = sw.gbps / br.gbps;
  const ref = off.length > 0 ? `Linux bridge with ${off.join(', ')} off on its port to the receiver` : 'Linux bridge';
  t.diagnostic(`${what}: ${sw.gbps.toFixed(2)} Gbit/s (${sw.retransmits} retransmits); ${ref}: ${br.gbps.toFixed(2)} Gbit/s ` +
    `(${br.retransmits} retransmits); ratio ${ratio.toFixed(2)}`);
  assert.ok(sw.bytes > 0 && br.bytes > 0);
  assert.ok(ratio >= 0.1, `${what} collapsed: ${sw.gbps.toFixed(3)} Gbit/s against the ${ref}'s ${br.gbps.toFixed(2)}`);
  return { sw, br, bridge: [b1, b2] };
}

test('iperf3 TCP between two default veth guests through afpacket ports, every frame through the engine (kernelPath: false), is not collapsed next to the Linux bridge', async (t) => {
  await withLab(t, ['ip', 'ethtool', 'iperf3', 'ss'], async (lab, dp) => {
    await dp.createSwitch({ name: 'a', vni: 100 });
    const g1 = lab.vethGuest('g1', lab.name('s1'), mac(1), '198.18.61.1/24');
    const g2 = lab.vethGuest('g2', lab.name('s2'), mac(2), '198.18.61.2/24');
    await dp.createPort({ name: 'p1', type: 'afpacket', interface: lab.name('s1'), switch: 'a', kernelPath: false });
    await dp.createPort({ name: 'p2', type: 'afpacket', interface: lab.name('s2'), switch: 'a', kernelPath: false });
    assert.match(dp.portStatus('p1')?.offloads ?? '', /virtio-net headers.*interface offloads left as they are/);
    assert.equal(dp.portStatus('p1')?.kernelPath, 'off: turned off (kernelPath: false)');
    await compareWithBridge(t, lab, 'afpacket <-> afpacket, engine only', g1, g2);
    const c1 = dp.portStatus('p1')?.counters;
    const c2 = dp.portStatus('p2')?.counters;
    t.diagnostic(`p1 (sender side): ${JSON.stringify(c1)}`);
    t.diagnostic(`p2 (receiver side): ${JSON.stringify(c2)}`);
    // The sender's TSO frames came in whole and left whole.
    assert.ok((c1?.rx_super ?? 0) > 0 && (c1?.rx_offload ?? 0) > 0, 'super-frames with offload state were received');
    assert.ok((c2?.tx_super ?? 0) > 0 && (c2?.tx_offload ?? 0) > 0, 'and transmitted as they are');
    assert.equal(c1?.rx_bad_vnet, 0);
    assert.equal(c1?.rx_too_big, 0);
    const s = dp.stats();
    assert.equal(s.ports.p1.drops.oversize, 0, JSON.stringify(s.ports.p1.drops));
    assert.equal(s.ports.p1.counters.rx_kernel_path, 0);
  });
});

// The default: the kernel fast path (docs/design/kernel-path.md). The engine
// forwards the first frames (ARP, the first of each direction), then the
// kernel switches the pair's frames, super-frames whole; the ports' counters
// still count every frame.
test('iperf3 TCP between two default veth guests through afpacket ports goes through the kernel fast path and is counted', async (t) => {
  await withLab(t, ['ip', 'ethtool', 'iperf3', 'ss'], async (lab, dp) => {
    await dp.createSwitch({ name: 'a', vni: 100 });
    const g1 = lab.vethGuest('g1', lab.name('s1'), mac(1), '198.18.61.1/24');
    const g2 = lab.vethGuest('g2', lab.name('s2'), mac(2), '198.18.61.2/24');
    await dp.createPort({ name: 'p1', type: 'afpacket', interface: lab.name('s1'), switch: 'a' });
    await dp.createPort({ name: 'p2', type: 'afpacket', interface: lab.name('s2'), switch: 'a' });
    const status = dp.portStatus('p1')?.kernelPath ?? '';
    t.diagnostic(`p1 kernelPath: ${status}`);
    assert.match(status, /^on: /, 'the kernel fast path is on (clang, libbpf and Linux 6.6 or later)');
    const { sw } = await compareWithBridge(t, lab, 'afpacket <-> afpacket, kernel path', g1, g2);
    await untilPasses(async () => {
      const s = dp.stats();
      const kernel = s.ports.p1.counters.rx_kernel_path;
      assert.ok(kernel > 0, 'the kernel switched frames');
      // iperf3 sent sw.bytes; the counters (kernel's added every 100 ms) hold at least that.
      assert.ok(s.ports.p1.counters.rx_bytes >= sw.bytes, `rx_bytes ${s.ports.p1.counters.rx_bytes} >= ${sw.bytes}`);
      assert.ok(s.ports.p2.counters.tx_kernel_path > 0);
    }, 2000);
    const s = dp.stats();
    t.diagnostic(`p1: rx_packets ${s.ports.p1.counters.rx_packets}, rx_kernel_path ${s.ports.p1.counters.rx_kernel_path}; engine kernel_path_entries ${s.engine.kernel_path_entries}`);
    assert.ok(s.ports.p1.counters.rx_kernel_path > s.ports.p1.counters.rx_packets / 2, 'most frames went through the kernel');
    assert.equal(s.engine.kernel_path_entries, 2);
  });
});

test('kernelPath applies to afpacket ports only, and says so', async (t) => {
  await withLab(t, ['ip'], async (_lab, dp) => {
    await dp.createSwitch({ name: 'a', vni: 100 });
    await assert.rejects(dp.createPort({ name: 't1', type: 'tap', interface: 'vpckp0', switch: 'a', kernelPath: true }), (e: Error & { field?: string }) => {
      assert.equal(e.field, 'kernelPath');
      assert.match(e.message, /applies only to afpacket ports/);
      return true;
    });
    assert.equal(dp.ports().length, 0);
  });
});

test('iperf3 TCP between two default tap guests (IFF_VNET_HDR, TUNSETOFFLOAD) is not collapsed next to the Linux bridge', async (t) => {
  await withLab(t, ['ip', 'ethtool', 'iperf3', 'ss'], async (lab, dp) => {
    await dp.createSwitch({ name: 'a', vni: 100 });
    const g1 = await tapGuest(lab, dp, 't1', 'a', 't1', mac(1), '198.18.62.1/24');
    const g2 = await tapGuest(lab, dp, 't2', 'a', 't2', mac(2), '198.18.62.2/24');
    assert.match(dp.portStatus('t1')?.offloads ?? '', /IFF_VNET_HDR/);
    // A tap's offloads are what the switch negotiated: TSO and checksum on.
    await compareWithBridge(t, lab, 'tap <-> tap', g1, g2);
    const c1 = dp.portStatus('t1')?.counters;
    const c2 = dp.portStatus('t2')?.counters;
    t.diagnostic(`t1 (sender side): ${JSON.stringify(c1)}`);
    t.diagnostic(`t2 (receiver side): ${JSON.stringify(c2)}`);
    assert.ok((c1?.rx_super ?? 0) > 0 && (c1?.rx_offload ?? 0) > 0, 'the guest handed over TSO super-frames');
    assert.ok((c2?.tx_offload ?? 0) > 0, 'and got them back as they are');
    assert.equal(c1?.rx_bad_vnet, 0);
    assert.equal(c1?.rx_too_big, 0);
  });
});

// Gives each guest an IPv6 address under `prefix` (::1, ::2, ... in order),
// checks that they kept their default offloads, and measures the Linux
// bridge for `seconds` as the reference of the runs that follow.
async function dualStackWithBridge(t: { diagnostic(m: string): void }, lab: Lab, guests: Record<string, Guest>, prefix: string, seconds: string): Promise<{ v6: Record<string, string>; br: Tcp }> {
  const v6: Record<string, string> = {};
  Object.entries(guests).forEach(([name, g], i) => {
    v6[name] = `${prefix}::${i + 1}`;
    run('ip', ['-n', g.ns, 'addr', 'add', `${v6[name]}/64`, 'dev', g.dev, 'nodad']);
  });
  for (const g of Object.values(guests)) assert.match(offloadsOf(g), /tso on, gso on, tx-csum on/, 'the guests keep their default offloads');
  const [b1, b2] = bridgeGuests(lab);
  const br = await iperf(lab, b1, b2, ['-t', seconds]);
  t.diagnostic(`Linux bridge: ${br.gbps.toFixed(2)} Gbit/s`);
  return { v6, br };
}

// Every pair of backends, both ways, IPv4 and IPv6. Each backend takes a
// super-frame whole (an AF_XDP port through its packet socket), so what
// this checks is that each one hands the next the offload state it read (a
// partial checksum, the segment size) in the form that one writes: a pair
// that loses it shows as a collapse (with the tap's transmit writing no
// virtio-net header state, every pair into a tap collapsed here). Only
// afpacket to afpacket takes the kernel path. One second per run (41 runs):
// the figures are reported, and only collapse is asserted.
test('iperf3 TCP between every pair of backends (afpacket with and without the kernel path, tap with io_uring and with read/write, AF_XDP), both ways, IPv4 and IPv6, is not collapsed next to the Linux bridge', async (t) => {
  await withLab(t, ['ip', 'ethtool', 'iperf3', 'ss'], async (lab, dp) => {
    await dp.createSwitch({ name: 'a', vni: 100 });
    const guests: Record<string, Guest> = {};
    guests.afpacket = lab.vethGuest('m1', lab.name('m1'), mac(0x41), '198.18.68.1/24');
    await dp.createPort({ name: 'm1', type: 'afpacket', interface: lab.name('m1'), switch: 'a' });
    guests['afpacket (engine)'] = lab.vethGuest('m2', lab.name('m2'), mac(0x42), '198.18.68.2/24');
    await dp.createPort({ name: 'm2', type: 'afpacket', interface: lab.name('m2'), switch: 'a', kernelPath: false });
    guests.tap = await tapGuest(lab, dp, 'm3', 'a', 'm3', mac(0x43), '198.18.68.3/24');
    guests['tap (read/write)'] = await tapGuest(lab, dp, 'm4', 'a', 'm4', mac(0x44), '198.18.68.4/24', { ioUring: 'off' });
    guests.afxdp = lab.vethGuest('m5', lab.name('m5'), mac(0x45), '198.18.68.5/24');
    await dp.createPort({ name: 'm5', type: 'afxdp', interface: lab.name('m5'), switch: 'a' });
    const { v6, br } = await dualStackWithBridge(t, lab, guests, '2001:db8:68', '1');
    const names = Object.keys(guests);
    const lowest = { gbps: Infinity, what: '' };
    for (const [family, addr] of [['IPv4', (n: string) => guests[n]!.ip], ['IPv6', (n: string) => v6[n]!]] as const) {
      for (const from of names) {
        for (const to of names) {
          if (from === to) continue;
          const r = await iperf(lab, guests[from]!, guests[to]!, ['-t', '1'], addr(to));
          const what = `${family} ${from} -> ${to}`;
          t.diagnostic(`${what}: ${r.gbps.toFixed(2)} Gbit/s (${r.retransmits} retransmits)`);
          if (r.gbps < lowest.gbps) Object.assign(lowest, { gbps: r.gbps, what });
          assert.ok(r.gbps >= 0.1 * br.gbps, `${what} collapsed: ${r.gbps.toFixed(3)} Gbit/s against the bridge's ${br.gbps.toFixed(2)}`);
        }
      }
    }
    t.diagnostic(`lowest: ${lowest.what}, ${lowest.gbps.toFixed(2)} Gbit/s (${(lowest.gbps / br.gbps).toFixed(2)}x the bridge)`);
    for (const p of ['m1', 'm2', 'm3', 'm4', 'm5']) {
      const c = dp.portStatus(p)?.counters;
      assert.equal(c?.rx_bad_vnet ?? 0, 0, `${p}: ${JSON.stringify(c)}`);
      assert.equal(c?.rx_too_big ?? 0, 0, `${p}: ${JSON.stringify(c)}`);
    }
    const drops = dp.stats().ports;
    for (const p of ['m1', 'm2', 'm3', 'm4', 'm5']) assert.equal(drops[p]!.drops.oversize, 0, `${p}: ${JSON.stringify(drops[p]!.drops)}`);
  });
});

// A VLAN trunk between two instances of this switch (two dataplanes in this
// process, as two hosts would have them; this kernel has no 8021q for a
// Linux far end): guests on access ports at both ends, default offloads.
// Their super-frames cross the trunk tagged and whole (the afpacket trunk
// writes the tag in the frame, with its virtio-net header), and each far
// end hands them to its guest untagged. A tagged super-frame that lost its
// offload state on the way shows as a collapse; one cut wrongly shows as
// bad checksums and retransmissions.
test('iperf3 TCP across a VLAN trunk between two instances of this switch (afpacket and tap guests at the ends), both ways, IPv4 and IPv6, is not collapsed next to the Linux bridge', async (t) => {
  await withLab(t, ['ip', 'ethtool', 'iperf3', 'ss'], async (lab, dp) => {
    const far = new Dataplane({ hugepages: false, bufferCount: 16384, maxPorts: 32, maxSwitches: 16 });
    far.start();
    try {
      for (const d of [dp, far]) await d.createSwitch({ name: 'blue', vni: 1010 });
      const near = lab.name('tn');
      const farSide = lab.name('tf');
      lab.switchLink(near, farSide);
      const trunk = { vlans: [{ vlan: 10, switch: 'blue' }] };
      await dp.createPort({ name: 'trunk', type: 'afpacket', interface: near, ...trunk });
      await far.createPort({ name: 'trunk', type: 'afpacket', interface: farSide, ...trunk });
      const guests: Record<string, Guest> = {};
      guests['near afpacket'] = lab.vethGuest('v1', lab.name('v1'), mac(0x51), '198.18.69.1/24');
      await dp.createPort({ name: 'v1', type: 'afpacket', interface: lab.name('v1'), switch: 'blue' });
      guests['near tap'] = await tapGuest(lab, dp, 'v2', 'blue', 'v2', mac(0x52), '198.18.69.2/24');
      guests['far afpacket'] = lab.vethGuest('v3', lab.name('v3'), mac(0x53), '198.18.69.3/24');
      await far.createPort({ name: 'v3', type: 'afpacket', interface: lab.name('v3'), switch: 'blue' });
      const { v6, br } = await dualStackWithBridge(t, lab, guests, '2001:db8:69', '2');
      const runs: [string, string, 'IPv4' | 'IPv6'][] = [
        ['near afpacket', 'far afpacket', 'IPv4'],
        ['far afpacket', 'near afpacket', 'IPv4'],
        ['near tap', 'far afpacket', 'IPv4'],
        ['far afpacket', 'near tap', 'IPv4'],
        ['near afpacket', 'far afpacket', 'IPv6'],
        ['far afpacket', 'near tap', 'IPv6'],
      ];
      const before = dp.portStatus('trunk')!.counters;
      for (const [from, to, family] of runs) {
        const r = await iperf(lab, guests[from]!, guests[to]!, ['-t', '2'], family === 'IPv4' ? guests[to]!.ip : v6[to]!);
        const what = `${family} ${from} -> ${to}`;
        t.diagnostic(`${what}: ${r.gbps.toFixed(2)} Gbit/s (${r.retransmits} retransmits); ratio ${(r.gbps / br.gbps).toFixed(2)}`);
        assert.ok(r.gbps >= 0.1 * br.gbps, `${what} collapsed: ${r.gbps.toFixed(3)} Gbit/s against the bridge's ${br.gbps.toFixed(2)}`);
      }
      for (const [d, side] of [[dp, 'near'], [far, 'far']] as const) {
        const c = d.portStatus('trunk')!.counters;
        t.diagnostic(`${side} trunk: ${JSON.stringify(c)}`);
        assert.equal(c.rx_bad_vnet, 0, `${side} trunk`);
        assert.equal(c.rx_too_big, 0, `${side} trunk`);
        const drops = d.stats().ports.trunk!.drops;
        // (vlan_not_member counts the trunk veth's own untagged IPv6
        // chatter, router and multicast listener messages: no VLAN carries it.)
        for (const k of ['runt', 'vlan_truncated', 'oversize', 'mtu_exceeded', 'egress_too_big', 'gso_unsupported', 'gso_malformed'] as const) {
          assert.equal(drops[k], 0, `${side} trunk drop ${k}: ${JSON.stringify(drops)}`);
        }
      }
      const after = dp.portStatus('trunk')!.counters;
      assert.ok(after.tx_offload - before.tx_offload > 0 && after.rx_super - before.rx_super > 0, 'super-frames crossed the trunk whole, both ways');
    } finally {
      far.close();
    }
  });
});

// UDP GSO as a QUIC server (or WireGuard, or any UDP_SEGMENT sender) uses it:
// 200 sends of 40 datagrams of 1,400 bytes each, from a tap guest to a veth
// guest on an afpacket port, then back. Both backends take UDP GSO (tap:
// TUN_F_USO4/6 on Linux 6.2 and later), so each send crosses the switch as
// one frame both ways, and the receiver's kernel cuts it into its datagrams.
// Counted: every datagram arrives, and the tap port moved about one frame
// per send, not one per datagram (before the tap offered USO: 8,003 reads
// one way, and the engine cut every batch into 40 writes the other).
const UDP_SENDS = 200;
const UDP_PER_SEND = 40;
const UDP_SEG = 1400;
const UDP_RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE: no loss in our own socket
s.bind((sys.argv[1], 5201))
print("ready", flush=True)
s.settimeout(15.0)  # the sender, started after "ready", may take seconds on a loaded machine
n = 0
size_ok = True
try:
    while True:
        d = s.recv(65535)
        n += 1
        size_ok = size_ok and len(d) == ${UDP_SEG}
        s.settimeout(1.5)
except socket.timeout:
    pass
print(n, size_ok, flush=True)
`;
const UDP_SENDER = `
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_UDP, 103, ${UDP_SEG})  # UDP_SEGMENT
buf = bytes(${UDP_SEG * UDP_PER_SEND})
for i in range(${UDP_SENDS}):
    s.sendto(buf, (sys.argv[1], 5201))
    time.sleep(0.002)
`;

async function udpGsoRun(lab: Lab, from: Guest, to: Guest): Promise<{ received: number; sizesOk: boolean }> {
  const rx = spawn('ip', ['netns', 'exec', to.ns, 'python3', '-c', UDP_RECEIVER, to.ip], { stdio: ['ignore', 'pipe', 'pipe'] });
  lab.own(rx);
  let out = '';
  rx.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<void>((resolve) => rx.on('close', () => resolve()));
  await untilPasses(() => assert.match(out, /ready/), 5000);
  const tx = await lab.nsAsync(from.ns, 'python3', ['-c', UDP_SENDER, to.ip], 30_000);
  assert.equal(tx.code, 0, `the UDP_SEGMENT sender failed:\n${tx.out}`);
  await Promise.race([done, new Promise((r) => setTimeout(r, 15_000))]);
  rx.kill('SIGKILL');
  const m = /(\d+) (True|False)/.exec(out);
  assert.ok(m, `the receiver said: ${out}`);
  return { received: Number(m[1]), sizesOk: m[2] === 'True' };
}

test('UDP GSO batches (UDP_SEGMENT, 40 datagrams a send) between a tap guest and an afpacket guest cross whole, every datagram arrives', async (t) => {
  await withLab(t, ['ip', 'python3'], async (lab, dp) => {
    await dp.createSwitch({ name: 'a', vni: 100 });
    const g1 = await tapGuest(lab, dp, 't1', 'a', 't1', mac(1), '198.18.66.1/24');
    const g2 = lab.vethGuest('u2', lab.name('u2h'), mac(2), '198.18.66.2/24');
    await dp.createPort({ name: 'p2', type: 'afpacket', interface: lab.name('u2h'), switch: 'a' });
    assert.match(dp.portStatus('t1')?.offloads ?? '', /uso4 uso6/, 'the tap takes UDP GSO (Linux 6.2 and later)');
    assert.ok((await lab.ping(g1, g2.ip)).ok);
    const total = UDP_SENDS * UDP_PER_SEND;

    // There (the tap port reads the batches), and back (it writes them).
    for (const [from, to, dir, moved] of [
      [g1, g2, 'tap -> afpacket', 'rx_packets'],
      [g2, g1, 'afpacket -> tap', 'tx_packets'],
    ] as const) {
      const before = dp.stats().ports.t1.counters[moved];
      const r = await udpGsoRun(lab, from, to);
      const frames = dp.stats().ports.t1.counters[moved] - before;
      t.diagnostic(`${dir}: ${r.received}/${total} datagrams, the tap port moved ${frames} frames for ${UDP_SENDS} sends`);
      assert.equal(r.received, total, `${dir}: every datagram arrived`);
      assert.ok(r.sizesOk, `${dir}: each of 1,400 bytes`);
      assert.ok(frames <= UDP_SENDS + 20, `${dir}: the tap port moved ${frames} frames for ${UDP_SENDS} sends, not whole batches`);
    }
    assert.equal(dp.portStatus('t1')?.counters.rx_bad_vnet, 0);
  });
});

// Guests whose interfaces have MTU 9000 (the veth's both ends, or the tap
// in the guest) on ports left at the default MTU of 1500: every full-sized
// segment is longer than the port takes. Before the switch answered such
// frames with ICMP fragmentation-needed, it dropped them all (counted as
// oversize) and the transfer stood still at 0.00 Gbit/s; now the sender's
// path MTU drops to the port's and TCP goes on at that MTU.
test('iperf3 TCP between guests with MTU 9000 on ports of MTU 1500 (afpacket, tap, afxdp) is not collapsed: ICMP fragmentation-needed at ingress, AF_XDP batches cut for the port', async (t) => {
  await withLab(t, ['ip', 'ethtool', 'iperf3', 'ss'], async (lab, dp) => {
    await dp.createSwitch({ name: 'a', vni: 100 });
    const jumbo = (g: Guest, switchSide?: string): Guest => {
      if (switchSide !== undefined) run('ip', ['link', 'set', switchSide, 'mtu', '9000']);
      run('ip', ['-n', g.ns, 'link', 'set', g.dev, 'mtu', '9000']);
      return g;
    };
    const g1 = jumbo(lab.vethGuest('g1', lab.name('s1'), mac(1), '198.18.65.1/24'), lab.name('s1'));
    const g2 = jumbo(lab.vethGuest('g2', lab.name('s2'), mac(2), '198.18.65.2/24'), lab.name('s2'));
    await dp.createPort({ name: 'p1', type: 'afpacket', interface: lab.name('s1'), switch: 'a' });
    await dp.createPort({ name: 'p2', type: 'afpacket', interface: lab.name('s2'), switch: 'a' });
    const t3 = jumbo(await tapGuest(lab, dp, 't3', 'a', 't3', mac(3), '198.18.65.3/24'));
    const x4 = jumbo(lab.vethGuest('x4', lab.name('x4'), mac(4), '198.18.65.4/24'), lab.name('x4'));
    await dp.createPort({ name: 'x4', type: 'afxdp', interface: lab.name('x4'), switch: 'a' });
    const sent0 = dp.stats().engine.icmp_too_big_sent ?? 0;
    const { br } = await compareWithBridge(t, lab, 'afpacket (MTU 9000 guests, ports at 1500)', g1, g2);
    const viaTap = await iperf(lab, t3, g1);
    t.diagnostic(`tap -> afpacket (MTU 9000 guests, ports at 1500): ${viaTap.gbps.toFixed(2)} Gbit/s (${viaTap.retransmits} retransmits)`);
    assert.ok(viaTap.gbps >= 0.1 * br.gbps, `tap guest with MTU 9000: ${viaTap.gbps.toFixed(3)} Gbit/s against the bridge's ${br.gbps.toFixed(2)}`);
    // AF_XDP rebuilds a batch's segment size from the MTU. Taken from the
    // interface's (9000), a guest's batches cut for the port's 1500 (it
    // learnt it, or its peer's MSS said so) were refused as oversize at
    // ingress, every one: 0.00 Gbit/s. Now from the port's.
    const viaXdp = await iperf(lab, x4, g1);
    t.diagnostic(`afxdp -> afpacket (MTU 9000 guests, ports at 1500): ${viaXdp.gbps.toFixed(2)} Gbit/s (${viaXdp.retransmits} retransmits)`);
    assert.ok(viaXdp.gbps >= 0.1 * br.gbps, `AF_XDP guest with MTU 9000: ${viaXdp.gbps.toFixed(3)} Gbit/s against the bridge's ${br.gbps.toFixed(2)}`);
    for (const [from, to] of [[g1, g2], [t3, g1]] as const) {
      const route = run('ip', ['-n', from.ns, 'route', 'get', to.ip]);
      assert.match(route, /mtu 1500/, `the sender ${from.ip} learned the port's MTU: ${route.trim()}`);
    }
    const s = dp.stats();
    const nonzero = (d: Record<string, number>): string => JSON.stringify(Object.fromEntries(Object.entries(d).filter(([, v]) => v > 0)));
    t.diagnostic(`engine: icmp_too_big_sent ${s.engine.icmp_too_big_sent}; drops p1 ${nonzero(s.ports.p1.drops)}, t3 ${nonzero(s.ports.t3.drops)}`);
    assert.ok((s.engine.icmp_too_big_sent ?? 0) >= sent0 + 2, 'both senders were answered');
    assert.ok(s.ports.p1.drops.oversize > 0 && s.ports.t3.drops.oversize > 0, 'the frames over the port MTU are counted drops');
  });
});

// undefined when AF_XDP is built, else why not.
async function afxdpMissing(dp: Dataplane, lab: Lab): Promise<string | undefined> {
  await dp.createSwitch({ name: 'probe', vni: 999 });
  try {
    await dp.createPort({ name: 'probe', type: 'afxdp', interface: lab.name('none'), switch: 'probe' });
  } catch (err) {
    const m = String((err as Error).message);
    return /not built/.test(m) ? m : undefined;
  } finally {
    await dp.deleteSwitch('probe').catch(() => undefined);
  }
  return undefined;
}

// An afpacket guest (g1, TSO on) and an AF_XDP guest (g2) on one switch.
// The AF_XDP port has disableOffloads: its interface's TSO, GSO and tx
// checksum are off, so the super-frames it hands the kernel through its
// packet socket are cut and completed by the kernel's software GSO before the
// veth, as a bridge's would be.
async function mixedGuests(lab: Lab, dp: Dataplane): Promise<[Guest, Guest]> {
  await dp.createSwitch({ name: 'a', vni: 100 });
  const g1 = lab.vethGuest('g1', lab.name('s1'), mac(1), '198.18.63.1/24');
  const g2 = lab.vethGuest('g2', lab.name('x2'), mac(2), '198.18.63.2/24');
  await dp.createPort({ name: 'p1', type: 'afpacket', interface: lab.name('s1'), switch: 'a' });
  await dp.createPort({ name: 'x2', type: 'afxdp', interface: lab.name('x2'), switch: 'a', disableOffloads: true });
  return [g1, g2];
}

test('iperf3 TCP from a default afpacket guest to an AF_XDP guest with disableOffloads (segmented by the kernel) is not collapsed next to the Linux bridge', async (t) => {
  await withLab(t, ['ip', 'ethtool', 'iperf3', 'ss'], async (lab, dp) => {
    const missing = await afxdpMissing(dp, lab);
    if (missing !== undefined) {
      t.skip(`AF_XDP not built: ${missing}`);
      return;
    }
    const [g1, g2] = await mixedGuests(lab, dp);
    // disableOffloads turns the port's TSO, GSO and tx checksum off, so
    // every 64 KiB batch reaches the receiving guest as MTU-sized segments,
    // each through its TCP stack (veth guests have no GRO by default): the
    // like-for-like reference is a bridge whose port does the same. When the
    // switch cut them itself and sent each through the AF_XDP rings, this
    // path measured 0.08-0.12x the default bridge (0.35-0.48x like for
    // like); with the kernel cutting them, 0.22x (0.88x), on 2-vCPU machines.
    const off = ['tso', 'gso', 'tx'];
    const { sw, bridge } = await compareWithBridge(t, lab, 'afpacket -> afxdp', g1, g2, off);
    run('ip', ['netns', 'exec', lab.name('br'), 'ethtool', '-K', 'p2', ...off.flatMap((f) => [f, 'on'])]);
    const dflt = await iperf(lab, bridge[0], bridge[1]);
    t.diagnostic(`afpacket -> afxdp against the default Linux bridge: ${dflt.gbps.toFixed(2)} Gbit/s, ratio ${(sw.gbps / dflt.gbps).toFixed(2)}`);
    // Issue 11: no configuration under 10% of the (default) bridge's.
    assert.ok(sw.gbps >= 0.1 * dflt.gbps, `afpacket -> afxdp with disableOffloads: ${sw.gbps.toFixed(2)} Gbit/s, under 10% of the default bridge's ${dflt.gbps.toFixed(2)}`);
    const back = await iperf(lab, g2, g1);
    t.diagnostic(`afxdp -> afpacket: ${back.gbps.toFixed(2)} Gbit/s (${back.retransmits} retransmits)`);
    const c1 = dp.portStatus('p1')?.counters;
    t.diagnostic(`p1: ${JSON.stringify(c1)}`);
    t.diagnostic(`x2: ${JSON.stringify(dp.portStatus('x2')?.counters)}`);
    t.diagnostic(`engine: ${JSON.stringify(dp.stats().engine)}`);
    assert.ok((c1?.rx_super ?? 0) > 0, 'the afpacket guest sent super-frames');
    assert.ok((dp.portStatus('x2')?.counters.tx_super ?? 0) > 0, 'the AF_XDP port handed them to the kernel whole, through its packet socket');
  });
});

// Two default guests (TSO on) on AF_XDP ports, in native and in generic XDP.
// Native XDP on a veth makes the kernel turn off the peer's TSO, so the guest
// sends MTU-sized segments, which the port coalesces (GRO); generic XDP
// leaves it on, and the guest's 64 KiB batches reach the socket whole, over
// several UMEM chunks (multi-buffer): the port joins them and rebuilds their
// TSO state. Either way the other port hands the batches to the kernel whole
// through its packet socket. Before multi-buffer, generic mode dropped every
// batch (0.0005 Gbit/s).
for (const mode of ['native', 'generic'] as const) {
  test(`iperf3 TCP between two default guests on AF_XDP ports (${mode} XDP) is not collapsed next to the Linux bridge`, async (t) => {
    await withLab(t, ['ip', 'ethtool', 'iperf3', 'ss'], async (lab, dp) => {
      const missing = await afxdpMissing(dp, lab);
      if (missing !== undefined) {
        t.skip(`AF_XDP not built: ${missing}`);
        return;
      }
      await dp.createSwitch({ name: 'a', vni: 100 });
      const free0 = dp.stats().engine;
      const g1 = lab.vethGuest('g1', lab.name('x1'), mac(1), '198.18.64.1/24');
      const g2 = lab.vethGuest('g2', lab.name('x2'), mac(2), '198.18.64.2/24');
      for (const k of [1, 2]) await dp.createPort({ name: `x${k}`, type: 'afxdp', interface: lab.name(`x${k}`), switch: 'a', xdpMode: mode });
      t.diagnostic(`x1: ${dp.portStatus('x1')?.offloads}`);
      const tso = /^tcp-segmentation-offload: (\w+)/m.exec(run('ip', ['netns', 'exec', g1.ns, 'ethtool', '-k', g1.dev]))?.[1];
      // Native XDP on one end of a veth takes TSO away from the other end (the kernel's doing, not the test's).
      assert.equal(tso, mode === 'generic' ? 'on' : 'off', `the guest's TSO with ${mode} XDP on its peer`);
      const sw = await iperf(lab, g1, g2);
      const [b1, b2] = bridgeGuests(lab);
      const br = await iperf(lab, b1, b2);
      const ratio = sw.gbps / br.gbps;
      const c1 = dp.portStatus('x1')?.counters;
      t.diagnostic(`afxdp (${mode}): ${sw.gbps.toFixed(2)} Gbit/s (${sw.retransmits} retransmits); Linux bridge: ${br.gbps.toFixed(2)} Gbit/s; ratio ${ratio.toFixed(2)}`);
      t.diagnostic(`x1: ${JSON.stringify(c1)}`);
      t.diagnostic(`x2: ${JSON.stringify(dp.portStatus('x2')?.counters)}`);
      assert.ok(ratio >= 0.1, `afxdp (${mode}) collapsed: ${sw.gbps.toFixed(3)} Gbit/s against the bridge's ${br.gbps.toFixed(2)}`);
      if (mode === 'generic') {
        assert.ok((c1?.rx_super ?? 0) > 0, 'TSO batches arrived over several chunks and were joined');
        assert.ok((c1?.rx_offload ?? 0) > 0, 'their TSO state was rebuilt');
      } else {
        assert.ok((c1?.rx_gro ?? 0) > 0, 'segments that arrived one by one were coalesced (GRO)');
      }
      assert.ok((dp.portStatus('x2')?.counters.tx_super ?? 0) > 0, 'super-frames left whole through the packet socket');
      assert.equal(c1?.rx_too_big ?? 0, 0, 'nothing was too big');
      // Every buffer comes back once the ports are gone (chains, GRO'd and
      // joined frames, frames sent through the packet socket).
      for (const k of [1, 2]) await dp.deletePort(`x${k}`);
      await expectBuffersBack(dp, free0);
    });
  });
}

test('a 64 KiB TSO frame leaving through a port whose interface has no TSO (AF_XDP, disableOffloads) arrives as correct segments: tshark checksums good, within the MTU, contiguous (IPv4 and IPv6)', async (t) => {
  await withLab(t, ['ip', 'ethtool', 'iperf3', 'ss', 'tcpdump', 'tshark'], async (lab, dp) => {
    const missing = await afxdpMissing(dp, lab);
    if (missing !== undefined) {
      t.skip(`AF_XDP not built: ${missing}`);
      return;
    }
    const [g1, g2] = await mixedGuests(lab, dp);
    for (const [g, a] of [[g1, '2001:db8:63::1'], [g2, '2001:db8:63::2']] as const) {
      run('ip', ['-n', g.ns, 'addr', 'add', `${a}/64`, 'dev', g.dev, 'nodad']);
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpc-tso-'));
    try {
      for (const [src, dst] of [[g1.ip, g2.ip], ['2001:db8:63::1', '2001:db8:63::2']]) {
        const file = path.join(dir, `${src.includes(':') ? 'v6' : 'v4'}.pcap`);
        const before = dp.portStatus('p1')?.counters.rx_super ?? 0;
        // Full frames (checksums need the payload), a 32 MiB capture buffer,
        // at most 20,000 frames, 20 s at most.
        const cap = spawn('ip', ['netns', 'exec', g2.ns, 'timeout', '20', 'tcpdump', '-i', g2.dev, '-n', '-s', '0', '-B', '32768', '-Z', 'root', '-c', '20000', '-w', file, 'tcp port 5201'],
          { stdio: ['ignore', 'ignore', 'pipe'] });
        lab.own(cap);
        let capErr = '';
        cap.stderr.on('data', (d: Buffer) => (capErr += d.toString()));
        const capDone = new Promise<void>((resolve) => cap.on('close', () => resolve()));
        await untilPasses(() => assert.match(capErr, /listening on/), 5000);
        const r = await iperf(lab, g1, g2, ['-n', '4M'], dst);
        cap.kill('SIGINT');
        await capDone;
        const supers = (dp.portStatus('p1')?.counters.rx_super ?? 0) - before;
        const segs = segmentsIn(file, src);
        const c = checkContiguous(segs);
        const bad = segs.filter((s) => s.tcpCsum !== 1 || s.ipCsum !== 1);
        const maxLen = Math.max(...segs.map((s) => s.len));
        t.diagnostic(`${src} -> ${dst}: ${r.bytes} bytes; ${supers} super-frames in at p1; ${segs.length} data segments captured, ` +
          `largest ${maxLen} bytes, ${bad.length} with a bad checksum, ${c.streams} streams, ${c.retransmitted} retransmitted, ${c.gaps.length} gaps; tcpdump: ${capErr.trim().split('\n').slice(-2).join(' | ')}`);
        assert.ok(supers > 0, 'the afpacket guest sent TSO super-frames');
        assert.ok(segs.length > 1000, `the data arrived as MSS-sized segments: ${segs.length}`);
        assert.equal(bad.length, 0, `segments with a bad TCP or IP checksum: ${JSON.stringify(bad.slice(0, 5))}`);
        assert.ok(maxLen <= 1514, `every segment within the 1500-byte MTU: largest frame ${maxLen}`);
        assert.deepEqual(c.gaps, [], 'sequence numbers contiguous');
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
