// examples/evpn-three-hosts: each host's file is a valid configuration on
// its own, and the three agree with each other: one AS, distinct router IDs
// and VTEPs, a full mesh (each lists exactly the two others' addresses),
// the same switches with the same VNIs, and no peer lists or remote MACs
// (EVPN provides those). No root needed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseConfig } from '../../src/control/config';
import { ROOT } from '../control/helpers';

const DIR = path.join(ROOT, 'examples', 'evpn-three-hosts');

interface BgpView {
  asn: number;
  routerId: string;
  localAddress?: string;
  neighbors?: (string | { address: string })[];
  routeReflector?: string;
}

test('examples/evpn-three-hosts: three valid per-host files forming one full mesh, no peer lists, no remote MACs', () => {
  const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort();
  assert.deepEqual(files, ['host-1.yaml', 'host-2.yaml', 'host-3.yaml']);
  const hosts = files.map((f) => {
    const desired = parseConfig(fs.readFileSync(path.join(DIR, f), 'utf8'), f);
    const bgp = (desired as unknown as { bgp?: BgpView }).bgp;
    assert.ok(bgp, `${f}: has a bgp section`);
    assert.deepEqual(desired.peers, [], `${f}: no peer list`);
    assert.deepEqual(desired.fdb.filter((e) => 'vtep' in e.spec), [], `${f}: no remote MAC`);
    assert.equal(desired.uplinks.length, 1, `${f}: one uplink (the VTEP)`);
    const neighbors = (bgp.neighbors ?? []).map((n) => (typeof n === 'string' ? n : n.address)).sort();
    return {
      f,
      bgp,
      neighbors,
      self: bgp.localAddress ?? bgp.routerId,
      vtep: desired.uplinks[0]!.spec.localIp,
      switches: desired.switches.map((s) => `${s.spec.name}:${s.spec.vni}`).sort(),
    };
  });
  assert.equal(new Set(hosts.map((h) => h.bgp.asn)).size, 1, 'one AS');
  assert.equal(new Set(hosts.map((h) => h.bgp.routerId)).size, 3, 'distinct router IDs');
  assert.equal(new Set(hosts.map((h) => h.vtep)).size, 3, 'distinct VTEPs');
  for (const h of hosts) {
    assert.deepEqual(h.switches, hosts[0]!.switches, `${h.f}: the same switches and VNIs as ${hosts[0]!.f}`);
    const others = hosts.filter((o) => o !== h).map((o) => o.self).sort();
    assert.deepEqual(h.neighbors, others, `${h.f}: its neighbours are the two other hosts`);
  }
});

// The FRR snippets of the README, as FRR reads them: a peer group is
// defined (`neighbor NAME peer-group`) before `bgp listen range` names it,
// else FRR says "% Configure the peer-group first" and drops the range; and
// the route reflector, whose only address is on the hosts' subnet, is told
// to route the VTEP subnet (without it FRR holds the VTEP next hops
// unreachable and reflects nothing).
test('examples/evpn-three-hosts README: FRR configurations define a peer group before a listen range uses it; the reflector routes the VTEP subnet', () => {
  const readme = fs.readFileSync(path.join(DIR, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```\n(router bgp[\s\S]*?)```/g)].map((m) => m[1]!);
  assert.ok(blocks.length >= 2, 'the README has FRR configurations');
  for (const b of blocks) {
    const lines = b.split('\n').map((l) => l.trim());
    lines.forEach((l, i) => {
      const m = /^bgp listen range \S+ peer-group (\S+)$/.exec(l);
      if (m === null) return;
      const defined = lines.indexOf(`neighbor ${m[1]} peer-group`);
      assert.ok(defined !== -1 && defined < i, `"${l}" must come after "neighbor ${m[1]} peer-group":\n${b}`);
    });
  }
  const rr = readme.slice(readme.indexOf('use a route reflector'), readme.indexOf('## A Linux host with FRR'));
  assert.match(rr, /ip route add 198\.18\.0\.0\/24 dev eth1/, 'the reflector gets a route to the VTEP subnet');
});
