// Reliability of kernel-facing ports (issue 10): frames longer than an
// interface takes must be counted drops that never stall an AF_PACKET ring,
// the uplink enforces its MTU on receive, and every backend counter of every
// kernel-facing port (the uplink's included) is in stats(), portStatus() and
// the metrics; offloads a killed process left off come back at the next
// start.
//
// Each test builds its own namespaces and veths (test/ports/lab.ts) and deletes
// them afterwards. Addresses: 198.18.0.0/15 only. Loads: a few frames and
// pings.

import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dataplane } from '../../src/dataplane/index';
import { Metrics } from '../../src/control/metrics';
import { untilPasses, Lab, run, skipReason, spawnJournaledPort } from './lab';
import { eth, ip4Bytes, ipv4, python, sendFrames, udp, vxlan } from '../overlay/vxlab';

function mac(n: number): string {
  return `02:00:5e:10:01:${n.toString(16).padStart(2, '0')}`;
}

type Ctx = { skip(msg: string): void; diagnostic(msg: string): void };

async function withLab(t: Ctx, fn: (lab: Lab, dp: Dataplane) => Promise<void>): Promise<void> {
  const reason = skipReason(['ip', 'ping', 'ethtool']) ?? (python() === undefined ? 'missing tool: python3 (raw frame helper)' : undefined);
  if (reason !== undefined) {
    t.skip(reason);
    return;
  }
  const lab = new Lab();
  const dp = new Dataplane({ hugepages: false, bufferCount: 16384, bufferSize: 4096, maxPorts: 16, maxSwitches: 8 });
  dp.start();
  try {
    await fn(lab, dp);
  } finally {
    dp.close();
    lab.cleanup();
  }
}

// A raw broadcast frame of `len` bytes (IEEE local experimental EtherType).
function bigBroadcast(src: string, len: number): Buffer {
  return eth('ff:ff:ff:ff:ff:ff', src, 0x88b5, Buffer.alloc(len - 14, 0x5a));
}

test('a broadcast longer than another port\'s interface MTU is a counted drop there and does not stall its ring', async (t) => {
  await withLab(t, async (lab, dp) => {
    await dp.createSwitch({ name: 'a', vni: 100 });
    // g1 behind a 9000-MTU veth, g2 behind a 1500-MTU veth.
    const s1 = lab.name('s1');
    const g1 = lab.vethGuest('g1', s1, mac(1), '198.18.7.1/24');
    run('ip', ['link', 'set', s1, 'mtu', '9000']);
    run('ip', ['-n', g1.ns, 'link', 'set', g1.dev, 'mtu', '9000']);
    const g2 = lab.vethGuest('g2', lab.name('s2'), mac(2), '198.18.7.2/24');
    await dp.createPort({ name: 'p1', type: 'afpacket', interface: s1, switch: 'a' });
    await dp.createPort({ name: 'p2', type: 'afpacket', interface: lab.name('s2'), switch: 'a' });
    assert.ok((await lab.ping(g1, g2.ip, 2)).received >= 1, 'baseline');
    // The issue's way: raise p1's MTU above 1500 (its veth allows 9000).
    await dp.updatePort('p1', { mtu: 1800 });
    // p2's own MTU is raised too, so the frame passes the switch's egress MTU
    // check (mtu_exceeded) and meets the interface's smaller MTU (1500), the
    // case that stalled an AF_PACKET ring.
    await dp.updatePort('p2', { mtu: 1800 });
    const before = dp.stats().ports.p2!;
    await sendFrames(g1.ns, g1.dev, [bigBroadcast(g1.mac, 1600)]);
    await untilPasses(() => assert.equal((dp.stats().ports.p2!.drops.egress_too_big ?? 0) - (before.drops.egress_too_big ?? 0), 1), 3000);
    // p2 still transmits at once: a run of pings all come back.
    const after = await lab.ping(g1, g2.ip, 10);
    assert.equal(after.received, 10, `the ring did not stall:\n${after.out}`);
    const st = dp.portStatus('p2');
    assert.equal(st?.counters.tx_errors, 0, JSON.stringify(st));
    const now = dp.stats().ports.p2!;
    t.diagnostic(`p2 drops ${JSON.stringify(now.drops)} backend ${JSON.stringify(now.backend)}`);
    assert.ok(now.counters.tx_packets - before.counters.tx_packets >= 10, 'the pings were sent');
    // The interface MTU is re-read: at 1600 the frame fits and goes out.
    run('ip', ['link', 'set', lab.name('s2'), 'mtu', '1600']);
    run('ip', ['-n', g2.ns, 'link', 'set', g2.dev, 'mtu', '1600']);
    // It is re-read at a housekeeping tick, which a loaded machine may run
    // late: send until the frame goes out, then once more, with no new drop.
    // By bytes, not by frames: the guests' own IPv6 chatter after an MTU
    // change (small multicast frames) may leave through p2 as well.
    const leaves = async (): Promise<boolean> => {
      const mid = dp.stats().ports.p2!;
      await sendFrames(g1.ns, g1.dev, [bigBroadcast(g1.mac, 1600)]);
      return untilPasses(() => assert.ok(dp.stats().ports.p2!.counters.tx_bytes - mid.counters.tx_bytes >= 1600), 1000).then(() => true, () => false);
    };
    await untilPasses(async () => assert.ok(await leaves(), 'the 1600-byte broadcast left through p2'), 15_000, 0);
    const dropped = dp.stats().ports.p2!.drops.egress_too_big;
    assert.ok(await leaves(), 'the next one left too');
    assert.equal(dp.stats().ports.p2!.drops.egress_too_big, dropped, 'no new drop');
  });
});

test('the uplink drops VXLAN longer than its mtu (a 9000-MTU underlay) and keeps answering; its backend counters are exported', async (t) => {
  await withLab(t, async (lab, dp) => {
    await dp.createSwitch({ name: 'a', vni: 100 });
    const gl = lab.vethGuest('gl', lab.name('sl'), mac(3), '198.18.8.1/24');
    await dp.createPort({ name: 'l', type: 'afpacket', interface: lab.name('sl'), switch: 'a' });
    // The underlay: our side in the root namespace, the peer in `u` at 9000.
    const ns = lab.netns('u');
    const up = lab.name('up');
    lab.veth(up, ns, 'eth0');
    run('ip', ['link', 'set', up, 'mtu', '9000']);
    run('ip', ['-n', ns, 'link', 'set', 'eth0', 'mtu', '9000', 'up']);
    const uplink = await dp.createUplink({ name: 'up', type: 'afpacket', interface: up, localIp: '198.18.9.1/24', mtu: 1500 });
    const peerMac = JSON.parse(run('ip', ['-n', ns, '-j', 'link', 'show', 'eth0']))[0].address as string;
    await dp.addPeer({ switch: 'a', ip: '198.18.9.2' });
    const frame = (innerLen: number): Buffer =>
      eth(uplink.mac, peerMac, 0x0800, ipv4('198.18.9.2', '198.18.9.1', 17,
        udp('198.18.9.2', '198.18.9.1', 50000, 4789, vxlan(100, bigBroadcast(mac(9), innerLen)), 'zero')));
    assert.equal(frame(1600).length, 1650);
    await sendFrames(ns, 'eth0', [frame(1600)]);
    await untilPasses(() => assert.equal(dp.stats().ports.up!.drops.oversize, 1), 3000);
    // Still receiving and sending: a well-sized frame is delivered, an ARP
    // request for the VTEP is answered.
    const before = dp.stats().ports.l!.counters.tx_packets;
    await sendFrames(ns, 'eth0', [frame(1000)]);
    await untilPasses(() => assert.equal(dp.stats().ports.l!.counters.tx_packets - before, 1), 3000);
    const arp = Buffer.concat([Buffer.from([0, 1, 8, 0, 6, 4, 0, 1]), Buffer.from(peerMac.split(':').map((x) => parseInt(x, 16))), ip4Bytes('198.18.9.2'), Buffer.alloc(6), ip4Bytes('198.18.9.1')]);
    const replies = dp.stats().uplink!.counters.arp_replies_sent;
    await sendFrames(ns, 'eth0', [eth('ff:ff:ff:ff:ff:ff', peerMac, 0x0806, arp)]);
    await untilPasses(() => assert.equal(dp.stats().uplink!.counters.arp_replies_sent - replies, 1), 3000);
    void gl;

    // Issue 10 #7: every backend counter of every kernel-facing port, the
    // uplink's included, in stats(), portStatus() and the metrics.
    const names = dp.schema().backend.map((c) => c.name);
    assert.ok(names.includes('rx_too_big') && names.includes('rx_kernel_drops') && names.includes('tx_errors'), names.join());
    const s = dp.stats();
    for (const p of ['l', 'up']) assert.deepEqual(Object.keys(s.ports[p]!.backend ?? {}).sort(), [...names].sort(), p);
    const ust = dp.portStatus('up');
    assert.equal(ust?.backend, 'afpacket');
    assert.equal(ust?.interface, up);
    const m = new Metrics({ dp, portSwitches: (p) => (p === 'l' ? ['a'] : []), generation: () => 0 }, { defaultMetrics: false });
    const text = await m.render();
    for (const n of names) {
      assert.match(text, new RegExp(`^vpc_port_backend_${n}_total\\{switch="",port="up"\\} \\d+$`, 'm'), n);
      assert.match(text, new RegExp(`^vpc_port_backend_${n}_total\\{switch="a",port="l"\\} \\d+$`, 'm'), n);
    }
  });
});

// Issue 10 #5: a vpcd killed with SIGKILL cannot restore the offloads its
// ports turned off; the journal in its state directory lets the next start
// put them back.
test('offloads a SIGKILLed process left off are restored from the journal at the next start', async (t) => {
  await withLab(t, async (lab, dp) => {
    const ns = lab.netns('k');
    const side = lab.name('k1');
    lab.veth(side, ns, 'eth0');
    const txcsum = (): string => /tx-checksumming: (\w+)/.exec(run('ethtool', ['-k', side]))?.[1] ?? '?';
    const gso = (): string => /generic-segmentation-offload: (\w+)/.exec(run('ethtool', ['-k', side]))?.[1] ?? '?';
    assert.equal(txcsum(), 'on', 'a veth starts with tx checksumming on');
    const dir = mkdtempSync(path.join(tmpdir(), `${lab.name('j')}-`));
    try {
      // The victim: another process attaches a port to the veth, then is killed.
      const child = spawnJournaledPort(dir, { name: 'p', type: 'afpacket', interface: side, switch: 'a', disableOffloads: true });
      lab.own(child);
      await untilPasses(() => assert.match(child.output(), /ready/), 10_000, 50);
      assert.equal(txcsum(), 'off', 'the port turned tx checksumming off');
      assert.equal(gso(), 'off');
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGKILL');
      await exited;
      assert.equal(txcsum(), 'off', 'nobody restored them (kill -9)');
      assert.ok(readdirSync(dir).some((f) => f.startsWith('offloads-')), `a record was left: ${readdirSync(dir).join()}`);
      // The next start restores them before any port opens.
      const restored = dp.useOffloadJournal(dir);
      assert.deepEqual(restored, { offloads: [side], xdp: [] });
      assert.equal(txcsum(), 'on');
      assert.equal(gso(), 'on');
      assert.deepEqual(readdirSync(dir), [], 'records are deleted');
      // A clean attach/detach leaves no record behind either.
      await dp.createSwitch({ name: 'a', vni: 1 });
      // AF_XDP ports turn offloads off by default; afpacket ports only when asked.
      await dp.createPort({ name: 'p', type: 'afpacket', interface: side, switch: 'a', disableOffloads: true });
      assert.equal(readdirSync(dir).length, 1);
      await dp.deletePort('p');
      assert.deepEqual(readdirSync(dir), []);
      assert.equal(txcsum(), 'on');
      assert.deepEqual(dp.useOffloadJournal(dir), { offloads: [], xdp: [] }, 'nothing to restore');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
