// Multi-host VPC over BGP EVPN (issue 14), end to end: three hosts running
// this switch (vpcd with its managed gobgpd, each from its own config with no
// peer list and no remote MAC) and a Linux host (kernel VXLAN + bridge, FRR
// 8.4 with advertise-all-vni), in namespaces on one machine (lab.ts).
//
// First lab, in order (each step builds on the previous one's state):
//   1. every guest reaches every other, both ways, FRR's guest included, and
//      every FDB holds every guest behind the right VTEP;
//   2. each broadcast reaches every other guest exactly once;
//   3. MAC move: a guest's MAC reappears behind another host; every FDB
//      converges (time from the first frame on the new host to the last
//      host's FDB update is reported);
//   4. host death: kill -9 of one host's vpcd and gobgpd; the others drop
//      its MACs and its VTEP (time reported); then a host cut off the
//      underlay (no TCP reset): dropped when the hold time (9 s) runs out;
//   5. the dead host comes back with 1,000 MACs learned while its sessions
//      come up: they reach every live host.
// Second lab, scale: 1,000 MACs on one host installed everywhere (time
// reported), then 10,000 more: the longest engine iteration
// (iteration_max_ns, sampled) on a receiving host is reported.
//
// No timed assertion: each wait has a generous bound and the figures are
// printed (t.diagnostic). Loads: a few pings per pair, 10 broadcasts per
// guest, 11,000 frames from distinct source MACs.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Guest, run, sleep } from '../ports/lab';
import { countFrames, marker, ping, sendFrames } from '../overlay/vxlab';
import { EvpnLab, evpnSkipReason, FrrHost, guestIp, Host, sendFromMacs, SwitchHost, TEST_ETHERTYPE } from './lab';

const reason = evpnSkipReason();

// How many entries of host h's FDB point to `vtep` with a MAC starting
// with `prefix`.
async function countBehind(lab: EvpnLab, h: Host, vtep: string, prefix: string): Promise<number> {
  let n = 0;
  for (const [mac, where] of await lab.where(h)) if (mac.startsWith(prefix) && where === vtep) n++;
  return n;
}

// Polls every host in parallel until `done(host)` holds for each, or
// `boundMs` passes; resolves with the time each host got there (ms since
// the epoch), undefined for a host that never did.
async function watch(lab: EvpnLab, hosts: Host[], done: (h: Host) => Promise<boolean>, boundMs: number, stepMs = 5): Promise<Map<Host, number | undefined>> {
  const deadline = Date.now() + boundMs;
  const out = new Map<Host, number | undefined>();
  await Promise.all(
    hosts.map(async (h) => {
      for (;;) {
        let ok = false;
        try {
          ok = await done(h);
        } catch {
          ok = false; // vpcd busy or restarting: try again
        }
        if (ok) {
          out.set(h, Date.now());
          return;
        }
        if (Date.now() > deadline) {
          out.set(h, undefined);
          return;
        }
        await sleep(stepMs);
      }
    }),
  );
  return out;
}

function name(lab: EvpnLab, h: Host): string {
  return h === lab.frr ? `FRR host ${h.n}` : `host ${h.n}`;
}

async function dump(lab: EvpnLab, hosts: Host[] = lab.all): Promise<string> {
  const parts: string[] = [];
  for (const h of hosts) {
    try {
      parts.push(`${name(lab, h)} FDB: ${JSON.stringify([...(await lab.where(h))])}`);
    } catch (e) {
      parts.push(`${name(lab, h)} FDB: ${(e as Error).message}`);
    }
  }
  for (const h of lab.hosts.filter((x) => hosts.includes(x) && x.vpcd)) parts.push(`host ${h.n} EVPN: ${await lab.bgpStatus(h)}`);
  if (lab.frr) parts.push(await lab.vtysh('show bgp l2vpn evpn summary', 'show evpn vni detail'));
  return `${parts.join('\n')}\n${lab.logs()}`;
}

// A lab with its sessions up: FRR's with the three switch hosts and each
// managed gobgpd's three, and every IMET route installed (FRR's flood list
// has the three switch VTEPs, each switch host's the three others). `prepare` runs before the daemons start.
async function startLab(prepare: (lab: EvpnLab) => void = () => undefined): Promise<EvpnLab> {
  const lab = new EvpnLab({ keepalive: 3, holdTime: 9 });
  try {
    prepare(lab);
    await lab.startFrr();
    await lab.startAllVpcd();
    await lab.frrSessionsUp();
    for (const h of lab.hosts) {
      await lab.until(async () => (await lab.gobgpNeighbors(h)).filter((p) => /^(6|ESTABLISHED)$/i.test(p.state)).length === 3, 30_000, `host ${h.n}'s gobgpd has 3 sessions`);
    }
    const want = lab.hosts.map((h) => h.vtep).sort().join(',');
    await lab.until(() => lab.frrFdb().get('flood') === want, 15_000, 'FRR floods to the three switch VTEPs').catch(async (e: Error) => {
      throw new Error(`${e.message}\n${await dump(lab)}`);
    });
    await lab.floodListsComplete(); // the switch hosts' flood lists too (FRR's update timer)
    return lab;
  } catch (err) {
    await lab.cleanup();
    throw err;
  }
}

// Waits until every host of `hosts` has `n` more FDB entries than in
// `base` (a counter read, polled every `stepMs`), then checks once, with a
// dump, that `n` entries with `prefix` are behind `vtep` (or local on the
// source). Resolves with the time each host got there.
async function installed(lab: EvpnLab, hosts: Host[], base: Map<Host, number>, n: number, boundMs: number, stepMs: number): Promise<Map<Host, number | undefined>> {
  return watch(lab, hosts, async (h) => (await lab.fdbSize(h)) >= base.get(h)! + n, boundMs, stepMs);
}

async function sizes(lab: EvpnLab, hosts: Host[]): Promise<Map<Host, number>> {
  return new Map(await Promise.all(hosts.map(async (h) => [h, await lab.fdbSize(h)] as [Host, number])));
}

function since(lab: EvpnLab, t0: number, times: Map<Host, number | undefined>, hosts: Host[]): string {
  return hosts.map((h) => `${name(lab, h)} ${times.get(h) === undefined ? 'never' : `${(times.get(h)! - t0).toFixed(0)} ms`}`).join(', ');
}

describe('BGP EVPN: three switch hosts and FRR', { skip: reason }, () => {
  let lab: EvpnLab;
  let frr: FrrHost;
  let mover: Guest; // a spare guest on host 2 that takes host 1's guest's MAC

  before(async () => {
    // Host 2 gets a second port whose guest is down until the MAC move.
    lab = await startLab((l) => (mover = l.spareGuest(l.hosts[1], l.hosts[0].guest.mac, guestIp(l.hosts[0].n))));
    frr = lab.frr!;
  });

  after(async () => {
    await lab?.cleanup();
  });

  test('every guest reaches every other both ways, FRR host included; every FDB has every guest behind its VTEP', async (t) => {
    // FRR advertises its guest only once its bridge learned it: its guest
    // speaks first (FRR issue 2768).
    const guests = lab.guests;
    const order = [frr.guest, ...guests.filter((g) => g !== frr.guest)];
    const failures: string[] = [];
    const rtts: string[] = [];
    for (const a of order) {
      for (const b of order) {
        if (a === b) continue;
        const r = await ping(lab.lab, a, b.ip, 2);
        if (r.received < 1) failures.push(`${a.ip} -> ${b.ip}: ${r.out.split('\n').slice(-3).join(' ')}`);
        else rtts.push(`${a.ip}->${b.ip} ${r.rttAvgMs} ms`);
      }
    }
    t.diagnostic(`ping rtt avg: ${rtts.join(', ')}`);
    assert.deepEqual(failures, [], `pings failed:\n${failures.join('\n')}\n${await dump(lab)}`);

    // Every host knows every guest: local ones on their port, remote ones
    // behind their host's VTEP (from EVPN: no flooding needed any more).
    const ok = await watch(lab, lab.all, async (h) => {
      const w = await lab.where(h);
      return lab.all.every((o) => (o === h ? w.get(o.guest.mac)?.startsWith('local:') === true : w.get(o.guest.mac) === o.vtep));
    }, 15_000);
    const missing = lab.all.filter((h) => ok.get(h) === undefined);
    assert.deepEqual(missing.map((h) => name(lab, h)), [], `FDBs incomplete:\n${await dump(lab, missing)}`);
    // vpcd marks what EVPN installed (kind evpn), and only that.
    for (const h of lab.hosts) {
      const fdb = await lab.fdb(h);
      for (const o of lab.all.filter((x) => x !== h)) {
        const e = fdb.find((x) => x.mac === o.guest.mac);
        assert.equal(e?.evpn, true, `host ${h.n}: ${o.guest.mac} is an EVPN entry: ${JSON.stringify(e)}`);
      }
      assert.notEqual(fdb.find((x) => x.mac === h.guest.mac)?.evpn, true, `host ${h.n}: its own guest is learned locally`);
    }
  });

  test('each broadcast reaches every other guest exactly once', async (t) => {
    // Every guest sends N broadcasts (sequence numbers of its own) at the
    // same time; each guest counts what it receives: exactly the others'
    // 3 x N, every one once, none of its own back.
    const N = 10;
    const guests = lab.guests;
    const counters = guests.map((g) => ({ g, c: countFrames(lab.lab, g.ns, g.dev, TEST_ETHERTYPE, N * (guests.length - 1), 8, 1.0) }));
    await Promise.all(counters.map((x) => x.c.ready));
    await Promise.all(guests.map((from, i) => sendFrames(from.ns, from.dev, Array.from({ length: N }, (_, k) => marker(from.mac, TEST_ETHERTYPE, 1000 * (i + 1) + k)), { gap: 0.002 })));
    const results: string[] = [];
    for (const { g, c } of counters) {
      const r = await c.result;
      results.push(`${g.ip}: ${r.count} (${r.distinct} distinct, max copies ${r.maxDup})`);
      const want = N * (guests.length - 1);
      assert.equal(r.count, want, `${g.ip}: ${want} broadcasts from the others, ${r.count} received (${r.distinct} distinct, most copies of one ${r.maxDup})\n${await dump(lab)}`);
      assert.equal(r.distinct, want, 'each of the others\' broadcasts, none of its own');
      assert.equal(r.maxDup, 1, 'no duplicate');
    }
    t.diagnostic(`broadcasts received (${N} sent by each of ${guests.length} guests at once): ${results.join(', ')}`);
  });

  test('MAC move: host 1\'s guest MAC reappears behind host 2; every FDB converges (time reported)', async (t) => {
    const [h1, h2] = lab.hosts;
    const mac = h1.guest.mac;
    // The VM leaves host 1 (its NIC goes away) and arrives on host 2.
    run('ip', ['-n', h1.guest.ns, 'link', 'set', h1.guest.dev, 'down']);
    run('ip', ['-n', mover.ns, 'link', 'set', mover.dev, 'up']);
    const target = (h: Host): string => (h === h2 ? `local:m${h2.n}` : h2.vtep);
    const watching = watch(lab, lab.all, async (h) => (await lab.where(h)).get(mac) === target(h), 30_000);
    // The first frame on the new host (a broadcast, as a VM's gratuitous ARP).
    const sent = await sendFromMacs(mover.ns, mover.dev, mac.split(':').slice(0, 5).join(':'), parseInt(mac.split(':')[5], 16), 1);
    const times = await watching;
    const late = lab.all.filter((h) => times.get(h) === undefined);
    assert.deepEqual(late.map((h) => name(lab, h)), [], `FDBs did not converge on the new location within 30 s:\n${await dump(lab, late)}`);
    const last = Math.max(...lab.all.map((h) => times.get(h)!));
    const per = lab.all.map((h) => `${name(lab, h)} ${Math.max(0, times.get(h)! - sent.t0).toFixed(0)} ms`);
    t.diagnostic(`MAC move convergence: ${(last - sent.t0).toFixed(0)} ms from the first frame on host 2 to the last FDB update (${per.join(', ')}; goal < 1000 ms; polled every ~5 ms)`);
    // Traffic follows the MAC: the moved guest reaches host 3's and FRR's.
    for (const g of [lab.hosts[2].guest, frr.guest]) {
      const r = await ping(lab.lab, mover, g.ip, 2);
      assert.ok(r.received >= 1, `moved guest -> ${g.ip}:\n${r.out}`);
    }
  });

  test('host death: kill -9 of a host\'s vpcd and gobgpd; the others drop its MACs and VTEP (time reported); a host cut off goes after the hold time', async (t) => {
    const dead = lab.hosts[2];
    const rest = lab.all.filter((h) => h !== dead);
    const gone = async (h: Host, victim: Host): Promise<boolean> => {
      const w = await lab.where(h);
      if ([...w.values()].includes(victim.vtep)) return false;
      if (h === frr) return !(w.get('flood') ?? '').split(',').includes(victim.vtep);
      const st = await lab.stats(h as SwitchHost);
      return st.peers[victim.vtep] === undefined;
    };
    const pids = lab.gobgpdPids(dead);
    assert.equal(pids.length, 1, `one gobgpd on host ${dead.n}`);
    const t0 = Date.now();
    dead.vpcd!.proc.kill('SIGKILL');
    lab.killGobgpd(dead);
    await dead.vpcd!.exited;
    dead.vpcd = undefined;
    const times = await watch(lab, rest, (h) => gone(h, dead), lab.holdTime * 1000 + 20_000, 50);
    const late = rest.filter((h) => times.get(h) === undefined);
    assert.deepEqual(late.map((h) => name(lab, h)), [], `host ${dead.n}'s entries still there:\n${await dump(lab, late)}`);
    t.diagnostic(`kill -9: host ${dead.n}'s MACs and VTEP dropped by ${rest.map((h) => `${name(lab, h)} after ${times.get(h)! - t0} ms`).join(', ')} (hold time ${lab.holdTime} s; the kernel closes the dead speaker's TCP sessions, so the peers see it at once)`);
    // The survivors still reach each other.
    const r = await ping(lab.lab, lab.hosts[1].guest, frr.guest.ip, 2);
    assert.ok(r.received >= 1, r.out);

    // Host 2 is cut off the underlay: no reset, no FIN; its peers notice
    // when the hold time runs out.
    const cut = lab.hosts[1];
    const rest2 = rest.filter((h) => h !== cut);
    const t1 = Date.now();
    run('ip', ['-n', lab.underlay, 'link', 'set', `uh${cut.n}`, 'down']);
    const times2 = await watch(lab, rest2, (h) => gone(h, cut), lab.holdTime * 1000 + 20_000, 100);
    const late2 = rest2.filter((h) => times2.get(h) === undefined);
    assert.deepEqual(late2.map((h) => name(lab, h)), [], `host ${cut.n}'s entries still there after the hold time:\n${await dump(lab, late2)}`);
    t.diagnostic(`cut off: host ${cut.n}'s MACs and VTEP dropped by ${rest2.map((h) => `${name(lab, h)} after ${times2.get(h)! - t1} ms`).join(', ')} (hold time ${lab.holdTime} s)`);
  });

  test('a host comes back (vpcd started again after kill -9) with 1,000 MACs learned before its sessions are up: they reach every live host', async (t) => {
    const back = lab.hosts[2];
    const live = [lab.hosts[0], frr]; // host 2 is still cut off
    const prefix = '02:5c:03:00';
    const t0 = Date.now();
    await lab.startVpcd(back);
    // Frames right away: the switch learns while BGP is still connecting,
    // so the routes meet sessions that are coming up.
    const sent = await sendFromMacs(back.guest.ns, back.guest.dev, prefix, 0, 1000);
    const times = await watch(lab, live, async (h) => {
      const w = await lab.where(h);
      if (h === frr && !(w.get('flood') ?? '').split(',').includes(back.vtep)) return false;
      return (await countBehind(lab, h, back.vtep, prefix)) === 1000;
    }, 60_000, 100);
    const late = live.filter((h) => times.get(h) === undefined);
    const counts = await Promise.all(live.map(async (h) => `${name(lab, h)} ${await countBehind(lab, h, back.vtep, prefix)}`));
    assert.deepEqual(late.map((h) => name(lab, h)), [], `host ${back.n}'s 1,000 MACs not on every live host within 60 s: ${counts.join(', ')}\n${await dump(lab, [lab.hosts[0], back])}`);
    t.diagnostic(`host ${back.n} back: vpcd ready ${sent.t0 - t0 > 0 ? (sent.t0 - t0).toFixed(0) : '?'} ms after the start; its 1,000 MACs on ${live.map((h) => `${name(lab, h)} after ${(times.get(h)! - sent.t0).toFixed(0)} ms`).join(', ')} (from the first frame)`);
  });
});

// Scale on a lab of its own: what a slow install leaves behind does not
// touch the tests above.
describe('BGP EVPN at scale: three switch hosts and FRR', { skip: reason }, () => {
  let lab: EvpnLab;

  before(async () => {
    lab = await startLab();
  });

  after(async () => {
    await lab?.cleanup();
  });

  test('scale: 1,000 MACs on one host are installed on every other host (time reported)', async (t) => {
    const src = lab.hosts[2];
    const prefix = '02:5c:01:00';
    const others = lab.all.filter((h) => h !== src);
    const base = await sizes(lab, lab.all);
    // Where the time goes: the switch learns, vpcd advertises to its gobgpd,
    // BGP carries the routes to the other gobgpd, their vpcd install them.
    const switchHosts = lab.hosts;
    const rib0 = new Map(await Promise.all(switchHosts.map(async (h) => [h, await lab.ribSize(h)] as [Host, number])));
    const learning = installed(lab, [src], base, 1000, 60_000, 10);
    const ribs = watch(lab, switchHosts, async (h) => (await lab.ribSize(h as SwitchHost)) >= rib0.get(h)! + 1000, 60_000, 50);
    // Each host's FDB dumped (1,000 entries) and checked entry by entry: the
    // FDB's size alone can reach base + 1,000 before these are all in.
    const watching = watch(lab, others, async (h) => (await countBehind(lab, h, src.vtep, prefix)) === 1000, 60_000, 50);
    const sent = await sendFromMacs(src.guest.ns, src.guest.dev, prefix, 0, 1000);
    const [learnt, times, ribTimes] = await Promise.all([learning, watching, ribs]);
    t.diagnostic(`1,000 MACs, each gobgpd's RIB holding them: ${since(lab, sent.t0, ribTimes, switchHosts)} after the first frame (polled every ~50 ms)`);
    const counts = await Promise.all(others.map(async (h) => `${name(lab, h)} ${await countBehind(lab, h, src.vtep, prefix)}`));
    const late = others.filter((h) => times.get(h) === undefined);
    const status = await Promise.all(switchHosts.map(async (h) => `host ${h.n} RIB ${await lab.ribSize(h as SwitchHost)}, EVPN ${await lab.bgpStatus(h as SwitchHost)}`));
    assert.deepEqual(late.map((h) => name(lab, h)), [], `1,000 MACs not installed everywhere within 60 s: ${counts.join(', ')}\n${status.join('\n')}\n${lab.logs()}`);
    for (const h of others) {
      const w = await lab.where(h);
      const wrong = [...w].filter(([mac, where]) => mac.startsWith(prefix) && where !== src.vtep).slice(0, 5);
      assert.equal(await countBehind(lab, h, src.vtep, prefix), 1000, `${name(lab, h)}: the 1,000 MACs behind host ${src.n}'s VTEP; elsewhere: ${JSON.stringify(wrong)}`);
    }
    const last = Math.max(...others.map((h) => times.get(h)!));
    t.diagnostic(
      `1,000 MACs: sent in ${(sent.t1 - sent.t0).toFixed(0)} ms; learned: ${since(lab, sent.t0, learnt, [src])} after the first frame; ` +
        `installed on every other host ${(last - sent.t0).toFixed(0)} ms after the first frame (${since(lab, sent.t0, times, others)}; goal < 2000 ms; FDBs dumped every ~50 ms)`,
    );
  });

  // Known to fail here: the receiving gobgpd (3.10) takes more than a
  // minute for 10,000 type-2 routes, its MAC-mobility check scanning the
  // whole EVPN table for every path it receives (quadratic; measured in
  // docs/design/evpn.md). So the install is given 60 s, the figures are
  // reported, and the failure, if it comes, is a TODO of the suite that
  // names the count gobgpd itself had received, not a hidden one.
  const GOBGPD_QUADRATIC = 'gobgpd 3.10 handles type-2 routes in quadratic time: 10,000 take minutes to reach the receiving RIB (docs/design/evpn.md)';

  test('scale: 10,000 remote MACs install without stalling the engine (longest iteration reported)', { todo: GOBGPD_QUADRATIC }, async (t) => {
    // The 10,000 come from the FRR host's guest: its bridge learns them and
    // FRR advertises them. (From a switch host, gobgpd 3.10's own cost of
    // adding 10,000 type-2 paths, about a minute, would dominate: see
    // docs/design/evpn.md.) The receiving gobgpd and vpcd are ours.
    const src = lab.frr!;
    const [rx] = lab.hosts; // the receiving host whose engine is watched
    const prefix = '02:5c:02';
    const N = 10_000;
    const base = await sizes(lab, [src, rx]);
    assert.equal(typeof (await lab.stats(rx)).engine.iteration_max_ns, 'number', 'the engine publishes iteration_max_ns');
    // Sample the gauge (refreshed every 100 ms) more often than it changes:
    // 3 s before the install (the noise floor: the engine thread also waits
    // for a CPU on a busy machine, and the gauge is wall time), then during
    // it, with a ping running between two guests meanwhile.
    let sampling = true;
    let longest = 0;
    let samples = 0;
    const sampler = (async () => {
      while (sampling) {
        const st = await lab.stats(rx).catch(() => undefined);
        if (st) {
          longest = Math.max(longest, st.engine.iteration_max_ns ?? 0);
          samples++;
        }
        await sleep(40);
      }
    })();
    await sleep(3000);
    const idleLongest = longest;
    const idleSamples = samples;
    longest = 0;
    samples = 0;
    const pinger = lab.lab.nsAsync(rx.guest.ns, 'ping', ['-c', '100', '-i', '0.05', '-W', '5', '-n', lab.hosts[1].guest.ip], 60_000);
    const learning = installed(lab, [src], base, N, 60_000, 200); // a dump of the kernel FDB
    const watching = installed(lab, [rx], base, N, 60_000, 50);
    // The guest's veth and the port's ring drop what the engine cannot take
    // at once on a busy machine: the frames go in paced rounds, a round
    // more (the same MACs: a refresh for those already learned) while the
    // switch has not learned them all, at most 4.
    const sent = await sendFromMacs(src.guest.ns, src.guest.dev, prefix, 0, N, { every: 100, pause: 0.003 });
    let rounds = 1;
    for (; rounds < 4 && (await lab.fdbSize(src)) < base.get(src)! + N; rounds++) {
      await sleep(1000);
      if ((await lab.fdbSize(src)) >= base.get(src)! + N) break;
      await sendFromMacs(src.guest.ns, src.guest.dev, prefix, 0, N, { every: 100, pause: 0.003 });
    }
    const [learnt, times] = await Promise.all([learning, watching]);
    // Two more gauge periods after the last install.
    await sleep(300);
    sampling = false;
    await sampler;
    const pr = await pinger;
    const m = /(\d+) packets transmitted, (\d+) received/.exec(pr.out);
    const st = await lab.stats(rx);
    const grown = (await Promise.all([src, rx].map(async (h) => `${name(lab, h)} +${(await lab.fdbSize(h)) - base.get(h)!}`))).join(', ');
    const status = `learned on the FRR host: ${since(lab, sent.t0, learnt, [src])}; installed on host ${rx.n}: ${since(lab, sent.t0, times, [rx])}; FDB growth ${grown}; ` +
      `longest engine iteration on host ${rx.n} meanwhile ${(longest / 1e6).toFixed(2)} ms (iteration_max_ns, ${samples} samples; ${(idleLongest / 1e6).toFixed(2)} ms over the 3 s before, ${idleSamples} samples); ` +
      `ping host ${rx.n} -> host 2 meanwhile: ${m?.[2] ?? '?'}/${m?.[1] ?? '?'} replies; engine events dropped on host ${rx.n}: ${st.engine.events_dropped}`;
    t.diagnostic(`10,000 remote MACs: sent in ${(sent.t1 - sent.t0).toFixed(0)} ms (${rounds} round(s)); ${status}`);
    const rib = await lab.ribSize(rx).catch(() => -1);
    t.diagnostic(`host ${rx.n}'s gobgpd holds ${rib} EVPN destinations; its vpcd: ${await lab.bgpStatus(rx)}`);
    assert.ok(times.get(rx) !== undefined, `10,000 MACs not installed on host ${rx.n} within 60 s (${status}); host ${rx.n}'s gobgpd itself holds ${rib} EVPN destinations\n${lab.logs()}`);
    assert.equal(await countBehind(lab, rx, src.vtep, prefix), N, `host ${rx.n}: the 10,000 MACs behind the FRR host's VTEP`);
    assert.ok(m !== null && Number(m[2]) > 0, `guests kept talking during the install (exit ${pr.code}):\n${pr.out}`);
  });
});
