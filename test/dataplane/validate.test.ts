// Pure unit tests of validate.ts and specs.ts: no addon needed.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { DataplaneError, ValidationError } from '../../src/dataplane/errors';
import * as v from '../../src/dataplane/validate';
import * as specs from '../../src/dataplane/specs';
import { uplinkInfo, validateUplinkSpec } from '../../src/dataplane/overlay';
import { createUplinkCommand } from '../../src/dataplane/commands';
import { DEFAULT_OPTIONS, EVENT_TYPES } from '../../src/dataplane/types';
import { EVENT_BITS } from '../../src/dataplane/native';

// Asserts fn throws a ValidationError with this code and field; returns it.
function rejects(fn: () => unknown, code: string, field: string | undefined): DataplaneError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ValidationError, `expected a ValidationError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.field, field, caught.message);
  if (field !== undefined) assert.ok(caught.message.startsWith(`${field}: `), caught.message);
  return caught;
}

describe('names', () => {
  test('accepts 1..64 chars of [A-Za-z0-9._-] starting alphanumeric', () => {
    for (const good of ['a', 'A', '0', 'tenant-a', 'vm1.eth0', 'x_y', 'a'.repeat(64), '9-._']) {
      assert.equal(v.validateName(good), good);
    }
  });
  test('rejects the rest with ERR_INVALID_NAME and the field', () => {
    for (const bad of ['', 'a'.repeat(65), '-a', '.a', '_a', 'a b', 'a/b', 'ä', 'a:b', 'a\n']) {
      rejects(() => v.validateName(bad, 'switch'), 'ERR_INVALID_NAME', 'switch');
    }
    for (const bad of [undefined, null, 1, {}, ['a']]) rejects(() => v.validateName(bad), 'ERR_INVALID_NAME', 'name');
  });
  test('message says what is wrong', () => {
    const e = rejects(() => v.validateName('a'.repeat(65)), 'ERR_INVALID_NAME', 'name');
    assert.match(e.message, /1\.\.64 characters \(got 65\)/);
  });
});

describe('MAC addresses', () => {
  test('parses colon and dash forms, any case, to lower-case colon form', () => {
    assert.equal(v.parseMac('02:00:5E:aB:cD:Ef'), '02:00:5e:ab:cd:ef');
    assert.equal(v.parseMac('02-00-5E-AB-CD-EF'), '02:00:5e:ab:cd:ef');
    assert.equal(v.parseMac('ff:ff:ff:ff:ff:ff'), 'ff:ff:ff:ff:ff:ff');
    assert.equal(v.parseMac('01:00:5e:00:00:01'), '01:00:5e:00:00:01');
  });
  test('rejects wrong length, bad hex, mixed separators, non-strings', () => {
    for (const bad of [
      '', '02:00:00:00:00', '02:00:00:00:00:00:00', '02:00:00:00:00:0g', '2:00:00:00:00:01', '002:00:00:00:00:01',
      '02:00-00:00:00:01', '0200.0000.0001', '020000000001', ' 02:00:00:00:00:01', '02:00:00:00:00:01 ',
    ]) {
      rejects(() => v.parseMac(bad, 'lockedMacs[3]'), 'ERR_INVALID_MAC', 'lockedMacs[3]');
    }
    for (const bad of [undefined, null, 2, {}, Buffer.alloc(6)]) rejects(() => v.parseMac(bad), 'ERR_INVALID_MAC', 'mac');
  });
  test('multicast detection uses the group bit', () => {
    assert.equal(v.isMulticastMac('01:00:5e:00:00:01'), true);
    assert.equal(v.isMulticastMac('33:33:00:00:00:01'), true);
    assert.equal(v.isMulticastMac('ff:ff:ff:ff:ff:ff'), true);
    assert.equal(v.isMulticastMac('02:00:00:00:00:01'), false);
    assert.equal(v.isMulticastMac('00:1b:21:00:00:01'), false);
  });
  test('unicast MACs: rejects multicast, broadcast and zero', () => {
    assert.equal(v.validateUnicastMac('02-AA-BB-CC-DD-EE'), '02:aa:bb:cc:dd:ee');
    for (const bad of ['01:00:5e:00:00:01', 'ff:ff:ff:ff:ff:ff', '03:00:00:00:00:00', '00:00:00:00:00:00']) {
      rejects(() => v.validateUnicastMac(bad, 'mac'), 'ERR_INVALID_MAC', 'mac');
    }
  });
  test('generated MACs are locally administered unicast and distinct', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const m = v.generateMac();
      assert.equal(v.validateUnicastMac(m), m);
      assert.equal(parseInt(m.slice(0, 2), 16) & 0x03, 0x02);
      seen.add(m);
    }
    assert.ok(seen.size > 190);
  });
});

describe('numbers', () => {
  test('VNI 1..16777215', () => {
    assert.equal(v.validateVni(1), 1);
    assert.equal(v.validateVni(16777215), 16777215);
    const e = rejects(() => v.validateVni(0), 'ERR_INVALID_VNI', 'vni');
    assert.equal(e.message, 'vni: must be an integer in 1..16777215 (got 0)');
    for (const bad of [16777216, -1, 1.5, NaN, Infinity, '5', null, undefined, 2n]) {
      rejects(() => v.validateVni(bad), 'ERR_INVALID_VNI', 'vni');
    }
  });
  test('VLAN 1..4094', () => {
    assert.equal(v.validateVlan(1), 1);
    assert.equal(v.validateVlan(4094), 4094);
    for (const bad of [0, 4095, 4096, -1, 10.5, '10']) rejects(() => v.validateVlan(bad, 'vlans[0].vlan'), 'ERR_INVALID_VLAN', 'vlans[0].vlan');
  });
  test('MTU 68..9000, capped by buffer geometry', () => {
    assert.equal(v.maxMtuFor(2048, 128), 1902);
    assert.equal(v.maxMtuFor(16384, 128), 9000);
    assert.equal(v.maxMtuFor(2048, 128, 0), 1902, 'no large buffers: what one buffer holds');
    assert.equal(v.maxMtuFor(2048, 128, 512), 9000, 'large buffers: the engine checks the port type');
    assert.equal(v.validateMtu(68), 68);
    assert.equal(v.validateMtu(9000), 9000);
    assert.equal(v.validateMtu(1902, 'mtu', 1902), 1902);
    for (const bad of [67, 9001, 0, 1500.5, '1500']) rejects(() => v.validateMtu(bad), 'ERR_INVALID_ARGUMENT', 'mtu');
    const e = rejects(() => v.validateMtu(1903, 'mtu', 1902), 'ERR_INVALID_ARGUMENT', 'mtu');
    assert.match(e.message, /68\.\.1902 \(got 1903\).*bufferSize/);
  });
  test('integers and booleans carry the field path', () => {
    assert.equal(v.validateInteger(5, 'burst', 1, 256), 5);
    rejects(() => v.validateInteger(0, 'burst', 1, 256), 'ERR_INVALID_ARGUMENT', 'burst');
    rejects(() => v.validateInteger(2.5, 'a.b[2]', 1, 256), 'ERR_INVALID_ARGUMENT', 'a.b[2]');
    assert.equal(v.validateBoolean(false, 'learning'), false);
    for (const bad of [0, 1, 'true', null, undefined]) rejects(() => v.validateBoolean(bad, 'learning'), 'ERR_INVALID_ARGUMENT', 'learning');
  });
  test('powers of two', () => {
    assert.equal(v.validatePowerOfTwo(1024, 'ringSize', 16, 65536), 1024);
    assert.equal(v.validatePowerOfTwo(16, 'ringSize', 16, 65536), 16);
    for (const bad of [0, 3, 1000, 8, 131072, -16, 1024.5, '1024']) {
      rejects(() => v.validatePowerOfTwo(bad, 'ringSize', 16, 65536), 'ERR_INVALID_ARGUMENT', 'ringSize');
    }
  });
  test('aging seconds 1..1,000,000', () => {
    assert.equal(v.validateAgingSeconds(1), 1);
    assert.equal(v.validateAgingSeconds(1_000_000), 1_000_000);
    for (const bad of [0, 1_000_001, 0.5, -1]) rejects(() => v.validateAgingSeconds(bad), 'ERR_INVALID_ARGUMENT', 'agingSeconds');
  });
  test('MAC limits: switch 1..1,000,000; port 0..1,000,000', () => {
    assert.equal(v.validateMacLimit(1), 1);
    assert.equal(v.validateMacLimit(1_000_000), 1_000_000);
    rejects(() => v.validateMacLimit(0), 'ERR_INVALID_ARGUMENT', 'macLimit');
    rejects(() => v.validateMacLimit(1_000_001), 'ERR_INVALID_ARGUMENT', 'macLimit');
    assert.equal(v.validatePortMacLimit(0), 0);
    rejects(() => v.validatePortMacLimit(-1), 'ERR_INVALID_ARGUMENT', 'macLimit');
    rejects(() => v.validatePortMacLimit(1_000_001), 'ERR_INVALID_ARGUMENT', 'macLimit');
  });
});

describe('objects', () => {
  test('rejects non-objects and unknown keys', () => {
    rejects(() => v.validateObject(null, '', ['a']), 'ERR_INVALID_ARGUMENT', 'spec');
    rejects(() => v.validateObject([], 'vlans[0]', ['a']), 'ERR_INVALID_ARGUMENT', 'vlans[0]');
    rejects(() => v.validateObject({ a: 1, b: 2 }, '', ['a']), 'ERR_INVALID_ARGUMENT', 'b');
    rejects(() => v.validateObject({ c: 1 }, 'vlans[1]', ['a']), 'ERR_INVALID_ARGUMENT', 'vlans[1].c');
  });
  test('fieldPath', () => {
    assert.equal(v.fieldPath('', 'vni'), 'vni');
    assert.equal(v.fieldPath('vlans', 2), 'vlans[2]');
    assert.equal(v.fieldPath('vlans[2]', 'switch'), 'vlans[2].switch');
  });
});

describe('options', () => {
  test('defaults', () => {
    const o = specs.validateOptions();
    assert.deepEqual(o, { ...DEFAULT_OPTIONS, events: [...EVENT_TYPES] });
    assert.deepEqual(specs.validateOptions({}), o);
    assert.equal(o.bufferCount, 65536);
    assert.equal(o.bufferSize, 2048);
    assert.equal(o.headroom, 128);
    assert.equal(o.hugepages, true);
    assert.equal(o.cpu, -1);
    assert.equal(o.idleSpinUs, 200);
    const n = specs.toNativeOptions(o);
    assert.equal(n.idleSpinUs, 200);
    assert.equal(n.eventMask, Object.values(EVENT_BITS).reduce((a, b) => a | b, 0));
  });
  test('overrides and event mask', () => {
    const o = specs.validateOptions({ bufferSize: 4096, hugepages: false, cpu: 3, events: ['learned', 'moved', 'learned'] });
    assert.equal(o.bufferSize, 4096);
    assert.deepEqual(o.events, ['learned', 'moved']);
    assert.equal(specs.toNativeOptions(o).eventMask, EVENT_BITS.learned | EVENT_BITS.moved);
    assert.equal(specs.toNativeOptions(specs.validateOptions({ events: [] })).eventMask, 0);
    assert.equal(specs.validateOptions({ cpu: undefined }).cpu, -1);
  });
  test('bad options name the field', () => {
    rejects(() => specs.validateOptions(null), 'ERR_INVALID_ARGUMENT', 'options');
    rejects(() => specs.validateOptions({ bufferSize: 3000 }), 'ERR_INVALID_ARGUMENT', 'bufferSize');
    rejects(() => specs.validateOptions({ bufferSize: 32768 }), 'ERR_INVALID_ARGUMENT', 'bufferSize');
    rejects(() => specs.validateOptions({ burst: 0 }), 'ERR_INVALID_ARGUMENT', 'burst');
    rejects(() => specs.validateOptions({ burst: 257 }), 'ERR_INVALID_ARGUMENT', 'burst');
    rejects(() => specs.validateOptions({ idleSpinUs: -1 }), 'ERR_INVALID_ARGUMENT', 'idleSpinUs');
    rejects(() => specs.validateOptions({ idleSpinUs: 100_001 }), 'ERR_INVALID_ARGUMENT', 'idleSpinUs');
    assert.equal(specs.validateOptions({ idleSpinUs: 0 }).idleSpinUs, 0);
    rejects(() => specs.validateOptions({ eventRing: 1000 }), 'ERR_INVALID_ARGUMENT', 'eventRing');
    rejects(() => specs.validateOptions({ hugepages: 'yes' }), 'ERR_INVALID_ARGUMENT', 'hugepages');
    rejects(() => specs.validateOptions({ cpu: -2 }), 'ERR_INVALID_ARGUMENT', 'cpu');
    rejects(() => specs.validateOptions({ events: ['learned', 'bogus'] }), 'ERR_INVALID_ARGUMENT', 'events[1]');
    rejects(() => specs.validateOptions({ events: 'learned' }), 'ERR_INVALID_ARGUMENT', 'events');
    rejects(() => specs.validateOptions({ bufferCont: 1 }), 'ERR_INVALID_ARGUMENT', 'bufferCont');
    rejects(() => specs.validateOptions({ maxPorts: 0 }), 'ERR_INVALID_ARGUMENT', 'maxPorts');
  });
  // TypeScript accepts exactly what the engine accepts, so no value passes
  // validation only to be refused natively.
  test('option ranges match the engine', () => {
    rejects(() => specs.validateOptions({ bufferCount: 511 }), 'ERR_INVALID_ARGUMENT', 'bufferCount');
    assert.equal(specs.validateOptions({ bufferCount: 512 }).bufferCount, 512);
    rejects(() => specs.validateOptions({ largeBufferCount: 65537 }), 'ERR_INVALID_ARGUMENT', 'largeBufferCount');
    rejects(() => specs.validateOptions({ largeBufferCount: -1 }), 'ERR_INVALID_ARGUMENT', 'largeBufferCount');
    assert.equal(specs.validateOptions({ largeBufferCount: 0 }).largeBufferCount, 0);
    assert.equal(specs.toNativeOptions(specs.validateOptions({ largeBufferCount: 65536 })).largeBufferCount, 65536);
    rejects(() => specs.validateOptions({ icmpTooBigPerSecond: 1_000_001 }), 'ERR_INVALID_ARGUMENT', 'icmpTooBigPerSecond');
    assert.equal(specs.toNativeOptions(specs.validateOptions({ icmpTooBigPerSecond: 0 })).icmpTooBigPerSecond, 0);
    rejects(() => specs.validateOptions({ headroom: 63 }), 'ERR_INVALID_ARGUMENT', 'headroom');
    rejects(() => specs.validateOptions({ bufferSize: 2048, headroom: 513 }), 'ERR_INVALID_ARGUMENT', 'headroom');
    assert.equal(specs.validateOptions({ bufferSize: 2048, headroom: 512 }).headroom, 512);
  });
  test('port ranges match the engine', () => {
    const base = { name: 'p', type: 'pipe', switch: 's' };
    rejects(() => specs.validatePortSpec({ ...base, ringSize: 32 }, 1500), 'ERR_INVALID_ARGUMENT', 'ringSize');
    assert.equal(specs.validatePortSpec({ ...base, ringSize: 64 }, 1500).ringSize, 64);
    const macs = (n: number) => Array.from({ length: n }, (_, i) => `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`);
    assert.equal(specs.validatePortSpec({ ...base, lockedMacs: macs(256) }, 1500).lockedMacs.length, 256);
    rejects(() => specs.validatePortSpec({ ...base, lockedMacs: macs(257) }, 1500), 'ERR_INVALID_ARGUMENT', 'lockedMacs');
  });
});

describe('switch specs', () => {
  test('defaults', () => {
    assert.deepEqual(specs.validateSwitchSpec({ name: 'a', vni: 10 }), {
      name: 'a', vni: 10, macLimit: 65536, agingSeconds: 300, learning: true, remoteLearning: true, allowUnknownPeers: false, fdbCapacity: 1024,
    });
    assert.equal(specs.validateSwitchSpec({ name: 'a', vni: 10, macLimit: 100 }).fdbCapacity, 100);
    assert.equal(specs.validateSwitchSpec({ name: 'a', vni: 10, fdbCapacity: 4096 }).fdbCapacity, 4096);
  });
  test('errors', () => {
    rejects(() => specs.validateSwitchSpec({ name: 'a b', vni: 10 }), 'ERR_INVALID_NAME', 'name');
    rejects(() => specs.validateSwitchSpec({ name: 'a' }), 'ERR_INVALID_VNI', 'vni');
    rejects(() => specs.validateSwitchSpec({ name: 'a', vni: 16777216 }), 'ERR_INVALID_VNI', 'vni');
    rejects(() => specs.validateSwitchSpec({ name: 'a', vni: 1, macLimit: 0 }), 'ERR_INVALID_ARGUMENT', 'macLimit');
    rejects(() => specs.validateSwitchSpec({ name: 'a', vni: 1, agingSeconds: 0 }), 'ERR_INVALID_ARGUMENT', 'agingSeconds');
    rejects(() => specs.validateSwitchSpec({ name: 'a', vni: 1, learning: 1 }), 'ERR_INVALID_ARGUMENT', 'learning');
    rejects(() => specs.validateSwitchSpec({ name: 'a', vni: 1, fdbCapacity: 0 }), 'ERR_INVALID_ARGUMENT', 'fdbCapacity');
    rejects(() => specs.validateSwitchSpec({ name: 'a', vni: 1, peers: [] }), 'ERR_INVALID_ARGUMENT', 'peers');
    rejects(() => specs.validateSwitchSpec('a'), 'ERR_INVALID_ARGUMENT', 'spec');
  });
  test('updates: only the mutable fields', () => {
    assert.deepEqual(specs.validateSwitchUpdate({}), {});
    assert.deepEqual(specs.validateSwitchUpdate({ learning: false, agingSeconds: 10 }), { learning: false, agingSeconds: 10 });
    rejects(() => specs.validateSwitchUpdate({ vni: 5 }), 'ERR_INVALID_ARGUMENT', 'vni');
    rejects(() => specs.validateSwitchUpdate({ name: 'b' }), 'ERR_INVALID_ARGUMENT', 'name');
    rejects(() => specs.validateSwitchUpdate({ fdbCapacity: 5 }), 'ERR_INVALID_ARGUMENT', 'fdbCapacity');
    rejects(() => specs.validateSwitchUpdate({ macLimit: -1 }), 'ERR_INVALID_ARGUMENT', 'macLimit');
  });
});

describe('port specs', () => {
  const MAX = 1902;
  test('access port defaults', () => {
    const p = specs.validatePortSpec({ name: 'p1', type: 'pipe', switch: 's1', mac: '02-00-00-00-00-0A' }, MAX);
    assert.deepEqual(p, {
      name: 'p1', type: 'pipe', mode: 'access', switch: 's1', vlans: [], mtu: 1500, mac: '02:00:00:00:00:0a',
      learning: true, flood: true, macLimit: 1024, lockedMacs: [], ringSize: 1024,
    });
    const q = specs.validatePortSpec({ name: 'p2', type: 'pipe', switch: 's1' }, MAX);
    assert.equal(v.validateUnicastMac(q.mac), q.mac);
  });
  test('trunk port', () => {
    const p = specs.validatePortSpec(
      { name: 't', type: 'pipe', untagged: 's0', vlans: [{ vlan: 20, switch: 's2' }, { vlan: 10, switch: 's1' }], lockedMacs: ['02:00:00:00:00:01'] },
      MAX,
    );
    assert.equal(p.mode, 'trunk');
    assert.equal(p.untagged, 's0');
    assert.equal(p.switch, undefined);
    assert.deepEqual(p.vlans, [{ vlan: 20, switch: 's2' }, { vlan: 10, switch: 's1' }]);
    assert.deepEqual(specs.switchesOfPort(p), ['s0', 's2', 's1']);
    assert.equal(specs.validatePortSpec({ name: 't', type: 'pipe', vlans: [{ vlan: 1, switch: 'x' }] }, MAX).mode, 'trunk');
  });
  test('errors name the field', () => {
    const base = { name: 'p', type: 'pipe', switch: 's' };
    rejects(() => specs.validatePortSpec({ ...base, type: 'vhost' }, MAX), 'ERR_INVALID_ARGUMENT', 'type');
    rejects(() => specs.validatePortSpec({ ...base, type: undefined }, MAX), 'ERR_INVALID_ARGUMENT', 'type');
    rejects(() => specs.validatePortSpec({ ...base, name: '' }, MAX), 'ERR_INVALID_NAME', 'name');
    rejects(() => specs.validatePortSpec({ ...base, switch: 's s' }, MAX), 'ERR_INVALID_NAME', 'switch');
    rejects(() => specs.validatePortSpec({ ...base, mac: '01:00:5e:00:00:01' }, MAX), 'ERR_INVALID_MAC', 'mac');
    rejects(() => specs.validatePortSpec({ ...base, mac: '02:00:00:00:00' }, MAX), 'ERR_INVALID_MAC', 'mac');
    rejects(() => specs.validatePortSpec({ ...base, mtu: 9000 }, MAX), 'ERR_INVALID_ARGUMENT', 'mtu');
    rejects(() => specs.validatePortSpec({ ...base, mtu: 67 }, MAX), 'ERR_INVALID_ARGUMENT', 'mtu');
    rejects(() => specs.validatePortSpec({ ...base, ringSize: 1000 }, MAX), 'ERR_INVALID_ARGUMENT', 'ringSize');
    rejects(() => specs.validatePortSpec({ ...base, macLimit: -1 }, MAX), 'ERR_INVALID_ARGUMENT', 'macLimit');
    rejects(() => specs.validatePortSpec({ ...base, flood: 'no' }, MAX), 'ERR_INVALID_ARGUMENT', 'flood');
    rejects(() => specs.validatePortSpec({ ...base, lockedMacs: ['02:00:00:00:00:01', 'ff:ff:ff:ff:ff:ff'] }, MAX), 'ERR_INVALID_MAC', 'lockedMacs[1]');
    rejects(() => specs.validatePortSpec({ ...base, lockedMacs: ['02:00:00:00:00:01', '02-00-00-00-00-01'] }, MAX), 'ERR_INVALID_MAC', 'lockedMacs[1]');
    rejects(() => specs.validatePortSpec({ ...base, lockedMacs: '02:00:00:00:00:01' }, MAX), 'ERR_INVALID_ARGUMENT', 'lockedMacs');
    rejects(() => specs.validatePortSpec({ ...base, untagged: 's2' }, MAX), 'ERR_INVALID_ARGUMENT', 'untagged');
    rejects(() => specs.validatePortSpec({ ...base, vlans: [{ vlan: 10, switch: 'b' }] }, MAX), 'ERR_INVALID_ARGUMENT', 'vlans');
    rejects(() => specs.validatePortSpec({ name: 'p', type: 'pipe' }, MAX), 'ERR_INVALID_ARGUMENT', 'switch');
    rejects(() => specs.validatePortSpec({ name: 'p', type: 'pipe', vlans: [] }, MAX), 'ERR_INVALID_ARGUMENT', 'switch');
    rejects(() => specs.validatePortSpec({ ...base, speed: 10 }, MAX), 'ERR_INVALID_ARGUMENT', 'speed');
  });
  test('trunk mapping errors', () => {
    const trunk = (vlans: unknown, untagged?: string) => () =>
      specs.validatePortSpec(untagged === undefined ? { name: 't', type: 'pipe', vlans } : { name: 't', type: 'pipe', vlans, untagged }, MAX);
    rejects(trunk([{ vlan: 0, switch: 'a' }]), 'ERR_INVALID_VLAN', 'vlans[0].vlan');
    rejects(trunk([{ vlan: 4095, switch: 'a' }]), 'ERR_INVALID_VLAN', 'vlans[0].vlan');
    rejects(trunk([{ vlan: 10, switch: 'a' }, { vlan: 10, switch: 'b' }]), 'ERR_TRUNK_DUPLICATE_VLAN', 'vlans[1].vlan');
    rejects(trunk([{ vlan: 10, switch: 'a' }, { vlan: 20, switch: 'a' }]), 'ERR_TRUNK_DUPLICATE_SWITCH', 'vlans[1].switch');
    rejects(trunk([{ vlan: 10, switch: 'a' }], 'a'), 'ERR_TRUNK_DUPLICATE_SWITCH', 'vlans[0].switch');
    rejects(trunk([{ vlan: 10 }]), 'ERR_INVALID_NAME', 'vlans[0].switch');
    rejects(trunk([{ vlan: 10, switch: 'a', pcp: 1 }]), 'ERR_INVALID_ARGUMENT', 'vlans[0].pcp');
    rejects(trunk(['a']), 'ERR_INVALID_ARGUMENT', 'vlans[0]');
    rejects(trunk({ vlan: 10, switch: 'a' }), 'ERR_INVALID_ARGUMENT', 'vlans');
  });
  test('queues: afxdp defaults to every rx queue (0) and takes 1..16; tap defaults to 1; others have one', () => {
    const port = (extra: Record<string, unknown>) => specs.validatePortSpec({ name: 'k', switch: 's', interface: 'veth0', ...extra }, MAX);
    assert.equal(port({ type: 'afxdp' }).kernel?.queues, 0);
    assert.equal(port({ type: 'afxdp', queue: 2 }).kernel?.spec, 'afxdp:veth0@2');
    assert.equal(port({ type: 'afxdp', queue: 2 }).kernel?.queues, 0);
    assert.equal(port({ type: 'afxdp', queues: 4 }).kernel?.queues, 4);
    assert.equal(port({ type: 'afxdp', queues: 16 }).kernel?.queues, 16);
    assert.equal(port({ type: 'tap' }).kernel?.queues, 1);
    assert.equal(port({ type: 'afpacket' }).kernel?.queues, 1);
    rejects(() => port({ type: 'afxdp', queues: 0 }), 'ERR_INVALID_ARGUMENT', 'queues');
    rejects(() => port({ type: 'afxdp', queues: 17 }), 'ERR_INVALID_ARGUMENT', 'queues');
    const e = rejects(() => port({ type: 'afpacket', queues: 2 }), 'ERR_INVALID_ARGUMENT', 'queues');
    assert.match(e.message, /tap and afxdp ports only/);
  });
  test('promiscuous: afpacket only (no other backend reads it), as kernelPath and persistent are their backend\'s only', () => {
    const port = (extra: Record<string, unknown>) => specs.validatePortSpec({ name: 'k', switch: 's', interface: 'veth0', ...extra }, MAX);
    assert.equal(port({ type: 'afpacket', promiscuous: false }).kernel?.promiscuous, false);
    for (const type of ['tap', 'afxdp', 'netmap']) {
      const e = rejects(() => port({ type, promiscuous: false }), 'ERR_INVALID_ARGUMENT', 'promiscuous');
      assert.equal(e.message, 'promiscuous: applies only to afpacket ports and uplinks (the other backends never set their interface promiscuous)');
    }
    rejects(() => port({ type: 'pipe', interface: undefined, promiscuous: true }), 'ERR_INVALID_ARGUMENT', 'promiscuous');
  });
  test('xdpDecap: afpacket uplinks only, auto, on or off, handed to the engine', () => {
    const uplink = (extra: Record<string, unknown>) => validateUplinkSpec({ name: 'up', interface: 'eth1', localIp: '198.18.0.1/24', ...extra }, MAX);
    assert.equal(uplink({ type: 'afpacket' }).kernel?.xdpDecap, 'auto', 'unset: the default, written out');
    // uplink() (vpcctl uplink show) gives the backend's settings, defaults included.
    const shown = uplinkInfo(uplink({ type: 'afpacket' }), 1);
    assert.deepEqual([shown.promiscuous, shown.kernelPath, shown.xdpDecap, shown.xdpMode], [true, true, 'auto', undefined]);
    const shownXdp = uplinkInfo(uplink({ type: 'afxdp' }), 1);
    assert.deepEqual([shownXdp.kernelPath, shownXdp.xdpMode, shownXdp.zeroCopy], [undefined, 'auto', 'auto']);
    for (const v of ['auto', 'on', 'off'] as const) {
      const u = uplink({ type: 'afpacket', xdpDecap: v });
      assert.equal(u.kernel?.xdpDecap, v);
      assert.equal((createUplinkCommand(u) as { xdpDecap?: string }).xdpDecap, v);
    }
    assert.equal(uplink({ type: 'afpacket', kernelPath: false, xdpDecap: 'off' }).kernel?.xdpDecap, 'off');
    const off = rejects(() => uplink({ type: 'afpacket', kernelPath: false, xdpDecap: 'on' }), 'ERR_INVALID_ARGUMENT', 'xdpDecap');
    assert.match(off.message, /^xdpDecap: 'on' needs the kernel path, which kernelPath: false turns off/);
    const e = rejects(() => uplink({ type: 'afpacket', xdpDecap: true }), 'ERR_INVALID_ARGUMENT', 'xdpDecap');
    assert.match(e.message, /must be one of 'auto', 'on', 'off'/);
    for (const type of ['afxdp', 'tap']) {
      const w = rejects(() => uplink({ type, xdpDecap: 'on' }), 'ERR_INVALID_ARGUMENT', 'xdpDecap');
      assert.match(w.message, /applies only to afpacket uplinks/);
    }
    rejects(() => specs.validatePortSpec({ name: 'k', switch: 's', type: 'afpacket', interface: 'veth0', xdpDecap: 'on' }, MAX), 'ERR_INVALID_ARGUMENT', 'xdpDecap');
  });
  test('updates: only the mutable fields', () => {
    assert.deepEqual(specs.validatePortUpdate({ mtu: 1400, lockedMacs: ['02-00-00-00-00-0B'] }, MAX), { mtu: 1400, lockedMacs: ['02:00:00:00:00:0b'] });
    rejects(() => specs.validatePortUpdate({ mtu: 2000 }, MAX), 'ERR_INVALID_ARGUMENT', 'mtu');
    rejects(() => specs.validatePortUpdate({ switch: 'b' }, MAX), 'ERR_INVALID_ARGUMENT', 'switch');
    rejects(() => specs.validatePortUpdate({ mac: '02:00:00:00:00:01' }, MAX), 'ERR_INVALID_ARGUMENT', 'mac');
    rejects(() => specs.validatePortUpdate({ vlans: [] }, MAX), 'ERR_INVALID_ARGUMENT', 'vlans');
    rejects(() => specs.validatePortUpdate({ lockedMacs: ['x'] }, MAX), 'ERR_INVALID_MAC', 'lockedMacs[0]');
  });
});

describe('static MAC specs', () => {
  test('normalises and requires unicast', () => {
    assert.deepEqual(specs.validateStaticMacSpec({ switch: 's', mac: '02-AA-00-00-00-01', port: 'p' }), { switch: 's', mac: '02:aa:00:00:00:01', port: 'p' });
    rejects(() => specs.validateStaticMacSpec({ switch: 's', mac: 'ff:ff:ff:ff:ff:ff', port: 'p' }), 'ERR_INVALID_MAC', 'mac');
    rejects(() => specs.validateStaticMacSpec({ switch: 's', mac: '02:00:00:00:00:01' }), 'ERR_INVALID_NAME', 'port');
    rejects(() => specs.validateStaticMacSpec({ mac: '02:00:00:00:00:01', port: 'p' }), 'ERR_INVALID_NAME', 'switch');
    assert.deepEqual(specs.validateStaticMacRef({ switch: 's', mac: '02:AA:00:00:00:01' }), { switch: 's', mac: '02:aa:00:00:00:01' });
    rejects(() => specs.validateStaticMacRef({ switch: 's', mac: 'nope' }), 'ERR_INVALID_MAC', 'mac');
  });
});

// A value of the wrong type is not "required": it was given.
test('an interface or socket of the wrong type says so; a missing one is required', () => {
  const msg = (s: Record<string, unknown>): string => {
    try {
      specs.validatePortSpec(s as never, 9000);
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  };
  assert.match(msg({ name: 'a', type: 'vhostuser', socket: 5, switch: 'x' }), /^socket: must be a string: .* \(got 5\)$/);
  assert.match(msg({ name: 'a', type: 'afpacket', interface: 12, switch: 'x' }), /^interface: must be a string: .* \(got 12\)$/);
  assert.match(msg({ name: 'a', type: 'afpacket', switch: 'x' }), /^interface: is required for this port type: the name of the interface to attach, e\.g\. "veth0"$/);
});

test('a short list of numbers or strings is shown in an error as it was given', () => {
  assert.equal(v.describe([60000, 50000]), '[60000,50000]');
  assert.equal(v.describe([{}]), 'an array');
});
