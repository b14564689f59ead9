// The EVPN sync against a real engine (in-process, pipe ports): 10,000
// received type-2 routes become 10,000 FDB entries of kind evpn while frames
// keep flowing between two local ports, and withdrawing them removes them.
// Reports the time, the longest a probe frame waited and the engine's longest
// iteration (no timed assertions: the machine is shared).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Dataplane } from '../../src/dataplane';
import { resolveBgp } from '../../src/control/evpn/config';
import { EvpnDataplane, EvpnSync } from '../../src/control/evpn/evpn';
import type { BgpPeerStatus, BgpSpeakerApi } from '../../src/control/evpn/gobgp';
import { autoRd, autoRouteTarget, EvpnRoute, ReceivedRoute } from '../../src/control/evpn/routes';
import { createLogger } from '../../src/control/logging';
import { frameHex } from '../control/helpers';

const N = 10_000;

class Speaker implements BgpSpeakerApi {
  push?: (r: ReceivedRoute[]) => void;
  async updateRoutes(_a: EvpnRoute[], _w: EvpnRoute[]): Promise<void> {}
  async listRoutes(): Promise<ReceivedRoute[]> {
    return [];
  }
  async listPeers(): Promise<BgpPeerStatus[]> {
    return [];
  }
  watch(onRoutes: (r: ReceivedRoute[]) => void): { cancel(): void } {
    this.push = onRoutes;
    return { cancel: () => undefined };
  }
  close(): void {}
}

function mac(i: number): string {
  return `02:00:01:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
}

function route(i: number, withdraw = false): ReceivedRoute {
  const vtep = `198.18.0.${20 + (i % 4)}`;
  return { route: { type: 2, rd: autoRd(vtep, 1001), ethernetTag: 0, mac: mac(i), vni: 1001, nextHop: vtep, rts: [autoRouteTarget(64512, 1001)], encapVxlan: true, seq: 0, sticky: false }, withdraw, neighbor: '198.18.0.2' };
}

describe('EVPN sync with the engine', () => {
  test(`${N} remote MACs install as evpn entries while frames flow, and go when withdrawn`, async (t) => {
    const dp = new Dataplane({ hugepages: false, bufferCount: 4096, maxPorts: 8, maxSwitches: 4 });
    dp.start();
    const sync = new EvpnSync({ dp: dp as unknown as EvpnDataplane, bgp: resolveBgp({ asn: 64512, routerId: '198.18.0.1', neighbors: ['198.18.0.2'], advertiseRate: 1_000_000 }), log: createLogger('silent' as never) });
    try {
      await dp.createSwitch({ name: 's', vni: 1001, macLimit: 100_000 });
      await dp.createPort({ name: 'p1', type: 'pipe', switch: 's' });
      await dp.createPort({ name: 'p2', type: 'pipe', switch: 's' });
      await dp.createUplink({ name: 'up', type: 'pipe', localIp: '198.18.0.11/24' });
      const p1 = dp.pipe('p1');
      const p2 = dp.pipe('p2');
      // p2's guest is known, so probes from p1 go to p2 alone.
      p2.send([Buffer.from(frameHex('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:02'), 'hex')]);
      await p1.waitFor(1, 2000);
      const speaker = new Speaker();
      await sync.start();
      await sync.attach(speaker);
      let probing = true;
      let longest = 0;
      let iterMax = 0;
      let probes = 0;
      const probe = (async () => {
        const frame = Buffer.from(frameHex('02:00:00:00:00:02', '02:00:00:00:00:01'), 'hex');
        while (probing) {
          const t0 = performance.now();
          p1.send([frame]);
          const got = await p2.waitFor(1, 5000);
          assert.equal(got.length, 1, 'every probe arrives');
          longest = Math.max(longest, performance.now() - t0);
          // The engine's own longest iteration of the last housekeeping
          // period (100 ms), sampled more often than it changes.
          iterMax = Math.max(iterMax, dp.stats().engine.iteration_max_ns ?? 0);
          probes++;
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      const t0 = performance.now();
      const routes = Array.from({ length: N }, (_, i) => route(i));
      for (let i = 0; i < N; i += 1000) speaker.push!(routes.slice(i, i + 1000));
      const count = async (): Promise<number> => (await dp.fdb('s')).filter((e) => e.evpn === true).length;
      for (let i = 0; i < 6000 && !(sync.idle() && sync.stats().macsInstalled === N); i++) await new Promise((r) => setTimeout(r, 5));
      const installMs = performance.now() - t0;
      assert.equal(await count(), N);
      const entries = await dp.fdb('s');
      assert.equal(entries.find((e) => e.mac === mac(5))!.vtep, '198.18.0.21');
      assert.equal(sync.stats().macsInstalled, N);
      probing = false;
      await probe;
      t.diagnostic(`${N} evpn entries installed in ${installMs.toFixed(0)} ms; ${probes} probe frames through the switch meanwhile, the slowest took ${longest.toFixed(1)} ms; longest engine iteration meanwhile ${(iterMax / 1e6).toFixed(2)} ms (iteration_max_ns)`);
      assert.ok(iterMax > 0, 'the engine published its longest iteration');
      // Withdrawn: gone again.
      speaker.push!(routes.map((r) => ({ ...r, withdraw: true })));
      for (let i = 0; i < 6000 && !(sync.idle() && sync.stats().macsInstalled === 0); i++) await new Promise((r) => setTimeout(r, 5));
      assert.equal(await count(), 0);
      assert.equal(sync.stats().macsInstalled, 0);
    } finally {
      await sync.stop();
      dp.close();
    }
  });
});
