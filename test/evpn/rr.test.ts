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

    // The sessions being up is not the routes being there: FRR sends a new
    // client its table, and reflects the others' routes, when its update
    // group's coalesce timer fires (about 1 s later). A ping in that window
    // loses its first ARP (it reaches only the hosts whose flood lists
    // already have the sender's VTEP). Wait for every flood list instead.
    const ms = await lab.floodListsComplete();
    t.diagnostic(`every flood list complete ${ms} ms after FRR had its sessions established`);

    // FRR's guest first (FRR advertises a MAC once its bridge learned it).
    // One try per pair: a lost ping is a failure.
    const guests = [frr.guest, ...lab.hosts.map((h) => h.guest)];
    const failures: string[] = [];
    for (const a of guests) {
      for (const b of guests) {
        if (a === b) continue;
        const r = await ping(lab.lab, a, b.ip, 2);
        if (r.received < 2) failures.push(`${a.ip} -> ${b.ip}: ${r.received} of 2`);
      }
    }
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
