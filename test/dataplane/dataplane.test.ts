// End-to-end tests of Dataplane through the real addon
// (build/Release/vpc_native.node): configuration errors, and frames moving
// between pipe ports. Counter and drop names are checked against schema()
// before they are used.

import fs from 'node:fs';
import os from 'node:os';
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Dataplane, DataplaneError, DataplaneEvent, DataplaneStats, PipeEnd } from '../../src/dataplane/index';
import { BROADCAST, ETHERTYPE_TEST, frame, mac, parseFrame, TPID_8021Q } from './frames';

const WAIT_MS = 2000;
const QUIET_MS = 50;

function newDataplane(): Dataplane {
  const dp = new Dataplane({ hugepages: false, bufferCount: 8192, maxPorts: 64, maxSwitches: 64, eventRing: 4096 });
  dp.start();
  return dp;
}

async function withDataplane(fn: (dp: Dataplane) => Promise<void>): Promise<void> {
  const dp = newDataplane();
  try {
    await fn(dp);
  } finally {
    dp.close();
  }
}

async function rejectsCode(p: Promise<unknown> | (() => unknown), code: string, field?: string): Promise<DataplaneError> {
  let caught: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof DataplaneError, `expected ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (field !== undefined) assert.equal(caught.field, field, caught.message);
  return caught;
}

// Retries `check` until it stops throwing (counters and events arrive
// asynchronously), then returns its value.
async function untilPasses<T>(check: () => T | Promise<T>, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

async function expectFrames(end: PipeEnd, expected: Buffer[]): Promise<void> {
  const got = await end.waitFor(expected.length, WAIT_MS);
  assert.deepEqual(got, expected, `frames received on ${end.port}`);
}

// After a short pause, none of `ends` has received anything.
async function expectSilence(...ends: PipeEnd[]): Promise<void> {
  await new Promise((r) => setTimeout(r, QUIET_MS));
  for (const end of ends) assert.deepEqual(end.receive(), [], `no frames expected on ${end.port}`);
}

function snapshot(dp: Dataplane): unknown {
  return { switches: dp.switches(), ports: dp.ports() };
}

function requireNames(dp: Dataplane, kind: 'port' | 'switch' | 'drop', names: string[]): void {
  const have = new Set(dp.schema()[kind].map((c) => c.name));
  for (const n of names) assert.ok(have.has(n), `schema().${kind} has no "${n}" (has: ${[...have].join(', ')})`);
}

// The engine counts a drop on the ingress port and, when the frame was
// already classified into a switch, on that switch too.
function portDrops(st: DataplaneStats, port: string, reason: string): number {
  return st.ports[port]?.drops[reason] ?? 0;
}

function switchDrops(st: DataplaneStats, sw: string, reason: string): number {
  return st.switches[sw]?.drops[reason] ?? 0;
}

// Same frames, in any order (frames from different ingress ports).
async function expectFramesAnyOrder(end: PipeEnd, expected: Buffer[]): Promise<void> {
  const got = await end.waitFor(expected.length, WAIT_MS);
  assert.deepEqual([...got].sort(Buffer.compare), [...expected].sort(Buffer.compare), `frames received on ${end.port}`);
}

function collectEvents(dp: Dataplane): DataplaneEvent[] {
  const events: DataplaneEvent[] = [];
  dp.on('event', (e) => events.push(e));
  return events;
}

describe('configuration errors (real engine)', () => {
  test('every invalid call is rejected by code and leaves the state unchanged', () =>
    withDataplane(async (dp) => {
      await dp.createSwitch({ name: 's1', vni: 1001 });
      await dp.createSwitch({ name: 's2', vni: 1002 });
      await dp.createPort({ name: 'a', type: 'pipe', switch: 's1' });
      const before = snapshot(dp);

      await rejectsCode(dp.createPort({ name: 'x', type: 'pipe', switch: 's1', mac: '02:00:00:00:00:zz' }), 'ERR_INVALID_MAC', 'mac');
      await rejectsCode(dp.createPort({ name: 'x', type: 'pipe', switch: 's1', mac: '01:00:5e:00:00:01' }), 'ERR_INVALID_MAC', 'mac');
      await rejectsCode(dp.createPort({ name: 'x', type: 'pipe', switch: 's1', lockedMacs: ['ff:ff:ff:ff:ff:ff'] }), 'ERR_INVALID_MAC', 'lockedMacs[0]');
      await rejectsCode(dp.createSwitch({ name: 's3', vni: 0 }), 'ERR_INVALID_VNI', 'vni');
      await rejectsCode(dp.createSwitch({ name: 's3', vni: 16777216 }), 'ERR_INVALID_VNI', 'vni');
      await rejectsCode(dp.createSwitch({ name: 's1', vni: 1003 }), 'ERR_DUPLICATE_NAME', 'name');
      await rejectsCode(dp.createSwitch({ name: 's3', vni: 1001 }), 'ERR_DUPLICATE_VNI', 'vni');
      await rejectsCode(dp.createPort({ name: 'a', type: 'pipe', switch: 's2' }), 'ERR_DUPLICATE_NAME', 'name');
      await rejectsCode(dp.deletePort('nope'), 'ERR_UNKNOWN_PORT', 'name');
      await rejectsCode(dp.updatePort('nope', { mtu: 1400 }), 'ERR_UNKNOWN_PORT', 'name');
      await rejectsCode(() => dp.pipe('nope'), 'ERR_UNKNOWN_PORT', 'port');
      await rejectsCode(dp.createPort({ name: 'x', type: 'pipe', switch: 'nope' }), 'ERR_UNKNOWN_SWITCH', 'switch');
      await rejectsCode(dp.createPort({ name: 'x', type: 'pipe', vlans: [{ vlan: 5, switch: 'nope' }] }), 'ERR_UNKNOWN_SWITCH', 'vlans[0].switch');
      await rejectsCode(dp.deleteSwitch('nope'), 'ERR_UNKNOWN_SWITCH', 'name');
      await rejectsCode(dp.fdb('nope'), 'ERR_UNKNOWN_SWITCH', 'switch');
      await rejectsCode(dp.createPort({ name: 'x', type: 'pipe', vlans: [{ vlan: 0, switch: 's1' }] }), 'ERR_INVALID_VLAN', 'vlans[0].vlan');
      await rejectsCode(dp.createPort({ name: 'x', type: 'pipe', vlans: [{ vlan: 4095, switch: 's1' }] }), 'ERR_INVALID_VLAN', 'vlans[0].vlan');
      await rejectsCode(
        dp.createPort({ name: 'x', type: 'pipe', vlans: [{ vlan: 10, switch: 's1' }, { vlan: 10, switch: 's2' }] }),
        'ERR_TRUNK_DUPLICATE_VLAN',
        'vlans[1].vlan',
      );
      await rejectsCode(
        dp.createPort({ name: 'x', type: 'pipe', vlans: [{ vlan: 10, switch: 's1' }, { vlan: 20, switch: 's1' }] }),
        'ERR_TRUNK_DUPLICATE_SWITCH',
        'vlans[1].switch',
      );
      await rejectsCode(dp.createPort({ name: 'x', type: 'pipe', switch: 's1', mtu: 60000 }), 'ERR_INVALID_ARGUMENT', 'mtu');
      await rejectsCode(dp.deleteSwitch('s1'), 'ERR_SWITCH_IN_USE', 'name');

      assert.deepEqual(snapshot(dp), before);
      // and the engine agrees: the failed creates left nothing behind
      assert.deepEqual(Object.keys(dp.stats().ports).sort(), ['a']);
      assert.deepEqual(Object.keys(dp.stats().switches).sort(), ['s1', 's2']);
    }));

  test('concurrent creates of one name: one wins, the other gets ERR_DUPLICATE_NAME', () =>
    withDataplane(async (dp) => {
      const [first, second] = await Promise.allSettled([dp.createSwitch({ name: 's', vni: 1 }), dp.createSwitch({ name: 's', vni: 2 })]);
      assert.equal(first.status, 'fulfilled');
      assert.equal(second.status, 'rejected');
      assert.equal(((second as PromiseRejectedResult).reason as DataplaneError).code, 'ERR_DUPLICATE_NAME');
      assert.deepEqual(dp.switches().map((s) => [s.name, s.vni]), [['s', 1]]);
    }));

  test('double delete is safe', () =>
    withDataplane(async (dp) => {
      await dp.createSwitch({ name: 's', vni: 1 });
      await dp.createPort({ name: 'p', type: 'pipe', switch: 's' });
      const dels = await Promise.allSettled([dp.deletePort('p'), dp.deletePort('p')]);
      assert.deepEqual(dels.map((r) => r.status), ['fulfilled', 'rejected']);
      assert.equal(((dels[1] as PromiseRejectedResult).reason as DataplaneError).code, 'ERR_UNKNOWN_PORT');
      await rejectsCode(dp.deletePort('p'), 'ERR_UNKNOWN_PORT');
      await dp.deleteSwitch('s');
      await rejectsCode(dp.deleteSwitch('s'), 'ERR_UNKNOWN_SWITCH');
      assert.deepEqual(snapshot(dp), { switches: [], ports: [] });
      // the name and the VNI can be used again
      await dp.createSwitch({ name: 's', vni: 1 });
      await dp.createPort({ name: 'p', type: 'pipe', switch: 's' });
    }));

  test('configuration can be applied before start()', async () => {
    const dp = new Dataplane({ hugepages: false, bufferCount: 4096, maxPorts: 8, maxSwitches: 8, eventRing: 1024 });
    try {
      await dp.createSwitch({ name: 's', vni: 1 });
      await dp.createPort({ name: 'a', type: 'pipe', switch: 's' });
      await dp.createPort({ name: 'b', type: 'pipe', switch: 's' });
      dp.start();
      const f = frame({ dst: BROADCAST, src: mac(1) });
      dp.pipe('a').send([f]);
      await expectFrames(dp.pipe('b'), [f]);
    } finally {
      dp.close();
    }
  });

  // A pinned engine has its CPU to itself: the process's other threads
  // (Node's main thread, its workers, the addon's submitter) keep off it
  // while the engine runs, and get it back when it stops or closes.
  test('a pinned engine keeps the process\'s other threads off its CPU while it runs', (t) => {
    const cpus = (tid: string | number): string =>
      /^Cpus_allowed_list:\s*(\S+)$/m.exec(fs.readFileSync(`/proc/self/task/${tid}/status`, 'utf8'))?.[1] ?? '?';
    const threads = (): { tid: string; name: string }[] =>
      fs.readdirSync('/proc/self/task').map((tid) => ({ tid, name: fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() }));
    const all = cpus(process.pid);
    if (os.availableParallelism() < 2 || all !== `0-${os.availableParallelism() - 1}`) {
      t.skip(`needs two or more CPUs, all allowed (this process: ${all})`);
      return;
    }
    const rest = os.availableParallelism() === 2 ? '1' : `1-${os.availableParallelism() - 1}`;
    const dp = new Dataplane({ hugepages: false, bufferCount: 4096, maxPorts: 8, maxSwitches: 8, eventRing: 1024, cpu: 0 });
    try {
      dp.start();
      // The engine thread names and pins itself as it begins.
      let engine: { tid: string; name: string } | undefined;
      for (let i = 0; i < 200 && !(engine && cpus(engine.tid) === '0'); i++) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        engine = threads().find((x) => x.name === 'vpc-engine');
      }
      assert.ok(engine, JSON.stringify(threads()));
      assert.equal(cpus(engine.tid), '0', 'the engine on its CPU');
      for (const x of threads()) if (x.name !== 'vpc-engine') assert.equal(cpus(x.tid), rest, `${x.name} (${x.tid}) off the engine's CPU`);
      dp.stop();
      assert.equal(cpus(process.pid), all, 'the CPU given back when the engine stops');
      dp.start();
      assert.equal(cpus(process.pid), rest);
    } finally {
      dp.close();
    }
    assert.equal(cpus(process.pid), all, 'and when it closes');
  });

  test('after close every call fails with ERR_CLOSED', async () => {
    const dp = newDataplane();
    await dp.createSwitch({ name: 's', vni: 1 });
    await dp.createPort({ name: 'p', type: 'pipe', switch: 's' });
    const end = dp.pipe('p');
    dp.close();
    dp.close();
    assert.equal(dp.running, false);
    await rejectsCode(dp.createSwitch({ name: 't', vni: 2 }), 'ERR_CLOSED');
    await rejectsCode(dp.createPort({ name: 'q', type: 'pipe', switch: 's' }), 'ERR_CLOSED');
    await rejectsCode(dp.deletePort('p'), 'ERR_CLOSED');
    await rejectsCode(dp.fdb('s'), 'ERR_CLOSED');
    await rejectsCode(() => dp.stats(), 'ERR_CLOSED');
    await rejectsCode(() => dp.switches(), 'ERR_CLOSED');
    await rejectsCode(() => dp.pipe('p'), 'ERR_CLOSED');
    await rejectsCode(() => end.send([frame({ dst: BROADCAST, src: mac(1) })]), 'ERR_CLOSED');
    await rejectsCode(() => end.receive(), 'ERR_CLOSED');
  });
});

describe('forwarding (real engine)', () => {
  test('learning, unicast, counters and learned events with exact values', () =>
    withDataplane(async (dp) => {
      requireNames(dp, 'port', ['rx_packets', 'rx_bytes', 'tx_packets', 'tx_bytes']);
      requireNames(dp, 'switch', ['fdb_entries', 'learned', 'moved', 'flooded']);
      const events = collectEvents(dp);
      await dp.createSwitch({ name: 's1', vni: 1 });
      await dp.createSwitch({ name: 's2', vni: 2 });
      await dp.createPort({ name: 'a', type: 'pipe', switch: 's1' });
      await dp.createPort({ name: 'b', type: 'pipe', switch: 's1' });
      await dp.createPort({ name: 'c', type: 'pipe', switch: 's2' });
      const [a, b, c] = ['a', 'b', 'c'].map((n) => dp.pipe(n)) as [PipeEnd, PipeEnd, PipeEnd];
      const A = mac(0xa), B = mac(0xb);

      // 1: unknown unicast from a is flooded (to b only: a 2-port switch)
      const f1 = frame({ dst: B, src: A, payload: 'one' });
      assert.equal(a.send([f1]), 1);
      await expectFrames(b, [f1]);
      // 2: b answers; A is known, so only a gets it
      const f2 = frame({ dst: A, src: B, payload: 'two' });
      assert.equal(b.send([f2]), 1);
      await expectFrames(a, [f2]);
      // 3: B is known now: straight to b
      const f3 = frame({ dst: B, src: A, payload: 'three' });
      assert.equal(a.send([f3]), 1);
      await expectFrames(b, [f3]);
      await expectSilence(a, b, c);

      const st = await untilPasses(() => {
        const s = dp.stats();
        assert.equal(s.ports.b!.counters.tx_packets, 2);
        assert.equal(s.switches.s1!.counters.learned, 2);
        return s;
      });
      assert.equal(st.ports.a!.counters.rx_packets, 2);
      assert.equal(st.ports.a!.counters.rx_bytes, 120);
      assert.equal(st.ports.a!.counters.tx_packets, 1);
      assert.equal(st.ports.a!.counters.tx_bytes, 60);
      assert.equal(st.ports.b!.counters.rx_packets, 1);
      assert.equal(st.ports.b!.counters.rx_bytes, 60);
      assert.equal(st.ports.b!.counters.tx_bytes, 120);
      assert.equal(st.ports.c!.counters.rx_packets, 0);
      assert.equal(st.ports.c!.counters.tx_packets, 0);
      assert.equal(st.switches.s1!.counters.flooded, 1);
      assert.equal(st.switches.s1!.counters.moved, 0);
      assert.equal(st.switches.s1!.counters.fdb_entries, 2);
      assert.equal(st.switches.s2!.counters.learned, 0);
      assert.equal(st.switches.s2!.counters.flooded, 0);
      assert.equal(st.switches.s2!.counters.fdb_entries, 0);

      await untilPasses(() => assert.equal(events.filter((e) => e.type === 'learned').length, 2));
      await new Promise((r) => setTimeout(r, QUIET_MS));
      assert.deepEqual(events.filter((e) => e.type === 'learned'), [
        { type: 'learned', switch: 's1', port: 'a', vlan: 0, mac: A },
        { type: 'learned', switch: 's1', port: 'b', vlan: 0, mac: B },
      ]);

      const fdb = await dp.fdb('s1');
      assert.deepEqual(fdb.map((e) => [e.mac, e.port, e.vlan, e.static]), [[A, 'a', 0, false], [B, 'b', 0, false]]);
      assert.ok(fdb.every((e) => e.ageSeconds >= 0 && e.ageSeconds < 60));
      assert.deepEqual(await dp.fdb('s2'), []);
    }));

  test('broadcast reaches every other member of its switch, never the ingress port or another switch', () =>
    withDataplane(async (dp) => {
      await dp.createSwitch({ name: 's1', vni: 1 });
      await dp.createSwitch({ name: 's2', vni: 2 });
      for (const n of ['a', 'b', 'd']) await dp.createPort({ name: n, type: 'pipe', switch: 's1' });
      for (const n of ['c', 'e']) await dp.createPort({ name: n, type: 'pipe', switch: 's2' });
      const [a, b, d, c, e] = ['a', 'b', 'd', 'c', 'e'].map((n) => dp.pipe(n)) as [PipeEnd, PipeEnd, PipeEnd, PipeEnd, PipeEnd];

      const bc = frame({ dst: BROADCAST, src: mac(1), payload: 'hello all' });
      assert.equal(a.send([bc]), 1);
      await expectFrames(b, [bc]);
      await expectFrames(d, [bc]);
      await expectSilence(a, b, d, c, e);

      // and the other way round: s2's broadcast stays in s2
      const bc2 = frame({ dst: BROADCAST, src: mac(2) });
      assert.equal(c.send([bc2]), 1);
      await expectFrames(e, [bc2]);
      await expectSilence(a, b, d, c, e);

      // after learning, unicast goes to the one right port
      const fromD = frame({ dst: BROADCAST, src: mac(0xd) });
      const fromB = frame({ dst: BROADCAST, src: mac(0xb) });
      d.send([fromD]);
      b.send([fromB]);
      await expectFramesAnyOrder(a, [fromD, fromB]);
      await expectFrames(b, [fromD]);
      await expectFrames(d, [fromB]);
      await untilPasses(async () => assert.equal((await dp.fdb('s1')).length, 3));
      const uni = frame({ dst: mac(0xb), src: mac(1), payload: 'for b' });
      a.send([uni]);
      await expectFrames(b, [uni]);
      await expectSilence(a, b, d, c, e);
    }));

  test('a MAC seen on another port moves, with a moved event', () =>
    withDataplane(async (dp) => {
      const events = collectEvents(dp);
      await dp.createSwitch({ name: 's', vni: 7 });
      for (const n of ['a', 'b', 'c']) await dp.createPort({ name: n, type: 'pipe', switch: 's' });
      const [a, b, c] = ['a', 'b', 'c'].map((n) => dp.pipe(n)) as [PipeEnd, PipeEnd, PipeEnd];
      const M = mac(0x77);

      a.send([frame({ dst: BROADCAST, src: M })]);
      await b.waitFor(1, WAIT_MS);
      await c.waitFor(1, WAIT_MS);
      b.send([frame({ dst: BROADCAST, src: M, payload: 'moved' })]);
      await a.waitFor(1, WAIT_MS);
      await c.waitFor(1, WAIT_MS);

      const moved = await untilPasses(() => {
        const m = events.filter((e) => e.type === 'moved');
        assert.equal(m.length, 1);
        return m[0];
      });
      assert.deepEqual(moved, { type: 'moved', switch: 's', port: 'b', oldPort: 'a', vlan: 0, oldVlan: 0, mac: M });
      assert.deepEqual(events.filter((e) => e.type === 'learned'), [{ type: 'learned', switch: 's', port: 'a', vlan: 0, mac: M }]);
      await untilPasses(() => assert.equal(dp.stats().switches.s!.counters.moved, 1));
      assert.deepEqual((await dp.fdb('s')).map((e) => [e.mac, e.port]), [[M, 'b']]);

      // unicast to M now goes to b only
      const f = frame({ dst: M, src: mac(0xc) });
      c.send([f]);
      await expectFrames(b, [f]);
      await expectSilence(a, b, c);
    }));

  test('static MACs: add and delete are visible in fdb() and steer unicast', () =>
    withDataplane(async (dp) => {
      await dp.createSwitch({ name: 's', vni: 3 });
      for (const n of ['a', 'b', 'c']) await dp.createPort({ name: n, type: 'pipe', switch: 's' });
      const [a, b, c] = ['a', 'b', 'c'].map((n) => dp.pipe(n)) as [PipeEnd, PipeEnd, PipeEnd];
      const S = mac(0x55);

      await dp.addStaticMac({ switch: 's', mac: '02-00-00-00-00-55', port: 'c' });
      assert.deepEqual(await dp.fdb('s'), [{ mac: S, port: 'c', vlan: 0, static: true, ageSeconds: 0 }]);
      const f = frame({ dst: S, src: mac(0xa) });
      a.send([f]);
      await expectFrames(c, [f]);
      await expectSilence(a, b, c);

      await dp.addStaticMac({ switch: 's', mac: S, port: 'c' }); // the same entry again changes nothing
      await rejectsCode(dp.addStaticMac({ switch: 's', mac: S, port: 'a' }), 'ERR_DUPLICATE_MAC', 'mac');
      await rejectsCode(dp.addStaticMac({ switch: 's', mac: 'ff:ff:ff:ff:ff:ff', port: 'c' }), 'ERR_INVALID_MAC', 'mac');
      await rejectsCode(dp.addStaticMac({ switch: 's', mac: S, port: 'nope' }), 'ERR_UNKNOWN_PORT', 'port');
      // a's source was learned; a flush removes it and keeps the static entry
      await untilPasses(async () => assert.equal((await dp.fdb('s')).length, 2));
      assert.equal(await dp.flushFdb('s'), 1);
      assert.deepEqual(await dp.fdb('s'), [{ mac: S, port: 'c', vlan: 0, static: true, ageSeconds: 0 }]);
      await dp.deleteStaticMac({ switch: 's', mac: S });
      assert.deepEqual((await dp.fdb('s')).filter((e) => e.static), []);
      await rejectsCode(dp.deleteStaticMac({ switch: 's', mac: S }), 'ERR_UNKNOWN_MAC', 'mac');
    }));

  test('trunk: VLAN 10 maps to the access port of its switch, untagged; replies come back tagged', () =>
    withDataplane(async (dp) => {
      requireNames(dp, 'drop', ['vlan_not_member']);
      await dp.createSwitch({ name: 'v10', vni: 10010 });
      await dp.createSwitch({ name: 'v20', vni: 10020 });
      await dp.createPort({ name: 'acc10', type: 'pipe', switch: 'v10' });
      await dp.createPort({ name: 'acc20', type: 'pipe', switch: 'v20' });
      await dp.createPort({ name: 't', type: 'pipe', vlans: [{ vlan: 10, switch: 'v10' }, { vlan: 20, switch: 'v20' }] });
      const [acc10, acc20, t] = ['acc10', 'acc20', 't'].map((n) => dp.pipe(n)) as [PipeEnd, PipeEnd, PipeEnd];
      const T = mac(0x10), H10 = mac(0x1010);

      // tagged broadcast on VLAN 10 -> acc10, untagged; acc20 sees nothing
      const tagged = frame({ dst: BROADCAST, src: T, vlan: 10, payload: 'from trunk' });
      assert.equal(tagged.length, 64);
      t.send([tagged]);
      await expectFrames(acc10, [frame({ dst: BROADCAST, src: T, payload: 'from trunk' })]);
      await expectSilence(acc10, acc20, t);

      // acc10 -> T (learned on the trunk, VLAN 10): arrives tagged with VLAN 10
      const reply = frame({ dst: T, src: H10, payload: 'reply' });
      acc10.send([reply]);
      const [out] = await t.waitFor(1, WAIT_MS);
      assert.ok(out, 'trunk received the reply');
      assert.equal(out.readUInt16BE(12), TPID_8021Q);
      assert.equal(out.readUInt16BE(14), 10); // PCP 0, DEI 0, VID 10
      assert.equal(out.readUInt16BE(16), ETHERTYPE_TEST);
      assert.deepEqual(out, frame({ dst: T, src: H10, vlan: 10, payload: 'reply' }));
      const parsed = parseFrame(out);
      assert.equal(parsed.vlan, 10);
      assert.equal(parsed.src, H10);
      await expectSilence(acc10, acc20, t);

      const fdb = await dp.fdb('v10');
      // T = ...:00:10 sorts before H10 = ...:10:10
      assert.deepEqual(fdb.map((e) => [e.mac, e.port, e.vlan]), [[T, 't', 10], [H10, 'acc10', 0]]);

      // VLAN 20 goes to v20; an unmapped VLAN is dropped and counted
      const on20 = frame({ dst: BROADCAST, src: T, vlan: 20 });
      t.send([on20]);
      await expectFrames(acc20, [frame({ dst: BROADCAST, src: T })]);
      t.send([frame({ dst: BROADCAST, src: T, vlan: 30 })]);
      await expectSilence(acc10, acc20, t);
      await untilPasses(() => assert.equal(portDrops(dp.stats(), 't', 'vlan_not_member'), 1));
      // VLAN 30 belongs to no switch, so no switch counts it
      assert.equal(switchDrops(dp.stats(), 'v10', 'vlan_not_member') + switchDrops(dp.stats(), 'v20', 'vlan_not_member'), 0);
    }));

  test('port security: only locked source MACs pass; others are counted as port_security', () =>
    withDataplane(async (dp) => {
      requireNames(dp, 'drop', ['port_security']);
      const P = mac(0x50), X = mac(0x58);
      await dp.createSwitch({ name: 's', vni: 4 });
      await dp.createPort({ name: 'p', type: 'pipe', switch: 's', lockedMacs: [P] });
      await dp.createPort({ name: 'q', type: 'pipe', switch: 's' });
      const [p, q] = ['p', 'q'].map((n) => dp.pipe(n)) as [PipeEnd, PipeEnd];

      p.send([frame({ dst: BROADCAST, src: X, payload: 'spoofed' })]);
      await untilPasses(() => assert.equal(portDrops(dp.stats(), 'p', 'port_security'), 1));
      assert.equal(switchDrops(dp.stats(), 's', 'port_security'), 1);
      assert.equal(portDrops(dp.stats(), 'q', 'port_security'), 0);
      await expectSilence(p, q);
      assert.deepEqual(await dp.fdb('s'), [], 'a dropped source is not learned');

      const ok = frame({ dst: BROADCAST, src: P, payload: 'legit' });
      p.send([ok]);
      await expectFrames(q, [ok]);
      await expectSilence(p, q);
      assert.equal(portDrops(dp.stats(), 'p', 'port_security'), 1);

      // changing the lock at run time takes effect
      await dp.updatePort('p', { lockedMacs: [X] });
      p.send([frame({ dst: BROADCAST, src: P })]);
      await untilPasses(() => assert.equal(portDrops(dp.stats(), 'p', 'port_security'), 2));
      await expectSilence(p, q);
    }));

  test('close() while frames and commands are in flight is safe', async () => {
    const dp = newDataplane();
    await dp.createSwitch({ name: 's', vni: 1 });
    await dp.createPort({ name: 'a', type: 'pipe', switch: 's' });
    await dp.createPort({ name: 'b', type: 'pipe', switch: 's' });
    const a = dp.pipe('a');
    const burst = Array.from({ length: 256 }, (_, i) => frame({ dst: BROADCAST, src: mac(1), payload: `n${i}` }));
    let accepted = 0;
    for (let i = 0; i < 4; i++) accepted += a.send(burst);
    assert.ok(accepted > 0);
    const pending = dp.createSwitch({ name: 't', vni: 2 });
    const waiting = dp.pipe('b').waitFor(100000, 5000);
    dp.close();
    dp.close();
    const outcome = await pending.then(
      () => 'resolved',
      (err: unknown) => (err instanceof DataplaneError ? err.code : String(err)),
    );
    assert.ok(outcome === 'resolved' || outcome === 'ERR_CLOSED', outcome);
    await rejectsCode(waiting, 'ERR_CLOSED');
    await rejectsCode(() => a.send(burst), 'ERR_CLOSED');
    assert.equal(dp.running, false);
  });
});
