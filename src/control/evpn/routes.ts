// BGP EVPN routes (RFC 7432, VXLAN per RFC 8365) as vpcd sees them, and
// their form in GoBGP's v3 API (api/attribute.proto).
//
// vpcd advertises, per switch (one VNI, VLAN-based service, Ethernet tag 0):
//   type 3 (Inclusive Multicast Ethernet Tag, IMET): "send this VNI's
//     broadcast, multicast and unknown unicast to me": PMSI Tunnel attribute
//     of type 6 (ingress replication), label = VNI, tunnel id = our VTEP.
//   type 2 (MAC/IP Advertisement): one per local MAC, label = VNI, with the
//     IP when the switch knows it; MAC Mobility community (RFC 7432 s7.7)
//     once the MAC has moved (sequence number > 0).
// Both carry the route target ASN:VNI (auto-derived as FRR does, with the
// low 16 bits of a 4-byte ASN), the BGP Encapsulation extended community
// with tunnel type 8 (VXLAN, RFC 9012), the next hop = our VTEP address, and
// the route distinguisher routerId:N (type 1), N = the VNI's low 16 bits.
//
// In the API, the NLRI and every attribute are `google.protobuf.Any`. Here
// an Any is a plain object `{ '@type': 'apipb.Name', ...fields }` with the
// proto's field names as written (snake_case); gobgp.ts packs it and
// refuses any field the message type does not have (a camelCase name would
// otherwise be dropped silently: a route with an empty MAC).

import { isIP } from 'node:net';
import { ip6Groups } from '../../dataplane/overlay';

export const EVPN_FAMILY = { afi: 'AFI_L2VPN', safi: 'SAFI_EVPN' } as const;
export const TUNNEL_TYPE_VXLAN = 8; // RFC 9012 / RFC 8365 section 5.1.3
export const PMSI_INGRESS_REPLICATION = 6; // RFC 6514 section 5
const RT_SUBTYPE = 0x02; // route target (RFC 4360)

export interface AnyMessage {
  '@type': string;
  [field: string]: unknown;
}

export interface RouteDistinguisher {
  admin: string; // an IPv4 address (type 1 RD)
  assigned: number; // 0..65535
}

export interface RouteTarget {
  asn: number; // 0..65535
  value: number; // 0..4294967295 (the VNI for auto-derived ones)
}

interface RouteBase {
  rd: RouteDistinguisher;
  ethernetTag: number;
  vni: number;
  nextHop: string; // the VTEP address
  rts: RouteTarget[];
  encapVxlan: boolean; // carries the VXLAN encapsulation community
}

export interface MacRoute extends RouteBase {
  type: 2;
  mac: string; // lower case aa:bb:cc:dd:ee:ff
  ip?: string; // the MAC/IP form
  seq: number; // MAC Mobility sequence number, 0 = no community
  sticky: boolean;
}

export interface ImetRoute extends RouteBase {
  type: 3;
  originator: string; // the originating router's IP (our VTEP)
  pmsi?: { type: number; label: number; id: string }; // id: the tunnel endpoint (ingress replication)
}

export type EvpnRoute = MacRoute | ImetRoute;

// A route from the table (WatchEvent/ListPath), decoded.
export interface ReceivedRoute {
  route: EvpnRoute;
  withdraw: boolean;
  neighbor: string; // the BGP neighbour it came from ('' for our own)
  ageSeconds?: number;
}

// ---------------------------------------------------------------- derived values

// The route target vpcd attaches and imports for a VNI: ASN:VNI (a 4-byte
// ASN contributes its low 16 bits).
export function autoRouteTarget(asn: number, vni: number): RouteTarget {
  return { asn: asn & 0xffff, value: vni };
}

export function autoRd(routerId: string, vni: number): RouteDistinguisher {
  return { admin: routerId, assigned: vni & 0xffff };
}

export function rdString(rd: RouteDistinguisher): string {
  return `${rd.admin}:${rd.assigned}`;
}

export function rtString(rt: RouteTarget): string {
  return `${rt.asn}:${rt.value}`;
}

// "02:00:00:00:00:01" from any of the usual spellings.
export function normalMac(mac: string): string {
  return mac.toLowerCase().replace(/-/g, ':');
}

// What identifies a route in a table (the NLRI's key fields, RFC 7432
// section 7: for type 2 the RD, tag, MAC and IP; for type 3 the RD, tag and
// originator).
export function routeKey(r: EvpnRoute): string {
  return r.type === 2
    ? `2:${rdString(r.rd)}:${r.ethernetTag}:${r.mac}:${r.ip ?? ''}`
    : `3:${rdString(r.rd)}:${r.ethernetTag}:${r.originator}`;
}

// ---------------------------------------------------------------- encoding

function rdAny(rd: RouteDistinguisher): AnyMessage {
  return { '@type': 'apipb.RouteDistinguisherIPAddress', admin: rd.admin, assigned: rd.assigned };
}

const ZERO_ESI = { type: 0, value: Buffer.alloc(9) };

export function nlriOf(r: EvpnRoute): AnyMessage {
  if (r.type === 2) {
    return {
      '@type': 'apipb.EVPNMACIPAdvertisementRoute',
      rd: rdAny(r.rd),
      esi: { ...ZERO_ESI, value: Buffer.from(ZERO_ESI.value) },
      ethernet_tag: r.ethernetTag,
      mac_address: r.mac,
      ip_address: r.ip ?? '',
      labels: [r.vni],
    };
  }
  return { '@type': 'apipb.EVPNInclusiveMulticastEthernetTagRoute', rd: rdAny(r.rd), ethernet_tag: r.ethernetTag, ip_address: r.originator };
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  const b = Buffer.alloc(16);
  ip6Groups(ip).forEach((g, i) => b.writeUInt16BE(g, i * 2));
  return b;
}

function ipFromBytes(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  if (b.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
    return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
  }
  return '';
}

// The path attributes (as AnyMessages) of a route we advertise.
export function attributesOf(r: EvpnRoute): AnyMessage[] {
  const communities: AnyMessage[] = r.rts.map((rt) => ({
    '@type': 'apipb.TwoOctetAsSpecificExtended',
    is_transitive: true,
    sub_type: RT_SUBTYPE,
    asn: rt.asn,
    local_admin: rt.value,
  }));
  if (r.encapVxlan) communities.push({ '@type': 'apipb.EncapExtended', tunnel_type: TUNNEL_TYPE_VXLAN });
  if (r.type === 2 && (r.seq > 0 || r.sticky)) communities.push({ '@type': 'apipb.MacMobilityExtended', is_sticky: r.sticky, sequence_num: r.seq });
  const attrs: AnyMessage[] = [
    { '@type': 'apipb.OriginAttribute', origin: 0 }, // IGP
    { '@type': 'apipb.MpReachNLRIAttribute', family: { ...EVPN_FAMILY }, next_hops: [r.nextHop], nlris: [nlriOf(r)] },
    { '@type': 'apipb.ExtendedCommunitiesAttribute', communities },
  ];
  if (r.type === 3) {
    const p = r.pmsi ?? { type: PMSI_INGRESS_REPLICATION, label: r.vni, id: r.nextHop };
    attrs.push({ '@type': 'apipb.PmsiTunnelAttribute', flags: 0, type: p.type, label: p.label, id: ipBytes(p.id) });
  }
  return attrs;
}

// The API Path of a route (AddPath / AddPathStream / DeletePath).
//
// A withdrawal carries no MAC Mobility community. gobgpd finds the path to
// withdraw by its NLRI (and our source), not by its attributes, but it runs
// its section 15 check on withdrawals too (server.go fixupApiPath): a type-2
// path whose sequence number is below the highest in its table for that MAC,
// plus one when that one is a neighbour's, is refused ("invalid MAC mobility
// sequence number"). We withdraw exactly when a remote route beat ours, so a
// withdrawal of a route that had moved before (sequence > 0) was always
// refused and the route stayed out. Without the community gobgpd puts its
// own on the withdrawal and takes it.
export function pathOf(r: EvpnRoute, withdraw = false): { family: typeof EVPN_FAMILY; nlri: AnyMessage; pattrs: AnyMessage[]; is_withdraw: boolean } {
  const pattrs = r.type === 2 && withdraw ? attributesOf({ ...r, seq: 0, sticky: false }) : attributesOf(r);
  return { family: { ...EVPN_FAMILY }, nlri: nlriOf(r), pattrs, is_withdraw: withdraw };
}

// ---------------------------------------------------------------- decoding

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function num(v: unknown): number {
  return typeof v === 'number' ? v : typeof v === 'string' && v !== '' ? Number(v) : 0;
}

function decodeRd(rd: unknown): RouteDistinguisher {
  const m = (rd ?? {}) as AnyMessage;
  switch (m['@type']) {
    case 'apipb.RouteDistinguisherIPAddress':
      return { admin: str(m.admin), assigned: num(m.assigned) };
    case 'apipb.RouteDistinguisherTwoOctetASN':
    case 'apipb.RouteDistinguisherFourOctetASN':
      return { admin: String(num(m.admin)), assigned: num(m.assigned) };
    default:
      return { admin: '', assigned: 0 };
  }
}

export class RouteDecodeError extends Error {}

// A path from the table (nlri and pattrs already unpacked into
// AnyMessages). Returns undefined for NLRI types vpcd does not use (type 1,
// 4, 5, ...): they are not errors, just not ours.
export function decodePath(nlri: AnyMessage, pattrs: AnyMessage[]): EvpnRoute | undefined {
  const t = nlri['@type'];
  if (t !== 'apipb.EVPNMACIPAdvertisementRoute' && t !== 'apipb.EVPNInclusiveMulticastEthernetTagRoute') return undefined;
  let nextHop = '';
  const rts: RouteTarget[] = [];
  let encapVxlan = false;
  let seq = 0;
  let sticky = false;
  let pmsi: ImetRoute['pmsi'];
  for (const a of pattrs) {
    switch (a['@type']) {
      case 'apipb.MpReachNLRIAttribute': {
        const hops = (a.next_hops ?? []) as string[];
        if (hops.length > 0) nextHop = hops[0]!;
        break;
      }
      case 'apipb.NextHopAttribute':
        if (nextHop === '') nextHop = str(a.next_hop);
        break;
      case 'apipb.ExtendedCommunitiesAttribute':
        for (const c of (a.communities ?? []) as AnyMessage[]) {
          if (c['@type'] === 'apipb.TwoOctetAsSpecificExtended' && num(c.sub_type) === RT_SUBTYPE) rts.push({ asn: num(c.asn), value: num(c.local_admin) });
          else if (c['@type'] === 'apipb.FourOctetAsSpecificExtended' && num(c.sub_type) === RT_SUBTYPE) rts.push({ asn: num(c.asn) & 0xffff, value: num(c.local_admin) });
          else if (c['@type'] === 'apipb.EncapExtended' && num(c.tunnel_type) === TUNNEL_TYPE_VXLAN) encapVxlan = true;
          else if (c['@type'] === 'apipb.MacMobilityExtended') {
            seq = num(c.sequence_num);
            sticky = c.is_sticky === true;
          }
        }
        break;
      case 'apipb.PmsiTunnelAttribute':
        pmsi = { type: num(a.type), label: num(a.label), id: Buffer.isBuffer(a.id) ? ipFromBytes(a.id) : '' };
        break;
      default:
        break;
    }
  }
  const rd = decodeRd(nlri.rd);
  const ethernetTag = num(nlri.ethernet_tag);
  if (t === 'apipb.EVPNMACIPAdvertisementRoute') {
    const labels = (nlri.labels ?? []) as number[];
    const mac = normalMac(str(nlri.mac_address));
    if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac)) throw new RouteDecodeError(`type-2 route with an invalid MAC ${JSON.stringify(nlri.mac_address)}`);
    const ip = str(nlri.ip_address);
    const r: MacRoute = { type: 2, rd, ethernetTag, mac, vni: num(labels[0]), nextHop, rts, encapVxlan, seq, sticky };
    if (ip !== '' && ip !== '0.0.0.0' && ip !== '::' && ip !== '<nil>') r.ip = ip;
    return r;
  }
  const originator = str(nlri.ip_address);
  const r: ImetRoute = { type: 3, rd, ethernetTag, originator, vni: pmsi?.label ?? 0, nextHop, rts, encapVxlan };
  if (pmsi !== undefined) r.pmsi = pmsi;
  return r;
}

// The VNI a received route is for: the label (RFC 8365 section 5.1.3: the
// VNI is carried in the MPLS label field; for type 3, in the PMSI Tunnel
// attribute), else the value of a route target whose value is a VNI we
// have (an implementation that leaves the label 0).
export function vniOf(r: EvpnRoute, known: (vni: number) => boolean): number | undefined {
  if (r.vni > 0 && known(r.vni)) return r.vni;
  for (const rt of r.rts) if (known(rt.value)) return rt.value;
  return undefined;
}

// The VTEP a route points at: the PMSI tunnel endpoint for type 3 (ingress
// replication), else the next hop.
export function vtepOf(r: EvpnRoute): string {
  if (r.type === 3 && r.pmsi !== undefined && r.pmsi.type === PMSI_INGRESS_REPLICATION && r.pmsi.id !== '') return r.pmsi.id;
  return r.nextHop;
}
