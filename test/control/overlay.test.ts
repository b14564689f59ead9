// The VXLAN overlay in the control plane, against the real engine: an uplink
// on a pipe (no root needed), peers and remote (vtep) static entries.
//   - plan/apply: order (uplink before peers and remote entries, removed
//     after them), applying twice is a no-op, changing the uplink replaces it
//     with its peers, a native failure (maxVteps) rolls everything back;
//   - persistence: the state file (format version 2 with overlay objects, 1
//     without; version-1 files still read) and a restart restore them;
//   - vpcd + vpcctl: uplink/peer/neighbors/fdb --vtep in human and JSON
//     output with exit codes; metrics vpc_peer_* and vpc_uplink_* after a
//     VXLAN packet came in on the uplink's pipe.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { Dataplane, DataplaneOptions } from '../../src/dataplane';
import { EXIT, runCli } from '../../src/control/cli';
import { parseConfig } from '../../src/control/config';
import { Controller, peerRouteWarnings } from '../../src/control/controller';
import { ControlError } from '../../src/control/errors';
import { emptyModel, storedProblems, type Model, type UplinkObject } from '../../src/control/model';
import { overlayInnerMtu, overlayMtuWarnings, uplinkMtuWarnings } from '../../src/control/port-mtu';
import { createLogger } from '../../src/control/logging';
import { checksumOf, StateStore } from '../../src/control/state';
import { eventually, frameHex, removeDir, spawnVpcd, tempDir, TEST_ENGINE, VpcdProcess } from './helpers';

const ENGINE: DataplaneOptions = { bufferCount: 2048, hugepages: false, maxPorts: 8, maxSwitches: 16, eventRing: 256 };

async function withController(fn: (c: Controller, dp: Dataplane, store: StateStore) => Promise<void>, engine = ENGINE): Promise<void> {
  const dir = tempDir();
  const dp = new Dataplane(engine);
  dp.start();
  const store = new StateStore(path.join(dir, 'state'));
  const c = new Controller(dp, store, createLogger('silent'), engine);
  try {
    await fn(c, dp, store);
  } finally {
    dp.close();
    removeDir(dir);
  }
}

const UPLINK = '  - { name: up0, type: pipe, localIp: 198.18.0.1/24, mac: "02:00:00:00:ff:01" }\n';
const SWITCHES = (peers: string, extraFdb = ''): string => `switches:
  - name: tenant-a
    vni: 1001
    peers: ${peers}
    ports:
      - { name: vm1, type: pipe, mac: "02:00:00:00:0a:01" }
    fdb:
      - { mac: "02:00:00:00:00:01", port: vm1 }
      - { mac: "02:00:00:00:0b:01", vtep: 198.18.0.2 }
${extraFdb}`;
const OVERLAY = `uplinks:\n${UPLINK}${SWITCHES('[198.18.0.2, 198.18.0.3]')}`;
const NO_OVERLAY = `switches:
  - name: tenant-a
    vni: 1001
    ports:
      - { name: vm1, type: pipe, mac: "02:00:00:00:0a:01" }
    fdb:
      - { mac: "02:00:00:00:00:01", port: vm1 }
`;

function kinds(steps: { op: string; kind: string }[]): string[] {
  return steps.map((s) => `${s.op} ${s.kind}`);
}

describe('overlay: plan and apply', () => {
  // "A file that validates is one the engine accepts": addresses no VTEP can
  // have used to pass validation and a dry run, and failed the plan midway
  // (with a reason that named the wrong field, and only the first one).
  test('addresses no VTEP can have are refused by validation, every one named with its reason, before anything runs', async () => {
    const bad = `uplinks: [{ name: upx, type: pipe, localIp: 198.18.0.1/24, gateway: 198.19.0.1 }]
switches:
  - name: sx
    vni: 99
    peers: [224.0.0.1, 127.0.0.1, 255.255.255.255, "ff02::1", "::1"]
    fdb: [{ mac: "02:00:00:00:00:42", vtep: 0.0.0.0 }]
`;
    let msg = '';
    try {
      parseConfig(bad);
    } catch (e) {
      msg = (e as Error).message;
    }
    for (const want of [
      /uplinks\[0\]\.gateway: is not on the uplink's subnet 198\.18\.0\.1\/24 \(localIp\)/,
      /peers\[0\]: must be a unicast address: it is a multicast address \(224\.0\.0\.0\/4\)/,
      /peers\[1\]: must be a unicast address: it is a loopback address \(127\.0\.0\.0\/8\)/,
      /peers\[2\]: must be a unicast address: it is the broadcast address/,
      /peers\[3\]: must be a unicast address: it is a multicast address \(ff00::\/8\)/,
      /peers\[4\]: must be a unicast address: it is the loopback address/,
      /fdb\[0\]\.vtep: must be a unicast address: 0\.0\.0\.0\/8 means "this network"/,
    ]) assert.match(msg, want);
    for (const [local, why] of [['0.0.0.0/24', /this network/], ['224.0.0.1/24', /multicast/], ['127.0.0.1/8', /loopback/]] as const) {
      assert.throws(() => parseConfig(`uplinks: [{ name: upx, type: pipe, localIp: ${local} }]\n`), (e: Error) => /uplinks\[0\]\.localIp: must be a unicast address/.test(e.message) && why.test(e.message));
    }
    assert.throws(() => parseConfig('uplinks: [{ name: upx, type: pipe, localIp6: "2001:db8::1/64", gateway6: "2001:db8:1::1" }]\n'), /gateway6: is not on the uplink's subnet 2001:db8::1\/64/);
    // The reserved 240/4, the uplink subnet's own network and broadcast
    // addresses, and a gateway that is the VTEP itself.
    let edges = '';
    try {
      parseConfig('uplinks: [{ name: upx, type: pipe, localIp: 198.18.0.1/24 }]\nswitches:\n  - { name: sx, vni: 99, peers: [240.0.0.1, 198.18.0.255, 198.18.0.0] }\n');
    } catch (e) {
      edges = (e as Error).message;
    }
    assert.match(edges, /peers\[0\]: must be a unicast address: it is a reserved address \(240\.0\.0\.0\/4\)/);
    assert.match(edges, /peers\[1\]: 198\.18\.0\.255 is the broadcast address of 198\.18\.0\.1\/24 \(uplink "upx"\), which no VTEP has/);
    assert.match(edges, /peers\[2\]: 198\.18\.0\.0 is the network address of 198\.18\.0\.1\/24/);
    assert.throws(() => parseConfig('uplinks: [{ name: upx, type: pipe, localIp: 198.18.0.255/24 }]\n'), /localIp: is the broadcast address of 198\.18\.0\.255\/24, which no host has/);
    assert.throws(() => parseConfig('uplinks: [{ name: upx, type: pipe, localIp: 198.18.0.1/24, gateway: 198.18.0.1 }]\n'), /gateway: is the uplink's own localIp/);
    assert.throws(() => parseConfig('uplinks: [{ name: upx, type: pipe, localIp6: "2001:db8::1/64", gateway6: "2001:db8:0::1" }]\n'), /gateway6: is the uplink's own localIp6/);
    parseConfig('uplinks: [{ name: upx, type: pipe, localIp: 198.18.0.1/31 }]\nswitches:\n  - { name: sx, vni: 99, peers: [198.18.0.0] }\n'); // a /31 has no such addresses
    // A localIp without a prefix is a /24, as the engine takes it.
    assert.throws(() => parseConfig('uplinks: [{ name: upx, type: pipe, localIp: 198.18.0.1 }]\nswitches:\n  - { name: sx, vni: 99, peers: [198.18.0.255] }\n'),
      /peers\[0\]: 198\.18\.0\.255 is the broadcast address of 198\.18\.0\.1\/24/);
    // IPv6 spellings of IPv4 addresses are the IPv4 VTEP (a peer listed
    // both ways was two records for one engine peer, and a restart then
    // failed); a link-local address is no VTEP's, nor is the subnet-router
    // anycast address its localIp6.
    let v6 = '';
    try {
      parseConfig('uplinks: [{ name: upx, type: pipe, localIp: 198.18.200.1/24, localIp6: "2001:db8:200::1/64" }]\nswitches:\n' +
        '  - { name: sx, vni: 99, peers: [198.18.200.2, "::ffff:198.18.200.2", "::198.18.200.3", "fe80::5"] }\n');
    } catch (e) {
      v6 = (e as Error).message;
    }
    assert.match(v6, /peers\[1\]: ::ffff:198\.18\.200\.2 is an IPv4-mapped address: give the IPv4 address itself \(198\.18\.200\.2\)/);
    assert.match(v6, /peers\[2\]: ::198\.18\.200\.3 is an IPv4-compatible address .*\(198\.18\.200\.3\)/);
    assert.match(v6, /peers\[3\]: fe80::5 is a link-local address \(fe80::\/10\): a VTEP address is a global IPv6 address/);
    assert.throws(() => parseConfig('uplinks: [{ name: upx, type: pipe, localIp6: "2001:db8:200::/64" }]\n'), /localIp6: is the subnet-router anycast address of 2001:db8:200::\/64/);
    // What a VTEP can have still passes; the gateway on the subnet too.
    parseConfig('uplinks: [{ name: upx, type: pipe, localIp: 198.18.0.1/24, gateway: 198.18.0.254, localIp6: "2001:db8::1/64", gateway6: "2001:db8::fe" }]\nswitches:\n  - { name: sx, vni: 99, peers: [198.18.5.5, "2001:db8:5::5"] }\n');
    // The API's own calls refuse them the same way (the field named).
    await withController(async (c) => {
      await c.apply(parseConfig(OVERLAY));
      await assert.rejects(c.createPeer({ switch: 'tenant-a', ip: '239.1.1.1' }), { code: 'ERR_INVALID_ARGUMENT', field: 'ip' });
      await assert.rejects(c.createPeer({ switch: 'tenant-a', ip: '198.18.0.255' }), (e: Error & { field?: string }) => e.field === 'ip' && /broadcast address of 198\.18\.0\.1\/24/.test(e.message));
      await assert.rejects(c.createFdb({ switch: 'tenant-a', mac: '02:00:00:00:0b:09', vtep: '127.0.0.2' }), { code: 'ERR_INVALID_ARGUMENT', field: 'vtep' });
      await assert.rejects(c.createPeer({ switch: 'tenant-a', ip: '::ffff:198.18.0.2' }), (e: Error & { field?: string }) => e.field === 'ip' && /IPv4-mapped address: give the IPv4 address itself \(198\.18\.0\.2\)/.test(e.message));
    });
  });

  test('uplink before peers and remote entries; twice is a no-op; removal in reverse order', async () => {
    await withController(async (c, dp) => {
      const r = await c.apply(parseConfig(OVERLAY));
      assert.deepEqual(kinds(r.steps), ['create switch', 'create port', 'create uplink', 'create peer', 'create peer', 'create fdb', 'create fdb']);
      assert.ok(r.plan.includes('+ uplink up0 (pipe, 198.18.0.1/24)'), r.plan.join('\n'));
      assert.ok(r.plan.includes('+ fdb tenant-a/02:00:00:00:0b:01 -> vtep 198.18.0.2'), r.plan.join('\n'));
      assert.equal(dp.uplink()?.name, 'up0');
      assert.deepEqual(dp.peers('tenant-a').map((p) => p.ip), ['198.18.0.2', '198.18.0.3']);
      const remote = (await dp.fdb('tenant-a')).find((e) => e.mac === '02:00:00:00:0b:01');
      assert.equal(remote?.vtep, '198.18.0.2');
      assert.equal(remote?.static, true);
      const uuids = c.current;

      const again = await c.apply(parseConfig(OVERLAY));
      assert.equal(again.steps.length, 0);
      assert.equal(again.applied, false);
      assert.deepEqual(c.current, uuids, 'UUIDs and specs stay');

      // One peer less, one more: only that changes.
      const diff = await c.apply(parseConfig(`uplinks:\n${UPLINK}${SWITCHES('[198.18.0.2, 198.18.0.4]')}`));
      assert.deepEqual(diff.plan, ['- peer tenant-a/198.18.0.3 (vtep 198.18.0.3)', '+ peer tenant-a/198.18.0.4 (vtep 198.18.0.4)']);

      const gone = await c.apply(parseConfig(NO_OVERLAY));
      assert.deepEqual(kinds(gone.steps), ['delete fdb', 'delete peer', 'delete peer', 'delete uplink']);
      assert.equal(dp.uplink(), undefined);
      assert.deepEqual(dp.peers(), []);
    });
  });

  test('changing the uplink replaces it: peers and remote entries removed first, re-added after', async () => {
    await withController(async (c, dp) => {
      await c.apply(parseConfig(OVERLAY));
      const before = c.current;
      const r = await c.apply(parseConfig(OVERLAY.replace('mac: "02:00:00:00:ff:01"', 'mac: "02:00:00:00:ff:01", mtu: 1400')));
      assert.deepEqual(kinds(r.steps), [
        'delete fdb', 'delete peer', 'delete peer', 'delete uplink', 'create uplink', 'create peer', 'create peer', 'create fdb',
      ]);
      assert.ok(r.plan.every((p) => /replace: (mtu changed|uplink "up0" is replaced)/.test(p)), r.plan.join('\n'));
      assert.equal(dp.uplink()?.mtu, 1400);
      assert.deepEqual(dp.peers('tenant-a').map((p) => p.ip), ['198.18.0.2', '198.18.0.3']);
      assert.equal(c.current.uplinks[0]!.uuid, before.uplinks[0]!.uuid, 'the UUID stays across a replace');
      assert.equal((await dp.fdb('tenant-a')).find((e) => e.mac === '02:00:00:00:0b:01')?.vtep, '198.18.0.2');
    });
  });

  test('a replace names what changed: not a MAC the file does not give, and a backend field by its own name', async () => {
    await withController(async (c) => {
      const noMac = OVERLAY.replace(', mac: "02:00:00:00:ff:01"', '');
      await c.apply(parseConfig(noMac));
      const r = await c.apply(parseConfig(noMac.replace('localIp: 198.18.0.1/24', 'localIp: 198.18.0.1/24, ttl: 32')), { dryRun: true });
      const line = r.plan.find((p) => p.includes('uplink up0'));
      assert.match(line ?? '', /\[replace: ttl changed\]/, r.plan.join('\n'));
      // A conflict names the field as the file does (a backend's too, not `kernel`).
      await c.createPort({ name: 'vm9', type: 'vhostuser', socket: '/run/vpc-test-vm9.sock', switch: 'tenant-a' });
      await assert.rejects(c.createPort({ name: 'vm9', type: 'vhostuser', socket: '/run/vpc-test-vm9.sock', switch: 'tenant-a', queues: 2 }), (e: Error) => /^queues: port "vm9" exists with a different spec \(queues: 1 running, 2 requested\)/.test(e.message));
      await assert.rejects(c.createPort({ name: 'vm1', type: 'pipe', switch: 'tenant-a', ringSize: 2048 }), (e: Error) => /^ringSize: port "vm1" exists with a different spec \(ringSize: 1024 running, 2048 requested\)/.test(e.message));
      // A vhost-user port's mode and socket by the request's names (not the
      // normalised vhostMode and interface), as given.
      await assert.rejects(c.createPort({ name: 'vm9', type: 'vhostuser', socket: '/run/vpc-test-vm9.sock', switch: 'tenant-a', mode: 'client' }),
        (e: ControlError) => /^mode: port "vm9" exists with a different spec \(mode: "server" running, "client" requested\)/.test(e.message) && e.field === 'mode');
      await assert.rejects(c.createPort({ name: 'vm9', type: 'vhostuser', socket: '/run/vpc-test-vm8.sock', switch: 'tenant-a' }),
        (e: ControlError) => /^socket: port "vm9" exists with a different spec \(socket: "\/run\/vpc-test-vm9\.sock" running, "\/run\/vpc-test-vm8\.sock" requested\)/.test(e.message));
    });
  });

  test('a native failure (maxVteps exceeded) rolls back the uplink, the switch and the peer already added', async () => {
    await withController(async (c, dp, store) => {
      await c.apply(parseConfig(NO_OVERLAY));
      const before = c.current;
      const gen = store.generation;
      await assert.rejects(c.apply(parseConfig(OVERLAY)), (err: unknown) => {
        assert.ok(err instanceof ControlError);
        assert.equal(err.code, 'ERR_LIMIT');
        assert.match(err.message, /\+ peer tenant-a\/198\.18\.0\.3 .*failed: .*maxVteps/);
        assert.equal(err.extra?.rolledBack, 2); // uplink, first peer
        return true;
      });
      assert.deepEqual(c.current, before);
      assert.equal(store.generation, gen, 'nothing persisted');
      assert.equal(dp.uplink(), undefined);
      assert.deepEqual(dp.peers(), []);
      // The engine still takes a valid overlay afterwards.
      await c.apply(parseConfig(`uplinks:\n${UPLINK}${SWITCHES('[198.18.0.2]')}`));
      assert.equal(dp.uplink()?.name, 'up0');
    }, { ...ENGINE, maxVteps: 1 });
  });

  test('API-style mutations: idempotent create, conflicts, uplink in use, wrong family', async () => {
    await withController(async (c) => {
      await c.apply(parseConfig(NO_OVERLAY));
      const up = await c.createUplink({ name: 'up0', type: 'pipe', localIp: '198.18.0.1/24' });
      assert.equal(up.created, true);
      assert.equal((await c.createUplink({ name: 'up0', type: 'pipe', localIp: '198.18.0.1/24' })).created, false);
      // The field as the user gives it (localIp), not the engine's (ip4).
      await assert.rejects(c.createUplink({ name: 'up0', type: 'pipe', localIp: '198.18.0.9/24' }), (e: ControlError) => e.code === 'ERR_SPEC_CONFLICT' && e.field === 'localIp'
        && e.message === 'localIp: uplink "up0" exists with a different spec (localIp: "198.18.0.1/24" running, "198.18.0.9/24" requested); ' +
        'an uplink cannot be changed in place: delete it (vpcctl uplink delete up0) and create it again, or apply a configuration with the new spec, which replaces it');
      await assert.rejects(c.createUplink({ name: 'up1', type: 'pipe', localIp: '198.18.1.1/24' }), { code: 'ERR_TOO_MANY_UPLINKS' });
      await assert.rejects(c.createPeer({ switch: 'tenant-a', ip: '2001:db8::2' }), { code: 'ERR_ADDRESS_FAMILY', field: 'ip' });
      await assert.rejects(c.createPeer({ switch: 'nope', ip: '198.18.0.2' }), { code: 'ERR_UNKNOWN_SWITCH' });
      const p = await c.createPeer({ switch: 'tenant-a', ip: '198.18.0.2' });
      assert.equal(p.created, true);
      assert.equal((await c.createPeer({ switch: 'tenant-a', ip: '198.18.0.2' })).created, false);
      await assert.rejects(c.deleteUplink('up0'), { code: 'ERR_UPLINK_IN_USE' });
      await c.deletePeer('tenant-a', '198.18.0.2');
      await assert.rejects(c.deletePeer('tenant-a', '198.18.0.2'), { code: 'ERR_NOT_FOUND' });
      await c.deleteUplink(up.object.uuid);
      assert.equal(c.current.uplinks.length, 0);
    });
  });
});

// Issue 11, item 6: a port whose MTU exceeds its switch's inner MTU over
// the overlay is said at apply time (and in `port show`, below); it is never
// refused.
describe('overlay: port MTU above the inner MTU', () => {
  const WARN = /^port "vm1": its MTU is 1500, above the inner MTU 1450 of switch "tenant-a" over the overlay \(uplink MTU 1500 minus the VXLAN headers\).*Give the guest MTU 1450 and set the port's mtu to it, or raise the uplink's MTU to 1550/;

  test('warned at apply time (dry run too), not for a port that fits or a switch without remote VTEPs', async () => {
    await withController(async (c) => {
      const dry = await c.apply(parseConfig(OVERLAY), { dryRun: true });
      assert.equal(dry.warnings.length, 1, dry.warnings.join('\n'));
      assert.match(dry.warnings[0]!, WARN);
      const r = await c.apply(parseConfig(OVERLAY));
      assert.deepEqual(r.warnings, dry.warnings);
      // Said again while it holds, with nothing to change (a restart, a dry run).
      const again = await c.apply(parseConfig(OVERLAY), { dryRun: true });
      assert.deepEqual(again.warnings, dry.warnings);
      // The port at the inner MTU: nothing to say.
      const fits = OVERLAY.replace('{ name: vm1, type: pipe,', '{ name: vm1, type: pipe, mtu: 1450,');
      assert.deepEqual((await c.apply(parseConfig(fits))).warnings, []);
      // No remote VTEP for the switch: no overlay, no limit.
      assert.deepEqual((await c.apply(parseConfig(NO_OVERLAY))).warnings, []);
    });
  });

  test('a single change says only what it touches: not the warning of a port on another switch, again at every call', async () => {
    await withController(async (c) => {
      await c.apply(parseConfig(OVERLAY));
      // Another switch and its port, then an update of that switch: vm1's
      // warning is not theirs.
      assert.deepEqual((await c.createSwitch({ name: 'tenant-b', vni: 1002 })).warnings ?? [], []);
      assert.deepEqual((await c.createPort({ name: 'vm2', type: 'pipe', switch: 'tenant-b' })).warnings ?? [], []);
      assert.deepEqual((await c.updateSwitch('tenant-b', { agingSeconds: 200 })).warnings ?? [], []);
      // vm1 itself, its switch, or a peer of its switch: said.
      const [w1] = (await c.updatePort('vm1', { macLimit: 10 })).warnings ?? [];
      assert.match(w1 ?? '', WARN);
      assert.match(((await c.updateSwitch('tenant-a', { agingSeconds: 200 })).warnings ?? [])[0] ?? '', WARN);
      assert.match(((await c.createPeer({ switch: 'tenant-a', ip: '198.18.0.4' })).warnings ?? [])[0] ?? '', WARN);
    });
  });

  test('an IPv6 VTEP costs 20 bytes more; a trunk port is checked per switch; the interface MTU counts when larger', async () => {
    const up: UplinkObject = { uuid: 'u', spec: { name: 'up0', type: 'pipe', localIp6: '2001:db8::1/64', mtu: 1600 } };
    const model = {
      ...emptyModel(),
      uplinks: [up],
      switches: [{ uuid: 's1', spec: { name: 'a', vni: 1 } }, { uuid: 's2', spec: { name: 'b', vni: 2 } }],
      peers: [{ uuid: 'p', spec: { switch: 'b', ip: '2001:db8::2' } }],
      ports: [
        { uuid: 't', spec: { name: 'trunk', type: 'afpacket', interface: 'eth7', untagged: 'a', vlans: [{ vlan: 10, switch: 'b' }], mtu: 1500 } },
        { uuid: 'q', spec: { name: 'fits', type: 'afpacket', interface: 'eth8', switch: 'b', mtu: 1530 } },
      ],
    } as Model;
    const ifMtu = (ifname: string): number | undefined => ({ eth7: 9000, eth8: 1500 })[ifname];
    const w = overlayMtuWarnings(model, ifMtu);
    assert.equal(w.length, 1, w.join('\n'));
    assert.match(w[0]!, /^port "trunk": its interface eth7 has MTU 9000, above the inner MTU 1530 of switch "b" over the overlay \(uplink MTU 1600 /);
    assert.match(w[0]!, /raise the uplink's MTU to 9070/);
    assert.equal(overlayInnerMtu(model, 'a'), undefined, 'no remote VTEP');
    // A static MAC behind a VTEP makes a switch an overlay switch too.
    model.fdb = [{ uuid: 'f', spec: { switch: 'a', mac: '02:00:00:00:00:09', vtep: '198.18.0.2' } }];
    assert.deepEqual(overlayInnerMtu(model, 'a'), { mtu: 1550, uplinkMtu: 1600 });
    assert.equal(overlayMtuWarnings(model, ifMtu).length, 2);
  });

  test('an uplink above its interface\'s MTU is warned about and its overlay goes by the interface; a port whose interface fits is told to lower its own mtu', () => {
    const up: UplinkObject = { uuid: 'u', spec: { name: 'up0', type: 'afpacket', interface: 'nic0', localIp: '198.18.0.1/24', mtu: 1600 } };
    const model = {
      ...emptyModel(),
      uplinks: [up],
      switches: [{ uuid: 's1', spec: { name: 'a', vni: 1 } }],
      peers: [{ uuid: 'p', spec: { switch: 'a', ip: '198.18.0.2' } }],
      ports: [{ uuid: 'q', spec: { name: 'g1', type: 'afpacket', interface: 'veth1', switch: 'a' } }],
    } as Model;
    const ifMtu = (ifname: string): number | undefined => ({ nic0: 1500, veth1: 1450 })[ifname];
    assert.deepEqual(overlayInnerMtu(model, 'a', ifMtu), { mtu: 1450, uplinkMtu: 1500 }, 'the NIC\'s 1500, not the configured 1600');
    const u = uplinkMtuWarnings(model, ifMtu);
    assert.equal(u.length, 1);
    assert.match(u[0]!, /^uplink "up0": its mtu 1600 is above its interface nic0's MTU 1500: VXLAN packets go by 1500 .*ip link set nic0 mtu 1600/);
    const w = overlayMtuWarnings(model, ifMtu);
    assert.equal(w.length, 1, w.join('\n'));
    assert.match(w[0]!, /^port "g1": its MTU is 1500, above the inner MTU 1450 .* Set the port's mtu to 1450 \(its interface has 1450 already\)/);
    assert.deepEqual(uplinkMtuWarnings(model, () => 1600), [], 'an interface that takes it: nothing to say');
  });
});

describe('overlay: rules newer than a state file', () => {
  test('an uplink mtu too small for any overlay is refused, naming mtu: 118 over IPv4, 1280 with localIp6; a wrong type is told that range', () => {
    const uplink = (extra: string): void => void parseConfig(`uplinks: [{ name: u, type: pipe, localIp: 198.18.0.1/24${extra} }]\n`);
    uplink(', mtu: 118');
    assert.throws(() => uplink(', mtu: 117'), /uplinks\[0\]\.mtu: must be at least 118 for a VTEP \(50 bytes of VXLAN headers around an inner MTU of at least 68\) \(got 117\)/);
    uplink(', localIp6: "2001:db8::1/64", mtu: 1280');
    assert.throws(() => uplink(', localIp6: "2001:db8::1/64", mtu: 1279'), /uplinks\[0\]\.mtu: must be at least 1280 with localIp6 \(the smallest MTU of an IPv6 link\)/);
    assert.throws(() => uplink(', mtu: "1500"'), /uplinks\[0\]\.mtu: must be an integer in 118\.\.9000 \(got "1500"\)/);
    assert.throws(() => uplink(', mtu: 10000'), /uplinks\[0\]\.mtu: must be an integer in 118\.\.9000 \(got 10000\)/);
    assert.throws(() => uplink(', localIp6: "2001:db8::1/64", mtu: 1.5'), /uplinks\[0\]\.mtu: must be an integer in 1280\.\.9000/);
  });

  test('a state file holding what this version refuses still loads: the objects are kept, said, and can be deleted', async () => {
    await withController(async (c, _dp, store) => {
      const old = {
        ...emptyModel(ENGINE),
        uplinks: [{ uuid: '11111111-1111-4111-8111-111111111111', spec: { name: 'up0', type: 'pipe', localIp: '198.18.0.1/24', localIp6: '2001:db8::1/64', mtu: 1000, mac: '02:00:00:00:ff:01' } }],
        switches: [{ uuid: '22222222-2222-4222-8222-222222222222', spec: { name: 'a', vni: 1 } }],
        peers: [{ uuid: '33333333-3333-4333-8333-333333333333', spec: { switch: 'a', ip: '::ffff:c612:2' } }],
      } as Model;
      store.save(old);
      const loaded = store.load()!;
      assert.deepEqual(loaded.peers.map((p) => p.spec.ip), ['::ffff:c612:2']);
      assert.deepEqual(storedProblems(loaded, 9000), [
        'uplink "up0": mtu: must be at least 1280 with localIp6 (the smallest MTU of an IPv6 link) (got 1000)',
        'peer ::ffff:c612:2 of switch "a": ::ffff:c612:2 is an IPv4-mapped address: give the IPv4 address itself (198.18.0.2)',
      ]);
      // Restored as it was; a new one is refused; the old one can be deleted.
      await c.restore(loaded);
      await assert.rejects(c.createPeer({ switch: 'a', ip: '::ffff:198.18.0.3' }), { code: 'ERR_INVALID_ARGUMENT', field: 'ip' });
      await c.deletePeer('a', '::ffff:c612:2');
      assert.deepEqual(c.current.peers, []);
    });
  });
});

describe('overlay: remote VTEPs the uplink has no route to', () => {
  test('a peer or static entry off the uplink\'s subnet with no gateway of its family is warned about once per address; on-link or via a gateway is not', () => {
    const model = {
      ...emptyModel(),
      uplinks: [{ uuid: 'u', spec: { name: 'up0', type: 'pipe', localIp: '198.18.0.1/24', localIp6: '2001:db8::1/64', gateway6: '2001:db8::fe' } }],
      switches: [{ uuid: 's1', spec: { name: 'a', vni: 1 } }, { uuid: 's2', spec: { name: 'b', vni: 2 } }],
      peers: [
        { uuid: 'p1', spec: { switch: 'a', ip: '198.18.0.2' } },
        { uuid: 'p2', spec: { switch: 'a', ip: '198.19.5.5' } },
        { uuid: 'p3', spec: { switch: 'b', ip: '198.19.5.5' } },
        { uuid: 'p4', spec: { switch: 'b', ip: '2001:db8:9::5' } },
      ],
      fdb: [{ uuid: 'f', spec: { switch: 'b', mac: '02:00:00:00:00:09', vtep: '198.19.7.7' } }],
    } as Model;
    const w = peerRouteWarnings(model);
    assert.equal(w.length, 2, w.join('\n'));
    assert.equal(w[0], 'peer 198.19.5.5 of switch "a" is off uplink "up0"\'s subnet 198.18.0.1/24 and the uplink has no gateway: the switch cannot reach it ' +
      'and drops what it would send there (neighbor_unresolved). Set the uplink\'s gateway to a router on 198.18.0.1/24, or fix the address');
    assert.match(w[1]!, /^VTEP 198\.19\.7\.7 of the static entry for 02:00:00:00:00:09 \(switch "b"\) is off uplink "up0"/);
    // A localIp without a prefix is a /24 (validateCidr), as the engine takes it.
    model.uplinks[0]!.spec.localIp = '198.18.0.1';
    assert.deepEqual(peerRouteWarnings(model).map((w) => w.split(' is ')[0]), ['peer 198.19.5.5 of switch "a"', 'VTEP 198.19.7.7 of the static entry for 02:00:00:00:00:09 (switch "b")']);
    assert.match(peerRouteWarnings(model)[0]!, /subnet 198\.18\.0\.1\/24 /);
    model.uplinks[0]!.spec.gateway = '198.18.0.254';
    assert.deepEqual(peerRouteWarnings(model), [], 'a gateway routes both');
    assert.deepEqual(peerRouteWarnings({ ...model, uplinks: [] }), [], 'no uplink: the config check refuses the peers instead');
  });

  test('said by apply, dry run included', async () => {
    await withController(async (c) => {
      const off = `uplinks:\n${UPLINK}${SWITCHES('[198.18.0.2, 198.19.0.3]')}`;
      const dry = await c.apply(parseConfig(off), { dryRun: true });
      assert.equal(dry.warnings.filter((w) => /off uplink .* no gateway/.test(w)).length, 1, dry.warnings.join('\n'));
      const r = await c.apply(parseConfig(off));
      assert.deepEqual(r.warnings, dry.warnings);
    });
  });
});

describe('overlay: persistence', () => {
  test('the state file holds the uplink and peers (version 2) and a new engine restores them', async () => {
    await withController(async (c, _dp, store) => {
      await c.apply(parseConfig(OVERLAY));
      const doc = JSON.parse(fs.readFileSync(store.file, 'utf8')) as { version: number; state: { uplinks: unknown[]; peers: unknown[] } };
      assert.equal(doc.version, 2);
      assert.equal(doc.state.uplinks.length, 1);
      assert.equal(doc.state.peers.length, 2);
      const saved = new StateStore(store.dir).load()!;
      assert.deepEqual(saved, c.current);

      const dp2 = new Dataplane(ENGINE);
      dp2.start();
      try {
        const c2 = new Controller(dp2, new StateStore(store.dir), createLogger('silent'), ENGINE);
        await c2.restore(saved);
        assert.equal(dp2.uplink()?.mac, '02:00:00:00:ff:01');
        assert.deepEqual(dp2.peers('tenant-a').map((p) => p.ip), ['198.18.0.2', '198.18.0.3']);
        assert.deepEqual(c2.current, c.current);
      } finally {
        dp2.close();
      }

      // Without overlay objects the file is version 1 again (older vpcd can read it).
      await c.apply(parseConfig(NO_OVERLAY));
      const v1 = JSON.parse(fs.readFileSync(store.file, 'utf8')) as { version: number; state: Record<string, unknown> };
      assert.equal(v1.version, 1);
      assert.equal(v1.state.uplinks, undefined);
    });
  });

  test('a version-1 state file (written before the overlay) is still read', () => {
    const dir = tempDir();
    try {
      const state = {
        engine: {},
        switches: [{ uuid: '123e4567-e89b-12d3-a456-426614174000', spec: { name: 'a', vni: 1 } }],
        ports: [],
        fdb: [],
      };
      fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ format: 'vpcd-state', version: 1, generation: 3, writtenAt: '', checksum: checksumOf(state), state }));
      const m = new StateStore(dir).load()!;
      assert.deepEqual(m.uplinks, []);
      assert.deepEqual(m.peers, []);
      assert.equal(m.switches[0]!.spec.name, 'a');
      // A version-1 file cannot carry overlay objects.
      const bad = { ...state, fdb: [{ uuid: '123e4567-e89b-12d3-a456-426614174001', spec: { switch: 'a', mac: '02:00:00:00:00:05', vtep: '198.18.0.2' } }] };
      fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ format: 'vpcd-state', version: 1, generation: 3, writtenAt: '', checksum: checksumOf(bad), state: bad }));
      assert.throws(() => new StateStore(dir).load(), { code: 'ERR_STATE_CORRUPT' });
    } finally {
      removeDir(dir);
    }
  });
});

// ---------------------------------------------------------------- daemon

function ipChecksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += b.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

// An Ethernet/IPv4/UDP/VXLAN packet from `srcIp` to the VTEP, carrying `inner`.
function vxlanPacket(dstMac: string, srcIp: string, dstIp: string, vni: number, inner: Buffer): string {
  const eth = Buffer.alloc(14);
  Buffer.from(dstMac.replace(/:/g, ''), 'hex').copy(eth, 0);
  Buffer.from('02000000ee02', 'hex').copy(eth, 6);
  eth.writeUInt16BE(0x0800, 12);
  const vx = Buffer.alloc(8);
  vx.writeUInt8(0x08, 0);
  vx.writeUIntBE(vni, 4, 3);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(49200, 0);
  udp.writeUInt16BE(4789, 2);
  udp.writeUInt16BE(8 + vx.length + inner.length, 4);
  const ip = Buffer.alloc(20);
  ip.writeUInt8(0x45, 0);
  ip.writeUInt16BE(20 + udp.length + vx.length + inner.length, 2);
  ip.writeUInt16BE(0x4000, 6);
  ip.writeUInt8(64, 8);
  ip.writeUInt8(17, 9);
  Buffer.from(srcIp.split('.').map(Number)).copy(ip, 12);
  Buffer.from(dstIp.split('.').map(Number)).copy(ip, 16);
  ip.writeUInt16BE(ipChecksum(ip), 10);
  return Buffer.concat([eth, ip, udp, vx, inner]).toString('hex');
}

function scrape(address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(`http://${address}/metrics`, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

describe('overlay: vpcd and vpcctl', () => {
  let d: VpcdProcess;
  const cli = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
    let out = '';
    let err = '';
    const code = await runCli(['--socket', d.socket, ...args], { out: (t) => (out += t), err: (t) => (err += t), sleep: async () => undefined });
    return { code, out, err };
  };

  before(async () => {
    d = await spawnVpcd({ config: `${TEST_ENGINE}uplinks:\n${UPLINK}${SWITCHES('[198.18.0.2]')}`, metrics: true, testHooks: true });
  });
  after(async () => {
    await d.stop();
    removeDir(d.dir);
  });

  test('uplink list/show, neighbors: human and JSON', async () => {
    let r = await cli('uplink', 'list');
    assert.equal(r.code, EXIT.OK, r.err);
    assert.match(r.out, /^NAME\s+TYPE\s+INTERFACE\s+LOCAL-IP\s+LOCAL-IP6\s+MTU\s+MAC\s+UDP\s+UUID$/m);
    assert.match(r.out, /^up0\s+pipe\s+-\s+198\.18\.0\.1\/24\s+-\s+1500\s+02:00:00:00:ff:01\s+4789\s+[0-9a-f-]{36}$/m);
    r = await cli('--json', 'uplink', 'list');
    const list = JSON.parse(r.out) as { uplinks: { name: string; uuid: string; innerMtu4: number }[] };
    assert.equal(list.uplinks[0]!.name, 'up0');
    assert.equal(list.uplinks[0]!.innerMtu4, 1450);
    r = await cli('uplink', 'show', list.uplinks[0]!.uuid);
    assert.equal(r.code, EXIT.OK, r.err);
    assert.match(r.out, /^localIp\s+198\.18\.0\.1\/24$/m);
    assert.match(r.out, /^neighbours:$/m);
    r = await cli('--json', 'uplink', 'show', 'up0');
    assert.ok(Array.isArray((JSON.parse(r.out) as { neighbors: unknown[] }).neighbors));
    r = await cli('--json', 'neighbors');
    assert.equal(r.code, EXIT.OK, r.err);
    assert.equal((JSON.parse(r.out) as { uplink: string }).uplink, 'up0');
    r = await cli('uplink', 'show', 'nope');
    assert.equal(r.code, EXIT.NOT_FOUND);
  });

  test('port show warns when the port\'s MTU exceeds its switch\'s inner MTU over the overlay', async () => {
    const r = await cli('port', 'show', 'vm1');
    assert.equal(r.code, EXIT.OK, r.err);
    assert.match(r.out, /^warning: port "vm1": its MTU is 1500, above the inner MTU 1450 of switch "tenant-a" over the overlay/m);
    const j = JSON.parse((await cli('--json', 'port', 'show', 'vm1')).out) as { port: { warnings?: string[] } };
    assert.equal(j.port.warnings?.length, 1);
  });

  test('peer create/list/delete and fdb --vtep, with exit codes', async () => {
    let r = await cli('peer', 'create', 'tenant-a', '198.18.0.3');
    assert.equal(r.code, EXIT.OK, r.err);
    assert.match(r.out, /^created: peer 198\.18\.0\.3 of switch tenant-a uuid [0-9a-f-]{36}$/m);
    r = await cli('peer', 'create', 'tenant-a', '198.18.0.3');
    assert.match(r.out, /^exists \(same spec\)/);
    r = await cli('peer', 'list');
    assert.match(r.out, /^SWITCH\s+PEER\s+RX-PKTS\s+RX-BYTES\s+TX-PKTS\s+TX-BYTES\s+DROPS\s+UUID$/m);
    assert.match(r.out, /^tenant-a\s+198\.18\.0\.2\s+0\s+0\s+0\s+0\s+0\s+[0-9a-f-]{36}$/m);
    assert.match(r.out, /^tenant-a\s+198\.18\.0\.3\s/m);
    r = await cli('--json', 'peer', 'list', 'tenant-a');
    assert.deepEqual((JSON.parse(r.out) as { peers: { ip: string }[] }).peers.map((p) => p.ip), ['198.18.0.2', '198.18.0.3']);
    r = await cli('peer', 'create', 'tenant-a', '2001:db8::3');
    assert.equal(r.code, EXIT.INVALID);
    assert.match(r.err, /ERR_ADDRESS_FAMILY/);
    // A peer the uplink cannot reach (off its subnet, no gateway) is said
    // here too, as an apply says it; --json has the warnings.
    r = await cli('peer', 'create', 'tenant-a', '198.19.5.5');
    assert.equal(r.code, EXIT.OK, r.err);
    assert.match(r.out, /^warning: peer 198\.19\.5\.5 of switch "tenant-a" is off uplink "up0"'s subnet 198\.18\.0\.1\/24 and the uplink has no gateway/m);
    r = await cli('--json', 'peer', 'delete', 'tenant-a', '198.19.5.5');
    assert.equal(r.code, EXIT.OK, r.err);
    r = await cli('peer', 'create', 'tenant-a', 'not-an-ip');
    assert.equal(r.code, EXIT.INVALID);
    r = await cli('peer', 'delete', 'tenant-a', '198.18.0.3');
    assert.equal(r.code, EXIT.OK, r.err);
    r = await cli('peer', 'delete', 'tenant-a', '198.18.0.3');
    assert.equal(r.code, EXIT.NOT_FOUND);
    r = await cli('peer', 'delete', 'nosuch', '198.18.0.3');
    assert.equal(r.code, EXIT.NOT_FOUND);
    assert.match(r.err, /switch: no switch named "nosuch" \[ERR_UNKNOWN_SWITCH\]/);

    r = await cli('fdb', 'create', 'tenant-a', '02:00:00:00:0b:02', '--vtep', '198.18.0.3');
    assert.equal(r.code, EXIT.OK, r.err);
    assert.match(r.out, /-> vtep 198\.18\.0\.3 uuid/);
    r = await cli('fdb', 'create', 'tenant-a', '02:00:00:00:0b:03');
    assert.equal(r.code, EXIT.USAGE);
    r = await cli('fdb', 'list', '--static');
    assert.match(r.out, /^tenant-a\s+02:00:00:00:0b:02\s+-\s+198\.18\.0\.3\s+[0-9a-f-]{36}$/m);
    r = await cli('fdb', 'list', 'tenant-a');
    assert.match(r.out, /^02:00:00:00:0b:01\s+up0\s+198\.18\.0\.2\s+-\s+static\s+-$/m);
    r = await cli('uplink', 'delete', 'up0');
    assert.equal(r.code, EXIT.CONFLICT);
    assert.match(r.err, /ERR_UPLINK_IN_USE/);
    r = await cli('fdb', 'delete', 'tenant-a', '02:00:00:00:0b:02');
    assert.equal(r.code, EXIT.OK, r.err);
    r = await cli('status');
    assert.match(r.out, /^objects\s+1 switches, 1 ports, 1 uplink\(s\), 1 peers, 2 static fdb entries$/m);
  });

  test('metrics: vpc_peer_* and vpc_uplink_* after a VXLAN packet; the remote MAC is learned behind its VTEP', async () => {
    assert.ok(d.metrics !== undefined);
    let text = await scrape(d.metrics);
    assert.match(text, /^vpc_peer_rx_packets_total\{peer="198\.18\.0\.2"\} 0$/m);
    assert.match(text, /^vpc_uplink_vxlan_rx_total\{uplink="up0"\} 0$/m);
    assert.match(text, /^# TYPE vpc_peer_fdb_learned gauge$/m);
    const inner = Buffer.from(frameHex('ff:ff:ff:ff:ff:ff', '02:00:00:00:bb:01'), 'hex');
    const pkt = vxlanPacket('02:00:00:00:ff:01', '198.18.0.2', '198.18.0.1', 1001, inner);
    const sent = await d.client.call<{ accepted: number }>('POST', '/v1/test/ports/up0/send', { frames: [pkt] });
    assert.equal(sent.accepted, 1);
    // The engine bumps these counters one after another while it works on the
    // packet, and a scrape is not a snapshot: wait until the last of them.
    text = await eventually(async () => {
      const t = await scrape(d.metrics!);
      return /^vpc_uplink_vxlan_rx_total\{uplink="up0"\} 1$/m.test(t) && /^vpc_port_rx_packets_total\{switch="",port="up0"\} 1$/m.test(t) ? t : undefined;
    });
    assert.match(text, /^vpc_peer_rx_packets_total\{peer="198\.18\.0\.2"\} 1$/m);
    assert.match(text, /^vpc_port_drops_total\{switch="",port="up0",reason="[a-z_0-9]+"\} 0$/m);
    // The inner broadcast reached the local port, and the source was learned
    // behind the VTEP. The frame reaches vm1 at the end of that iteration.
    const frames: string[] = [];
    await eventually(async () => {
      frames.push(...(await d.client.call<{ frames: string[] }>('POST', '/v1/test/ports/vm1/receive', {})).frames);
      return frames.length > 0 ? true : undefined;
    });
    assert.equal(frames.length, 1);
    const r = await cli('fdb', 'list', 'tenant-a');
    assert.match(r.out, /^02:00:00:00:bb:01\s+up0\s+198\.18\.0\.2\s+-\s+learned\s+\d+s$/m);
    const s = await cli('stats');
    assert.match(s.out, /^PEER\s+RX-PKTS/m);
    assert.match(s.out, /^uplink up0: .*vxlan_rx=1/m);
  });

  test('a restart (and kill -9) restores the uplink and peers with their UUIDs', async () => {
    const before = await d.client.call<{ state: unknown }>('GET', '/v1/state');
    await d.stop();
    d = await spawnVpcd({ dir: d.dir, noConfig: true, metrics: true, testHooks: true });
    assert.deepEqual((await d.client.call<{ state: unknown }>('GET', '/v1/state')).state, before.state);
    await d.kill9();
    d = await spawnVpcd({ dir: d.dir, noConfig: true, metrics: true, testHooks: true });
    assert.deepEqual((await d.client.call<{ state: unknown }>('GET', '/v1/state')).state, before.state);
    const r = await cli('--json', 'peer', 'list');
    assert.deepEqual((JSON.parse(r.out) as { peers: { ip: string }[] }).peers.map((p) => p.ip), ['198.18.0.2']);
  });

  // Issue 15: `peer list` printed the VTEP's totals on every switch's row.
  test('peer list, /v1/peers and metrics count per switch and peer: two VNIs to one peer show their own traffic', async () => {
    type PeerRow = { switch: string; ip: string; counters?: Record<string, number> };
    const rows = async (): Promise<PeerRow[]> => (JSON.parse((await cli('--json', 'peer', 'list')).out) as { peers: PeerRow[] }).peers;
    const row = (list: PeerRow[], sw: string) => list.find((p) => p.switch === sw && p.ip === '198.18.0.2')?.counters ?? {};
    let r = await cli('switch', 'create', 'tenant-b', '--vni', '1002');
    assert.equal(r.code, EXIT.OK, r.err);
    r = await cli('peer', 'create', 'tenant-b', '198.18.0.2');
    assert.equal(r.code, EXIT.OK, r.err);
    const before = await rows();
    const totalBefore = (await d.client.call<{ peers: Record<string, Record<string, number>> }>('GET', '/v1/stats')).peers['198.18.0.2']?.rx_packets ?? 0;
    const inner = Buffer.from(frameHex('ff:ff:ff:ff:ff:ff', '02:00:00:00:bb:0a'), 'hex');
    const frames = [1001, 1001, 1002, 1002, 1002].map((vni) => vxlanPacket('02:00:00:00:ff:01', '198.18.0.2', '198.18.0.1', vni, inner));
    const sent = await d.client.call<{ accepted: number }>('POST', '/v1/test/ports/up0/send', { frames });
    assert.equal(sent.accepted, 5);
    const after = await eventually(async () => {
      const l = await rows();
      return row(l, 'tenant-b').rx_packets === 3 && (row(l, 'tenant-a').rx_packets ?? 0) - (row(before, 'tenant-a').rx_packets ?? 0) === 2 ? l : undefined;
    });
    const a = row(after, 'tenant-a');
    const b = row(after, 'tenant-b');
    assert.equal((a.rx_bytes ?? 0) - (row(before, 'tenant-a').rx_bytes ?? 0), 2 * inner.length);
    assert.deepEqual(b, { rx_packets: 3, rx_bytes: 3 * inner.length, tx_packets: 0, tx_bytes: 0, drops: 0 });
    // The VTEP's own totals hold both VNIs.
    const totals = (await d.client.call<{ peers: Record<string, Record<string, number>> }>('GET', '/v1/stats')).peers['198.18.0.2']!;
    assert.equal(totals.rx_packets! - totalBefore, 5);
    // The table prints each switch's own figures.
    r = await cli('peer', 'list');
    assert.match(r.out, new RegExp(`^tenant-a\\s+198\\.18\\.0\\.2\\s+${a.rx_packets}\\s+${a.rx_bytes}\\s+0\\s+0\\s+0\\s`, 'm'));
    assert.match(r.out, new RegExp(`^tenant-b\\s+198\\.18\\.0\\.2\\s+3\\s+${3 * inner.length}\\s+0\\s+0\\s+0\\s`, 'm'));
    r = await cli('--json', 'peer', 'list', 'tenant-b');
    assert.deepEqual((JSON.parse(r.out) as { peers: PeerRow[] }).peers.map((p) => [p.switch, p.counters?.rx_packets]), [['tenant-b', 3]]);
    // Prometheus: labels switch and peer.
    const text = await scrape(d.metrics!);
    assert.match(text, /^# TYPE vpc_switch_peer_rx_packets_total counter$/m);
    assert.match(text, /^vpc_switch_peer_rx_packets_total\{switch="tenant-b",peer="198\.18\.0\.2"\} 3$/m);
    assert.match(text, new RegExp(`^vpc_switch_peer_rx_bytes_total\\{switch="tenant-a",peer="198\\.18\\.0\\.2"\\} ${a.rx_bytes}$`, 'm'));
    assert.match(text, /^vpc_switch_peer_drops_total\{switch="tenant-b",peer="198\.18\.0\.2"\} 0$/m);
  });
});
