// The control API: JSON over HTTP on a Unix socket, routes under /v1.
//
//   GET    /v1/status
//   GET    /v1/switches                 POST /v1/switches
//   GET    /v1/switches/:ref            PATCH, DELETE /v1/switches/:ref   (ref: name or UUID)
//   GET    /v1/switches/:ref/fdb        live FDB (learned + static)
//   POST   /v1/switches/:ref/fdb/flush  {port?}: remove learned entries
//   GET    /v1/ports                    POST /v1/ports
//   GET    /v1/ports/:ref               PATCH, DELETE /v1/ports/:ref
//   GET    /v1/uplinks                  POST /v1/uplinks   (at most one uplink)
//   GET    /v1/uplinks/:ref             DELETE /v1/uplinks/:ref  (show includes the neighbour cache)
//   GET    /v1/neighbors                the uplink's neighbour cache (ARP/ND)
//   GET    /v1/peers[?switch=S]         POST /v1/peers {switch, ip, uuid?}
//   GET    /v1/peers/:switch/:ip        DELETE /v1/peers/:switch/:ip
//   GET    /v1/fdb[?switch=S]           static entries    POST /v1/fdb {switch, mac, port | vtep, uuid?}
//   GET    /v1/fdb/:switch/:mac         DELETE /v1/fdb/:switch/:mac
//   GET    /v1/stats
//   GET    /v1/bgp                      the EVPN speaker: sessions, route counts ({bgp: null} without a bgp section)
//   GET    /v1/bgp/routes[?switch=S]    EVPN routes: ours and received
//   GET    /v1/capture?port=P|switch=S&...   a pcap (or NDJSON) stream (observe-api.ts)
//   POST   /v1/trace {count, port?, seconds?}  trace the next `count` frames (replaces a running trace; ends by itself after `seconds`, default 60)
//   GET    /v1/trace                    the trace's records so far, with its id    DELETE /v1/trace[?id=N]: stop (that trace only)
//   GET    /v1/state                    the running desired state (for backups)
//   POST   /v1/apply                    {config: "<yaml>", dryRun?: bool, source?: name}  (any other field: 400)
//   POST   /v1/reload                   {dryRun?}: re-read the --config file (as SIGHUP)
// With --test-hooks only (tests and demos; never in production):
//   POST   /v1/test/ports/:ref/send     {frames: ["<hex>", ...], repeat?: n}
//   POST   /v1/test/ports/:ref/receive  {max?: n} -> {frames: ["<hex>", ...]}
//   (:ref may name a pipe uplink: its far end plays the underlay)
//
// Success: 200 (201 when a create made something) with a JSON body.
// Failure: the status of the error code (errors.ts) and
//   {"error": {"code": "ERR_...", "message": "...", "field"?: "...", ...}}.

import * as fs from 'node:fs';
import * as http from 'node:http';
import { CONFIG_LIMITS, parseConfig } from './config';
import { Controller, MutationResult } from './controller';
import { ControlError, statusOf, toControlError } from './errors';
import { ERROR_CODES, isErrorCode, VXLAN_OVERHEAD, type DataplaneStats } from '../dataplane';
import type { Logger } from './logging';
import type { BgpStatus } from './evpn/service';
import type { EvpnRouteView } from './evpn/evpn';
import { intParam, serveCapture } from './observe-api';
import type { TraceSpec } from '../dataplane';
import { fdbKey, FdbObject, PeerObject, PortObject, sameValue, SwitchObject, UplinkObject } from './model';
import { portMtuWarnings, uplinkMtuWarnings, uplinkPathMtu } from './port-mtu';

export const API_VERSION = 'v1';
// Room for the largest configuration (POST /v1/apply), JSON-escaped.
const MAX_BODY = CONFIG_LIMITS.maxBytes + 1024 * 1024;

export interface ApiContext {
  controller: Controller;
  log: Logger;
  version: string;
  testHooks: boolean;
  configPath?: string;
  socketPath: string;
  metricsAddress?: string;
  reload: (opts?: { dryRun?: boolean }) => Promise<unknown>;
  bgp?: { status(): BgpStatus | undefined; routes(switchName?: string): EvpnRouteView[]; resync(): Promise<void> };
}

type Params = Record<string, string>;
type Handler = (req: { params: Params; query: URLSearchParams; body: unknown }) => Promise<[number, unknown]> | [number, unknown];

interface Route {
  method: string;
  pattern: RegExp;
  keys: string[];
  handler: Handler;
}

function route(method: string, path: string, handler: Handler): Route {
  const keys: string[] = [];
  const pattern = new RegExp(`^${path.replace(/:([a-z]+)/g, (_, k: string) => {
    keys.push(k);
    return '([^/]+)';
  })}$`);
  return { method, pattern, keys, handler };
}

export function switchView(ctx: ApiContext, s: SwitchObject): Record<string, unknown> {
  const info = ctx.controller.dp.getSwitch(s.spec.name);
  return { uuid: s.uuid, ...s.spec, ...(info === undefined ? {} : { ...info, id: undefined }) };
}

// `stats` (one dp.stats() for a whole list) adds the port's link state.
export function portView(ctx: ApiContext, p: PortObject, stats?: DataplaneStats): Record<string, unknown> {
  const info = ctx.controller.dp.getPort(p.spec.name);
  const up = stats?.ports[p.spec.name]?.counters.link_up;
  return { uuid: p.uuid, ...p.spec, ...(info === undefined ? {} : { ...info, id: undefined }), ...(up === undefined ? {} : { link: up ? 'up' : 'down' }) };
}

function fdbView(f: FdbObject): Record<string, unknown> {
  return { uuid: f.uuid, ...f.spec };
}

export function uplinkView(ctx: ApiContext, u: UplinkObject): Record<string, unknown> {
  const info = ctx.controller.dp.uplink();
  const live: Record<string, unknown> = info !== undefined && info.name === u.spec.name ? { ...info, id: undefined } : {};
  // The inner MTUs in force: an interface whose MTU is below the uplink's
  // carries the overlay at its own (port-mtu.ts).
  const path = uplinkPathMtu(u.spec);
  if (live.innerMtu4 !== undefined) live.innerMtu4 = path - VXLAN_OVERHEAD.ipv4;
  if (live.innerMtu6 !== undefined) live.innerMtu6 = path - VXLAN_OVERHEAD.ipv6;
  return { uuid: u.uuid, ...u.spec, ...live };
}

// A peer's counters are its switch's traffic with it (per VNI), not the
// remote VTEP's totals over every switch (those are stats().peers).
function peerView(ctx: ApiContext, p: PeerObject): Record<string, unknown> {
  const counters = ctx.controller.dp.stats().switches[p.spec.switch]?.peers[p.spec.ip];
  return { uuid: p.uuid, ...p.spec, ...(counters === undefined ? {} : { counters }) };
}

// GET /v1/peers: the configured peers (objects, with a UUID), then the
// flood-list peers the EVPN sync put in the dataplane from type-3 routes
// (origin "evpn", no UUID: not objects, they come and go with the routes;
// not deletable). Sorted by switch, then address, within each kind.
export function peerList(ctx: Pick<ApiContext, 'controller'>, sw: string | null): Record<string, unknown>[] {
  const c = ctx.controller;
  const configured = c.current.peers.filter((p) => sw === null || p.spec.switch === sw);
  const known = new Set(configured.map((p) => `${p.spec.switch}/${p.spec.ip}`));
  const stats = c.dp.stats().switches;
  const evpn = c.dp.peers(sw ?? undefined).filter((p) => !known.has(`${p.switch}/${p.ip}`)).map((p) => {
    const counters = stats[p.switch]?.peers[p.ip];
    return { switch: p.switch, ip: p.ip, origin: 'evpn', ...(counters === undefined ? {} : { counters }) };
  });
  return [...configured.map((p) => ({ ...peerView(ctx as ApiContext, p), origin: 'config' })), ...evpn];
}

async function neighbors(ctx: ApiContext): Promise<unknown[]> {
  return ctx.controller.current.uplinks.length === 0 ? [] : ctx.controller.dp.neighbors();
}

// The request's JSON object. With `keys`, a field outside them is refused,
// named: a typo must not widen what a request does (a flush of the whole
// switch for a misspelt `port`, an apply for a misspelt `dryRun`).
function bodyObject(body: unknown, keys?: readonly string[]): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ControlError('ERR_BAD_REQUEST', 'the request body must be a JSON object');
  }
  const b = body as Record<string, unknown>;
  const extra = keys === undefined ? undefined : Object.keys(b).find((k) => !keys.includes(k));
  if (extra !== undefined) throw new ControlError('ERR_BAD_REQUEST', `${extra}: not a field of this request (expected one of: ${keys!.join(', ')})`, { field: extra });
  return b;
}

// Whether the file says what `text` says (its objects: comments and
// spacing aside); a file that cannot be read or parsed does not.
function sameConfig(file: string, text: string): boolean {
  try {
    return sameValue(parseConfig(fs.readFileSync(file, 'utf8'), file), parseConfig(text, file));
  } catch {
    return false;
  }
}

function checkDryRun(v: unknown): void {
  if (v !== undefined && typeof v !== 'boolean') throw new ControlError('ERR_BAD_REQUEST', 'dryRun: must be true or false', { field: 'dryRun' });
}

export function buildRoutes(ctx: ApiContext): Route[] {
  return [
    ...statusRoutes(ctx),
    ...switchRoutes(ctx),
    ...portRoutes(ctx),
    ...uplinkRoutes(ctx),
    ...peerRoutes(ctx),
    ...fdbRoutes(ctx),
    ...traceRoutes(ctx),
    ...stateRoutes(ctx),
    ...(ctx.testHooks ? testHookRoutes(ctx) : []),
  ];
}

// 201 when a create made something, 200 when it found it there.
function createdStatus(r: MutationResult<unknown>): number {
  return r.created === true ? 201 : 200;
}

// The status an error is answered with. The controller answers 400 for
// every problem of the state a mutation would make (invalid, as an unknown
// reference is); one whose code is a conflict (a port that is no member of
// the switch, a VNI or an interface in use) is a clash with what runs, and
// answers 409, as the same code does from the engine (api.md: one status a
// code, whichever check finds it).
export function answerStatus(e: ControlError): number {
  return e.status === 400 && isErrorCode(e.code) && ERROR_CODES[e.code].category === 'conflict' ? statusOf(e.code) : e.status;
}

// The answer to a delete: what was deleted and the plan that did it.
function deletedBody(ctx: ApiContext, r: MutationResult<{ uuid: string }>, name: string): Record<string, unknown> {
  return { deleted: { uuid: r.object.uuid, name }, plan: r.plan, ...warned(ctx, r) };
}

// What the change touches that works badly (an off-subnet peer, a port above
// its switch's inner MTU): answered as well as logged. And on a vpcd that
// runs with a --config file, that its next reload or start applies the file
// again (as for an apply of other text, below).
function warned(ctx: ApiContext, r: MutationResult<unknown>): { warnings?: string[] } {
  const warnings = [...(r.warnings ?? [])];
  if (r.plan.length > 0 && ctx.configPath !== undefined) warnings.push(configFileWarning(ctx.configPath, false));
  return warnings.length > 0 ? { warnings } : {};
}

// `differs`: the file is known to say otherwise (an apply of other text);
// else it may or may not (a single change).
function configFileWarning(configPath: string, differs: boolean): string {
  return `vpcd runs with --config ${configPath}${differs ? ', which says otherwise' : ''}: a reload (SIGHUP) or restart applies that file ` +
    `again and undoes this change${differs ? '' : ' unless the file says the same'}; put the change in that file`;
}

// The daemon and its engine: what runs, and the counters.
function statusRoutes(ctx: ApiContext): Route[] {
  const c = ctx.controller;
  return [
    route('GET', '/v1/status', () => {
      const m = c.current;
      const running = c.dp.running;
      // What the EVPN control plane installed beside the configuration.
      const evpn = ctx.bgp?.status()?.evpn;
      return [200, {
        daemon: 'vpcd',
        version: ctx.version,
        apiVersion: API_VERSION,
        pid: process.pid,
        uptimeSeconds: Math.round((Date.now() - c.startedAt) / 1000),
        engine: { running, ...c.dp.info(), options: c.dp.options },
        socket: ctx.socketPath,
        metrics: ctx.metricsAddress ?? null,
        config: ctx.configPath ?? null,
        stateFile: c.store.file,
        stateGeneration: c.generation,
        counts: {
          switches: m.switches.length, ports: m.ports.length, uplinks: m.uplinks.length, peers: m.peers.length, fdb: m.fdb.length,
          ...(evpn === undefined ? {} : { evpnPeers: evpn.floodPeers, evpnMacs: evpn.macsInstalled }),
        },
        testHooks: ctx.testHooks,
      }];
    }),
    route('GET', '/v1/stats', () => [200, c.dp.stats()]),
  ];
}

// Switches, and the live FDB of one.
function switchRoutes(ctx: ApiContext): Route[] {
  const c = ctx.controller;
  return [
    route('GET', '/v1/switches', () => [200, { switches: c.current.switches.map((s) => switchView(ctx, s)) }]),
    route('POST', '/v1/switches', async ({ body }) => {
      const r = await c.createSwitch(bodyObject(body));
      return [createdStatus(r), { switch: switchView(ctx, r.object), created: r.created, plan: r.plan, ...warned(ctx, r) }];
    }),
    route('GET', '/v1/switches/:ref', ({ params }) => [200, { switch: switchView(ctx, c.requireSwitch(params.ref!)) }]),
    route('PATCH', '/v1/switches/:ref', async ({ params, body }) => {
      const r = await c.updateSwitch(params.ref!, bodyObject(body));
      return [200, { switch: switchView(ctx, r.object), plan: r.plan, ...warned(ctx, r) }];
    }),
    route('DELETE', '/v1/switches/:ref', async ({ params }) => {
      const r = await c.deleteSwitch(params.ref!);
      return [200, deletedBody(ctx, r, r.object.spec.name)];
    }),
    route('GET', '/v1/switches/:ref/fdb', async ({ params }) => {
      const s = c.requireSwitch(params.ref!);
      return [200, { switch: s.spec.name, entries: await c.dp.fdb(s.spec.name) }];
    }),
    route('POST', '/v1/switches/:ref/fdb/flush', async ({ params, body }) => {
      const s = c.requireSwitch(params.ref!);
      const port = body === undefined ? undefined : bodyObject(body, ['port']).port;
      if (port !== undefined && typeof port !== 'string') throw new ControlError('ERR_BAD_REQUEST', 'port: must be a string', { field: 'port' });
      const removed = await c.dp.flushFdb(s.spec.name, port);
      await ctx.bgp?.resync(); // EVPN withdraws the routes of the flushed MACs
      return [200, { switch: s.spec.name, removed }];
    }),
  ];
}

function portRoutes(ctx: ApiContext): Route[] {
  const c = ctx.controller;
  return [
    route('GET', '/v1/ports', () => {
      const stats = c.dp.stats();
      return [200, { ports: c.current.ports.map((p) => portView(ctx, p, stats)) }];
    }),
    route('POST', '/v1/ports', async ({ body }) => {
      const r = await c.createPort(bodyObject(body));
      return [createdStatus(r), { port: portView(ctx, r.object), created: r.created, plan: r.plan, ...warned(ctx, r) }];
    }),
    route('GET', '/v1/ports/:ref', ({ params }) => {
      const p = c.requirePort(params.ref!);
      // One port also shows what its backend opened and how it is doing.
      const backend = c.dp.portStatus(p.spec.name);
      const warnings = portMtuWarnings(c.current, p);
      return [200, { port: { ...portView(ctx, p, c.dp.stats()), ...(backend === undefined ? {} : { backend }), ...(warnings.length > 0 ? { warnings } : {}) } }];
    }),
    route('PATCH', '/v1/ports/:ref', async ({ params, body }) => {
      const r = await c.updatePort(params.ref!, bodyObject(body));
      return [200, { port: portView(ctx, r.object), plan: r.plan, ...warned(ctx, r) }];
    }),
    route('DELETE', '/v1/ports/:ref', async ({ params }) => {
      const r = await c.deletePort(params.ref!);
      return [200, deletedBody(ctx, r, r.object.spec.name)];
    }),
  ];
}

// The uplink and its neighbour cache.
function uplinkRoutes(ctx: ApiContext): Route[] {
  const c = ctx.controller;
  return [
    route('GET', '/v1/uplinks', () => [200, { uplinks: c.current.uplinks.map((u) => uplinkView(ctx, u)) }]),
    route('POST', '/v1/uplinks', async ({ body }) => {
      const r = await c.createUplink(bodyObject(body));
      return [createdStatus(r), { uplink: uplinkView(ctx, r.object), created: r.created, plan: r.plan, ...warned(ctx, r) }];
    }),
    route('GET', '/v1/uplinks/:ref', async ({ params }) => {
      const u = c.requireUplink(params.ref!);
      // As a port show: what its backend opened and its counters (rx_too_big, ...).
      const live = c.dp.uplink()?.name === u.spec.name ? c.dp.portStatus(u.spec.name) : undefined;
      const warnings = uplinkMtuWarnings({ ...c.current, uplinks: [u] });
      return [200, { uplink: { ...uplinkView(ctx, u), ...(live === undefined ? {} : { backend: live }), ...(warnings.length > 0 ? { warnings } : {}) }, neighbors: await neighbors(ctx) }];
    }),
    route('DELETE', '/v1/uplinks/:ref', async ({ params }) => {
      const r = await c.deleteUplink(params.ref!);
      return [200, deletedBody(ctx, r, r.object.spec.name)];
    }),
    route('GET', '/v1/bgp', () => [200, { bgp: ctx.bgp?.status() ?? null }]),
    route('GET', '/v1/bgp/routes', ({ query }) => {
      const sw = query.get('switch') ?? undefined;
      if (sw !== undefined) c.requireSwitch(sw);
      return [200, { bgp: ctx.bgp?.status() !== undefined, routes: ctx.bgp?.routes(sw) ?? [] }];
    }),
    route('GET', '/v1/neighbors', async () => [200, { uplink: c.current.uplinks[0]?.spec.name ?? null, neighbors: await neighbors(ctx) }]),
  ];
}

function peerRoutes(ctx: ApiContext): Route[] {
  const c = ctx.controller;
  return [
    route('GET', '/v1/peers', ({ query }) => {
      const sw = query.get('switch');
      if (sw !== null) c.requireSwitch(sw);
      return [200, { peers: peerList(ctx, sw) }];
    }),
    route('POST', '/v1/peers', async ({ body }) => {
      const r = await c.createPeer(bodyObject(body));
      return [createdStatus(r), { peer: peerView(ctx, r.object), created: r.created, plan: r.plan, ...warned(ctx, r) }];
    }),
    route('GET', '/v1/peers/:switch/:ip', ({ params }) => [200, { peer: peerView(ctx, c.requirePeer(params.switch!, params.ip!)) }]),
    route('DELETE', '/v1/peers/:switch/:ip', async ({ params }) => {
      const r = await c.deletePeer(params.switch!, params.ip!);
      return [200, deletedBody(ctx, r, `${r.object.spec.switch}/${r.object.spec.ip}`)];
    }),
  ];
}

// Static FDB entries (the configured ones; a switch's live FDB is under
// switchRoutes).
function fdbRoutes(ctx: ApiContext): Route[] {
  const c = ctx.controller;
  return [
    route('GET', '/v1/fdb', ({ query }) => {
      const sw = query.get('switch');
      if (sw !== null) c.requireSwitch(sw); // as /v1/peers: an unknown switch is 404, not an empty list
      return [200, { fdb: c.current.fdb.filter((f) => sw === null || f.spec.switch === sw).map(fdbView) }];
    }),
    route('POST', '/v1/fdb', async ({ body }) => {
      const r = await c.createFdb(bodyObject(body));
      return [createdStatus(r), { fdb: fdbView(r.object), created: r.created, plan: r.plan, ...warned(ctx, r) }];
    }),
    route('GET', '/v1/fdb/:switch/:mac', ({ params }) => {
      const f = c.findFdb(params.switch!, params.mac!);
      if (f === undefined) throw new ControlError('ERR_UNKNOWN_MAC', `mac: no static FDB entry for ${params.mac} on switch "${params.switch}"`, { field: 'mac' });
      return [200, { fdb: fdbView(f) }];
    }),
    route('DELETE', '/v1/fdb/:switch/:mac', async ({ params }) => {
      const r = await c.deleteFdb(params.switch!, params.mac!);
      return [200, deletedBody(ctx, r, fdbKey(r.object.spec))];
    }),
  ];
}

// The desired state as a whole: read it, apply a configuration, re-read the
// configuration file.
function stateRoutes(ctx: ApiContext): Route[] {
  const c = ctx.controller;
  return [
    route('GET', '/v1/state', () => [200, { generation: c.generation, state: c.current }]),
    route('POST', '/v1/apply', async ({ body }) => {
      const b = bodyObject(body, ['config', 'source', 'dryRun']);
      if (typeof b.config !== 'string') throw new ControlError('ERR_BAD_REQUEST', 'config: must be the YAML text of a configuration', { field: 'config' });
      checkDryRun(b.dryRun);
      if (b.source !== undefined && typeof b.source !== 'string') throw new ControlError('ERR_BAD_REQUEST', 'source: must be a string (the name errors cite)', { field: 'source' });
      const source = typeof b.source === 'string' ? b.source : 'request';
      const desired = parseConfig(b.config, source);
      const r = await c.apply(desired, { dryRun: b.dryRun === true, source: 'api' });
      // vpcd runs with a --config file that says otherwise: its next reload
      // or start applies that file again and undoes this.
      if (r.plan.length > 0 && ctx.configPath !== undefined && !sameConfig(ctx.configPath, b.config)) {
        r.warnings.push(configFileWarning(ctx.configPath, true));
      }
      return [200, r];
    }),
    route('POST', '/v1/reload', async ({ body }) => {
      const b = body === undefined || body === null ? {} : bodyObject(body, ['dryRun']);
      checkDryRun(b.dryRun);
      return [200, await ctx.reload({ dryRun: b.dryRun === true })];
    }),
  ];
}

// Packet trace (capture streams: observe-api.ts).
function traceRoutes(ctx: ApiContext): Route[] {
  const c = ctx.controller;
  return [
    route('POST', '/v1/trace', async ({ body }) => {
      const spec = bodyObject(body) as unknown as TraceSpec;
      const id = await c.dp.startTrace(spec);
      return [200, { started: spec, id }];
    }),
    route('GET', '/v1/trace', () => [200, c.dp.trace() ?? { count: 0, records: [] }]),
    // ?id=N: only if that trace still runs (stopped: false when another
    // replaced it; that one goes on).
    route('DELETE', '/v1/trace', async ({ query }) => [200, { stopped: await c.dp.stopTrace(intParam(query, 'id', 1, Number.MAX_SAFE_INTEGER)) }]),
  ];
}

// --test-hooks only: play the far end of a pipe port (or pipe uplink).
function testHookRoutes(ctx: ApiContext): Route[] {
  const c = ctx.controller;
  const pipeName = (ref: string): string => c.findUplink(ref)?.spec.name ?? c.requirePort(ref).spec.name;
  return [
    route('POST', '/v1/test/ports/:ref/send', ({ params, body }) => {
      const b = bodyObject(body);
      const name = pipeName(params.ref!);
      if (!Array.isArray(b.frames) || b.frames.some((f) => typeof f !== 'string' || !/^([0-9a-fA-F]{2})+$/.test(f))) {
        throw new ControlError('ERR_BAD_REQUEST', 'frames: must be a list of hex strings', { field: 'frames' });
      }
      const repeat = typeof b.repeat === 'number' && Number.isInteger(b.repeat) && b.repeat > 0 ? Math.min(b.repeat, 100000) : 1;
      const frames = (b.frames as string[]).map((f) => Buffer.from(f, 'hex'));
      const end = c.dp.pipe(name);
      let accepted = 0;
      for (let i = 0; i < repeat; i++) accepted += end.send(frames);
      return [200, { accepted }];
    }),
    route('POST', '/v1/test/ports/:ref/receive', ({ params, body }) => {
      const name = pipeName(params.ref!);
      const max = body !== undefined && typeof bodyObject(body).max === 'number' ? (bodyObject(body).max as number) : 256;
      return [200, { frames: c.dp.pipe(name).receive(max).map((f) => f.toString('hex')) }];
    }),
  ];
}

// The request target; one that is not a valid URL is the client's error.
function parseUrl(target: string): URL {
  try {
    return new URL(target, 'http://vpcd');
  } catch {
    throw new ControlError('ERR_BAD_REQUEST', `the request target ${JSON.stringify(target.slice(0, 200))} is not a valid URL path`);
  }
}

// A %-encoded path parameter ("%ZZ" is malformed: the client's error).
function decodePathSegment(segment: string, name: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ControlError('ERR_BAD_REQUEST', `${name}: ${JSON.stringify(segment.slice(0, 200))} is not valid percent-encoding`, { field: name });
  }
}

export function createApiServer(ctx: ApiContext): http.Server {
  const routes = buildRoutes(ctx);
  return http.createServer((req, res) => {
    const started = process.hrtime.bigint();
    const send = (status: number, payload: unknown): void => {
      const text = `${JSON.stringify(payload)}\n`;
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      ctx.log.debug({ method: req.method, url: req.url, status, ms: Math.round(ms * 10) / 10 }, 'api request');
    };
    const fail = (err: unknown): void => {
      const e = toControlError(err);
      if (e.code === 'ERR_INTERNAL') ctx.log.error({ err: (err as Error)?.stack ?? String(err), url: req.url }, 'api: internal error');
      send(answerStatus(e), { error: e.toJSON() });
    };
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    req.on('end', () => {
      void (async () => {
        try {
          if (size > MAX_BODY) throw new ControlError('ERR_BAD_REQUEST', `the request body exceeds ${MAX_BODY} bytes`);
          const url = parseUrl(req.url ?? '/');
          const pathName = url.pathname.replace(/\/+$/, '') || '/';
          let body: unknown;
          if (size > 0) {
            try {
              body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch (err) {
              throw new ControlError('ERR_BAD_REQUEST', `the request body is not valid JSON: ${(err as Error).message}`);
            }
          }
          if (pathName === '/v1/capture' && req.method === 'GET') {
            await serveCapture(ctx.controller, url.searchParams, req, res);
            ctx.log.debug({ method: req.method, url: req.url }, 'api: capture started');
            return;
          }
          let pathMatched = false;
          for (const r of routes) {
            const m = r.pattern.exec(pathName);
            if (m === null) continue;
            pathMatched = true;
            if (r.method !== req.method) continue;
            const params: Params = {};
            r.keys.forEach((k, i) => {
              params[k] = decodePathSegment(m[i + 1]!, k);
            });
            const [status, payload] = await r.handler({ params, query: url.searchParams, body });
            send(status, payload);
            return;
          }
          if (pathMatched) throw new ControlError('ERR_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${pathName}`);
          throw new ControlError('ERR_ROUTE_NOT_FOUND', `no route ${req.method} ${pathName} (this vpcd speaks API ${API_VERSION})`);
        } catch (err) {
          fail(err);
        }
      })();
    });
  });
}
