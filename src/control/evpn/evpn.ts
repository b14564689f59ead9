// EVPN sync: keeps BGP (through a BgpSpeakerApi: gobgpd) and the switches
// of this host in agreement. Design: docs/design/evpn.md.
//
// Out (this host's routes):
//   - one type-3 (IMET) route per managed switch, while the uplink has a VTEP
//     address;
//   - one type-2 route per MAC of a managed switch that lives on a local
//     port: learned (`learned`/`moved` events, withdrawn on `aged`) or a
//     static entry of the configuration (sticky).
// In (routes of other hosts, best paths of gobgpd's table):
//   - type 3 -> the switch's flood list (Dataplane peers);
//   - type 2 -> an FDB entry of kind `evpn` (never aged) behind the route's
//     VTEP (next hop), unless the MAC lives here and our route wins.
// MAC mobility (RFC 7432 section 15): a MAC learned here that a remote route
// also claims is advertised with that route's sequence number + 1; of two
// routes for one MAC, the higher sequence number wins, and on a tie the
// lower VTEP address (section 15.1: the same MAC learned on two hosts at
// once). A MAC that moves more than DUP_MOVES times in DUP_WINDOW_MS is a
// duplicate (section 15.1): its sequence number is no longer raised, and
// the loop stops.
//
// Routes go to gobgpd in batches, at most `advertiseRate` a second; the
// dataplane is changed in pipelined batches too, so 100,000 MACs neither
// stall the engine nor flood the peers. A switch's macLimit bounds both what
// it advertises and the EVPN entries it installs.

import type { Dataplane, DataplaneEvent, FdbEntry, SwitchInfo } from '../../dataplane';
import type { Logger } from '../logging';
import { ResolvedBgp } from './config';
import { BgpApiError, type BgpSpeakerApi } from './gobgp';
import { autoRd, autoRouteTarget, EvpnRoute, ImetRoute, MacRoute, ReceivedRoute, routeKey, vniOf, vtepOf } from './routes';

export type EvpnDataplane = Pick<Dataplane, 'switches' | 'uplink' | 'fdb' | 'peers' | 'addPeer' | 'deletePeer' | 'addRemoteMac' | 'deleteStaticMac' | 'updateSwitch' | 'on' | 'off'>;

export const DUP_MOVES = 5; // RFC 7432 section 15.1: M = 5 moves ...
export const DUP_WINDOW_MS = 180_000; // ... in N = 180 seconds
const TICK_MS = 20;
// How often the speaker's whole EVPN table is read back and what the route
// stream missed is taken in. gobgpd's WatchEvent stream was seen to skip
// updates under load (a host holding 700 of the 1,000 routes its own gobgpd
// had, for good): the stream is for speed, this read for correctness.
const RESYNC_MS = 5_000;
// How long the time of a route's last stream event is kept (resync()): far
// longer than a read of the speaker's table takes.
const STREAM_MEMORY_MS = 600_000;
export const ADOPT_GRACE_MS = 60_000;
const DP_BATCH = 512;
// Paths per AddPathStream call: gobgpd 3.10 scans its whole EVPN table for
// each type-2 path it is given (MAC mobility, server.go fixupApiPath), so a
// big batch can run for a minute; small ones keep moves and withdrawals
// flowing in between.
const MAX_BATCH = 256;

interface LocalMac {
  seq: number;
  sticky: boolean; // a static entry of the configuration
  duplicate?: boolean; // moved too often (RFC 7432 s15.1): not advertised
  movedAt?: number; // ms (hrtime) of the `moved` event that made it local
}

interface OutboxEntry {
  route: EvpnRoute;
  withdraw: boolean;
  queuedAt: number;
  move?: number; // when the move that caused it happened (convergence metric)
}

interface RemoteRoute {
  vtep: string;
  seq: number;
  sticky: boolean;
  ip?: string;
  neighbor: string;
  receivedAt: number; // ms, monotonic
}

export interface EvpnStats {
  sessionsEstablished: number;
  routesAdvertised: number; // type 2 + type 3 we have out now
  routesReceived: number; // type 2 + type 3 of other hosts we hold now
  macsInstalled: number; // EVPN FDB entries
  floodPeers: number; // VTEPs in managed switches' flood lists
  updatesSent: number; // paths handed to gobgpd (advertise + withdraw)
  moves: number; // MACs that moved (here or away)
  duplicates: number; // MACs flagged as duplicates
  limited: number; // routes not advertised or not installed: macLimit
  installErrors: number;
  rejected: number; // routes gobgpd refused (dropped)
  pending: number; // updates waiting for the rate limit
}

export interface EvpnRouteView {
  switch: string;
  vni: number;
  type: 2 | 3;
  mac?: string;
  ip?: string;
  vtep: string;
  seq?: number;
  origin: 'local' | 'remote';
  neighbor?: string;
  best: boolean; // type 2: the route that decides where the MAC is
}

export interface EvpnOptions {
  dp: EvpnDataplane;
  bgp: ResolvedBgp;
  log: Logger;
  now?: () => number; // ms, monotonic (tests)
  onMoveConverged?: (phase: 'advertise' | 'install', seconds: number) => void;
  // The route stream of `api` ended: the owner reconnects (a managed
  // gobgpd that died is restarted by its supervisor anyway).
  onSpeakerLost?: (api: BgpSpeakerApi) => void;
}

// gobgpd answered with an error about the request (gRPC UNKNOWN or
// INVALID_ARGUMENT), as opposed to being unreachable or too slow.
function refused(err: unknown): boolean {
  if (!(err instanceof BgpApiError)) return false;
  return err.grpcCode === 2 || err.grpcCode === 3 || err.grpcCode === undefined; // undefined: refused by pack() before sending
}

function cmpIp(a: string, b: string): number {
  const key = (ip: string): string => (ip.includes(':') ? `6${ip}` : `4${ip.split('.').map((o) => o.padStart(3, '0')).join('.')}`);
  return key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
}

export class EvpnSync {
  private api?: BgpSpeakerApi;
  private watcher?: { cancel(): void };
  private readonly local = new Map<string, Map<string, LocalMac>>(); // switch -> mac -> ...
  private readonly remote = new Map<number, Map<string, Map<string, RemoteRoute>>>(); // vni -> mac -> route key -> ...
  private readonly imets = new Map<number, Map<string, { vtep: string; neighbor: string }>>(); // vni -> route key -> the VTEP, and the neighbour the route came from
  private readonly imetAt = new Map<string, number>(); // IMET route key -> when it came (ms, monotonic)
  private readonly streamAt = new Map<string, number>(); // route key -> its last add or withdrawal on the stream (ms)
  private readonly installed = new Map<string, Map<string, string>>(); // switch -> mac -> vtep (EVPN entries in the dp)
  private readonly peers = new Map<string, Set<string>>(); // switch -> flood list we put in the dp
  private readonly advertised = new Map<string, EvpnRoute>(); // route key -> route (what gobgpd has from us)
  private readonly outbox = new Map<string, OutboxEntry>();
  private readonly dpQueue = new Map<string, { switch: string; mac: string; vtep?: string; receivedAt?: number }>(); // "sw/mac"
  private readonly moveLog = new Map<string, number[]>(); // "sw/mac" -> times of recent moves
  private readonly duplicates = new Set<string>();
  private switchesByVni = new Map<number, SwitchInfo>();
  private managed = new Set<string>();
  private vtep = '';
  private timer?: NodeJS.Timeout;
  private flushing = false;
  private draining = false;
  private stopped = false;
  private credit = 0;
  private lastTick = 0;
  private readonly onEvents = (events: DataplaneEvent[]): void => this.events(events);
  readonly counters = { updatesSent: 0, moves: 0, duplicates: 0, limited: 0, installErrors: 0, rejected: 0 };
  sessions = 0;
  private readonly now: () => number;

  constructor(private readonly o: EvpnOptions) {
    this.now = o.now ?? (() => performance.now());
  }

  get bgp(): ResolvedBgp {
    return this.o.bgp;
  }

  // A new `bgp` that needs no new speaker (service.ts). The sync reads the
  // hold time (the grace after a reconnect) and advertiseRate (every tick)
  // as they come; `switches` and `remoteLearning` are followed by the
  // refresh() the service runs next.
  reconfigure(bgp: ResolvedBgp): void {
    if (bgp.remoteLearning !== this.o.bgp.remoteLearning) this.learningChanged = true;
    this.o.bgp = bgp;
  }
  private learningChanged = false;

  // ---------------------------------------------------------------- life cycle

  // Starts following the dataplane (events) and the switches; routes go out
  // once a speaker is attached.
  async start(): Promise<void> {
    this.o.dp.on('events', this.onEvents);
    await this.refresh();
    this.lastTick = this.now();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  // A (new) connection to the speaker: everything we advertise is sent
  // again (gobgpd may have restarted with an empty table), then the best
  // paths are followed. Remote routes we hold stay until the speaker's
  // table says otherwise (the initial dump replaces them, see watch()).
  async attach(api: BgpSpeakerApi, opts: { adopt?: boolean } = {}): Promise<void> {
    this.detach();
    this.api = api;
    // A gobgpd taken over still has our routes: only what differs is sent
    // (each type-2 path costs gobgpd a scan of its table).
    const has = opts.adopt === true ? await this.adoptAdvertised(api) : new Set<string>();
    for (const [key, route] of this.advertised) {
      if (!has.has(`${key}#${route.type === 2 ? route.seq : 0}`)) this.outbox.set(key, { route, withdraw: false, queuedAt: this.now() });
    }
    this.watch(api);
  }

  detach(): void {
    this.watcher?.cancel();
    this.watcher = undefined;
    this.api = undefined;
  }

  // EVPN turned off, or this sync about to be replaced by a new one (a
  // global bgp key changed): every managed switch is handed back
  // (release()), the dataplane changes are applied, and the withdrawals go
  // to the speaker while it takes them, for at most `ms` (an external
  // gobgpd keeps what it is not told to withdraw). Not on a shutdown: the
  // dataplane goes with vpcd, and a gobgpd that outlives it keeps our
  // routes for the next vpcd (adoptAdvertised()).
  async releaseAll(ms = 5000): Promise<void> {
    for (const s of this.o.dp.switches()) if (this.managed.has(s.name)) await this.release(s);
    const until = Date.now() + ms;
    const busy = (): boolean => this.dpQueue.size > 0 || this.draining || this.flushing || (this.api !== undefined && this.outbox.size > 0);
    while (busy() && Date.now() < until) {
      await new Promise((r) => setTimeout(r, TICK_MS)); // the timer's ticks apply and send them (at advertiseRate)
    }
  }

  // Switches about to be deleted (the controller's plan, before it runs):
  // handed back first (release()), and the flood-list peers removed before
  // this returns, since the engine refuses to delete a switch that still has
  // peers and those the sync added are not the configuration's (the plan
  // does not know them). The withdrawals go out with the next ticks. A plan
  // that fails afterwards is followed by a refresh, which takes the
  // switches over again.
  async releaseSwitches(names: string[]): Promise<void> {
    for (const s of this.o.dp.switches()) {
      if (!names.includes(s.name) || !this.managed.has(s.name)) continue;
      await this.release(s);
      // Routes that arrive meanwhile no longer reach it.
      for (const [vni, x] of this.switchesByVni) if (x.name === s.name) this.switchesByVni.delete(vni);
    }
  }

  // vpcd stops (or this sync is replaced): the routes stay with the speaker
  // (see releaseAll()), but the flood-list peers the sync added are removed,
  // so that the shutdown can delete the switches (the engine refuses a
  // switch with peers) and nothing is left that no sync owns. EVPN entries
  // go with their switches.
  async stop(): Promise<void> {
    this.stopped = true;
    this.detach();
    if (this.timer !== undefined) clearInterval(this.timer);
    this.o.dp.off('events', this.onEvents);
    for (const [name, ips] of this.peers) await this.removePeers(name, ips);
    this.peers.clear();
  }

  private async removePeers(name: string, ips: Iterable<string>): Promise<void> {
    await Promise.all(
      [...ips].map((ip) => this.o.dp.deletePeer({ switch: name, ip }).catch((err) => this.o.log.warn({ switch: name, vtep: ip, err: (err as Error).message }, 'EVPN: could not remove a flood-list peer'))),
    );
  }

  // After vpcd restarted next to a gobgpd that kept running (see
  // speaker.ts): the type-2 routes it still has from us stay advertised, so
  // the other hosts keep sending this host's guests their traffic, while
  // the new engine learns the MACs again (they keep their sequence numbers).
  // Those not learned again within ADOPT_GRACE_MS are withdrawn; routes of
  // switches that no longer exist at once.
  // Returns the routes gobgpd has from us ("routeKey#seq").
  private async adoptAdvertised(api: BgpSpeakerApi): Promise<Set<string>> {
    const ours = (await api.listRoutes()).filter((r) => r.neighbor === '' && !r.withdraw && r.route.nextHop === this.vtep);
    const gone: EvpnRoute[] = [];
    const has = new Set<string>();
    for (const r of ours) {
      const key = routeKey(r.route);
      has.add(`${key}#${r.route.type === 2 ? r.route.seq : 0}`);
      const sw = this.switchesByVni.get(r.route.vni);
      if (sw === undefined) {
        if (!this.advertised.has(key)) gone.push(r.route);
        continue;
      }
      if (r.route.type !== 2) continue;
      const l = this.local.get(sw.name)?.get(r.route.mac);
      if (l !== undefined) l.seq = Math.max(l.seq, r.route.seq);
      else if (!this.advertised.has(key)) {
        this.advertised.set(key, r.route);
        this.adopted.set(key, r.route);
      }
    }
    for (const r of gone) this.outbox.set(routeKey(r), { route: r, withdraw: true, queuedAt: this.now() });
    if (this.adopted.size > 0) {
      this.o.log.info({ routes: this.adopted.size, graceSeconds: ADOPT_GRACE_MS / 1000 }, 'EVPN: keeping the MAC routes of the previous vpcd while the switches learn the MACs again');
      setTimeout(() => {
        for (const key of this.adopted.keys()) this.withdraw(key);
        this.adopted.clear();
      }, ADOPT_GRACE_MS).unref();
    }
    return has;
  }
  // Routes the previous vpcd advertised whose MACs were not learned again yet.
  private readonly adopted = new Map<string, MacRoute>();

  private watch(api: BgpSpeakerApi): void {
    this.watcher = api.watch(
      (routes) => {
        if (this.api !== api) return;
        const t = this.now();
        for (const r of routes) this.streamAt.set(routeKey(r.route), t);
        this.received(routes);
      },
      (err) => {
        if (this.api !== api) return;
        this.o.log.warn({ err: err?.message }, 'EVPN: the route stream from gobgpd ended');
        this.api = undefined; // routes wait in the outbox until a speaker is attached again
        this.o.onSpeakerLost?.(api);
      },
    );
    // The initial dump arrives at once; after that, remote routes the new
    // table lacks are gone (the speaker restarted and the session did not
    // come back within the hold time). A route the stream brings while the
    // table is being read may be missing from the copy (gobgpd makes it, then
    // answers later): only routes held before the read began are judged.
    const grace = Math.max(3, this.o.bgp.holdTime) * 1000;
    setTimeout(() => {
      if (this.api !== api) return;
      const asked = this.now();
      api.listRoutes().then((rs) => {
        if (this.api !== api || this.stopped) return;
        const present = new Set(rs.filter((r) => !r.withdraw).map((r) => `${routeKey(r.route)}@${vtepOf(r.route)}`));
        this.dropMissing(present, asked);
      }, () => undefined);
    }, grace).unref();
  }

  // The speaker's table read back: every route it holds that the stream did
  // not bring is taken in (what we already hold changes nothing: decide()
  // leaves an entry that is where it should be alone). Removals stay with
  // the stream and the check after a reconnect (watch()): a route missing
  // from a snapshot may be one the stream brought after it.
  // The copy is as old as the read: a route the stream added or withdrew
  // since the read began is left to the stream (else a withdrawal that came
  // while gobgpd answered was undone by its stale copy, for good).
  private resyncing = false;
  private lastResync = 0;
  private async resync(api: BgpSpeakerApi): Promise<void> {
    this.resyncing = true;
    const asked = this.now();
    try {
      const rs = await api.listRoutes();
      const fresh = (r: ReceivedRoute): boolean => (this.streamAt.get(routeKey(r.route)) ?? -Infinity) >= asked;
      if (this.api === api && !this.stopped) this.received(rs.filter((r) => !r.withdraw && !fresh(r)));
      // What the stream did long before any read still under way is no
      // longer needed to judge one.
      for (const [k, t] of this.streamAt) if (t < asked - STREAM_MEMORY_MS) this.streamAt.delete(k);
    } catch {
      // The stream's end (or the next read) reports a speaker that is gone.
    } finally {
      this.resyncing = false;
      this.lastResync = this.now();
    }
  }

  // Remote routes received before `before` and not in `present` (keys
  // routeKey@VTEP) are withdrawn.
  private dropMissing(present: Set<string>, before: number): void {
    let n = 0;
    const touched: { vni: number; mac: string }[] = [];
    for (const [vni, macs] of this.remote) {
      for (const [mac, rs] of macs) {
        for (const [key, rr] of rs) {
          if (present.has(`${key}@${rr.vtep}`) || rr.receivedAt >= before) continue;
          rs.delete(key);
          n++;
          touched.push({ vni, mac });
        }
        if (rs.size === 0) macs.delete(mac);
      }
      if (macs.size === 0) this.remote.delete(vni);
    }
    const floods: number[] = [];
    for (const [vni, keys] of this.imets) {
      for (const [key, { vtep }] of keys) {
        if (present.has(`${key}@${vtep}`) || (this.imetAt.get(key) ?? 0) >= before) continue;
        keys.delete(key);
        this.imetAt.delete(key);
        n++;
        floods.push(vni);
      }
      if (keys.size === 0) this.imets.delete(vni);
    }
    if (n === 0) return;
    this.o.log.info({ routes: n }, 'EVPN: dropping remote routes the speaker no longer has');
    for (const { vni, mac } of touched) {
      const s = this.switchesByVni.get(vni);
      if (s !== undefined) this.decide(s, mac);
    }
    for (const vni of new Set(floods)) {
      const s = this.switchesByVni.get(vni);
      if (s !== undefined) this.syncFlood(s);
    }
  }

  // ---------------------------------------------------------------- switches

  private isManaged(name: string): boolean {
    return this.o.bgp.switches === undefined || this.o.bgp.switches.includes(name);
  }

  // Re-reads the switches and the uplink (after every configuration change):
  // new switches get their IMET route and their local MACs advertised; gone
  // ones are withdrawn and forgotten, and those that stay but are no longer
  // managed (bgp.switches) are handed back (release()). `staticMacs` are the
  // configuration's static entries on local ports.
  async refresh(staticMacs: { switch: string; mac: string }[] = this.lastStatics, configuredPeers?: { switch: string; ip: string }[]): Promise<void> {
    this.lastStatics = staticMacs;
    if (configuredPeers !== undefined) this.configuredPeers = new Set(configuredPeers.map((p) => `${p.switch}/${p.ip}`));
    const up = this.o.dp.uplink();
    const vtep = up?.localIp?.split('/')[0] ?? up?.localIp6?.split('/')[0] ?? '';
    const all = this.o.dp.switches();
    const switches = all.filter((s) => this.isManaged(s.name));
    const names = new Set(switches.map((s) => s.name));
    const relearn = this.learningChanged;
    this.learningChanged = false;
    if (vtep !== this.vtep) {
      // A new VTEP address: every route we have out changes its next hop.
      for (const [key, route] of this.advertised) this.outbox.set(key, { route, withdraw: true, queuedAt: this.now() });
      this.advertised.clear();
      this.vtep = vtep;
    }
    for (const name of [...this.managed]) {
      if (names.has(name)) continue;
      const kept = all.find((s) => s.name === name);
      if (kept !== undefined) {
        await this.release(kept);
        continue;
      }
      this.forgetSwitch(name);
      this.installed.delete(name); // the dp removed them with the switch
      this.peers.delete(name);
      this.learningOff.delete(name);
    }
    this.switchesByVni = new Map(switches.map((s) => [s.vni, s]));
    for (const s of switches) {
      const fresh = !this.managed.has(s.name);
      this.managed.add(s.name);
      if (fresh || relearn) await this.followLearning(s, true);
      if (fresh) {
        // Local MACs it already has (learned before, or static).
        const entries: FdbEntry[] = await this.o.dp.fdb(s.name);
        const local = this.local.get(s.name) ?? new Map<string, LocalMac>();
        this.local.set(s.name, local);
        for (const e of entries) if (e.vtep === undefined && !local.has(e.mac)) local.set(e.mac, { seq: this.remoteSeq(s.vni, e.mac) + (this.hasRemote(s.vni, e.mac) ? 1 : 0), sticky: e.static });
        // Routes received before the switch existed.
        for (const mac of this.remote.get(s.vni)?.keys() ?? []) this.decide(s, mac);
        this.syncFlood(s);
      }
      const local = this.local.get(s.name)!;
      if (!fresh) {
        // One dump of the switch's FDB for both, taken only if one needs it.
        let dump: Promise<FdbEntry[]> | undefined;
        const fdb = (): Promise<FdbEntry[]> => (dump ??= this.o.dp.fdb(s.name));
        await this.forgetGone(s, local, fdb);
        await this.restoreInstalled(s, fdb);
      }
      for (const st of staticMacs) if (st.switch === s.name) local.set(st.mac, { seq: local.get(st.mac)?.seq ?? 0, sticky: true });
      this.advertiseSwitch(s);
    }
  }
  private lastStatics: { switch: string; mac: string }[] = [];
  // The configuration's peers ("switch/ip"): a flood-list peer the sync
  // added and the operator then configured too is the operator's once its
  // IMET route goes (not removed from the engine).
  private configuredPeers = new Set<string>();

  // Local MACs that left the FDB without an `aged` event (a flush, a port
  // deleted, a static entry removed) are withdrawn.
  private async forgetGone(s: SwitchInfo, local: Map<string, LocalMac>, fdb: () => Promise<FdbEntry[]>): Promise<void> {
    if (local.size === 0) return;
    const here = new Set((await fdb()).filter((e) => e.vtep === undefined).map((e) => e.mac));
    for (const [mac, l] of [...local]) {
      if (here.has(mac)) continue;
      local.delete(mac);
      this.withdraw(routeKey(this.macRoute(s, mac, l)));
      this.decide(s, mac);
    }
  }

  // What the sync installed and the dataplane no longer has is installed
  // again: a static peer or remote entry the operator put over ours (the
  // configuration wins) and then removed took the engine's object with it.
  // While the static one is there, the dataplane has the address or MAC,
  // and nothing is done.
  private async restoreInstalled(s: SwitchInfo, fdb: () => Promise<FdbEntry[]>): Promise<void> {
    const have = this.peers.get(s.name);
    if (have !== undefined && have.size > 0) {
      const inDp = new Set(this.o.dp.peers(s.name).map((p) => p.ip));
      let gone = false;
      for (const ip of [...have]) {
        if (inDp.has(ip)) continue;
        have.delete(ip);
        gone = true;
      }
      if (gone) this.syncFlood(s);
    }
    const inst = this.installed.get(s.name);
    if (inst === undefined || inst.size === 0) return;
    const inDp = new Set((await fdb()).map((e) => e.mac));
    for (const mac of [...inst.keys()]) {
      if (inDp.has(mac) || this.dpQueue.has(`${s.name}/${mac}`)) continue;
      inst.delete(mac);
      this.decide(s, mac);
    }
  }

  // Stops managing a switch: our routes for it are withdrawn, its local MACs
  // and queued dataplane changes forgotten. What the sync put in its
  // dataplane is the caller's (gone with a deleted switch; release()).
  private forgetSwitch(name: string): void {
    this.managed.delete(name);
    for (const [key, route] of this.advertised) {
      const sw = this.switchesByVni.get(route.vni);
      if (sw?.name === name) this.withdraw(key);
    }
    this.local.delete(name);
    for (const k of [...this.dpQueue.keys()]) if (k.startsWith(`${name}/`)) this.dpQueue.delete(k);
  }

  // A switch that stays but is no longer managed (bgp.switches changed while
  // running, or releaseAll()): besides forgetting it, the EVPN entries and
  // flood-list peers the sync installed are removed, and learning from
  // VXLAN frames is back if the sync had turned it off. The switch is then
  // as its configuration has it, and floods and learns like any other.
  private async release(s: SwitchInfo): Promise<void> {
    this.forgetSwitch(s.name);
    const installed = this.installed.get(s.name);
    for (const mac of installed?.keys() ?? []) this.dpQueue.set(`${s.name}/${mac}`, { switch: s.name, mac });
    const peers = this.peers.get(s.name) ?? [];
    this.peers.delete(s.name);
    await this.removePeers(s.name, peers);
    await this.followLearning(s, false);
    this.o.log.info({ switch: s.name, macs: installed?.size ?? 0 }, 'EVPN hands this switch back: its routes are withdrawn, its EVPN entries and flood-list peers removed');
  }

  // Learning from VXLAN frames on switch `s`: off while EVPN manages it with
  // bgp.remoteLearning false (the sync remembers that it turned it off);
  // back on when the sync lets the switch go or the setting turns true. A
  // switch configured without it is left alone.
  private readonly learningOff = new Set<string>();
  private async followLearning(s: SwitchInfo, managed: boolean): Promise<void> {
    const off = managed && !this.o.bgp.remoteLearning;
    if (off && s.remoteLearning) {
      await this.o.dp.updateSwitch(s.name, { remoteLearning: false });
      this.learningOff.add(s.name);
      this.o.log.info({ switch: s.name }, 'EVPN manages this switch: learning from VXLAN frames is off (bgp.remoteLearning)');
    } else if (!off && this.learningOff.delete(s.name) && !s.remoteLearning) {
      await this.o.dp.updateSwitch(s.name, { remoteLearning: true });
      this.o.log.info({ switch: s.name }, 'learning from VXLAN frames is on again on this switch');
    }
  }

  private advertiseSwitch(s: SwitchInfo): void {
    if (this.vtep === '') return;
    const imet = this.imetRoute(s);
    const key = routeKey(imet);
    if (!this.advertised.has(key)) this.advertise(imet);
    let count = [...this.advertised.values()].filter((r) => r.type === 2 && r.vni === s.vni).length;
    for (const [mac, l] of this.local.get(s.name) ?? []) {
      if (l.duplicate) continue;
      const route = this.macRoute(s, mac, l);
      const prev = this.advertised.get(routeKey(route));
      if (prev !== undefined && (prev as MacRoute).seq === l.seq && (prev as MacRoute).sticky === l.sticky) continue;
      if (this.ourRouteLoses(s.vni, mac, l)) continue;
      if (prev === undefined && count >= s.macLimit) {
        this.counters.limited++;
        continue;
      }
      if (prev === undefined) count++;
      this.advertise(route);
    }
  }

  private imetRoute(s: SwitchInfo): ImetRoute {
    return { type: 3, rd: autoRd(this.o.bgp.routerId, s.vni), ethernetTag: 0, originator: this.vtep, vni: s.vni, nextHop: this.vtep, rts: [autoRouteTarget(this.o.bgp.asn, s.vni)], encapVxlan: true };
  }

  private macRoute(s: SwitchInfo, mac: string, l: LocalMac): MacRoute {
    return { type: 2, rd: autoRd(this.o.bgp.routerId, s.vni), ethernetTag: 0, mac, vni: s.vni, nextHop: this.vtep, rts: [autoRouteTarget(this.o.bgp.asn, s.vni)], encapVxlan: true, seq: l.seq, sticky: l.sticky };
  }

  private advertise(route: EvpnRoute, move?: number): void {
    const key = routeKey(route);
    this.advertised.set(key, route);
    this.outbox.set(key, { route, withdraw: false, queuedAt: this.now(), move });
  }

  private withdraw(key: string): void {
    const route = this.advertised.get(key);
    if (route === undefined) return;
    this.advertised.delete(key);
    this.outbox.set(key, { route, withdraw: true, queuedAt: this.now() });
  }

  // ---------------------------------------------------------------- local MACs

  private events(events: DataplaneEvent[]): void {
    for (const e of events) {
      if (e.type !== 'learned' && e.type !== 'moved' && e.type !== 'aged') continue;
      if (!this.managed.has(e.switch)) continue;
      const s = this.o.dp.switches().find((x) => x.name === e.switch);
      if (s === undefined) continue;
      const local = this.local.get(s.name) ?? new Map<string, LocalMac>();
      this.local.set(s.name, local);
      const here = e.vtep === undefined;
      if (e.type === 'aged') {
        if (!here) continue;
        const l = local.get(e.mac);
        if (l === undefined || l.sticky) continue;
        local.delete(e.mac);
        this.withdraw(routeKey(this.macRoute(s, e.mac, l)));
        // A remote route may now decide where the MAC is.
        this.decide(s, e.mac);
        continue;
      }
      if (!here) {
        // Learned behind a VTEP from VXLAN frames (bgp.remoteLearning): not ours.
        const l = local.get(e.mac);
        if (l !== undefined && !l.sticky) {
          local.delete(e.mac);
          this.withdraw(routeKey(this.macRoute(s, e.mac, l)));
        }
        continue;
      }
      const known = local.get(e.mac);
      if (known !== undefined) continue; // port to port on this host: the route is the same
      const fromRemote = e.type === 'moved' && e.oldVtep !== undefined;
      const k = `${s.name}/${e.mac}`;
      const seq = this.hasRemote(s.vni, e.mac) ? this.remoteSeq(s.vni, e.mac) + 1 : 0;
      const l: LocalMac = { seq, sticky: false };
      if (fromRemote || this.hasRemote(s.vni, e.mac)) {
        this.counters.moves++;
        // A duplicate is no longer advertised (section 15.1: stop sending
        // routes for it), so the two hosts stop outbidding each other.
        if (this.noteMove(k)) l.duplicate = true;
      }
      const before = this.adopted.get(routeKey(this.macRoute(s, e.mac, l)));
      if (before !== undefined) {
        // Learned again after a vpcd restart: the route we had out stays as it was.
        this.adopted.delete(routeKey(before));
        l.seq = Math.max(l.seq, before.seq);
      }
      if (fromRemote) l.movedAt = this.now();
      local.set(e.mac, l);
      // The dp moved its EVPN entry to the local port itself.
      this.installed.get(s.name)?.delete(e.mac);
      this.dpQueue.delete(k);
      if (l.duplicate) {
        this.withdraw(routeKey(this.macRoute(s, e.mac, l)));
        continue;
      }
      if (this.ourRouteLoses(s.vni, e.mac, l)) continue;
      if (this.countAdvertised(s.vni) >= s.macLimit) {
        this.counters.limited++;
        continue;
      }
      this.advertise(this.macRoute(s, e.mac, l), l.movedAt);
    }
  }

  // Records a move; true when the MAC is (now) a duplicate.
  private noteMove(k: string): boolean {
    if (this.duplicates.has(k)) return true;
    const t = this.now();
    const log = (this.moveLog.get(k) ?? []).filter((x) => t - x < DUP_WINDOW_MS);
    log.push(t);
    this.moveLog.set(k, log);
    if (log.length > DUP_MOVES) {
      this.duplicates.add(k);
      this.counters.duplicates++;
      this.o.log.warn({ mac: k }, `EVPN: MAC moved ${log.length} times in ${DUP_WINDOW_MS / 1000} s: a duplicate MAC (RFC 7432 section 15.1); its sequence number is no longer raised`);
      return true;
    }
    return false;
  }

  private countAdvertised(vni: number): number {
    let n = 0;
    for (const r of this.advertised.values()) if (r.type === 2 && r.vni === vni) n++;
    return n;
  }

  // ---------------------------------------------------------------- remote routes

  private hasRemote(vni: number, mac: string): boolean {
    return (this.remote.get(vni)?.get(mac)?.size ?? 0) > 0;
  }

  private remoteSeq(vni: number, mac: string): number {
    let seq = 0;
    for (const r of this.remote.get(vni)?.get(mac)?.values() ?? []) seq = Math.max(seq, r.seq);
    return seq;
  }

  // The winning remote route for a MAC: highest sequence number, then the
  // lowest VTEP address.
  private bestRemote(vni: number, mac: string): RemoteRoute | undefined {
    let best: RemoteRoute | undefined;
    for (const r of this.remote.get(vni)?.get(mac)?.values() ?? []) {
      if (best === undefined || r.seq > best.seq || (r.seq === best.seq && cmpIp(r.vtep, best.vtep) < 0)) best = r;
    }
    return best;
  }

  private ourRouteLoses(vni: number, mac: string, l: LocalMac): boolean {
    const b = this.bestRemote(vni, mac);
    if (b === undefined) return false;
    if (l.sticky && !b.sticky) return false;
    return b.seq > l.seq || (b.seq === l.seq && cmpIp(b.vtep, this.vtep) < 0);
  }

  private received(routes: ReceivedRoute[]): void {
    const touched = new Map<string, { s: SwitchInfo; mac: string }>();
    const floods = new Set<SwitchInfo>();
    for (const r of routes) {
      const route = r.route;
      const vtep = vtepOf(route);
      if (r.neighbor === '') continue; // ours
      if (!r.withdraw && (vtep === '' || vtep === this.vtep)) continue;
      const key = routeKey(route);
      if (route.type === 3 && r.withdraw) {
        // A withdrawal may come without its attributes (no PMSI label): find it by key.
        for (const [vni, m] of this.imets) {
          if (!m.delete(key)) continue;
          this.imetAt.delete(key);
          if (m.size === 0) this.imets.delete(vni);
          const s = this.switchesByVni.get(vni);
          if (s !== undefined) floods.add(s);
        }
        continue;
      }
      const vni = vniOf(route, (v) => this.switchesByVni.has(v) || this.remote.has(v)) ?? route.vni;
      if (vni === 0) continue;
      const s = this.switchesByVni.get(vni);
      if (route.type === 3) {
        const m = this.imets.get(vni) ?? new Map<string, { vtep: string; neighbor: string }>();
        if (r.withdraw) {
          m.delete(key);
          this.imetAt.delete(key);
        } else {
          if (m.get(key)?.vtep !== vtep) this.imetAt.set(key, this.now());
          m.set(key, { vtep, neighbor: r.neighbor });
        }
        if (m.size === 0) this.imets.delete(vni);
        else this.imets.set(vni, m);
        if (s !== undefined) floods.add(s);
        continue;
      }
      const byMac = this.remote.get(vni) ?? new Map<string, Map<string, RemoteRoute>>();
      this.remote.set(vni, byMac);
      const rs = byMac.get(route.mac) ?? new Map<string, RemoteRoute>();
      if (r.withdraw) rs.delete(key);
      else {
        const had = rs.get(key);
        const same = had !== undefined && had.vtep === vtep && had.seq === route.seq;
        const rr: RemoteRoute = { vtep, seq: route.seq, sticky: route.sticky, neighbor: r.neighbor, receivedAt: same ? had.receivedAt : this.now() };
        if (route.ip !== undefined) rr.ip = route.ip;
        rs.set(key, rr);
      }
      if (rs.size === 0) byMac.delete(route.mac);
      else byMac.set(route.mac, rs);
      if (byMac.size === 0) this.remote.delete(vni);
      if (s !== undefined) touched.set(`${s.name}/${route.mac}`, { s, mac: route.mac });
    }
    for (const { s, mac } of touched.values()) this.decide(s, mac);
    for (const s of floods) this.syncFlood(s);
  }

  // Where a MAC of switch `s` lives, after a change of its routes or of its
  // local presence; queues the dataplane change and our route's.
  private decide(s: SwitchInfo, mac: string): void {
    if (!this.managed.has(s.name)) return;
    const best = this.bestRemote(s.vni, mac);
    const l = this.local.get(s.name)?.get(mac);
    const k = `${s.name}/${mac}`;
    if (l !== undefined) {
      const ours = routeKey(this.macRoute(s, mac, l));
      if (l.duplicate) return; // neither advertised nor followed until it calms down
      if (best === undefined || !this.ourRouteLoses(s.vni, mac, l)) {
        // We win (or nobody else claims it): make sure our route is out.
        if (!this.advertised.has(ours) && this.vtep !== '' && this.countAdvertised(s.vni) < s.macLimit) this.advertise(this.macRoute(s, mac, l));
        return;
      }
      // It moved away (or lost a tie): withdraw ours, forward to the winner.
      this.counters.moves++;
      this.local.get(s.name)!.delete(mac);
      this.withdraw(ours);
    }
    const cur = this.installed.get(s.name)?.get(mac);
    const queued = this.dpQueue.get(k);
    const want = best?.vtep;
    if (want === (queued !== undefined ? queued.vtep : cur)) return;
    if (want !== undefined && cur !== undefined && cur !== want) this.counters.moves++;
    this.dpQueue.set(k, { switch: s.name, mac, vtep: want, receivedAt: best?.receivedAt });
  }

  private syncFlood(s: SwitchInfo): void {
    const want = new Set([...(this.imets.get(s.vni)?.values() ?? [])].map((e) => e.vtep));
    const have = this.peers.get(s.name) ?? new Set<string>();
    this.peers.set(s.name, have);
    const configured = new Set(want.size > 0 ? this.o.dp.peers(s.name).map((p) => p.ip) : []);
    for (const ip of want) {
      if (have.has(ip)) continue;
      if (configured.has(ip)) continue; // a configured peer: the operator's, not ours to remove later
      have.add(ip);
      this.o.dp.addPeer({ switch: s.name, ip }).catch((err) => {
        have.delete(ip);
        this.counters.installErrors++;
        this.o.log.warn({ switch: s.name, vtep: ip, err: (err as Error).message }, 'EVPN: could not add a flood-list peer');
      });
    }
    for (const ip of [...have]) {
      if (want.has(ip)) continue;
      have.delete(ip);
      if (this.configuredPeers.has(`${s.name}/${ip}`)) continue; // the operator's now: it stays
      this.o.dp.deletePeer({ switch: s.name, ip }).catch((err) => this.o.log.warn({ switch: s.name, vtep: ip, err: (err as Error).message }, 'EVPN: could not remove a flood-list peer'));
    }
  }

  // ---------------------------------------------------------------- batching

  private tick(): void {
    const t = this.now();
    if (this.api !== undefined && !this.resyncing && t - this.lastResync >= RESYNC_MS) void this.resync(this.api);
    const rate = this.o.bgp.advertiseRate;
    this.credit = Math.min(rate, this.credit + ((t - this.lastTick) / 1000) * rate);
    this.lastTick = t;
    void this.flush();
    void this.drain();
  }

  // Sends queued updates to the speaker, within the rate's credit.
  async flush(): Promise<void> {
    if (this.flushing || this.api === undefined || this.outbox.size === 0) return;
    const n = Math.floor(this.credit);
    if (n <= 0) return;
    this.flushing = true;
    const api = this.api;
    const batch: [string, OutboxEntry][] = [];
    for (const e of this.outbox) {
      if (batch.length >= Math.min(n, MAX_BATCH)) break;
      batch.push(e);
    }
    for (const [k] of batch) this.outbox.delete(k);
    this.credit -= batch.length;
    const putBack = (entries: [string, OutboxEntry][]): void => {
      // Unless something newer was queued meanwhile.
      for (const [k, v] of entries) if (!this.outbox.has(k)) this.outbox.set(k, v);
    };
    try {
      await this.send(api, batch);
    } catch (err) {
      if (!refused(err) || this.api !== api) {
        // gobgpd is away (it died, or the call timed out): all of it again later.
        putBack(batch);
        this.o.log.warn({ err: (err as Error).message, routes: batch.length }, 'EVPN: gobgpd did not take an update; retrying');
      } else {
        // One bad route fails the whole stream: send them one by one, and
        // drop those gobgpd refuses (logged and counted).
        for (let i = 0; i < batch.length; i++) {
          const e = batch[i]!;
          try {
            await this.send(api, [e]);
          } catch (one) {
            if (!refused(one)) {
              putBack(batch.slice(i));
              break;
            }
            this.counters.rejected++;
            if (!e[1].withdraw) this.advertised.delete(e[0]);
            this.o.log.warn({ err: (one as Error).message, route: e[0], withdraw: e[1].withdraw }, 'EVPN: gobgpd refused a route; dropped');
          }
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private async send(api: BgpSpeakerApi, batch: [string, OutboxEntry][]): Promise<void> {
    await api.updateRoutes(batch.filter(([, v]) => !v.withdraw).map(([, v]) => v.route), batch.filter(([, v]) => v.withdraw).map(([, v]) => v.route));
    this.counters.updatesSent += batch.length;
    const t = this.now();
    for (const [, v] of batch) if (v.move !== undefined) this.o.onMoveConverged?.('advertise', (t - v.move) / 1000);
  }

  // Applies queued dataplane changes, DP_BATCH at a time, pipelined.
  async drain(): Promise<void> {
    if (this.draining || this.dpQueue.size === 0) return;
    this.draining = true;
    try {
      while (this.dpQueue.size > 0 && !this.stopped) {
        const batch = [...this.dpQueue.entries()].slice(0, DP_BATCH);
        for (const [k] of batch) this.dpQueue.delete(k);
        await Promise.all(batch.map(([, op]) => this.apply(op)));
      }
    } finally {
      this.draining = false;
    }
  }

  private async apply(op: { switch: string; mac: string; vtep?: string; receivedAt?: number }): Promise<void> {
    const inst = this.installed.get(op.switch) ?? new Map<string, string>();
    this.installed.set(op.switch, inst);
    const cur = inst.get(op.mac);
    try {
      if (op.vtep === undefined) {
        if (cur === undefined) return;
        inst.delete(op.mac);
        await this.o.dp.deleteStaticMac({ switch: op.switch, mac: op.mac }, { evpn: true });
      } else {
        const limit = this.managedSwitch(op.switch)?.macLimit ?? Infinity;
        if (cur === undefined && inst.size >= limit) {
          this.counters.limited++; // the switch's macLimit bounds EVPN entries too
          return;
        }
        inst.set(op.mac, op.vtep);
        await this.o.dp.addRemoteMac({ switch: op.switch, mac: op.mac, vtep: op.vtep }, { evpn: true });
        if (cur !== undefined && cur !== op.vtep && op.receivedAt !== undefined) this.o.onMoveConverged?.('install', (this.now() - op.receivedAt) / 1000);
      }
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (op.vtep === undefined && (code === 'ERR_UNKNOWN_MAC' || code === 'ERR_UNKNOWN_SWITCH')) return; // already gone (a local learn moved it)
      if (op.vtep !== undefined) inst.delete(op.mac);
      this.counters.installErrors++;
      this.o.log.warn({ switch: op.switch, mac: op.mac, vtep: op.vtep ?? null, code, err: (err as Error).message }, 'EVPN: could not update the FDB');
    }
  }

  private managedSwitch(name: string): SwitchInfo | undefined {
    for (const s of this.switchesByVni.values()) if (s.name === name) return s;
    return undefined;
  }

  // True when nothing waits (tests, `bgp status`).
  idle(): boolean {
    return this.outbox.size === 0 && this.dpQueue.size === 0 && !this.flushing && !this.draining;
  }

  // ---------------------------------------------------------------- views

  stats(): EvpnStats {
    let received = 0;
    for (const macs of this.remote.values()) for (const rs of macs.values()) received += rs.size;
    for (const m of this.imets.values()) received += m.size;
    let installed = 0;
    for (const m of this.installed.values()) installed += m.size;
    let floodPeers = 0;
    for (const p of this.peers.values()) floodPeers += p.size;
    return {
      sessionsEstablished: this.sessions,
      routesAdvertised: this.advertised.size,
      routesReceived: received,
      macsInstalled: installed,
      floodPeers,
      pending: this.outbox.size + this.dpQueue.size,
      ...this.counters,
    };
  }

  routes(switchName?: string): EvpnRouteView[] {
    const out: EvpnRouteView[] = [];
    const nameOf = (vni: number): string => this.switchesByVni.get(vni)?.name ?? '';
    for (const r of this.advertised.values()) {
      const sw = nameOf(r.vni);
      if (switchName !== undefined && sw !== switchName) continue;
      if (r.type === 3) out.push({ switch: sw, vni: r.vni, type: 3, vtep: r.nextHop, origin: 'local', best: true });
      else out.push({ switch: sw, vni: r.vni, type: 2, mac: r.mac, vtep: r.nextHop, seq: r.seq, origin: 'local', best: true });
    }
    for (const [vni, keys] of this.imets) {
      const sw = nameOf(vni);
      if (switchName !== undefined && sw !== switchName) continue;
      for (const { vtep, neighbor } of keys.values()) out.push({ switch: sw, vni, type: 3, vtep, origin: 'remote', neighbor, best: true });
    }
    for (const [vni, macs] of this.remote) {
      const sw = nameOf(vni);
      if (switchName !== undefined && sw !== switchName) continue;
      for (const [mac, rs] of macs) {
        const best = this.bestRemote(vni, mac);
        const l = this.local.get(sw)?.get(mac);
        for (const r of rs.values()) {
          const v: EvpnRouteView = { switch: sw, vni, type: 2, mac, vtep: r.vtep, seq: r.seq, origin: 'remote', neighbor: r.neighbor, best: r === best && (l === undefined || this.ourRouteLoses(vni, mac, l)) };
          if (r.ip !== undefined) v.ip = r.ip;
          out.push(v);
        }
      }
    }
    return out.sort((a, b) => (a.switch === b.switch ? (a.type === b.type ? ((a.mac ?? '') + a.vtep < (b.mac ?? '') + b.vtep ? -1 : 1) : a.type - b.type) : a.switch < b.switch ? -1 : 1));
  }
}
