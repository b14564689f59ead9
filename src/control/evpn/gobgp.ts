// A client of gobgpd's v3 gRPC API (GoBGP 3.x, Debian's gobgpd 3.10): the
// calls vpcd needs for EVPN, with `google.protobuf.Any` packing.
//
// The .proto files are read at run time from Debian's
// golang-github-osrg-gobgp-dev (GOBGP_PROTO_DIR), with the field names as
// written (keepCase). Any payloads are encoded with the same protobufjs
// definitions; pack() refuses a field the message type does not have (the
// API silently ignores unknown fields: a camelCase `macAddress` would
// advertise a route with an empty MAC).

import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type * as Protobuf from 'protobufjs';
import { AnyMessage, decodePath, EVPN_FAMILY, EvpnRoute, pathOf, ReceivedRoute, RouteDecodeError } from './routes';

export const GOBGP_PROTO_DIR = '/usr/share/gocode/src/github.com/osrg/gobgp/api';
const PROTO_FILES = ['gobgp.proto', 'attribute.proto', 'capability.proto'];
const TYPE_PREFIX = 'type.googleapis.com/';

// protobufjs is @grpc/proto-loader's own parser; take the very copy it uses.
function loadProtobufjs(): typeof Protobuf {
  const loader = require.resolve('@grpc/proto-loader');
  return createRequire(loader)('protobufjs') as typeof Protobuf;
}

export class BgpApiError extends Error {
  constructor(message: string, readonly grpcCode?: number) {
    super(message);
  }
}

// The protobuf side: the service, and Any packing.
export class GobgpProtos {
  readonly root: Protobuf.Root;
  readonly service: grpc.ServiceClientConstructor;

  constructor(dir = GOBGP_PROTO_DIR) {
    const files = PROTO_FILES.map((f) => path.join(dir, f));
    const missing = files.filter((f) => !fs.existsSync(f));
    if (missing.length > 0) {
      throw new BgpApiError(`GoBGP's API definitions are missing (${missing.join(', ')}); install the Debian package golang-github-osrg-gobgp-dev (3.x)`);
    }
    const pb = loadProtobufjs();
    this.root = new pb.Root();
    this.root.resolvePath = (origin, target) => {
      if (target.startsWith('google/protobuf/')) return target; // protobufjs' built-in well-known types
      const local = path.join(dir, path.basename(target));
      return fs.existsSync(local) ? local : pb.util.path.resolve(origin, target);
    };
    this.root.loadSync(files, { keepCase: true });
    this.root.resolveAll();
    const def = protoLoader.loadSync(files, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true, includeDirs: [dir] });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { apipb: { GobgpApi: grpc.ServiceClientConstructor } };
    this.service = pkg.apipb.GobgpApi;
  }

  // { '@type': 'apipb.X', ...fields } -> google.protobuf.Any. Nested
  // AnyMessages (an NLRI's RD, MpReach's nlris, communities) are packed too.
  pack(msg: AnyMessage | PackedAny): PackedAny {
    if (isPacked(msg)) return msg; // packed already (an NLRI inside MP_REACH_NLRI)
    const name = msg['@type'];
    const shared = SHARED_TYPES.has(name);
    const key = shared ? JSON.stringify(msg) : '';
    if (shared) {
      const hit = this.packedCache.get(key);
      if (hit !== undefined) return hit;
    }
    const type = this.lookup(name);
    const message = type.fromObject(this.packFields(type, msg, name));
    const err = type.verify(message);
    if (err !== null) throw new BgpApiError(`${name}: ${err}`);
    const packed = { type_url: TYPE_PREFIX + name, value: Buffer.from(type.encode(message).finish()) };
    if (shared) {
      if (this.packedCache.size >= 4096) this.packedCache.clear();
      this.packedCache.set(key, packed);
    }
    return packed;
  }

  // Attributes most routes share (origin, communities of a VNI, RDs): packed once.
  private readonly packedCache = new Map<string, PackedAny>();

  unpack(any: { type_url?: string; value?: Uint8Array }): AnyMessage {
    const name = (any.type_url ?? '').replace(/^.*\//, '');
    const shared = SHARED_TYPES.has(name);
    const key = shared ? `${name}:${Buffer.from(any.value ?? new Uint8Array()).toString('base64')}` : '';
    if (shared) {
      const hit = this.unpackedCache.get(key);
      if (hit !== undefined) return hit;
    }
    const type = this.lookup(name);
    const obj = type.toObject(type.decode(any.value ?? new Uint8Array()), { longs: Number, enums: String, defaults: true, bytes: Buffer }) as Record<string, unknown>;
    const msg: AnyMessage = { '@type': name, ...this.unpackFields(type, obj) };
    if (shared) {
      if (this.unpackedCache.size >= 4096) this.unpackedCache.clear();
      this.unpackedCache.set(key, msg); // read-only for the callers (decodePath copies what it keeps)
    }
    return msg;
  }

  private readonly unpackedCache = new Map<string, AnyMessage>();

  // Types by name, and what each field holds, computed once (protobufjs'
  // lookups and fullName walk the namespace tree on every call).
  private readonly types = new Map<string, Protobuf.Type>();
  private readonly fieldKinds = new Map<Protobuf.Type, Map<string, { repeated: boolean; any: boolean; message?: Protobuf.Type }>>();

  private lookup(name: string): Protobuf.Type {
    let t = this.types.get(name);
    if (t === undefined) {
      try {
        t = this.root.lookupType(name);
      } catch {
        throw new BgpApiError(`unknown message type ${JSON.stringify(name)} in GoBGP's API`);
      }
      this.types.set(name, t);
    }
    return t;
  }

  private kinds(type: Protobuf.Type): Map<string, { repeated: boolean; any: boolean; message?: Protobuf.Type }> {
    let k = this.fieldKinds.get(type);
    if (k === undefined) {
      k = new Map();
      for (const [name, field] of Object.entries(type.fields)) {
        field.resolve();
        const sub = field.resolvedType;
        const any = sub !== null && sub.fullName === '.google.protobuf.Any';
        const message = !any && sub !== null && 'fields' in sub ? (sub as Protobuf.Type) : undefined;
        k.set(name, message === undefined ? { repeated: field.repeated, any } : { repeated: field.repeated, any, message });
      }
      this.fieldKinds.set(type, k);
    }
    return k;
  }

  private packFields(type: Protobuf.Type, obj: Record<string, unknown>, where: string): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const kinds = this.kinds(type);
    for (const key in obj) {
      if (key === '@type') continue;
      const value = obj[key];
      const kind = kinds.get(key);
      if (kind === undefined) {
        throw new BgpApiError(`${where}.${key}: ${type.name} has no field "${key}" (fields: ${[...kinds.keys()].join(', ')})`);
      }
      const one = (v: unknown, i?: number): unknown => {
        if (kind.any) return this.pack(v as AnyMessage | PackedAny);
        if (kind.message !== undefined && typeof v === 'object' && v !== null && !Buffer.isBuffer(v)) {
          return this.packFields(kind.message, v as Record<string, unknown>, i === undefined ? `${where}.${key}` : `${where}.${key}[${i}]`);
        }
        return v;
      };
      out[key] = kind.repeated && Array.isArray(value) ? value.map((v, i) => one(v, i)) : one(value);
    }
    return out;
  }

  private unpackFields(type: Protobuf.Type, obj: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const kinds = this.kinds(type);
    for (const [key, value] of Object.entries(obj)) {
      const kind = kinds.get(key);
      const one = (v: unknown): unknown => {
        if (v === null || v === undefined || kind === undefined) return v;
        if (kind.any) return this.unpack(v as { type_url: string; value: Uint8Array });
        if (kind.message !== undefined && typeof v === 'object' && !Buffer.isBuffer(v)) return this.unpackFields(kind.message, v as Record<string, unknown>);
        return v;
      };
      out[key] = Array.isArray(value) ? value.map(one) : one(value);
    }
    return out;
  }

  // An API Path (from WatchEvent, ListPath) with its Anys unpacked.
  unpackPath(p: ApiPath): { nlri: AnyMessage; pattrs: AnyMessage[] } {
    return { nlri: this.unpack(p.nlri ?? {}), pattrs: (p.pattrs ?? []).map((a) => this.unpack(a)) };
  }

  // An EVPN route as an API Path, Anys packed.
  packedPath(r: EvpnRoute, withdraw = false): Record<string, unknown> {
    const p = pathOf(r, withdraw);
    const nlri = this.pack(p.nlri);
    const pattrs = p.pattrs.map((a) => this.pack(a['@type'] === 'apipb.MpReachNLRIAttribute' ? { ...a, nlris: [nlri] } : a));
    return { family: p.family, nlri, pattrs, is_withdraw: withdraw };
  }
}

export interface PackedAny {
  type_url: string;
  value: Buffer;
}

function isPacked(v: AnyMessage | PackedAny): v is PackedAny {
  return typeof (v as PackedAny).type_url === 'string' && Buffer.isBuffer((v as PackedAny).value) && (v as AnyMessage)['@type'] === undefined;
}

const SHARED_TYPES = new Set(['apipb.OriginAttribute', 'apipb.ExtendedCommunitiesAttribute', 'apipb.RouteDistinguisherIPAddress', 'apipb.PmsiTunnelAttribute']);

// Paths and peers as grpc-js delivers them (keepCase, enums as strings).
export interface ApiPath {
  nlri?: { type_url: string; value: Buffer };
  pattrs?: { type_url: string; value: Buffer }[];
  is_withdraw?: boolean;
  neighbor_ip?: string;
  family?: { afi: string; safi: string };
  age?: { seconds: number; nanos: number };
  best?: boolean;
  source_id?: string;
}

export interface BgpPeerStatus {
  address: string;
  asn: number;
  state: string; // idle, connect, active, opensent, openconfirm, established
  routerId: string;
  uptimeSeconds: number; // 0 when not established
  establishedAt?: string; // ISO 8601: when the current session came up (established only)
  adminDown: boolean;
  received: number; // EVPN paths received (adj-rib-in)
  accepted: number;
  advertised: number;
  messagesIn: number;
  messagesOut: number;
  // The last warning gobgpd logged about this neighbour (a managed gobgpd:
  // its log), e.g. "sent notification: as number mismatch expected 64513,
  // received 64514", and when (ISO 8601).
  lastProblem?: string;
  lastProblemAt?: string;
}

export interface GlobalConfig {
  asn: number;
  routerId: string;
  listenPort: number; // -1: do not listen
  listenAddresses?: string[];
}

export interface PeerConfig {
  address: string;
  asn: number;
  holdTime: number;
  keepalive: number;
  localAddress?: string;
  routeReflectorClient?: boolean;
  clusterId?: string;
  connectRetry?: number;
  passive?: boolean;
}

// What vpcd needs from a BGP speaker: implemented by GobgpClient, and by
// a fake in the tests.
export interface BgpSpeakerApi {
  // Advertises (withdraw=false) or withdraws routes, in one batch.
  updateRoutes(adds: EvpnRoute[], withdraws: EvpnRoute[]): Promise<void>;
  // Every EVPN route in the global table (ours and received).
  listRoutes(): Promise<ReceivedRoute[]>;
  listPeers(timeoutMs?: number): Promise<BgpPeerStatus[]>;
  // Best-path changes (initial table first). `onEnd` is called once when the
  // stream ends or fails; cancel() ends it without calling onEnd.
  watch(onRoutes: (routes: ReceivedRoute[]) => void, onEnd: (err?: Error) => void): { cancel(): void };
  close(): void;
}

const SESSION_STATES: Record<string, string> = {
  UNKNOWN: 'unknown', IDLE: 'idle', CONNECT: 'connect', ACTIVE: 'active', OPENSENT: 'opensent', OPENCONFIRM: 'openconfirm', ESTABLISHED: 'established',
};

type Unary = (req: unknown, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

export class GobgpClient implements BgpSpeakerApi {
  private readonly client: grpc.Client & Record<string, unknown>;

  constructor(readonly address: string, readonly protos: GobgpProtos = new GobgpProtos(), private readonly onDecodeError: (err: Error) => void = () => undefined) {
    this.client = new protos.service(address, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      'grpc.max_send_message_length': 64 * 1024 * 1024,
    }) as grpc.Client & Record<string, unknown>;
  }

  // Resolves once the channel is connected (gobgpd answers).
  waitReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(new BgpApiError(`gobgpd at ${this.address} does not answer: ${err.message}`)) : resolve()));
    });
  }

  private unary<T>(method: string, req: unknown, timeoutMs = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      (this.client[method] as Unary).call(this.client, req, { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err) reject(new BgpApiError(`gobgpd ${method}: ${err.details || err.message}`, err.code));
        else resolve(res as T);
      });
    });
  }

  private stream<T>(method: string, req: unknown, timeoutMs = 30_000): Promise<T[]> {
    return new Promise((resolve, reject) => {
      const out: T[] = [];
      const call = (this.client[method] as (r: unknown, o: grpc.CallOptions) => grpc.ClientReadableStream<T>).call(this.client, req, { deadline: Date.now() + timeoutMs });
      call.on('data', (d: T) => out.push(d));
      call.on('error', (err: grpc.ServiceError) => reject(new BgpApiError(`gobgpd ${method}: ${err.details || err.message}`, err.code)));
      call.on('end', () => resolve(out));
    });
  }

  getBgp(): Promise<{ global?: { asn: number; router_id: string } }> {
    return this.unary('GetBgp', {});
  }

  async startBgp(g: GlobalConfig): Promise<void> {
    await this.unary('StartBgp', { global: { asn: g.asn, router_id: g.routerId, listen_port: g.listenPort, listen_addresses: g.listenAddresses ?? [] } });
  }

  async addPeer(p: PeerConfig): Promise<void> {
    await this.unary('AddPeer', { peer: peerMessage(p) });
  }

  async deletePeer(address: string): Promise<void> {
    await this.unary('DeletePeer', { address });
  }

  async updateRoutes(adds: EvpnRoute[], withdraws: EvpnRoute[]): Promise<void> {
    if (adds.length === 0 && withdraws.length === 0) return;
    const paths = [...withdraws.map((r) => this.protos.packedPath(r, true)), ...adds.map((r) => this.protos.packedPath(r, false))];
    await new Promise<void>((resolve, reject) => {
      const call = (this.client.AddPathStream as (o: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void) => grpc.ClientWritableStream<unknown>).call(
        this.client,
        { deadline: Date.now() + 60_000 },
        (err) => (err ? reject(new BgpApiError(`gobgpd AddPathStream: ${err.details || err.message}`, err.code)) : resolve()),
      );
      for (let i = 0; i < paths.length; i += 1000) call.write({ table_type: 'GLOBAL', vrf_id: '', paths: paths.slice(i, i + 1000) });
      call.end();
    });
  }

  // The raw table (ListPath on the global RIB), for checks and `bgp routes`.
  async listPaths(): Promise<{ prefix: string; paths: ApiPath[] }[]> {
    const res = await this.stream<{ destination: { prefix: string; paths: ApiPath[] } }>('ListPath', { table_type: 'GLOBAL', name: '', family: { ...EVPN_FAMILY } });
    return res.map((r) => r.destination);
  }

  async listRoutes(): Promise<ReceivedRoute[]> {
    const out: ReceivedRoute[] = [];
    for (const d of await this.listPaths()) for (const p of d.paths) this.decodeInto(p, out);
    return out;
  }

  private decodeInto(p: ApiPath, out: ReceivedRoute[]): void {
    try {
      const { nlri, pattrs } = this.protos.unpackPath(p);
      const route = decodePath(nlri, pattrs);
      if (route === undefined) return;
      const neighbor = p.neighbor_ip === undefined || p.neighbor_ip === '<nil>' ? '' : p.neighbor_ip;
      const r: ReceivedRoute = { route, withdraw: p.is_withdraw === true, neighbor };
      if (p.age?.seconds) r.ageSeconds = Math.max(0, Math.round(Date.now() / 1000 - p.age.seconds));
      out.push(r);
    } catch (err) {
      if (err instanceof RouteDecodeError || err instanceof BgpApiError) this.onDecodeError(err);
      else throw err;
    }
  }

  // `timeoutMs`: a busy gobgpd (a large table) answers late; the caller
  // tells that (DEADLINE_EXCEEDED) from an unreachable one (UNAVAILABLE).
  async listPeers(timeoutMs?: number): Promise<BgpPeerStatus[]> {
    const res = await this.stream<{ peer: ApiPeer }>('ListPeer', { address: '', enableAdvertised: true }, timeoutMs);
    return res.map((r) => peerStatus(r.peer));
  }

  watch(onRoutes: (routes: ReceivedRoute[]) => void, onEnd: (err?: Error) => void): { cancel(): void } {
    const call = (this.client.WatchEvent as (r: unknown) => grpc.ClientReadableStream<{ table?: { paths: ApiPath[] } }>).call(this.client, {
      table: { filters: [{ type: 'BEST', init: true }] },
    });
    let cancelled = false;
    let ended = false;
    const end = (err?: Error): void => {
      if (ended || cancelled) return;
      ended = true;
      onEnd(err);
    };
    call.on('data', (ev: { table?: { paths: ApiPath[] } }) => {
      if (ev.table === undefined || ev.table === null) return;
      const out: ReceivedRoute[] = [];
      for (const p of ev.table.paths ?? []) {
        if (p.family !== undefined && (p.family.afi !== EVPN_FAMILY.afi || p.family.safi !== EVPN_FAMILY.safi)) continue;
        this.decodeInto(p, out);
      }
      if (out.length > 0) onRoutes(out);
    });
    call.on('error', (err: grpc.ServiceError) => end(new BgpApiError(`gobgpd WatchEvent: ${err.details || err.message}`, err.code)));
    call.on('end', () => end(new BgpApiError('gobgpd WatchEvent: the stream ended')));
    return {
      cancel: () => {
        cancelled = true;
        call.cancel();
      },
    };
  }

  close(): void {
    this.client.close();
  }
}

interface ApiPeer {
  conf?: { neighbor_address?: string; peer_asn?: number };
  state?: {
    neighbor_address?: string;
    peer_asn?: number;
    session_state?: string;
    admin_state?: string;
    router_id?: string;
    messages?: { received?: { total?: number }; sent?: { total?: number } };
  };
  timers?: { state?: { uptime?: { seconds?: number } } };
  afi_safis?: { config?: { family?: { afi: string; safi: string } }; state?: { received?: number; accepted?: number; advertised?: number } }[];
}

function peerStatus(p: ApiPeer): BgpPeerStatus {
  const state = SESSION_STATES[p.state?.session_state ?? 'UNKNOWN'] ?? String(p.state?.session_state).toLowerCase();
  const evpn = (p.afi_safis ?? []).find((a) => a.config?.family?.afi === EVPN_FAMILY.afi && a.config?.family?.safi === EVPN_FAMILY.safi);
  const up = p.timers?.state?.uptime?.seconds ?? 0;
  const s: BgpPeerStatus = {
    address: p.state?.neighbor_address || p.conf?.neighbor_address || '',
    asn: p.state?.peer_asn || p.conf?.peer_asn || 0,
    state,
    routerId: p.state?.router_id ?? '',
    uptimeSeconds: state === 'established' && up > 0 ? Math.max(0, Math.round(Date.now() / 1000 - up)) : 0,
    adminDown: p.state?.admin_state === 'DOWN',
    received: evpn?.state?.received ?? 0,
    accepted: evpn?.state?.accepted ?? 0,
    // gobgpd keeps its last count of a session that went down; nothing is
    // advertised over a session that is not up.
    advertised: state === 'established' ? (evpn?.state?.advertised ?? 0) : 0,
    messagesIn: p.state?.messages?.received?.total ?? 0,
    messagesOut: p.state?.messages?.sent?.total ?? 0,
  };
  if (state === 'established' && up > 0) s.establishedAt = new Date(up * 1000).toISOString();
  return s;
}

function peerMessage(p: PeerConfig): Record<string, unknown> {
  return {
    conf: { neighbor_address: p.address, peer_asn: p.asn },
    timers: { config: { hold_time: p.holdTime, keepalive_interval: p.keepalive, connect_retry: p.connectRetry ?? 5 } },
    transport: { local_address: p.localAddress ?? '', passive_mode: p.passive === true },
    route_reflector: { route_reflector_client: p.routeReflectorClient === true, route_reflector_cluster_id: p.clusterId ?? '' },
    afi_safis: [{ config: { family: { ...EVPN_FAMILY }, enabled: true } }],
  };
}
