// npm run bench -- e2e vhost: switching between two vhost-user ports.
//
// ONE testpmd process owns both virtio-user ports (the two "VMs") and runs a
// closed loop through the switch under test: it starts with bursts sent on
// both ports (start tx_first), then forwards whatever arrives on one port
// out of the other, and the switch forwards port 1 <-> port 2. Only two busy
// pollers run on the 2-core machine: testpmd on one CPU, the switch's engine
// (or OVS's PMD thread, or testpmd's vhost backend) on the other; a third
// one collapses throughput (issue 13's notes).
//
// testpmd forwards in `mac` mode: each port sends with its own MAC as the
// source and the other port's MAC as the destination, so a learning switch
// sees each MAC on one port only. (In `io` mode a frame would come back into
// the switch on the other port with the same source MAC: every frame a MAC
// move, a pathological case for any learning switch, OVS NORMAL included.)
//
// Rows, each measured in the same run:
//   ours        this switch, two vhostuser ports (server mode), learning on
//   ovs-normal  Open vSwitch with DPDK, dpdkvhostuserclient ports, NORMAL
//   ovs-flow    the same with explicit in_port -> output flows
//   ceiling     testpmd's own vhost backend (net_vhost) forwarding between
//               its two ports (io): the same loop with no switch at all
// and cases: 64- and 1518-byte frames, one flow and many flows (testpmd's
// --txonly-multi-flow: the tx_first bursts vary the IPv4 source address, so
// a flow cache keyed on L3 sees many flows).
//
// Mpps = frames the switch delivered per second, both directions together
// (the sum of testpmd's RX-packets on its two ports over the measured
// interval). Each case runs --rounds times with a fresh testpmd; the report
// gives min, median and max.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Ovs, ovsMissing } from './ovs';
import { Missing, type Placement, SwitchHost, cpuText, enginePlacement, pmdCpu } from './systems';
import { Testpmd, testpmdMissing } from './testpmd';
import { Topo, median, sameRun, sleep, trySh } from './topo';

export const OVS_DPDK = '/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk';
const MAC = ['02:00:00:00:0a:01', '02:00:00:00:0a:02'];

export interface VhostOptions {
  seconds: number; // measured interval per round
  rounds: number;
  only?: Set<string>;
  placement: Placement;
  log(s: string): void;
}

export interface VhostCaseResult {
  size: number; // frame size with FCS (testpmd packet length + 4)
  flows: 'one' | 'many';
  mpps: number[]; // one per round
  min?: number;
  median?: number;
  max?: number;
  errors?: string[];
}

export interface VhostSystemResult {
  id: string;
  label: string;
  family: 'ours' | 'ovs' | 'ceiling';
  used?: string;
  missing?: string;
  cases: VhostCaseResult[];
  counters?: Record<string, unknown>; // the switch's own view after the last round (ports, drops)
  from?: string; // kept from the run that started then (a partial run, `mergeRuns`)
}

export interface VhostReport {
  benchmark: 'e2e-vhost';
  started: string;
  seconds: number;
  machine: Record<string, unknown>;
  method: Record<string, unknown>;
  note?: string;
  systems: VhostSystemResult[];
  ratios: Array<{ size: number; flows: string; vsOvsNormal?: number; vsOvsFlow?: number; vsCeiling?: number }>;
  goals: Array<{ goal: string; measured?: number; met?: boolean; why?: string }>;
  partial?: string;
}

export const CASES: Array<{ size: number; flows: 'one' | 'many' }> = [
  { size: 64, flows: 'one' },
  { size: 64, flows: 'many' },
  { size: 1518, flows: 'one' },
  { size: 1518, flows: 'many' },
];

// What a system under test gives the frontend: the two sockets, and whether
// testpmd's virtio-user must own them (server=1; the switch connects).
interface Backend {
  used: string;
  sockets: [string, string];
  frontendServer: boolean;
  stats?: () => Promise<Record<string, unknown>>;
  extra?: () => string; // appended to `used` after the runs (OVS's own counters)
}

interface VhostSystemDef {
  id: string;
  label: string;
  family: VhostSystemResult['family'];
  setup(t: Topo, ns: string, dir: string, p: Placement): Promise<Backend>;
}

function eal(t: Topo, tag: string, cpu: number, memMiB: number): string[] {
  // Two lcores on one CPU: the main lcore (the command line, idle) and the
  // forwarding one.
  return ['--no-huge', '-m', String(memMiB), '--no-pci', `--file-prefix=vtx${t.id}${tag}`, `--lcores=0@${cpu},1@${cpu}`, '--log-level=lib.eal:error'];
}

const ours: VhostSystemDef = {
  id: 'ours',
  label: 'this switch (vhostuser ports, learning on)',
  family: 'ours',
  async setup(t, ns, dir, p) {
    const sockets: [string, string] = [path.join(dir, 'v1.sock'), path.join(dir, 'v2.sock')];
    const h = await SwitchHost.start(t, ns, {
      cpu: p.switchCpu,
      busyPoll: p.busyPoll,
      idleSpinUs: p.idleSpinUs,
      switches: [{ name: 'bench', vni: 100 }],
      ports: [
        { name: 'v1', type: 'vhostuser', socket: sockets[0], mode: 'server', switch: 'bench' },
        { name: 'v2', type: 'vhostuser', socket: sockets[1], mode: 'server', switch: 'bench' },
      ] as never,
    });
    return {
      used: `this switch: ${enginePlacement(p)}, busyPoll ${p.busyPoll}; two vhostuser ports in server mode (the switch owns the sockets), MAC learning on`,
      sockets,
      frontendServer: false,
      stats: () => h.stats(),
    };
  },
};

function ovsDpdk(mode: 'normal' | 'flow'): VhostSystemDef {
  return {
    id: mode === 'normal' ? 'ovs-normal' : 'ovs-flow',
    label: mode === 'normal' ? 'OVS-DPDK (NORMAL action)' : 'OVS-DPDK (in_port -> output flows)',
    family: 'ovs',
    async setup(t, ns, dir, p) {
      const why = ovsMissing() ?? (fs.existsSync(OVS_DPDK) ? undefined : `${OVS_DPDK} not found (Debian: apt-get install openvswitch-switch-dpdk)`);
      if (why) throw new Missing(why);
      const sockets: [string, string] = [path.join(dir, 'o1.sock'), path.join(dir, 'o2.sock')];
      const runtime = t.tempDir('ovsrt');
      // EAL without hugepages (issue 13's notes): --legacy-mem because OVS
      // adds --in-memory; -m 2048, since with 1024 the port's mempool fails
      // and the port never forwards (only the log says so).
      const extra = `--no-huge --legacy-mem -m 2048 --no-pci --file-prefix=vtx${t.id}ovs`;
      const o = await Ovs.start(t, ns, 'dpdk', `0x${(1 << pmdCpu(p)).toString(16)}`, { 'dpdk-init': 'true', 'dpdk-extra': extra }, { binary: OVS_DPDK, env: { RUNTIME_DIRECTORY: runtime } });
      await waitUntil(() => o.vsctl(['get', 'Open_vSwitch', '.', 'dpdk_initialized']).trim() === 'true', 60_000, () => `OVS-DPDK did not initialize DPDK: ${o.log()}`);
      o.vsctl(['add-br', 'br0', '--', 'set', 'bridge', 'br0', 'datapath_type=netdev']);
      for (const [i, sock] of sockets.entries()) {
        o.vsctl(['add-port', 'br0', `v${i + 1}`, '--', 'set', 'Interface', `v${i + 1}`, 'type=dpdkvhostuserclient', `options:vhost-server-path=${sock}`, `ofport_request=${i + 1}`]);
      }
      if (mode === 'flow') {
        o.ofctl(['del-flows', 'br0']);
        o.ofctl(['add-flow', 'br0', 'in_port=1,actions=output:2']);
        o.ofctl(['add-flow', 'br0', 'in_port=2,actions=output:1']);
      }
      for (const dev of ['v1', 'v2']) {
        const st = o.ifaceState(dev);
        if (st.error) throw new Missing(`OVS port ${dev} failed: ${st.error} (log: ${o.log()})`);
      }
      const errs = (): string[] => o.logLines().filter((l) => /\|ERR\|/.test(l)).map((l) => l.replace(/^.*?\|ERR\|/, ''));
      return {
        used: `${trySh(OVS_DPDK, ['--version']).out.split('\n')[0]?.trim() ?? 'ovs-vswitchd-dpdk'}, datapath_type=netdev, PMD mask 0x${(1 << pmdCpu(p)).toString(16)}, dpdk-extra "${extra}", dpdkvhostuserclient ports (testpmd owns the sockets, server=1), ${mode === 'normal' ? 'NORMAL action' : 'flows in_port=1 -> 2 and 2 -> 1'}`,
        sockets,
        frontendServer: true,
        extra: () => {
          const ports = trySh('ovs-ofctl', ['dump-ports', 'br0'], 5000, o.env).out.replace(/\s+/g, ' ').trim();
          const e = errs();
          return `; ovs-ofctl dump-ports at the end: ${ports.slice(0, 600)}${e.length ? `; OVS log errors: ${e.slice(0, 3).join(' / ')}` : ''}`;
        },
      };
    },
  };
}

const ceiling: VhostSystemDef = {
  id: 'ceiling',
  label: 'ceiling: testpmd vhost backend (no switch)',
  family: 'ceiling',
  async setup(t, ns, dir, p) {
    const sockets: [string, string] = [path.join(dir, 'c1.sock'), path.join(dir, 'c2.sock')];
    const b = Testpmd.start(
      t,
      ns,
      'testpmd vhost backend',
      [...eal(t, 'vb', pmdCpu(p), 1024), '--vdev', `net_vhost0,iface=${sockets[0]},queues=1`, '--vdev', `net_vhost1,iface=${sockets[1]},queues=1`],
      ['--forward-mode=io', '--auto-start', '--burst=128', '--rxd=1024', '--txd=1024', '--total-num-mbufs=32768', '--no-lsc-interrupt'],
      t.tempDir('vbrt'),
    );
    await waitUntil(() => sockets.every((s) => fs.existsSync(s)), 60_000, () => `the testpmd vhost backend did not create its sockets: ${b.log()}`);
    return {
      used: `dpdk-testpmd with two net_vhost ports (DPDK's vhost library, server mode), io forwarding between them on CPU ${pmdCpu(p)}: the same loop with no switch`,
      sockets,
      frontendServer: false,
    };
  },
};

export const VHOST_SYSTEMS: VhostSystemDef[] = [ours, ovsDpdk('normal'), ovsDpdk('flow'), ceiling];

async function waitUntil(ok: () => boolean, timeoutMs: number, why: () => string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    let good = false;
    try {
      good = ok();
    } catch {
      good = false;
    }
    if (good) return;
    if (Date.now() > end) throw new Error(why());
    await sleep(200);
  }
}

// One round: a fresh testpmd frontend with two virtio-user ports, the
// closed loop started with tx_first, Mpps over `seconds` after a 1 s warm-up.
async function round(t: Topo, ns: string, be: Backend, c: { size: number; flows: 'one' | 'many' }, o: VhostOptions, n: number): Promise<number> {
  const vdev = (i: number): string => `net_virtio_user${i},path=${be.sockets[i]},queue_size=1024,mac=${MAC[i]}${be.frontendServer ? ',server=1' : ''}`;
  const f = Testpmd.start(
    t,
    ns,
    'testpmd frontend',
    [...eal(t, `f${n}`, o.placement.genCpu, 1024), '--vdev', vdev(0), '--vdev', vdev(1)],
    ['-i', '--forward-mode=mac', `--eth-peer=0,${MAC[1]}`, `--eth-peer=1,${MAC[0]}`, '--burst=128', '--rxd=1024', '--txd=1024', '--total-num-mbufs=32768', `--txpkts=${c.size - 4}`, ...(c.flows === 'many' ? ['--txonly-multi-flow'] : [])],
    t.tempDir(`fr${n}`),
  );
  try {
    try {
      await f.waitFor(/testpmd> /, 60_000);
    } catch (err) {
      throw new Error(`${err instanceof Error ? err.message : String(err)}${await stallReport(f, be, ns)}`);
    }
    // Both links up (a backend that connects to testpmd's sockets takes a
    // moment) before the first burst, or the burst is lost.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const info = await f.cmd('show port summary all');
      const up = (info.match(/\bup\b/gi) ?? []).length;
      if (up >= 2) break;
      if (Date.now() > deadline) throw new Error(`the virtio-user ports did not come up: ${info.replace(/\s+/g, ' ')}`);
      await sleep(300);
    }
    await f.cmd('start tx_first 4');
    await sleep(1000);
    const a = await f.portStats();
    const t0 = process.hrtime.bigint();
    await sleep(o.seconds * 1000);
    const b = await f.portStats();
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    const rx = b.reduce((s, p) => s + p.rxPackets, 0) - a.reduce((s, p) => s + p.rxPackets, 0);
    if (rx <= 0) throw new Error(`nothing came back through the loop (RX-packets ${JSON.stringify(b)})`);
    return rx / dt / 1e6;
  } finally {
    await f.quit();
  }
}

// What a frontend that never showed its prompt is waiting for: each of its
// threads' name, kernel wait channel and system call (number, first argument:
// for recvfrom/recvmsg/poll the fd), what those fds are, both ends of the
// vhost-user connections with their queues (ss: a request unread on the
// backend's side, or a reply unread on the frontend's), and the backend's
// own view of them (when it is this switch).
async function stallReport(f: Testpmd, be: Backend, ns: string): Promise<string> {
  const pid = f.child.pid;
  const threads: string[] = [];
  const rd = (p: string): string => {
    try {
      return fs.readFileSync(p, 'utf8').trim();
    } catch {
      return '?';
    }
  };
  if (pid) {
    let tids: string[] = [];
    try {
      tids = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      // gone
    }
    for (const tid of tids) {
      const dir = `/proc/${pid}/task/${tid}`;
      const sc = rd(`${dir}/syscall`).split(' ');
      const fd = sc.length > 1 ? Number.parseInt(sc[1]!, 16) : NaN;
      let what = '';
      if (Number.isFinite(fd) && fd >= 0 && fd < 65536) {
        try {
          what = ` -> fd ${fd} ${fs.readlinkSync(`/proc/${pid}/fd/${fd}`)}`;
        } catch {
          // not an fd
        }
      }
      threads.push(`${rd(`${dir}/comm`)} ${rd(`${dir}/wchan`)} syscall ${sc[0]}${what}`);
    }
  }
  const dir = path.dirname(be.sockets[0]);
  const socks = trySh('ip', ['netns', 'exec', ns, 'ss', '-xpn'], 5000)
    .out.split('\n')
    .filter((l) => l.includes(dir) || (pid !== undefined && l.includes(`pid=${pid},`)))
    .map((l) => l.replace(/\s+/g, ' ').trim());
  let backend = '';
  if (be.stats) {
    try {
      const st = (await be.stats()) as { ports?: Record<string, { vhost?: Record<string, unknown>; lastError?: string }> };
      backend = Object.entries(st.ports ?? {})
        .map(([name, p]) => {
          const v = p.vhost ?? {};
          return `${name}: connected ${String(v.connected)} connects ${String(v.connects)} disconnects ${String(v.disconnects)} messages ${String(v.messages)} refused ${String(v.refused)} status ${String(v.deviceStatus)} lastError ${JSON.stringify(p.lastError ?? '')}`;
        })
        .join('; ');
    } catch (err) {
      backend = `stats failed: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  return ` [stalled frontend: threads ${threads.join(' | ') || 'unknown'}; sockets ${socks.join(' | ') || 'none'}${backend ? `; backend ${backend}` : ''}]`;
}

function stats(v: number[]): { min: number; median: number; max: number } {
  return { min: Math.min(...v), median: median(v), max: Math.max(...v) };
}

export function vhostMissing(): string | undefined {
  return testpmdMissing();
}

export async function runVhost(o: VhostOptions): Promise<{ systems: VhostSystemResult[]; ratios: VhostReport['ratios']; goals: VhostReport['goals']; method: Record<string, unknown> }> {
  const systems: VhostSystemResult[] = [];
  for (const def of VHOST_SYSTEMS.filter((d) => !o.only || o.only.has(d.id))) {
    const res: VhostSystemResult = { id: def.id, label: def.label, family: def.family, cases: [] };
    systems.push(res);
    const t = new Topo();
    const t0 = Date.now();
    try {
      const ns = t.netns('v');
      const dir = t.tempDir('vsock');
      let be: Backend;
      try {
        be = await def.setup(t, ns, dir, o.placement);
      } catch (err) {
        res.missing = err instanceof Missing ? err.message : `could not be set up: ${err instanceof Error ? err.message : String(err)}`;
        o.log(`  ${def.id}: MISSING: ${res.missing}`);
        continue;
      }
      res.used = be.used;
      let n = 0;
      for (const c of CASES) {
        const cr: VhostCaseResult = { size: c.size, flows: c.flows, mpps: [] };
        res.cases.push(cr);
        for (let r = 0; r < o.rounds; r++) {
          try {
            cr.mpps.push(await round(t, ns, be, c, o, n++));
          } catch (err) {
            (cr.errors ??= []).push(err instanceof Error ? err.message.slice(0, 4000) : String(err));
          }
        }
        if (cr.mpps.length) Object.assign(cr, stats(cr.mpps));
        o.log(`  ${def.id} ${c.size} B, ${c.flows} flow${c.flows === 'one' ? '' : 's'}: ${cr.mpps.length ? `${cr.median!.toFixed(2)} Mpps median (${cr.mpps.map((v) => v.toFixed(2)).join(', ')})` : 'FAILED'}${cr.errors ? `; errors: ${cr.errors[0]}` : ''}`);
      }
      if (be.stats) res.counters = await be.stats().catch((e: Error) => ({ error: e.message }));
      if (be.extra) res.used += be.extra();
      o.log(`  ${def.id}: done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    } finally {
      t.cleanup();
    }
  }
  const { ratios, goals } = vhostCompare(systems);
  const method = {
    seconds: o.seconds,
    rounds: o.rounds,
    warmupSeconds: 1,
    placement: { testpmdCpu: o.placement.genCpu, switchCpu: o.placement.switchCpu, busyPoll: o.placement.busyPoll },
    loop: 'one dpdk-testpmd, two virtio-user ports (queue_size=1024), --forward-mode=mac, --burst=128 --rxd=1024 --txd=1024, start tx_first 4, no hugepages',
    mpps: 'frames delivered by the switch per second, both directions summed (testpmd RX-packets on both ports)',
    manyFlows: 'testpmd --txonly-multi-flow (the tx_first bursts vary the IPv4 source address)',
  };
  return { systems, ratios, goals, method };
}

// Ratios of this switch's medians to the other rows', per case, and the
// issue's goals (every case must meet them; the worst case is shown).
export function vhostCompare(systems: VhostSystemResult[]): { ratios: VhostReport['ratios']; goals: VhostReport['goals'] } {
  const ours = systems.find((s) => s.id === 'ours');
  // A row kept from another run (a partial run) is not compared with ours.
  const med = (id: string, c: { size: number; flows: string }): number | undefined => {
    const s = systems.find((y) => y.id === id);
    return s && ours && sameRun(s, ours) ? s.cases.find((x) => x.size === c.size && x.flows === c.flows)?.median : undefined;
  };
  const ratios = CASES.map((c) => {
    const m = med('ours', c);
    const r = (id: string): number | undefined => {
      const v = med(id, c);
      return m !== undefined && v ? m / v : undefined;
    };
    return { size: c.size, flows: c.flows, vsOvsNormal: r('ovs-normal'), vsOvsFlow: r('ovs-flow'), vsCeiling: r('ceiling') };
  });
  const goal = (name: string, key: 'vsOvsNormal' | 'vsCeiling', want: number): VhostReport['goals'][number] => {
    const vals = ratios.map((r) => r[key]).filter((v): v is number => v !== undefined);
    if (vals.length < ratios.length) return { goal: name, why: 'not every case was measured for both rows in one run' };
    const worst = Math.min(...vals);
    return { goal: name, measured: worst, met: worst >= want };
  };
  const goals = [goal('this switch >= 1.5x OVS-DPDK NORMAL (median, every case; the worst case shown)', 'vsOvsNormal', 1.5), goal('this switch >= 0.8x the testpmd ceiling (median, every case; the worst case shown)', 'vsCeiling', 0.8)];
  return { ratios, goals };
}

// ------------------------------------------------------------------ report

const f2 = (v: number | undefined): string => (v === undefined ? '-' : v.toFixed(2));

export function renderVhostMarkdown(r: VhostReport): string {
  const m = r.machine;
  const out: string[] = [
    '# End-to-end vhost-user benchmark (npm run bench -- e2e vhost)',
    '',
    `Run ${r.started} on ${String(m.cpus)}x ${String(m.cpu)}, ${String(m.kernel)}, ${String(m.distro)}, commit ${String(m.commit)}; load average at start ${JSON.stringify(m.loadAverage)}, at end ${JSON.stringify(m.loadAverageAtEnd)}.` +
      (r.partial ? ` Partial run: ${r.partial}.` : ''),
    ...(r.note ? ['', `**Note:** ${r.note}`] : []),
    '',
    `One dpdk-testpmd owns both virtio-user ports and runs a closed loop through the switch (mac forwarding, tx_first); testpmd on CPU ${String((r.method.placement as { testpmdCpu: number }).testpmdCpu)}, the switch ${cpuText((r.method.placement as { switchCpu: number }).switchCpu)}. ` +
      `Mpps: frames the switch delivered per second, both directions summed; ${String(r.method.rounds)} rounds of ${String(r.method.seconds)} s per case, each with a fresh testpmd: min / median / max. See docs/benchmarks.md.`,
    '',
    '| system | 64 B, one flow | 64 B, many flows | 1518 B, one flow | 1518 B, many flows |',
    '|---|---:|---:|---:|---:|',
  ];
  for (const s of r.systems) {
    if (s.missing) {
      out.push(`| ${s.label} | missing: ${s.missing.replace(/\|/g, '\\|')} | | | |`);
      continue;
    }
    const cells = CASES.map((c) => {
      const x = s.cases.find((y) => y.size === c.size && y.flows === c.flows);
      if (!x || x.median === undefined) return `failed${x?.errors ? `: ${x.errors[0]!.slice(0, 80).replace(/\|/g, '\\|')}` : ''}`;
      return `**${f2(x.median)}** (${f2(x.min)}–${f2(x.max)})`;
    });
    out.push(`| ${s.label}${s.from ? ` (run of ${s.from})` : ''} | ${cells.join(' | ')} |`);
  }
  out.push('', '| this switch ÷ | 64 B, one flow | 64 B, many flows | 1518 B, one flow | 1518 B, many flows |', '|---|---:|---:|---:|---:|');
  for (const [key, label] of [['vsOvsNormal', 'OVS-DPDK NORMAL'], ['vsOvsFlow', 'OVS-DPDK in_port -> output'], ['vsCeiling', 'testpmd ceiling']] as const) {
    out.push(`| ${label} | ${r.ratios.map((x) => (x[key] === undefined ? '-' : `${f2(x[key])}x`)).join(' | ')} |`);
  }
  out.push('', '### Goals (issue 13)', '', '| goal | measured | |', '|---|---:|---|');
  for (const g of r.goals) out.push(`| ${g.goal} | ${g.measured === undefined ? '-' : `${f2(g.measured)}x`} | ${g.met === undefined ? `not measured (${g.why})` : g.met ? 'met' : '**not met**'} |`);
  out.push('', '<details><summary>what ran</summary>', '', ...r.systems.filter((s) => s.used).map((s) => `- **${s.label}**: ${s.used}`), '', '</details>', '');
  return `${out.join('\n')}\n`;
}
