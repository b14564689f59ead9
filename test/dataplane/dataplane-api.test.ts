// The Dataplane's TypeScript logic (validation order, name maps, call
// ordering, error mapping, id->name conversion) against the fake engine of
// fake-native.ts. Packet behaviour is covered by dataplane.test.ts against
// the real addon.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Dataplane, DataplaneError, DataplaneEvent, ValidationError } from '../../src/dataplane/index';
import { EVENT_BITS, NativeEvent } from '../../src/dataplane/native';
import { FakeEngine, fakeNative } from './fake-native';
import { traceResult } from '../../src/dataplane/observe';
import { NameRegistry } from '../../src/dataplane/registry';

function setup(delayMs = 0): { dp: Dataplane; fake: FakeEngine } {
  const mod = fakeNative();
  const dp = new Dataplane({ hugepages: false, bufferCount: 4096, events: ['learned', 'moved', 'link'] }, mod);
  const fake = mod.last!;
  fake.delayMs = delayMs;
  dp.start();
  return { dp, fake };
}

async function rejectsCode(p: Promise<unknown> | (() => unknown), code: string, field?: string): Promise<DataplaneError> {
  let caught: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof DataplaneError, `expected a DataplaneError with ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (field !== undefined) assert.equal(caught.field, field, caught.message);
  return caught;
}

function snapshot(dp: Dataplane): unknown {
  return { switches: dp.switches(), ports: dp.ports() };
}

function ev(partial: Partial<NativeEvent> & Pick<NativeEvent, 'type'>): NativeEvent {
  return { switchId: -1, portId: -1, oldPortId: -1, vlan: 0, oldVlan: 0, mac: '', up: false, vtep: '', oldVtep: '', ...partial };
}

describe('construction', () => {
  test('validates options before loading anything', () => {
    let loaded = false;
    const mod = fakeNative();
    const spy = { get Engine() { loaded = true; return mod.Engine; } };
    assert.throws(() => new Dataplane({ bufferSize: 1000 }, spy), (e: unknown) => e instanceof ValidationError && e.field === 'bufferSize');
    assert.equal(loaded, false);
  });
  test('passes resolved options and the event mask to the engine', () => {
    const { dp, fake } = setup();
    assert.equal(fake.options.bufferCount, 4096);
    assert.equal(fake.options.bufferSize, 2048);
    assert.equal(fake.options.hugepages, false);
    assert.equal(fake.options.cpu, -1);
    assert.equal(fake.options.eventMask, EVENT_BITS.learned | EVENT_BITS.moved | EVENT_BITS.link);
    assert.equal(dp.maxMtu, 9000, 'large buffers carry longer frames (the engine checks the port type)');
    dp.close();
    const small = new Dataplane({ bufferCount: 4096, largeBufferCount: 0 }, fakeNative());
    assert.equal(small.maxMtu, 1902, 'without large buffers: what a 2048-byte buffer holds');
    small.close();
  });
  test('a missing addon is ERR_NATIVE', () => {
    const broken = { get Engine(): never { throw new Error('Cannot find module vpc_native.node'); } };
    assert.throws(() => new Dataplane({}, broken), (e: unknown) => e instanceof DataplaneError && e.code === 'ERR_NATIVE');
  });
  test('an engine constructor failure is mapped', () => {
    const mod = { Engine: class { constructor() { throw Object.assign(new Error('mmap failed'), { code: 'SYSTEM' }); } } };
    assert.throws(() => new Dataplane({}, mod as never), (e: unknown) => e instanceof DataplaneError && e.code === 'ERR_SYSTEM');
  });
});

describe('commands', () => {
  test('work before start() and after stop()', async () => {
    const mod = fakeNative();
    const dp = new Dataplane({}, mod);
    assert.equal(dp.running, false);
    await dp.createSwitch({ name: 'a', vni: 1 });
    dp.start();
    dp.start();
    assert.equal(dp.running, true);
    dp.stop();
    dp.stop();
    assert.equal(dp.running, false);
    await dp.deleteSwitch('a');
    assert.deepEqual(dp.switches(), []);
    dp.close();
  });

  test('switch create/update/delete and uniqueness', async () => {
    const { dp, fake } = setup();
    const a = await dp.createSwitch({ name: 'a', vni: 100 });
    assert.deepEqual(a, { name: 'a', id: 0, vni: 100, macLimit: 65536, agingSeconds: 300, learning: true, remoteLearning: true, allowUnknownPeers: false, fdbCapacity: 1024, ports: [] });
    assert.deepEqual(fake.commands[0], { op: 'createSwitch', vni: 100, macLimit: 65536, agingMs: 300000, learning: true, remoteLearning: true, allowUnknownPeers: false, fdbCapacity: 1024 });
    const before = snapshot(dp);
    const sent = fake.commands.length;
    await rejectsCode(dp.createSwitch({ name: 'a', vni: 101 }), 'ERR_DUPLICATE_NAME', 'name');
    await rejectsCode(dp.createSwitch({ name: 'b', vni: 100 }), 'ERR_DUPLICATE_VNI', 'vni');
    await rejectsCode(dp.createSwitch({ name: 'b', vni: 0 }), 'ERR_INVALID_VNI', 'vni');
    await rejectsCode(dp.createSwitch({ name: '-b', vni: 5 }), 'ERR_INVALID_NAME', 'name');
    await rejectsCode(dp.updateSwitch('zz', { learning: false }), 'ERR_UNKNOWN_SWITCH', 'name');
    await rejectsCode(dp.updateSwitch('a', { vni: 7 } as never), 'ERR_INVALID_ARGUMENT', 'vni');
    await rejectsCode(dp.deleteSwitch('zz'), 'ERR_UNKNOWN_SWITCH', 'name');
    assert.equal(fake.commands.length, sent, 'no failed call reached the engine');
    assert.deepEqual(snapshot(dp), before);

    const u = await dp.updateSwitch('a', { agingSeconds: 10, learning: false });
    assert.equal(u.agingSeconds, 10);
    assert.equal(u.learning, false);
    assert.equal(u.macLimit, 65536);
    assert.deepEqual(fake.commands.at(-1), { op: 'setSwitch', switchId: 0, macLimit: 65536, agingMs: 10000, learning: false, remoteLearning: true, allowUnknownPeers: false });
    await dp.deleteSwitch('a');
    assert.deepEqual(dp.switches(), []);
    // the VNI and the name are free again
    await dp.createSwitch({ name: 'a', vni: 100 });
    dp.close();
  });

  test('concurrent creates of one name: exactly one wins, deterministically', async () => {
    const { dp, fake } = setup(5);
    const results = await Promise.allSettled([
      dp.createSwitch({ name: 'a', vni: 1 }),
      dp.createSwitch({ name: 'a', vni: 2 }),
      dp.createSwitch({ name: 'b', vni: 1 }),
    ]);
    assert.equal(results[0]!.status, 'fulfilled');
    assert.equal(results[1]!.status, 'rejected');
    assert.equal(((results[1] as PromiseRejectedResult).reason as DataplaneError).code, 'ERR_DUPLICATE_NAME');
    assert.equal(((results[2] as PromiseRejectedResult).reason as DataplaneError).code, 'ERR_DUPLICATE_VNI');
    assert.equal(fake.commands.length, 1);
    await dp.createPort({ name: 'p', type: 'pipe', switch: 'a' });
    const ports = await Promise.allSettled([
      dp.createPort({ name: 'q', type: 'pipe', switch: 'a' }),
      dp.createPort({ name: 'q', type: 'pipe', switch: 'a' }),
    ]);
    assert.deepEqual(ports.map((r) => r.status), ['fulfilled', 'rejected']);
    assert.equal(dp.ports().length, 2);
    dp.close();
  });

  test('calls apply in call order, so a plan can be issued without awaiting each step', async () => {
    const { dp } = setup(2);
    const [s, p, del] = await Promise.allSettled([
      dp.createSwitch({ name: 's', vni: 9 }),
      dp.createPort({ name: 'p', type: 'pipe', switch: 's' }),
      dp.deleteSwitch('s'),
    ]);
    assert.equal(s.status, 'fulfilled');
    assert.equal(p.status, 'fulfilled');
    assert.equal(((del as PromiseRejectedResult).reason as DataplaneError).code, 'ERR_SWITCH_IN_USE');
    await Promise.all([dp.deletePort('p'), dp.deleteSwitch('s')]);
    assert.deepEqual(snapshot(dp), { switches: [], ports: [] });
    dp.close();
  });

  test('ports: references, trunk mappings, in-use, updates', async () => {
    const { dp, fake } = setup();
    await dp.createSwitch({ name: 's1', vni: 1 });
    await dp.createSwitch({ name: 's2', vni: 2 });
    const before = snapshot(dp);
    const sent = fake.commands.length;
    await rejectsCode(dp.createPort({ name: 'p', type: 'pipe', switch: 'nope' }), 'ERR_UNKNOWN_SWITCH', 'switch');
    await rejectsCode(dp.createPort({ name: 'p', type: 'pipe', untagged: 'nope' }), 'ERR_UNKNOWN_SWITCH', 'untagged');
    await rejectsCode(
      dp.createPort({ name: 'p', type: 'pipe', vlans: [{ vlan: 10, switch: 's1' }, { vlan: 20, switch: 'nope' }] }),
      'ERR_UNKNOWN_SWITCH',
      'vlans[1].switch',
    );
    await rejectsCode(
      dp.createPort({ name: 'p', type: 'pipe', vlans: [{ vlan: 10, switch: 's1' }, { vlan: 10, switch: 's2' }] }),
      'ERR_TRUNK_DUPLICATE_VLAN',
      'vlans[1].vlan',
    );
    await rejectsCode(dp.createPort({ name: 'p', type: 'pipe', vlans: [{ vlan: 4095, switch: 's1' }] }), 'ERR_INVALID_VLAN', 'vlans[0].vlan');
    await rejectsCode(dp.createPort({ name: 'p', type: 'pipe', switch: 's1', mac: '01:00:00:00:00:01' }), 'ERR_INVALID_MAC', 'mac');
    await rejectsCode(dp.createPort({ name: 'p', type: 'pipe', switch: 's1', mtu: 9001 }), 'ERR_INVALID_ARGUMENT', 'mtu');
    assert.equal(fake.commands.length, sent);
    assert.deepEqual(snapshot(dp), before);

    const access = await dp.createPort({ name: 'a', type: 'pipe', switch: 's1', mac: '02:00:00:00:00:0A', lockedMacs: ['02:00:00:00:00:0a'] });
    assert.equal(access.mode, 'access');
    assert.equal(access.mac, '02:00:00:00:00:0a');
    const cmd = fake.commands.at(-1)!;
    assert.equal(cmd.op, 'createPort');
    assert.equal(cmd.op === 'createPort' && cmd.untaggedSwitchId, 0);
    const trunk = await dp.createPort({ name: 't', type: 'pipe', untagged: 's2', vlans: [{ vlan: 10, switch: 's1' }] });
    assert.equal(trunk.mode, 'trunk');
    const tcmd = fake.commands.at(-1)!;
    assert.ok(tcmd.op === 'createPort');
    assert.equal(tcmd.untaggedSwitchId, 1);
    assert.deepEqual(tcmd.vlans, [{ vlan: 10, switchId: 0 }]);
    assert.deepEqual(dp.getSwitch('s1')!.ports, ['a', 't']);
    assert.deepEqual(dp.getSwitch('s2')!.ports, ['t']);
    await rejectsCode(dp.createPort({ name: 'a', type: 'pipe', switch: 's2' }), 'ERR_DUPLICATE_NAME', 'name');

    const snap = snapshot(dp);
    const n = fake.commands.length;
    await rejectsCode(dp.deleteSwitch('s2'), 'ERR_SWITCH_IN_USE', 'name');
    assert.equal(fake.commands.length, n, 'in-use is decided before the native call');
    assert.deepEqual(snapshot(dp), snap);

    const up = await dp.updatePort('a', { mtu: 1400, flood: false });
    assert.equal(up.mtu, 1400);
    assert.equal(up.flood, false);
    assert.deepEqual(up.lockedMacs, ['02:00:00:00:00:0a']);
    assert.deepEqual(fake.commands.at(-1), {
      op: 'setPort', portId: access.id, mtu: 1400, learning: true, flood: false, macLimit: 1024, lockedMacs: ['02:00:00:00:00:0a'],
    });
    await rejectsCode(dp.updatePort('a', { switch: 's2' } as never), 'ERR_INVALID_ARGUMENT', 'switch');
    await rejectsCode(dp.updatePort('zz', { mtu: 1400 }), 'ERR_UNKNOWN_PORT', 'name');

    await dp.deletePort('t');
    await rejectsCode(dp.deletePort('t'), 'ERR_UNKNOWN_PORT', 'name');
    await dp.deleteSwitch('s2');
    assert.deepEqual(dp.switches().map((s) => s.name), ['s1']);
    dp.close();
  });

  test('a native failure leaves the state as it was and frees the name', async () => {
    const { dp, fake } = setup();
    await dp.createSwitch({ name: 's', vni: 1 });
    const before = snapshot(dp);
    fake.failNext = 'LIMIT_EXCEEDED';
    const e = await rejectsCode(dp.createPort({ name: 'p', type: 'pipe', switch: 's' }), 'ERR_LIMIT');
    assert.equal(e.nativeCode, 'LIMIT_EXCEEDED');
    assert.deepEqual(snapshot(dp), before);
    fake.failNext = 'INTERNAL';
    await rejectsCode(dp.createSwitch({ name: 't', vni: 2 }), 'ERR_NATIVE');
    fake.failNext = 'IN_USE';
    await rejectsCode(dp.deleteSwitch('s'), 'ERR_SWITCH_IN_USE');
    fake.failNext = 'ALREADY_EXISTS';
    await rejectsCode(dp.createSwitch({ name: 't', vni: 2 }), 'ERR_DUPLICATE_VNI');
    assert.deepEqual(snapshot(dp), before);
    await dp.createPort({ name: 'p', type: 'pipe', switch: 's' });
    await dp.createSwitch({ name: 't', vni: 2 });
    dp.close();
  });
});

describe('fdb', () => {
  test('static entries, listing with names, flush', async () => {
    const { dp, fake } = setup();
    await dp.createSwitch({ name: 's', vni: 1 });
    await dp.createSwitch({ name: 'o', vni: 2 });
    const p = await dp.createPort({ name: 'p', type: 'pipe', switch: 's' });
    await dp.createPort({ name: 'q', type: 'pipe', switch: 'o' });
    await dp.addStaticMac({ switch: 's', mac: '02-00-00-00-00-BB', port: 'p' });
    await dp.addStaticMac({ switch: 's', mac: '02:00:00:00:00:bb', port: 'p' }); // same entry again: no change
    await dp.createPort({ name: 'p2', type: 'pipe', switch: 's' });
    await rejectsCode(dp.addStaticMac({ switch: 's', mac: '02:00:00:00:00:bb', port: 'p2' }), 'ERR_DUPLICATE_MAC', 'mac');
    await rejectsCode(dp.addStaticMac({ switch: 's', mac: '02:00:00:00:00:cc', port: 'q' }), 'ERR_PORT_NOT_MEMBER', 'port');
    await rejectsCode(dp.addStaticMac({ switch: 's', mac: '02:00:00:00:00:cc', port: 'zz' }), 'ERR_UNKNOWN_PORT', 'port');
    await rejectsCode(dp.addStaticMac({ switch: 'zz', mac: '02:00:00:00:00:cc', port: 'p' }), 'ERR_UNKNOWN_SWITCH', 'switch');
    await rejectsCode(dp.addStaticMac({ switch: 's', mac: 'ff:ff:ff:ff:ff:ff', port: 'p' }), 'ERR_INVALID_MAC', 'mac');
    fake.learn(0, '02:00:00:00:00:aa', p.id, 2500);
    assert.deepEqual(await dp.fdb('s'), [
      { mac: '02:00:00:00:00:aa', port: 'p', vlan: 0, static: false, ageSeconds: 2.5 },
      { mac: '02:00:00:00:00:bb', port: 'p', vlan: 0, static: true, ageSeconds: 0 },
    ]);
    await rejectsCode(dp.fdb('zz'), 'ERR_UNKNOWN_SWITCH', 'switch');
    await rejectsCode(dp.flushFdb('s', 'q'), 'ERR_PORT_NOT_MEMBER', 'port');
    assert.equal(await dp.flushFdb('s', 'p'), 1);
    await dp.deleteStaticMac({ switch: 's', mac: '02:00:00:00:00:BB' });
    await rejectsCode(dp.deleteStaticMac({ switch: 's', mac: '02:00:00:00:00:bb' }), 'ERR_UNKNOWN_MAC', 'mac');
    assert.deepEqual(await dp.fdb('s'), []);
    dp.close();
  });
});

describe('stats and events', () => {
  test('stats are keyed by names and filled from the schema', async () => {
    const { dp } = setup();
    await dp.createSwitch({ name: 's', vni: 1 });
    await dp.createPort({ name: 'p', type: 'pipe', switch: 's' });
    dp.pipe('p').send([Buffer.alloc(60), Buffer.alloc(60)]);
    const st = dp.stats();
    assert.deepEqual(Object.keys(st.ports), ['p']);
    assert.deepEqual(Object.keys(st.switches), ['s']);
    assert.deepEqual(st.ports.p, { counters: { rx_packets: 2, rx_bytes: 0, tx_packets: 0, tx_bytes: 0 }, drops: { runt: 0, port_security: 0 } });
    assert.equal(st.switches.s!.counters.flooded, 0);
    assert.equal(st.engine.iterations, 7);
    assert.deepEqual(dp.schema().drop.map((d) => d.name), ['runt', 'port_security']);
    dp.close();
  });

  test('events carry names, also for objects deleted since', async () => {
    const { dp, fake } = setup();
    const s = await dp.createSwitch({ name: 's', vni: 1 });
    const a = await dp.createPort({ name: 'a', type: 'pipe', switch: 's' });
    const b = await dp.createPort({ name: 'b', type: 'pipe', switch: 's' });
    const single: DataplaneEvent[] = [];
    const batches: DataplaneEvent[][] = [];
    dp.on('event', (e) => single.push(e));
    dp.on('events', (list) => batches.push(list));
    fake.onEvents([
      ev({ type: 'learned', switchId: s.id, portId: a.id, mac: '02:00:00:00:00:01' }),
      ev({ type: 'moved', switchId: s.id, portId: b.id, oldPortId: a.id, mac: '02:00:00:00:00:01' }),
    ]);
    await dp.deletePort('b');
    fake.onEvents([ev({ type: 'link', portId: b.id, up: false }), ev({ type: 'aged', switchId: 77, portId: 78, mac: '02:00:00:00:00:02' })]);
    assert.deepEqual(single, [
      { type: 'learned', switch: 's', port: 'a', vlan: 0, mac: '02:00:00:00:00:01' },
      { type: 'moved', switch: 's', port: 'b', oldPort: 'a', vlan: 0, oldVlan: 0, mac: '02:00:00:00:00:01' },
      { type: 'link', port: 'b', up: false },
      { type: 'aged', switch: '#77', port: '#78', vlan: 0, mac: '02:00:00:00:00:02' },
    ]);
    assert.deepEqual(batches, [single.slice(0, 2), single.slice(2)]);
    dp.close();
    fake.onEvents([ev({ type: 'link', portId: a.id, up: true })]);
    assert.equal(single.length, 4, 'no events after close');
  });
});

describe('pipes', () => {
  test('send/receive/waitFor, bound to the port', async () => {
    const { dp, fake } = setup();
    await dp.createSwitch({ name: 's', vni: 1 });
    const p = await dp.createPort({ name: 'p', type: 'pipe', switch: 's' });
    const end = dp.pipe('p');
    assert.equal(end.send([]), 0);
    assert.equal(end.send([Buffer.alloc(60)]), 1);
    assert.throws(() => end.send(['x' as never]), (e: unknown) => e instanceof ValidationError && e.field === 'frames[0]');
    assert.throws(() => end.receive(0), (e: unknown) => e instanceof ValidationError && e.field === 'max');
    assert.deepEqual(end.receive(), []);
    setTimeout(() => fake.ports.get(p.id)!.inbox.push(Buffer.from('a'), Buffer.from('b'), Buffer.from('c')), 10);
    const got = await end.waitFor(2, 1000);
    assert.deepEqual(got.map(String), ['a', 'b']);
    assert.deepEqual((await end.waitFor(5, 20)).map(String), ['c']);
    end.setLink(false);
    assert.equal(fake.ports.get(p.id)!.up, false);
    assert.throws(() => dp.pipe('zz'), (e: unknown) => e instanceof DataplaneError && e.code === 'ERR_UNKNOWN_PORT');
    await dp.deletePort('p');
    await dp.createPort({ name: 'p', type: 'pipe', switch: 's' }); // same name, maybe same id
    assert.throws(() => end.send([Buffer.alloc(60)]), (e: unknown) => e instanceof DataplaneError && e.code === 'ERR_UNKNOWN_PORT');
    dp.close();
  });
});

describe('close', () => {
  test('rejects pending calls and every later call with ERR_CLOSED; idempotent', async () => {
    const { dp } = setup(20);
    await dp.createSwitch({ name: 's', vni: 1 });
    await dp.createPort({ name: 'p', type: 'pipe', switch: 's' });
    const end = dp.pipe('p');
    const inFlight = dp.createSwitch({ name: 't', vni: 2 });
    const queued = dp.deletePort('p');
    const waiting = end.waitFor(1, 1000);
    dp.close();
    dp.close();
    assert.equal(dp.running, false);
    assert.equal(dp.closed, true);
    await rejectsCode(inFlight, 'ERR_CLOSED');
    await rejectsCode(queued, 'ERR_CLOSED');
    await rejectsCode(waiting, 'ERR_CLOSED');
    await rejectsCode(dp.createSwitch({ name: 'u', vni: 3 }), 'ERR_CLOSED');
    await rejectsCode(dp.deleteSwitch('s'), 'ERR_CLOSED');
    await rejectsCode(dp.fdb('s'), 'ERR_CLOSED');
    for (const call of [
      () => dp.switches(), () => dp.ports(), () => dp.stats(), () => dp.schema(), () => dp.pipe('p'),
      () => dp.start(), () => dp.stop(), () => dp.info(), () => end.send([Buffer.alloc(60)]), () => end.receive(),
    ]) {
      await rejectsCode(call, 'ERR_CLOSED');
    }
    // validation problems after close still say closed: the state is what matters
    await rejectsCode(dp.createSwitch({ name: '', vni: 0 }), 'ERR_CLOSED');
  });
});

// A trace's drop line holds the reason's name (the engine's line is 110
// characters, most helps are longer); the API adds the help, whole.
test('a trace drop line gets its reason\'s whole help', () => {
  const help = 'VXLAN from a VTEP that is not a peer of the VNI\'s switch (and the switch does not allow unknown peers)';
  const r = traceResult(
    { count: 1, portId: -1, records: [{ portId: 0, length: 64, truncated: false, lines: [{ ns: 1, stage: 'drop', text: 'vxlan_peer_denied' }] }] } as never,
    new NameRegistry(),
    new Map([['vxlan_peer_denied', help]]),
  );
  assert.equal(r.records[0]!.lines[0]!.text, `vxlan_peer_denied: ${help}`);
  assert.ok(r.records[0]!.lines[0]!.text.length > 110);
});

// A vhost-user port's info holds what applies to it (socket, mode, queues,
// burst), not the interface fields it refuses (a VM user saw rxRing 0,
// promiscuous true, interface = the socket's path).
test('a vhost-user port\'s info has only the fields that apply to it', async () => {
  const dp = new Dataplane({ hugepages: false, bufferCount: 4096 }, fakeNative());
  await dp.createSwitch({ name: 's', vni: 1 });
  const info = await dp.createPort({ name: 'vm1', type: 'vhostuser', socket: '/run/vpc/vm1.sock', switch: 's', queues: 2 }) as unknown as Record<string, unknown>;
  assert.equal(info.socket, '/run/vpc/vm1.sock');
  assert.equal(info.queues, 2);
  for (const k of ['interface', 'rxRing', 'txRing', 'disableOffloads', 'promiscuous']) assert.equal(k in info, false, k);
  await dp.close();
});
