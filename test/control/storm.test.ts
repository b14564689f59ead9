// A bounded concurrent client storm: 20 clients x 25 mutations against one
// vpcd. Every acknowledged change must be in the running state, in the state
// file, and still there after kill -9 and a restart; nothing else may be.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { ApiError, Client } from '../../src/control/client';
import { StateStore } from '../../src/control/state';
import { removeDir, spawnVpcd } from './helpers';

const CLIENTS = 20;
const MUTATIONS = 25;

interface Expect {
  switches: Map<string, number>; // name -> vni
  ports: Map<string, { switch: string; mtu?: number }>;
}

async function client(c: Client, i: number, expect: Expect): Promise<number> {
  let acked = 0;
  const sw = `s${i}`;
  for (let j = 0; j < MUTATIONS; j++) {
    if (j === 0) {
      await c.call('POST', '/v1/switches', { name: sw, vni: 2000 + i });
      expect.switches.set(sw, 2000 + i);
    } else if (j === 1) {
      // Every client creates the same shared switch: one creates, the others
      // get "exists (same spec)", nobody fails.
      await c.call('POST', '/v1/switches', { name: 'shared', vni: 9999 });
      expect.switches.set('shared', 9999);
    } else if (j < 16) {
      const name = `p${i}-${j}`;
      await c.call('POST', '/v1/ports', { name, type: 'pipe', switch: j % 3 === 0 ? 'shared' : sw });
      expect.ports.set(name, { switch: j % 3 === 0 ? 'shared' : sw });
    } else if (j < 21) {
      const name = `p${i}-${j - 14}`;
      await c.call('PATCH', `/v1/ports/${name}`, { mtu: 1000 + j });
      expect.ports.get(name)!.mtu = 1000 + j;
    } else {
      const name = `p${i}-${j - 19}`;
      await c.call('DELETE', `/v1/ports/${name}`);
      expect.ports.delete(name);
    }
    acked++;
  }
  // A request that must fail leaves nothing behind.
  await assert.rejects(c.call('POST', '/v1/ports', { name: `bad${i}`, type: 'pipe', switch: 'nope' }), (e: unknown) => e instanceof ApiError && e.status === 400);
  return acked;
}

function check(state: any, expect: Expect): void {
  assert.deepEqual(
    state.switches.map((s: any) => [s.spec.name, s.spec.vni]).sort(),
    [...expect.switches.entries()].sort(),
  );
  const ports = new Map<string, any>(state.ports.map((p: any) => [p.spec.name, p.spec]));
  assert.equal(ports.size, expect.ports.size);
  for (const [name, e] of expect.ports) {
    const p = ports.get(name);
    assert.ok(p !== undefined, `acknowledged port ${name} missing`);
    assert.equal(p.switch, e.switch, name);
    assert.equal(p.mtu, e.mtu, name);
  }
}

test(`a storm of ${CLIENTS} clients x ${MUTATIONS} mutations loses nothing and corrupts nothing`, async () => {
  const d = await spawnVpcd({ config: 'engine: { bufferCount: 8192, hugepages: false, maxPorts: 512, maxSwitches: 64, eventRing: 1024 }\n' });
  try {
    const expect: Expect = { switches: new Map(), ports: new Map() };
    const t0 = Date.now();
    const acks = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(new Client(d.socket), i, expect)));
    const ms = Date.now() - t0;
    assert.equal(acks.reduce((a, b) => a + b, 0), CLIENTS * MUTATIONS);
    console.log(`# storm: ${CLIENTS * MUTATIONS} mutations in ${ms} ms (${((CLIENTS * MUTATIONS) / (ms / 1000)).toFixed(0)}/s, each persisted)`);

    const live = await d.client.call<any>('GET', '/v1/state');
    check(live.state, expect);
    // The engine agrees with the model.
    const ports = await d.client.call<any>('GET', '/v1/ports');
    assert.equal(ports.ports.length, expect.ports.size);
    // The state file is valid (checksum, schema) and says the same.
    const stored = new StateStore(path.join(d.dir, 'state')).load()!;
    check(stored, expect);
    // One state write per effective change (the shared switch created
    // once), and one at the start for the config's engine options.
    assert.equal(live.generation, 1 + CLIENTS * MUTATIONS - (CLIENTS - 1), 'one state write per effective change');

    await d.kill9();
    const d2 = await spawnVpcd({ dir: d.dir, noConfig: true });
    try {
      const again = await d2.client.call<any>('GET', '/v1/state');
      check(again.state, expect);
      assert.deepEqual(again.state, live.state);
    } finally {
      await d2.stop();
    }
  } finally {
    await d.kill9();
    removeDir(d.dir);
  }
});
