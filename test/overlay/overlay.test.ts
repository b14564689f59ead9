// Integration tests of the VXLAN overlay (issue 4) against software nobody
// here wrote: the Linux kernel's vxlan device and bridge as the remote VTEP,
// tshark as an independent decoder, and hand-built malformed packets.
//
// Topology: every host is a network namespace the test creates. "Host A" is
// this switch, run by agent.ts in a child process inside A's namespace, so
// its AF_PACKET uplink opens an interface of that namespace: the underlay
// veth never sits in the root namespace, where the host kernel would see
// VXLAN addressed to its own MAC and could route it (ip_forward) out of the
// machine. "Host B" is a namespace with a Linux vxlan device + bridge. Guests
// are namespaces behind veths. Underlay 198.18.0.0/24 and 2001:db8:1::/64,
// overlay 198.19.100.0/24: all inside 198.18.0.0/15 and 2001:db8::/32.
//
// Loads: ping -c <= 5, at most 3 x 100 broadcast frames, 3 copies of each
// malformed packet. Every background process is bounded and killed in
// cleanup; the namespaces take every interface with them.

import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Guest, Lab, untilPasses, run, sleep } from '../ports/lab';
import { checkContiguous, segmentsIn } from '../ports/tcp-segments';
import {
  Agent,
  Stats,
  background,
  countFrames,
  eth,
  guest,
  Ip4Opts,
  ipv4,
  ipv6,
  linkMac,
  linuxVtep,
  marker,
  overlaySkipReason,
  ping,
  quietNetns,
  sendFrames,
  tempDir,
  udp,
  uplinkDrops,
  vxlan,
} from './vxlab';

const A4 = '198.18.0.1';
const B4 = '198.18.0.2';
const A6 = '2001:db8:1::1';
const B6 = '2001:db8:1::2';
const TEST_ETHERTYPE = 0x88b5; // IEEE local experimental

function mac(host: number, n: number): string {
  return `02:00:5e:20:${host.toString(16).padStart(2, '0')}:${n.toString(16).padStart(2, '0')}`;
}

type Ctx = { skip(msg: string): void; diagnostic(msg: string): void };

async function withLab(t: Ctx, tools: string[], fn: (lab: Lab) => Promise<void>): Promise<void> {
  const reason = overlaySkipReason(tools);
  if (reason !== undefined) {
    t.skip(reason);
    return;
  }
  const lab = new Lab();
  try {
    await fn(lab);
  } finally {
    lab.cleanup();
  }
}

function diff(before: Record<string, number> | undefined, after: Record<string, number> | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after ?? {})) {
    const d = v - (before?.[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

// ---------------------------------------------------------------- host A + Linux host B

interface Interop {
  a: Agent;
  nsA: string;
  nsB: string;
  gA: Guest[]; // by VNI index
  gB: Guest[];
  aIp: string;
  bIp: string;
  upMac: string; // the uplink interface's MAC
  vtepMac: string; // the MAC the engine uses for the VTEP (uplink().mac)
  bMac: string;
  uplink: { mac: string; innerMtu4?: number; innerMtu6?: number };
}

// Host A (this switch) and host B (Linux VTEP) joined by one underlay veth.
// `family` picks the VXLAN underlay; the uplink is dual-stack when `dual`.
// `kernelPath: false` keeps every frame in the engine (the guests' ports and
// the uplink); by default known unicast over an IPv4 underlay takes the
// kernel fast path (docs/design/kernel-path.md).
async function interop(lab: Lab, o: { family: 4 | 6; vnis: number[]; guestMtu?: number; dual?: boolean; uplink?: Record<string, unknown>; kernelPath?: boolean }): Promise<Interop> {
  const v6 = o.family === 6 || o.dual === true;
  const nsA = quietNetns(lab, 'A');
  const nsB = quietNetns(lab, 'B', v6);
  lab.vethBetween(nsA, 'up0', nsB, 'eth0');
  run('ip', ['-n', nsB, 'addr', 'add', `${B4}/24`, 'dev', 'eth0']);
  if (v6) run('ip', ['-n', nsB, 'addr', 'add', `${B6}/64`, 'dev', 'eth0', 'nodad']);
  const aIp = o.family === 4 ? A4 : A6;
  const bIp = o.family === 4 ? B4 : B6;
  const mtu = o.guestMtu ?? (o.family === 4 ? 1450 : 1430);
  const gA: Guest[] = [];
  const gB: Guest[] = [];
  o.vnis.forEach((vni, i) => {
    const { br } = linuxVtep(nsB, vni, bIp, 'eth0', [aIp]);
    gB.push(guest(lab, `b${i}`, nsB, `gb${vni}`, mac(0xb, i + 1), `198.19.100.${2 + 10 * i}/24`, mtu));
    run('ip', ['-n', nsB, 'link', 'set', `gb${vni}`, 'master', br]);
    gA.push(guest(lab, `a${i}`, nsA, `ga${vni}`, mac(0xa, i + 1), `198.19.100.${1 + 10 * i}/24`, mtu));
  });
  const a = new Agent(lab, nsA);
  for (const vni of o.vnis) {
    await a.call('createSwitch', { name: `s${vni}`, vni });
    await a.call('createPort', { name: `p${vni}`, type: 'afpacket', interface: `ga${vni}`, switch: `s${vni}`, ...(o.kernelPath === false ? { kernelPath: false } : {}) });
  }
  const uplink = await a.call<Interop['uplink']>('createUplink', {
    name: 'up',
    type: 'afpacket',
    interface: 'up0',
    ...(o.kernelPath === false ? { kernelPath: false } : {}),
    ...(o.family === 4 || o.dual ? { localIp: `${A4}/24` } : {}),
    ...(v6 ? { localIp6: `${A6}/64` } : {}),
    ...o.uplink,
  });
  for (const vni of o.vnis) await a.call('addPeer', { switch: `s${vni}`, ip: bIp });
  return { a, nsA, nsB, gA, gB, aIp, bIp, upMac: linkMac(nsA, 'up0'), vtepMac: uplink.mac, bMac: linkMac(nsB, 'eth0'), uplink };
}

async function interopPing(t: Ctx, family: 4 | 6): Promise<void> {
  await withLab(t, [], async (lab) => {
    const h = await interop(lab, { family, vnis: [100] });
    const [gA] = h.gA;
    const [gB] = h.gB;
    try {
      // A -> B first: ARP for gB crosses the overlay (flooded to B), the
      // reply comes back unicast.
      const ab = await ping(lab, gA, gB.ip, 3);
      assert.equal(ab.received, 3, `ping A->B over IPv${family}:\n${ab.out}\nagent: ${h.a.stderr}`);
      const ba = await ping(lab, gB, gA.ip, 3);
      assert.equal(ba.received, 3, `ping B->A over IPv${family}:\n${ba.out}`);
      t.diagnostic(`IPv${family} underlay: ping A->B avg rtt ${ab.rttAvgMs} ms, B->A ${ba.rttAvgMs} ms`);

      // ARP resolved across in both guests.
      assert.match(lab.ns(gA.ns, 'ip', ['neigh', 'show', 'dev', 'eth0']), new RegExp(`${gB.ip} lladdr ${gB.mac}`));
      assert.match(lab.ns(gB.ns, 'ip', ['neigh', 'show', 'dev', 'eth0']), new RegExp(`${gA.ip} lladdr ${gA.mac}`));

      // Our FDB: B's guest behind B's VTEP; A's guest on its port.
      const fdb = await h.a.call<Array<{ mac: string; port: string; vtep?: string; static: boolean }>>('fdb', 's100');
      const remote = fdb.find((e) => e.mac === gB.mac);
      assert.equal(remote?.vtep, h.bIp, JSON.stringify(fdb));
      assert.equal(remote?.port, 'up', JSON.stringify(fdb));
      assert.equal(fdb.find((e) => e.mac === gA.mac)?.port, 'p100', JSON.stringify(fdb));
      // The learned event names the VTEP too.
      const events = await h.a.call<Array<{ type: string; mac: string; vtep?: string }>>('events');
      assert.ok(events.some((e) => e.type === 'learned' && e.mac === gB.mac && e.vtep === h.bIp), JSON.stringify(events));

      // Linux's FDB: A's guest behind A's VTEP (learned from our packets).
      const bfdb = run('bridge', ['-n', h.nsB, 'fdb', 'show', 'dev', 'vx100']);
      assert.match(bfdb, new RegExp(`${gA.mac} dst ${h.aIp.replace(/\./g, '\\.')}`), bfdb);

      // The uplink resolved B with ARP / ND.
      const neigh = await h.a.call<Array<{ ip: string; mac: string; state: string }>>('neighbors');
      const nb = neigh.find((n) => n.ip === h.bIp);
      assert.equal(nb?.mac, h.bMac, JSON.stringify(neigh));
      assert.match(nb?.state ?? '', /reachable|stale/);

      // Operators can ping the VTEP address from the underlay; B forgets
      // A's MAC first, so it has to ask (ARP / ND) and the VTEP answers.
      run('ip', ['-n', h.nsB, 'neigh', 'flush', 'dev', 'eth0']);
      if (family === 6) run('ip', ['-n', h.nsB, '-6', 'neigh', 'flush', 'dev', 'eth0']);
      const vtepPing = await lab.nsAsync(h.nsB, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', '-n', h.aIp], 6000);
      assert.match(vtepPing.out, / 2 received/, vtepPing.out);

      if (family === 6) {
        // Host A's own IPv6 stack on (as on any host): VXLAN to A's VTEP is
        // the engine's, and the uplink's kernel-path hook ends the kernel's
        // copy of it (docs/design/kernel-path.md). Before, every packet also
        // went up A's stack, which has no route to the engine's address:
        // Ip6InNoRoutes counted each one (and ICMPv6 unreachable was tried).
        run('ip', ['netns', 'exec', h.nsA, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=0', 'net.ipv6.conf.up0.disable_ipv6=0']);
        const noRoutes = (): number => Number(/Ip6InNoRoutes\s+(\d+)/.exec(run('ip', ['netns', 'exec', h.nsA, 'nstat', '-az', 'Ip6InNoRoutes']))?.[1] ?? NaN);
        const before = noRoutes();
        const flood = await lab.nsAsync(gB.ns, 'ping', ['-c', '200', '-i', '0.002', '-W', '1', '-n', '-q', gA.ip], 10_000);
        assert.match(flood.out, / 200 received/, flood.out);
        const seen = noRoutes() - before;
        t.diagnostic(`A's stack counted ${seen} IPv6 packets without a route during 200 pings over VXLAN (200 VXLAN packets to A's VTEP)`);
        assert.ok(seen < 20, `VXLAN to the engine's VTEP also went up the host's IPv6 stack: Ip6InNoRoutes +${seen}`);
      }

      const st = await h.a.call<Stats>('statsPlus');
      t.diagnostic(`peers: ${JSON.stringify(st.peers)} uplink: ${JSON.stringify(st.uplink)}`);
      const peer = st.peers[h.bIp];
      assert.ok(peer && peer.rx_packets >= 3 && peer.tx_packets >= 3, JSON.stringify(st.peers));
      assert.ok(peer.fdb_learned >= 1, JSON.stringify(peer));
      assert.ok((st.uplink?.counters.vxlan_rx ?? 0) >= 3 && (st.uplink?.counters.vxlan_tx ?? 0) >= 3, JSON.stringify(st.uplink));
      assert.ok((st.uplink?.counters.echo_replies_sent ?? 0) >= 2, JSON.stringify(st.uplink));
      if (family === 4) assert.ok((st.uplink?.counters.arp_replies_sent ?? 0) >= 1 && (st.uplink?.counters.arp_requests_sent ?? 0) >= 1, JSON.stringify(st.uplink));
      else assert.ok((st.uplink?.counters.nd_adverts_sent ?? 0) >= 1 && (st.uplink?.counters.nd_solicits_sent ?? 0) >= 1, JSON.stringify(st.uplink));
    } finally {
      await h.a.close();
    }
  });
}

test('interop with the Linux VTEP over an IPv4 underlay: guests ping both ways, FDBs learn VTEPs', async (t) => {
  await interopPing(t, 4);
});

test('interop with the Linux VTEP over an IPv6 underlay: guests ping both ways, FDBs learn VTEPs', async (t) => {
  await interopPing(t, 6);
});

test('two VNIs on the same pair of hosts stay isolated, and the counters say why', async (t) => {
  await withLab(t, [], async (lab) => {
    const h = await interop(lab, { family: 4, vnis: [100, 200] });
    try {
      const [a100, a200] = h.gA; // 198.19.100.1, .11
      const [b100, b200] = h.gB; // 198.19.100.2, .12
      // Each VNI works.
      assert.equal((await ping(lab, a100, b100.ip, 2)).received, 2, 'VNI 100 A->B');
      assert.equal((await ping(lab, a200, b200.ip, 2)).received, 2, 'VNI 200 A->B');

      const before = await h.a.call<Stats>('statsPlus');
      const x1 = await ping(lab, a100, b200.ip, 2); // VNI 100 guest -> VNI 200 guest
      const x2 = await ping(lab, b100, a200.ip, 2); // VNI 100 guest on B -> VNI 200 guest on A
      assert.equal(x1.received, 0, `across VNIs must fail:\n${x1.out}`);
      assert.equal(x2.received, 0, `across VNIs must fail:\n${x2.out}`);
      await sleep(200);
      const after = await h.a.call<Stats>('statsPlus');
      const s100 = diff(before.switches.s100.counters, after.switches.s100.counters);
      const s200 = diff(before.switches.s200.counters, after.switches.s200.counters);
      t.diagnostic(`during the cross-VNI pings: s100 ${JSON.stringify(s100)}, s200 ${JSON.stringify(s200)}`);
      // Why: the ARP requests for the other VNI's addresses were flooded in
      // switch s100 (to port p100 and to B's VTEP with VNI 100) and never
      // entered switch s200.
      assert.ok((s100.flooded ?? 0) >= 2, `s100 flooded the unanswered ARP requests: ${JSON.stringify(s100)}`);
      // s200 may see VNI 200's own background traffic (IPv6 MLD/RS from either
      // host's VNI 200 side) while the pings run, so its frame count proves
      // nothing; isolation is checked by MAC below: no VNI 100 host appears in
      // s200's table or Linux's br200, and the VNI 200 guest received nothing.
      // Had a VNI 100 ARP request reached a VNI 200 guest, its kernel would now
      // hold a neighbour entry for the sender.
      assert.equal(lab.ns(a200.ns, 'ip', ['neigh', 'show', b100.ip]).trim(), '', 'a200 heard from b100 (VNI 100)');
      assert.equal(lab.ns(b200.ns, 'ip', ['neigh', 'show', a100.ip]).trim(), '', 'b200 heard from a100 (VNI 100)');
      const fdb100 = await h.a.call<Array<{ mac: string }>>('fdb', 's100');
      const fdb200 = await h.a.call<Array<{ mac: string }>>('fdb', 's200');
      assert.ok(!fdb100.some((e) => e.mac === b200.mac || e.mac === a200.mac), JSON.stringify(fdb100));
      assert.ok(!fdb200.some((e) => e.mac === b100.mac || e.mac === a100.mac), JSON.stringify(fdb200));
      // Linux agrees: br200 never saw VNI 100's MACs.
      const br200 = run('bridge', ['-n', h.nsB, 'fdb', 'show', 'br', 'br200']);
      assert.ok(!br200.includes(a100.mac) && !br200.includes(b100.mac), br200);
    } finally {
      await h.a.close();
    }
  });
});

// Issue 15: per switch and peer counters. Two VNIs to the same Linux VTEP
// carry different numbers of frames each way; each switch's counters for
// the peer show its own, the peer's totals their sum.
test('two VNIs to the same peer: per switch and peer counters show what each VNI carried, frames and bytes', async (t) => {
  await withLab(t, ['python3'], async (lab) => {
    const h = await interop(lab, { family: 4, vnis: [100, 200] });
    try {
      const [a100, a200] = h.gA;
      const [b100, b200] = h.gB;
      const sp = (st: Stats, sw: string) => st.switches[sw]?.peers?.[h.bIp] ?? {};
      // Freshly configured hosts may still announce themselves (IGMP reports,
      // 54 bytes, in the first seconds): measure once the overlay is quiet,
      // i.e. 1.5 s without a frame to or from the peer (at most 15 s).
      const key = (st: Stats) => JSON.stringify([sp(st, 's100'), sp(st, 's200')]);
      let before = await h.a.call<Stats>('statsPlus');
      for (let quietSince = Date.now(), deadline = Date.now() + 15_000; Date.now() - quietSince < 1500 && Date.now() < deadline; ) {
        await sleep(250);
        const now = await h.a.call<Stats>('statsPlus');
        if (key(now) !== key(before)) quietSince = Date.now();
        before = now;
      }
      // Out of A: 3 frames in VNI 100, 7 in VNI 200 (broadcast: each floods to B once).
      // Into A from B's guests: 4 in VNI 100, 2 in VNI 200.
      const counter = (g: Guest, n: number) => countFrames(lab, g.ns, g.dev, TEST_ETHERTYPE, n, 15);  // generous: a loaded machine
      const count = { b100: counter(b100!, 3), b200: counter(b200!, 7), a100: counter(a100!, 4), a200: counter(a200!, 2) };
      await Promise.all(Object.values(count).map((c) => c.ready));
      const frames = (src: string, n: number, base: number) => Array.from({ length: n }, (_, i) => marker(src, TEST_ETHERTYPE, base + i));
      await sendFrames(a100.ns, a100.dev, frames(a100.mac, 3, 1000));
      await sendFrames(a200.ns, a200.dev, frames(a200.mac, 7, 2000));
      await sendFrames(b100.ns, b100.dev, frames(b100.mac, 4, 3000));
      await sendFrames(b200.ns, b200.dev, frames(b200.mac, 2, 4000));
      const got = { b100: await count.b100.result, b200: await count.b200.result, a100: await count.a100.result, a200: await count.a200.result };
      assert.deepEqual([got.b100.count, got.b200.count, got.a100.count, got.a200.count], [3, 7, 4, 2], JSON.stringify(got));
      const after = await h.a.call<Stats>('statsPlus');
      const d100 = diff(sp(before, 's100'), sp(after, 's100'));
      const d200 = diff(sp(before, 's200'), sp(after, 's200'));
      const total = diff(before.peers[h.bIp], after.peers[h.bIp]);
      t.diagnostic(`s100 ${JSON.stringify(d100)}, s200 ${JSON.stringify(d200)}, peer totals ${JSON.stringify(total)}`);
      const len = marker(a100.mac, TEST_ETHERTYPE, 0).length;
      assert.deepEqual(d100, { tx_packets: 3, tx_bytes: 3 * len, rx_packets: 4, rx_bytes: 4 * len });
      assert.deepEqual(d200, { tx_packets: 7, tx_bytes: 7 * len, rx_packets: 2, rx_bytes: 2 * len });
      assert.equal(total.tx_packets, 10);
      assert.equal(total.rx_packets, 6);
    } finally {
      await h.a.close();
    }
  });
});

// ---------------------------------------------------------------- three-host mesh

test('two switch instances and a Linux VTEP in a full mesh: each broadcast reaches every other host exactly once', async (t) => {
  await withLab(t, ['python3'], async (lab) => {
    const N = 100;
    // The underlay: a Linux bridge in its own namespace, one veth per host.
    const nsU = quietNetns(lab, 'U');
    run('ip', ['-n', nsU, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0']);
    run('ip', ['-n', nsU, 'link', 'set', 'br0', 'up']);
    const ips = ['198.18.0.1', '198.18.0.2', '198.18.0.3'];
    const hostNs = [quietNetns(lab, 'A1'), quietNetns(lab, 'A2'), quietNetns(lab, 'B')];
    hostNs.forEach((ns, i) => {
      const dev = i === 2 ? 'eth0' : 'up0';
      lab.vethBetween(ns, dev, nsU, `u${i + 1}`);
      run('ip', ['-n', nsU, 'link', 'set', `u${i + 1}`, 'master', 'br0']);
    });
    run('ip', ['-n', hostNs[2], 'addr', 'add', `${ips[2]}/24`, 'dev', 'eth0']);
    linuxVtep(hostNs[2], 100, ips[2], 'eth0', [ips[0], ips[1]]);
    const guests: Guest[] = [];
    for (let i = 0; i < 3; i++) {
      guests.push(guest(lab, `g${i + 1}`, hostNs[i], 'ga100', mac(0xc, i + 1), `198.19.100.${i + 1}/24`, 1450));
    }
    run('ip', ['-n', hostNs[2], 'link', 'set', 'ga100', 'master', 'br100']);
    const agents = [new Agent(lab, hostNs[0]), new Agent(lab, hostNs[1])];
    try {
      for (let i = 0; i < 2; i++) {
        const a = agents[i];
        await a.call('createSwitch', { name: 's100', vni: 100 });
        await a.call('createPort', { name: 'p100', type: 'afpacket', interface: 'ga100', switch: 's100' });
        await a.call('createUplink', { name: 'up', type: 'afpacket', interface: 'up0', localIp: `${ips[i]}/24` });
        for (const ip of ips) if (ip !== ips[i]) await a.call('addPeer', { switch: 's100', ip });
      }
      // Everyone reaches everyone (ARP across the mesh, then unicast).
      for (const g of guests) {
        for (const o of guests) {
          if (g === o) continue;
          const r = await ping(lab, g, o.ip, 2);
          assert.equal(r.received, 2, `${g.ip} -> ${o.ip}:\n${r.out}`);
        }
      }
      // From here on the guests' ARP stays quiet: only the test's frames move.
      for (const g of guests) {
        for (const o of guests) if (g !== o) run('ip', ['-n', g.ns, 'neigh', 'replace', o.ip, 'lladdr', o.mac, 'dev', 'eth0', 'nud', 'permanent']);
      }
      const hostName = ['A1 (this switch)', 'A2 (this switch)', 'B (Linux)'];
      for (let s = 0; s < 3; s++) {
        const sender = guests[s];
        const counters = guests.map((g, i) => countFrames(lab, g.ns, 'eth0', TEST_ETHERTYPE, i === s ? 0 : N, i === s ? 2.5 : 15)); // receivers end once their N came; 15 s: a loaded machine
        await Promise.all(counters.map((c) => c.ready));
        const before = await Promise.all(agents.map((a) => a.call<Stats>('statsPlus')));
        const frames = Array.from({ length: N }, (_, k) => marker(sender.mac, TEST_ETHERTYPE, s * 1000 + k));
        await sendFrames(sender.ns, 'eth0', frames);
        const got = await Promise.all(counters.map((c) => c.result));
        const after = await Promise.all(agents.map((a) => a.call<Stats>('statsPlus')));
        t.diagnostic(`${N} broadcasts from ${hostName[s]}: received ${got.map((g, i) => `${hostName[i]}=${g.count}`).join(', ')}`);
        for (let i = 0; i < 3; i++) {
          if (i === s) {
            assert.equal(got[i].count, 0, `the sender ${hostName[s]} got its own broadcasts back: ${JSON.stringify(got[i])}`);
          } else {
            assert.deepEqual(got[i], { count: N, distinct: N, maxDup: 1 }, `${hostName[i]} from ${hostName[s]}: each broadcast exactly once`);
          }
        }
        // Our instances' counters agree: the sending instance replicated
        // each frame once per peer; receivers never re-flooded to peers.
        for (let i = 0; i < 2; i++) {
          const pd = Object.fromEntries(ips.filter((ip) => ip !== ips[i]).map((ip) => [ip, diff(before[i].peers[ip], after[i].peers[ip])]));
          const sw = diff(before[i].switches.s100.counters, after[i].switches.s100.counters);
          t.diagnostic(`  ${hostName[i]}: peers ${JSON.stringify(pd)} switch ${JSON.stringify(sw)}`);
          for (const ip of Object.keys(pd)) {
            assert.equal(pd[ip].tx_packets ?? 0, i === s ? N : 0, `${hostName[i]} tx to ${ip}`);
            assert.equal(pd[ip].rx_packets ?? 0, ip === ips[s] ? N : 0, `${hostName[i]} rx from ${ip}`);
          }
          assert.equal(sw.flooded ?? 0, N, `${hostName[i]}: every broadcast flooded once`);
          // flood_copies counts the extra copies: recipients - 1 per frame.
          // Sender: two peers (ingress excluded) -> 1 copy; receiver: the
          // local guest only -> 0 copies (split horizon).
          assert.equal(sw.flood_copies ?? 0, i === s ? N : 0, `${hostName[i]}: flood copies`);
          assert.equal(diff(before[i].ports.p100.counters, after[i].ports.p100.counters).tx_packets ?? 0, i === s ? 0 : N, `${hostName[i]}: to the guest`);
        }
      }
    } finally {
      await Promise.all(agents.map((a) => a.close()));
    }
  });
});

// ---------------------------------------------------------------- capture

interface Decoded {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  vni: string;
  ipChecksumStatus: string;
  udpChecksum: string;
  udpChecksumStatus: string;
  df: string;
  ttl: string;
  protocols: string;
}

const TSHARK_FIELDS = [
  'ip.src', 'ipv6.src', 'ip.dst', 'ipv6.dst', 'udp.srcport', 'udp.dstport', 'vxlan.vni', 'ip.checksum.status', 'udp.checksum',
  'udp.checksum.status', 'ip.flags.df', 'ip.ttl', 'ipv6.hlim', 'frame.protocols',
];

function tsharkDecode(file: string, family: 4 | 6): Decoded[] {
  const out = run('tshark', [
    '-r', file, '-n', '-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-T', 'fields', '-E', 'separator=|', '-E', 'occurrence=f',
    ...TSHARK_FIELDS.flatMap((f) => ['-e', f]),
  ], 30_000);
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const f = l.split('|');
      return {
        // occurrence=f: the outer header's fields (the inner IPv4 header
        // has ip.* too, so over IPv6 read ipv6.* only).
        src: family === 4 ? f[0] : f[1],
        dst: family === 4 ? f[2] : f[3],
        sport: Number(f[4]),
        dport: Number(f[5]),
        vni: f[6],
        ipChecksumStatus: f[7],
        udpChecksum: f[8],
        udpChecksumStatus: f[9],
        df: f[10],
        ttl: family === 4 ? f[11] : f[12],
        protocols: f[13],
      };
    });
}

// tshark prints enumerated fields by value: 1 = Good, 0 = Bad, 2 = Unverified.
const GOOD = /^(1|Good)$/;

async function capture(t: Ctx, family: 4 | 6): Promise<void> {
  await withLab(t, ['tshark', 'tcpdump'], async (lab) => {
    const h = await interop(lab, { family, vnis: [100] });
    const tmp = tempDir(lab);
    try {
      // Linux's own packets are checksummed in software, so that what the
      // capture sees of them is final (a reference for the decoder).
      lab.ns(h.nsB, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
      const file = `${tmp.dir}/underlay.pcap`;
      const cap = background(lab, h.nsB, 'timeout', ['20', 'tcpdump', '-i', 'eth0', '-nn', '--immediate-mode', '-U', '-c', '200', '-w', file, 'udp port 4789'], 'listening on');
      await cap.ready;
      const ab = await ping(lab, h.gA[0], h.gB[0].ip, 5);
      assert.equal(ab.received, 5, ab.out);
      const ba = await ping(lab, h.gB[0], h.gA[0].ip, 3);
      assert.equal(ba.received, 3, ba.out);
      await sleep(200);
      cap.stop();
      const c = await cap.done;
      const pkts = tsharkDecode(file, family);
      const ours = pkts.filter((p) => p.src === h.aIp);
      const theirs = pkts.filter((p) => p.src === h.bIp);
      t.diagnostic(`IPv${family}: ${pkts.length} VXLAN packets captured, ${ours.length} from this switch; first: ${JSON.stringify(ours[0])}`);
      assert.ok(ours.length >= 9, `this switch's VXLAN packets seen by tshark (tcpdump: ${c.err}): ${JSON.stringify(pkts)}`);
      assert.ok(theirs.length >= 8, 'the Linux VTEP\'s packets');
      for (const p of ours) {
        assert.equal(p.dst, h.bIp);
        assert.equal(p.dport, 4789, JSON.stringify(p));
        assert.ok(p.sport >= 49152 && p.sport <= 65535, `source port in the default range: ${JSON.stringify(p)}`);
        assert.equal(p.vni, '100', JSON.stringify(p));
        assert.match(p.protocols, /udp:vxlan:eth:ethertype:(ip|arp)/, `tshark decodes the inner frame: ${JSON.stringify(p)}`);
        assert.equal(p.ttl, '64', JSON.stringify(p));
        if (family === 4) {
          assert.match(p.ipChecksumStatus, GOOD, `IPv4 header checksum: ${JSON.stringify(p)}`);
          assert.match(p.df, /^(1|True)$/, `DF set by default: ${JSON.stringify(p)}`);
          assert.equal(Number(p.udpChecksum), 0, `UDP checksum zero over IPv4 (RFC 7348): ${JSON.stringify(p)}`);
        } else {
          assert.notEqual(Number(p.udpChecksum), 0, `UDP checksum present over IPv6: ${JSON.stringify(p)}`);
          assert.match(p.udpChecksumStatus, GOOD, `UDP checksum over IPv6: ${JSON.stringify(p)}`);
        }
      }
      // The decoder is not just agreeing with everything: Linux's packets
      // decode the same way.
      for (const p of theirs) {
        assert.equal(p.vni, '100', JSON.stringify(p));
        if (p.udpChecksum !== '0x0000') assert.match(p.udpChecksumStatus, GOOD, `Linux's packet: ${JSON.stringify(p)}`);
      }
    } finally {
      await h.a.close();
      tmp.remove();
    }
  });
}

test('tshark decodes what the switch puts on an IPv4 underlay: VNI, port 4789, IP checksum good', async (t) => {
  await capture(t, 4);
});

test('tshark decodes what the switch puts on an IPv6 underlay: VNI, port 4789, UDP checksum good', async (t) => {
  await capture(t, 6);
});

test('capture on the uplink shows the outer headers (VXLAN, VNI), and a switch capture only its VNI; tshark reads the pcap', async (t) => {
  await withLab(t, ['tshark'], async (lab) => {
    const h = await interop(lab, { family: 4, vnis: [100, 200] });
    const tmp = tempDir(lab);
    try {
      const up = await h.a.call<number>('captureStart', { port: 'up', direction: 'both' });
      const sw = await h.a.call<number>('captureStart', { switch: 's200', direction: 'both' });
      const ab = await ping(lab, h.gA[0]!, h.gB[0]!.ip, 3);
      assert.equal(ab.received, 3, ab.out);
      await sleep(100);
      const u = await h.a.call<{ pcap: string; frames: { port: string; direction: string }[]; dropped: number }>('captureCollect', up);
      const s2 = await h.a.call<{ pcap: string; frames: { port: string; direction: string }[] }>('captureCollect', sw);
      const file = `${tmp.dir}/uplink.pcap`;
      writeFileSync(file, Buffer.from(u.pcap, 'base64'));
      const pkts = tsharkDecode(file, 4).filter((p) => p.dport === 4789);
      t.diagnostic(`uplink capture: ${u.frames.length} frames, ${pkts.length} VXLAN; dropped ${u.dropped}`);
      assert.equal(u.dropped, 0);
      assert.ok(u.frames.every((f) => f.port === 'up'), JSON.stringify(u.frames));
      const out = pkts.filter((p) => p.src === h.aIp);
      const inn = pkts.filter((p) => p.src === h.bIp);
      assert.ok(out.length >= 3 && inn.length >= 3, `VXLAN both ways in the uplink capture: ${JSON.stringify(pkts)}`);
      // Every packet is VXLAN with its outer headers (the uplink carries every
      // VNI: a freshly created guest of VNI 200 may send an IGMP report); the
      // pings are there, in VNI 100.
      for (const p of pkts) assert.match(p.protocols, /^eth:ethertype:ip:udp:vxlan:eth:ethertype:/, JSON.stringify(p));
      const icmp = pkts.filter((p) => /vxlan:eth:ethertype:ip:icmp/.test(p.protocols));
      assert.ok(icmp.length >= 6, `3 echo requests and 3 replies in the uplink capture: ${JSON.stringify(pkts)}`);
      for (const p of icmp) assert.equal(p.vni, '100', JSON.stringify(p));
      // Direction: what the switch sent is "out", what B sent is "in".
      const dirs = u.frames.map((f) => f.direction);
      assert.ok(dirs.includes('in') && dirs.includes('out'), JSON.stringify(dirs));
      // The switch capture of VNI 200 saw none of VNI 100's traffic.
      // (s200's own guests may speak, e.g. an IGMP report; none of the pings.)
      if (s2.frames.length > 0) {
        const f2 = `${tmp.dir}/s200.pcap`;
        writeFileSync(f2, Buffer.from((s2 as { pcap: string }).pcap, 'base64'));
        const icmp2 = tsharkDecode(f2, 4).filter((p) => /icmp/.test(p.protocols));
        assert.deepEqual(icmp2, [], 'switch s200 carried none of the pings of VNI 100');
      }

      // A trace on the uplink shows decapsulation; one on the local port, encapsulation.
      type Tr = { records: { port: string; lines: { stage: string; text: string }[] }[] };
      const traceOf = async (port: string): Promise<Tr> => {
        await h.a.call('startTrace', { count: 2, port });
        const p2 = await ping(lab, h.gA[0]!, h.gB[0]!.ip, 3);
        assert.equal(p2.received, 3, p2.out);
        const tr = await untilPasses(async () => {
          const x = await h.a.call<Tr>('trace');
          if (x.records.length < 2) throw new Error(`${x.records.length} records`);
          return x;
        }, 5000);
        await h.a.call('stopTrace');
        return tr;
      };
      const fromUp = await traceOf('up');
      t.diagnostic(JSON.stringify(fromUp));
      const dec = fromUp.records.flatMap((r) => r.lines).filter((l) => l.stage === 'decap');
      assert.ok(dec.length >= 1, JSON.stringify(fromUp));
      assert.match(dec[0]!.text, new RegExp(`^vni 100 from vtep ${h.bIp.replace(/\./g, '\\.')}, switch s100`));
      const fromPort = await traceOf('p100');
      const enc = fromPort.records.flatMap((r) => r.lines).filter((l) => l.stage === 'encap');
      assert.ok(enc.length >= 1, JSON.stringify(fromPort));
      assert.match(enc[0]!.text, /^vxlan vni 100 to vtep 198\.18\.0\.2 via the uplink port up$/);
      assert.ok(fromPort.records.some((r) => r.lines.some((l) => l.stage === 'tx' && /^port up, /.test(l.text))), JSON.stringify(fromPort));
    } finally {
      await h.a.close();
      tmp.remove();
    }
  });
});

// ---------------------------------------------------------------- API

test('API: stats().ports lists the uplink with its drops by reason; uplink().mac is the MAC the VTEP answers ARP with', async (t) => {
  await withLab(t, ['python3'], async (lab) => {
    const h = await interop(lab, { family: 4, vnis: [100] });
    try {
      const bad = eth(h.vtepMac, h.bMac, 0x0800, ipv4(B4, A4, 17, udp(B4, A4, 50000, 4789, vxlan(100, marker(mac(0xb, 0x98), TEST_ETHERTYPE, 1), 0x00), 'zero')));
      await sendFrames(h.nsB, 'eth0', [bad], { repeat: 2 });
      // The engine counted them on the uplink port...
      const st = await untilPasses(async () => {
        const s = await h.a.call<Stats>('statsPlus');
        assert.equal(s.uplinkPortNative?.drops.vxlan_flags, 2);
        return s;
      }, 2000);
      t.diagnostic(`engine: uplink port ${JSON.stringify({ counters: st.uplinkPortNative?.counters, vxlan_flags: st.uplinkPortNative?.drops.vxlan_flags })}; stats().ports keys: ${JSON.stringify(Object.keys(st.ports))}`);
      const info = await h.a.call<{ mac: string; id: number }>('uplink');
      t.diagnostic(`uplink().mac ${info.mac}, interface up0 ${h.upMac}`);
      const problems: string[] = [];
      // ...but the public API must show them.
      if (st.ports.up?.drops.vxlan_flags !== 2) {
        problems.push(`stats().ports.up is ${JSON.stringify(st.ports.up)}: the uplink port (engine id ${info.id}) is missing, so its drops by reason (outer_*, vxlan_*) are invisible through the API`);
      }
      // uplink().mac is the MAC the VTEP really uses: B resolved A's VTEP to it.
      run('ip', ['-n', h.nsB, 'neigh', 'flush', 'dev', 'eth0']);
      await lab.nsAsync(h.nsB, 'ping', ['-c', '1', '-W', '1', '-n', A4], 4000);
      const bNeigh = run('ip', ['-n', h.nsB, 'neigh', 'show', A4, 'dev', 'eth0']);
      if (!bNeigh.includes(info.mac)) problems.push(`uplink().mac is ${info.mac} but B resolved the VTEP ${A4} to: ${bNeigh.trim()}`);
      assert.deepEqual(problems, [], problems.join('\n'));
    } finally {
      await h.a.close();
    }
  });
});

test('the uplink follows its interface\'s MAC: after ip link set address, the VTEP announces it (ARP, unsolicited NA), sends and answers with it, its next hop learns it unasked, traffic goes on', async (t) => {
  await withLab(t, ['tcpdump', 'tshark'], async (lab) => {
    // Not promiscuous, as on a NIC: frames to the old MAC would not even be
    // read there. (A veth delivers them anyway; the MACs are what is checked.)
    const h = await interop(lab, { family: 4, vnis: [100], dual: true, uplink: { promiscuous: false } });
    const [gA] = h.gA;
    const [gB] = h.gB;
    const tmp = tempDir(lab);
    try {
      assert.equal((await ping(lab, gA, gB.ip, 3)).received, 3);
      await lab.nsAsync(h.nsB, 'ping', ['-6', '-c', '1', '-W', '1', '-n', A6], 4000);
      const bNeigh = (ip: string): string => run('ip', ['-n', h.nsB, 'neigh', 'show', ip, 'dev', 'eth0']);
      assert.ok(bNeigh(A4).includes(h.vtepMac), bNeigh(A4));
      const file = `${tmp.dir}/announce.pcap`;
      const cap = background(lab, h.nsB, 'timeout', ['20', 'tcpdump', '-i', 'eth0', '-nn', '--immediate-mode', '-U', '-c', '50', '-w', file, 'arp or icmp6'], 'listening on');
      await cap.ready;
      const fresh = '02:00:00:00:0a:99';
      run('ip', ['-n', h.nsA, 'link', 'set', 'up0', 'address', fresh]);
      await untilPasses(async () => {
        const info = await h.a.call<{ mac: string }>('uplink');
        assert.equal(info.mac, fresh, 'uplink().mac follows the interface');
        // B was not flushed: the VTEP told it.
        assert.ok(bNeigh(A4).includes(fresh), `B's entry for the VTEP: ${bNeigh(A4)}`);
        assert.ok(bNeigh(A6).includes(fresh), `B's IPv6 entry for the VTEP: ${bNeigh(A6)}`);
      }, 15_000);
      await sleep(300);
      cap.stop();
      await cap.done;
      const fields = ['eth.src', 'arp.opcode', 'arp.src.hw_mac', 'arp.src.proto_ipv4', 'arp.dst.proto_ipv4', 'icmpv6.type', 'ipv6.dst', 'icmpv6.nd.na.flag.s', 'icmpv6.nd.na.flag.o', 'icmpv6.nd.na.target_address'];
      const seen = run('tshark', ['-r', file, '-n', '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])], 30_000)
        .split('\n').filter((l) => l.trim() !== '').map((l) => Object.fromEntries(l.split('|').map((v, i) => [fields[i]!, v])));
      t.diagnostic(`B saw: ${JSON.stringify(seen)}`);
      // RFC 5227 2.3: an ARP request whose sender and target are both our address.
      assert.ok(seen.some((p) => p['eth.src'] === fresh && p['arp.opcode'] === '1' && p['arp.src.hw_mac'] === fresh && p['arp.src.proto_ipv4'] === A4 && p['arp.dst.proto_ipv4'] === A4), 'an ARP announcement');
      // RFC 4861 7.2.6: an unsolicited NA to all nodes, override set, solicited not.
      assert.ok(seen.some((p) => p['eth.src'] === fresh && p['icmpv6.type'] === '136' && p['ipv6.dst'] === 'ff02::1' && /^(1|True)$/i.test(p['icmpv6.nd.na.flag.o']!) && /^(0|False)$/i.test(p['icmpv6.nd.na.flag.s']!) && p['icmpv6.nd.na.target_address'] === A6), 'an unsolicited Neighbor Advertisement');
      const ab = await ping(lab, gA, gB.ip, 3);
      assert.equal(ab.received, 3, ab.out);
      const ba = await ping(lab, gB, gA.ip, 3);
      assert.equal(ba.received, 3, ba.out);
      const st = await h.a.call<Stats>('statsPlus');
      t.diagnostic(`uplink counters after the change: ${JSON.stringify(nonZero(st.uplink?.counters ?? {}))}`);

      // Many NICs take a new MAC only while down: the announcement waits for the link.
      const file2 = `${tmp.dir}/announce-down.pcap`;
      const cap2 = background(lab, h.nsB, 'timeout', ['20', 'tcpdump', '-i', 'eth0', '-nn', '--immediate-mode', '-U', '-c', '50', '-w', file2, 'arp or icmp6'], 'listening on');
      await cap2.ready;
      const second = '02:00:00:00:0a:9a';
      run('ip', ['-n', h.nsA, 'link', 'set', 'up0', 'down']);
      run('ip', ['-n', h.nsA, 'link', 'set', 'up0', 'address', second]);
      // (lab's untilPasses retries until the check stops throwing.)
      await untilPasses(async () => assert.equal((await h.a.call<{ mac: string }>('uplink')).mac, second, 'taken while down'), 10_000, 100);
      run('ip', ['-n', h.nsA, 'link', 'set', 'up0', 'up']);
      const told = (): boolean => {
        const lines = run('tshark', ['-r', file2, '-n', '-T', 'fields', '-E', 'separator=|', '-e', 'eth.src', '-e', 'arp.opcode', '-e', 'arp.src.proto_ipv4', '-e', 'arp.dst.proto_ipv4', '-e', 'icmpv6.type', '-e', 'ipv6.dst'], 30_000);
        return lines.split('\n').some((l) => l === `${second}|1|${A4}|${A4}||`) && lines.split('\n').some((l) => l === `${second}||||136|ff02::1`);
      };
      await untilPasses(async () => assert.ok(told(), `no ARP announcement and NA from ${second} after the link came up`), 15_000, 200);
      cap2.stop();
      await cap2.done;
      t.diagnostic(`B saw around the down/up: ${run('tshark', ['-r', file2, '-n'], 30_000).trim().split('\n').join(' | ')}`);
      // The link just came back: the first frames may find it still settling.
      await untilPasses(async () => assert.equal((await ping(lab, gA, gB.ip, 1)).received, 1), 15_000, 200);
      const again = await ping(lab, gA, gB.ip, 3);
      assert.equal(again.received, 3, again.out);
    } finally {
      await h.a.close();
    }
  });
});

// ---------------------------------------------------------------- malformed

test('malformed VXLAN and outer headers are counted drops, each with its reason; good traffic still flows', async (t) => {
  await withLab(t, ['python3'], async (lab) => {
    const h = await interop(lab, { family: 4, vnis: [100], dual: true });
    try {
      // B's IPv6 address is a peer too: a VNI takes VXLAN only from its own
      // peers (allowUnknownPeers is off by default).
      await h.a.call('addPeer', { switch: 's100', ip: B6 });
      // B's own kernel stays off the counters: its IGMP/MLD reports (MLD is
      // ICMPv6 behind a Hop-by-Hop header) would count as
      // outer_ip_not_local. The IPv6 cases below are injected raw, so B's
      // kernel needs no IPv6 here.
      run('ip', ['-n', h.nsB, 'link', 'set', 'eth0', 'multicast', 'off']);
      lab.ns(h.nsB, 'sysctl', ['-qw', 'net.ipv6.conf.eth0.disable_ipv6=1']);
      const [gA] = h.gA;
      const [gB] = h.gB;
      assert.equal((await ping(lab, gA, gB.ip, 2)).received, 2, 'baseline ping');
      const before0 = await h.a.call<Stats>('statsPlus');
      if (before0.ports.up === undefined) t.diagnostic('stats().ports has no "up": reading the uplink port\'s drops from the engine directly (see the API test)');

      const innerSrc = mac(0xb, 0x99);
      let seq = 0;
      const inner = (): Buffer => marker(innerSrc, TEST_ETHERTYPE, seq++);
      const v4 = (udpPayload: Buffer, o: { dport?: number; csum?: 'zero' | 'good' | 'bad'; udpLen?: number; dst?: string } & Ip4Opts = {}): Buffer =>
        eth(h.vtepMac, h.bMac, 0x0800, ipv4(B4, o.dst ?? A4, 17, udp(B4, o.dst ?? A4, 50000, o.dport ?? 4789, udpPayload, o.csum ?? 'zero', o.udpLen), o));
      const v6 = (udpPayload: Buffer, csum: 'zero' | 'good' | 'bad' = 'good'): Buffer =>
        eth(h.vtepMac, h.bMac, 0x86dd, ipv6(B6, A6, 17, udp(B6, A6, 50000, 4789, udpPayload, csum)));
      const good4 = (): Buffer => v4(vxlan(100, inner()));
      const fragHeader6 = (): Buffer => {
        const u = udp(B6, A6, 50000, 4789, vxlan(100, inner()), 'good');
        const fh = Buffer.from([17, 0, 0x00, 0x01, 0, 0, 0x12, 0x34]); // next UDP, offset 0, M=1
        return eth(h.vtepMac, h.bMac, 0x86dd, ipv6(B6, A6, 44, Buffer.concat([fh, u])));
      };
      const cases: Array<{ name: string; frame: () => Buffer; reason?: string; toHost?: boolean }> = [
        { name: 'outer destination MAC of another host', frame: () => { const f = good4(); Buffer.from([0x02, 0, 0x5e, 0xff, 0, 1]).copy(f, 0); return f; }, reason: 'outer_dst_mac' },
        { name: 'truncated IPv4 header (12 bytes)', frame: () => good4().subarray(0, 14 + 12), reason: 'outer_ip_header' },
        { name: 'IP version 5 in an IPv4 frame', frame: () => v4(vxlan(100, inner()), { version: 5 }), reason: 'outer_ip_header' },
        { name: 'bad IPv4 header checksum', frame: () => v4(vxlan(100, inner()), { badChecksum: true }), reason: 'outer_ip_checksum' },
        { name: 'truncated packet: IPv4 total length beyond the frame', frame: () => good4().subarray(0, 14 + 20 + 8 + 8 + 20), reason: 'outer_ip_length' },
        { name: 'IPv4 fragment (MF set)', frame: () => v4(vxlan(100, inner()), { flagsFrag: 0x2000 }), reason: 'outer_ip_fragment' },
        { name: 'IPv4 fragment (offset 128)', frame: () => v4(vxlan(100, inner()), { flagsFrag: 0x0010 }), reason: 'outer_ip_fragment' },
        // Host traffic (issue 10 #10): left to the host, counted as to_host, not a drop.
        { name: 'destination is another address (host traffic)', frame: () => v4(vxlan(100, inner()), { dst: '198.18.0.99' }), toHost: true },
        { name: 'another UDP port, 4790 (host traffic)', frame: () => v4(vxlan(100, inner()), { dport: 4790 }), toHost: true },
        { name: 'UDP length beyond the IP packet', frame: () => v4(vxlan(100, inner()), { udpLen: 8 + 8 + 60 + 40 }), reason: 'outer_udp_length' },
        { name: 'truncated VXLAN header (4 of 8 bytes)', frame: () => v4(vxlan(100, inner()).subarray(0, 4)), reason: 'outer_udp_length' },
        { name: 'bad UDP checksum over IPv4', frame: () => v4(vxlan(100, inner()), { csum: 'bad' }), reason: 'outer_udp_checksum' },
        { name: 'VXLAN I flag clear', frame: () => v4(vxlan(100, inner(), 0x00)), reason: 'vxlan_flags' },
        { name: 'unknown VNI 4242', frame: () => v4(vxlan(4242, inner())), reason: 'vxlan_vni_unknown' },
        { name: 'inner frame shorter than an Ethernet header', frame: () => v4(vxlan(100, inner().subarray(0, 10))), reason: 'vxlan_inner_runt' },
        { name: 'bad UDP checksum over IPv6', frame: () => v6(vxlan(100, inner()), 'bad'), reason: 'outer_udp_checksum' },
        { name: 'zero UDP checksum over IPv6 (not allowed by default)', frame: () => v6(vxlan(100, inner()), 'zero'), reason: 'outer_udp_checksum' },
        { name: 'IPv6 fragment header', frame: fragHeader6, reason: 'outer_ip_fragment' },
        { name: 'truncated packet: IPv6 payload length beyond the frame', frame: () => v6(vxlan(100, inner())).subarray(0, 14 + 40 + 8 + 8 + 20), reason: 'outer_ip_length' },
        // Good ones in between: accepted and delivered to the guest.
        { name: 'good VXLAN over IPv4 (UDP checksum zero)', frame: good4 },
        { name: 'good VXLAN over IPv4 with a correct UDP checksum', frame: () => v4(vxlan(100, inner()), { csum: 'good' }) },
        { name: 'reserved VXLAN flag bits and fields set (ignored, RFC 7348 5)', frame: () => v4(vxlan(100, inner(), 0xff, true)) },
        { name: 'good VXLAN over IPv6 with its UDP checksum', frame: () => v6(vxlan(100, inner()), 'good') },
      ];
      const K = 3;
      const failures: string[] = [];
      for (const c of cases) {
        const before = await h.a.call<Stats>('statsPlus');
        const counter = c.reason === undefined && !c.toHost ? countFrames(lab, gA.ns, 'eth0', TEST_ETHERTYPE, K, 10, 0.3) : undefined;
        if (counter) await counter.ready;
        await sendFrames(h.nsB, 'eth0', [c.frame()], { repeat: K });
        let drops: Record<string, number> = {};
        let received: number | undefined;
        if (c.reason !== undefined) {
          try {
            await untilPasses(async () => {
              const s = await h.a.call<Stats>('statsPlus');
              drops = diff(uplinkDrops(before), uplinkDrops(s));
              assert.ok((drops[c.reason as string] ?? 0) >= K);
            }, 5000, 50);
          } catch {
            // reported below
          }
          await sleep(100);
        } else if (c.toHost) {
          try {
            await untilPasses(async () => {
              const s = await h.a.call<Stats>('statsPlus');
              assert.ok((s.uplink?.counters.to_host ?? 0) - (before.uplink?.counters.to_host ?? 0) >= K);
            }, 5000, 50);
          } catch {
            failures.push(`${c.name}: uplink to_host did not rise by ${K}`);
          }
          await sleep(100);
        } else {
          received = (await (counter as ReturnType<typeof countFrames>).result).count;
        }
        const after = await h.a.call<Stats>('statsPlus');
        drops = diff(uplinkDrops(before), uplinkDrops(after));
        const expected = c.reason === undefined ? {} : { [c.reason]: K };
        const line = `${c.name}: drops ${JSON.stringify(drops)}${received === undefined ? '' : `, delivered ${received}/${K}`}`;
        t.diagnostic(line);
        let ok = JSON.stringify(drops) === JSON.stringify(expected);
        if (c.reason === undefined && !c.toHost && received !== K) ok = false;
        if (!ok) failures.push(`${line} — expected ${c.reason === undefined ? `delivery of ${K}` : `${K} x ${c.reason}`}`);
      }
      // Still running and forwarding.
      assert.ok(h.a.alive(), 'the switch process is alive');
      const after = await ping(lab, gA, gB.ip, 3);
      assert.equal(after.received, 3, `ping after the malformed packets:\n${after.out}`);
      const back = await ping(lab, gB, gA.ip, 2);
      assert.equal(back.received, 2, back.out);
      assert.deepEqual(failures, [], failures.join('\n'));
    } finally {
      await h.a.close();
    }
  });
});

// ---------------------------------------------------------------- MTU

async function mtuTest(t: Ctx, family: 4 | 6): Promise<void> {
  await withLab(t, [], async (lab) => {
    // Guests at MTU 1500 so A's guest can emit the too-big frame; the
    // underlay at 1500.
    const h = await interop(lab, { family, vnis: [100], guestMtu: 1500 });
    try {
      const [gA] = h.gA;
      const [gB] = h.gB;
      const inner = family === 4 ? 1450 : 1430;
      assert.equal(family === 4 ? h.uplink.innerMtu4 : h.uplink.innerMtu6, inner, `uplink() shows the inner MTU: ${JSON.stringify(h.uplink)}`);
      const payload = inner - 28; // ICMP echo: 20 (IPv4) + 8 (ICMP) inner headers
      assert.equal((await ping(lab, gA, gB.ip, 1)).received, 1, 'warm-up');
      const fits = await ping(lab, gA, gB.ip, 3, ['-M', 'do', '-s', String(payload)]);
      assert.equal(fits.received, 3, `inner L3 ${inner} must pass:\n${fits.out}`);
      t.diagnostic(`IPv${family} underlay: inner L3 ${inner} (ping -s ${payload}) passes, avg rtt ${fits.rttAvgMs} ms`);
      const before = await h.a.call<Stats>('statsPlus');
      const big = await ping(lab, gA, gB.ip, 3, ['-M', 'do', '-s', String(payload + 1)]);
      assert.equal(big.received, 0, `inner L3 ${inner + 1} must not pass:\n${big.out}`);
      await sleep(100);
      const after = await h.a.call<Stats>('statsPlus');
      const sw = diff(before.switches.s100.drops, after.switches.s100.drops);
      const up = diff(uplinkDrops(before), uplinkDrops(after));
      const peer = diff(before.peers[h.bIp], after.peers[h.bIp]);
      t.diagnostic(`one byte more: switch drops ${JSON.stringify(sw)}, uplink drops ${JSON.stringify(up)}, peer ${JSON.stringify(peer)}`);
      // The switch answers the first one with ICMP Fragmentation Needed /
      // Packet Too Big carrying the inner MTU (as Linux's vxlan does); the
      // guest's kernel then refuses the next ones itself ("message too
      // long"), so between 1 and 3 reach the switch, each dropped and counted.
      t.diagnostic(`the guest's ping said: ${big.out.split('\n').filter((l) => /mtu/i.test(l)).slice(0, 2).join(' | ')}`);
      assert.match(big.out, new RegExp(`mtu\\s*[=:]?\\s*${inner}\\b`, 'i'), `the guest learns the inner MTU:\n${big.out}`);
      assert.ok(sw.vxlan_too_big >= 1 && sw.vxlan_too_big <= 3, `switch drops: ${JSON.stringify(sw)}`);
      assert.equal(peer.drops, sw.vxlan_too_big, `peer drops: ${JSON.stringify(peer)}`);
      assert.equal(up.vxlan_too_big, sw.vxlan_too_big, `uplink port drops: ${JSON.stringify(up)}`);
      // And the largest size still passes afterwards.
      assert.equal((await ping(lab, gA, gB.ip, 1, ['-M', 'do', '-s', String(payload)])).received, 1);
    } finally {
      await h.a.close();
    }
  });
}

// The kernel fast path's own checks on the uplink (docs/design/kernel-path.md):
// once the engine has forwarded the guests' first frames, B's VXLAN packets
// between them are decapsulated by the kernel when their UDP checksum is
// zero or right (the program sums the datagram); one with a wrong checksum
// goes to the engine, which drops and counts it, and is never delivered.
test('the kernel path decapsulates VXLAN with a zero or right UDP checksum; a wrong one goes to the engine and is a counted drop', async (t) => {
  await withLab(t, ['python3'], async (lab) => {
    const h = await interop(lab, { family: 4, vnis: [100] });
    try {
      const [gA] = h.gA;
      const [gB] = h.gB;
      assert.equal((await ping(lab, gA, gB.ip, 2)).received, 2, 'baseline ping A->B');
      assert.equal((await ping(lab, gB, gA.ip, 2)).received, 2, 'baseline ping B->A');
      // Inner IPv4 from B's guest to A's guest (protocol 253, experimental:
      // A's guest ignores it).
      const inner = (): Buffer => eth(gA.mac, gB.mac, 0x0800, ipv4(gB.ip, gA.ip, 253, Buffer.alloc(64, 0x5a)));
      const frame = (csum: 'zero' | 'good' | 'bad'): Buffer =>
        eth(h.vtepMac, h.bMac, 0x0800, ipv4(B4, A4, 17, udp(B4, A4, 50001, 4789, vxlan(100, inner()), csum)));
      const K = 5;
      const failures: string[] = [];
      // The guest's port is a veth whose other end is in the guest's
      // namespace, with no qdisc: what the kernel decapsulates enters that
      // end directly (bpf_redirect_peer), so this end transmits none of it.
      const kp = await h.a.call<{ kernelPath: string }>('portStatus', 'p100');
      assert.match(kp.kernelPath, /decapsulated frames enter the guest's end of the veth directly/);
      const packets = (ns: string, dev: string): { rx: number; tx: number } => {
        const j = JSON.parse(run('ip', ['-n', ns, '-s', '-j', 'link', 'show', 'dev', dev])) as Array<{ stats64: { rx: { packets: number }; tx: { packets: number } } }>;
        return { rx: j[0]!.stats64.rx.packets, tx: j[0]!.stats64.tx.packets };
      };
      for (const [csum, kernel, drop] of [['zero', K, 0], ['good', K, 0], ['bad', 0, K]] as const) {
        const before = await h.a.call<Stats>('statsPlus');
        const hostEnd = packets(h.nsA, 'ga100');
        const guestEnd = packets(gA.ns, 'eth0');
        await sendFrames(h.nsB, 'eth0', [frame(csum)], { repeat: K });
        // The kernel's counters are added every housekeeping tick: wait for
        // what is expected (a loaded machine may be late), then a tick more
        // for anything beyond it.
        const counted = async (): Promise<{ took: number; drops: number }> => {
          const s = await h.a.call<Stats>('statsPlus');
          return {
            took: (s.ports.up.counters.rx_kernel_path ?? 0) - (before.ports.up.counters.rx_kernel_path ?? 0),
            drops: (uplinkDrops(s).outer_udp_checksum ?? 0) - (uplinkDrops(before).outer_udp_checksum ?? 0),
          };
        };
        await untilPasses(async () => {
          const c = await counted();
          assert.ok(c.took >= kernel && c.drops >= drop);
        }, 10_000, 100).catch(() => undefined); // a shortfall is reported below
        await sleep(400);
        const { took, drops } = await counted();
        const hostTx = packets(h.nsA, 'ga100').tx - hostEnd.tx;
        const guestRx = packets(gA.ns, 'eth0').rx - guestEnd.rx;
        t.diagnostic(`UDP checksum ${csum}: ${took} decapsulated by the kernel, ${drops} outer_udp_checksum drops; the guest's veth: ${hostTx} sent by the host end, ${guestRx} received by the guest's`);
        if (took !== kernel || drops !== drop) failures.push(`${csum}: kernel ${took} (want ${kernel}), drops ${drops} (want ${drop})`);
        if (kernel > 0 && guestRx < K) failures.push(`${csum}: the guest received ${guestRx} (want ${K})`);
        if (kernel > 0 && hostTx >= K) failures.push(`${csum}: the host end sent ${hostTx}: the kernel's frames went through it`);
      }
      assert.deepEqual(failures, []);
    } finally {
      await h.a.close();
    }
  });
});

test('MTU over IPv4: inner L3 1450 passes with DF, 1451 is dropped, counted (vxlan_too_big) and answered with the MTU', async (t) => {
  await mtuTest(t, 4);
});

test('MTU over IPv6: inner L3 1430 passes with DF, 1431 is dropped, counted (vxlan_too_big) and answered with the MTU', async (t) => {
  await mtuTest(t, 6);
});

// ---------------------------------------------------------------- TCP with default guests

// One bounded iperf3 TCP run (one stream) from `from` to `to`.
async function iperfTcp(lab: Lab, from: Guest, to: Guest, args = ['-t', '3'], toAddr = to.ip): Promise<{ gbps: number; retransmits: number }> {
  const srv = await lab.iperf3Server(to.ns, toAddr);
  try {
    const r = await lab.nsAsync(from.ns, 'iperf3', ['-c', toAddr, ...args, '--connect-timeout', '3000', '-J'], 30_000);
    assert.equal(r.code, 0, `iperf3 ${from.ip} -> ${to.ip} failed:\n${r.out.slice(0, 2000)}`);
    const j = JSON.parse(r.out) as { error?: string; end?: { sum_received?: { bits_per_second: number }; sum_sent?: { retransmits?: number } } };
    assert.ok(j.end?.sum_received !== undefined, `iperf3 ${from.ip} -> ${to.ip} gave no result: ${j.error ?? r.out.slice(0, 2000)}`);
    return { gbps: j.end.sum_received.bits_per_second / 1e9, retransmits: j.end.sum_sent?.retransmits ?? 0 };
  } finally {
    srv.stop();
    await srv.done.catch(() => undefined);
  }
}

// Guests as a container runtime makes them: TSO, GSO and checksum offload on,
// MTU 1500 over a 1500-byte underlay (inner MTU 1450). The guest's super-frames
// are cut to the inner MTU before encapsulation, full-size frames with DF are
// answered with ICMP fragmentation-needed, and an inner checksum the Linux
// VTEP left partial travels with the decapsulated frame. The reference is
// Linux bridge + vxlan on two hosts, with the same guests, in the same test; a
// run under 10% of it is a collapse, whatever the machine's load.
//
// Both hosts keep every default, underlay included: A's super-frames leave
// its uplink as UDP GSO batches of VXLAN packets, which B's kernel cuts for
// its vxlan socket; B's vxlan device hands its tunnel GSO frames over whole
// (a veth underlay does not segment them), and A's uplink decapsulates each
// into one inner TCP super-frame (native/netmap/overlay/uso.cc): no oversize drops.
//
// Over an IPv6 underlay (inner MTU 1430) the engine carries every frame (the
// kernel path is IPv4 only), and every VXLAN packet has its UDP checksum, as
// IPv6 requires; the reference then runs over IPv6 too.
for (const mode of ['engine', 'kernel fast path', 'AF_XDP uplink', 'IPv6 underlay'] as const) {
test(`TCP over VXLAN with default guests (TSO/GSO/checksum on, MTU 1500): iperf3 both ways against a Linux VTEP is not collapsed (${mode})`, async (t) => {
  await withLab(t, ['iperf3', 'ss'], async (lab) => {
    const kernelPath = mode === 'kernel fast path';
    const v6 = mode === 'IPv6 underlay';
    // An AF_XDP uplink has no kernel path to turn off (its guest port keeps its own).
    const h = await interop(lab, { family: v6 ? 6 : 4, vnis: [100], guestMtu: 1500, ...(mode === 'AF_XDP uplink' ? { uplink: { type: 'afxdp' } } : v6 ? {} : { kernelPath }) });
    const [gA] = h.gA;
    const [gB] = h.gB;
    try {
      const k = run('ip', ['netns', 'exec', gA.ns, 'ethtool', '-k', 'eth0']);
      assert.match(k, /^tcp-segmentation-offload: on/m, 'the guest keeps TSO on');
      // The reference: Linux bridge + vxlan on hosts C and D.
      const nsC = quietNetns(lab, 'C', v6);
      const nsD = quietNetns(lab, 'D', v6);
      lab.vethBetween(nsC, 'eth0', nsD, 'eth0');
      const [ipC, ipD] = v6 ? ['2001:db8:2::3', '2001:db8:2::4'] : ['198.18.0.3', '198.18.0.4'];
      run('ip', ['-n', nsC, 'addr', 'add', `${ipC}/${v6 ? 64 : 24}`, 'dev', 'eth0', ...(v6 ? ['nodad'] : [])]);
      run('ip', ['-n', nsD, 'addr', 'add', `${ipD}/${v6 ? 64 : 24}`, 'dev', 'eth0', ...(v6 ? ['nodad'] : [])]);
      const { br: brC } = linuxVtep(nsC, 200, ipC, 'eth0', [ipD]);
      const { br: brD } = linuxVtep(nsD, 200, ipD, 'eth0', [ipC]);
      const gC = guest(lab, 'c0', nsC, 'gc200', mac(0xc, 1), '198.19.101.1/24', 1500);
      const gD = guest(lab, 'd0', nsD, 'gd200', mac(0xd, 1), '198.19.101.2/24', 1500);
      run('ip', ['-n', nsC, 'link', 'set', 'gc200', 'master', brC]);
      run('ip', ['-n', nsD, 'link', 'set', 'gd200', 'master', brD]);
      const ref = await iperfTcp(lab, gC, gD);
      const ab = await iperfTcp(lab, gA, gB);
      const ba = await iperfTcp(lab, gB, gA);
      const st = await h.a.call<Stats>('statsPlus');
      const drops = Object.fromEntries(Object.entries(uplinkDrops(st)).filter(([, v]) => v > 0));
      t.diagnostic(`Linux bridge + vxlan ${ref.gbps.toFixed(2)} Gbit/s; this switch -> Linux VTEP ${ab.gbps.toFixed(2)} Gbit/s (${ab.retransmits} retr), Linux VTEP -> this switch ${ba.gbps.toFixed(2)} Gbit/s (${ba.retransmits} retr); uplink drops ${JSON.stringify(drops)}`);
      // Before this change TCP here ran at 0.00025 Gbit/s (super-frames lost):
      // that class of failure is what this guards against.
      assert.ok(ab.gbps >= 0.01 * ref.gbps, `A->B collapsed: ${ab.gbps} Gbit/s vs Linux's ${ref.gbps}`);
      assert.ok(ba.gbps >= 0.01 * ref.gbps, `B->A collapsed: ${ba.gbps} Gbit/s vs Linux's ${ref.gbps}`);
      // Issue 11's bar: no configuration under 10% of the bridge's.
      assert.ok(ab.gbps >= 0.1 * ref.gbps && ba.gbps >= 0.1 * ref.gbps, `A->B ${ab.gbps.toFixed(2)}, B->A ${ba.gbps.toFixed(2)} vs ${ref.gbps.toFixed(2)} Gbit/s`);
      assert.equal(drops.oversize ?? 0, 0, `Linux's tunnel GSO frames are taken whole: ${JSON.stringify(drops)}`);
      const up = st.uplink?.counters ?? {};
      const upPort = st.ports.up?.counters ?? {};
      t.diagnostic(`uplink: ${JSON.stringify(up)}; uplink port tx_kernel_path ${upPort.tx_kernel_path}, rx_kernel_path ${upPort.rx_kernel_path}; engine ${JSON.stringify(st.engine)}; uplink kernelPath ${JSON.stringify((await h.a.call<{ kernelPath: string }>('portStatus', 'up'))?.kernelPath)}`);
      if (!kernelPath) {
        assert.ok((up.vxlan_tx_batched ?? 0) > 0, `A's segments left in UDP GSO batches: ${JSON.stringify(up)}`);
        assert.equal(upPort.tx_kernel_path, 0);
        if (mode === 'AF_XDP uplink') {
          // The Linux VTEP's packets with a partial inner checksum arrive
          // without that state (AF_XDP carries none) under an outer checksum
          // summed for the completed packet: completed, not dropped. Before,
          // no TCP connection could open here.
          assert.equal(drops.outer_udp_checksum ?? 0, 0, `hidden partial inner checksums completed: ${JSON.stringify(drops)}`);
          assert.match((await h.a.call<{ offloads: string }>('portStatus', 'up')).offloads, /^native XDP/);
        }
      } else {
        // A's super-frames are encapsulated by the kernel, each cut 50 bytes
        // smaller (guest MTU 1500 = the underlay's) by the uplink's GSO; the
        // Linux VTEP's tunnel super-frames are decapsulated whole into the
        // guest's end of its veth.
        assert.ok((upPort.tx_kernel_path ?? 0) > 0, `the kernel encapsulated: ${JSON.stringify(upPort)}`);
        assert.ok((st.ports.p100?.counters.rx_kernel_path ?? 0) > 0, 'counted on the guest port too');
      }
    } finally {
      await h.a.close();
    }
  });
});
}

// Two hosts A and B (namespaces, one underlay veth between them), each
// running this switch (an Agent) with switch s100 (VNI 100), a port p100
// for its guest (afpacket unless `guestType` says otherwise: a tap the switch
// creates is moved into a namespace of its own; guest and port at
// `guestMtu`, 1500 by default; the guest's offloads kept), an uplink
// (afpacket with the kernel path on, or AF_XDP when `uplinkType` says so) at
// the underlay's default MTU of 1500, and the other host as its peer.
async function twoInstances(lab: Lab, uplinkType: 'afpacket' | 'afxdp' = 'afpacket', guestType: 'afpacket' | 'afxdp' | 'tap' = 'afpacket',
  guestMtu = 1500, uplinkExtra: [Record<string, unknown>, Record<string, unknown>] = [{}, {}]): Promise<{ nsB: string; gA: Guest; gB: Guest; hosts: { a: Agent; ns: string }[] }> {
  const nsA = quietNetns(lab, 'A');
  const nsB = quietNetns(lab, 'B');
  lab.vethBetween(nsA, 'up0', nsB, 'up0');
  const hosts = [{ a: new Agent(lab, nsA), ns: nsA, ip: A4, peer: B4, port: 'ga100', tag: 'a0', mac: mac(0xa, 1), cidr: '198.19.100.1/24' },
    { a: new Agent(lab, nsB), ns: nsB, ip: B4, peer: A4, port: 'gb100', tag: 'b0', mac: mac(0xb, 1), cidr: '198.19.100.2/24' }];
  const guests: Guest[] = [];
  try {
    for (const [i, h] of hosts.entries()) {
      await h.a.call('createSwitch', { name: 's100', vni: 100 });
      if (guestType !== 'tap') guests.push(guest(lab, h.tag, h.ns, h.port, h.mac, h.cidr, guestMtu));
      await h.a.call('createPort', { name: 'p100', type: guestType, interface: h.port, switch: 's100', ...(guestMtu === 1500 ? {} : { mtu: guestMtu }) });
      if (guestType === 'tap') {
        const gns = quietNetns(lab, h.tag);
        run('ip', ['-n', h.ns, 'link', 'set', h.port, 'netns', gns]);
        guests.push(lab.configure(gns, h.port, h.mac, h.cidr, guestMtu));
      }
      await h.a.call('createUplink', { name: 'up', type: uplinkType, interface: 'up0', localIp: `${h.ip}/24`, ...uplinkExtra[i] });
      await h.a.call('addPeer', { switch: 's100', ip: h.peer });
      const st = await h.a.call<{ kernelPath: string }>('portStatus', 'up');
      if (uplinkType === 'afpacket') assert.match(st.kernelPath, /^on: /, 'the uplink has the kernel path (clang, libbpf and Linux 6.6 or later)');
    }
  } catch (err) {
    for (const h of hosts) await h.a.close();
    throw err;
  }
  return { nsB, gA: guests[0]!, gB: guests[1]!, hosts };
}

// The reference "not collapsed" is measured against: iperf3 TCP over a
// plain veth pair between two namespaces, in the same test.
async function vethPairTcp(lab: Lab): Promise<{ gbps: number; retransmits: number }> {
  const w1 = quietNetns(lab, 'W1');
  const w2 = quietNetns(lab, 'W2');
  lab.vethBetween(w1, 'eth0', w2, 'eth0');
  const wire = [lab.configure(w1, 'eth0', mac(0xc, 1), '198.19.101.1/24'), lab.configure(w2, 'eth0', mac(0xc, 2), '198.19.101.2/24')];
  return iperfTcp(lab, wire[0], wire[1]);
}

// The kernel fast path over VXLAN (docs/design/kernel-path.md) between two
// instances of this switch, guests and underlay at their defaults (MTU 1500,
// so the guests' super-frames are cut 50 bytes smaller by the uplink's GSO).
// A's kernel encapsulates the data; B's ACKs come back encapsulated by B's
// kernel (zero UDP checksum, plain frames) and A's kernel decapsulates them.
// A veth underlay hands A's tunnel super-frames over whole, and B's kernel
// decapsulates them whole. Every frame the kernel carried is in the counters.
test('VXLAN between two instances of this switch: the kernel fast path encapsulates and decapsulates, iperf3 TCP with default guests, counted', async (t) => {
  await withLab(t, ['iperf3', 'ss'], async (lab) => {
    const { gA, gB, hosts } = await twoInstances(lab);
    try {
      const ab = await iperfTcp(lab, gA, gB);
      await sleep(300); // the kernel's counters are added every housekeeping tick
      const [sa, sb] = [await hosts[0].a.call<Stats>('statsPlus'), await hosts[1].a.call<Stats>('statsPlus')];
      const upA = sa.ports.up.counters;
      const pA = sa.ports.p100.counters;
      const peerA = sa.peers[B4];
      t.diagnostic(`A -> B ${ab.gbps.toFixed(2)} Gbit/s (${ab.retransmits} retr); A uplink tx_kernel_path ${upA.tx_kernel_path} rx_kernel_path ${upA.rx_kernel_path}, ` +
        `p100 rx_kernel_path ${pA.rx_kernel_path} tx_kernel_path ${pA.tx_kernel_path}; A peer ${JSON.stringify(peerA)}; A uplink ${JSON.stringify(sa.uplink?.counters)}; ` +
        `B uplink port ${JSON.stringify(sb.ports.up.counters)}; A drops ${JSON.stringify(uplinkDrops(sa))}`);
      assert.ok(ab.gbps > 0, 'the transfer completed');
      assert.ok(upA.tx_kernel_path > 1000, `A's kernel encapsulated the data: ${upA.tx_kernel_path}`);
      assert.ok(pA.rx_kernel_path >= upA.tx_kernel_path, 'and counted it on the guest port');
      assert.ok(upA.rx_kernel_path > 100, `A's kernel decapsulated B's ACKs: ${upA.rx_kernel_path}`);
      assert.ok(pA.tx_kernel_path >= upA.rx_kernel_path, 'and counted them on the guest port');
      // The switch's traffic with the peer includes what the kernel carried.
      assert.ok(peerA.tx_packets >= upA.tx_kernel_path && peerA.rx_packets >= upA.rx_kernel_path, JSON.stringify(peerA));
      assert.ok((sa.uplink?.counters.vxlan_tx ?? 0) >= upA.tx_kernel_path, JSON.stringify(sa.uplink?.counters));
      assert.equal(sa.ports.p100.drops.kernel_path_error ?? 0, 0);
      assert.equal(sa.ports.up.drops.kernel_path_error ?? 0, 0);
      // B's kernel decapsulated A's tunnel super-frames too, straight into
      // the guest's end of its veth: the engine saw only a flow's first
      // frames, before it had noted the entries for the kernel.
      const upB = sb.ports.up.counters;
      assert.ok(upB.rx_kernel_path > 1000 && upB.rx_packets - upB.rx_kernel_path < 100,
        `B's kernel decapsulated the data, super-frames included: ${upB.rx_kernel_path} of ${upB.rx_packets} frames`);
      assert.ok(upB.rx_bytes / upB.rx_packets > 3000, `super-frames crossed the underlay whole: ${Math.round(upB.rx_bytes / upB.rx_packets)} bytes per frame`);
      assert.equal(sb.ports.up.drops.kernel_path_error ?? 0, 0);
      // IPv6 inside: the same, super-frames included.
      const v6 = ['2001:db8:64::1', '2001:db8:64::2'];
      for (const [i, g] of [gA, gB].entries()) {
        run('ip', ['netns', 'exec', g.ns, 'sysctl', '-qw', 'net.ipv6.conf.eth0.disable_ipv6=0']);
        run('ip', ['-n', g.ns, 'addr', 'add', `${v6[i]}/64`, 'dev', 'eth0', 'nodad']);
      }
      const ab6 = await iperfTcp(lab, gA, gB, ['-t', '3'], v6[1]);
      await sleep(300);
      const sb6 = await hosts[1].a.call<Stats>('statsPlus');
      const took6 = sb6.ports.up.counters.rx_kernel_path - upB.rx_kernel_path;
      const all6 = sb6.ports.up.counters.rx_packets - upB.rx_packets;
      t.diagnostic(`IPv6 inside: A -> B ${ab6.gbps.toFixed(2)} Gbit/s (${ab6.retransmits} retr); B's kernel decapsulated ${took6} of ${all6} frames`);
      assert.ok(ab6.gbps > 0, 'the IPv6 transfer completed');
      assert.ok(took6 > 1000 && all6 - took6 < 100, `B's kernel decapsulated the IPv6 data: ${took6} of ${all6} frames`);
      const bytes6 = sb6.ports.up.counters.rx_bytes - upB.rx_bytes;
      assert.ok(bytes6 / all6 > 3000, `IPv6 super-frames crossed whole: ${Math.round(bytes6 / all6)} bytes per frame`);
      assert.equal(sb6.ports.up.drops.kernel_path_error ?? 0, 0);
      assert.equal(sb6.ports.p100.drops.kernel_path_error ?? 0, 0);
    } finally {
      for (const h of hosts) await h.a.close();
    }
  });
});

// What an uplink's status says when the kernel lets no XDP program have
// metadata (ports/kpath.cc): the rest of the kernel path stays.
const XDP_REFUSED = /this kernel gives XDP programs no bpf_xdp_adjust_meta/;

// An underlay whose interfaces merge what they receive (GRO on, as a NIC's
// is by default; a veth's is off): the uplinks decapsulate VXLAN in XDP,
// before GRO, so that a flow's inner TCP segments reach the guest merged,
// as Linux's vxlan device hands them on (docs/design/kernel-path.md#xdp).
// The stage follows the interface's GRO: turned on or off while the switch
// runs, the next link check (a link message) adds or removes it. xdpDecap
// 'auto' (A) leaves a veth alone, since XDP on a veth takes TSO and GSO
// from its other end; 'on' (B) has it anyway, and A's end loses TSO while
// B's stage is there.
test('VXLAN over an underlay with GRO on: an uplink decapsulates in XDP (xdpDecap on; auto leaves a veth alone) and the guest receives merged super-frames; GRO off takes the stage away; iperf3 TCP with default guests', async (t) => {
  await withLab(t, ['iperf3', 'ss', 'ethtool'], async (lab) => {
    const { gA, gB, hosts } = await twoInstances(lab, 'afpacket', 'afpacket', 1500, [{}, { xdpDecap: 'on' }]);
    const rxPackets = (ns: string, dev: string): number =>
      (JSON.parse(run('ip', ['-n', ns, '-s', '-j', 'link', 'show', 'dev', dev])) as Array<{ stats64: { rx: { packets: number } } }>)[0]!.stats64.rx.packets;
    const gro = (on: boolean): void => {
      for (const h of hosts) run('ip', ['netns', 'exec', h.ns, 'ethtool', '-K', 'up0', 'gro', on ? 'on' : 'off']);
    };
    const tso = (ns: string): string => /tcp-segmentation-offload: (\w+)/.exec(run('ip', ['netns', 'exec', ns, 'ethtool', '-k', 'up0']))?.[1] ?? '?';
    // One transfer A -> B: what B's kernel decapsulated (per packet) and how
    // many frames B's guest received for them.
    const transfer = async (label: string): Promise<{ took: number; guestRx: number; strayToEngine: number }> => {
      const before = await hosts[1].a.call<Stats>('statsPlus');
      const rx0 = rxPackets(gB.ns, 'eth0');
      const r = await iperfTcp(lab, gA, gB);
      await sleep(300); // the kernel's counters are added every housekeeping tick
      const after = await hosts[1].a.call<Stats>('statsPlus');
      const took = (after.ports.up.counters.rx_kernel_path ?? 0) - (before.ports.up.counters.rx_kernel_path ?? 0);
      const guestRx = rxPackets(gB.ns, 'eth0') - rx0;
      const strayToEngine = (uplinkDrops(after).outer_dst_mac ?? 0) - (uplinkDrops(before).outer_dst_mac ?? 0);
      t.diagnostic(`${label}: A -> B ${r.gbps.toFixed(2)} Gbit/s (${r.retransmits} retr); B's kernel decapsulated ${took} packets, B's guest received ${guestRx} frames; ` +
        `B's engine saw ${strayToEngine} outer_dst_mac; B drops ${JSON.stringify(nonZero(uplinkDrops(after)))}`);
      assert.ok(r.gbps > 0, `${label}: the transfer completed`);
      assert.equal(after.ports.up.drops.kernel_path_error ?? 0, 0, `${label}: no kernel path errors`);
      return { took, guestRx, strayToEngine };
    };
    try {
      const status = async (i: number): Promise<string> => (await hosts[i]!.a.call<{ kernelPath: string }>('portStatus', 'up')).kernelPath;
      if (XDP_REFUSED.test(await status(1))) {
        t.skip(`no XDP stage on this kernel: ${await status(1)}`);
        return;
      }
      for (const i of [0, 1]) assert.match(await status(i), /decapsulated at TC ingress \(XDP stage: the interface's GRO is off/);
      gro(true);
      await untilPasses(async () => assert.match(await status(1), /decapsulated in XDP/), 15_000);
      assert.match(await status(0), /decapsulated at TC ingress \(XDP stage: xdpDecap: auto leaves a veth alone/);
      assert.equal(tso(hosts[0].ns), 'off', "A's end of the underlay veth, with XDP on B's");
      assert.equal(tso(hosts[1].ns), 'on', "B's end: A's uplink has no XDP");
      const merged = await transfer('GRO on');
      assert.ok(merged.took > 1000, `B's kernel decapsulated the data: ${merged.took}`);
      assert.ok(merged.guestRx * 2 < merged.took, `GRO merged what XDP decapsulated: ${merged.guestRx} frames for ${merged.took} packets`);
      assert.ok(merged.strayToEngine < 10, `decapsulated frames are not the engine's: ${merged.strayToEngine} reached it`);
      gro(false);
      await untilPasses(async () => assert.match(await status(1), /decapsulated at TC ingress.*GRO is off/), 15_000);
      assert.equal(tso(hosts[0].ns), 'on', 'TSO back on the other end');
      // The veth hands A's tunnel super-frames over whole again, and what
      // B's kernel decapsulates at TC ingress goes through its GRO stage.
      const plain = await transfer('GRO off');
      assert.ok(plain.took > 1000, `B's kernel decapsulated the data: ${plain.took}`);
    } finally {
      for (const h of hosts) await h.a.close();
    }
  });
});

// A wire-like underlay (TSO, GSO and UDP segmentation off on both uplinks'
// veths, as the bench's vx-*-wire rows): every VXLAN packet crosses on its
// own, and B's kernel decapsulates them one by one at TC ingress. Its
// uplink's GRO stage (docs/design/kernel-path.md#gro-stage), a veth pair
// of the engine's, merges them, so B's guest receives fewer, larger frames
// than the packets its kernel decapsulated, as Linux's vxlan device hands
// them on (gro_cells). The stage leaves with the switch.
test('VXLAN over a wire-like underlay: the uplink\'s GRO stage merges what TC ingress decapsulates, the guest receives super-frames, and the stage leaves with the switch; iperf3 TCP with default guests', async (t) => {
  await withLab(t, ['iperf3', 'ss', 'ethtool'], async (lab) => {
    const { gA, gB, hosts } = await twoInstances(lab);
    const link = (ns: string, dev: string): { ifindex: number; rx: number } | undefined => {
      let out: string;
      try {
        out = run('ip', ['-n', ns, '-s', '-j', 'link', 'show', 'dev', dev]);
      } catch {
        return undefined;
      }
      const l = (JSON.parse(out) as Array<{ ifindex: number; stats64: { rx: { packets: number } } }>)[0]!;
      return { ifindex: l.ifindex, rx: l.stats64.rx.packets };
    };
    const nsB = hosts[1].ns;
    const stage = `vpcgro${link(nsB, 'up0')!.ifindex}`;
    let closed = false;
    try {
      // up0 is each host's underlay (the switch's uplink), not a guest; the
      // guests keep their defaults.
      for (const h of hosts) run('ip', ['netns', 'exec', h.ns, 'ethtool', '-K', 'up0', 'tso', 'off', 'gso', 'off', 'tx-udp-segmentation', 'off']);
      const status = (await hosts[1].a.call<{ kernelPath: string }>('portStatus', 'up')).kernelPath;
      assert.match(status, new RegExp(`merged by the GRO stage ${stage}a/${stage}b`), status);
      const before = await hosts[1].a.call<Stats>('statsPlus');
      const rx0 = link(gB.ns, 'eth0')!.rx, stage0 = link(nsB, `${stage}b`)!.rx, ip0 = ipInReceives(gB.ns);
      const r = await iperfTcp(lab, gA, gB);
      await sleep(300); // the kernel's counters are added every housekeeping tick
      const after = await hosts[1].a.call<Stats>('statsPlus');
      const took = (after.ports.up.counters.rx_kernel_path ?? 0) - (before.ports.up.counters.rx_kernel_path ?? 0);
      const guestRx = link(gB.ns, 'eth0')!.rx - rx0, merged = link(nsB, `${stage}b`)!.rx - stage0, ipIn = ipInReceives(gB.ns) - ip0;
      t.diagnostic(`A -> B ${r.gbps.toFixed(2)} Gbit/s (${r.retransmits} retr); B's kernel decapsulated ${took} packets, its GRO stage received ${merged}, ` +
        `B's guest received ${guestRx} frames; B drops ${JSON.stringify(nonZero(uplinkDrops(after)))}`);
      assert.ok(r.gbps > 0, 'the transfer completed');
      assert.ok(took > 1000, `B's kernel decapsulated the data: ${took}`);
      assert.ok(merged >= took * 0.9, `what it decapsulated went through the stage: ${merged} of ${took}`);
      assert.ok(guestRx * 2 < took, `the stage merged it: the guest received ${guestRx} frames for ${took} packets`);
      assert.equal(after.ports.up.drops.kernel_path_error ?? 0, 0, 'no kernel path errors');
      assert.ok(ipIn >= guestRx * 0.99, `B's guest's IP input took the frames its interface received: ${ipIn} of ${guestRx}`);
      // Its receiving end set down behind the switch's back: what B's kernel
      // sends into the stage is lost there, and counted (kernel_path_error,
      // read at the uplink's next link check, which also makes the stage
      // again). Then deleted: made again too.
      const errors = async (): Promise<number> => (await hosts[1].a.call<Stats>('statsPlus')).ports.up.drops.kernel_path_error ?? 0;
      run('ip', ['-n', nsB, 'link', 'set', `${stage}b`, 'down']);
      const srv = await lab.iperf3Server(gB.ns, gB.ip);
      const lossy = lab.nsAsync(gA.ns, 'iperf3', ['-c', gB.ip, '-t', '1', '--connect-timeout', '3000', '-J'], 30_000);
      const stageBack = async (): Promise<void> => untilPasses(async () => {
        const [ta, tb] = [link(nsB, `${stage}a`), link(nsB, `${stage}b`)];
        assert.ok(ta !== undefined && tb !== undefined, 'the stage is back');
        assert.match(run('ip', ['-n', nsB, 'link', 'show', `${stage}b`]), /[<,]UP[,>]/, 'and up');
        assert.match((await hosts[1].a.call<{ kernelPath: string }>('portStatus', 'up')).kernelPath, /merged by the GRO stage/);
      }, 25_000, 200);
      await untilPasses(async () => assert.ok((await errors()) > 0, 'the frames lost in the stage are counted'), 25_000, 200);
      await stageBack();
      await lossy.catch(() => undefined);
      srv.stop();
      await srv.done.catch(() => undefined);
      t.diagnostic(`with the stage's receiving end down: B's uplink counted ${await errors()} kernel_path_error`);
      run('ip', ['-n', nsB, 'link', 'del', `${stage}a`]);
      await stageBack();
      const rx1 = link(gB.ns, 'eth0')!.rx, took1 = (await hosts[1].a.call<Stats>('statsPlus')).ports.up.counters.rx_kernel_path ?? 0;
      const again = await iperfTcp(lab, gA, gB, ['-t', '2']);
      await sleep(300);
      const took2 = ((await hosts[1].a.call<Stats>('statsPlus')).ports.up.counters.rx_kernel_path ?? 0) - took1, rx2 = link(gB.ns, 'eth0')!.rx - rx1;
      t.diagnostic(`after the stage was made again: A -> B ${again.gbps.toFixed(2)} Gbit/s; B's kernel decapsulated ${took2} packets, B's guest received ${rx2} frames`);
      assert.ok(took2 > 1000 && rx2 * 2 < took2, `merged again: ${rx2} frames for ${took2} packets`);
      await hosts[1].a.close();
      closed = true;
      assert.equal(link(nsB, `${stage}a`), undefined, 'the stage left with the switch');
      assert.equal(link(nsB, `${stage}b`), undefined, 'both of its ends');
    } finally {
      await hosts[0].a.close();
      if (!closed) await hosts[1].a.close();
    }
  });
});

// An XDP program that stands for a neighbour on a veth underlay: it puts
// metadata of its own (kp_xdp's magic, the port and switch ids in the
// frame's bytes 14 and 15) in front of every frame and redirects it into
// the underlay veth, which hands it to the other end with the metadata.
const FORGE_META_C = `#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp") int forge(struct xdp_md* ctx) {
  unsigned char* d = (unsigned char*)(long)ctx->data;
  if ((void*)(d + 16) > (void*)(long)ctx->data_end) return XDP_PASS;
  __u32 out = d[14], sw = d[15];
  if (bpf_xdp_adjust_meta(ctx, -16)) return XDP_PASS;
  __u32* m = (__u32*)(long)ctx->data_meta;
  if ((void*)(m + 4) > (void*)(long)ctx->data) return XDP_PASS;
  m[0] = 0x6b707864; m[1] = out; m[2] = sw; m[3] = 0;
  return bpf_redirect(TARGET, 0);
}
char LICENSE[] SEC("license") = "GPL";
`;

// Metadata proves nothing: B's TC ingress checks what a frame with kp_xdp's
// metadata carries against its tables again (docs/design/kernel-path.md#xdp).
// A frame from a MAC not learned behind a remote VTEP is a counted drop
// (kernel_path_error), never delivered, whatever port and switch its
// metadata names. B's uplink is on auto over a veth (no kp_xdp there to
// strip the metadata) with GRO on, which lets a veth take frames from XDP.
test('forged XDP metadata from beyond a veth underlay is a counted drop, not switched to any port', async (t) => {
  await withLab(t, ['clang', 'ethtool', 'python3', 'gcc'], async (lab) => {
    const { gB, hosts } = await twoInstances(lab);
    const tmp = tempDir(lab);
    try {
      const [nsA, nsB] = [hosts[0].ns, hosts[1].ns];
      const upStatus = (await hosts[1].a.call<{ kernelPath: string }>('portStatus', 'up')).kernelPath;
      if (XDP_REFUSED.test(upStatus)) {
        // Metadata is written only by an XDP program with bpf_xdp_adjust_meta,
        // which this kernel gives none: there is nothing to forge.
        t.skip(`no XDP program can write metadata on this kernel: ${upStatus}`);
        return;
      }
      run('ip', ['netns', 'exec', nsB, 'ethtool', '-K', 'up0', 'gro', 'on']);
      run('ip', ['-n', nsA, 'link', 'add', 'fx0', 'type', 'veth', 'peer', 'name', 'fx1']);
      for (const dev of ['fx0', 'fx1']) run('ip', ['-n', nsA, 'link', 'set', dev, 'up']);
      const upA = (JSON.parse(run('ip', ['-n', nsA, '-j', 'link', 'show', 'up0'])) as Array<{ ifindex: number }>)[0]!.ifindex;
      const src = `${tmp.dir}/forge.bpf.c`;
      writeFileSync(src, FORGE_META_C.replace('TARGET', String(upA)));
      run('clang', ['-O2', '-target', 'bpf', `-I/usr/include/${run('gcc', ['-print-multiarch']).trim()}`, '-c', src, '-o', `${tmp.dir}/forge.o`]);
      run('ip', ['-n', nsA, 'link', 'set', 'dev', 'fx1', 'xdpdrv', 'obj', `${tmp.dir}/forge.o`, 'sec', 'xdp']);
      const rx = (): number => (JSON.parse(run('ip', ['-n', gB.ns, '-s', '-j', 'link', 'show', 'dev', 'eth0'])) as Array<{ stats64: { rx: { packets: number } } }>)[0]!.stats64.rx.packets;
      const errors = async (): Promise<number> => (await hosts[1].a.call<Stats>('statsPlus')).ports.up.drops.kernel_path_error ?? 0;
      const before = { rx: rx(), errors: await errors() };
      // To B's guest, from a MAC B never learned; every port id 0..7 and switch id 0..3.
      const frames: Buffer[] = [];
      for (let out = 0; out < 8; ++out) for (let sw = 0; sw < 4; ++sw) frames.push(eth(gB.mac, '02:00:00:00:66:66', 0x88b5, Buffer.from([out, sw, ...Buffer.alloc(44, 0x5a)])));
      const sent = await sendFrames(nsA, 'fx0', frames, { repeat: 2 });
      // The kernel's counters are added every housekeeping tick: a loaded
      // machine may be late.
      await untilPasses(async () => assert.ok((await errors()) - before.errors >= sent), 10_000, 100).catch(() => undefined);
      await sleep(400);
      const got = { rx: rx() - before.rx, errors: (await errors()) - before.errors };
      t.diagnostic(`sent ${sent} frames with forged metadata; B's kernel_path_error +${got.errors}; B's guest received ${got.rx} frames meanwhile`);
      assert.equal(got.errors, sent, 'every forged frame reached B\'s TC ingress and was dropped there, counted');
      assert.ok(got.rx < sent, `none reached B's guest (${got.rx} frames of any kind arrived meanwhile)`);
    } finally {
      tmp.remove();
      for (const h of hosts) await h.a.close();
    }
  });
});

// The packets a namespace's IPv4 input took (/proc/net/snmp Ip InReceives):
// a frame redirected into a guest still typed for the interface it came
// through would be counted by the interface and dropped before this.
function ipInReceives(ns: string): number {
  const lines = run('ip', ['netns', 'exec', ns, 'cat', '/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Ip: '));
  const [names, values] = lines.map((l) => l.split(/\s+/));
  return Number(values![names!.indexOf('InReceives')]);
}

function nonZero(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== 0));
}

// AF_XDP uplinks on a veth underlay, both ends this switch. Each side sends
// its VXLAN batches through the uplink's packet socket as UDP GSO frames;
// under generic XDP (what 'auto' meant on a veth, for guests' sake) they
// crossed the veth whole and reached the other side without their segment
// size, so every batch was dropped (rx_udp_gso_lost) and TCP stood at
// 0.00 Gbit/s. An uplink now takes native XDP on a veth, which makes the
// sending side cut its batches first, as a wire would. Not collapsed means
// at least 10% of a plain veth pair between two namespaces in the same test.
test('VXLAN between two instances of this switch with AF_XDP uplinks on a veth underlay: native XDP, iperf3 TCP with default guests both ways is not collapsed', async (t) => {
  await withLab(t, ['iperf3', 'ss'], async (lab) => {
    const ref = await vethPairTcp(lab);
    const { gA, gB, hosts } = await twoInstances(lab, 'afxdp');
    try {
      for (const h of hosts) {
        const st = await h.a.call<{ offloads: string }>('portStatus', 'up');
        assert.match(st.offloads, /^native XDP/, `an uplink on a veth takes native XDP: ${st.offloads}`);
      }
      const ab = await iperfTcp(lab, gA, gB);
      const ba = await iperfTcp(lab, gB, gA);
      const [sa, sb] = [await hosts[0].a.call<Stats>('statsPlus'), await hosts[1].a.call<Stats>('statsPlus')];
      t.diagnostic(`veth pair ${ref.gbps.toFixed(2)} Gbit/s; A -> B ${ab.gbps.toFixed(2)} Gbit/s (${ab.retransmits} retr), B -> A ${ba.gbps.toFixed(2)} (${ba.retransmits} retr); ` +
        `A uplink drops ${JSON.stringify(nonZero(uplinkDrops(sa)))}, B ${JSON.stringify(nonZero(uplinkDrops(sb)))}`);
      for (const [name, st] of [['A', sa], ['B', sb]] as const) {
        const lost = (await hosts[name === 'A' ? 0 : 1].a.call<{ counters: Record<string, number> }>('portStatus', 'up')).counters.rx_udp_gso_lost;
        assert.equal(lost, 0, `${name}'s uplink received no UDP GSO batch it could not cut`);
        assert.equal(st.ports.up.drops.oversize ?? 0, 0, `${name}: ${JSON.stringify(uplinkDrops(st))}`);
      }
      assert.ok(ab.gbps >= 0.1 * ref.gbps && ba.gbps >= 0.1 * ref.gbps,
        `collapsed: A -> B ${ab.gbps.toFixed(3)}, B -> A ${ba.gbps.toFixed(3)} Gbit/s against the veth pair's ${ref.gbps.toFixed(2)}`);
    } finally {
      for (const h of hosts) await h.a.close();
    }
  });
});

// Guests on AF_XDP ports at a jumbo MTU (9000, the port's too) over a
// default 1500-byte underlay: the inner MTU is 1450. XDP hands over a guest's
// TSO batch without its segment size, and the port took only a frame longer
// than its MTU as one. Once a guest had learnt the tunnel's 1450 (the switch
// answers too big), its batches of 1398-byte segments that came to 9000
// bytes or less looked like single frames too big for the tunnel: dropped
// (vxlan_too_big), answered with the MTU the guest already had, and
// retransmitted the same way. TCP stood at 0.00-0.88 Gbit/s with hundreds of
// retransmits. A TCP frame over 1500 bytes with a partial checksum is now
// taken as a batch, cut to the tunnel's MTU. Not collapsed means at least
// 10% of a plain veth pair, as above.
test('VXLAN between two instances of this switch, AF_XDP guests at MTU 9000 over a 1500-byte underlay: iperf3 TCP both ways is not collapsed', async (t) => {
  await withLab(t, ['iperf3', 'ss'], async (lab) => {
    const ref = await vethPairTcp(lab);
    const { gA, gB, hosts } = await twoInstances(lab, 'afpacket', 'afxdp', 9000);
    try {
      const ab = await iperfTcp(lab, gA, gB);
      const ba = await iperfTcp(lab, gB, gA);
      const [sa, sb] = [await hosts[0].a.call<Stats>('statsPlus'), await hosts[1].a.call<Stats>('statsPlus')];
      t.diagnostic(`veth pair ${ref.gbps.toFixed(2)} Gbit/s; A -> B ${ab.gbps.toFixed(2)} Gbit/s (${ab.retransmits} retr), B -> A ${ba.gbps.toFixed(2)} (${ba.retransmits} retr); ` +
        `A uplink drops ${JSON.stringify(nonZero(uplinkDrops(sa)))}, B ${JSON.stringify(nonZero(uplinkDrops(sb)))}; ` +
        `A uplink segments ${sa.ports.up.counters.tx_gso_segments} of ${sa.ports.up.counters.tx_gso_frames} batches`);
      assert.ok(ab.gbps >= 0.1 * ref.gbps && ba.gbps >= 0.1 * ref.gbps,
        `collapsed: A -> B ${ab.gbps.toFixed(3)}, B -> A ${ba.gbps.toFixed(3)} Gbit/s against the veth pair's ${ref.gbps.toFixed(2)}`);
    } finally {
      for (const h of hosts) await h.a.close();
    }
  });
});

// Many streams at once, as a busy server has them: 32 TCP streams between
// tap guests (every frame through the engines). The engine stages up to 512
// frames for a port per iteration; it handed them all to the backend in one
// call, and the AF_PACKET uplink's packet-socket run holds 256: the 257th
// VXLAN batch overran it into the port's ring pointer and the engine crashed
// within the first second. Now the engine hands a backend at most 256 per
// call (ports/port.h). Not collapsed means at least 10% of a veth pair.
test('VXLAN between two instances of this switch, tap guests, 32 TCP streams both ways: neither switch fails, TCP is not collapsed', async (t) => {
  await withLab(t, ['iperf3', 'ss'], async (lab) => {
    const ref = await vethPairTcp(lab);
    const { gA, gB, hosts } = await twoInstances(lab, 'afpacket', 'tap');
    try {
      const many = ['-t', '3', '-P', '32'];
      const ab = await iperfTcp(lab, gA, gB, many);
      const ba = await iperfTcp(lab, gB, gA, many);
      const [sa, sb] = [await hosts[0].a.call<Stats>('statsPlus'), await hosts[1].a.call<Stats>('statsPlus')];
      t.diagnostic(`veth pair ${ref.gbps.toFixed(2)} Gbit/s; 32 streams A -> B ${ab.gbps.toFixed(2)} Gbit/s (${ab.retransmits} retr), B -> A ${ba.gbps.toFixed(2)} (${ba.retransmits} retr); ` +
        `A uplink drops ${JSON.stringify(nonZero(uplinkDrops(sa)))}, B ${JSON.stringify(nonZero(uplinkDrops(sb)))}; ` +
        `A uplink ${sa.ports.up.counters.tx_gso_frames} batches`);
      assert.ok(ab.gbps >= 0.1 * ref.gbps && ba.gbps >= 0.1 * ref.gbps,
        `collapsed: A -> B ${ab.gbps.toFixed(3)}, B -> A ${ba.gbps.toFixed(3)} Gbit/s against the veth pair's ${ref.gbps.toFixed(2)}`);
      for (const st of [sa, sb]) assert.equal(st.ports.up.drops.tx_ring_full ?? 0, 0, JSON.stringify(nonZero(uplinkDrops(st))));
    } finally {
      for (const h of hosts) await h.a.close();
    }
  });
});

// A jumbo underlay (MTU 9000 on both hosts' uplinks) and guests on tap
// ports at its inner MTU (8950): the engine encapsulates (no kernel path for
// taps). A guest's full-sized segment that is not a TSO batch arrives with
// a partial checksum in a large buffer; encapsulation took a frame larger
// than a regular buffer for one that could not fit the inner MTU, answered
// it with ICMP fragmentation-needed at 8950 (what the guest already had) and
// dropped it (vxlan_too_big), every retransmission too: TCP stood at
// 0.00-0.01 Gbit/s. Now such a frame is encapsulated where it is. And a TSO
// super-frame is cut to the inner MTU into the uplink's UDP GSO batch; it
// used to be cut to what a regular buffer holds (1,920 bytes). The reference
// is Linux bridge + vxlan over the same kind of underlay.
test('VXLAN over a jumbo underlay (MTU 9000) between two instances of this switch, tap guests at the inner MTU: iperf3 TCP both ways is not collapsed', async (t) => {
  await withLab(t, ['iperf3', 'ss'], async (lab) => {
    const nsC = quietNetns(lab, 'C');
    const nsD = quietNetns(lab, 'D');
    lab.vethBetween(nsC, 'eth0', nsD, 'eth0');
    const bridges: string[] = [];
    for (const [ns, ip, peer] of [[nsC, '198.18.0.3', '198.18.0.4'], [nsD, '198.18.0.4', '198.18.0.3']] as const) {
      run('ip', ['-n', ns, 'link', 'set', 'eth0', 'mtu', '9000']);
      run('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
      bridges.push(linuxVtep(ns, 200, ip, 'eth0', [peer], { mtu: 8950 }).br);
    }
    const gC = guest(lab, 'c0', nsC, 'gc200', mac(0xc, 1), '198.19.102.1/24', 8950);
    const gD = guest(lab, 'd0', nsD, 'gd200', mac(0xd, 1), '198.19.102.2/24', 8950);
    run('ip', ['-n', nsC, 'link', 'set', 'gc200', 'master', bridges[0]]);
    run('ip', ['-n', nsD, 'link', 'set', 'gd200', 'master', bridges[1]]);
    const ref = await iperfTcp(lab, gC, gD);

    const nsA = quietNetns(lab, 'A');
    const nsB = quietNetns(lab, 'B');
    lab.vethBetween(nsA, 'up0', nsB, 'up0');
    const hosts: Agent[] = [];
    const guests: Guest[] = [];
    try {
      for (const [k, ns, ip, peer] of [[0, nsA, A4, B4], [1, nsB, B4, A4]] as const) {
        run('ip', ['-n', ns, 'link', 'set', 'up0', 'mtu', '9000']);
        const a = new Agent(lab, ns);
        hosts.push(a);
        await a.call('createSwitch', { name: 's100', vni: 100 });
        await a.call('createPort', { name: 'p100', type: 'tap', interface: `jt${k}`, switch: 's100', mtu: 8950 });
        const gns = quietNetns(lab, `jg${k}`);
        run('ip', ['-n', ns, 'link', 'set', `jt${k}`, 'netns', gns]);
        guests.push(lab.configure(gns, `jt${k}`, mac(0xa + k, 2), `198.19.103.${k + 1}/24`, 8950));
        await a.call('createUplink', { name: 'up', type: 'afpacket', interface: 'up0', mtu: 9000, localIp: `${ip}/24` });
        await a.call('addPeer', { switch: 's100', ip: peer });
      }
      const toB = async (): Promise<Record<string, number>> => (await hosts[0].call<Stats>('statsPlus')).peers[B4] ?? {};
      const before = await toB();
      const ab = await iperfTcp(lab, guests[0], guests[1]);
      const after = await toB();
      const ba = await iperfTcp(lab, guests[1], guests[0]);
      const st = await hosts[0].call<Stats>('statsPlus');
      // What A sent B during A -> B, the data segments: inner bytes per VXLAN packet.
      const sent = (after.tx_packets ?? 0) - (before.tx_packets ?? 0);
      const perPacket = sent > 0 ? ((after.tx_bytes ?? 0) - (before.tx_bytes ?? 0)) / sent : 0;
      t.diagnostic(`Linux bridge + vxlan (jumbo) ${ref.gbps.toFixed(2)} Gbit/s; A -> B ${ab.gbps.toFixed(2)} Gbit/s (${ab.retransmits} retr), B -> A ${ba.gbps.toFixed(2)} (${ba.retransmits} retr); ` +
        `A -> B ${sent} VXLAN packets, ${perPacket.toFixed(0)} inner bytes each on average; A uplink drops ${JSON.stringify(nonZero(uplinkDrops(st)))}`);
      assert.ok(ab.gbps >= 0.1 * ref.gbps && ba.gbps >= 0.1 * ref.gbps,
        `collapsed: A -> B ${ab.gbps.toFixed(3)}, B -> A ${ba.gbps.toFixed(3)} Gbit/s against Linux's ${ref.gbps.toFixed(2)}`);
      // Segments are cut to the inner MTU (8950), not to what a regular 2 KiB
      // buffer holds (1,920 bytes): before, they were, five times the packets.
      assert.ok(perPacket > 4096, `A's segments average ${perPacket.toFixed(0)} bytes: cut smaller than the inner MTU`);
    } finally {
      for (const h of hosts) await h.close();
    }
  });
});

// One flow, one outer UDP source port (RFC 7348 5: a hash of the inner flow,
// which ECMP paths and the receiver's queues follow), whichever side
// encapsulates it. A ping's first echo request goes through A's engine (the
// kernel has no entries yet), the next ones through A's kernel. A flush on A
// voids the kernel's entries, so a TCP connection started right after it
// begins in the engine and goes on in the kernel; after a second flush a
// ping does the same again, and then, over IPv6 inside (the hash's other
// branch), a ping and a TCP connection, each after a flush. tshark on B's
// side of the underlay groups A's VXLAN packets by inner flow: each has one
// outer source port.
test('VXLAN: a flow keeps its outer UDP source port as it moves between the engine and the kernel path (ICMP, TCP; IPv4 and IPv6 inside)', async (t) => {
  await withLab(t, ['tcpdump', 'tshark', 'iperf3', 'ss'], async (lab) => {
    const { nsB, gA, gB, hosts } = await twoInstances(lab);
    const tmp = tempDir(lab);
    try {
      const kernelTx = async (): Promise<number> => {
        await sleep(300); // the kernel's counters reach the ports every housekeeping tick
        return (await hosts[0].a.call<Stats>('statsPlus')).ports.up.counters.tx_kernel_path ?? 0;
      };
      const file = `${tmp.dir}/flows.pcap`;
      // Headers only; at most 20,000 packets, 60 s at most.
      const cap = background(lab, nsB, 'timeout', ['60', 'tcpdump', '-i', 'up0', '-nn', '--immediate-mode', '-U', '-s', '200', '-B', '16384', '-c', '20000', '-w', file, 'udp port 4789'], 'listening on');
      await cap.ready;
      const ping = () => lab.nsAsync(gA.ns, 'ping', ['-c', '6', '-i', '0.2', '-W', '2', '-n', gB.ip], 30_000);
      const p1 = await ping();
      const k1 = await kernelTx();
      await hosts[0].a.call('flushFdb', 's100');
      await iperfTcp(lab, gA, gB, ['-n', '2M']);
      const k2 = await kernelTx();
      await hosts[0].a.call('flushFdb', 's100');
      const p2 = await ping();
      const k3 = await kernelTx();
      const [a6, b6] = ['2001:db8:66::1', '2001:db8:66::2'];
      for (const [g, a] of [[gA, a6], [gB, b6]] as const) {
        lab.ns(g.ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=0', 'net.ipv6.conf.eth0.disable_ipv6=0']);
        run('ip', ['-n', g.ns, 'addr', 'add', `${a}/64`, 'dev', 'eth0', 'nodad']);
      }
      await hosts[0].a.call('flushFdb', 's100');
      const p3 = await lab.nsAsync(gA.ns, 'ping', ['-6', '-c', '6', '-i', '0.2', '-W', '2', '-n', b6], 30_000);
      const k4 = await kernelTx();
      await hosts[0].a.call('flushFdb', 's100');
      await iperfTcp(lab, gA, gB, ['-n', '2M'], b6);
      const k5 = await kernelTx();
      await sleep(200);
      cap.stop();
      const c0 = await cap.done;
      const sa = await hosts[0].a.call<Stats>('statsPlus');
      const all = sa.uplink?.counters.vxlan_tx ?? 0;
      // Outer UDP source port, then the inner (last) IPv4 addresses and
      // protocol, the inner IPv6 addresses and next header, and the TCP
      // ports, of every packet A's VTEP sent.
      const rows = run('tshark', ['-r', file, '-Y', `ip.src == ${A4} && (icmp.type == 8 || icmpv6.type == 128 || tcp)`, '-T', 'fields', '-E', 'separator=|',
        '-e', 'udp.srcport', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'ip.proto', '-e', 'ipv6.src', '-e', 'ipv6.dst', '-e', 'ipv6.nxt',
        '-e', 'tcp.srcport', '-e', 'tcp.dstport'])
        .split('\n').filter((l) => l.trim() !== '');
      const byFlow = new Map<string, Set<string>>();
      const counts = new Map<string, number>();
      for (const l of rows) {
        const [sport, ...rest] = l.trim().split('|');
        const key = rest.map((f) => f.split(',').at(-1)).join(' ');
        if (!byFlow.has(key)) byFlow.set(key, new Set());
        byFlow.get(key)!.add(sport!);
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      const summary = [...byFlow].map(([k, v]) => `${k}: ${counts.get(k)} packets, outer source ports ${[...v].join(',')}`);
      t.diagnostic(`A's VXLAN packets ${all}, by the kernel ${k1} (ping), ${k2 - k1} (TCP), ${k3 - k2} (ping), ${k4 - k3} (ping over IPv6), ${k5 - k4} (TCP over IPv6); tcpdump: ${c0.err.trim().split('\n').slice(-3).join(' | ')}; flows:\n${summary.join('\n')}`);
      assert.match(p1.out, / 6 received/, p1.out);
      assert.match(p2.out, / 6 received/, p2.out);
      assert.match(p3.out, / 6 received/, p3.out);
      // Each part of the run was carried by the kernel and, at its start, the engine.
      // (A's first requests wait in its engine for the underlay's ARP, which
      // it retries once a second: B's VTEP was set up after A had asked. They
      // leave together once B answers, so often only the last request of the
      // first ping goes through the kernel.)
      assert.ok(k1 >= 1 && k2 - k1 >= 10 && k3 - k2 >= 3 && k4 - k3 >= 3 && k5 - k4 >= 10,
        `the kernel encapsulated each part: ${k1}, ${k2 - k1}, ${k3 - k2}, ${k4 - k3}, ${k5 - k4}`);
      assert.ok(all - k5 >= 8, `the engine encapsulated the start of each: ${all - k5}`);
      // Key fields: 0-2 the inner IPv4 addresses and protocol (the outer ones
      // for IPv6 inside), 3-5 the inner IPv6 addresses and next header.
      const kind = (k: string, v4: string, v6: string): boolean => (k.split(' ')[5] === '' ? k.split(' ')[2] === v4 : k.split(' ')[5] === v6);
      const inner6 = (k: string): boolean => k.split(' ')[5] !== '';
      const icmp = [...byFlow.keys()].filter((k) => !inner6(k) && kind(k, '1', ''));
      const icmp6 = [...byFlow.keys()].filter((k) => inner6(k) && kind(k, '', '58'));
      // iperf3's control and data connections (a super-frame crosses the veth
      // underlay whole: one packet here)
      const tcp = [...byFlow.keys()].filter((k) => !inner6(k) && kind(k, '6', '') && counts.get(k)! >= 10);
      const tcp6 = [...byFlow.keys()].filter((k) => inner6(k) && kind(k, '', '6') && counts.get(k)! >= 10);
      assert.equal(icmp.length, 1, `one ICMP flow: ${summary.join('; ')}`);
      assert.equal(counts.get(icmp[0]!), 12, 'every echo request on the underlay');
      assert.equal(icmp6.length, 1, `one ICMPv6 echo flow: ${summary.join('; ')}`);
      assert.equal(counts.get(icmp6[0]!), 6, 'every IPv6 echo request on the underlay');
      assert.ok(tcp.length >= 1 && tcp6.length >= 1, `iperf3's connections over IPv4 and IPv6: ${summary.join('; ')}`);
      for (const [k, v] of byFlow) assert.equal(v.size, 1, `one outer source port for ${k}: ${[...v].join(', ')}`);
    } finally {
      for (const h of hosts) await h.a.close();
      tmp.remove();
    }
  });
});

// The switch's own segmentation, seen by an independent decoder. A guest's
// TSO super-frames for a remote VTEP are cut by this switch to the overlay's
// inner MTU (1450 over a 1500-byte underlay) before encapsulation: no port
// takes them whole there. The guests keep every default; host A's underlay
// veth (the switch host's own uplink interface, not a guest's) has TSO, GSO
// and UDP segmentation off, as a wire-like underlay (the bench's
// vx-ours-wire rows), so each VXLAN packet crosses on its own. With that
// interface at its defaults the batch crosses whole and Linux's GRO on host B
// joins the segments again (tried: B's guest then saw 114 frames of up to
// 61,578 bytes), so nothing would show how this switch cut them. Here
// tshark on host B's side of the underlay decodes every inner segment:
// TCP checksums (computed by the switch) good, every inner frame within the
// inner MTU, sequence numbers contiguous, over IPv4 and IPv6 inside.
test('TSO super-frames to a remote VTEP are cut by the switch to the inner MTU: tshark on the underlay sees good inner TCP checksums, segments within the MTU, contiguous (IPv4 and IPv6 inside)', async (t) => {
  await withLab(t, ['iperf3', 'ss', 'tcpdump', 'tshark', 'ethtool'], async (lab) => {
    // The engine's own segmentation is what is checked (the kernel path would
    // leave it to the kernel's GSO).
    const h = await interop(lab, { family: 4, vnis: [100], guestMtu: 1500, kernelPath: false });
    const [gA] = h.gA;
    const [gB] = h.gB;
    const tmp = tempDir(lab);
    try {
      // up0 is host A's underlay (the switch's uplink), not a guest: a
      // wire-like underlay, so that each VXLAN packet crosses on its own and
      // tshark sees how the switch cut the super-frames. The guests keep
      // their defaults (asserted below).
      run('ip', ['netns', 'exec', h.nsA, 'ethtool', '-K', 'up0', 'tso', 'off', 'gso', 'off', 'tx-udp-segmentation', 'off']);
      for (const [g, a] of [[gA, '2001:db8:65::1'], [gB, '2001:db8:65::2']] as const) {
        lab.ns(g.ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=0', 'net.ipv6.conf.eth0.disable_ipv6=0']);
        run('ip', ['-n', g.ns, 'addr', 'add', `${a}/64`, 'dev', 'eth0', 'nodad']);
      }
      assert.match(run('ip', ['netns', 'exec', gA.ns, 'ethtool', '-k', 'eth0']), /^tcp-segmentation-offload: on/m, 'the guest keeps TSO on');
      const innerMtu = 1450;
      for (const [src, dst] of [[gA.ip, gB.ip], ['2001:db8:65::1', '2001:db8:65::2']]) {
        const v6 = src.includes(':');
        const file = `${tmp.dir}/${v6 ? 'v6' : 'v4'}.pcap`;
        // A batch is made only of one super-frame's segments (overlay/uso.cc).
        const before = (await h.a.call<Stats>('statsPlus')).uplink?.counters.vxlan_tx_batched ?? 0;
        // Full frames (checksums need the payload), a 32 MiB buffer, at most
        // 20,000 frames, 20 s at most.
        const cap = background(lab, h.nsB, 'timeout', ['20', 'tcpdump', '-i', 'eth0', '-nn', '-s', '0', '-B', '32768', '-c', '20000', '-w', file, 'udp port 4789'], 'listening on');
        await cap.ready;
        const r = await iperfTcp(lab, gA, gB, ['-n', '4M'], dst);
        await sleep(200);
        cap.stop();
        const c0 = await cap.done;
        const st = await h.a.call<Stats>('statsPlus');
        const batched = (st.uplink?.counters.vxlan_tx_batched ?? 0) - before;
        const segs = segmentsIn(file, src);
        const c = checkContiguous(segs);
        const bad = segs.filter((x) => x.tcpCsum !== 1 || x.ipCsum !== 1);
        // The captured frame is outer Ethernet + IPv4 + UDP + VXLAN (50 bytes) + the inner frame.
        const maxInner = Math.max(...segs.map((x) => x.len - 50));
        t.diagnostic(`${src} -> ${dst}: ${r.gbps.toFixed(2)} Gbit/s; ${batched} VXLAN packets from cut super-frames; ${segs.length} inner data segments captured, ` +
          `largest inner frame ${maxInner} bytes, ${bad.length} with a bad checksum, ${c.streams} streams, ${c.retransmitted} retransmitted, ${c.gaps.length} gaps; ` +
          `uplink ${JSON.stringify(st.uplink?.counters)}; tcpdump: ${c0.err.trim().split('\n').slice(-2).join(' | ')}`);
        assert.ok(batched > 1000, `the guest's super-frames were cut by the switch: ${batched} packets`);
        assert.ok(segs.length > 1000, `the data crossed as segments: ${segs.length}`);
        assert.equal(bad.length, 0, `inner segments with a bad TCP or IP checksum: ${JSON.stringify(bad.slice(0, 5))}`);
        assert.ok(maxInner <= 14 + innerMtu, `every inner frame within the inner MTU ${innerMtu}: largest ${maxInner}`);
        assert.deepEqual(c.gaps, [], 'sequence numbers contiguous');
      }
    } finally {
      await h.a.close();
      tmp.remove();
    }
  });
});
