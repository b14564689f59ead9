// vpcd's EVPN service: the speaker (managed gobgpd, or an external one), the
// sync between the switches and BGP (evpn.ts), and what `vpcctl bgp` and
// the metrics read. The daemon creates it when the model has `bgp` and
// tells it about every applied change.

import type { Dataplane } from '../../dataplane';
import type { Logger } from '../logging';
import { isRemote, Model } from '../model';
import { resolveBgp, ResolvedBgp } from './config';
import { EvpnRouteView, EvpnStats, EvpnSync } from './evpn';
import { BgpPeerStatus, GobgpClient, GobgpProtos } from './gobgp';
import { ManagedSpeaker } from './speaker';

export interface BgpStatus {
  asn: number;
  routerId: string;
  managed: boolean;
  api: string; // the gobgpd API address in use
  speaker: 'up' | 'down';
  pid?: number; // managed gobgpd
  restarts: number;
  neighbors: BgpPeerStatus[];
  evpn: EvpnStats;
}

export interface EvpnServiceOptions {
  dp: Dataplane;
  stateDir: string;
  log: Logger;
  onMoveConverged?: (phase: 'advertise' | 'install', seconds: number) => void;
}

const PEER_POLL_MS = 1000;

export class EvpnService {
  private bgp?: ResolvedBgp;
  private spec = '';
  private sync?: EvpnSync;
  private speaker?: ManagedSpeaker;
  private client?: GobgpClient;
  private protos?: GobgpProtos;
  private peers: BgpPeerStatus[] = [];
  private poll?: NodeJS.Timeout;
  private externalRetry?: NodeJS.Timeout;
  private chain: Promise<void> = Promise.resolve();
  private model?: Model;

  constructor(private readonly o: EvpnServiceOptions) {}

  get active(): boolean {
    return this.sync !== undefined;
  }

  // Follows the model: starts, reconfigures (a changed `bgp` restarts the
  // speaker) or stops the EVPN service; otherwise refreshes the switches.
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
    if (spec !== this.spec) {
      await this.stopAll();
      this.spec = spec;
      if (model.bgp === undefined) return;
      const own = model.uplinks.flatMap((u) => [u.spec.localIp, u.spec.localIp6]).filter((a): a is string => a !== undefined).map((a) => a.split('/')[0]!);
      this.bgp = resolveBgp(model.bgp, 'bgp', own);
      await this.startAll(statics);
      return;
    }
    await this.sync?.refresh(statics);
  }

  private async startAll(statics: { switch: string; mac: string }[]): Promise<void> {
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
    await this.sync.refresh(statics);
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

  private pollPeers(): void {
    const client = this.client;
    if (client === undefined) return;
    client.listPeers().then(
      (peers) => {
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
      () => {
        this.peers = this.peers.map((p) => ({ ...p, state: 'unknown' }));
        if (this.sync) this.sync.sessions = 0;
      },
    );
  }

  private async stopAll(): Promise<void> {
    if (this.poll !== undefined) clearInterval(this.poll);
    if (this.externalRetry !== undefined) clearTimeout(this.externalRetry);
    this.poll = undefined;
    await this.sync?.stop();
    this.sync = undefined;
    await this.speaker?.stop();
    this.speaker = undefined;
    this.client?.close();
    this.client = undefined;
    this.peers = [];
  }

  async stop(): Promise<void> {
    await this.chain;
    await this.stopAll();
  }

  status(): BgpStatus | undefined {
    const b = this.bgp;
    if (b === undefined || this.sync === undefined) return undefined;
    const s: BgpStatus = {
      asn: b.asn,
      routerId: b.routerId,
      managed: b.managed,
      api: this.speaker?.apiAddress ?? b.address ?? '',
      speaker: this.client !== undefined && this.peers.every((p) => p.state !== 'unknown') ? 'up' : 'down',
      restarts: this.speaker?.restarts ?? 0,
      neighbors: this.peers,
      evpn: this.sync.stats(),
    };
    if (this.speaker?.pid !== undefined) s.pid = this.speaker.pid;
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
