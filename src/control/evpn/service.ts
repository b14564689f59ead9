// vpcd's EVPN service: the speaker (managed gobgpd, or an external one), the
// sync between the switches and BGP (evpn.ts), and what `vpcctl bgp` and
// the metrics read. The daemon creates it when the model has `bgp` and
// tells it about every applied change.

import type { Dataplane } from '../../dataplane';
import type { Logger } from '../logging';
import { isRemote, Model } from '../model';
import { modelBgp, ResolvedBgp } from './config';
import { EvpnRouteView, EvpnStats, EvpnSync } from './evpn';
import * as grpc from '@grpc/grpc-js';
import { BgpApiError, BgpPeerStatus, GobgpClient, GobgpProtos, PeerConfig } from './gobgp';
import { ManagedSpeaker, peerConfigs, restartReason } from './speaker';

// The speaker as vpcd last saw it: `up` answers; `busy` is connected but did
// not answer ListPeer within PEER_TIMEOUT_MS (a large table keeps gobgpd
// busy): the neighbours shown are its last answer, `ageSeconds` old; `down`
// cannot be reached (not running, refused, the connection lost).
export type SpeakerState = 'up' | 'busy' | 'down';

export interface BgpStatus {
  asn: number;
  routerId: string;
  managed: boolean;
  api: string; // the gobgpd API address in use
  speaker: SpeakerState;
  // `neighbors` are from an earlier answer (the speaker is busy or down);
  // ageSeconds: how long ago gobgpd last answered (absent before its first answer).
  stale: boolean;
  ageSeconds?: number;
  pid?: number; // managed gobgpd
  restarts: number; // the managed gobgpd restarted by its supervisor, since vpcd started
  // Managed gobgpd not reachable: the last error or fatal line of its log
  // (why it keeps exiting, e.g. a bgp.localAddress the host does not have).
  reason?: string;
  neighbors: BgpPeerStatus[];
  evpn: EvpnStats;
}

export type EvpnTotals = Pick<EvpnStats, 'updatesSent' | 'moves' | 'duplicates' | 'limited' | 'installErrors' | 'rejected'> & { restarts: number };
const TOTAL_KEYS = ['updatesSent', 'moves', 'duplicates', 'limited', 'installErrors', 'rejected'] as const;

export interface EvpnServiceOptions {
  dp: Dataplane;
  stateDir: string;
  log: Logger;
  onMoveConverged?: (phase: 'advertise' | 'install', seconds: number) => void;
}

const PEER_POLL_MS = 1000;
const PEER_TIMEOUT_MS = 3000; // a ListPeer slower than this: the speaker is busy

// The neighbour changes the running gobgpd takes through its API.
export interface NeighborPlan {
  add: PeerConfig[];
  remove: string[];
  change: PeerConfig[]; // replaced (DeletePeer + AddPeer): their sessions restart with the new settings
}

// What changes between the neighbours of a and b; unchanged neighbours are
// in none of the lists (their sessions are not touched).
export function neighborPlan(a: ResolvedBgp, b: ResolvedBgp): NeighborPlan {
  const before = new Map(peerConfigs(a).map((p) => [p.address, p]));
  const after = peerConfigs(b);
  const plan: NeighborPlan = { add: [], remove: [], change: [] };
  for (const p of after) {
    const old = before.get(p.address);
    if (old === undefined) plan.add.push(p);
    else if (JSON.stringify(old) !== JSON.stringify(p)) plan.change.push(p);
    before.delete(p.address);
  }
  plan.remove = [...before.keys()];
  return plan;
}

// The sync's own settings that differ between a and b ("bgp.switches", ...).
function syncChanges(a: ResolvedBgp, b: ResolvedBgp): string[] {
  return (['switches', 'remoteLearning', 'advertiseRate'] as const).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).map((k) => `bgp.${k}`);
}

// A spec no model has: set when a start failed, so that the next update
// starts again instead of finding nothing changed.
const NOT_STARTED = '\u0000not started';

export class EvpnService {
  private bgp?: ResolvedBgp;
  private spec = ''; // JSON of the model's bgp section the service follows; NOT_STARTED after a failed start
  private sync?: EvpnSync;
  private speaker?: ManagedSpeaker;
  private client?: GobgpClient;
  private protos?: GobgpProtos;
  private peers: BgpPeerStatus[] = [];
  private speakerState: SpeakerState = 'down';
  private lastAnswer = 0; // Date.now() of gobgpd's last ListPeer answer; 0: none yet
  private polling = false;
  private poll?: NodeJS.Timeout;
  private externalRetry?: NodeJS.Timeout;
  private chain: Promise<void> = Promise.resolve();
  private model?: Model;
  // What syncs and speakers this process stopped had counted (a bgp change
  // that restarts gobgpd replaces both; `bgp` taken out stops them), so that
  // totals() counts from vpcd's start.
  private readonly carried: EvpnTotals = { updatesSent: 0, moves: 0, duplicates: 0, limited: 0, installErrors: 0, rejected: 0, restarts: 0 };

  constructor(private readonly o: EvpnServiceOptions) {}

  // Running totals since vpcd started, with or without a bgp section now
  // (the vpcd_evpn_*_total counters).
  totals(): EvpnTotals {
    const now = this.sync?.counters;
    const t = { ...this.carried };
    for (const k of TOTAL_KEYS) t[k] += now?.[k] ?? 0;
    t.restarts += this.speaker?.restarts ?? 0;
    return t;
  }

  get active(): boolean {
    return this.sync !== undefined;
  }

  // Follows the model: starts, reconfigures or stops the EVPN service;
  // otherwise refreshes the switches. A change of the neighbours goes to the
  // running gobgpd (sessions to the others stay up), one of the sync's own
  // settings (switches, remoteLearning, advertiseRate) to the sync alone (no
  // session changes); any other change of `bgp` restarts the speaker.
  // Changes are applied one at a time, in order.
  update(model: Model): Promise<void> {
    this.model = model;
    const next = this.chain.then(() => this.apply(model));
    this.chain = next.catch((err) => this.o.log.error({ err: (err as Error).message }, 'EVPN: could not follow the configuration'));
    return next;
  }

  private async apply(model: Model): Promise<void> {
    if (this.model !== model) return; // a newer one is queued
    const spec = model.bgp === undefined ? '' : JSON.stringify(model.bgp);
    const statics = model.fdb.filter((f) => !isRemote(f.spec)).map((f) => ({ switch: f.spec.switch, mac: f.spec.mac }));
    const peers = model.peers.map((p) => ({ switch: p.spec.switch, ip: p.spec.ip }));
    if (spec !== this.spec) {
      const next = modelBgp(model);
      if (next !== undefined && (await this.applyLive(next))) {
        this.spec = spec;
        await this.sync?.refresh(statics, peers);
        return;
      }
      // The switches go back to their configuration before the old sync
      // stops: a new sync (or none) then starts from a clean dataplane, and
      // no entry or flood-list peer is left behind that nobody owns (a new
      // sync would take such a peer for a configured one, for good).
      await this.sync?.releaseAll();
      await this.stopAll();
      this.spec = spec;
      if (next === undefined) return;
      this.bgp = next;
      try {
        await this.startAll(statics, peers);
      } catch (err) {
        // Not started (no gobgpd to run, or it never answered): what did
        // start is undone, and the next update starts again from nothing
        // (vpcd's start awaits one: a failure there stops vpcd with the
        // reason).
        await this.sync?.releaseAll().catch(() => undefined);
        await this.stopAll().catch(() => undefined);
        this.bgp = undefined;
        this.spec = NOT_STARTED;
        throw err;
      }
      return;
    }
    await this.sync?.refresh(statics, peers);
  }

  // Applies `next` to the running service when only the neighbours (and
  // their session settings) or the sync's own settings changed. Neighbours
  // go to the managed gobgpd: AddPeer for a new one, DeletePeer for a
  // removed one, both for a changed one; the others are not touched. Then
  // checks that gobgpd has exactly the configured neighbours. The sync takes
  // the rest (the caller refreshes it). false: the change needs a new
  // gobgpd (a global setting), or the live change failed; the caller
  // restarts it (and says so in the log).
  private async applyLive(next: ResolvedBgp): Promise<boolean> {
    const prev = this.bgp;
    const { log } = this.o;
    if (prev === undefined || this.sync === undefined) return false;
    const why = restartReason(prev, next);
    if (why !== undefined) {
      if (prev.managed) log.warn({ changed: why }, 'bgp: gobgpd cannot take this change while it runs; restarting it (every BGP session of this host restarts)');
      else log.info({ changed: why }, 'bgp: reconnecting to the external gobgpd with the new settings');
      return false;
    }
    const plan = neighborPlan(prev, next);
    if (plan.add.length + plan.remove.length + plan.change.length === 0) {
      // Nothing for gobgpd (managed or external): the sync's settings alone.
      this.bgp = next;
      this.sync.reconfigure(next);
      this.speaker?.reconfigure(next);
      log.info({ changed: syncChanges(prev, next) }, 'bgp: change applied to the EVPN sync (no BGP session changes)');
      return true;
    }
    const client = this.client;
    if (!prev.managed || this.speaker?.pid === undefined || client === undefined) {
      // External gobgpd: its neighbours are the operator's; reconnecting
      // changes no session. Managed gobgpd not running right now: it starts
      // with the new configuration.
      return false;
    }
    try {
      for (const a of [...plan.remove, ...plan.change.map((p) => p.address)]) await client.deletePeer(a);
      for (const p of [...plan.change, ...plan.add]) await client.addPeer(p);
      const have = (await client.listPeers(PEER_TIMEOUT_MS * 5)).map((p) => p.address).sort();
      const want = next.neighbors.map((n) => n.address).sort();
      if (JSON.stringify(have) !== JSON.stringify(want)) throw new Error(`gobgpd has neighbours [${have.join(', ')}] after the change, not [${want.join(', ')}]`);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'bgp: the neighbour change could not be applied to the running gobgpd; restarting it with the new configuration');
      return false;
    }
    this.bgp = next;
    this.sync.reconfigure(next);
    this.speaker.reconfigure(next);
    log.info(
      { added: plan.add.map((p) => p.address), removed: plan.remove, changed: plan.change.map((p) => p.address) },
      'bgp: change applied to the running gobgpd (sessions to unchanged neighbours stay up)',
    );
    return true;
  }

  private async startAll(statics: { switch: string; mac: string }[], peers: { switch: string; ip: string }[]): Promise<void> {
    const bgp = this.bgp!;
    const { log } = this.o;
    this.protos ??= new GobgpProtos();
    this.sync = new EvpnSync({
      dp: this.o.dp,
      bgp,
      log,
      onMoveConverged: this.o.onMoveConverged,
      onSpeakerLost: (lost) => {
        // Reconnect to the same gobgpd unless a new connection replaced it
        // meanwhile (a managed gobgpd that died is restarted and connected
        // by its supervisor).
        setTimeout(() => {
          if (this.sync !== sync || this.client !== lost) return;
          if (bgp.managed && this.speaker?.pid === undefined) return;
          connect((lost as GobgpClient).address, false).catch((err) => log.warn({ err: (err as Error).message }, 'EVPN: reconnecting to gobgpd failed'));
        }, 2000).unref();
      },
    });
    await this.sync.start();
    await this.sync.refresh(statics, peers);
    const sync = this.sync;
    const connect = async (address: string, adopt: boolean): Promise<void> => {
      this.client?.close();
      const client = new GobgpClient(address, this.protos, (err) => log.warn({ err: err.message }, 'EVPN: a route from gobgpd could not be decoded; ignored'));
      this.client = client;
      await client.waitReady(15_000);
      if (!bgp.managed) {
        // An external gobgpd: it must speak for the AS we think it does.
        const g = await client.getBgp();
        if (g.global !== undefined && g.global.asn !== 0 && g.global.asn !== bgp.asn) {
          throw new Error(`the gobgpd at ${address} runs AS ${g.global.asn}, not bgp.asn ${bgp.asn}`);
        }
      }
      await sync.attach(client, { adopt });
      this.speakerState = 'up';
      log.info({ api: address, adopted: adopt, managed: bgp.managed }, 'EVPN: connected to gobgpd');
    };
    if (bgp.managed) {
      this.speaker = new ManagedSpeaker({ bgp, dir: this.o.stateDir, log, onStart: (api, adopted) => connect(api, adopted) });
      await this.speaker.start();
    } else {
      const tryConnect = (): void => {
        connect(bgp.address!, true).catch((err) => {
          log.error({ err: (err as Error).message, api: bgp.address }, 'EVPN: cannot use the external gobgpd; retrying in 5 s');
          this.externalRetry = setTimeout(tryConnect, 5000);
          this.externalRetry.unref();
        });
      };
      tryConnect();
    }
    this.poll = setInterval(() => this.pollPeers(), PEER_POLL_MS);
    this.poll.unref();
  }

  // One ListPeer at a time, PEER_TIMEOUT_MS at most: one that times out
  // leaves the last answer in place (the speaker is busy, not gone).
  private pollPeers(): void {
    const client = this.client;
    if (client === undefined || this.polling) return;
    this.polling = true;
    client.listPeers(PEER_TIMEOUT_MS).then(
      (peers) => {
        if (this.client !== client) return;
        if (this.speakerState !== 'up') this.o.log.info({ was: this.speakerState }, 'gobgpd answers again');
        this.speakerState = 'up';
        this.lastAnswer = Date.now();
        const before = new Map(this.peers.map((p) => [p.address, p.state]));
        this.peers = peers;
        if (this.sync) this.sync.sessions = peers.filter((p) => p.state === 'established').length;
        for (const p of peers) {
          const was = before.get(p.address);
          if (was !== undefined && was !== p.state && (was === 'established' || p.state === 'established')) {
            this.o.log.info({ neighbor: p.address, from: was, to: p.state }, 'BGP session state changed');
          }
        }
      },
      (err: Error) => {
        if (this.client !== client) return;
        if (err instanceof BgpApiError && err.grpcCode === grpc.status.DEADLINE_EXCEEDED) {
          if (this.speakerState === 'up') this.o.log.warn({ timeoutMs: PEER_TIMEOUT_MS }, 'gobgpd did not answer ListPeer in time (busy?): showing its last answer as stale');
          this.speakerState = 'busy';
          return;
        }
        if (this.speakerState !== 'down') this.o.log.warn({ err: err.message }, 'gobgpd cannot be reached');
        this.speakerState = 'down';
        this.peers = this.peers.map((p) => ({ ...p, state: 'unknown' }));
        if (this.sync) this.sync.sessions = 0;
      },
    ).finally(() => {
      this.polling = false;
    });
  }

  private async stopAll(): Promise<void> {
    if (this.poll !== undefined) clearInterval(this.poll);
    if (this.externalRetry !== undefined) clearTimeout(this.externalRetry);
    this.poll = undefined;
    await this.sync?.stop();
    for (const k of TOTAL_KEYS) this.carried[k] += this.sync?.counters[k] ?? 0;
    this.sync = undefined;
    await this.speaker?.stop();
    this.carried.restarts += this.speaker?.restarts ?? 0;
    this.speaker = undefined;
    this.client?.close();
    this.client = undefined;
    this.peers = [];
    this.speakerState = 'down';
    this.lastAnswer = 0;
  }

  async stop(): Promise<void> {
    await this.chain;
    await this.stopAll();
  }

  // The controller is about to delete these switches: EVPN hands them back
  // first (their routes withdrawn, the flood-list peers and EVPN entries it
  // put in them removed); the engine would refuse to delete a switch with
  // peers. In turn with the configuration changes.
  // Never rejects: a switch that could not be handed back is refused by
  // the engine, and the plan fails with that.
  releaseSwitches(names: string[]): Promise<void> {
    this.chain = this.chain.then(() => this.sync?.releaseSwitches(names)).catch((err) => this.o.log.error({ err: (err as Error).message }, 'EVPN: could not hand switches back'));
    return this.chain;
  }

  status(): BgpStatus | undefined {
    const b = this.bgp;
    if (b === undefined || this.sync === undefined) return undefined;
    const { restarts, ...totals } = this.totals();
    const s: BgpStatus = {
      asn: b.asn,
      routerId: b.routerId,
      managed: b.managed,
      api: this.speaker?.apiAddress ?? b.address ?? '',
      speaker: this.client === undefined ? 'down' : this.speakerState,
      stale: this.speakerState !== 'up',
      restarts, // since vpcd started, as vpcd_evpn_speaker_restarts_total
      neighbors: this.peers.map((n) => {
        const p = this.speaker?.peerProblem(n.address);
        return p === undefined ? n : { ...n, lastProblem: p.msg, lastProblemAt: new Date(p.at).toISOString() };
      }),
      evpn: { ...this.sync.stats(), ...totals }, // the running totals since vpcd started
    };
    if (this.speaker?.pid !== undefined) s.pid = this.speaker.pid;
    const lastError = this.speaker?.lastError;
    if (s.speaker === 'down' && lastError !== undefined) s.reason = `gobgpd: ${lastError.msg}`;
    if (this.lastAnswer > 0) s.ageSeconds = Math.round((Date.now() - this.lastAnswer) / 100) / 10;
    return s;
  }

  // The FDB changed without events (a flush): withdraw what left it.
  resync(): Promise<void> {
    const next = this.chain.then(() => this.sync?.refresh());
    this.chain = next.catch((err) => this.o.log.error({ err: (err as Error).message }, 'EVPN: resync failed'));
    return next;
  }

  routes(switchName?: string): EvpnRouteView[] {
    return this.sync?.routes(switchName) ?? [];
  }

  idle(): boolean {
    return this.sync?.idle() ?? true;
  }
}
