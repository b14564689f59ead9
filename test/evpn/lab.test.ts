// The EVPN lab itself (test/evpn/lab.ts), without this switch: three plain
// gobgpd speakers whose routes the test adds with the gobgp CLI, and the
// Linux host with FRR. It checks what the switch tests rely on: the full
// iBGP mesh comes up, FRR installs what a switch host advertises (its MACs
// behind its VTEP, its VTEP in the flood list), FRR advertises its guest's
// MAC once its bridge learned it, and a dead speaker's routes go when its
// sessions' hold time runs out.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ASN, guestMac, VNI, vtepIp, withEvpnLab } from './lab';
import { sendFrames, marker } from '../overlay/vxlab';

test('lab check: plain gobgpd x3 and FRR form a full mesh, exchange type-2/3 routes both ways, and a dead speaker is withdrawn', async (t) => {
  await withEvpnLab(t, {}, async (lab) => {
    const frr = lab.frr!;
    await lab.startFrr();
    await Promise.all(lab.hosts.map((h) => lab.startPlainGobgpd(h)));

    // Every session of the mesh establishes (connect retry 1 s).
    await lab.frrSessionsUp();
    for (const h of lab.hosts) {
      await lab.until(async () => (await lab.gobgpNeighbors(h)).filter((p) => /^(6|ESTABLISHED)$/i.test(p.state)).length === 3, 30_000, `host ${h.n}'s gobgpd has 3 sessions`);
    }

    // Switch hosts advertise their VTEP (type 3) and their guest (type 2).
    for (const h of lab.hosts) await lab.advertisePlain(h, [h.guest.mac]);
    // FRR advertises its guest only once its bridge learned the MAC.
    await sendFrames(frr.guest.ns, 'eth0', [marker(frr.guest.mac, 0x88b5, 1)]);

    const want = lab.hosts.map((h) => vtepIp(h.n)).sort().join(',');
    await lab.until(() => {
      const f = lab.frrFdb();
      return f.get('flood') === want && lab.hosts.every((h) => f.get(h.guest.mac) === h.vtep);
    }, 15_000, 'FRR installs every host in its flood list and every guest behind its VTEP').catch(async (e: Error) => {
      throw new Error(`${e.message}\nFDB: ${JSON.stringify([...lab.frrFdb()])}\n${await lab.vtysh('show bgp l2vpn evpn', 'show evpn vni detail')}`);
    });
    assert.equal(lab.frrFdb().get(frr.guest.mac), `local:${frr.hostDev}`, 'the FRR bridge learned its guest');
    t.diagnostic(`FRR FDB: ${JSON.stringify([...lab.frrFdb()])}`);

    // FRR's routes reach every gobgpd: its IMET (PMSI ingress replication
    // to its VTEP, RT ASN:VNI) and its guest's MAC behind its VTEP.
    for (const h of lab.hosts) {
      await lab.until(async () => {
        const r = await lab.gobgp(h, ['global', 'rib', '-a', 'evpn']);
        return r.out.includes(`[mac:${guestMac(frr.n)}]`) && new RegExp(`\\[type:multicast\\].*\\[ip:${frr.vtep}\\]`).test(r.out);
      }, 15_000, `host ${h.n}'s gobgpd has FRR's type-2 and type-3 routes`);
      const rib = (await lab.gobgp(h, ['global', 'rib', '-a', 'evpn'])).out;
      const line = rib.split('\n').find((l) => l.includes(`[mac:${guestMac(frr.n)}]`)) ?? '';
      assert.match(line, new RegExp(`${frr.vtep.replace(/\./g, '\\.')}`), `next hop is FRR's VTEP: ${line}`);
      assert.match(line, new RegExp(`${ASN}:${VNI}`), `route target ASN:VNI: ${line}`);
      assert.match(line, /VXLAN/, `VXLAN encapsulation community: ${line}`);
      const imet = rib.split('\n').find((l) => l.includes('[type:multicast]') && l.includes(`[ip:${frr.vtep}]`)) ?? '';
      assert.match(imet, new RegExp(`ingress-repl.*tunnel-id: ${frr.vtep.replace(/\./g, '\\.')}`), imet);
    }

    // A speaker dies (kill -9): FRR drops its MAC and its VTEP once the
    // hold time expires, and keeps the others.
    const dead = lab.hosts[2];
    const t0 = Date.now();
    assert.equal(lab.killGobgpd(dead).length, 1, 'one gobgpd on the dead host');
    const others = lab.hosts.filter((h) => h !== dead).map((h) => h.vtep).sort().join(',');
    await lab.until(() => {
      const f = lab.frrFdb();
      return f.get('flood') === others && !f.has(dead.guest.mac);
    }, lab.holdTime * 1000 + 15_000, `FRR withdraws host ${dead.n}'s routes`);
    const ms = Date.now() - t0;
    t.diagnostic(`FRR dropped the dead speaker's MAC and VTEP ${ms} ms after kill -9 (hold time ${lab.holdTime} s)`);
    const f = lab.frrFdb();
    for (const h of lab.hosts.filter((x) => x !== dead)) assert.equal(f.get(h.guest.mac), h.vtep, 'the live hosts stay');
  });
});

test('lab check, route reflector: FRR accepts the speakers of its subnet and reflects their routes to each other', async (t) => {
  await withEvpnLab(t, { routeReflector: true }, async (lab) => {
    const frr = lab.frr!;
    await lab.startFrr();
    await Promise.all(lab.hosts.map((h) => lab.startPlainGobgpd(h)));
    for (const h of lab.hosts) {
      await lab.until(async () => (await lab.gobgpNeighbors(h)).some((p) => p.address === frr.bgp && /^(6|ESTABLISHED)$/i.test(p.state)), 30_000, `host ${h.n} peers with the reflector`).catch(async (e: Error) => {
        throw new Error(`${e.message}\n${await lab.vtysh('show bgp l2vpn evpn summary')}\n${lab.logs()}`);
      });
      assert.deepEqual((await lab.gobgpNeighbors(h)).map((p) => p.address), [frr.bgp], 'one session: the reflector');
    }
    for (const h of lab.hosts) await lab.advertisePlain(h, [h.guest.mac]);
    // Each speaker gets the others' routes through the reflector, next hop
    // (the advertiser's VTEP) unchanged.
    for (const h of lab.hosts) {
      for (const o of lab.hosts.filter((x) => x !== h)) {
        await lab.until(async () => {
          const rib = (await lab.gobgp(h, ['global', 'rib', '-a', 'evpn'])).out;
          const line = rib.split('\n').find((l) => l.includes(`[mac:${o.guest.mac}]`)) ?? '';
          return line.includes(o.vtep);
        }, 15_000, `host ${h.n} has host ${o.n}'s MAC behind ${o.vtep}, reflected`);
      }
    }
    const want = lab.hosts.map((h) => h.vtep).sort().join(',');
    await lab.until(() => lab.frrFdb().get('flood') === want, 15_000, 'the reflector installs the three VTEPs for itself too');
    t.diagnostic(`reflector sessions: ${JSON.stringify([...(await lab.frrSessions())])}`);
  });
});
