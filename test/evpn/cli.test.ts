// vpcctl bgp status / routes: their text, and a vpcd without a bgp section.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { Registry } from 'prom-client';
import { registerEvpnMetrics } from '../../src/control/evpn/metrics';
import type { EvpnService } from '../../src/control/evpn/service';
import { bgpRoutesText, bgpStatusText } from '../../src/control/cli/bgp';
import { fdbLiveRow } from '../../src/control/cli/fdb';
import { objectCounts } from '../../src/control/cli/status';
import type { BgpStatus, EvpnTotals } from '../../src/control/evpn/service';
import * as fs from 'node:fs';
import { eventually, removeDir, spawnVpcd, TEST_ENGINE, VPCCTL } from '../control/helpers';
import { Lab, skipReason } from '../ports/lab';

const GOBGPD = ['/usr/bin/gobgpd', '/usr/sbin/gobgpd'].find((f) => fs.existsSync(f));
const PROTOS = fs.existsSync('/usr/share/gocode/src/github.com/osrg/gobgp/api/gobgp.proto');

const STATUS: BgpStatus = {
  asn: 64512, routerId: '198.18.0.1', managed: true, api: '127.0.0.1:40000', speaker: 'up', stale: false, ageSeconds: 0.4, pid: 1234, restarts: 1,
  neighbors: [{ address: '198.18.0.2', asn: 64512, state: 'established', routerId: '198.18.0.2', uptimeSeconds: 3725, adminDown: false, received: 7, accepted: 7, advertised: 5, messagesIn: 20, messagesOut: 21 }],
  evpn: { sessionsEstablished: 1, routesAdvertised: 5, routesReceived: 7, macsInstalled: 6, floodPeers: 1, updatesSent: 9, moves: 2, duplicates: 0, limited: 0, installErrors: 0, rejected: 0, pending: 0 },
};

describe('vpcctl bgp', () => {
  test('status and routes as text', () => {
    const s = bgpStatusText(STATUS);
    assert.match(s, /^AS 64512, router ID 198\.18\.0\.1, managed gobgpd \(pid 1234\) at 127\.0\.0\.1:40000: up, restarted 1 time\(s\)$/m);
    assert.match(s, /routes: 5 advertised, 7 received; 6 MACs installed, 1 flood-list peers; 0 pending/);
    assert.match(s, /^198\.18\.0\.2\s+64512\s+established\s+1h02m\s+7\s+7\s+5\s+198\.18\.0\.2$/m);
    assert.match(bgpStatusText({ ...STATUS, speaker: 'busy', stale: true, ageSeconds: 7.25 }), /: busy \(gobgpd did not answer in time; stale: sessions as of 7\.3 s ago\), restarted/);
    assert.match(bgpStatusText({ ...STATUS, speaker: 'down', stale: true, ageSeconds: undefined }), /: down \(gobgpd cannot be reached; stale: no answer yet\), restarted/);
    assert.equal(bgpStatusText(null), 'BGP is not configured (no `bgp:` section)\n');
    const refused = bgpStatusText({ ...STATUS, neighbors: [{ ...STATUS.neighbors[0]!, state: 'active', uptimeSeconds: 0, lastProblem: 'sent notification: as number mismatch expected 64513, received 64514', lastProblemAt: '2026-12-07T02:50:35.000Z' }] });
    assert.match(refused, /\nnot established, as gobgpd last said:\n198\.18\.0\.2: sent notification: as number mismatch expected 64513, received 64514 \(2026-12-07T02:50:35\.000Z\)\n$/);
    assert.doesNotMatch(bgpStatusText({ ...STATUS, neighbors: [{ ...STATUS.neighbors[0]!, lastProblem: 'old news' }] }), /old news/, 'an established session: the past problem is not shown');
    assert.match(bgpStatusText({ ...STATUS, speaker: 'down', stale: true, reason: 'gobgpd: failed to set global config; Error: bind: cannot assign requested address' }),
      /: down \(gobgpd cannot be reached; stale: .*\nreason: gobgpd: failed to set global config; Error: bind: cannot assign requested address\n/);
    const r = bgpRoutesText([
      { switch: 'tenant', vni: 1001, type: 3, vtep: '198.18.0.11', origin: 'local', best: true },
      { switch: 'tenant', vni: 1001, type: 2, mac: '02:00:00:00:00:01', vtep: '198.18.0.12', seq: 2, origin: 'remote', neighbor: '198.18.0.2', best: true },
    ]);
    assert.match(r, /^SWITCH\s+VNI\s+TYPE\s+MAC\s+IP\s+VTEP\s+SEQ\s+ORIGIN\s+BEST$/m);
    assert.match(r, /^tenant\s+1001\s+2 mac\s+02:00:00:00:00:01\s+-\s+198\.18\.0\.12\s+2\s+198\.18\.0\.2\s+\*$/m);
    assert.equal(bgpRoutesText([]), 'no EVPN routes\n');
  });

  test('fdb list names an EVPN entry\'s type', () => {
    const e = { mac: '02:00:00:00:00:01', port: 'up', vtep: '198.18.0.12', vlan: 0, ageSeconds: 0 };
    assert.deepEqual(fdbLiveRow({ ...e, static: true, evpn: true }), ['02:00:00:00:00:01', 'up', '198.18.0.12', '-', 'evpn', '-']);
    assert.deepEqual(fdbLiveRow({ ...e, static: true }), ['02:00:00:00:00:01', 'up', '198.18.0.12', '-', 'static', '-']);
    assert.deepEqual(fdbLiveRow({ ...e, vtep: undefined, port: 'p1', vlan: 10, static: false, ageSeconds: 4.6 }), ['02:00:00:00:00:01', 'p1', '-', '10', 'learned', '5s']);
  });

  test('vpcctl status counts what EVPN installed beside the configured objects', () => {
    assert.equal(objectCounts({ switches: 1, ports: 2, uplinks: 1, peers: 0, fdb: 0, evpnPeers: 2, evpnMacs: 5 }),
      '1 switches, 2 ports, 1 uplink(s), 0 peers (+2 from EVPN), 0 static fdb entries (+5 from EVPN)');
    assert.equal(objectCounts({ switches: 1, ports: 2, uplinks: 0, peers: 1, fdb: 3 }), '1 switches, 2 ports, 0 uplink(s), 1 peers, 3 static fdb entries');
  });

  test('the speaker state metric', async () => {
    const registry = new Registry();
    let status: BgpStatus = { ...STATUS, speaker: 'busy', stale: true };
    const totals = (): EvpnTotals => ({ ...status.evpn, restarts: status.restarts });
    registerEvpnMetrics(registry, { status: () => status, totals } as unknown as EvpnService);
    const text = await registry.metrics();
    assert.match(text, /^vpcd_evpn_speaker_state\{state="busy"\} 1$/m);
    assert.match(text, /^vpcd_evpn_speaker_state\{state="up"\} 0$/m);
    assert.match(text, /^vpcd_bgp_session_up\{neighbor="198\.18\.0\.2"\} 1$/m, 'the last known sessions stay');
    assert.match(text, /^# TYPE vpcd_evpn_updates_sent_total counter\nvpcd_evpn_updates_sent_total 9$/m, 'running totals are counters');
    assert.match(text, /^# TYPE vpcd_evpn_mac_moves_total counter\nvpcd_evpn_mac_moves_total 2$/m);
    assert.match(text, /^# TYPE vpcd_evpn_speaker_restarts_total counter\nvpcd_evpn_speaker_restarts_total 1$/m);
    assert.match(text, /^# TYPE vpcd_evpn_pending gauge$/m);
    status = { ...STATUS, speaker: 'down', stale: true, evpn: { ...STATUS.evpn, updatesSent: 12 } };
    const later = await registry.metrics();
    assert.match(later, /^vpcd_evpn_speaker_state\{state="down"\} 1$/m);
    assert.match(later, /^vpcd_evpn_updates_sent_total 12$/m, 'a scrape copies the total, it does not add to it');
  });

  test('bgp.localAddress not on this host: the apply warns, and bgp status gives gobgpd\'s fatal line as the reason', async (t) => {
    const why = skipReason(['ip']) ?? (GOBGPD === undefined || !PROTOS ? 'gobgpd (Debian package gobgpd) or its protos missing' : undefined);
    if (why !== undefined) return t.skip(why);
    const lab = new Lab();
    const ns = lab.netns('la'); // its own namespace: only lo, so 198.18.0.1 is on no interface
    const config = `${TEST_ENGINE}switches: [{ name: s1, vni: 10 }]\nbgp: { asn: 64512, routerId: 198.18.0.1, localAddress: 198.18.0.1, neighbors: [198.18.0.2] }\n`;
    const d = await spawnVpcd({ config, netns: ns });
    try {
      assert.ok(d.logs.some((l) => /bgp\.localAddress 198\.18\.0\.1 is not assigned to any interface of this host/.test(l)), 'warned at apply');
      const st = await eventually(async () => {
        const b = (await d.client.call<{ bgp: BgpStatus }>('GET', '/v1/bgp')).bgp;
        return b.reason !== undefined ? b : undefined;
      }, 20_000, 200);
      assert.equal(st.speaker, 'down');
      assert.match(st.reason!, /^gobgpd: failed to set global config; Error: listen tcp4 198\.18\.0\.1:179: bind: cannot assign requested address$/);
      const out = execFileSync(process.execPath, [VPCCTL, '-s', d.socket, 'bgp', 'status'], { encoding: 'utf8' });
      assert.match(out, /^reason: gobgpd: failed to set global config; .*cannot assign requested address$/m);
    } finally {
      await d.stop();
      removeDir(d.dir);
      lab.cleanup();
    }
  });

  test('a gobgpd that cannot be started (VPCD_GOBGPD not executable) stops vpcd at start with the reason (exit 1), as evpn.md says', async () => {
    const config = `${TEST_ENGINE}switches: [{ name: s1, vni: 10 }]\nbgp: { asn: 64512, routerId: 198.18.0.1, localAddress: 198.18.0.1, neighbors: [198.18.0.2] }\n`;
    const d = await spawnVpcd({ config, waitReady: false, wrapper: ['env', 'VPCD_GOBGPD=/nonexistent/gobgpd'] });
    try {
      assert.equal(await d.exited, 1, d.stderr.join(''));
      assert.match(d.stderr.join(''), /^vpcd: bgp: VPCD_GOBGPD=\/nonexistent\/gobgpd is not an executable file/m);
      assert.ok(!d.logs.some((l) => l.includes('vpcd ready')), 'not ready');
    } finally {
      await d.stop();
      removeDir(d.dir);
    }
  });

  test('a vpcd without a bgp section says so', async () => {
    const d = await spawnVpcd({ config: `${TEST_ENGINE}switches: [{ name: s1, vni: 10 }]\n` });
    try {
      assert.deepEqual(await d.client.call('GET', '/v1/bgp'), { bgp: null });
      assert.deepEqual(await d.client.call('GET', '/v1/bgp/routes'), { bgp: false, routes: [] });
      const out = execFileSync(process.execPath, [VPCCTL, '-s', d.socket, 'bgp', 'status'], { encoding: 'utf8' });
      assert.equal(out, 'BGP is not configured (no `bgp:` section)\n');
      assert.equal(execFileSync(process.execPath, [VPCCTL, '-s', d.socket, 'bgp', 'show'], { encoding: 'utf8' }), out, 'show is status');
      const json = JSON.parse(execFileSync(process.execPath, [VPCCTL, '-s', d.socket, '--json', 'bgp', 'routes', '--switch', 's1'], { encoding: 'utf8' }));
      assert.deepEqual(json, { bgp: false, routes: [] });
      assert.throws(() => execFileSync(process.execPath, [VPCCTL, '-s', d.socket, 'bgp', 'routes', '--switch', 'nope'], { stdio: 'pipe' }), (e: { status: number }) => e.status === 5);
    } finally {
      await d.stop();
      removeDir(d.dir);
    }
  });
});
