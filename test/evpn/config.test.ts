// The `bgp` section: validation (each error names its field and reason),
// the state file (format 3), and the plan line of a change.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { parseConfig } from '../../src/control/config';
import { ControlError } from '../../src/control/errors';
import { bgpHostWarnings, parseBgp, resolveBgp } from '../../src/control/evpn/config';
import { findGobgpd, gobgpdConfig, GobgpdLogFollower, gobgpdLogLine, restartReason } from '../../src/control/evpn/speaker';
import { neighborPlan } from '../../src/control/evpn/service';
import { StateStore } from '../../src/control/state';
import { emptyModel } from '../../src/control/model';
import { removeDir, tempDir } from '../control/helpers';
import { Controller } from '../../src/control/controller';
import { createLogger } from '../../src/control/logging';
import { Dataplane } from '../../src/dataplane';

const OK = { asn: 64512, routerId: '198.18.0.1', neighbors: ['198.18.0.2'] };

function messages(v: unknown, own: string[] = []): string[] {
  return parseBgp(v, 'bgp', own).errors.map((e) => e.message);
}

// A controller over a small running dataplane, for the test's body.
async function withController(fn: (c: Controller) => Promise<void>): Promise<void> {
  const dir = tempDir();
  const engine = { bufferCount: 1024, hugepages: false, maxPorts: 4, maxSwitches: 4 };
  const dp = new Dataplane(engine);
  dp.start();
  try {
    await fn(new Controller(dp, new StateStore(`${dir}/state`), createLogger('silent' as never), engine));
  } finally {
    dp.close();
    removeDir(dir);
  }
}

describe('bgp configuration', () => {
  test('defaults', () => {
    const b = resolveBgp(OK);
    assert.deepEqual(b, { asn: 64512, routerId: '198.18.0.1', neighbors: [{ address: '198.18.0.2', asn: 64512, routeReflectorClient: false }], holdTime: 90, keepalive: 30, managed: true, port: 179, remoteLearning: false, advertiseRate: 20000 });
    assert.equal(resolveBgp({ ...OK, holdTime: 9 }).keepalive, 3);
    assert.deepEqual(resolveBgp({ asn: 64512, routerId: '198.18.0.1', routeReflector: '198.18.0.10' }).neighbors, [{ address: '198.18.0.10', asn: 64512, routeReflectorClient: false }]);
  });

  test('bad input: each error names the field and the reason', () => {
    assert.deepEqual(messages({ ...OK, asn: 0 }), ['bgp.asn: must be an AS number, an integer in 1..4294967294 (got 0)']);
    assert.match(messages({ ...OK, asn: 23456 })[0]!, /^bgp\.asn: AS 23456 is reserved \(AS_TRANS/);
    assert.match(messages({ ...OK, asn: 'x' })[0]!, /^bgp\.asn: must be an AS number/);
    assert.match(messages({ ...OK, routerId: '2001:db8::1' })[0]!, /^bgp\.routerId: must be the router ID, an IPv4 address \(got "2001:db8::1"\)/);
    assert.match(messages({ ...OK, routerId: '0.0.0.0' })[0]!, /^bgp\.routerId: .*not 0\.0\.0\.0/);
    assert.match(messages({ ...OK, neighbors: ['198.18.0.1'] })[0]!, /^bgp\.neighbors\[0\]: 198\.18\.0\.1 is this host's own address/);
    assert.match(messages({ ...OK, neighbors: ['198.18.0.11'] }, ['198.18.0.11'])[0]!, /^bgp\.neighbors\[0\]: 198\.18\.0\.11 is this host's own address \(routerId, localAddress or the VTEP\)/);
    assert.match(messages({ ...OK, neighbors: ['198.18.0.2', '198.18.0.2'] })[0]!, /^bgp\.neighbors\[1\]: neighbour 198\.18\.0\.2 is listed twice/);
    assert.match(messages({ ...OK, neighbors: [{ address: '198.18.0.3', asn: 65535 }] })[0]!, /^bgp\.neighbors\[0\]\.asn: AS 65535 is reserved/);
    assert.match(messages({ ...OK, neighbors: ['nope'] })[0]!, /^bgp\.neighbors\[0\]: must be the neighbour's IP address/);
    assert.match(messages({ asn: 64512, routerId: '198.18.0.1' })[0]!, /^bgp\.neighbors: a BGP speaker needs neighbors/);
    assert.match(messages({ ...OK, routeReflector: '198.18.0.10' })[0]!, /^bgp\.routeReflector: give either neighbors or routeReflector/);
    assert.match(messages({ ...OK, holdTime: 2 })[0]!, /^bgp\.holdTime: must be 0 .* or at least 3 seconds/);
    assert.match(messages({ ...OK, holdTime: 9, keepalive: 9 })[0]!, /^bgp\.keepalive: must be below holdTime \(9\)/);
    assert.match(messages({ ...OK, managed: false })[0]!, /^bgp\.address: managed: false needs the address/);
    assert.match(messages({ ...OK, address: '127.0.0.1:50051' })[0]!, /^bgp\.address: is the API address of an external gobgpd/);
    assert.match(messages({ ...OK, managed: false, address: 'x' })[0]!, /^bgp\.address: must be HOST:PORT/);
    assert.match(messages({ ...OK, neighbours: [] })[0]!, /^bgp\.neighbours: unknown field/);
    assert.equal(messages({ ...OK, asn: 0, routerId: 'x' }).length, 2, 'every error, not just the first');
  });

  test('in a config file: errors with their lines; the neighbour may not be our VTEP', () => {
    const text = 'uplinks:\n  - { name: up0, type: pipe, localIp: 198.18.0.11/24 }\nbgp:\n  asn: 64512\n  routerId: 198.18.0.1\n  neighbors: [198.18.0.11]\n';
    assert.throws(() => parseConfig(text, 'f.yaml'), (err: ControlError) => {
      assert.equal(err.code, 'ERR_CONFIG_INVALID');
      assert.match(err.message, /f\.yaml:6: bgp\.neighbors\[0\]: 198\.18\.0\.11 is this host's own address/);
      return true;
    });
    const d = parseConfig('bgp: { asn: 64512, routerId: 198.18.0.1, neighbors: [198.18.0.2] }\n', 'g.yaml');
    assert.deepEqual(d.bgp, OK);
  });

  test('bgp.switches naming no switch is refused (ERR_UNKNOWN_SWITCH at bgp.switches[i]), running state unchanged; deleting a listed switch takes it out of the list', async () => {
    const config = (switches: string): string =>
      `uplinks:\n  - { name: up0, type: pipe, localIp: 198.18.0.11/24 }\nswitches:\n  - { name: tenant-a, vni: 1001 }\n  - { name: tenant-b, vni: 1002 }\nbgp:\n  asn: 64512\n  routerId: 198.18.0.1\n  neighbors: [198.18.0.2]\n  switches: ${switches}\n`;
    assert.throws(() => parseConfig(config('[tenant-a, tenant-x]'), 'f.yaml'), (err: ControlError) => {
      assert.equal(err.code, 'ERR_CONFIG_INVALID');
      assert.match(err.message, /f\.yaml:10: bgp\.switches\[1\]: no switch named "tenant-x"/);
      assert.deepEqual(err.details?.map((d) => [d.code, d.field]), [['ERR_UNKNOWN_SWITCH', 'bgp.switches[1]']]);
      return true;
    });
    await withController(async (c) => {
      await c.apply(parseConfig(config('[tenant-a, tenant-b]')));
      await c.deleteSwitch('tenant-b');
      assert.deepEqual(c.current.bgp?.switches, ['tenant-a'], 'tenant-b is no longer listed');
      await c.deleteSwitch('tenant-a');
      assert.deepEqual(c.current.bgp?.switches, [], 'an empty list: EVPN manages no switch (not every switch)');
    });
  });

  test('bgp.localAddress that no interface of the host has is warned about (read from the host only)', () => {
    const ifs = { lo: [{ address: '127.0.0.1' }], eth1: [{ address: '198.18.1.1' }, { address: '2001:db8::1' }] } as unknown as Parameters<typeof bgpHostWarnings>[1];
    const model = (bgp: Record<string, unknown>): Parameters<typeof bgpHostWarnings>[0] => ({ uplinks: [], bgp: { ...OK, ...bgp } as never });
    assert.deepEqual(bgpHostWarnings(model({ localAddress: '198.18.1.1' }), ifs), []);
    assert.deepEqual(bgpHostWarnings(model({ localAddress: '2001:DB8:0::1' }), ifs), [], 'any spelling of the address');
    assert.deepEqual(bgpHostWarnings(model({}), ifs), [], 'no localAddress: nothing to check');
    assert.deepEqual(bgpHostWarnings(model({ localAddress: '198.18.1.9', managed: false, address: '127.0.0.1:50051' }), ifs), [], 'an external gobgpd is the operator\'s');
    const w = bgpHostWarnings(model({ localAddress: '198.18.1.9' }), ifs);
    assert.equal(w.length, 1);
    assert.match(w[0]!, /^bgp\.localAddress 198\.18\.1\.9 is not assigned to any interface of this host .*gobgpd cannot listen on it or open sessions from it, exits at start/);
  });

  test('the state file keeps bgp as format version 3, and refuses it in older formats', () => {
    const dir = tempDir('evpn-state-');
    try {
      const store = new StateStore(dir);
      store.save({ ...emptyModel(), bgp: OK });
      const doc = JSON.parse(require('node:fs').readFileSync(store.file, 'utf8')) as { version: number; state: { bgp: unknown } };
      assert.equal(doc.version, 3);
      assert.deepEqual(new StateStore(dir).load()!.bgp, OK);
      store.save(emptyModel());
      assert.equal(JSON.parse(require('node:fs').readFileSync(store.file, 'utf8')).version, 1, 'without bgp, still the oldest format that fits');
    } finally {
      removeDir(dir);
    }
  });

  test('gobgpd missing: the error names the Debian package', () => {
    assert.throws(() => findGobgpd({ PATH: '' }, []), /gobgpd was not found .*install the Debian package gobgpd \(apt install gobgpd\)/);
    assert.throws(() => findGobgpd({ VPCD_GOBGPD: '/nonexistent/gobgpd' }), /VPCD_GOBGPD=\/nonexistent\/gobgpd is not an executable file/);
  });

  test('gobgpd\'s log lines keep gobgpd\'s level and fields (logrus JSON); other lines are warnings', () => {
    const line = (level: string): string => JSON.stringify({ Key: '198.18.0.2', Topic: 'Peer', level, msg: 'Peer Up', time: '2026-01-01T00:00:00Z' });
    assert.deepEqual(gobgpdLogLine(line('info')), { level: 'info', msg: 'Peer Up', fields: { Key: '198.18.0.2', Topic: 'Peer' } });
    assert.equal(gobgpdLogLine(line('debug')).level, 'debug');
    assert.equal(gobgpdLogLine(line('warning')).level, 'warn');
    assert.equal(gobgpdLogLine(line('error')).level, 'error');
    assert.equal(gobgpdLogLine(line('fatal')).level, 'fatal');
    assert.equal(gobgpdLogLine(line('panic')).level, 'fatal');
    assert.deepEqual(gobgpdLogLine('panic: runtime error: index out of range\n'), { level: 'warn', msg: 'panic: runtime error: index out of range', fields: {} });
  });

  test('the log follower keeps the last warning gobgpd logged about each neighbour (why a session does not come up)', () => {
    const dir = tempDir();
    try {
      const file = path.join(dir, 'gobgpd.log');
      const at = (o: Record<string, unknown>): string => `${JSON.stringify({ time: '2026-01-01T00:00:00Z', ...o })}\n`;
      fs.writeFileSync(file, [
        at({ Key: '198.18.0.2', Topic: 'Peer', level: 'info', msg: 'Add a peer configuration' }),
        at({ Data: 'as number mismatch expected 64513, received 64514', Key: '198.18.0.2', Topic: 'Peer', level: 'warning', msg: 'sent notification' }),
        at({ Key: '198.18.0.3', Topic: 'Peer', level: 'info', msg: 'Peer Up' }),
        at({ Code: 6, Data: null, Key: '198.18.0.3', Subcode: 3, Topic: 'Peer', level: 'warning', msg: 'received notification' }),
        at({ Code: 4, Data: '', Key: '198.18.0.4', Subcode: 0, Topic: 'Peer', level: 'warning', msg: 'sent notification' }),
        at({ Code: 9, Key: '198.18.0.5', Subcode: 1, Topic: 'Peer', level: 'warning', msg: 'received notification' }),
        at({ Key: 'not-an-address', Topic: 'Peer', level: 'warning', msg: 'odd' }),
        at({ Topic: 'Config', level: 'warning', msg: 'not about a neighbour' }),
      ].join(''));
      const f = new GobgpdLogFollower(file, 4321, createLogger('silent'), 0);
      f.poll();
      f.stop();
      assert.deepEqual([...f.peerProblems.keys()], ['198.18.0.2', '198.18.0.3', '198.18.0.4', '198.18.0.5']);
      assert.equal(f.peerProblems.get('198.18.0.2')!.msg, 'sent notification: as number mismatch expected 64513, received 64514');
      // gobgpd logs a notification's numbers only (RFC 4271 4.5, RFC 4486): they are said in words.
      assert.equal(f.peerProblems.get('198.18.0.3')!.msg, 'received notification: cease (peer de-configured)');
      assert.equal(f.peerProblems.get('198.18.0.4')!.msg, 'sent notification: hold timer expired');
      assert.equal(f.peerProblems.get('198.18.0.5')!.msg, 'received notification: error code 9 (subcode 1)');
    } finally {
      removeDir(dir);
    }
  });

  test('the managed gobgpd configuration', () => {
    const toml = gobgpdConfig(resolveBgp({ ...OK, holdTime: 9, keepalive: 3, neighbors: ['198.18.0.2', { address: '198.18.0.3', routeReflectorClient: true }] }));
    assert.match(toml, /\[global\.config\]\n {2}as = 64512\n {2}router-id = "198\.18\.0\.1"\n {2}port = 179\n/);
    assert.equal((toml.match(/\[\[neighbors\]\]/g) ?? []).length, 2);
    assert.match(toml, /neighbor-address = "198\.18\.0\.2"\n {4}peer-as = 64512\n {2}\[neighbors\.timers\.config\]\n {4}hold-time = 9\n {4}keepalive-interval = 3/);
    assert.match(toml, /route-reflector-client = true\n {4}route-reflector-cluster-id = "198\.18\.0\.1"/);
    assert.equal((toml.match(/afi-safi-name = "l2vpn-evpn"/g) ?? []).length, 2);
    // Next hops (VTEPs) leave unchanged, to eBGP neighbours too (gobgpd sets its own otherwise).
    assert.match(toml, /\[global\.apply-policy\.config\]\n {2}export-policy-list = \["vpcd-evpn-next-hop-unchanged"\]\n {2}default-export-policy = "accept-route"\n/);
    assert.match(toml, /\[\[policy-definitions\]\]\n {2}name = "vpcd-evpn-next-hop-unchanged"\n[\s\S]*set-next-hop = "unchanged"\n/);
  });

  test('what a running gobgpd takes through its API, and what needs a new one', () => {
    const a = resolveBgp({ ...OK, neighbors: ['198.18.0.2', '198.18.0.3', '198.18.0.4'] });
    const b = resolveBgp({ ...OK, neighbors: ['198.18.0.2', { address: '198.18.0.4', routeReflectorClient: true }, '198.18.0.5'] });
    assert.equal(restartReason(a, b), undefined, 'neighbours alone: no restart');
    const plan = neighborPlan(a, b);
    assert.deepEqual(plan.add.map((p) => p.address), ['198.18.0.5']);
    assert.deepEqual(plan.remove, ['198.18.0.3']);
    assert.deepEqual(plan.change.map((p) => [p.address, p.routeReflectorClient, p.clusterId]), [['198.18.0.4', true, '198.18.0.1']]);
    assert.deepEqual(neighborPlan(a, a), { add: [], remove: [], change: [] }, '198.18.0.2 untouched');
    // Timers are session settings: every neighbour is replaced, gobgpd stays.
    const timers = resolveBgp({ ...OK, neighbors: ['198.18.0.2', '198.18.0.3', '198.18.0.4'], holdTime: 30 });
    assert.equal(restartReason(a, timers), undefined);
    assert.equal(neighborPlan(a, timers).change.length, 3);
    // The sync's rate limit is read at every tick: nothing restarts.
    const rate = resolveBgp({ ...OK, neighbors: ['198.18.0.2', '198.18.0.3', '198.18.0.4'], advertiseRate: 500 });
    assert.equal(restartReason(a, rate), undefined);
    assert.deepEqual(neighborPlan(a, rate), { add: [], remove: [], change: [] });
    // So are the switches it manages and its VXLAN learning: gobgpd never
    // sees them, and the sync follows them at its next refresh.
    const sync = resolveBgp({ ...OK, neighbors: ['198.18.0.2', '198.18.0.3', '198.18.0.4'], switches: ['tenant'], remoteLearning: true });
    assert.equal(restartReason(a, sync), undefined);
    assert.deepEqual(neighborPlan(a, sync), { add: [], remove: [], change: [] });
    // Global settings need a new gobgpd; the reason names them.
    assert.equal(restartReason(a, resolveBgp({ ...OK, asn: 64513 })), 'bgp.asn');
    assert.equal(restartReason(a, resolveBgp({ ...OK, routerId: '198.18.0.9', port: 1179 })), 'bgp.port, bgp.routerId');
    assert.equal(restartReason(a, resolveBgp({ ...OK, localAddress: '198.18.0.1' })), 'bgp.localAddress');
  });

  test('a plan that restarts the managed gobgpd says so, dry run included; neighbours and the sync\'s settings do not', async () => {
    await withController(async (c) => {
      const config = (bgp: string): string => `uplinks:\n  - { name: up0, type: pipe, localIp: 198.18.0.11/24 }\nswitches:\n  - { name: tenant, vni: 1001 }\nbgp: { asn: 64512, routerId: 198.18.0.1, ${bgp} }\n`;
      assert.deepEqual((await c.apply(parseConfig(config('neighbors: [198.18.0.2]')))).warnings, []);
      const live = await c.apply(parseConfig(config('neighbors: [198.18.0.2, 198.18.0.3], holdTime: 30, switches: [tenant], remoteLearning: true')), { dryRun: true });
      assert.deepEqual(live.plan, ['~ bgp (holdTime, neighbors, remoteLearning, switches)']);
      assert.deepEqual(live.warnings, []);
      const restart = parseConfig(config('neighbors: [198.18.0.2], port: 1179'));
      const dry = await c.apply(restart, { dryRun: true });
      assert.equal(dry.warnings.length, 1, dry.warnings.join('\n'));
      assert.match(dry.warnings[0]!, /^bgp\.port: gobgpd cannot take this change while it runs; applying it restarts gobgpd, and every BGP session of this host goes down and comes back/);
      assert.deepEqual((await c.apply(restart)).warnings, dry.warnings, 'the real apply says it too');
      // An external gobgpd is the operator's: nothing of ours restarts.
      await c.apply(parseConfig(config('managed: false, address: "127.0.0.1:50051"')));
      assert.deepEqual((await c.apply(parseConfig(config('managed: false, address: "127.0.0.1:50052"')), { dryRun: true })).warnings, []);
    });
  });
});
