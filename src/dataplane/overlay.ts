// The VXLAN overlay's public types and their validation: the uplink (this
// host's VTEP on the underlay), peers (remote VTEPs in a switch's flood list)
// and static remote MACs. The Dataplane methods that use them are in
// dataplane.ts; the engine side is native/netmap/overlay/.

import { BlockList, isIP } from 'node:net';

import type { PortType } from './types';
import { type KernelPortSettings, validateKernelSettings } from './specs';
import {
  generateMac,
  LIMITS,
  invalid,
  validateBoolean,
  validateInteger,
  validateMtu,
  validateName,
  validateObject,
  validatePowerOfTwo,
  validateUnicastMac,
} from './validate';

export interface UplinkSpec {
  name: string;
  type: PortType; // the underlay port's backend: 'afpacket' (any interface), 'pipe' (tests), ...
  interface?: string; // kernel-facing types: the underlay interface
  mtu?: number; // underlay MTU (default 1500); a switch's inner MTU is this minus 50 (IPv4) or 70 (IPv6)
  mac?: string; // pipe uplinks: the VTEP's MAC (kernel interfaces keep their own; uplink() shows which)
  localIp?: string; // IPv4 VTEP address with its on-link prefix, "198.18.0.1/24" (prefix default 24)
  localIp6?: string; // IPv6 VTEP address, "2001:db8::1/64" (prefix default 64)
  gateway?: string; // IPv4 next hop for peers off the local prefix
  gateway6?: string;
  udpPort?: number; // default 4789
  srcPortRange?: [number, number]; // outer UDP source ports (flow hash), default [49152, 65535]
  ttl?: number; // outer TTL / hop limit, default 64
  df?: boolean; // IPv4 don't-fragment, default true
  udp6ZeroChecksum?: boolean; // send and accept zero UDP checksums over IPv6 (RFC 6935), default false
  allowUnknownPeers?: boolean; // false: no switch accepts VXLAN from VTEPs that are not its peers, whatever the switch says (default true: each switch's allowUnknownPeers decides)
  neighborReachableSeconds?: number; // how long an ARP/ND answer is trusted, default 30
  ringSize?: number; // pipe uplinks: ring size
  rxRing?: number;
  txRing?: number;
  burst?: number;
  disableOffloads?: boolean;
  promiscuous?: boolean;
  kernelPath?: boolean; // afpacket: VXLAN over IPv4 to and from afpacket access ports encapsulated in the kernel (default true; docs/design/kernel-path.md)
  xdpDecap?: 'auto' | 'on' | 'off'; // afpacket, with the kernel path: VXLAN decapsulated in XDP, before the interface's GRO, while its GRO is on; auto: not on a veth or virtio_net, where XDP changes the interface's other traffic (default 'auto'; docs/design/kernel-path.md#xdp)
  xdpMode?: 'auto' | 'native' | 'generic'; // afxdp: XDP hook (default 'auto': native first, on a veth too)
  zeroCopy?: 'auto' | 'on' | 'off'; // afxdp: zero-copy UMEM (default 'auto': zero-copy where the driver has it)
}

export interface UplinkInfo {
  name: string;
  id: number; // the uplink's port id in the engine
  type: PortType;
  interface?: string;
  mtu: number;
  mac: string;
  localIp?: string; // with prefix
  localIp6?: string;
  gateway?: string;
  gateway6?: string;
  udpPort: number;
  srcPortRange: [number, number];
  ttl: number;
  df: boolean;
  udp6ZeroChecksum: boolean;
  allowUnknownPeers: boolean;
  neighborReachableSeconds: number;
  innerMtu4?: number; // the largest inner L3 packet a switch can carry over IPv4
  innerMtu6?: number;
  // The backend's settings, defaults included (a kernel interface's uplink).
  promiscuous?: boolean;
  kernelPath?: boolean; // afpacket
  xdpDecap?: 'auto' | 'on' | 'off'; // afpacket
  xdpMode?: 'auto' | 'native' | 'generic'; // afxdp
  zeroCopy?: 'auto' | 'on' | 'off'; // afxdp
}

export interface PeerSpec {
  switch: string;
  ip: string; // the remote VTEP's address
}

export interface RemoteMacSpec {
  switch: string;
  mac: string;
  vtep: string; // the VTEP behind which the MAC lives
}

export interface NeighborEntry {
  ip: string;
  mac: string; // '' while unresolved
  state: 'incomplete' | 'reachable' | 'stale' | 'failed';
  ageSeconds: number;
}

export const VXLAN_OVERHEAD = { ipv4: 50, ipv6: 70 } as const;

const UPLINK_KEYS = [
  'name', 'type', 'interface', 'mtu', 'mac', 'localIp', 'localIp6', 'gateway', 'gateway6', 'udpPort',
  'srcPortRange', 'ttl', 'df', 'udp6ZeroChecksum', 'allowUnknownPeers', 'neighborReachableSeconds',
  'ringSize', 'rxRing', 'txRing', 'burst', 'disableOffloads', 'promiscuous', 'kernelPath', 'xdpDecap', 'xdpMode', 'zeroCopy',
] as const;

export interface NormalizedUplink {
  name: string;
  type: PortType;
  mtu: number;
  mac: string;
  ip4?: { addr: string; prefix: number };
  ip6?: { addr: string; prefix: number };
  gateway?: string;
  gateway6?: string;
  udpPort: number;
  srcPortRange: [number, number];
  ttl: number;
  df: boolean;
  udp6ZeroChecksum: boolean;
  allowUnknownPeers: boolean;
  neighborReachableSeconds: number;
  ringSize: number;
  kernel?: KernelPortSettings;
}

// "addr" or "addr/prefix" of the given family.
export function validateCidr(value: unknown, field: string, family: 4 | 6): { addr: string; prefix: number } {
  if (typeof value !== 'string') throw invalid('ERR_INVALID_ARGUMENT', field, `must be an IPv${family} address, optionally with /prefix`, value);
  const [addr, prefixText, extra] = value.split('/');
  if (extra !== undefined || isIP(addr) !== family) {
    throw invalid('ERR_INVALID_ARGUMENT', field, `must be an IPv${family} address, optionally with /prefix`, value);
  }
  const max = family === 4 ? 32 : 128;
  let prefix = family === 4 ? 24 : 64;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) < 1 || Number(prefixText) > max) {
      throw invalid('ERR_INVALID_ARGUMENT', field, `prefix must be in 1..${max}`, value);
    }
    prefix = Number(prefixText);
  }
  return { addr, prefix };
}

export function validateIp(value: unknown, field: string, family?: 4 | 6): string {
  const f = typeof value === 'string' ? isIP(value) : 0;
  if (f === 0 || (family !== undefined && f !== family)) {
    throw invalid('ERR_INVALID_ARGUMENT', field, family ? `must be an IPv${family} address` : 'must be an IPv4 or IPv6 address', value);
  }
  return value as string;
}

// Why `ip` cannot be a VTEP's address (ours, a peer's, a gateway's), or
// undefined: the engine's own rule (native/netmap/overlay/commands.cc,
// unicast_ip), checked here so that a file that validates is one the engine
// takes, and with the reason named.
function notUnicast(ip: string): string | undefined {
  if (isIP(ip) === 4) {
    const [a, b, c, d] = ip.split('.').map(Number) as [number, number, number, number];
    if (a === 0) return '0.0.0.0/8 means "this network", no host has it';
    if (a === 127) return 'it is a loopback address (127.0.0.0/8)';
    if (a >= 224 && a <= 239) return 'it is a multicast address (224.0.0.0/4)';
    if (a === 255 && b === 255 && c === 255 && d === 255) return 'it is the broadcast address';
    if (a >= 240) return 'it is a reserved address (240.0.0.0/4)';
    return undefined;
  }
  return V6_NOT_UNICAST.find(([list]) => list.check(ip, 'ipv6'))?.[1];
}

const V6_NOT_UNICAST: Array<[BlockList, string]> = [
  ['::', 128, ':: is the unspecified address'],
  ['::1', 128, 'it is the loopback address'],
  ['ff00::', 8, 'it is a multicast address (ff00::/8)'],
].map(([net, prefix, why]) => {
  const list = new BlockList();
  list.addSubnet(net as string, prefix as number, 'ipv6');
  return [list, why as string];
});

// IPv6 unicast addresses no VTEP has: an IPv4 address written as IPv6 is
// that IPv4 address (the engine would send over IPv4, and a peer listed
// both ways would be one VTEP under two names), and a link-local one is
// not routed.
const V6_NOT_VTEP: Array<[BlockList, (ip: string) => string]> = ([
  ['::ffff:0:0', 96, (ip: string) => `${ip} is an IPv4-mapped address: give the IPv4 address itself (${v4Tail(ip)})`],
  ['::', 96, (ip: string) => `${ip} is an IPv4-compatible address (deprecated, RFC 4291 2.5.5.1): give the IPv4 address itself (${v4Tail(ip)})`],
  ['fe80::', 10, (ip: string) => `${ip} is a link-local address (fe80::/10): a VTEP address is a global IPv6 address`],
] as Array<[string, number, (ip: string) => string]>).map(([net, prefix, why]) => {
  const list = new BlockList();
  list.addSubnet(net, prefix, 'ipv6');
  return [list, why];
});

// The IPv4 address in the low 32 bits of an IPv6 one (::ffff:c612:c802 ->
// 198.18.200.2).
function v4Tail(ip: string): string {
  const groups = ip6Groups(ip);
  return [groups[6]! >> 8, groups[6]! & 255, groups[7]! >> 8, groups[7]! & 255].join('.');
}

// An IPv6 address as its eight 16-bit groups. The URL parser spells it
// compressed, with an embedded dotted quad in hex (::ffff:c612:c802); the
// gap is filled here. (evpn/routes.ts writes next hops with it.)
export function ip6Groups(ip: string): number[] {
  const full = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  const [head, tail] = full.includes('::') ? (full.split('::') as [string, string]) : [full, undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  return [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t].map((g) => Number.parseInt(g, 16));
}

// An IP address a VTEP can have (see notUnicast): what the engine takes.
export function validateUnicastIp(value: unknown, field: string, family?: 4 | 6): string {
  const ip = validateIp(value, field, family);
  const why = notUnicast(ip);
  if (why !== undefined) throw invalid('ERR_INVALID_ARGUMENT', field, `must be a unicast address: ${why}`, value);
  return ip;
}

// The control plane's rules beyond what the engine takes (V6_NOT_VTEP),
// for a VTEP address it is given (a peer, a static entry's vtep, localIp6):
// why this one is refused, or undefined. Objects a state file already holds
// are kept (model.ts, stored). A zone index (%...) is refused with its own
// reason where addresses are spelled one way (model.ts).
export function vtepAddressProblem(ip: string): string | undefined {
  if (isIP(ip) !== 6 || ip.includes('%')) return undefined;
  return V6_NOT_VTEP.find(([list]) => list.check(ip, 'ipv6'))?.[1](ip);
}

// The same for an uplink: its localIp6 (the above, and not its subnet's
// subnet-router anycast address) and the smallest mtu an overlay can use:
// an IPv6 link carries at least 1280 bytes (RFC 8200, 5); over IPv4, what
// is left inside must be an IPv4 packet's smallest MTU, 68. A value of the
// wrong type is told the uplink's range, not a port's.
export function uplinkProblem(spec: { mtu?: unknown; localIp6?: unknown }, maxMtu: number): { field: string; why: string } | undefined {
  let ip6: { addr: string; prefix: number } | undefined;
  try {
    ip6 = spec.localIp6 === undefined ? undefined : validateCidr(spec.localIp6, 'localIp6', 6);
  } catch {
    ip6 = undefined; // validateUplinkSpec says why
  }
  const low = ip6 !== undefined ? 1280 : 68 + VXLAN_OVERHEAD.ipv4;
  const high = Math.min(maxMtu, LIMITS.mtuMax);
  if (spec.mtu !== undefined && (typeof spec.mtu !== 'number' || !Number.isInteger(spec.mtu) || spec.mtu > high)) {
    const why = high < LIMITS.mtuMax ? '; larger MTUs need a larger bufferSize or a smaller headroom' : '';
    return { field: 'mtu', why: `must be an integer in ${low}..${high} (got ${JSON.stringify(spec.mtu)})${why}` };
  }
  if (ip6 !== undefined) {
    const bad = vtepAddressProblem(ip6.addr);
    if (bad !== undefined) return { field: 'localIp6', why: bad };
    const edge = subnetEdge(ip6.addr, ip6);
    if (edge !== undefined) return { field: 'localIp6', why: `is ${edge}, which a VTEP does not take` };
  }
  if (typeof spec.mtu !== 'number') return undefined;
  if (ip6 !== undefined && spec.mtu < 1280) return { field: 'mtu', why: `must be at least 1280 with localIp6 (the smallest MTU of an IPv6 link) (got ${spec.mtu})` };
  if (spec.mtu < low) {
    return { field: 'mtu', why: `must be at least ${low} for a VTEP (${VXLAN_OVERHEAD.ipv4} bytes of VXLAN headers around an inner MTU of at least 68) (got ${spec.mtu})` };
  }
  return undefined;
}

// The network or broadcast address of an IPv4 subnet of /30 or shorter, or
// the subnet-router anycast address of an IPv6 one of /126 or shorter
// (RFC 4291 2.6.1), by name; undefined for a host address (or another
// subnet's).
export function subnetEdge(ip: string, cidr: { addr: string; prefix: number }): string | undefined {
  if (isIP(ip) === 6 && isIP(cidr.addr) === 6) {
    if (cidr.prefix > 126 || !inSubnet(ip, cidr, 6)) return undefined;
    const g = ip6Groups(ip);
    const hostZero = g.every((v, i) => {
      const bits = Math.max(0, Math.min(16, cidr.prefix - 16 * i)); // network bits in this group
      return (v & (0xffff >> bits)) === 0;
    });
    return hostZero ? `the subnet-router anycast address of ${cidr.addr}/${cidr.prefix}` : undefined;
  }
  if (isIP(ip) !== 4 || isIP(cidr.addr) !== 4 || cidr.prefix > 30) return undefined;
  const v = (s: string): number => s.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const hostBits = 2 ** (32 - cidr.prefix);
  const x = v(ip);
  const net = v(cidr.addr) - (v(cidr.addr) % hostBits);
  if (x < net || x >= net + hostBits) return undefined;
  if (x === net) return `the network address of ${cidr.addr}/${cidr.prefix}`;
  if (x === net + hostBits - 1) return `the broadcast address of ${cidr.addr}/${cidr.prefix}`;
  return undefined;
}

function sameIp6(a: string, b: string): boolean {
  const bl = new BlockList();
  bl.addAddress(a, 'ipv6');
  return bl.check(b, 'ipv6');
}

// Whether `ip` is on the subnet `cidr` (validateCidr's) of that family.
export function inSubnet(ip: string, cidr: { addr: string; prefix: number }, family: 4 | 6): boolean {
  const bl = new BlockList();
  bl.addSubnet(cidr.addr, cidr.prefix, family === 4 ? 'ipv4' : 'ipv6');
  return bl.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

// A gateway must be on the uplink's own subnet (the engine resolves it with
// ARP or ND on the uplink).
function onSubnet(gw: string, cidr: { addr: string; prefix: number }, family: 4 | 6, field: string): void {
  if (!inSubnet(gw, cidr, family)) {
    throw invalid('ERR_INVALID_ARGUMENT', field, `is not on the uplink's subnet ${cidr.addr}/${cidr.prefix} (${family === 4 ? 'localIp' : 'localIp6'}): a gateway is reached over the uplink itself`, gw);
  }
}

export function validateUplinkSpec(value: unknown, maxMtu: number): NormalizedUplink {
  const u = validateObject(value, '', UPLINK_KEYS);
  const name = validateName(u.name, 'name');
  const type = u.type as PortType;
  if (typeof u.type !== 'string' || !['pipe', 'afpacket', 'tap', 'netmap', 'afxdp'].includes(u.type)) {
    throw invalid('ERR_INVALID_ARGUMENT', 'type', 'must be one of "pipe", "afpacket", "tap", "netmap", "afxdp"', u.type);
  }
  const ip4 = u.localIp === undefined ? undefined : validateCidr(u.localIp, 'localIp', 4);
  const ip6 = u.localIp6 === undefined ? undefined : validateCidr(u.localIp6, 'localIp6', 6);
  if (ip4 === undefined && ip6 === undefined) {
    throw invalid('ERR_INVALID_ARGUMENT', 'localIp', 'an uplink needs a VTEP address: localIp (IPv4) and/or localIp6', undefined, false);
  }
  if (ip4 !== undefined) validateUnicastIp(ip4.addr, 'localIp', 4);
  const edge = ip4 === undefined ? undefined : subnetEdge(ip4.addr, ip4);
  if (edge !== undefined) throw invalid('ERR_INVALID_ARGUMENT', 'localIp', `is ${edge}, which no host has`, u.localIp);
  if (ip6 !== undefined) validateUnicastIp(ip6.addr, 'localIp6', 6);
  const gateway = u.gateway === undefined ? undefined : validateUnicastIp(u.gateway, 'gateway', 4);
  const gateway6 = u.gateway6 === undefined ? undefined : validateUnicastIp(u.gateway6, 'gateway6', 6);
  if (gateway !== undefined && ip4 === undefined) throw invalid('ERR_INVALID_ARGUMENT', 'gateway', 'needs localIp', undefined, false);
  if (gateway6 !== undefined && ip6 === undefined) throw invalid('ERR_INVALID_ARGUMENT', 'gateway6', 'needs localIp6', undefined, false);
  if (gateway !== undefined) onSubnet(gateway, ip4!, 4, 'gateway');
  if (gateway !== undefined && gateway === ip4!.addr) throw invalid('ERR_INVALID_ARGUMENT', 'gateway', 'is the uplink\'s own localIp: a gateway is another host', gateway);
  const gatewayEdge = gateway === undefined ? undefined : subnetEdge(gateway, ip4!);
  if (gatewayEdge !== undefined) throw invalid('ERR_INVALID_ARGUMENT', 'gateway', `is ${gatewayEdge}, which no host has`, gateway);
  if (gateway6 !== undefined) onSubnet(gateway6, ip6!, 6, 'gateway6');
  if (gateway6 !== undefined && sameIp6(gateway6, ip6!.addr)) {
    throw invalid('ERR_INVALID_ARGUMENT', 'gateway6', 'is the uplink\'s own localIp6: a gateway is another host', gateway6);
  }
  let srcPortRange: [number, number] = [49152, 65535];
  if (u.srcPortRange !== undefined) {
    const r = u.srcPortRange;
    if (!Array.isArray(r) || r.length !== 2) throw invalid('ERR_INVALID_ARGUMENT', 'srcPortRange', 'must be [min, max]', r);
    const lo = validateInteger(r[0], 'srcPortRange[0]', 1, 65535);
    const hi = validateInteger(r[1], 'srcPortRange[1]', 1, 65535);
    if (lo > hi) throw invalid('ERR_INVALID_ARGUMENT', 'srcPortRange', 'min must not exceed max', r);
    srcPortRange = [lo, hi];
  }
  const out: NormalizedUplink = {
    name,
    type,
    mtu: u.mtu === undefined ? Math.min(1500, maxMtu) : validateMtu(u.mtu, 'mtu', maxMtu),
    mac: u.mac === undefined ? generateMac() : validateUnicastMac(u.mac, 'mac'),
    udpPort: u.udpPort === undefined ? 4789 : validateInteger(u.udpPort, 'udpPort', 1, 65535),
    srcPortRange,
    ttl: u.ttl === undefined ? 64 : validateInteger(u.ttl, 'ttl', 1, 255),
    df: u.df === undefined ? true : validateBoolean(u.df, 'df'),
    udp6ZeroChecksum: u.udp6ZeroChecksum === undefined ? false : validateBoolean(u.udp6ZeroChecksum, 'udp6ZeroChecksum'),
    allowUnknownPeers: u.allowUnknownPeers === undefined ? true : validateBoolean(u.allowUnknownPeers, 'allowUnknownPeers'),
    neighborReachableSeconds:
      u.neighborReachableSeconds === undefined ? 30 : validateInteger(u.neighborReachableSeconds, 'neighborReachableSeconds', 1, 3600),
    ringSize: u.ringSize === undefined ? 1024 : validatePowerOfTwo(u.ringSize, 'ringSize', 64, 65536),
  };
  if (ip4) out.ip4 = ip4;
  if (ip6) out.ip6 = ip6;
  if (gateway) out.gateway = gateway;
  if (gateway6) out.gateway6 = gateway6;
  const kernel = validateKernelSettings(
    {
      interface: u.interface, rxRing: u.rxRing, txRing: u.txRing, burst: u.burst, disableOffloads: u.disableOffloads, promiscuous: u.promiscuous,
      kernelPath: u.kernelPath, xdpMode: u.xdpMode, zeroCopy: u.zeroCopy,
    },
    type,
  );
  if (u.xdpDecap !== undefined) {
    if (type !== 'afpacket') throw invalid('ERR_INVALID_ARGUMENT', 'xdpDecap', 'applies only to afpacket uplinks (the kernel path\'s XDP stage, docs/design/kernel-path.md#xdp)', undefined, false);
    if (u.xdpDecap !== 'auto' && u.xdpDecap !== 'on' && u.xdpDecap !== 'off') throw invalid('ERR_INVALID_ARGUMENT', 'xdpDecap', "must be one of 'auto', 'on', 'off'", u.xdpDecap);
    if (u.xdpDecap === 'on' && kernel!.kernelPath === false) {
      throw invalid('ERR_INVALID_ARGUMENT', 'xdpDecap', "'on' needs the kernel path, which kernelPath: false turns off (the XDP stage hands its frames to the kernel path's TC program)", u.xdpDecap);
    }
  }
  if (type === 'afpacket') kernel!.xdpDecap = (u.xdpDecap as 'auto' | 'on' | 'off' | undefined) ?? 'auto'; // the default written out (validateKernelSettings)
  if (kernel) out.kernel = kernel;
  return out;
}

export function validatePeerSpec(value: unknown): PeerSpec {
  const p = validateObject(value, '', ['switch', 'ip']);
  return { switch: validateName(p.switch, 'switch'), ip: validateUnicastIp(p.ip, 'ip') };
}

export function validateRemoteMacSpec(value: unknown): RemoteMacSpec {
  const p = validateObject(value, '', ['switch', 'mac', 'vtep']);
  return { switch: validateName(p.switch, 'switch'), mac: validateUnicastMac(p.mac, 'mac'), vtep: validateUnicastIp(p.vtep, 'vtep') };
}

export function uplinkInfo(u: NormalizedUplink, id: number): UplinkInfo {
  const info: UplinkInfo = {
    name: u.name,
    id,
    type: u.type,
    mtu: u.mtu,
    mac: u.mac,
    udpPort: u.udpPort,
    srcPortRange: [...u.srcPortRange],
    ttl: u.ttl,
    df: u.df,
    udp6ZeroChecksum: u.udp6ZeroChecksum,
    allowUnknownPeers: u.allowUnknownPeers,
    neighborReachableSeconds: u.neighborReachableSeconds,
  };
  if (u.kernel) {
    const k = u.kernel;
    info.interface = k.interface;
    if (u.type === 'afpacket') Object.assign(info, { promiscuous: k.promiscuous, kernelPath: k.kernelPath, xdpDecap: k.xdpDecap });
    if (u.type === 'afxdp') Object.assign(info, { xdpMode: k.xdpMode, zeroCopy: k.zeroCopy });
  }
  if (u.ip4) {
    info.localIp = `${u.ip4.addr}/${u.ip4.prefix}`;
    info.innerMtu4 = u.mtu - VXLAN_OVERHEAD.ipv4;
  }
  if (u.ip6) {
    info.localIp6 = `${u.ip6.addr}/${u.ip6.prefix}`;
    info.innerMtu6 = u.mtu - VXLAN_OVERHEAD.ipv6;
  }
  if (u.gateway) info.gateway = u.gateway;
  if (u.gateway6) info.gateway6 = u.gateway6;
  return info;
}
