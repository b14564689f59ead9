// EVPN sync logic (src/control/evpn/evpn.ts) against a fake dataplane and a
// fake BGP speaker: what is advertised for local MACs, what received routes
// do to the FDB and the flood list, MAC mobility (RFC 7432 section 15),
// duplicate detection, the rate limit and macLimit.

import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';
import type { DataplaneEvent, FdbEntry, SwitchInfo, UplinkInfo } from '../../src/dataplane';
import { resolveBgp } from '../../src/control/evpn/config';
import { DUP_MOVES, EvpnDataplane, EvpnSync } from '../../src/control/evpn/evpn';
import { BgpApiError, type BgpPeerStatus, type BgpSpeakerApi } from '../../src/control/evpn/gobgp';
import { autoRd, autoRouteTarget, EvpnRoute, MacRoute, ReceivedRoute } from '../../src/control/evpn/routes';
import { createLogger } from '../../src/control/logging';

const VNI = 1001;
const OUR_VTEP = '198.18.0.11';

class FakeDp extends EventEmitter {
  fdbEntries: FdbEntry[] = [];
  peersAdded: string[] = [];
  peersDeleted: string[] = [];
  evpnMacs = new Map<string, string>(); // mac -> vtep
  ops: string[] = [];
  macLimit = 65536;
  remoteLearning = true;
  switches(): SwitchInfo[] {
    return [{ name: 'tenant', id: 0, vni: VNI, macLimit: this.macLimit, agingSeconds: 300, learning: true, remoteLearning: this.remoteLearning, allowUnknownPeers: false, fdbCapacity: 1024, ports: ['p1'] }];
  }
  uplink(): UplinkInfo {
    return { name: 'up0', id: 1, type: 'pipe', mtu: 1500, mac: '02:00:00:00:ff:01', localIp: `${OUR_VTEP}/24`, udpPort: 4789, srcPortRange: [49152, 65535], ttl: 64, df: true, udp6ZeroChecksum: false, allowUnknownPeers: true, neighborReachableSeconds: 30 };
  }
  // As the dataplane answers: learned and static entries, then the EVPN ones.
  async fdb(): Promise<FdbEntry[]> {
    return [...this.fdbEntries, ...[...this.evpnMacs].map(([mac, vtep]) => ({ mac, port: 'up0', vlan: 0, static: true, ageSeconds: 0, vtep, evpn: true }))];
  }
  configuredPeers: string[] = [];
  peers(): { switch: string; ip: string }[] {
    return [...this.configuredPeers, ...this.peersAdded.filter((ip) => !this.peersDeleted.includes(ip))].map((ip) => ({ switch: 'tenant', ip }));
  }
  async addPeer(p: { ip: string }): Promise<void> {
    this.peersAdded.push(p.ip);
  }
  async deletePeer(p: { ip: string }): Promise<void> {
    this.peersDeleted.push(p.ip);
  }
  async addRemoteMac(s: { mac: string; vtep: string }, o?: { evpn?: boolean }): Promise<void> {
    assert.equal(o?.evpn, true);
    this.evpnMacs.set(s.mac, s.vtep);
    this.ops.push(`add ${s.mac} ${s.vtep}`);
  }
  async deleteStaticMac(s: { mac: string }, o?: { evpn?: boolean }): Promise<void> {
    assert.equal(o?.evpn, true);
    this.evpnMacs.delete(s.mac);
    this.ops.push(`del ${s.mac}`);
  }
  async updateSwitch(_n: string, u: { remoteLearning?: boolean }): Promise<SwitchInfo> {
    if (u.remoteLearning !== undefined) this.remoteLearning = u.remoteLearning;
    return this.switches()[0]!;
  }
  events(list: DataplaneEvent[]): void {
    this.emit('events', list);
  }
}

class FakeSpeaker implements BgpSpeakerApi {
  batches: { adds: EvpnRoute[]; withdraws: EvpnRoute[] }[] = [];
  push?: (r: ReceivedRoute[]) => void;
  watchedAt = 0; // Date.now() when the sync attached (its check's timer starts then)
  async updateRoutes(adds: EvpnRoute[], withdraws: EvpnRoute[]): Promise<void> {
    this.batches.push({ adds, withdraws });
  }
  async listRoutes(): Promise<ReceivedRoute[]> {
    return [];
  }
  async listPeers(): Promise<BgpPeerStatus[]> {
    return [];
  }
  watch(onRoutes: (r: ReceivedRoute[]) => void): { cancel(): void } {
    this.push = onRoutes;
    this.watchedAt = Date.now();
    return { cancel: () => undefined };
  }
  close(): void {}
  adds(): EvpnRoute[] {
    return this.batches.flatMap((b) => b.adds);
  }
  withdraws(): EvpnRoute[] {
    return this.batches.flatMap((b) => b.withdraws);
  }
  macAdds(mac: string): MacRoute[] {
    return this.adds().filter((r): r is MacRoute => r.type === 2 && r.mac === mac);
  }
}

const log = createLogger('silent' as never);

function remote(mac: string, vtep: string, seq = 0, withdraw = false, router = vtep): ReceivedRoute {
  return { route: { type: 2, rd: autoRd(router, VNI), ethernetTag: 0, mac, vni: VNI, nextHop: vtep, rts: [autoRouteTarget(64512, VNI)], encapVxlan: true, seq, sticky: false }, withdraw, neighbor: '198.18.0.2' };
}

function imet(vtep: string, withdraw = false): ReceivedRoute {
  return { route: { type: 3, rd: autoRd(vtep, VNI), ethernetTag: 0, originator: vtep, vni: VNI, nextHop: vtep, rts: [autoRouteTarget(64512, VNI)], encapVxlan: true, pmsi: { type: 6, label: VNI, id: vtep } }, withdraw, neighbor: '198.18.0.2' };
}

async function setup(bgp: Record<string, unknown> = {}): Promise<{ dp: FakeDp; api: FakeSpeaker; sync: EvpnSync; clock: { t: number }; settle(): Promise<void> }> {
  const dp = new FakeDp();
  const api = new FakeSpeaker();
  const clock = { t: 1000 };
  const sync = new EvpnSync({ dp: dp as unknown as EvpnDataplane, bgp: resolveBgp({ asn: 64512, routerId: '198.18.0.1', neighbors: ['198.18.0.2'], ...bgp }), log, now: () => clock.t });
  await sync.start();
  await sync.attach(api);
  // Lets the sync's timer send what is queued: the clock moves a second per round.
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 200 && !sync.idle(); i++) {
      clock.t += 1000;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(sync.idle(), 'the sync settled');
  };
  return { dp, api, sync, clock, settle };
}

const learned = (mac: string): DataplaneEvent => ({ type: 'learned', switch: 'tenant', port: 'p1', vlan: 0, mac });
const aged = (mac: string): DataplaneEvent => ({ type: 'aged', switch: 'tenant', port: 'p1', vlan: 0, mac });
const movedHere = (mac: string, from: string): DataplaneEvent => ({ type: 'moved', switch: 'tenant', port: 'p1', oldPort: 'up0', vlan: 0, oldVlan: 0, mac, oldVtep: from });

describe('EVPN sync', () => {
  test('our IMET route, a type-2 route per learned MAC, withdrawn when it ages; VXLAN learning off', async () => {
    const { dp, api, sync, settle } = await setup();
    try {
      await settle();
      const im = api.adds().find((r) => r.type === 3)!;
      assert.equal(im.nextHop, OUR_VTEP);
      assert.equal(dp.remoteLearning, false, 'EVPN switched learning from VXLAN frames off');
      dp.events([learned('02:00:00:00:00:01')]);
      await settle();
      const r = api.macAdds('02:00:00:00:00:01');
      assert.equal(r.length, 1);
      assert.equal(r[0]!.seq, 0);
      assert.equal(r[0]!.nextHop, OUR_VTEP);
      assert.deepEqual(r[0]!.rts, [{ asn: 64512, value: VNI }]);
      dp.events([aged('02:00:00:00:00:01')]);
      await settle();
      assert.ok(api.withdraws().some((w) => w.type === 2 && w.mac === '02:00:00:00:00:01'));
      assert.equal(sync.stats().routesAdvertised, 1, 'only the IMET route is left');
    } finally {
      await sync.stop();
    }
  });

  test('routes the stream missed are taken in from the speaker\'s table within seconds (read back every 5 s)', async () => {
    const { dp, api, sync, clock, settle } = await setup();
    try {
      await settle();
      // gobgpd holds these, but its WatchEvent stream never brought them.
      api.listRoutes = async () => [imet('198.18.0.12'), remote('02:00:00:00:00:07', '198.18.0.12')];
      assert.equal(dp.evpnMacs.has('02:00:00:00:00:07'), false);
      clock.t += 6000;
      for (let i = 0; i < 100 && !dp.evpnMacs.has('02:00:00:00:00:07'); i++) {
        await new Promise((r) => setTimeout(r, 25));
        await settle();
      }
      assert.equal(dp.evpnMacs.get('02:00:00:00:00:07'), '198.18.0.12');
      assert.deepEqual(dp.peersAdded, ['198.18.0.12']);
      // Read again: nothing changes (no second install, no second peer).
      const installs = dp.evpnMacs.size;
      clock.t += 6000;
      await new Promise((r) => setTimeout(r, 100));
      await settle();
      assert.equal(dp.evpnMacs.size, installs);
      assert.deepEqual(dp.peersAdded, ['198.18.0.12']);
    } finally {
      await sync.stop();
    }
  });

  // The periodic read-back takes in what the stream missed. gobgpd copies
  // its table and answers later: a withdrawal the stream brings in between
  // must not be undone by the copy (it was, for good: CI saw a host keep
  // 1,000 routes another had withdrawn).
  test('a read-back answered late does not bring back a route the stream withdrew meanwhile', async () => {
    const { dp, api, sync, clock, settle } = await setup();
    try {
      const [a, b] = ['02:00:00:00:00:1a', '02:00:00:00:00:1b'];
      api.push!([imet('198.18.0.12'), remote(a, '198.18.0.12')]);
      await settle();
      assert.equal(dp.evpnMacs.get(a), '198.18.0.12');
      // bgp routes names the neighbour a type-3 route came from, as it does a MAC route's.
      assert.deepEqual(sync.routes().filter((r) => r.type === 3 && r.origin === 'remote').map((r) => [r.vtep, r.neighbor]), [['198.18.0.12', '198.18.0.2']]);
      let answer: ((r: ReceivedRoute[]) => void) | undefined;
      api.listRoutes = () => new Promise((resolve) => (answer = resolve));
      clock.t += 6000; // the next tick reads the table back
      for (let i = 0; i < 200 && answer === undefined; i++) await new Promise((r) => setTimeout(r, 25));
      assert.ok(answer, 'the table was read back');
      // While gobgpd answers, a is withdrawn on the stream.
      clock.t += 1;
      api.push!([remote(a, '198.18.0.12', 0, true)]);
      await settle();
      assert.equal(dp.evpnMacs.has(a), false);
      // The copy, made before the withdrawal, still has a; it also has b,
      // which the stream never brought.
      answer!([imet('198.18.0.12'), remote(a, '198.18.0.12'), remote(b, '198.18.0.12')]);
      await new Promise((r) => setTimeout(r, 50));
      await settle();
      assert.equal(dp.evpnMacs.has(a), false, 'the withdrawn route stays withdrawn');
      assert.equal(dp.evpnMacs.get(b), '198.18.0.12', 'what the stream missed is still taken in');
    } finally {
      await sync.stop();
    }
  });

  test('received IMET routes make the flood list; received MACs become evpn entries; withdrawals undo both', async () => {
    const { dp, api, sync, settle } = await setup();
    try {
      api.push!([imet('198.18.0.12'), remote('02:00:00:00:00:02', '198.18.0.12')]);
      await settle();
      assert.deepEqual(dp.peersAdded, ['198.18.0.12']);
      assert.equal(dp.evpnMacs.get('02:00:00:00:00:02'), '198.18.0.12');
      // Our own routes in the table (neighbor '') are not installed.
      api.push!([{ ...remote('02:00:00:00:00:03', OUR_VTEP), neighbor: '' }]);
      await settle();
      assert.equal(dp.evpnMacs.has('02:00:00:00:00:03'), false);
      api.push!([imet('198.18.0.12', true), remote('02:00:00:00:00:02', '198.18.0.12', 0, true)]);
      await settle();
      assert.deepEqual(dp.peersDeleted, ['198.18.0.12']);
      // A peer the configuration lists is left alone when its IMET route comes and goes.
      dp.configuredPeers = ['198.18.0.14'];
      api.push!([imet('198.18.0.14')]);
      await settle();
      api.push!([imet('198.18.0.14', true)]);
      await settle();
      assert.deepEqual(dp.peersDeleted, ['198.18.0.12']);
      assert.equal(dp.evpnMacs.size, 0);
      assert.equal(sync.stats().routesReceived, 0);
    } finally {
      await sync.stop();
    }
  });

  test('a static peer or remote entry put over the EVPN one and removed again: the EVPN one comes back at the next refresh', async () => {
    const { dp, api, sync, settle } = await setup();
    try {
      api.push!([imet('198.18.0.12'), remote('02:00:00:00:00:02', '198.18.0.12')]);
      await settle();
      assert.deepEqual(dp.peersAdded, ['198.18.0.12']);
      // The operator configures the same peer and entry (the dataplane then
      // has them as static ones), and deletes them: the engine's objects go.
      dp.configuredPeers = ['198.18.0.12'];
      dp.evpnMacs.delete('02:00:00:00:00:02');
      dp.fdbEntries = [{ mac: '02:00:00:00:00:02', port: 'up0', vlan: 0, static: true, ageSeconds: 0, vtep: '198.18.0.99' }];
      await sync.refresh();
      await settle();
      assert.equal(dp.evpnMacs.has('02:00:00:00:00:02'), false, 'the static entry wins while it is there');
      assert.deepEqual(dp.peersAdded, ['198.18.0.12'], 'the configured peer stands for ours');
      dp.configuredPeers = [];
      dp.peersDeleted.push('198.18.0.12');
      dp.fdbEntries = [];
      await sync.refresh();
      await settle();
      assert.equal(dp.evpnMacs.get('02:00:00:00:00:02'), '198.18.0.12', 'the EVPN entry is installed again');
      assert.deepEqual(dp.peersAdded, ['198.18.0.12', '198.18.0.12'], 'and the flood-list peer added again');
      assert.equal(sync.stats().macsInstalled, 1);
    } finally {
      await sync.stop();
    }
  });

  test('a flood-list peer the operator configures after EVPN added it is the operator\'s: its IMET withdrawal leaves it in the engine', async () => {
    const { dp, api, sync, settle } = await setup();
    try {
      api.push!([imet('198.18.0.12')]);
      await settle();
      assert.deepEqual(dp.peersAdded, ['198.18.0.12']);
      dp.configuredPeers = ['198.18.0.12'];
      await sync.refresh(undefined, [{ switch: 'tenant', ip: '198.18.0.12' }]);
      api.push!([imet('198.18.0.12', true)]);
      await settle();
      assert.deepEqual(dp.peersDeleted, [], 'the configured peer stays');
    } finally {
      await sync.stop();
    }
  });

  test('MAC mobility: a MAC that moves here is advertised with the remote sequence + 1; a higher remote one takes it away', async () => {
    const { dp, api, sync, settle } = await setup();
    const m = '02:00:00:00:00:05';
    try {
      api.push!([remote(m, '198.18.0.12', 4)]);
      await settle();
      assert.equal(dp.evpnMacs.get(m), '198.18.0.12');
      // The VM arrives here: the dataplane moves the evpn entry to the port.
      dp.evpnMacs.delete(m);
      dp.events([movedHere(m, '198.18.0.12')]);
      await settle();
      assert.equal(api.macAdds(m).at(-1)!.seq, 5);
      assert.equal(sync.stats().moves, 1);
      // The old host withdraws; we keep ours.
      api.push!([remote(m, '198.18.0.12', 4, true)]);
      await settle();
      assert.equal(dp.evpnMacs.has(m), false);
      // It moves on to a third host, which says 6: ours is withdrawn, the entry points there.
      api.push!([remote(m, '198.18.0.13', 6)]);
      await settle();
      assert.ok(api.withdraws().some((w) => w.type === 2 && w.mac === m && w.seq === 5));
      assert.equal(dp.evpnMacs.get(m), '198.18.0.13');
    } finally {
      await sync.stop();
    }
  });

  test('the same MAC on two hosts at once (equal sequence numbers): the lower VTEP address wins', async () => {
    const { dp, api, sync, settle } = await setup();
    try {
      // We (198.18.0.11) and 198.18.0.12 both learn A: ours stays, nothing installed.
      dp.events([learned('02:00:00:00:00:0a')]);
      api.push!([remote('02:00:00:00:00:0a', '198.18.0.12', 0)]);
      await settle();
      assert.equal(dp.evpnMacs.has('02:00:00:00:00:0a'), false);
      assert.equal(api.withdraws().filter((w) => w.type === 2).length, 0);
      // 198.18.0.5 (lower than ours) learns B as we do: ours is withdrawn, B is forwarded there.
      dp.events([learned('02:00:00:00:00:0b')]);
      await settle();
      api.push!([remote('02:00:00:00:00:0b', '198.18.0.5', 0)]);
      await settle();
      assert.ok(api.withdraws().some((w) => w.type === 2 && w.mac === '02:00:00:00:00:0b'));
      assert.equal(dp.evpnMacs.get('02:00:00:00:00:0b'), '198.18.0.5');
    } finally {
      await sync.stop();
    }
  });

  test(`a MAC moving more than ${DUP_MOVES} times is a duplicate: its sequence number stops rising`, async () => {
    const { dp, api, sync, settle } = await setup();
    const m = '02:00:00:00:00:0d';
    try {
      let seq = 0;
      for (let i = 0; i < DUP_MOVES + 3; i++) {
        api.push!([remote(m, '198.18.0.12', seq)]); // the other host claims it (again)
        await settle();
        dp.events([movedHere(m, '198.18.0.12')]); // and it speaks here again
        await settle();
        const adds = api.macAdds(m);
        // Until it is a duplicate we outbid the other host by one; then our
        // route is withdrawn and no longer sent (RFC 7432 section 15.1).
        if (i < DUP_MOVES) assert.equal(adds.at(-1)!.seq, seq + 1, `round ${i}`);
        else assert.equal(adds.length, DUP_MOVES, `round ${i}: nothing more advertised`);
        seq = adds.at(-1)!.seq + 1;
      }
      assert.equal(sync.stats().duplicates, 1);
      assert.ok(api.withdraws().some((w) => w.type === 2 && w.mac === m), 'withdrawn');
    } finally {
      await sync.stop();
    }
  });

  test('advertisements are rate limited and batched; macLimit bounds what is advertised and installed', async () => {
    const { dp, api, sync, clock } = await setup({ advertiseRate: 100 });
    await new Promise((r) => setTimeout(r, 50)); // the IMET route goes with the first credit
    try {
      const events: DataplaneEvent[] = [];
      for (let i = 0; i < 1000; i++) events.push(learned(`02:00:00:01:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`));
      dp.events(events);
      clock.t += 1000; // one second of credit
      await new Promise((r) => setTimeout(r, 100));
      const sent = api.batches.reduce((n, b) => n + b.adds.length + b.withdraws.length, 0);
      assert.ok(sent > 0 && sent <= 100, `at most a second's worth (100) sent, got ${sent}`);
      assert.ok(sync.stats().pending >= 900);
    } finally {
      await sync.stop();
    }
    const lim = await setup();
    try {
      lim.dp.macLimit = 2;
      await lim.sync.refresh();
      lim.dp.events([learned('02:00:00:00:01:01'), learned('02:00:00:00:01:02'), learned('02:00:00:00:01:03')]);
      lim.api.push!([remote('02:00:00:00:02:01', '198.18.0.12'), remote('02:00:00:00:02:02', '198.18.0.12'), remote('02:00:00:00:02:03', '198.18.0.12')]);
      await lim.settle();
      assert.equal(lim.api.adds().filter((r) => r.type === 2).length, 2);
      assert.equal(lim.dp.evpnMacs.size, 2);
      assert.equal(lim.sync.stats().limited, 2);
    } finally {
      await lim.sync.stop();
    }
  });

  test('a route gobgpd refuses does not hold up the others', async () => {
    const { dp, api, sync, settle } = await setup();
    try {
      await settle();
      const bad = '02:00:00:00:00:66';
      const real = api.updateRoutes.bind(api);
      api.updateRoutes = async (adds, withdraws) => {
        if (adds.some((r) => r.type === 2 && r.mac === bad)) throw new BgpApiError('gobgpd AddPathStream: invalid MAC mobility sequence number', 2);
        return real(adds, withdraws);
      };
      dp.events([learned('02:00:00:00:00:65'), learned(bad), learned('02:00:00:00:00:67')]);
      await settle();
      assert.deepEqual(api.adds().filter((r) => r.type === 2).map((r) => (r as MacRoute).mac).sort(), ['02:00:00:00:00:65', '02:00:00:00:00:67']);
      assert.equal(sync.stats().rejected, 1);
    } finally {
      await sync.stop();
    }
  });

  test('taking over a running gobgpd: what it has is not sent again; relearned MACs keep their sequence numbers', async () => {
    const { dp, api, sync, settle } = await setup();
    try {
      await settle();
      const imetOurs = api.adds().find((r) => r.type === 3)!;
      const m1: MacRoute = { ...(remote('02:00:00:00:00:31', OUR_VTEP, 2).route as MacRoute), rd: autoRd('198.18.0.1', VNI) };
      const gone: MacRoute = { ...m1, mac: '02:00:00:00:00:32', vni: 9999, rd: autoRd('198.18.0.1', 9999) };
      const old = new FakeSpeaker();
      old.listRoutes = async () => [imetOurs, m1, gone].map((route) => ({ route, withdraw: false, neighbor: '' }));
      await sync.attach(old, { adopt: true });
      await settle();
      assert.deepEqual(old.adds(), [], 'nothing it has is sent again');
      assert.deepEqual(old.withdraws().map((r) => (r as MacRoute).mac), ['02:00:00:00:00:32'], 'the route of a switch that is gone is withdrawn');
      assert.ok(sync.routes().some((r) => r.type === 2 && r.mac === m1.mac && r.origin === 'local'), 'kept while the MAC is learned again');
      dp.events([learned(m1.mac)]);
      await settle();
      assert.equal(old.macAdds(m1.mac).at(-1)!.seq, 2);
    } finally {
      await sync.stop();
    }
  });

  test('MACs that leave the FDB without an event (flush, port deleted) are withdrawn at the next refresh', async () => {
    const { dp, api, sync, settle } = await setup();
    try {
      dp.fdbEntries = [{ mac: '02:00:00:00:00:41', port: 'p1', vlan: 0, static: false, ageSeconds: 1 }];
      dp.events([learned('02:00:00:00:00:41'), learned('02:00:00:00:00:42')]);
      await settle();
      assert.equal(api.macAdds('02:00:00:00:00:42').length, 1);
      await sync.refresh();
      await settle();
      assert.deepEqual(api.withdraws().filter((w) => w.type === 2).map((w) => (w as MacRoute).mac), ['02:00:00:00:00:42']);
    } finally {
      await sync.stop();
    }
  });

  // After attaching, the speaker's table is read once (after the hold time,
  // at least 3 s) and remote routes it lacks are dropped: a speaker that
  // restarted lost them. gobgpd answers such a read late, with a copy made
  // before the stream's newest routes: those must stay.
  test('the table read after attaching drops what the speaker lost, not a route the stream brought during the read', async () => {
    const { dp, api, sync, clock, settle } = await setup({ holdTime: 0 });
    try {
      const attached = api.watchedAt; // not now: setup() may have taken a while on a loaded machine
      assert.ok(attached > 0);
      const [a, b, c] = ['02:00:00:00:00:0a', '02:00:00:00:00:0b', '02:00:00:00:00:0c'];
      api.push!([imet('198.18.0.12'), remote(a, '198.18.0.12'), remote(b, '198.18.0.12')]);
      await settle();
      assert.deepEqual([a, b].map((m) => dp.evpnMacs.get(m)), ['198.18.0.12', '198.18.0.12']);
      // Reads before the check (the periodic read-back) get the whole table;
      // the check's read (3 s after attaching) waits for its answer.
      let check: ((r: ReceivedRoute[]) => void) | undefined;
      api.listRoutes = () =>
        new Promise((resolve) => {
          if (Date.now() - attached < 2900 || check !== undefined) resolve([imet('198.18.0.12'), remote(a, '198.18.0.12'), remote(b, '198.18.0.12'), remote(c, '198.18.0.12')]);
          else check = resolve;
        });
      for (let i = 0; i < 400 && check === undefined; i++) await new Promise((r) => setTimeout(r, 25));
      assert.ok(check, 'the speaker\'s table was read within 10 s of attaching');
      // While the read is under way, the stream brings c; the copy, made
      // before c came, lacks it, and lacks b, which the speaker lost.
      clock.t += 1;
      api.push!([remote(c, '198.18.0.12')]);
      await settle();
      check([imet('198.18.0.12'), remote(a, '198.18.0.12')]);
      await new Promise((r) => setTimeout(r, 50));
      await settle();
      assert.equal(dp.evpnMacs.get(a), '198.18.0.12');
      assert.equal(dp.evpnMacs.get(c), '198.18.0.12', 'a route that came while the table was read stays');
      assert.equal(dp.evpnMacs.has(b), false, 'a route the speaker no longer has is dropped');
      assert.deepEqual(dp.peersDeleted, [], 'the IMET route held before the read is in the copy: the flood list keeps its peer');
    } finally {
      await sync.stop();
    }
  });

  // bgp.switches and bgp.remoteLearning change without a new gobgpd
  // (service.ts applies them to the sync, then refreshes it).
  test('a switch taken out of bgp.switches is handed back (routes withdrawn, EVPN entries and flood peers removed, VXLAN learning on), and taken over again', async () => {
    const { dp, api, sync, settle } = await setup();
    const bgp = (more: Record<string, unknown> = {}): ReturnType<typeof resolveBgp> => resolveBgp({ asn: 64512, routerId: '198.18.0.1', neighbors: ['198.18.0.2'], ...more });
    const ours = '02:00:00:00:00:31';
    const theirs = '02:00:00:00:00:99';
    try {
      dp.fdbEntries = [{ mac: ours, port: 'p1', vlan: 0, static: false, ageSeconds: 1 }];
      dp.events([learned(ours)]);
      api.push!([imet('198.18.0.12'), remote(theirs, '198.18.0.12')]);
      await settle();
      assert.equal(dp.evpnMacs.get(theirs), '198.18.0.12');
      assert.deepEqual(dp.peersAdded, ['198.18.0.12']);
      assert.equal(dp.remoteLearning, false);
      assert.equal(api.macAdds(ours).length, 1);

      const before = api.withdraws().length;
      sync.reconfigure(bgp({ switches: ['another'] }));
      await sync.refresh();
      await settle();
      const withdrawn = api.withdraws().slice(before);
      assert.deepEqual(withdrawn.map((r) => (r.type === 2 ? r.mac : 'imet')).sort(), [ours, 'imet'], 'our IMET and MAC routes withdrawn');
      assert.equal(dp.evpnMacs.size, 0, 'the EVPN entry is gone from the switch');
      assert.deepEqual(dp.peersDeleted, ['198.18.0.12'], 'so is the flood-list peer');
      assert.equal(dp.remoteLearning, true, 'learning from VXLAN frames is back');
      assert.equal(sync.stats().routesAdvertised, 0);
      // Not managed: its MACs are not advertised, received routes not installed.
      const adds = api.adds().length;
      dp.events([learned('02:00:00:00:00:32')]);
      api.push!([remote('02:00:00:00:00:98', '198.18.0.12')]);
      await settle();
      assert.equal(api.adds().length, adds);
      assert.equal(dp.evpnMacs.size, 0);

      sync.reconfigure(bgp());
      await sync.refresh();
      await settle();
      assert.equal(dp.remoteLearning, false, 'taken over again: VXLAN learning off');
      assert.equal(dp.evpnMacs.get(theirs), '198.18.0.12');
      assert.equal(dp.evpnMacs.get('02:00:00:00:00:98'), '198.18.0.12', 'a route received meanwhile is installed');
      assert.equal(dp.peersAdded.length, 2, 'the flood-list peer is added again');
      assert.equal(api.adds().slice(adds).filter((r) => r.type === 3).length, 1, 'our IMET route again');
      assert.equal(api.macAdds(ours).length, 2, 'our MAC again (the switch still has it)');
    } finally {
      await sync.stop();
    }
  });

  test('EVPN turned off or replaced: releaseAll() hands every switch back and withdraws our routes', async () => {
    const { dp, api, sync, settle } = await setup();
    try {
      dp.events([learned('02:00:00:00:00:41')]);
      api.push!([imet('198.18.0.12'), remote('02:00:00:00:00:97', '198.18.0.12')]);
      await settle();
      assert.equal(dp.evpnMacs.size, 1);
      const before = api.withdraws().length;
      await sync.releaseAll(2000);
      assert.deepEqual(api.withdraws().slice(before).map((r) => (r.type === 2 ? r.mac : 'imet')).sort(), ['02:00:00:00:00:41', 'imet']);
      assert.equal(dp.evpnMacs.size, 0);
      assert.deepEqual(dp.peersDeleted, ['198.18.0.12']);
      assert.equal(dp.remoteLearning, true);
      assert.ok(sync.idle());
    } finally {
      await sync.stop();
    }
  });

  test('a switch about to be deleted: releaseSwitches() has removed its flood-list peers when it returns, and withdraws its routes', async () => {
    const { dp, api, sync, settle } = await setup();
    try {
      dp.events([learned('02:00:00:00:00:42')]);
      api.push!([imet('198.18.0.12'), imet('198.18.0.13'), remote('02:00:00:00:00:98', '198.18.0.12')]);
      await settle();
      // The engine takes its time: the caller deletes the switch right after.
      const slow = dp.deletePeer.bind(dp);
      dp.deletePeer = async (p) => {
        await new Promise((r) => setTimeout(r, 30));
        await slow(p);
      };
      const before = api.withdraws().length;
      await sync.releaseSwitches(['other', 'tenant']);
      assert.deepEqual(dp.peersDeleted.sort(), ['198.18.0.12', '198.18.0.13']);
      // A route that comes now no longer reaches the switch.
      api.push!([imet('198.18.0.14')]);
      await settle();
      assert.ok(!dp.peersAdded.includes('198.18.0.14'));
      assert.deepEqual(api.withdraws().slice(before).map((r) => (r.type === 2 ? r.mac : 'imet')).sort(), ['02:00:00:00:00:42', 'imet']);
    } finally {
      await sync.stop();
    }
  });

  test('a stop removes the flood-list peers the sync added (the shutdown then deletes the switches) and withdraws nothing', async () => {
    const { dp, api, sync, settle } = await setup();
    dp.configuredPeers = ['198.18.0.20'];
    dp.events([learned('02:00:00:00:00:43')]);
    api.push!([imet('198.18.0.12'), imet('198.18.0.20')]);
    await settle();
    const before = api.withdraws().length;
    await sync.stop();
    assert.deepEqual(dp.peersDeleted, ['198.18.0.12'], 'the configured peer is the configuration\'s');
    assert.equal(api.withdraws().length, before);
  });

  test('bgp.remoteLearning changed while running: learning from VXLAN frames follows on the managed switches', async () => {
    const { dp, sync, settle } = await setup();
    try {
      await settle();
      assert.equal(dp.remoteLearning, false);
      sync.reconfigure(resolveBgp({ asn: 64512, routerId: '198.18.0.1', neighbors: ['198.18.0.2'], remoteLearning: true }));
      await sync.refresh();
      assert.equal(dp.remoteLearning, true);
      sync.reconfigure(resolveBgp({ asn: 64512, routerId: '198.18.0.1', neighbors: ['198.18.0.2'] }));
      await sync.refresh();
      assert.equal(dp.remoteLearning, false);
    } finally {
      await sync.stop();
    }
  });

  test('re-attaching (gobgpd restarted) sends everything again', async () => {
    const { dp, sync, settle } = await setup();
    try {
      dp.events([learned('02:00:00:00:00:21')]);
      await settle();
      const again = new FakeSpeaker();
      await sync.attach(again);
      await settle();
      assert.deepEqual(again.adds().map((r) => r.type).sort(), [2, 3]);
    } finally {
      await sync.stop();
    }
  });
});
