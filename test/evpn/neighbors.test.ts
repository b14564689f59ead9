// The BGP speaker while it runs (issue 14 follow-up):
//   - a neighbour added, changed or removed in one host's `bgp` section goes
//     to its running gobgpd through the API: the session to the untouched
//     neighbour stays Established (same gobgpd, same establishment time) and
//     the routes learned over it stay installed the whole time; so does a
//     change of the sync's own settings (bgp.switches, remoteLearning), which
//     the running switch follows without any session change;
//   - a gobgpd that is slow to answer (here: stopped with SIGSTOP, by PID) is
//     reported `busy` with its last known sessions marked stale, not `down`.

import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { resolveBgp } from '../../src/control/evpn/config';
import type { BgpStatus } from '../../src/control/evpn/service';
import type { EvpnRouteView } from '../../src/control/evpn/evpn';
import { gobgpdConfig } from '../../src/control/evpn/speaker';
import { removeDir, tempDir, VPCCTL } from '../control/helpers';
import { Lab, skipReason } from '../ports/lab';

const GOBGPD = ['/usr/bin/gobgpd', '/usr/sbin/gobgpd'].find((f) => fs.existsSync(f));
const PROTOS = fs.existsSync('/usr/share/gocode/src/github.com/osrg/gobgp/api/gobgp.proto');
import { EvpnLab, SWITCH, SwitchHost, sendFromMacs, withEvpnLab } from './lab';

// Host h's configuration with exactly these neighbours (mappings allowed),
// and `bgp` lines of its own.
function withNeighbors(lab: EvpnLab, h: SwitchHost, neighbors: string[], bgpLines?: string): string {
  const cfg = lab.vpcdConfig(h, bgpLines === undefined ? {} : { bgp: bgpLines });
  const list = / {2}neighbors:\n(?: {4}- .*\n)+/;
  assert.match(cfg, list, 'the lab config has a neighbors list');
  return cfg.replace(list, `  neighbors:\n${neighbors.map((n) => `    - ${n}\n`).join('')}`);
}

async function bgp(h: SwitchHost): Promise<BgpStatus> {
  const r = await h.vpcd!.client.call<{ bgp: BgpStatus | null }>('GET', '/v1/bgp');
  assert.ok(r.bgp, `host ${h.n} has a bgp status`);
  return r.bgp;
}

async function routesFrom(h: SwitchHost, vtep: string): Promise<EvpnRouteView[]> {
  const r = await h.vpcd!.client.call<{ routes: EvpnRouteView[] }>('GET', '/v1/bgp/routes');
  return r.routes.filter((x) => x.origin === 'remote' && x.vtep === vtep);
}

// Until host h reports its session with `peer` established, with the time it
// came up (a host's status is refreshed once a second, and the time can come
// a refresh after the state).
async function established(lab: EvpnLab, h: SwitchHost, peer: string, what: string): Promise<void> {
  await lab.until(async () => (await bgp(h)).neighbors.some((n) => n.address === peer && n.state === 'established' && n.establishedAt !== undefined), 60_000, what).catch(async (e: Error) => {
    throw new Error(`${e.message}\n${await lab.bgpStatus(h)}\n${lab.logs()}`);
  });
}

test('bgp neighbours added, changed and removed, and the sync\'s settings changed, on a running host: the untouched session and its routes stay up', async (t) => {
  await withEvpnLab(t, { switchHosts: 3, frr: false }, async (lab) => {
    const [h1, h2, h3] = lab.hosts as [SwitchHost, SwitchHost, SwitchHost];
    // Host 1 starts with host 2 alone; hosts 2 and 3 list everyone.
    await Promise.all([lab.startVpcd(h1, withNeighbors(lab, h1, [h2.bgp])), lab.startVpcd(h2), lab.startVpcd(h3)]);
    await established(lab, h1, h2.bgp, 'host 1 has its session with host 2');
    // MACs behind hosts 2 and 3: their switches learn them and advertise them.
    await sendFromMacs(h2.guest.ns, h2.guest.dev, '02:00:5e:22', 1, 4);
    await sendFromMacs(h3.guest.ns, h3.guest.dev, '02:00:5e:33', 1, 4);
    const macsOf = async (h: SwitchHost, vtep: string): Promise<number> => (await routesFrom(h, vtep)).filter((r) => r.type === 2).length;
    await lab.until(async () => (await macsOf(h1, h2.vtep)) >= 4, 30_000, 'host 1 installed the MACs of host 2');
    const before = await bgp(h1);
    const s12 = before.neighbors.find((n) => n.address === h2.bgp)!;
    assert.ok(s12.establishedAt, 'the session to host 2 says when it came up');
    // Host 2 may report the session a moment after host 1 does (CI once
    // read it before it had a time).
    await established(lab, h2, h1.bgp, 'host 2 has its session with host 1');
    const s21 = (await bgp(h2)).neighbors.find((n) => n.address === h1.bgp)!;
    assert.ok(s21.establishedAt, 'the session to host 1 says when it came up');
    const routes12 = (await routesFrom(h1, h2.vtep)).length;

    // Watch host 1's session to host 2, and what it learned over it, all along.
    const seen: string[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const b = await bgp(h1);
        const n = b.neighbors.find((x) => x.address === h2.bgp);
        if (n?.state !== 'established' || n.establishedAt !== s12.establishedAt) seen.push(`session to host 2: ${JSON.stringify(n)}`);
        if (b.pid !== before.pid) seen.push(`gobgpd pid ${b.pid}, was ${before.pid}`);
        const r = (await routesFrom(h1, h2.vtep)).length;
        if (r < routes12) seen.push(`${r} routes from host 2, had ${routes12}`);
        const fdb = await lab.fdb(h1);
        const installed = fdb.filter((e) => e.vtep === h2.vtep).length;
        if (installed < 4) seen.push(`${installed} FDB entries behind host 2`);
        await new Promise((r2) => setTimeout(r2, 50));
      }
    })();
    const apply = async (neighbors: string[], bgpLines?: string): Promise<void> => {
      const config = withNeighbors(lab, h1, neighbors, bgpLines);
      const r = await h1.vpcd!.client.call<{ applied: boolean }>('POST', '/v1/apply', { config });
      assert.equal(r.applied, true);
      // Acknowledged once persisted: the running state has the new neighbours.
      const st = await h1.vpcd!.client.call<{ state: { bgp: { neighbors: (string | { address: string })[] } } }>('GET', '/v1/state');
      assert.deepEqual(st.state.bgp.neighbors.map((n) => (typeof n === 'string' ? n : n.address)), neighbors.map((n) => /\d+\.\d+\.\d+\.\d+/.exec(n)![0]));
    };
    try {
      // 1. Add host 3.
      await apply([h2.bgp, h3.bgp]);
      await established(lab, h1, h3.bgp, 'host 1 has its new session with host 3');
      await lab.until(async () => (await macsOf(h1, h3.vtep)) >= 4, 30_000, 'host 1 installed the MACs of host 3');
      const est13 = (await bgp(h1)).neighbors.find((n) => n.address === h3.bgp)!.establishedAt;

      // 2. Change host 3's settings (our route reflector client now): its
      // session alone restarts.
      await apply([h2.bgp, `{ address: ${h3.bgp}, routeReflectorClient: true }`]);
      await lab.until(async () => {
        const n = (await bgp(h1)).neighbors.find((x) => x.address === h3.bgp);
        return n?.state === 'established' && n.establishedAt !== est13;
      }, 60_000, 'host 1 re-established the changed session with host 3');

      // 3. Remove host 3: its routes go.
      await apply([h2.bgp]);
      await lab.until(async () => !(await bgp(h1)).neighbors.some((n) => n.address === h3.bgp) && (await routesFrom(h1, h3.vtep)).length === 0, 30_000, 'host 1 dropped host 3 and its routes');

      // 4. The sync's own settings (the switches it manages, VXLAN
      // learning): no session changes, and the switch follows.
      const learning = async (): Promise<boolean> => (await h1.vpcd!.client.call<{ switch: { remoteLearning: boolean } }>('GET', `/v1/switches/${SWITCH}`)).switch.remoteLearning;
      assert.equal(await learning(), false, 'EVPN turned VXLAN learning off');
      await apply([h2.bgp], `  switches: [${SWITCH}]\n  remoteLearning: true\n`);
      await lab.until(learning, 30_000, 'bgp.remoteLearning: true applied to the running switch');
    } finally {
      watching = false;
      await watcher;
    }
    assert.deepEqual(seen, [], `the session to host 2 or its routes were disturbed\n${lab.logs()}`);
    const after = await bgp(h1);
    assert.equal(after.restarts, 0, 'gobgpd was never restarted');
    assert.equal(after.neighbors.find((n) => n.address === h2.bgp)?.establishedAt, s12.establishedAt, 'host 1: same session to host 2');
    assert.equal((await bgp(h2)).neighbors.find((n) => n.address === h1.bgp)?.establishedAt, s21.establishedAt, 'host 2: same session to host 1');
    const log = h1.vpcd!.logs.join('\n');
    assert.match(log, /change applied to the running gobgpd/);
    assert.match(log, /change applied to the EVPN sync/);
    assert.doesNotMatch(log, /restarting it/);
  });
});

test('bgp status: a gobgpd that does not answer in time is busy, with its last sessions marked stale, not down', async (t) => {
  // A long hold time: host 2 keeps the session while host 1's gobgpd is stopped.
  await withEvpnLab(t, { switchHosts: 2, frr: false, keepalive: 20, holdTime: 60 }, async (lab) => {
    const [h1, h2] = lab.hosts as [SwitchHost, SwitchHost];
    await lab.startAllVpcd();
    await established(lab, h1, h2.bgp, 'host 1 has its session with host 2');
    const up = await bgp(h1);
    assert.equal(up.speaker, 'up');
    assert.equal(up.stale, false);
    const pid = up.pid!;
    assert.ok(lab.gobgpdPids(h1).includes(pid), `pid ${pid} is host 1's managed gobgpd`);
    process.kill(pid, 'SIGSTOP');
    let busy: BgpStatus;
    let text: string;
    try {
      await lab.until(async () => (await bgp(h1)).speaker !== 'up', 30_000, 'host 1 notices its gobgpd does not answer');
      busy = await bgp(h1);
      text = execFileSync(process.execPath, [VPCCTL, '-s', h1.vpcd!.socket, 'bgp', 'status'], { encoding: 'utf8' });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    assert.equal(busy.speaker, 'busy', `a stopped gobgpd is busy, not down: ${JSON.stringify(busy)}`);
    assert.equal(busy.stale, true);
    assert.ok(busy.ageSeconds !== undefined && busy.ageSeconds > 0, `the age of the last answer: ${busy.ageSeconds}`);
    assert.equal(busy.neighbors.find((n) => n.address === h2.bgp)?.state, 'established', 'the last known session is still shown');
    assert.match(text, /: busy \(gobgpd did not answer in time; stale: sessions as of \d+\.\d s ago\)/);
    assert.match(text, new RegExp(`${h2.bgp.replace(/\./g, '\\.')}\\s+\\d+\\s+established`));
    await lab.until(async () => {
      const b = await bgp(h1);
      return b.speaker === 'up' && !b.stale;
    }, 30_000, 'host 1 sees its gobgpd answer again');
    assert.equal((await bgp(h1)).pid, pid, 'the same gobgpd: it was not restarted');
  });
});

// A managed gobgpd (its configuration as vpcd writes it) between an iBGP
// host C and an eBGP neighbour B, three gobgpds in one namespace on
// addresses of its loopback: the MAC route C originates (next hop: C's
// VTEP) must reach B with that next hop, not with this host's BGP address
// (gobgpd sets its own on routes it passes to eBGP neighbours unless told
// otherwise: vpcd's export policy).
test('an eBGP neighbour gets a third host\'s MAC routes with the originating VTEP as next hop', async (t) => {
  const why = skipReason(['ip']) ?? (GOBGPD === undefined || !PROTOS ? 'gobgpd (Debian package gobgpd) or its protos missing' : undefined);
  if (why !== undefined) return t.skip(why);
  const lab = new Lab();
  const dir = tempDir('evpn-ebgp-');
  const children: ChildProcess[] = [];
  try {
    const ns = lab.netns('eb');
    const [a, b, c] = ['198.18.2.1', '198.18.2.2', '198.18.2.3'];
    for (const ip of [a, b, c]) lab.ns(ns, 'ip', ['addr', 'add', `${ip}/32`, 'dev', 'lo']);
    const plain = (self: string, asn: number, peer: string, peerAsn: number): string =>
      `[global.config]\n  as = ${asn}\n  router-id = "${self}"\n  local-address-list = ["${self}"]\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = "${peer}"\n    peer-as = ${peerAsn}\n` +
      `  [neighbors.timers.config]\n    connect-retry = 1\n  [neighbors.transport.config]\n    local-address = "${self}"\n  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = "l2vpn-evpn"\n`;
    const configs: [string, string][] = [
      ['a', gobgpdConfig(resolveBgp({ asn: 64512, routerId: a, localAddress: a, holdTime: 9, neighbors: [{ address: b, asn: 64513 }, c] }))],
      ['b', plain(b, 64513, a, 64512)],
      ['c', plain(c, 64512, a, 64512)],
    ];
    const api = (i: number): string => `127.0.0.1:${50151 + i}`;
    configs.forEach(([name, text], i) => {
      fs.writeFileSync(path.join(dir, `${name}.toml`), text);
      const g = spawn('ip', ['netns', 'exec', ns, 'timeout', '120', GOBGPD!, '-f', path.join(dir, `${name}.toml`), '-t', 'toml', '--api-hosts', api(i), '--pprof-disable'], { stdio: 'ignore' });
      children.push(g);
    });
    // Inside the namespace (the API ports are on its loopback): C advertises
    // a MAC behind its VTEP 198.18.0.3; B's table is read until it has it.
    const client = JSON.stringify(require.resolve('../../src/control/evpn/gobgp'));
    const script = `const { GobgpClient } = require(${client});
      const c = new GobgpClient(${JSON.stringify(api(2))}), b = new GobgpClient(${JSON.stringify(api(1))});
      const route = { type: 2, rd: { admin: '198.18.2.3', assigned: 1001 }, ethernetTag: 0, mac: '02:00:00:00:0e:01', vni: 1001, nextHop: '198.18.0.3', rts: [{ asn: 64512, value: 1001 }], encapVxlan: true, seq: 0, sticky: false };
      (async () => {
        await c.waitReady(10000); await b.waitReady(10000);
        await c.updateRoutes([route], []);
        for (let i = 0; i < 300; i++) {
          const got = (await b.listRoutes()).find((r) => r.route.type === 2 && r.route.mac === route.mac);
          if (got) { process.stdout.write(got.route.nextHop); break; }
          await new Promise((r) => setTimeout(r, 100));
        }
        c.close(); b.close();
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const nextHop = lab.ns(ns, process.execPath, ['-e', script], 60_000);
    assert.equal(nextHop, '198.18.0.3', `B got C's MAC with next hop ${nextHop || '(none: the route never came)'}`);
  } finally {
    for (const g of children) g.kill('SIGTERM');
    lab.cleanup();
    removeDir(dir);
  }
});
