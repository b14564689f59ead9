// The `bgp:` section of vpcd's configuration: this host's BGP EVPN speaker.
//
//   bgp:
//     asn: 64512                  # our AS (iBGP with neighbours of the same AS)
//     routerId: 198.18.0.1        # IPv4, unique per host
//     neighbors:                  # BGP neighbours (addresses), or mappings
//       - 198.18.0.2
//       - { address: 198.18.0.3, asn: 64513, routeReflectorClient: false }
//     routeReflector: 198.18.0.10 # instead of neighbors: one route reflector
//     holdTime: 90                # seconds, 0 or 3..65535
//     keepalive: 30               # seconds, 1..21845, below holdTime (default holdTime / 3)
//     managed: true               # vpcd runs gobgpd itself (default)
//     address: 127.0.0.1:50051    # managed: false: the operator's gobgpd API
//     port: 179                   # managed: BGP's TCP port
//     localAddress: 198.18.0.1    # managed: source address of the sessions
//     switches: [tenant-a]        # the switches EVPN manages (default: all)
//     remoteLearning: false       # learning from VXLAN frames on those switches
//     advertiseRate: 20000        # routes a second, at most, sent to gobgpd
//
// Validation names the field and the reason (ERR_INVALID_ARGUMENT).

import { isIP } from 'node:net';
import * as os from 'node:os';
import { ControlError, ErrorDetail } from '../errors';
import type { Model } from '../model';

export interface BgpNeighborSpec {
  address: string;
  asn?: number; // default: ours (iBGP)
  routeReflectorClient?: boolean; // we are its route reflector
}

export interface BgpSpec {
  asn: number;
  routerId: string;
  neighbors?: (string | BgpNeighborSpec)[];
  routeReflector?: string;
  clusterId?: string;
  holdTime?: number;
  keepalive?: number;
  managed?: boolean;
  address?: string;
  port?: number;
  localAddress?: string;
  switches?: string[];
  remoteLearning?: boolean;
  advertiseRate?: number;
}

// Every field with its default.
export interface ResolvedBgp {
  asn: number;
  routerId: string;
  neighbors: { address: string; asn: number; routeReflectorClient: boolean }[];
  clusterId?: string;
  holdTime: number;
  keepalive: number;
  managed: boolean;
  address?: string; // external: the API address
  port: number;
  localAddress?: string;
  switches?: string[]; // undefined: every switch
  remoteLearning: boolean;
  advertiseRate: number;
}

const KEYS = ['asn', 'routerId', 'neighbors', 'routeReflector', 'clusterId', 'holdTime', 'keepalive', 'managed', 'address', 'port', 'localAddress', 'switches', 'remoteLearning', 'advertiseRate'];

export const BGP_DEFAULTS = { holdTime: 90, port: 179, advertiseRate: 20000 } as const;

// ASNs that name no real AS: 0 (RFC 7607), AS_TRANS 23456 (RFC 6793),
// 65535 and 4294967295 (RFC 7300).
const RESERVED_ASNS = new Set([0, 23456, 65535, 4294967295]);

function asnError(v: unknown): string | undefined {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 4294967294) return `must be an AS number, an integer in 1..4294967294 (got ${JSON.stringify(v)})`;
  if (RESERVED_ASNS.has(v)) return `AS ${v} is reserved (${v === 23456 ? 'AS_TRANS, RFC 6793' : 'RFC 7300'}) and names no AS`;
  return undefined;
}

function ipv4Error(v: unknown, what: string): string | undefined {
  if (typeof v !== 'string' || isIP(v) !== 4) return `must be ${what}, an IPv4 address (got ${JSON.stringify(v)})`;
  if (v === '0.0.0.0') return `must be ${what}, not 0.0.0.0`;
  return undefined;
}

// Every problem of a `bgp` section, each with its field path (under `at`),
// and the resolved settings when there is none. `ownAddresses` are this
// host's VTEP addresses (a neighbour must not be one of them).
export function parseBgp(value: unknown, at = 'bgp', ownAddresses: string[] = []): { spec?: BgpSpec; resolved?: ResolvedBgp; errors: ErrorDetail[] } {
  const errors: ErrorDetail[] = [];
  const fail = (field: string, reason: string): void => {
    const f = `${at}.${field}`;
    errors.push({ code: 'ERR_INVALID_ARGUMENT', message: `${f}: ${reason}`, field: f });
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    errors.push({ code: 'ERR_INVALID_ARGUMENT', message: `${at}: must be a mapping (asn, routerId, neighbors, ...)`, field: at });
    return { errors };
  }
  const b = value as Record<string, unknown>;
  for (const k of Object.keys(b)) if (!KEYS.includes(k)) fail(k, `unknown field; expected one of ${KEYS.join(', ')}`);
  const e1 = asnError(b.asn);
  if (e1) fail('asn', e1);
  const e2 = ipv4Error(b.routerId, 'the router ID');
  if (e2) fail('routerId', e2);
  const asn = typeof b.asn === 'number' ? b.asn : 0;
  const own = new Set([...(typeof b.routerId === 'string' ? [b.routerId] : []), ...(typeof b.localAddress === 'string' ? [b.localAddress] : []), ...ownAddresses]);

  const neighbors: ResolvedBgp['neighbors'] = [];
  const addNeighbor = (v: unknown, field: string, rrClient: boolean, peerAsn: number): void => {
    if (typeof v !== 'string' || isIP(v) === 0) {
      fail(field, `must be the neighbour's IP address (got ${JSON.stringify(v)})`);
      return;
    }
    if (own.has(v)) {
      fail(field, `${v} is this host's own address (routerId, localAddress or the VTEP); a neighbour is another host`);
      return;
    }
    if (neighbors.some((n) => n.address === v)) {
      fail(field, `neighbour ${v} is listed twice`);
      return;
    }
    neighbors.push({ address: v, asn: peerAsn, routeReflectorClient: rrClient });
  };
  if (b.neighbors !== undefined && b.routeReflector !== undefined) fail('routeReflector', 'give either neighbors or routeReflector, not both');
  if (b.neighbors !== undefined) {
    if (!Array.isArray(b.neighbors)) fail('neighbors', 'must be a list of addresses or mappings {address, asn, routeReflectorClient}');
    else {
      b.neighbors.forEach((n, i) => {
        const f = `neighbors[${i}]`;
        if (typeof n === 'string') {
          addNeighbor(n, f, false, asn);
          return;
        }
        if (typeof n !== 'object' || n === null || Array.isArray(n)) {
          fail(f, 'must be an address or a mapping {address, asn, routeReflectorClient}');
          return;
        }
        const o = n as Record<string, unknown>;
        for (const k of Object.keys(o)) if (!['address', 'asn', 'routeReflectorClient'].includes(k)) fail(`${f}.${k}`, 'unknown field; expected address, asn, routeReflectorClient');
        let peerAsn = asn;
        if (o.asn !== undefined) {
          const e = asnError(o.asn);
          if (e) fail(`${f}.asn`, e);
          else peerAsn = o.asn as number;
        }
        if (o.routeReflectorClient !== undefined && typeof o.routeReflectorClient !== 'boolean') fail(`${f}.routeReflectorClient`, 'must be true or false');
        addNeighbor(o.address, `${f}.address`, o.routeReflectorClient === true, peerAsn);
      });
    }
  }
  if (b.routeReflector !== undefined) addNeighbor(b.routeReflector, 'routeReflector', false, asn);
  if (b.neighbors === undefined && b.routeReflector === undefined && b.managed !== false) fail('neighbors', 'a BGP speaker needs neighbors (or one routeReflector)');
  if (b.clusterId !== undefined) {
    const e = ipv4Error(b.clusterId, 'a cluster ID');
    if (e) fail('clusterId', e);
  }

  const int = (key: string, lo: number, hi: number): number | undefined => {
    const v = b[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
      fail(key, `must be an integer in ${lo}..${hi} (got ${JSON.stringify(v)})`);
      return undefined;
    }
    return v;
  };
  let holdTime = int('holdTime', 0, 65535) ?? BGP_DEFAULTS.holdTime;
  if (holdTime > 0 && holdTime < 3) {
    fail('holdTime', `must be 0 (no keepalives) or at least 3 seconds (RFC 4271), got ${holdTime}`);
    holdTime = BGP_DEFAULTS.holdTime;
  }
  const keepalive = int('keepalive', 1, 21845) ?? Math.max(1, Math.floor(holdTime / 3));
  if (b.keepalive !== undefined && holdTime > 0 && keepalive >= holdTime) fail('keepalive', `must be below holdTime (${holdTime}); a third of it is usual`);
  const port = int('port', 1, 65535) ?? BGP_DEFAULTS.port;
  const advertiseRate = int('advertiseRate', 100, 10_000_000) ?? BGP_DEFAULTS.advertiseRate;

  for (const key of ['managed', 'remoteLearning']) if (b[key] !== undefined && typeof b[key] !== 'boolean') fail(key, 'must be true or false');
  const managed = b.managed !== false;
  let address: string | undefined;
  if (b.address !== undefined) {
    if (managed) fail('address', 'is the API address of an external gobgpd: give it with managed: false (a managed gobgpd gets a loopback port of its own)');
    else if (typeof b.address !== 'string' || !/^(\[[^\]]+\]|[^:\s]+):\d{1,5}$/.test(b.address) || Number(b.address.replace(/^.*:/, '')) > 65535) {
      fail('address', `must be HOST:PORT of gobgpd's gRPC API, e.g. 127.0.0.1:50051 (got ${JSON.stringify(b.address)})`);
    } else address = b.address;
  } else if (!managed) fail('address', 'managed: false needs the address (HOST:PORT) of the gobgpd to use');
  if (b.localAddress !== undefined && (typeof b.localAddress !== 'string' || isIP(b.localAddress) === 0)) fail('localAddress', `must be an IP address (got ${JSON.stringify(b.localAddress)})`);
  let switches: string[] | undefined;
  if (b.switches !== undefined) {
    if (!Array.isArray(b.switches) || b.switches.some((s) => typeof s !== 'string')) fail('switches', 'must be a list of switch names');
    else switches = [...new Set(b.switches as string[])];
  }
  if (errors.length > 0) return { errors };
  const resolved: ResolvedBgp = {
    asn,
    routerId: b.routerId as string,
    neighbors,
    holdTime,
    keepalive,
    managed,
    port,
    remoteLearning: b.remoteLearning === true,
    advertiseRate,
  };
  if (typeof b.clusterId === 'string') resolved.clusterId = b.clusterId;
  if (address !== undefined) resolved.address = address;
  if (typeof b.localAddress === 'string') resolved.localAddress = b.localAddress;
  if (switches !== undefined) resolved.switches = switches;
  return { spec: JSON.parse(JSON.stringify(b)) as BgpSpec, resolved, errors };
}

// Names in bgp.switches that are no switch (`known` says which are): each
// an ERR_UNKNOWN_SWITCH at bgp.switches[i], as for any reference to a
// switch. Checked with the rest of the configuration (config.ts crossCheck):
// a typo would otherwise leave that switch and, being the only name listed,
// every real one unmanaged, and withdraw all their routes.
export function unknownBgpSwitches(bgp: Pick<BgpSpec, 'switches'> | undefined, known: (name: string) => boolean): ErrorDetail[] {
  if (!Array.isArray(bgp?.switches)) return [];
  return bgp.switches.flatMap((name, i) => {
    if (typeof name !== 'string' || known(name)) return [];
    const field = `bgp.switches[${i}]`;
    return [{ code: 'ERR_UNKNOWN_SWITCH', message: `${field}: no switch named ${JSON.stringify(name)}`, field }];
  });
}

// Throws one ControlError with every problem (API and state file use).
export function resolveBgp(value: unknown, at = 'bgp', ownAddresses: string[] = []): ResolvedBgp {
  const r = parseBgp(value, at, ownAddresses);
  if (r.errors.length > 0) {
    const first = r.errors[0]!;
    throw new ControlError('ERR_INVALID_ARGUMENT', r.errors.length === 1 ? first.message : `${r.errors.length} errors: ${r.errors.map((e) => e.message).join('; ')}`, {
      field: first.field,
      details: r.errors.length > 1 ? r.errors : undefined,
    });
  }
  return r.resolved!;
}

// A model's `bgp`, resolved against its uplinks' VTEP addresses (which no
// neighbour may have); undefined without a `bgp` section.
export function modelBgp(model: Pick<Model, 'bgp' | 'uplinks'>): ResolvedBgp | undefined {
  if (model.bgp === undefined) return undefined;
  const own = model.uplinks.flatMap((u) => [u.spec.localIp, u.spec.localIp6]).filter((a): a is string => a !== undefined).map((a) => a.split('/')[0]!);
  return resolveBgp(model.bgp, 'bgp', own);
}

// An address in the spelling os.networkInterfaces() uses (IPv6 compressed,
// lower case).
function canonicalIp(a: string): string {
  if (!a.includes(':')) return a;
  try {
    return new URL(`http://[${a}]/`).hostname.slice(1, -1);
  } catch {
    return a.toLowerCase();
  }
}

// What is wrong on this host with a model's `bgp`, read only (like
// hostcheck.ts): a managed gobgpd listens on, and opens its sessions from,
// bgp.localAddress; when no interface of vpcd's namespace has it, gobgpd
// exits at start ("bind: cannot assign requested address") and at every
// restart after. Said at apply (dry run too) and at restore; `bgp status`
// then shows gobgpd's last fatal line.
export function bgpHostWarnings(model: Pick<Model, 'bgp' | 'uplinks'>, interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces()): string[] {
  let b: ResolvedBgp | undefined;
  try {
    b = modelBgp(model);
  } catch {
    return []; // a bad section is refused with its own error
  }
  if (b?.localAddress === undefined || !b.managed) return [];
  const want = canonicalIp(b.localAddress);
  if (Object.values(interfaces).some((addrs) => (addrs ?? []).some((a) => canonicalIp(a.address) === want))) return [];
  return [`bgp.localAddress ${want} is not assigned to any interface of this host (vpcd's network namespace): gobgpd cannot listen on it or open sessions from it, exits at start and is restarted again and again (\`vpcctl bgp status\` shows its error). Assign the address (the host's own underlay address, not the VTEP), or fix bgp.localAddress`];
}
