// Two hosts, each a vpcd with its managed gobgpd in a network namespace,
// forming one VPC over BGP EVPN (iBGP, AS 64512) with no peer lists and no
// static remote MACs: type-3 routes build the flood lists, type-2 routes the
// remote FDB entries (kind evpn), and the guests reach each other.
//
//   ga (guest 198.19.0.1)       gb (guest 198.19.0.2)
//     | veth g1                   | veth g1
//   ha: vpcd + gobgpd           hb: vpcd + gobgpd
//     kernel 198.18.0.1/24        kernel 198.18.0.2/24   (BGP, router IDs)
//     VTEP   198.18.0.11          VTEP   198.18.0.12     (the switch's own)
//     +------------ veth ul -------------+
//
// Also: the routes read back from gobgpd carry the MAC we sent (the
// keepCase check), gobgpd killed -9 is restarted and re-advertises, and a
// BGP session that dies takes the neighbour's routes (FDB entries and flood
// list) with it after the hold time.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { GobgpClient } from '../../src/control/evpn/gobgp';
import { eventually, frameHex, removeDir, spawnVpcd, tempDir, VPCCTL, VpcdProcess } from '../control/helpers';
import { Guest, Lab, skipReason } from '../ports/lab';

const GOBGPD = ['/usr/bin/gobgpd', '/usr/sbin/gobgpd'].find((f) => fs.existsSync(f));
const PROTOS = fs.existsSync('/usr/share/gocode/src/github.com/osrg/gobgp/api/gobgp.proto');

function skip(): string | undefined {
  const base = skipReason(['ip', 'ping']);
  if (base !== undefined) return base;
  if (GOBGPD === undefined) return 'gobgpd is not installed (Debian package gobgpd)';
  if (!PROTOS) return 'GoBGP API protos missing (Debian package golang-github-osrg-gobgp-dev)';
  return undefined;
}

const ENGINE = 'engine: { bufferCount: 4096, hugepages: false, maxPorts: 16, maxSwitches: 8, eventRing: 4096 }\n';

function config(host: 1 | 2, holdTime = 9, keepalive = 3): string {
  const other = host === 1 ? 2 : 1;
  return `${ENGINE}uplinks:
  - { name: up0, type: afpacket, interface: ul, localIp: 198.18.0.1${host}/24 }
switches:
  - name: tenant
    vni: 1001
    ports:
      - { name: g1, type: afpacket, interface: g1 }
      - { name: p1, type: pipe, ringSize: 4096, macLimit: 0 }
bgp:
  asn: 64512
  routerId: 198.18.0.${host}
  neighbors: [198.18.0.${other}]
  holdTime: ${holdTime}
  keepalive: ${keepalive}
`;
}

interface Host {
  ns: string;
  guest: Guest;
  vpcd?: VpcdProcess;
  dir: string;
}

type BgpStatusBody = { bgp: { neighbors: { address: string; state: string; received: number; advertised: number }[]; pid?: number; routerId: string; api: string; restarts: number; evpn: Record<string, number> } | null };
type RoutesBody = { routes: { type: number; mac?: string; vtep: string; origin: string; seq?: number }[] };
type FdbBody = { entries: { mac: string; vtep?: string; evpn?: boolean; static: boolean }[] };

describe('EVPN: two vpcd hosts with gobgpd (network namespaces)', { timeout: 240_000 }, () => {
  const reason = skip();
  let lab: Lab;
  const hosts: Host[] = [];

  before(async () => {
    if (reason !== undefined) return;
    lab = new Lab();
    const ha = lab.netns('ha');
    const hb = lab.netns('hb');
    lab.vethBetween(ha, 'ul', hb, 'ul');
    lab.ns(ha, 'ip', ['addr', 'add', '198.18.0.1/24', 'dev', 'ul']);
    lab.ns(hb, 'ip', ['addr', 'add', '198.18.0.2/24', 'dev', 'ul']);
    for (const [i, ns] of [ha, hb].entries()) {
      const gns = lab.netns(i === 0 ? 'ga' : 'gb');
      lab.vethBetween(ns, 'g1', gns, 'eth0');
      const guest = lab.configure(gns, 'eth0', `02:00:00:00:0a:0${i + 1}`, `198.19.0.${i + 1}/24`);
      hosts.push({ ns, guest, dir: tempDir('vpcd-evpn-') });
    }
    for (const [i, h] of hosts.entries()) {
      h.vpcd = await spawnVpcd({ dir: h.dir, config: config((i + 1) as 1 | 2), netns: h.ns, testHooks: true });
    }
  });

  after(async () => {
    for (const h of hosts) {
      await h.vpcd?.stop();
      // A gobgpd left behind by a failed test (kill -9 of vpcd) goes too.
      try {
        const rec = JSON.parse(fs.readFileSync(`${h.dir}/state/gobgpd.json`, 'utf8')) as { pid: number };
        process.kill(rec.pid, 'SIGKILL');
      } catch {
        // none
      }
      removeDir(h.dir);
    }
    lab?.cleanup();
  });

  // GETs are retried once on EPIPE: Node's keep-alive agent may reuse a
  // connection vpcd is closing after its idle timeout (a race of the client,
  // not of what is tested here).
  const get = async <T>(h: Host, path: string): Promise<T> => {
    try {
      return await h.vpcd!.client.call<T>('GET', path);
    } catch (err) {
      if ((err as { code?: string }).code !== 'EPIPE') throw err;
      return h.vpcd!.client.call<T>('GET', path);
    }
  };
  const status = (h: Host): Promise<BgpStatusBody> => get<BgpStatusBody>(h, '/v1/bgp');
  const routes = (h: Host): Promise<RoutesBody> => get<RoutesBody>(h, '/v1/bgp/routes?switch=tenant');
  const fdb = (h: Host): Promise<FdbBody> => get<FdbBody>(h, '/v1/switches/tenant/fdb');
  const established = async (h: Host): Promise<boolean> => (await status(h)).bgp?.neighbors.some((n) => n.state === 'established') === true;
  const ping = async (from: Guest, to: string): Promise<boolean> => (await lab.ping(from, to, 3)).ok;

  it('sessions come up, IMET routes make the flood lists, guests reach each other', async (t) => {
    if (reason !== undefined) return t.skip(reason);
    const [a, b] = hosts as [Host, Host];
    await eventually(async () => (await established(a)) && (await established(b)), 30_000, 200);
    // Type 3 of the other host -> its VTEP is in the switch's flood list.
    await eventually(async () => (await routes(a)).routes.some((r) => r.type === 3 && r.origin !== 'local' && r.vtep === '198.18.0.12'), 10_000, 100);
    await eventually(async () => (await routes(b)).routes.some((r) => r.type === 3 && r.origin !== 'local' && r.vtep === '198.18.0.11'), 10_000, 100);
    const peers = await a.vpcd!.client.call<{ peers: Record<string, unknown>[] }>('GET', '/v1/peers');
    assert.deepEqual(peers.peers.map((p) => [p.switch, p.ip, p.origin, p.uuid]), [['tenant', '198.18.0.12', 'evpn', undefined]],
      'no configured peers: EVPN made the flood list, and peer list shows it');
    const text = execFileSync(process.execPath, [VPCCTL, '-s', a.vpcd!.socket, 'peer', 'list'], { encoding: 'utf8' });
    assert.match(text, /^tenant\s+198\.18\.0\.12\s.*- \(evpn\)$/m);
    // Both ways.
    assert.ok(await ping(a.guest, b.guest.ip), 'a -> b');
    assert.ok(await ping(b.guest, a.guest.ip), 'b -> a');
    // Each guest's MAC is a type-2 route of its host, and an evpn FDB entry on the other.
    await eventually(async () => (await fdb(b)).entries.find((e) => e.mac === a.guest.mac && e.evpn === true && e.vtep === '198.18.0.11'), 10_000, 100);
    await eventually(async () => (await fdb(a)).entries.find((e) => e.mac === b.guest.mac && e.evpn === true && e.vtep === '198.18.0.12'), 10_000, 100);
    const ra = await routes(a);
    assert.ok(ra.routes.some((r) => r.type === 2 && r.mac === a.guest.mac && r.origin === 'local' && r.vtep === '198.18.0.11'));
    assert.ok(ra.routes.some((r) => r.type === 2 && r.mac === b.guest.mac && r.origin !== 'local' && r.vtep === '198.18.0.12'));
    // vpcctl
    const out = execFileSync(process.execPath, [VPCCTL, '-s', a.vpcd!.socket, 'bgp', 'status'], { encoding: 'utf8' });
    assert.match(out, /198\.18\.0\.2\s+64512\s+established/);
    const r2 = execFileSync(process.execPath, [VPCCTL, '-s', a.vpcd!.socket, 'bgp', 'routes', '--switch', 'tenant'], { encoding: 'utf8' });
    assert.match(r2, new RegExp(`${b.guest.mac}\\s+-\\s+198\\.18\\.0\\.12`));
  });

  it('a static peer and entry put over the EVPN ones and removed again: the EVPN ones come back, and the guests reach each other', async (t) => {
    if (reason !== undefined) return t.skip(reason);
    const [a, b] = hosts as [Host, Host];
    const c = a.vpcd!.client;
    await c.call('POST', '/v1/peers', { switch: 'tenant', ip: '198.18.0.12' });
    await c.call('POST', '/v1/fdb', { switch: 'tenant', mac: b.guest.mac, vtep: '198.18.0.12' });
    await c.call('DELETE', `/v1/peers/tenant/198.18.0.12`);
    await c.call('DELETE', `/v1/fdb/tenant/${b.guest.mac}`);
    await eventually(async () => (await c.call<{ peers: Record<string, unknown>[] }>('GET', '/v1/peers')).peers.some((p) => p.ip === '198.18.0.12' && p.origin === 'evpn'), 10_000, 100);
    await eventually(async () => (await fdb(a)).entries.find((e) => e.mac === b.guest.mac && e.evpn === true && e.vtep === '198.18.0.12'), 10_000, 100);
    assert.ok(await ping(a.guest, b.guest.ip), 'a -> b');
  });

  it('what gobgpd holds is what vpcd sent (read back over the API: MAC, VNI, next hop)', async (t) => {
    if (reason !== undefined) return t.skip(reason);
    const [a] = hosts as [Host, Host];
    const s = (await status(a)).bgp!;
    // The API port is on the namespace's loopback: ask from inside it.
    const script = `const { GobgpClient } = require(${JSON.stringify(require.resolve('../../src/control/evpn/gobgp'))});
      const c = new GobgpClient(${JSON.stringify(s.api)});
      c.listRoutes().then((r) => { process.stdout.write(JSON.stringify(r)); c.close(); }, (e) => { console.error(e); process.exit(1); });`;
    const out = lab.ns(a.ns, process.execPath, ['-e', script], 20_000);
    const rs = JSON.parse(out) as { route: { type: number; mac?: string; vni: number; nextHop: string; encapVxlan: boolean; rts: { asn: number; value: number }[] }; neighbor: string }[];
    const ours = rs.find((r) => r.neighbor === '' && r.route.type === 2 && r.route.mac === a.guest.mac);
    assert.ok(ours, `our type-2 route for ${a.guest.mac} in gobgpd's table: ${out}`);
    assert.equal(ours.route.vni, 1001);
    assert.equal(ours.route.nextHop, '198.18.0.11');
    assert.equal(ours.route.encapVxlan, true);
    assert.deepEqual(ours.route.rts, [{ asn: 64512, value: 1001 }]);
    assert.ok(GobgpClient, 'the client module loads in the test process too');
  });

  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  // Frames from `macs` entering host h's pipe port p1.
  const sendFrom = async (h: Host, macs: string[]): Promise<void> => {
    for (let i = 0; i < macs.length; i += 500) {
      await h.vpcd!.client.call('POST', '/v1/test/ports/p1/send', { frames: macs.slice(i, i + 500).map((m) => frameHex('ff:ff:ff:ff:ff:ff', m)) });
    }
  };

  it('gobgpd killed -9 is restarted and re-advertises; the other host keeps the routes', async (t) => {
    if (reason !== undefined) return t.skip(reason);
    const [a, b] = hosts as [Host, Host];
    const before = (await status(a)).bgp!;
    assert.ok(before.pid !== undefined);
    process.kill(before.pid!, 'SIGKILL');
    await eventually(async () => {
      const s = (await status(a)).bgp!;
      return s.restarts >= 1 && s.pid !== before.pid && s.neighbors.some((n) => n.state === 'established');
    }, 30_000, 200);
    await eventually(async () => (await fdb(b)).entries.find((e) => e.mac === a.guest.mac && e.evpn === true), 60_000, 100);
    await eventually(async () => (await routes(a)).routes.some((r) => r.type === 3 && r.origin !== 'local'), 60_000, 100);
    assert.ok(await ping(a.guest, b.guest.ip), 'a -> b after the restart');
  });

  it('vpcd killed -9 alone restarts next to its gobgpd: the other host never loses its routes', async (t) => {
    if (reason !== undefined) return t.skip(reason);
    const [a, b] = hosts as [Host, Host];
    const gobgpd = (await status(a)).bgp!.pid!;
    await a.vpcd!.kill9();
    process.kill(gobgpd, 0); // gobgpd still runs
    let lost = 0;
    let samples = 0;
    let restarted = false;
    const watching = (async () => {
      while (!restarted || samples < 5) {
        samples++;
        if (!(await fdb(b)).entries.some((e) => e.mac === a.guest.mac && e.evpn === true)) lost++;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    a.vpcd = await spawnVpcd({ dir: a.dir, noConfig: true, netns: a.ns, testHooks: true });
    await eventually(async () => (await status(a)).bgp?.neighbors.some((n) => n.state === 'established'), 15_000, 100);
    restarted = true;
    await watching;
    assert.equal((await status(a)).bgp!.pid, gobgpd, 'the running gobgpd was taken over');
    assert.equal(lost, 0, `B lost A's guest MAC in ${lost} of ${samples} samples`);
    assert.ok(await ping(a.guest, b.guest.ip), 'a -> b after the restart');
    await eventually(async () => (await routes(a)).routes.some((r) => r.type === 2 && r.origin === 'local' && r.mac === a.guest.mac), 10_000, 100);
    t.diagnostic(`B kept A's routes through A's vpcd restart (${samples} samples, every 100 ms)`);
    // The taken-over gobgpd writes a line (a connection from an address that
    // is no neighbour): its log is a file, not a pipe to the killed vpcd
    // (SIGPIPE), and the new vpcd logs the line at gobgpd's level.
    lab.ns(a.ns, process.execPath, ['-e', "const s = require('net').connect(179, '127.0.0.1', () => setTimeout(() => s.destroy(), 200)); s.on('error', () => undefined);"]);
    const line = await eventually(() => a.vpcd!.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'gobgpd' && /passive connection/.test(String(l.gobgpd))), 10_000, 100)
      .catch(() => assert.fail(`the new vpcd logged no line of the taken-over gobgpd; gobgpd ${alive(gobgpd) ? 'runs' : 'is dead'}`));
    assert.equal(line.level, 'info', 'logged at gobgpd\'s level');
    assert.equal(line.gobgpdPid, gobgpd);
    assert.equal(line.pid, a.vpcd!.proc.pid, 'pid is vpcd\'s');
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(alive(gobgpd), 'the taken-over gobgpd still runs after writing to its log');
    assert.equal((await status(a)).bgp!.pid, gobgpd);
  });

  it('a dead session takes the neighbour\'s routes with it (hold time)', async (t) => {
    if (reason !== undefined) return t.skip(reason);
    const [a, b] = hosts as [Host, Host];
    // B's whole host dies: vpcd and gobgpd killed -9.
    const pid = (await status(b)).bgp!.pid!;
    await b.vpcd!.kill9();
    process.kill(pid, 'SIGKILL');
    const t0 = Date.now();
    await eventually(async () => {
      const f = await fdb(a);
      const r = await routes(a);
      return !f.entries.some((e) => e.mac === b.guest.mac) && !r.routes.some((x) => x.origin !== 'local');
    }, 20_000, 100);
    const seconds = (Date.now() - t0) / 1000;
    t.diagnostic(`B's routes, FDB entries and flood-list peer gone from A ${seconds.toFixed(1)} s after B died (hold time 9 s)`);
    // Nothing goes to B while the session is down (gobgpd keeps its last count).
    // vpcd's view of the session follows gobgpd's at its next look.
    const toB = await eventually(async () => (await status(a)).bgp!.neighbors.find((n) => n.state !== 'established'), 10_000, 100);
    assert.equal(toB.advertised, 0, 'A advertises nothing to B while the session is down');
    // B comes back from its state file; everything is learned again.
    b.vpcd = await spawnVpcd({ dir: b.dir, noConfig: true, netns: b.ns, testHooks: true });
    await eventually(async () => (await established(a)) && (await established(b)), 30_000, 200);
    assert.ok(await ping(b.guest, a.guest.ip), 'b -> a after B restarted');
    await eventually(async () => (await fdb(a)).entries.find((e) => e.mac === b.guest.mac && e.evpn === true), 15_000, 100);
  });
  it('1,000 MACs learned on one host are installed on the other (time reported)', async (t) => {
    if (reason !== undefined) return t.skip(reason);
    const [a, b] = hosts as [Host, Host];
    const macs = Array.from({ length: 1000 }, (_, i) => `02:00:00:10:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`);
    const t0 = Date.now();
    await sendFrom(a, macs);
    await eventually(async () => (await fdb(b)).entries.filter((e) => e.evpn === true && e.vtep === '198.18.0.11' && e.mac.startsWith('02:00:00:10:')).length === 1000, 30_000, 20);
    t.diagnostic(`1000 MACs learned on A installed on B in ${Date.now() - t0} ms (frames sent to B's FDB, polled every 20 ms)`);
    // A flush on A withdraws them (no aged events: EVPN re-reads the FDB).
    await a.vpcd!.client.call('POST', '/v1/switches/tenant/fdb/flush', { port: 'p1' });
    await eventually(async () => (await fdb(b)).entries.filter((e) => e.mac.startsWith('02:00:00:10:')).length === 0, 60_000, 100);
    await sendFrom(a, macs.slice(0, 10)); // the next test moves one of these
  });

  it('a MAC that moves to the other host converges there (time reported)', async (t) => {
    if (reason !== undefined) return t.skip(reason);
    const [a, b] = hosts as [Host, Host];
    const m = '02:00:00:10:00:07'; // learned on A by the test above
    await eventually(async () => (await fdb(b)).entries.find((e) => e.mac === m && e.evpn === true), 10_000, 20);
    const t0 = Date.now();
    await sendFrom(b, [m]); // it speaks on B now
    await eventually(async () => (await fdb(a)).entries.find((e) => e.mac === m && e.evpn === true && e.vtep === '198.18.0.12'), 10_000, 5);
    const ms = Date.now() - t0;
    const ra = await routes(a);
    const rb = await routes(b);
    assert.ok(rb.routes.some((r) => r.type === 2 && r.mac === m && r.origin === 'local' && r.seq === 1), 'B advertises it with sequence number 1');
    assert.ok(!ra.routes.some((r) => r.type === 2 && r.mac === m && r.origin === 'local'), 'A withdrew its route');
    t.diagnostic(`MAC move: first frame on B to A's FDB pointing at B in ${ms} ms (polled every 5 ms)`);
  });

  it('a MAC that moves back and forth (A -> B -> A -> B): each host withdraws its route when the other wins, sequence numbers above 0 included', async (t) => {
    if (reason !== undefined) return t.skip(reason);
    const [a, b] = hosts as [Host, Host];
    const m = '02:00:00:10:00:07'; // on B (sequence 1) since the test above
    const rejected = async (h: Host): Promise<number> => (await status(h)).bgp!.evpn.rejected!;
    const before = [await rejected(a), await rejected(b)];
    // Back on A: A advertises sequence 2, B withdraws its sequence-1 route.
    await sendFrom(a, [m]);
    await eventually(async () => (await fdb(b)).entries.find((e) => e.mac === m && e.evpn === true && e.vtep === '198.18.0.11'), 10_000, 20);
    const stale = async (h: Host, vtep: string): Promise<boolean> => (await routes(h)).routes.some((r) => r.type === 2 && r.mac === m && r.origin !== 'local' && r.vtep === vtep);
    await eventually(async () => !(await stale(a, '198.18.0.12')), 10_000, 50).catch(() => assert.fail(`B's route for ${m} is still out after the MAC went back to A`));
    assert.ok((await routes(a)).routes.some((r) => r.type === 2 && r.mac === m && r.origin === 'local' && r.seq === 2), 'A advertises it with sequence number 2');
    // And to B once more: A withdraws its sequence-2 route.
    await sendFrom(b, [m]);
    await eventually(async () => (await fdb(a)).entries.find((e) => e.mac === m && e.evpn === true && e.vtep === '198.18.0.12'), 10_000, 20);
    await eventually(async () => !(await stale(b, '198.18.0.11')), 10_000, 50).catch(() => assert.fail(`A's route for ${m} is still out after the MAC went back to B`));
    assert.ok((await routes(b)).routes.some((r) => r.type === 2 && r.mac === m && r.origin === 'local' && r.seq === 3), 'B advertises it with sequence number 3');
    assert.deepEqual([await rejected(a), await rejected(b)], before, 'gobgpd refused no withdrawal');
  });

  it('a clean stop (SIGTERM) removes every switch, the flood-list peers EVPN added included', async (t) => {
    if (reason !== undefined) return t.skip(reason);
    const [a] = hosts as [Host, Host];
    await eventually(async () => (await routes(a)).routes.some((r) => r.type === 3 && r.origin !== 'local' && r.vtep === '198.18.0.12'), 10_000, 100);
    const logs = a.vpcd!.logs;
    const code = await a.vpcd!.stop();
    a.vpcd = await spawnVpcd({ dir: a.dir, noConfig: true, netns: a.ns, testHooks: true });
    assert.equal(code, 0);
    const left = logs.filter((l) => /could not remove/.test(l));
    assert.deepEqual(left, [], 'nothing left behind at shutdown');
    await eventually(async () => (await routes(a)).routes.some((r) => r.type === 3 && r.origin !== 'local' && r.vtep === '198.18.0.12'), 30_000, 100);
  });

  it('the uplink is replaced (xdpDecap changed) while EVPN manages its switches: the apply goes through, and the flood list and routes come back', async (t) => {
    if (reason !== undefined) return t.skip(reason);
    const [a, b] = hosts as [Host, Host];
    await eventually(async () => (await status(a)).bgp!.evpn.floodPeers === 1, 10_000, 100);
    // Before, the engine refused: "uplink: switches still have peers: tenant" (the flood-list peer EVPN added).
    const replaced = config(1).replace('localIp: 198.18.0.11/24 }', 'localIp: 198.18.0.11/24, xdpDecap: off }');
    assert.notEqual(replaced, config(1));
    const r = await a.vpcd!.client.call<{ applied: boolean; plan: string[] }>('POST', '/v1/apply', { config: replaced });
    assert.equal(r.applied, true);
    assert.ok(r.plan.some((l) => /uplink up0.*replace: xdpDecap changed/.test(l)), r.plan.join('\n'));
    await eventually(async () => (await status(a)).bgp!.evpn.floodPeers === 1, 15_000, 100);
    await eventually(async () => (await routes(b)).routes.some((x) => x.type === 3 && x.origin !== 'local' && x.vtep === '198.18.0.11'), 15_000, 100);
    // And back to the configuration the other tests use.
    assert.equal((await a.vpcd!.client.call<{ applied: boolean }>('POST', '/v1/apply', { config: config(1) })).applied, true);
    await eventually(async () => (await status(a)).bgp!.evpn.floodPeers === 1, 15_000, 100);
  });

  it('a bgp change that restarts gobgpd (routerId) keeps the running totals: they count from vpcd\'s start', async (t) => {
    if (reason !== undefined) return t.skip(reason);
    const [a] = hosts as [Host, Host];
    const before = (await status(a)).bgp!.evpn.updatesSent;
    assert.ok(before > 0, 'routes were sent before');
    const apply = async (text: string): Promise<void> => assert.equal((await a.vpcd!.client.call<{ applied: boolean }>('POST', '/v1/apply', { config: text })).applied, true);
    await apply(config(1).replace('routerId: 198.18.0.1\n', 'routerId: 198.18.0.21\n'));
    const restarted = await eventually(async () => {
      const s = (await status(a)).bgp!;
      return s.routerId === '198.18.0.21' && s.neighbors.some((n) => n.state === 'established') ? s : undefined;
    }, 60_000, 200);
    // The new sync advertised this host's routes again: added to, not counted anew.
    await eventually(async () => ((await status(a)).bgp!.evpn.updatesSent > before ? true : undefined), 30_000, 200)
      .catch(async () => assert.fail(`updates sent: ${before} before the restart, ${(await status(a)).bgp!.evpn.updatesSent} after`));
    await apply(config(1));
    await eventually(async () => (await status(a)).bgp!.routerId === '198.18.0.1' && (await status(a)).bgp!.evpn.floodPeers === 1, 60_000, 200);
    assert.ok((await status(a)).bgp!.evpn.updatesSent > restarted.evpn.updatesSent);
  });

  it('a switch EVPN manages is deleted (a configuration without it): handed back first, its routes withdrawn', async (t) => {
    if (reason !== undefined) return t.skip(reason);
    const [a, b] = hosts as [Host, Host];
    // B's VTEP is in A's flood list: a peer the plan does not know, which the engine would not delete the switch with.
    await eventually(async () => (await status(a)).bgp!.evpn.floodPeers === 1, 10_000, 100);
    const config1 = config(1).replace(/switches:\n[\s\S]*?bgp:/, 'switches: []\nbgp:');
    const r = await a.vpcd!.client.call<{ applied: boolean; plan: string[] }>('POST', '/v1/apply', { config: config1 });
    assert.equal(r.applied, true);
    assert.ok(r.plan.some((l) => /^- switch tenant/.test(l)), r.plan.join('\n'));
    assert.deepEqual((await get<{ switches: unknown[] }>(a, '/v1/switches')).switches, []);
    // Its IMET and MAC routes are withdrawn: B drops A's VTEP and MACs.
    await eventually(async () => !(await routes(b)).routes.some((x) => x.origin !== 'local' && x.vtep === '198.18.0.11'), 15_000, 100);
    await eventually(async () => !(await fdb(b)).entries.some((e) => e.vtep === '198.18.0.11'), 15_000, 100);
  });
});
