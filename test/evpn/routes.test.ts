// EVPN route encoding: the API objects vpcd builds (field names as in the
// .proto files), their decoding, the refusal of unknown field names, and —
// with a real gobgpd on a loopback port — the BGP wire bytes gobgpd makes of
// them, against fields computed by hand from RFC 7432 / 8365 / 6514 / 4360 /
// 9012.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { describe, test } from 'node:test';
import { GobgpClient, GobgpProtos } from '../../src/control/evpn/gobgp';
import { attributesOf, autoRd, autoRouteTarget, decodePath, ImetRoute, MacRoute, nlriOf, pathOf, routeKey, vniOf, vtepOf } from '../../src/control/evpn/routes';
import { freeLoopbackPort } from '../../src/control/evpn/speaker';

const PROTO_DIR = '/usr/share/gocode/src/github.com/osrg/gobgp/api';
const HAVE_PROTOS = fs.existsSync(`${PROTO_DIR}/gobgp.proto`);
const GOBGPD = ['/usr/bin/gobgpd', '/usr/sbin/gobgpd'].find((f) => fs.existsSync(f));

const RT = autoRouteTarget(64512, 1001);
const MAC: MacRoute = { type: 2, rd: autoRd('198.18.0.1', 1001), ethernetTag: 0, mac: '02:00:00:00:00:01', vni: 1001, nextHop: '198.18.0.11', rts: [RT], encapVxlan: true, seq: 3, sticky: false };
const IMET: ImetRoute = { type: 3, rd: autoRd('198.18.0.1', 1001), ethernetTag: 0, originator: '198.18.0.11', vni: 1001, nextHop: '198.18.0.11', rts: [RT], encapVxlan: true };

// ---------------------------------------------------------------- hand-computed RFC fields

const hex = (...parts: string[]): string => parts.join('').replace(/\s+/g, '');
// RFC 4364 s4.2 RD type 1: type 0x0001, IPv4 admin (198.18.0.1 = c6 12 00 01), 2-byte number 1001 = 03e9.
const RD = hex('0001', 'c6120001', '03e9');
// RFC 7432 s7.2 MAC/IP Advertisement route (route type 2).
const TYPE2_NLRI = hex(
  '02', '21', // route type 2, length 33
  RD,
  '00'.repeat(10), // ESI: single-homed
  '00000000', // Ethernet tag 0 (VLAN-based service)
  '30', '020000000001', // MAC length 48, MAC
  '00', // IP length 0: MAC only
  '0003e9', // MPLS label 1 = VNI 1001 (RFC 8365 s5.1.3: the whole 24-bit field)
);
// RFC 7432 s7.3 Inclusive Multicast Ethernet Tag route (route type 3).
const TYPE3_NLRI = hex(
  '03', '11', // route type 3, length 17
  RD,
  '00000000', // Ethernet tag
  '20', 'c612000b', // IP length 32, originating router 198.18.0.11
);
// Extended communities (RFC 4360 s4: flags c0 = optional transitive, type 16).
const RT_EC = hex('00', '02', 'fc00', '000003e9'); // two-octet AS specific, route target, AS 64512, VNI 1001
const ENCAP_EC = hex('03', '0c', '00000000', '0008'); // opaque, encapsulation (RFC 9012 s4.1), tunnel type 8 = VXLAN
const MOBILITY_EC = hex('06', '00', '00', '00', '00000003'); // EVPN, MAC mobility (RFC 7432 s7.7), flags 0, sequence 3
// RFC 6514 s5 PMSI Tunnel attribute (type 22, optional transitive): flags 0,
// tunnel type 6 = ingress replication, label = VNI (RFC 8365 s5.1.3), endpoint.
const PMSI = hex('c0', '16', '09', '00', '06', '0003e9', 'c612000b');

describe('EVPN routes: API objects', () => {
  test('type 2: the NLRI and attributes use the proto field names with RFC values', () => {
    const n = nlriOf(MAC);
    assert.equal(n['@type'], 'apipb.EVPNMACIPAdvertisementRoute');
    assert.deepEqual(n.rd, { '@type': 'apipb.RouteDistinguisherIPAddress', admin: '198.18.0.1', assigned: 1001 });
    assert.equal(n.mac_address, '02:00:00:00:00:01');
    assert.equal(n.ethernet_tag, 0);
    assert.deepEqual(n.labels, [1001]);
    const a = attributesOf(MAC);
    const ec = a.find((x) => x['@type'] === 'apipb.ExtendedCommunitiesAttribute')!.communities as Record<string, unknown>[];
    assert.deepEqual(ec, [
      { '@type': 'apipb.TwoOctetAsSpecificExtended', is_transitive: true, sub_type: 2, asn: 64512, local_admin: 1001 },
      { '@type': 'apipb.EncapExtended', tunnel_type: 8 },
      { '@type': 'apipb.MacMobilityExtended', is_sticky: false, sequence_num: 3 },
    ]);
    const mp = a.find((x) => x['@type'] === 'apipb.MpReachNLRIAttribute')!;
    assert.deepEqual(mp.next_hops, ['198.18.0.11']);
    assert.deepEqual(mp.family, { afi: 'AFI_L2VPN', safi: 'SAFI_EVPN' });
    // Sequence 0 and not sticky: no MAC Mobility community (RFC 7432 s15.1).
    const first = attributesOf({ ...MAC, seq: 0 }).find((x) => x['@type'] === 'apipb.ExtendedCommunitiesAttribute')!.communities as Record<string, unknown>[];
    assert.equal(first.length, 2);
  });

  test('type 3: PMSI tunnel of type ingress replication with the VNI and our VTEP', () => {
    const pmsi = attributesOf(IMET).find((x) => x['@type'] === 'apipb.PmsiTunnelAttribute')!;
    assert.deepEqual({ ...pmsi, id: (pmsi.id as Buffer).toString('hex') }, { '@type': 'apipb.PmsiTunnelAttribute', flags: 0, type: 6, label: 1001, id: 'c612000b' });
    assert.deepEqual(nlriOf(IMET), { '@type': 'apipb.EVPNInclusiveMulticastEthernetTagRoute', rd: { '@type': 'apipb.RouteDistinguisherIPAddress', admin: '198.18.0.1', assigned: 1001 }, ethernet_tag: 0, ip_address: '198.18.0.11' });
  });

  test('a withdrawal names the path by its NLRI and carries no MAC mobility community (gobgpd refuses one below its table\'s sequence number)', () => {
    const communities = (p: { pattrs: Record<string, unknown>[] }): Record<string, unknown>[] =>
      p.pattrs.find((x) => x['@type'] === 'apipb.ExtendedCommunitiesAttribute')!.communities as Record<string, unknown>[];
    const moved = { ...MAC, seq: 1 };
    const w = pathOf(moved, true);
    assert.equal(w.is_withdraw, true);
    assert.deepEqual(w.nlri, nlriOf(moved), 'the NLRI is the one advertised');
    assert.ok(!communities(w).some((c) => c['@type'] === 'apipb.MacMobilityExtended'), `withdrawal communities: ${JSON.stringify(communities(w))}`);
    assert.ok(communities(pathOf(moved)).some((c) => c['@type'] === 'apipb.MacMobilityExtended' && c.sequence_num === 1), 'the advertisement keeps it');
  });

  test('decoding gives back the route; VNI from the label, else a route target; VTEP from PMSI or next hop', () => {
    assert.deepEqual(decodePath(nlriOf(MAC), attributesOf(MAC)), MAC);
    const back = decodePath(nlriOf(IMET), attributesOf(IMET)) as ImetRoute;
    assert.deepEqual({ ...back, pmsi: undefined }, { ...IMET, pmsi: undefined });
    assert.deepEqual(back.pmsi, { type: 6, label: 1001, id: '198.18.0.11' });
    assert.equal(vtepOf(back), '198.18.0.11');
    assert.equal(vniOf({ ...MAC, vni: 0 }, (v) => v === 1001), 1001, 'label 0: the route target says');
    assert.equal(vniOf({ ...MAC, vni: 7 }, (v) => v === 1001), 1001);
    assert.equal(vniOf({ ...MAC, rts: [] , vni: 7 }, (v) => v === 1001), undefined);
    assert.equal(decodePath({ '@type': 'apipb.EVPNEthernetAutoDiscoveryRoute' }, []), undefined, 'types vpcd does not use are skipped');
    assert.throws(() => decodePath({ ...nlriOf(MAC), mac_address: '' }, attributesOf(MAC)), /invalid MAC/);
    assert.notEqual(routeKey(MAC), routeKey({ ...MAC, rd: autoRd('198.18.0.2', 1001) }));
  });
});

describe('EVPN routes: Any packing', { skip: HAVE_PROTOS ? false : 'GoBGP API protos missing (golang-github-osrg-gobgp-dev)' }, () => {
  test('a field the message does not have is refused (camelCase would advertise an empty MAC)', () => {
    const p = new GobgpProtos();
    assert.throws(() => p.pack({ ...nlriOf(MAC), macAddress: '02:00:00:00:00:01' }), /EVPNMACIPAdvertisementRoute has no field "macAddress"/);
    assert.throws(() => p.pack({ '@type': 'apipb.NoSuchThing' }), /unknown message type/);
    assert.throws(() => p.pack({ '@type': 'apipb.ExtendedCommunitiesAttribute', communities: [{ '@type': 'apipb.EncapExtended', tunnelType: 8 }] }), /has no field "tunnelType"/);
  });

  test('packed and unpacked, every attribute survives', () => {
    const p = new GobgpProtos();
    const packed = p.packedPath(MAC) as { nlri: { type_url: string; value: Buffer }; pattrs: { type_url: string; value: Buffer }[] };
    assert.equal(packed.nlri.type_url, 'type.googleapis.com/apipb.EVPNMACIPAdvertisementRoute');
    const back = p.unpackPath(packed);
    assert.deepEqual(decodePath(back.nlri, back.pattrs), MAC);
  });
});

describe('EVPN routes: the BGP bytes gobgpd makes of them', { skip: GOBGPD !== undefined && HAVE_PROTOS ? false : 'gobgpd (Debian package gobgpd) or its protos missing' }, () => {
  test('type 2 and type 3 match RFC 7432 field by field', async () => {
    const port = await freeLoopbackPort();
    const g = spawn(GOBGPD!, ['--api-hosts', `127.0.0.1:${port}`, '--pprof-disable', '-p', '-l', 'warn'], { stdio: 'ignore' });
    const c = new GobgpClient(`127.0.0.1:${port}`);
    try {
      await c.waitReady(10_000);
      await c.startBgp({ asn: 64512, routerId: '198.18.0.1', listenPort: -1 });
      await c.updateRoutes([MAC, IMET], []);
      const call = (c as unknown as { client: Record<string, (r: unknown) => NodeJS.EventEmitter> }).client.ListPath!({
        table_type: 'GLOBAL', family: { afi: 'AFI_L2VPN', safi: 'SAFI_EVPN' }, enable_nlri_binary: true, enable_attribute_binary: true,
      });
      const paths: { nlri_binary: Buffer; pattrs_binary: Buffer[] }[] = [];
      await new Promise<void>((resolve, reject) => {
        call.on('data', (d: { destination: { paths: { nlri_binary: Buffer; pattrs_binary: Buffer[] }[] } }) => paths.push(...d.destination.paths));
        call.on('end', resolve);
        call.on('error', reject);
      });
      const byNlri = new Map(paths.map((p) => [p.nlri_binary.toString('hex'), p.pattrs_binary.map((b) => b.toString('hex'))]));
      assert.deepEqual([...byNlri.keys()].sort(), [TYPE2_NLRI, TYPE3_NLRI].sort());
      const t2 = byNlri.get(TYPE2_NLRI)!;
      assert.ok(t2.includes(hex('c0', '10', '18', RT_EC, ENCAP_EC, MOBILITY_EC)), `type 2 extended communities: ${t2.join(' ')}`);
      assert.ok(t2.includes('40010100'), 'ORIGIN IGP');
      // MP_REACH_NLRI (RFC 4760): AFI 25, SAFI 70, next hop 198.18.0.11, the NLRI.
      assert.ok(t2.some((a) => a.includes(hex('0019', '46', '04', 'c612000b', '00', TYPE2_NLRI))), 'MP_REACH_NLRI with our VTEP as next hop');
      const t3 = byNlri.get(TYPE3_NLRI)!;
      assert.ok(t3.includes(PMSI), `type 3 PMSI tunnel: ${t3.join(' ')}`);
      assert.ok(t3.includes(hex('c0', '10', '10', RT_EC, ENCAP_EC)), 'type 3: route target and VXLAN encapsulation');
      // And it reads back as what we sent.
      const back = await c.listRoutes();
      assert.deepEqual(back.find((r) => r.route.type === 2)!.route, MAC);
    } finally {
      c.close();
      g.kill('SIGKILL');
    }
  });
});
