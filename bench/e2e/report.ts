// Markdown tables and an SVG chart for the end-to-end benchmark's results.
// The chart is plain SVG written here: no charting library.

import type { SuiteResult, SystemResult } from './main';
import { cpuText } from './systems';
import { median, sameRun } from './topo';
import { COLLAPSE, TCP_REFERENCE, type TcpGroup, type TcpReport } from './tcp';

const PATH_LABEL: Record<TcpGroup, string> = { local: 'local', vxlan: 'VXLAN', vxwire: 'VXLAN, wire-like underlay', vxnic: 'VXLAN, NIC-like underlay' };

interface Results {
  started: string;
  seconds: number;
  machine: Record<string, unknown>;
  method: { latencyRate: number; rounds: number; throughputSeconds: number; placement: { genCpu: number; switchCpu: number; busyPoll: boolean } };
  suites: SuiteResult[];
  partial?: string;
}

const f1 = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const mpps = (pps: number): string => (pps / 1e6).toFixed(3);
const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}x` : '-');

function find(s: SuiteResult, id: string): SystemResult | undefined {
  return s.systems.find((x) => x.id === id);
}

// A row kept from an earlier run (a partial run) says which.
function label(x: { label: string; from?: string }): string {
  return x.from ? `${x.label} (run of ${x.from})` : x.label;
}

function esc(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function suiteTable(s: SuiteResult, r: Results): string[] {
  const out: string[] = [];
  const withLatency = s.systems.some((x) => x.latency);
  out.push(`### ${s.title}`, '');
  const head = ['system', 'Mpps', 'Gbit/s', 'loss at max'];
  if (withLatency) head.push(`p50 us`, `p99 us`, `p99.9 us`, `loss at ${r.method.latencyRate / 1000}k`);
  const withIdle = s.systems.some((x) => x.idle_cpu_pct !== undefined);
  if (withIdle) head.push('idle CPU');
  head.push('this switch ÷ system (pps; p99: >1 is worse)');
  out.push(`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
  for (const x of s.systems) {
    if (!x.throughput) {
      out.push(`| ${label(x)} | missing: ${esc(x.missing ?? 'not run')} |${' |'.repeat(head.length - 2)}`);
      continue;
    }
    const t = x.throughput;
    const row = [label(x), mpps(t.rx_pps), t.gbps.toFixed(3), `${t.loss_pct.toFixed(1)}%`];
    if (withLatency) {
      const l = x.latency;
      row.push(l ? f1(l.latency_us.p50) : '-', l ? f1(l.latency_us.p99) : '-', l ? f1(l.latency_us.p999) : '-', l ? `${l.loss_pct.toFixed(2)}%` : '-');
    }
    if (withIdle) row.push(x.idle_cpu_pct !== undefined ? `${x.idle_cpu_pct.toFixed(2)}%` : '-');
    const oursId = s.peers[x.id];
    const o = oursId ? find(s, oursId) : undefined;
    if (o?.throughput && !sameRun(o, x)) row.push('- (not measured in one run)');
    else if (o?.throughput) {
      let cell = `${ratio(o.throughput.rx_pps, t.rx_pps)} (${o.id.replace(/^ours-/, '')})`;
      if (withLatency && o.latency && x.latency) cell += `, p99 ${ratio(o.latency.latency_us.p99, x.latency.latency_us.p99)}`;
      row.push(cell);
    } else row.push(x.family === 'ours' ? '—' : '-');
    out.push(`| ${row.map(esc).join(' | ')} |`);
  }
  out.push('');
  const used = s.systems.filter((x) => x.used).map((x) => `- **${x.label}**: ${x.used}`);
  const eng = s.systems.filter((x) => x.engine).map((x) => `- **${x.label}** engine during its best throughput run: ${x.engine!.busy_ns_per_packet.toFixed(0)} ns busy per frame, ${x.engine!.mean_batch.toFixed(1)} frames per receive batch, busy ${(100 * x.engine!.busy_fraction).toFixed(0)}% of the time, ${x.engine!.sleeps} sleeps`);
  if (used.length) out.push('<details><summary>what ran</summary>', '', ...used, ...eng, '', '</details>', '');
  return out;
}

function portsTable(s: SuiteResult): string[] {
  const out = [`### ${s.title}`, ''];
  const rates = ['100k', '200k', '300k', 'max'];
  out.push(`| backend | ${rates.map((r) => `offered ${r}: delivered (loss)`).join(' | ')} |`, `|---|${rates.map(() => '---:').join('|')}|`);
  for (const x of s.systems) {
    if (!x.steps) {
      out.push(`| ${x.label} | missing: ${esc(x.missing ?? 'not run')} |${' |'.repeat(rates.length - 1)}`);
      continue;
    }
    out.push(`| ${x.label} | ${x.steps.map((t) => `${(t.rx_pps / 1e3).toFixed(0)} kpps (${t.loss_pct.toFixed(2)}%)${t.rate ? '' : ` of ${(t.tx_pps / 1e3).toFixed(0)}k`}`).join(' | ')} |`);
  }
  out.push('');
  return out;
}

export function goals(r: Results): string[] {
  const out: string[] = [];
  const l2 = r.suites.find((s) => s.id === 'l2');
  const vx = r.suites.find((s) => s.id === 'vxlan');
  const check = (name: string, a: SystemResult | undefined, b: SystemResult | undefined, want: number, what: 'tp' | 'p99'): void => {
    if (!a?.throughput || !b?.throughput) {
      out.push(`| ${name} | - | not measured (${!a?.throughput ? a?.missing ?? 'missing' : b?.missing ?? 'missing'}) |`);
      return;
    }
    if (!sameRun(a, b)) {
      out.push(`| ${name} | - | not measured in one run (${a.label} ${a.from ? `from ${a.from}` : 'from this run'}, ${b.label} ${b.from ? `from ${b.from}` : 'from this run'}) |`);
      return;
    }
    if (what === 'tp') {
      const v = a.throughput.rx_pps / b.throughput.rx_pps;
      out.push(`| ${name} | ${v.toFixed(2)}x | ${v >= want ? 'met' : '**not met**'} |`);
    } else {
      if (!a.latency || !b.latency) {
        out.push(`| ${name} | - | not measured |`);
        return;
      }
      const v = a.latency.latency_us.p99 / b.latency.latency_us.p99;
      out.push(`| ${name} | ${f1(a.latency.latency_us.p99)} vs ${f1(b.latency.latency_us.p99)} us | ${v <= 1 ? 'met' : '**not met**'} |`);
    }
  };
  out.push('### Goals (issue 6, 64-byte frames)', '', '| goal | measured | |', '|---|---:|---|');
  if (l2) {
    // Our fastest backend: AF_XDP when it ran, else AF_PACKET.
    const o = find(l2, 'ours-afxdp')?.throughput ? find(l2, 'ours-afxdp') : find(l2, 'ours-afpacket');
    check('this switch >= 2x OVS userspace AF_XDP', o, find(l2, 'ovs-afxdp'), 2, 'tp');
    check('this switch >= 3x Linux bridge', o, find(l2, 'bridge'), 3, 'tp');
    check('this switch >= 80% of the wire', o, find(l2, 'wire'), 0.8, 'tp');
    // Latency: every backend of this switch, each against the bridge of its
    // own kind (veth or tap), not only the fastest.
    for (const [id, kind, ref] of [['ours-afpacket', 'AF_PACKET', 'bridge'], ['ours-afxdp', 'AF_XDP', 'bridge'], ['ours-tap', 'tap', 'bridge-tap']] as const) {
      if (find(l2, id)) check(`p99 no worse than the Linux bridge at ${r.method.latencyRate / 1000}k frames/s (${kind} ports; ${ref === 'bridge' ? 'bridge with veth ports' : 'bridge with tap ports'})`, find(l2, id), find(l2, ref), 1, 'p99');
    }
  }
  if (vx) check('VXLAN: this switch >= 2x Linux bridge + vxlan', find(vx, 'vx-ours'), find(vx, 'vx-linux'), 2, 'tp');
  out.push('');
  return out;
}

export function renderMarkdown(r: Results): string {
  const m = r.machine;
  const out: string[] = [
    '# End-to-end benchmark (npm run bench -- e2e)',
    '',
    `Run ${r.started} on ${String(m.cpus)}x ${String(m.cpu)}, ${String(m.kernel)}, ${String(m.distro)}, ${String(m.ovs)}, commit ${String(m.commit)}; load average at start ${JSON.stringify(m.loadAverage)}.` +
      (r.partial ? ` Partial run: ${r.partial}.` : ''),
    `Best of ${r.method.rounds} runs of ${r.method.throughputSeconds} s at the maximum offered rate; latency from timestamped probes at ${r.method.latencyRate} frames/s. ` +
      `Generator and sink on CPU ${r.method.placement.genCpu}, ${r.method.placement.switchCpu >= 0 ? `the switch (this one's engine, OVS's PMD) ${cpuText(r.method.placement.switchCpu)}` : `this switch's engine ${cpuText(-1)}`}. ` +
      'Mpps = distinct frames delivered per second; Gbit/s counts each frame with its 4-byte FCS. See docs/benchmarks.md.',
    '',
  ];
  for (const s of r.suites) out.push(...(s.id === 'ports' ? portsTable(s) : suiteTable(s, r)));
  out.push(...goals(r));
  return `${out.join('\n')}\n`;
}

// ------------------------------------------------------------------ SVG

const COLORS: Record<string, string> = { wire: '#9e9e9e', linux: '#e69f00', ovs: '#009e73', ours: '#0072b2' };

function xml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function renderSvg(r: Results): string {
  const W = 960;
  const labelW = 250;
  const barW = 430;
  const latX = labelW + barW + 110;
  const latW = W - latX - 60;
  const rowH = 22;
  const parts: string[] = [];
  let y = 30;
  parts.push(`<text x="10" y="${y}" font-size="16" font-weight="bold">vpc-switch end-to-end benchmark — ${xml(r.started.slice(0, 16).replace('T', ' '))}, ${xml(String(r.machine.cpus))} CPUs</text>`);
  y += 18;
  parts.push(`<text x="10" y="${y}" font-size="11" fill="#555">delivered Mpps at maximum offered rate (longer is better) · p99 latency at ${r.method.latencyRate / 1000}k frames/s (shorter is better) · hatched: missing</text>`);
  y += 14;
  for (const s of r.suites) {
    if (s.id === 'ports') continue;
    const rows = s.systems;
    const maxPps = Math.max(1, ...rows.map((x) => x.throughput?.rx_pps ?? 0));
    const withLat = rows.some((x) => x.latency);
    const maxLat = Math.max(1, ...rows.map((x) => x.latency?.latency_us.p99 ?? 0));
    y += 26;
    parts.push(`<text x="10" y="${y}" font-size="13" font-weight="bold">${xml(s.title)}</text>`);
    if (withLat) parts.push(`<text x="${latX}" y="${y}" font-size="11" fill="#555">p99 latency, us (log scale)</text>`);
    y += 8;
    for (const x of rows) {
      const color = COLORS[x.family] ?? '#666';
      const cy = y + rowH / 2 + 4;
      parts.push(`<text x="${labelW - 8}" y="${cy}" font-size="12" text-anchor="end">${xml(x.label)}</text>`);
      if (x.throughput) {
        const w = Math.max(1, (x.throughput.rx_pps / maxPps) * barW);
        parts.push(`<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${color}"/>`);
        parts.push(`<text x="${(labelW + w + 5).toFixed(1)}" y="${cy}" font-size="11">${(x.throughput.rx_pps / 1e6).toFixed(3)} Mpps</text>`);
        if (x.latency) {
          const lw = Math.max(1, (Math.log10(Math.max(1, x.latency.latency_us.p99)) / Math.log10(Math.max(10, maxLat))) * latW); // log scale
          parts.push(`<rect x="${latX}" y="${y + 5}" width="${lw.toFixed(1)}" height="${rowH - 10}" fill="${color}" opacity="0.6"/>`);
          parts.push(`<text x="${(latX + lw + 4).toFixed(1)}" y="${cy}" font-size="10">${f1(x.latency.latency_us.p99)}</text>`);
        }
      } else {
        parts.push(`<rect x="${labelW}" y="${y + 3}" width="120" height="${rowH - 6}" fill="url(#hatch)" stroke="#bbb"/>`);
        const why = (x.missing ?? 'missing').replace(/^this switch could not be set up: /, '');
        parts.push(`<text x="${labelW + 126}" y="${cy}" font-size="10" fill="#a00">missing: ${xml(why.length > 90 ? `${why.slice(0, 90)}…` : why)}</text>`);
      }
      y += rowH;
    }
  }
  // Legend.
  y += 24;
  let lx = 10;
  for (const [k, c] of Object.entries({ 'this switch': COLORS.ours, 'Open vSwitch': COLORS.ovs, Linux: COLORS.linux, wire: COLORS.wire })) {
    parts.push(`<rect x="${lx}" y="${y - 10}" width="12" height="12" fill="${c}"/><text x="${lx + 16}" y="${y}" font-size="12">${k}</text>`);
    lx += 130;
  }
  y += 14;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="sans-serif">`,
    '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#ccc" stroke-width="3"/></pattern></defs>',
    `<rect width="${W}" height="${y}" fill="white"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

// ------------------------------------------------------------------ tcp

const gbps = (v: number): string => (v === 0 ? '0' : v >= 10 ? v.toFixed(2) : v >= 0.01 ? v.toFixed(3) : v.toPrecision(2));

function refLabel(r: TcpReport, group: TcpGroup): string {
  const id = TCP_REFERENCE[group];
  return r.systems.find((x) => x.id === id)?.label ?? id;
}

// This switch's tap ports over the tap relay (bench/taprelay), the most a
// holder of tap fds moves here on one thread: per MTU and streams, the median of the
// round-by-round ratios (rounds that failed on either side left out).
export function tapCeiling(r: TcpReport): string[] {
  const ours = r.systems.find((x) => x.id === 'ours-tap');
  const relay = r.systems.find((x) => x.id === 'tap-relay');
  if (!ours || !relay || !sameRun(ours, relay)) return [];
  const rows: string[] = [];
  for (const run of ours.runs) {
    const top = relay.runs.find((y) => y.mtu === run.mtu && y.streams === run.streams);
    if (!top || run.error || top.error || !(top.receiver_gbps > 0)) continue;
    const a = run.rounds ?? [], b = top.rounds ?? [];
    const per = a.length && a.length === b.length ? a.flatMap((x, i) => (!x.error && !b[i]!.error && b[i]!.receiver_gbps > 0 ? [x.receiver_gbps / b[i]!.receiver_gbps] : [])) : [];
    const ratio = per.length ? median(per) : run.receiver_gbps / top.receiver_gbps;
    const range = per.length > 1 ? ` (${Math.min(...per).toFixed(2)}–${Math.max(...per).toFixed(2)})` : '';
    rows.push(`| ${run.mtu} | ${run.streams} | ${gbps(run.receiver_gbps)} | ${gbps(top.receiver_gbps)} | ${ratio.toFixed(2)}x${range} |`);
  }
  if (!rows.length) return [];
  return [
    '### Tap ports against their ceiling',
    '',
    `${relay.label}: one thread that reads each frame from one tap and writes it to the other, with the tap ports' offloads and nothing else, the most a switch that holds tap fds on one thread can move on this machine. Ratio: ${ours.label} over it, round by round (median, range).`,
    '',
    '| MTU | streams | this switch (tap), Gbit/s | tap relay, Gbit/s | ratio |',
    '|---:|---:|---:|---:|---:|',
    ...rows,
    '',
  ];
}

export function renderTcpMarkdown(r: TcpReport): string {
  const m = r.machine;
  const method = r.method as { tool?: string; seconds?: number; rounds?: number };
  const rounds = method.rounds ?? 1;
  const out: string[] = [
    '# End-to-end TCP benchmark (npm run bench -- e2e tcp)',
    '',
    `Run ${r.started} on ${String(m.cpus)}x ${String(m.cpu)}, ${String(m.kernel)}, ${String(m.distro)}, ${String(m.ovs)}, ${String(method.tool)}, commit ${String(m.commit)}; ` +
      `load average at start ${JSON.stringify(m.loadAverage)}, at end ${JSON.stringify(m.loadAverageAtEnd)}.` +
      (r.partial ? ` Partial run: ${r.partial}.` : ''),
    ...(r.note ? ['', `**Note:** ${esc(r.note)}`] : []),
    '',
    `iperf3 for ${String(method.seconds)} s per run between two guests (network namespaces) that keep the kernel's default offloads (on veth: TSO, GSO, checksum offload on; what each guest had is under "what ran"). ` +
      (rounds > 1
        ? `Every run repeated in ${rounds} interleaved rounds (each round runs every system once, in the same order): Gbit/s and retransmits are the median round's, with the rounds' range in brackets; the ratio is the median of the round-by-round ratios, each a system's round over the reference's round of the same pass, with their range. `
        : '') +
      `Gbit/s as iperf3 reports it (TCP payload). Ratio: receiver Gbit/s over the reference of the same run (round), MTU and number of streams ` +
      `(local rows: ${refLabel(r, 'local')}; VXLAN rows: ${refLabel(r, 'vxlan')}; wire-like underlay rows: ${refLabel(r, 'vxwire')}, over an underlay whose veths have TSO, GSO and UDP segmentation off, so the kernel cuts every batch before the veth and each VXLAN packet crosses on its own, as on a wire; NIC-like underlay rows: ${refLabel(r, 'vxnic')}, the same with GRO on at both ends, as a NIC has it). **collapsed**: a round of the run failed or received less than ${COLLAPSE * 100}% of the reference's. See docs/benchmarks.md.`,
    '',
    '### Guest to guest TCP throughput (iperf3)',
    '',
    '| path | system | MTU | streams | receiver Gbit/s | sender Gbit/s | retransmits | ratio to reference | |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const x of r.systems) {
    for (const run of x.runs) {
      const ref = x.id === TCP_REFERENCE[x.group];
      const range = run.ratio_min !== undefined && run.ratio_max !== undefined ? ` (${run.ratio_min.toFixed(2)}–${run.ratio_max.toFixed(2)})` : '';
      const ratioCell = ref ? 'reference' : run.ratio !== undefined ? `${run.ratio.toFixed(2)}x${range}` : '-';
      const ok = (run.rounds ?? []).filter((y) => !y.error).map((y) => y.receiver_gbps);
      const recv = gbps(run.receiver_gbps) + (ok.length > 1 ? ` (${gbps(Math.min(...ok))}–${gbps(Math.max(...ok))})` : '');
      let status = '';
      if (run.error) status = `**failed**: ${run.error}`;
      else if (run.collapsed) status = `**collapsed** (a round failed or fell below ${COLLAPSE * 100}% of the reference's)`;
      const refSys = r.systems.find((y) => y.id === TCP_REFERENCE[x.group]);
      if (x.from) status += `${status ? '; ' : ''}kept from the run of ${x.from}${ref ? '' : "; its ratio is to that run's reference"}`;
      else if (refSys && !sameRun(x, refSys)) status += `${status ? '; ' : ''}no ratio: the reference was not run with it`;
      if (!run.error && run.failed_rounds) status += `${status ? '; ' : ''}${run.failed_rounds} of ${run.rounds!.length} rounds failed: ${[...new Set(run.rounds!.filter((y) => y.error).map((y) => y.error))].join('; ')}`;
      const row = [PATH_LABEL[x.group], x.label, String(run.mtu), String(run.streams), recv, gbps(run.sender_gbps), String(run.retransmits), ratioCell, status];
      out.push(`| ${row.map(esc).join(' | ')} |`);
    }
  }
  out.push('');
  const lat = r.systems.filter((x) => x.latency);
  if (lat.length) {
    out.push(
      '### TCP request/response latency (64-byte request and echo, MTU 1500)',
      '',
      'One connection, Nagle off, 200 warm-up round trips, then 1 s; the best of 3 such rounds (lowest p99). Timed in the client (a Node process in the sending guest), so every row includes the same Node event-loop cost on both ends.',
      '',
      '| path | system | round trips | p50 us | p99 us | p99.9 us | p99 ratio to reference (>1 is worse) | |',
      '|---|---|---:|---:|---:|---:|---:|---|',
    );
    for (const x of lat) {
      const l = x.latency!;
      const ref = x.id === TCP_REFERENCE[x.group];
      const row = [PATH_LABEL[x.group], label(x), String(l.roundTrips), f1(l.p50_us), f1(l.p99_us), f1(l.p999_us), ref ? 'reference' : l.ratio_p99 !== undefined ? `${l.ratio_p99.toFixed(2)}x` : '-', l.error ? `**failed**: ${l.error}` : ''];
      out.push(`| ${row.map(esc).join(' | ')} |`);
    }
    out.push('');
  }
  out.push(...tapCeiling(r));
  const used = r.systems.filter((x) => x.used || x.guestOffloads).map((x) => `- **${x.label}**: ${x.used ?? ''}${x.guestOffloads ? `; sending guest ${x.guestOffloads}` : ''}`);
  const dropLines = r.systems.flatMap((x) => x.runs.filter((run) => run.switchDrops).map((run) => `- **${x.label}**, MTU ${run.mtu}, ${run.streams} stream(s): ${Object.entries(run.switchDrops!).map(([k, v]) => `${k} ${v}`).join(', ')}`));
  if (used.length) out.push('<details><summary>what ran</summary>', '', ...used, '', '</details>', '');
  if (dropLines.length) out.push('<details><summary>this switch: drop counters that moved during each run (summed over its rounds)</summary>', '', ...dropLines, '', '</details>', '');
  return `${out.join('\n')}\n`;
}
