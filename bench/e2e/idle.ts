// The idle suite: how much of a CPU an idle switch's engine uses, by the
// number of ports it holds. A tap row's ports are taps the switch creates
// (up, no guest behind it); an afpacket row's are AF_PACKET ports on veths
// (both ends up, in the same namespace). Either way the namespace is the
// row's own, with IPv6 off, so nothing wakes the engine but its own
// housekeeping and its link checks (link_checks_per_s: the engine's
// link_checks counter from just before the CPU measurement to just after
// it, half a second of settling included, per second of that stretch). The engine's CPU time is the
// scheduler's (SwitchHost.idleCpu). The switch process's resident memory is
// read once the ports are up: what each port costs, from the difference
// between rows (the pool itself is in every row).

import { SwitchHost } from './systems';
import { Topo } from './topo';

export interface IdleRow {
  taps?: number; // a tap row: its number of taps
  afpacket?: number; // an afpacket row: its number of AF_PACKET ports
  setup_ms: number; // creating the switch and its ports
  idle_cpu_pct: number; // percent of one CPU
  link_checks_per_s?: number;
  rss_mib: number; // the switch process's resident memory with these ports
}

async function linkChecks(h: SwitchHost): Promise<number> {
  const r = await h.stats();
  return Number((r.stats as { engine?: Record<string, number> } | undefined)?.engine?.link_checks ?? NaN);
}

export async function runIdle(o: { seconds: number; taps: number[]; afpacket: number[]; log: (s: string) => void }): Promise<IdleRow[]> {
  const rows: IdleRow[] = [];
  const cases = [...o.taps.map((n) => ({ kind: 'tap' as const, n })), ...o.afpacket.map((n) => ({ kind: 'afpacket' as const, n }))];
  for (const { kind, n } of cases) {
    const t = new Topo();
    try {
      const ns = t.netns('idle');
      if (kind === 'afpacket') for (let i = 0; i < n; ++i) t.veth(ns, `ia${i}`, ns, `ib${i}`);
      const ports = Array.from({ length: n }, (_, i) =>
        kind === 'tap' ? { name: `t${i}`, type: 'tap' as const, interface: `it${i}`, switch: 'a' } : { name: `p${i}`, type: 'afpacket' as const, interface: `ia${i}`, switch: 'a' },
      );
      const t0 = Date.now();
      const h = await SwitchHost.start(t, ns, { switches: [{ name: 'a', vni: 100 }], ports });
      const setup = Date.now() - t0;
      const c0 = await linkChecks(h);
      const w0 = Date.now();
      const pct = await h.idleCpu(o.seconds);
      const checks = ((await linkChecks(h)) - c0) / ((Date.now() - w0) / 1000);
      const rss = (await h.rss()) / 2 ** 20;
      rows.push({
        [kind === 'tap' ? 'taps' : 'afpacket']: n,
        setup_ms: setup,
        idle_cpu_pct: Math.round(pct * 1000) / 1000,
        ...(Number.isFinite(checks) ? { link_checks_per_s: Math.round(checks * 10) / 10 } : {}),
        rss_mib: Math.round(rss * 10) / 10,
      });
      o.log(
        `idle: ${n} ${kind === 'tap' ? 'taps' : 'afpacket ports'}, set up in ${setup} ms, engine ${pct.toFixed(2)}% of a CPU over ${o.seconds} s, ` +
          `${checks.toFixed(1)} link checks/s, switch process ${rss.toFixed(1)} MiB resident`,
      );
    } finally {
      t.cleanup();
    }
  }
  return rows;
}
