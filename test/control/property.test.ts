// Property tests of the config/reconcile layer (fast-check), against the
// real engine with pipe ports: random desired states, applied in a random
// order, always reach the same end state as the last one applied alone; and
// an apply that fails at any step (or when the state file is written)
// leaves exactly the previous state, in the engine, in the controller and
// in the state file.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { Dataplane, DataplaneOptions } from '../../src/dataplane';
import { parseConfig } from '../../src/control/config';
import { Controller } from '../../src/control/controller';
import { ControlError } from '../../src/control/errors';
import { createLogger } from '../../src/control/logging';
import { StateStore, WriteFn } from '../../src/control/state';
import { removeDir, tempDir } from './helpers';

const ENGINE: DataplaneOptions = { bufferCount: 2048, hugepages: false, maxPorts: 8, maxSwitches: 8, eventRing: 256 };
const SWITCHES = 4;
const PORTS = 5;
const MACS = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03'];
const PEERS = ['198.18.1.2', '198.18.1.3'];

// ---------------------------------------------------------------- states

const maybe = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined });
const switchArb = fc.record({
  on: fc.boolean(),
  vni: fc.constantFrom(1, 2), // per switch, so VNIs stay unique; a change replaces the switch
  macLimit: maybe(fc.constantFrom(100, 5000)),
  agingSeconds: maybe(fc.constantFrom(60, 300)),
  learning: maybe(fc.boolean()),
  remoteLearning: maybe(fc.boolean()),
});
const portArb = fc.record({
  on: fc.boolean(),
  trunk: fc.boolean(),
  sw: fc.nat(SWITCHES - 1),
  sw2: fc.nat(SWITCHES - 1),
  mac: fc.boolean(), // give the port its own fixed MAC, or let one be generated
  mtu: maybe(fc.constantFrom(1400, 1500)),
  learning: maybe(fc.boolean()),
  flood: maybe(fc.boolean()),
  macLimit: maybe(fc.constantFrom(0, 10)),
  lockedMacs: maybe(fc.constantFrom([], ['02:00:00:00:00:aa'])),
});
const fdbArb = fc.record({ port: fc.nat(PORTS - 1), mac: fc.nat(MACS.length - 1), remote: fc.boolean(), peer: fc.nat(PEERS.length - 1) });
const choicesArb = fc.record({
  switches: fc.tuple(...Array.from({ length: SWITCHES }, () => switchArb)),
  ports: fc.tuple(...Array.from({ length: PORTS }, () => portArb)),
  fdb: fc.array(fdbArb, { maxLength: 4 }),
  uplink: fc.boolean(),
  peers: fc.array(fc.tuple(fc.nat(SWITCHES - 1), fc.nat(PEERS.length - 1)), { maxLength: 3 }),
});
type Choices = typeof choicesArb extends fc.Arbitrary<infer T> ? T : never;
const stateArb = choicesArb.map(toConfig);

// A valid configuration (as YAML text: JSON is YAML) from random choices.
function toConfig(c: Choices): string {
  const switches = c.switches.map((s, i) => {
    const { on, vni, ...mutable } = s;
    return on ? { name: `s${i}`, vni: i * 10 + vni, ...mutable, fdb: [] as unknown[], peers: [] as string[] } : undefined;
  }).filter((s) => s !== undefined);
  const pick = (n: number) => switches[n % switches.length]!.name;
  const ports = switches.length === 0 ? [] : c.ports.map((p, i) => {
    if (!p.on) return undefined;
    const { on, trunk, sw, sw2, mac, ...rest } = p;
    const membership = trunk
      ? { vlans: [{ vlan: 10, switch: pick(sw) }, ...(pick(sw2) === pick(sw) ? [] : [{ vlan: 20, switch: pick(sw2) }])] }
      : { switch: pick(sw) };
    return { name: `p${i}`, type: 'pipe', ...membership, ...(mac ? { mac: `02:00:00:00:01:0${i}` } : {}), ...rest };
  }).filter((p) => p !== undefined);
  const taken = new Set<string>();
  for (const f of c.fdb) {
    const sw = f.remote ? (c.uplink && switches.length > 0 ? switches[f.port % switches.length] : undefined) : undefined;
    if (sw !== undefined) {
      if (taken.has(`${sw.name}/${MACS[f.mac]}`)) continue;
      taken.add(`${sw.name}/${MACS[f.mac]}`);
      sw.fdb.push({ mac: MACS[f.mac], vtep: PEERS[f.peer] });
    } else if (!f.remote && ports.length > 0) {
      const port = ports[f.port % ports.length]!;
      const name = 'switch' in port ? port.switch : port.vlans[0]!.switch;
      if (taken.has(`${name}/${MACS[f.mac]}`)) continue;
      taken.add(`${name}/${MACS[f.mac]}`);
      switches.find((s) => s.name === name)!.fdb.push({ mac: MACS[f.mac], port: port.name });
    }
  }
  if (c.uplink && switches.length > 0) {
    for (const [s, p] of c.peers) {
      const sw = switches[s % switches.length]!;
      if (!sw.peers.includes(PEERS[p]!)) sw.peers.push(PEERS[p]!);
    }
  }
  return JSON.stringify({
    ...(c.uplink ? { uplinks: [{ name: 'up0', type: 'pipe', localIp: '198.18.0.1/24' }] } : {}),
    switches,
    ports,
  });
}

// ---------------------------------------------------------------- harness

interface Rig {
  c: Controller;
  dp: Dataplane;
  store: StateStore;
  fail: { atCall: number; persist: boolean }; // armed failures
}

// The engine's mutating calls: each plan step is exactly one of them.
const MUTATIONS = ['createSwitch', 'updateSwitch', 'deleteSwitch', 'createPort', 'updatePort', 'deletePort', 'addStaticMac', 'addRemoteMac',
  'deleteStaticMac', 'createUplink', 'deleteUplink', 'addPeer', 'deletePeer'] as const;

function rig(dir: string): Rig {
  const dp = new Dataplane(ENGINE);
  dp.start();
  const fail = { atCall: 0, persist: false };
  for (const m of MUTATIONS) {
    const original = (dp[m] as (...a: unknown[]) => Promise<unknown>).bind(dp);
    (dp as unknown as Record<string, unknown>)[m] = async (...args: unknown[]) => {
      if (fail.atCall > 0 && --fail.atCall === 0) throw new Error(`injected failure in ${m}`);
      return original(...args);
    };
  }
  const write: WriteFn = (...a) => (fail.persist ? 0 : fs.writeSync(...a));
  const store = new StateStore(dir, write);
  return { c: new Controller(dp, store, createLogger('silent'), ENGINE), dp, store, fail };
}

// What runs, as the engine and the controller see it. Engine slot ids are
// left out (they differ between two engines), and so are two things that
// depend on the history by design: the MAC of a port whose spec gives none
// (a running port keeps the MAC it has, whether given earlier or generated)
// and fdbCapacity (a switch keeps its table's initial size across macLimit
// updates, rather than being replaced for it).
async function observed(r: Rig, config: string): Promise<unknown> {
  const given = new Set(parseConfig(config).ports.filter((p) => p.spec.mac !== undefined).map((p) => p.spec.name));
  const macOf = (name: string, mac: string | undefined): string | undefined => (given.has(name) ? mac : 'kept or generated');
  const switches = r.dp.switches().map(({ id, fdbCapacity, ...s }) => s);
  const ports = r.dp.ports().map(({ id, ...p }) => ({ ...p, mac: macOf(p.name, p.mac) }));
  const fdb: Record<string, unknown> = {};
  for (const s of switches) fdb[s.name] = (await r.dp.fdb(s.name)).filter((e) => e.static).map((e) => [e.mac, e.port, e.vtep ?? '']).sort();
  const up = r.dp.uplink();
  const m = r.c.current;
  const model = {
    switches: m.switches.map((s) => ({ ...s.spec, uuid: undefined, fdbCapacity: undefined })),
    ports: m.ports.map((p) => ({ ...p.spec, mac: macOf(p.spec.name, p.spec.mac) })),
    uplinks: m.uplinks.map((u) => ({ ...u.spec, mac: undefined })),
    peers: m.peers.map((p) => p.spec),
    fdb: m.fdb.map((f) => f.spec),
  };
  return { switches, ports, fdb, uplink: up === undefined ? null : { ...up, id: undefined, mac: undefined }, model };
}

// Everything, generated MACs and UUIDs included (engine slot ids aside: a
// port deleted and re-created by a rollback may get another free slot):
// a failed apply changes nothing at all.
async function exact(r: Rig): Promise<unknown> {
  const switches = r.dp.switches().map((s) => ({ ...s, id: undefined }));
  const up = r.dp.uplink();
  return {
    model: r.c.current,
    ports: r.dp.ports().map((p) => ({ ...p, id: undefined })),
    switches,
    uplink: up === undefined ? null : { ...up, id: undefined },
    fdb: await Promise.all(switches.map((s) => r.dp.fdb(s.name))),
    generation: r.store.generation,
    file: fs.readFileSync(r.store.file, 'utf8'),
  };
}

const EMPTY = '{}';

describe('reconcile properties (real engine, pipe ports)', () => {
  let dir: string;
  let a: Rig;
  let b: Rig;
  before(() => {
    dir = tempDir();
    a = rig(path.join(dir, 'a'));
    b = rig(path.join(dir, 'b'));
  });
  after(() => {
    a.dp.close();
    b.dp.close();
    removeDir(dir);
  });

  test('any order of desired states ends where the last one alone ends; applying it again is a no-op', async () => {
    await fc.assert(fc.asyncProperty(fc.array(stateArb, { minLength: 1, maxLength: 3 }), stateArb, async (states, last) => {
      await a.c.apply(parseConfig(EMPTY));
      await b.c.apply(parseConfig(EMPTY));
      for (const s of states) await a.c.apply(parseConfig(s));
      await a.c.apply(parseConfig(last));
      await b.c.apply(parseConfig(last));
      assert.deepEqual(await observed(a, last), await observed(b, last));
      assert.deepEqual((await a.c.apply(parseConfig(last))).steps, [], 'the same state again plans nothing');
      assert.deepEqual(new StateStore(a.store.dir).load(), a.c.current, 'the state file holds what runs');
    }), { numRuns: 25 });
  });

  test('an apply that fails at any step, or when the state file is written, leaves the previous state exactly', async () => {
    await fc.assert(fc.asyncProperty(stateArb, stateArb, fc.nat(), async (from, to, k) => {
      await a.c.apply(parseConfig(EMPTY));
      await a.c.apply(parseConfig(from));
      a.store.save(a.c.current); // a state file even when `from` is empty
      const n = (await a.c.apply(parseConfig(to), { dryRun: true })).steps.length;
      fc.pre(n > 0);
      const before = await exact(a);
      const at = k % (n + 1); // 0..n-1: that step; n: the state file
      if (at < n) a.fail.atCall = at + 1;
      else a.fail.persist = true;
      try {
        await assert.rejects(a.c.apply(parseConfig(to)), (err: unknown) => {
          assert.ok(err instanceof ControlError);
          assert.equal(err.code, at < n ? 'ERR_INTERNAL' : 'ERR_PERSIST_FAILED', err.message);
          if (at < n) assert.match(err.message, /injected failure/);
          return true;
        });
      } finally {
        a.fail.atCall = 0;
        a.fail.persist = false;
      }
      assert.deepEqual(await exact(a), before);
      // And the same apply, not failing, then succeeds.
      await a.c.apply(parseConfig(to));
      assert.deepEqual((await a.c.apply(parseConfig(to))).steps, []);
    }), { numRuns: 25 });
  });
});
