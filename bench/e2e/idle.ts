// The idle suite: how much of a CPU an idle switch's engine uses, by the
// number of ports it holds. Each port is a tap the switch creates (up, no
// guest behind it) in a namespace of its own with IPv6 off, so nothing
// wakes the engine but its own housekeeping tick. The engine's CPU time is
// the scheduler's (SwitchHost.idleCpu). The switch process's resident
// memory is read once the taps are up: what each port costs, from the
// difference between rows (the pool itself is in every row).

import { SwitchHost } from './systems';
import { Topo } from './topo';

export interface IdleRow {
  taps: number;
  setup_ms: number; // creating the switch and its taps
  idle_cpu_pct: number; // percent of one CPU
  rss_mib: number; // the switch process's resident memory with these taps
}

export async function runIdle(o: { seconds: number; taps: number[]; log: (s: string) => void }): Promise<IdleRow[]> {
  const rows: IdleRow[] = [];
  for (const n of o.taps) {
    const t = new Topo();
    try {
      const ns = t.netns('idle');
      const ports = Array.from({ length: n }, (_, i) => ({ name: `t${i}`, type: 'tap' as const, interface: `it${i}`, switch: 'a' }));
      const t0 = Date.now();
      const h = await SwitchHost.start(t, ns, { switches: [{ name: 'a', vni: 100 }], ports });
      const setup = Date.now() - t0;
      const pct = await h.idleCpu(o.seconds);
      const rss = (await h.rss()) / 2 ** 20;
      rows.push({ taps: n, setup_ms: setup, idle_cpu_pct: Math.round(pct * 1000) / 1000, rss_mib: Math.round(rss * 10) / 10 });
      o.log(`idle: ${n} taps, set up in ${setup} ms, engine ${pct.toFixed(2)}% of a CPU over ${o.seconds} s, switch process ${rss.toFixed(1)} MiB resident`);
    } finally {
      t.cleanup();
    }
  }
  return rows;
}
