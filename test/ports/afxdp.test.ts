// Integration tests of the AF_XDP port backend (native/netmap/ports/afxdp.cc)
// with real interfaces: guests in namespaces the test creates, attached by
// veth, the switch in this process through the Dataplane API. Needs root and
// an AF_XDP build (libxdp + libbpf); otherwise the tests are skipped with the
// reason. Addresses: 198.18.0.0/15 only; everything is deleted in `finally`.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dataplane, DataplaneError } from '../../src/dataplane/index';
import { untilPasses, expectBuffersBack, Guest, Lab, pingAll, run, skipReason, spawnJournaledPort, tapGuest, withLab as withLabAndDataplane } from './lab';

function mac(n: number): string {
  return `02:00:5e:20:00:${n.toString(16).padStart(2, '0')}`;
}

// undefined when AF_XDP is built, else why not (from the port's own error).
async function afxdpMissing(dp: Dataplane): Promise<string | undefined> {
  try {
    await dp.createPort({ name: 'probe', type: 'afxdp', interface: 'vtnosuchif0', switch: 'probe' });
  } catch (err) {
    const m = String((err as Error).message);
    if (/not built/.test(m)) return m;
    return undefined;
  }
  return undefined;
}

async function withLab(t: { skip(msg: string): void }, fn: (lab: Lab, dp: Dataplane) => Promise<void>): Promise<void> {
  await withLabAndDataplane(t, ['ip', 'ping', 'ethtool'], async (lab, dp) => {
    await dp.createSwitch({ name: 'probe', vni: 999 });
    const missing = await afxdpMissing(dp);
    if (missing !== undefined) {
      t.skip(`AF_XDP not built: ${missing}`);
      return;
    }
    await fn(lab, dp);
  });
}

// The XDP attachment of a root-namespace interface, as `ip link` shows it.
function xdpOf(dev: string): string {
  const out = run('ip', ['-d', 'link', 'show', 'dev', dev]);
  const m = /\b(xdp(?:generic|drv|offload)?)\b.*?prog\/xdp id (\d+)/s.exec(out);
  return m ? `${m[1]} id ${m[2]}` : '';
}

// Deletes `ports` and checks that what they held is gone: no XDP program on
// `ifaces`, and no descriptor (sockets, rings, epoll, BPF program and map)
// beyond the `fdsBefore` the process had.
async function deleteAndCheckReleased(dp: Dataplane, ports: string[], ifaces: string[], fdsBefore: number): Promise<void> {
  for (const p of ports) await dp.deletePort(p);
  for (const i of ifaces) assert.equal(xdpOf(i), '', `XDP program left on ${i}:\n${run('ip', ['-d', 'link', 'show', 'dev', i])}`);
  await untilPasses(() => assert.equal(fs.readdirSync('/proc/self/fd').length, fdsBefore, 'descriptors leaked'), 3000);
}

// Deletes a root-namespace interface and waits until its port is down.
async function deleteInterface(lab: Lab, dp: Dataplane, iface: string, port: string): Promise<void> {
  run('ip', ['link', 'del', iface]);
  lab.forget(iface);
  await untilPasses(() => {
    const st = dp.portStatus(port);
    assert.equal(st?.attached, false);
    assert.match(st?.lastError ?? '', /disappeared/);
  }, 5000);
}

// Switch 'a' and two veth guests whose switch-side interfaces are s1, s2.
async function twoGuests(lab: Lab, dp: Dataplane): Promise<{ s1: string; s2: string; g1: Guest; g2: Guest }> {
  await dp.createSwitch({ name: 'a', vni: 100 });
  const s1 = lab.name('x1');
  const s2 = lab.name('x2');
  return { s1, s2, g1: lab.vethGuest('g1', s1, mac(1), '198.18.1.1/24'), g2: lab.vethGuest('g2', s2, mac(2), '198.18.1.2/24') };
}

async function pingBoth(lab: Lab, a: Guest, b: Guest): Promise<void> {
  const r1 = await lab.ping(a, b.ip);
  assert.ok(r1.ok, `ping ${a.ip} -> ${b.ip} failed:\n${r1.out}`);
  const r2 = await lab.ping(b, a.ip);
  assert.ok(r2.ok, `ping ${b.ip} -> ${a.ip} failed:\n${r2.out}`);
}

// The issue's topology: one guest per backend, all in one switch.
test('three guests (veth+afxdp, veth+afpacket, tap) reach each other; ARP resolves', async (t) => {
  await withLab(t, async (lab, dp) => {
    await dp.createSwitch({ name: 'a', vni: 100 });
    const g1 = lab.vethGuest('g1', lab.name('m1'), mac(1), '198.18.2.1/24');
    const g2 = lab.vethGuest('g2', lab.name('m2'), mac(2), '198.18.2.2/24');
    await dp.createPort({ name: 'q1', type: 'afxdp', interface: lab.name('m1'), switch: 'a' });
    await dp.createPort({ name: 'q2', type: 'afpacket', interface: lab.name('m2'), switch: 'a' });
    const g3 = await tapGuest(lab, dp, 'q3', 'a', 'm3', mac(3), '198.18.2.3/24');
    await pingAll(lab, [g1, g2, g3]);
    for (const g of [g1, g2, g3]) {
      const neigh = lab.ns(g.ns, 'ip', ['neigh', 'show', 'dev', g.dev]);
      for (const o of [g1, g2, g3]) if (o !== g) assert.match(neigh, new RegExp(`${o.ip} .*lladdr ${o.mac}`), `${g.ip} ARP table:\n${neigh}`);
    }
    const fdb = await dp.fdb('a');
    for (const [m, port] of [[mac(1), 'q1'], [mac(2), 'q2'], [mac(3), 'q3']]) {
      assert.equal(fdb.find((e) => e.mac === m)?.port, port, JSON.stringify(fdb));
    }
    assert.equal(dp.portStatus('q1')?.backend, 'afxdp');
    const stats = dp.stats();
    for (const p of ['q1', 'q2', 'q3']) assert.ok(stats.ports[p].counters.rx_packets > 0 && stats.ports[p].counters.tx_packets > 0, p);
  });
});

test('two guests on afxdp ports ping each other (ARP + ICMP); detach leaves no XDP program', async (t) => {
  await withLab(t, async (lab, dp) => {
    const { s1, s2, g1, g2 } = await twoGuests(lab, dp);
    assert.equal(xdpOf(s1), '', 'no XDP program before');
    const fdsBefore = fs.readdirSync('/proc/self/fd').length;
    await dp.createPort({ name: 'x1', type: 'afxdp', interface: s1, switch: 'a' });
    await dp.createPort({ name: 'x2', type: 'afxdp', interface: s2, switch: 'a', queue: 0 });
    assert.notEqual(xdpOf(s1), '', `an XDP program is attached to ${s1}:\n${run('ip', ['-d', 'link', 'show', 'dev', s1])}`);

    await pingBoth(lab, g1, g2);
    const neigh = lab.ns(g1.ns, 'ip', ['neigh', 'show', 'dev', g1.dev]);
    assert.match(neigh, new RegExp(`${g2.ip} .*lladdr ${g2.mac}`), neigh);

    const st = dp.portStatus('x1');
    assert.ok(st !== undefined);
    assert.equal(st.backend, 'afxdp');
    assert.equal(st.attached, true);
    assert.match(st.offloads, /^(native|generic) XDP, (copy|zero-copy) mode/);
    assert.match(st.offloads, /copy mode/, 'veth supports only copy mode');
    t.diagnostic(`x1: ${JSON.stringify(st)}`);
    t.diagnostic(`ip link: ${xdpOf(s1)}`);
    const stats = dp.stats();
    for (const p of ['x1', 'x2']) assert.ok(stats.ports[p].counters.rx_packets > 0 && stats.ports[p].counters.tx_packets > 0, p);

    assert.match(dp.portStatus('x2')?.offloads ?? '', /shared with other AF_XDP ports/, 'the second port joins the first one\'s UMEM');

    await dp.deletePort('x1');
    assert.equal(xdpOf(s1), '', `XDP program left on ${s1} after deletePort:\n${run('ip', ['-d', 'link', 'show', 'dev', s1])}`);
    // The switch keeps running, and the interface can be attached again.
    await dp.createPort({ name: 'x1', type: 'afxdp', interface: s1, switch: 'a' });
    await pingBoth(lab, g1, g2);
    await deleteAndCheckReleased(dp, ['x1', 'x2'], [s1, s2], fdsBefore);
    assert.deepEqual(Object.keys(dp.stats().ports), [], 'the engine holds no port any more');
  });
});

// An afxdp port's XDP program outlives a process killed with SIGKILL, and
// the interface then refuses the next afxdp port (a restarted vpcd exited 6
// and took every tenant down). The journal lets the next start detach it:
// only that program, on that interface.
test('an XDP program a SIGKILLed process left attached is detached from the journal at the next start', async (t) => {
  await withLab(t, async (lab, dp) => {
    const { s1 } = await twoGuests(lab, dp);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${lab.name('j')}-`));
    try {
      const child = spawnJournaledPort(dir, { name: 'p', type: 'afxdp', interface: s1, switch: 'a' });
      lab.own(child);
      await untilPasses(() => assert.match(child.output(), /ready/), 10_000, 50);
      const left = xdpOf(s1);
      assert.notEqual(left, '', 'the port attached its program');
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGKILL');
      await exited;
      assert.equal(xdpOf(s1), left, 'nobody detached it (kill -9)');
      await assert.rejects(dp.createPort({ name: 'x1', type: 'afxdp', interface: s1, switch: 'a' }), /already has an XDP program attached/);
      // The next start: the program detached, records gone.
      assert.deepEqual(dp.useOffloadJournal(dir).xdp, [s1]);
      assert.equal(xdpOf(s1), '');
      assert.deepEqual(fs.readdirSync(dir), [], 'records are deleted');
      await dp.createPort({ name: 'x1', type: 'afxdp', interface: s1, switch: 'a' });
      assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('xdp-')), [`xdp-${s1}`]);
      // A record whose program is not the one attached (another program,
      // another id) is dropped and the program left alone.
      const mine = xdpOf(s1);
      fs.writeFileSync(path.join(dir, `xdp-${s1}`), `${fs.readFileSync(`/sys/class/net/${s1}/ifindex`, 'utf8').trim()} 1 2\n`);
      assert.deepEqual(dp.useOffloadJournal(dir).xdp, []);
      assert.equal(xdpOf(s1), mine, 'the running port keeps its program');
      await dp.deletePort('x1');
      assert.equal(xdpOf(s1), '');
      assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('xdp-')), [], 'a clean detach leaves no record');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('an afxdp guest and an afpacket guest ping each other in one switch', async (t) => {
  await withLab(t, async (lab, dp) => {
    await dp.createSwitch({ name: 'a', vni: 100 });
    const s1 = lab.name('x1');
    const s2 = lab.name('k2');
    const g1 = lab.vethGuest('g1', s1, mac(1), '198.18.1.1/24');
    const g2 = lab.vethGuest('g2', s2, mac(2), '198.18.1.2/24');
    await dp.createPort({ name: 'x1', type: 'afxdp', interface: s1, switch: 'a' });
    await dp.createPort({ name: 'k2', type: 'afpacket', interface: s2, switch: 'a' });
    await pingBoth(lab, g1, g2);
    assert.equal(dp.portStatus('x1')?.backend, 'afxdp');
    assert.equal(dp.portStatus('k2')?.backend, 'afpacket');
  });
});

test('xdpMode generic: forced generic XDP (SKB mode), copy; zeroCopy on is refused on veth with what to do', async (t) => {
  await withLab(t, async (lab, dp) => {
    const { s1, s2, g1, g2 } = await twoGuests(lab, dp);
    await assert.rejects(dp.createPort({ name: 'z', type: 'afxdp', interface: s1, switch: 'a', zeroCopy: 'on' }), /zero-copy.*zeroCopy: 'auto' or 'off'/s);
    assert.equal(xdpOf(s1), '', 'a failed open leaves no XDP program');
    await assert.rejects(dp.createPort({ name: 'z', type: 'afpacket', interface: s1, switch: 'a', xdpMode: 'generic' }), /applies only to afxdp/);
    await assert.rejects(dp.createPort({ name: 'z', type: 'afxdp', interface: s1, switch: 'a', xdpMode: 'fast' as never }), /must be one of/);
    await dp.createPort({ name: 'x1', type: 'afxdp', interface: s1, switch: 'a', xdpMode: 'generic', zeroCopy: 'off' });
    await dp.createPort({ name: 'x2', type: 'afxdp', interface: s2, switch: 'a', xdpMode: 'native' });
    assert.match(xdpOf(s1), /^xdpgeneric /, run('ip', ['-d', 'link', 'show', 'dev', s1]));
    assert.match(xdpOf(s2), /^xdp /);
    assert.match(dp.portStatus('x1')?.offloads ?? '', /^generic XDP, copy mode/);
    assert.match(dp.portStatus('x2')?.offloads ?? '', /^native XDP, copy mode/);
    t.diagnostic(`x1: ${dp.portStatus('x1')?.offloads}`);
    t.diagnostic(`x2: ${dp.portStatus('x2')?.offloads}`);
    await pingBoth(lab, g1, g2);
    await dp.deletePort('x1');
    await dp.deletePort('x2');
    assert.equal(xdpOf(s1), '');
    assert.equal(xdpOf(s2), '');
  });
});

// An uplink of type afxdp takes xdpMode and zeroCopy as an afxdp port does
// (before, its spec refused them, so an uplink could be neither forced to
// generic XDP nor to zero-copy on a NIC that has it); an afpacket uplink
// refuses them, naming the field.
test('an afxdp uplink takes xdpMode and zeroCopy; an afpacket uplink refuses them, naming the field', async (t) => {
  await withLab(t, async (lab, dp) => {
    const s = lab.name('u0');
    run('ip', ['link', 'add', s, 'type', 'veth', 'peer', 'name', lab.name('u1')]);
    lab.track(s);
    run('ip', ['link', 'set', s, 'up']);
    const up = { name: 'up', interface: s, localIp: '198.18.41.1/24' };
    await assert.rejects(dp.createUplink({ ...up, type: 'afpacket', xdpMode: 'native' }), /xdpMode: applies only to afxdp/);
    await assert.rejects(dp.createUplink({ ...up, type: 'afxdp', xdpMode: 'fast' as never }), /xdpMode: must be one of/);
    await assert.rejects(dp.createUplink({ ...up, type: 'afxdp', zeroCopy: 'on' }), /zero-copy.*zeroCopy: 'auto' or 'off'/s);
    assert.equal(xdpOf(s), '', 'a failed open leaves no XDP program');
    await dp.createUplink({ ...up, type: 'afxdp', xdpMode: 'generic', zeroCopy: 'off' });
    assert.match(xdpOf(s), /^xdpgeneric /, run('ip', ['-d', 'link', 'show', 'dev', s]));
    assert.match(dp.portStatus('up')?.offloads ?? '', /^generic XDP, copy mode/);
    t.diagnostic(`up: ${dp.portStatus('up')?.offloads}`);
    await dp.deleteUplink();
    assert.equal(xdpOf(s), '');
  });
});

// A jumbo MTU over the default 2 KiB buffers: a 9000-byte frame spans five
// UMEM chunks (multi-buffer) both ways and lands in a large buffer in the
// switch. Before, an AF_XDP port could not have an MTU above 1902.
for (const mode of ['native', 'generic'] as const) {
  test(`afxdp at MTU 9000 over 2 KiB buffers (${mode} XDP): 8972-byte pings with DF cross both ways`, async (t) => {
    await withLab(t, async (lab, dp) => {
      const { s1, s2, g1, g2 } = await twoGuests(lab, dp);
      for (const [g, side] of [[g1, s1], [g2, s2]] as const) {
        run('ip', ['-n', g.ns, 'link', 'set', g.dev, 'mtu', '9000']);
        run('ip', ['link', 'set', side, 'mtu', '9000']);
      }
      assert.equal(dp.options.bufferSize, 2048);
      const free0 = dp.stats().engine;
      for (const [name, side] of [['x1', s1], ['x2', s2]]) {
        await dp.createPort({ name, type: 'afxdp', interface: side, switch: 'a', mtu: 9000, xdpMode: mode });
      }
      assert.match(dp.portStatus('x1')?.offloads ?? '', /multi-buffer/);
      for (const [a, b] of [[g1, g2], [g2, g1]] as const) {
        const r = await lab.nsAsync(a.ns, 'ping', ['-c', '20', '-i', '0.02', '-W', '1', '-n', '-M', 'do', '-s', '8972', b.ip], 10_000);
        assert.equal(r.code, 0, `jumbo ping ${a.ip} -> ${b.ip}:\n${r.out}`);
        assert.match(r.out, /20 received/, `every jumbo ping came back:\n${r.out}`);
      }
      const c1 = dp.portStatus('x1')?.counters;
      const c2 = dp.portStatus('x2')?.counters;
      t.diagnostic(`x1: ${JSON.stringify(c1)}`);
      assert.ok((c1?.rx_super ?? 0) >= 20 && (c2?.rx_super ?? 0) >= 20, 'jumbo frames were received over several chunks');
      assert.equal((c1?.rx_too_big ?? 0) + (c2?.rx_too_big ?? 0) + (c1?.rx_kernel_drops ?? 0) + (c2?.rx_kernel_drops ?? 0), 0);
      // Every buffer comes back once the ports are gone: the 80 large
      // buffers sent as descriptor chains (freed on their last chunk's
      // completion) and the chunks lent to the fill rings.
      await dp.deletePort('x1');
      await dp.deletePort('x2');
      await expectBuffersBack(dp, free0);
    });
  });
}

test('afxdp errors: missing interface; an interface with someone else\'s XDP program is busy and left alone', async (t) => {
  await withLab(t, async (lab, dp) => {
    await dp.createSwitch({ name: 'a', vni: 100 });
    await assert.rejects(dp.createPort({ name: 'm', type: 'afxdp', interface: lab.name('zz'), switch: 'a' }), (err: unknown) => {
      assert.ok(err instanceof DataplaneError);
      assert.match(String((err as Error).message), /does not exist.*ip link/s);
      return true;
    });
    const s1 = lab.name('b1');
    lab.vethGuest('g1', s1, mac(1), '198.18.1.1/24');
    // Someone else's program (libxdp's allow-all filter, attached with ip).
    run('ip', ['link', 'set', 'dev', s1, 'xdpgeneric', 'obj', '/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_alw_all.o', 'sec', 'xdp']);
    const before = xdpOf(s1);
    assert.notEqual(before, '');
    await assert.rejects(dp.createPort({ name: 'x1', type: 'afxdp', interface: s1, switch: 'a' }), (err: unknown) => {
      const m = String((err as Error).message);
      assert.match(m, /already has an XDP program attached.*xdp off.*afpacket:/s);
      return true;
    });
    assert.equal(xdpOf(s1), before, 'the other program is untouched');
    run('ip', ['link', 'set', 'dev', s1, 'xdpgeneric', 'off']);
    await dp.createPort({ name: 'x1', type: 'afxdp', interface: s1, switch: 'a' });
    // One port per interface.
    await assert.rejects(dp.createPort({ name: 'x2', type: 'afpacket', interface: s1, switch: 'a' }), /already attached/);
    await dp.deletePort('x1');
    assert.equal(xdpOf(s1), '');
  });
});

test('an afxdp port goes down when its interface is deleted; the switch keeps forwarding', async (t) => {
  await withLab(t, async (lab, dp) => {
    await dp.createSwitch({ name: 'a', vni: 100 });
    const s1 = lab.name('x1');
    const s2 = lab.name('x2');
    const s3 = lab.name('x3');
    lab.vethGuest('g1', s1, mac(1), '198.18.1.1/24');
    const g2 = lab.vethGuest('g2', s2, mac(2), '198.18.1.2/24');
    const g3 = lab.vethGuest('g3', s3, mac(3), '198.18.1.3/24');
    await dp.createPort({ name: 'x1', type: 'afxdp', interface: s1, switch: 'a' });
    await dp.createPort({ name: 'x2', type: 'afxdp', interface: s2, switch: 'a' });
    await dp.createPort({ name: 'x3', type: 'afxdp', interface: s3, switch: 'a' });
    await deleteInterface(lab, dp, s1, 'x1');
    await pingBoth(lab, g2, g3);
    // It comes back when an interface of that name returns.
    const g1b = lab.vethGuest('g1b', s1, mac(4), '198.18.1.4/24');
    await untilPasses(() => assert.equal(dp.portStatus('x1')?.attached, true), 8000, 100);
    await pingBoth(lab, g1b, g2);
    assert.ok((dp.portStatus('x1')?.counters.reopens ?? 0) >= 1);
  });
});

// The guests keep tx checksumming on (the veth default): XDP does not say
// which frames carry a partial checksum, and the port finds and completes
// them itself (rx_csum_completed).
test('iperf3 TCP between two afxdp guests completes at full MTU (guest tx checksumming on)', async (t) => {
  if (skipReason(['ip', 'ethtool', 'iperf3']) !== undefined) {
    t.skip(skipReason(['ip', 'ethtool', 'iperf3']) as string);
    return;
  }
  await withLab(t, async (lab, dp) => {
    const { s1, s2, g1, g2 } = await twoGuests(lab, dp);
    for (const g of [g1, g2]) lab.ns(g.ns, 'ethtool', ['-K', g.dev, 'tx', 'on']);
    await dp.createPort({ name: 'x1', type: 'afxdp', interface: s1, switch: 'a' });
    await dp.createPort({ name: 'x2', type: 'afxdp', interface: s2, switch: 'a' });
    const srv = await lab.iperf3Server(g2.ns);
    const r = await lab.nsAsync(g1.ns, 'iperf3', ['-c', g2.ip, '-t', '3', '-M', '1460', '-J'], 20_000);
    srv.stop();
    assert.equal(r.code, 0, r.out.slice(0, 2000));
    const j = JSON.parse(r.out) as { end: { sum_received: { bytes: number; bits_per_second: number } } };
    assert.ok(j.end.sum_received.bytes > 10_000_000, `received ${j.end.sum_received.bytes} bytes`);
    t.diagnostic(`iperf3 afxdp<->afxdp: ${(j.end.sum_received.bits_per_second / 1e9).toFixed(2)} Gbit/s`);
    const completed = (dp.portStatus('x1')?.counters.rx_csum_completed ?? 0) + (dp.portStatus('x2')?.counters.rx_csum_completed ?? 0);
    assert.ok(completed > 0, 'partial checksums were completed');
    t.diagnostic(`rx_csum_completed: ${completed}`);
  });
});

// ---------------------------------------------------------------- queues

const MQ = 4; // rx and tx queues of the multi-queue veth
const FLOWS_JS = path.join(__dirname, 'udpflows.js');
const FLOWS_PORT = 5999;

// A veth pair with `queues` rx and tx queues on both ends: `switchSide` in
// the root namespace, eth0 in `ns` configured as a guest. The guest picks a
// transmit queue per flow (flow hash) and the veth delivers the frame on the
// same-numbered receive queue of the switch side.
function mqGuest(lab: Lab, switchSide: string, ns: string, queues: number, mac: string, cidr: string): Guest {
  const tmp = `${switchSide}p`;
  const q = ['numtxqueues', String(queues), 'numrxqueues', String(queues)];
  run('ip', ['link', 'add', switchSide, ...q, 'type', 'veth', 'peer', 'name', tmp, ...q]);
  lab.track(switchSide);
  run('ip', ['link', 'set', tmp, 'netns', ns]);
  run('ip', ['-n', ns, 'link', 'set', tmp, 'name', 'eth0']);
  run('ip', ['link', 'set', switchSide, 'up']);
  return lab.configure(ns, 'eth0', mac, cidr);
}

// The sender needs no ARP (whose frames could land on any queue): the sink's
// MAC is written into its neighbour table.
function staticNeighbor(from: Guest, to: Guest): void {
  run('ip', ['-n', from.ns, 'neigh', 'replace', to.ip, 'lladdr', to.mac, 'dev', from.dev, 'nud', 'permanent']);
}

// `count` UDP datagrams over `flowCount` flows (source ports) from `from` to
// `to` at `rate` per second; how many were sent and how many arrived.
async function udpFlows(lab: Lab, from: Guest, to: Guest, count: number, flowCount = 32, rate = 1000): Promise<{ sent: number; received: number }> {
  const seconds = count / rate;
  const sink = lab.spawnIn(to.ns, process.execPath, [FLOWS_JS, 'sink', String(FLOWS_PORT), String(count), String(seconds + 10)]);
  await untilPasses(async () => assert.ok((await lab.nsAsync(to.ns, 'ss', ['-lun'])).out.includes(`:${FLOWS_PORT}`)), 20_000, 100); // node's start: seconds when loaded
  const r = await lab.nsAsync(from.ns, process.execPath, [FLOWS_JS, 'send', to.ip, String(FLOWS_PORT), String(flowCount), String(count), String(rate)], seconds * 1000 + 10_000);
  assert.equal(r.code, 0, r.out);
  const sent = JSON.parse(r.out.trim().split('\n').pop() as string) as { sent: number; errors: number };
  const out = await sink.done;
  const got = JSON.parse(out.trim().split('\n').pop() as string) as { received: number };
  return { sent: sent.sent, received: got.received };
}

function queueRx(dp: Dataplane, port: string): number[] {
  return [...(dp.portStatus(port)?.queueRx ?? [])];
}

// Without a socket on every rx queue, frames the interface puts on the other
// queues never reach the switch (libxdp's program passes them to the kernel).
test('afxdp on a 4-queue veth opens every rx queue and misses no flow; with queues: 1 it misses some', async (t) => {
  await withLab(t, async (lab, dp) => {
    await dp.createSwitch({ name: 'a', vni: 100 });
    const sm = lab.name('mq');
    const ss = lab.name('sk');
    const gm = mqGuest(lab, sm, lab.netns('gm'), MQ, mac(1), '198.18.3.1/24');
    const gs = lab.vethGuest('gs', ss, mac(2), '198.18.3.2/24');
    staticNeighbor(gm, gs);
    assert.match(run('ethtool', ['-l', sm]), /Current hardware settings:\s+RX:\s+4/);
    const fdsBefore = fs.readdirSync('/proc/self/fd').length;
    await dp.createPort({ name: 'mq', type: 'afxdp', interface: sm, switch: 'a' });
    await dp.createPort({ name: 'sk', type: 'afxdp', interface: ss, switch: 'a' });
    assert.equal(dp.getPort('mq')?.queues, 0, 'asked for: every queue');
    const st = dp.portStatus('mq');
    assert.equal(st?.queues, MQ);
    assert.match(st?.io ?? '', /^AF_XDP rings, 4 queues \(0-3\), need_wakeup; tx on queue 0$/);
    assert.equal(st?.queueRx.length, MQ);
    assert.equal(dp.portStatus('sk')?.queues, 1, 'a plain veth has one rx queue');
    t.diagnostic(`mq: ${st?.io}; ${st?.offloads}`);

    const before = queueRx(dp, 'mq');
    const all = await udpFlows(lab, gm, gs, 1000);
    const perQueue = queueRx(dp, 'mq').map((n, k) => n - before[k]);
    t.diagnostic(`every queue: sent ${all.sent}, delivered ${all.received}, per rx queue ${JSON.stringify(perQueue)}`);
    assert.equal(all.sent, 1000);
    assert.equal(all.received, all.sent, 'every datagram of every flow was delivered');
    assert.ok(perQueue.filter((n) => n > 0).length >= 2, `frames arrived on one queue only: ${JSON.stringify(perQueue)}`);
    assert.ok(perQueue.reduce((a, b) => a + b, 0) >= all.sent);

    await dp.deletePort('mq');
    assert.equal(xdpOf(sm), '', `XDP program left on ${sm}:\n${run('ip', ['-d', 'link', 'show', 'dev', sm])}`);
    await dp.createPort({ name: 'mq', type: 'afxdp', interface: sm, switch: 'a', queues: 1 });
    assert.equal(dp.portStatus('mq')?.queues, 1);
    assert.match(dp.portStatus('mq')?.io ?? '', /1 queue \(0\) of the interface's 4: frames on the others go to the kernel/);
    const one = await udpFlows(lab, gm, gs, 1000);
    t.diagnostic(`queues: 1: sent ${one.sent}, delivered ${one.received}, queue 0 got ${queueRx(dp, 'mq')[0]}`);
    assert.equal(one.sent, 1000);
    assert.ok(one.received > 0 && one.received < one.sent, `32 flows over 4 queues, only queue 0 read: delivered ${one.received} of ${one.sent}`);

    // Four sockets with their rings, and the XDP program: all released.
    await deleteAndCheckReleased(dp, ['mq', 'sk'], [sm, ss], fdsBefore);
  });
});

test('afxdp queues: a range from queue; beyond the interface is refused; the interface re-created comes back on every queue', async (t) => {
  await withLab(t, async (lab, dp) => {
    await dp.createSwitch({ name: 'a', vni: 100 });
    const sm = lab.name('mq');
    const ss = lab.name('sk');
    const nsm = lab.netns('gm');
    let gm = mqGuest(lab, sm, nsm, MQ, mac(1), '198.18.3.1/24');
    const gs = lab.vethGuest('gs', ss, mac(2), '198.18.3.2/24');
    await dp.createPort({ name: 'sk', type: 'afxdp', interface: ss, switch: 'a' });

    await assert.rejects(dp.createPort({ name: 'mq', type: 'afxdp', interface: sm, switch: 'a', queues: 8 }), (err: unknown) => {
      assert.ok(err instanceof DataplaneError);
      assert.match(String((err as Error).message), /queues 8 needs rx queues 0-7, but \S+ has 4 rx queues \(0-3\)/);
      return true;
    });
    await assert.rejects(dp.createPort({ name: 'mq', type: 'afxdp', interface: sm, switch: 'a', queue: 4 }), /queue 4 does not exist: \S+ has 4 rx queues/);
    assert.equal(xdpOf(sm), '', 'a refused port leaves no XDP program');
    await dp.createPort({ name: 'mq', type: 'afxdp', interface: sm, switch: 'a', queue: 2, queues: 2 });
    assert.equal(dp.portStatus('mq')?.queues, 2);
    assert.match(dp.portStatus('mq')?.io ?? '', /2 queues \(2-3\) of the interface's 4.*tx on queue 2/);
    await dp.deletePort('mq');

    await dp.createPort({ name: 'mq', type: 'afxdp', interface: sm, switch: 'a' });
    await pingBoth(lab, gm, gs);
    // Deleted: the port goes down and lets go of its four sockets.
    await deleteInterface(lab, dp, sm, 'mq');
    // Back with fewer queues: the port keeps its range and says so.
    mqGuest(lab, sm, nsm, 2, mac(1), '198.18.3.1/24');
    await untilPasses(() => assert.match(dp.portStatus('mq')?.lastError ?? '', /came back with 2 rx queues; this port uses queues 0-3: delete and re-create/), 5000, 100);
    assert.equal(dp.portStatus('mq')?.attached, false);
    run('ip', ['link', 'del', sm]);
    lab.forget(sm);
    // Back with four: every queue re-opened, nothing missed.
    gm = mqGuest(lab, sm, nsm, MQ, mac(1), '198.18.3.1/24');
    await untilPasses(() => assert.equal(dp.portStatus('mq')?.attached, true), 8000, 100);
    staticNeighbor(gm, gs);
    const before = queueRx(dp, 'mq');
    const r = await udpFlows(lab, gm, gs, 1000);
    const perQueue = queueRx(dp, 'mq').map((n, k) => n - before[k]);
    t.diagnostic(`after re-open: sent ${r.sent}, delivered ${r.received}, per rx queue ${JSON.stringify(perQueue)}`);
    assert.equal(r.received, r.sent);
    assert.ok(perQueue.filter((n) => n > 0).length >= 2, JSON.stringify(perQueue));
    assert.ok((dp.portStatus('mq')?.counters.reopens ?? 0) >= 1);
    await dp.deletePort('mq');
    assert.equal(xdpOf(sm), '');
  });
});
