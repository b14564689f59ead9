// The reopen suite: how long the engine stops when one port's interface is
// deleted and created again (a container restarted, a VM's tap re-made).
// The other ports of the switch wait for whatever that port's link check
// does on the engine thread, so the figure is the longest engine iteration
// (stats().engine.iteration_max_ns, published every housekeeping period)
// while it happens, beside the same over an idle stretch before. Each
// backend: one port in a switch of its own, in a namespace of its own; its
// veth (or, for tap, the tap the switch created) is deleted ROUNDS times,
// and the veth made again.

import { SwitchHost } from './systems';
import { Topo, sleep } from './topo';

export interface ReopenRow {
  backend: string;
  rounds: number;
  idle_max_ms: number; // longest iteration over the idle stretch
  gone_max_ms: number; // longest iteration while the interface was gone (the old sockets closed)
  back_max_ms: number; // longest iteration once it was back (the new ones opened)
  reopens: number; // the port's reopens counter at the end (= rounds when every return was taken)
}

const BACKENDS = ['afpacket', 'afxdp', 'tap'] as const;

export async function runReopen(o: { rounds: number; log: (s: string) => void }): Promise<ReopenRow[]> {
  const rows: ReopenRow[] = [];
  for (const backend of BACKENDS) {
    const t = new Topo();
    try {
      const ns = t.netns('ro');
      const veth = (): void => t.veth(ns, 'rv0', ns, 'rv0p');
      if (backend !== 'tap') veth();
      const h = await SwitchHost.start(t, ns, {
        switches: [{ name: 'a', vni: 100 }],
        ports: [{ name: 'p0', type: backend, interface: backend === 'tap' ? 'rt0' : 'rv0', switch: 'a' }],
      });
      const longest = async (ms: number): Promise<number> => {
        let worst = 0;
        for (const end = Date.now() + ms; Date.now() < end; ) {
          await sleep(50);
          const s = (await h.stats()) as { stats?: { engine?: { iteration_max_ns?: number } } };
          worst = Math.max(worst, s.stats?.engine?.iteration_max_ns ?? 0);
        }
        return worst / 1e6;
      };
      await sleep(1500);
      const idle = await longest(2000);
      let gone = 0;
      let back = 0;
      for (let r = 0; r < o.rounds; r++) {
        t.ip(ns, 'link', 'del', backend === 'tap' ? 'rt0' : 'rv0');
        gone = Math.max(gone, await longest(800));
        if (backend !== 'tap') veth();
        back = Math.max(back, await longest(2500));
      }
      const st = (await h.stats()) as { ports?: Record<string, { counters?: { reopens?: number } }> };
      const row: ReopenRow = {
        backend,
        rounds: o.rounds,
        idle_max_ms: round(idle),
        gone_max_ms: round(gone),
        back_max_ms: round(back),
        reopens: st.ports?.p0?.counters?.reopens ?? 0,
      };
      rows.push(row);
      o.log(`reopen: ${backend}: longest engine iteration idle ${row.idle_max_ms} ms, interface gone ${row.gone_max_ms} ms, back ${row.back_max_ms} ms (${row.reopens}/${o.rounds} reopens)`);
    } finally {
      t.cleanup();
    }
  }
  return rows;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
