// BGP EVPN with one route reflector instead of a full mesh (issue 14): the
// three switch hosts' configs name only `routeReflector` (the FRR host,
// which accepts any speaker of the underlay subnet: bgp listen range), so
// a host is added without touching the others. Every guest reaches every
// other, and every FDB has every guest behind its VTEP.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ping } from '../overlay/vxlab';
import { withEvpnLab } from './lab';

test('route reflector: switch hosts that list only the reflector (FRR) form one VPC with it', async (t) => {
  await withEvpnLab(t, { routeReflector: true }, async (lab) => {
    const frr = lab.frr!;
    assert.match(lab.vpcdConfig(lab.hosts[0]), new RegExp(`routeReflector: ${frr.bgp.replace(/\./g, '\\.')}\\n`), 'the config names the reflector');
    assert.doesNotMatch(lab.vpcdConfig(lab.hosts[0]), /neighbors:/, 'and no neighbour list');
    await lab.startFrr();
    await lab.startAllVpcd();
    await lab.frrSessionsUp();
    for (const h of lab.hosts) assert.deepEqual((await lab.gobgpNeighbors(h)).map((p) => p.address), [frr.bgp], `host ${h.n}: one session, the reflector`);

    // FRR's guest first (FRR advertises a MAC once its bridge learned it).
    // The sessions being up does not mean the reflected IMET routes have
    // made every flood list yet (a CI run lost the very first ARP): a pair
    // gets up to 5 tries, 1 s apart, and the retries are reported.
    const guests = [frr.guest, ...lab.hosts.map((h) => h.guest)];
    const failures: string[] = [];
    const retried: string[] = [];
    for (const a of guests) {
      for (const b of guests) {
        if (a === b) continue;
        let ok = false;
        for (let i = 0; i < 5 && !ok; i++) {
          if (i > 0) {
            retried.push(`${a.ip} -> ${b.ip}`);
            await new Promise((r) => setTimeout(r, 1000));
          }
          ok = (await ping(lab.lab, a, b.ip, 2)).received >= 1;
        }
        if (!ok) failures.push(`${a.ip} -> ${b.ip}`);
      }
    }
    t.diagnostic(`pairs that needed another try after the sessions came up: ${retried.length === 0 ? 'none' : retried.join(', ')}`);
    assert.deepEqual(failures, [], `pings failed through the reflector\n${lab.logs()}`);

    // The switch hosts learned each other's guests from reflected routes.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const missing: string[] = [];
      for (const h of lab.all) {
        const w = await lab.where(h);
        for (const o of lab.all) if (o !== h && w.get(o.guest.mac) !== o.vtep) missing.push(`host ${h.n}: ${o.guest.mac} -> ${w.get(o.guest.mac)} (want ${o.vtep})`);
      }
      if (missing.length === 0) break;
      if (Date.now() > deadline) assert.fail(`FDBs incomplete through the reflector:\n${missing.join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    t.diagnostic(`reflector sessions: ${JSON.stringify([...(await lab.frrSessions())])}`);
  });
});
