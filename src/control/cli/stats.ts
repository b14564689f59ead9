// vpcctl stats: counters of ports, switches, peers, the uplink and the
// engine; with --watch, refreshed with rates.

import type { Command } from 'commander';
import type { CliContext } from './context';
import { human, table } from './format';
import { int } from './parse';

export function registerStats(program: Command, { io, ctx }: CliContext): void {
  program.command('stats').description('counters of ports, switches and the engine')
    .option('-w, --watch', 'refresh until interrupted, with rates')
    .option('-i, --interval <seconds>', 'refresh interval for --watch', int('interval', 1, 3600), 2)
    .option('-n, --count <n>', 'with --watch: stop after n refreshes', int('count', 1, 1_000_000))
    .action(async (o: { watch?: boolean; interval: number; count?: number }, cmd: Command) => {
      const { client, json } = ctx(cmd);
      // A reader that went away (`| head -3`) ends --watch, at once: the
      // pause is cut short.
      let closed = false;
      let wake: (() => void) | undefined;
      const sleep = io.sleep ?? ((ms: number) => new Promise<void>((r) => {
        const timer = setTimeout(r, ms);
        wake = () => {
          clearTimeout(timer);
          r();
        };
      }));
      const stopListening = io.onOutputClosed?.(() => {
        closed = true;
        wake?.();
      }) ?? (() => undefined);
      let prev: { at: number; s: Stats } | undefined;
      try {
        for (let i = 0; !closed; i++) {
          const s = await client.call<Stats>('GET', '/v1/stats');
          const at = Date.now();
          if (json) io.out(`${JSON.stringify(s)}\n`);
          // On a terminal each screen replaces the last; into a pipe or a file
          // the screens follow one another, without the escape codes.
          else io.out(`${o.watch ? `${io.isTTY === true ? '\x1b[H\x1b[2J' : i > 0 ? '\n' : ''}${new Date(at).toISOString()}  (every ${o.interval}s, Ctrl-C to stop)\n` : ''}${statsText(s, prev === undefined ? undefined : { s: prev.s, seconds: (at - prev.at) / 1000 }, o.watch === true)}`);
          prev = { at, s };
          if (!o.watch || (o.count !== undefined && i + 1 >= o.count)) break;
          await sleep(o.interval * 1000);
        }
      } finally {
        stopListening();
      }
    });
}

interface Stats {
  engine: Record<string, number>;
  eventsDropped: number;
  ports: Record<string, { counters: Record<string, number>; drops: Record<string, number> }>;
  switches: Record<string, { counters: Record<string, number>; drops: Record<string, number> }>;
  peers?: Record<string, Record<string, number>>;
  uplink?: { name: string; counters: Record<string, number> };
}

// rates: the RX-RATE and TX-RATE columns, '-' until there is a previous
// sample (--watch has them from its first screen on, so the table keeps its
// shape).
export function statsText(s: Stats, prev?: { s: Stats; seconds: number }, rates = prev !== undefined): string {
  const rate = (now: number, before: number | undefined): string => (prev === undefined || before === undefined ? '-' : `${human(Math.max(0, now - before) / prev.seconds)}/s`);
  const ports = Object.entries(s.ports).sort(([a], [b]) => (a < b ? -1 : 1));
  const portRows = ports.map(([name, p]) => {
    const old = prev?.s.ports[name]?.counters;
    const drops = Object.entries(p.drops).filter(([, v]) => v > 0).map(([k, v]) => `${k}=${v}`).join(',');
    return [name, human(p.counters.rx_packets ?? 0), human(p.counters.rx_bytes ?? 0), human(p.counters.tx_packets ?? 0), human(p.counters.tx_bytes ?? 0),
      ...(rates ? [rate(p.counters.rx_packets ?? 0, old?.rx_packets), rate(p.counters.tx_packets ?? 0, old?.tx_packets)] : []), drops || '-'];
  });
  const portHead = ['PORT', 'RX-PKTS', 'RX-BYTES', 'TX-PKTS', 'TX-BYTES', ...(rates ? ['RX-RATE', 'TX-RATE'] : []), 'DROPS'];
  const sws = Object.entries(s.switches).sort(([a], [b]) => (a < b ? -1 : 1));
  const swRows = sws.map(([name, w]) => [name, w.counters.fdb_entries ?? 0, human(w.counters.rx_packets ?? 0), w.counters.learned ?? 0, w.counters.moved ?? 0, w.counters.aged ?? 0, human(w.counters.flooded ?? 0), w.counters.drops ?? 0]);
  const e = s.engine;
  const busy = (e.busy_ns ?? 0) + (e.idle_ns ?? 0) > 0 ? `${(((e.busy_ns ?? 0) / ((e.busy_ns ?? 0) + (e.idle_ns ?? 0))) * 100).toFixed(1)}% busy` : '';
  const peers = Object.entries(s.peers ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  const peerText = peers.length === 0 ? '' : `\n${table(['PEER', 'RX-PKTS', 'RX-BYTES', 'TX-PKTS', 'TX-BYTES', 'DROPS', 'LEARNED'],
    peers.map(([ip, c]) => [ip, human(c.rx_packets ?? 0), human(c.rx_bytes ?? 0), human(c.tx_packets ?? 0), human(c.tx_bytes ?? 0), c.drops ?? 0, c.fdb_learned ?? 0]))}`;
  const u = s.uplink;
  const uplinkText = u === undefined ? '' : `\nuplink ${u.name}: ${Object.entries(u.counters).filter(([, v]) => v > 0).map(([k, v]) => `${k}=${v}`).join(' ') || 'no traffic'}\n`;
  return `${table(portHead, portRows)}\n${table(['SWITCH', 'FDB', 'RX-PKTS', 'LEARNED', 'MOVED', 'AGED', 'FLOODED', 'DROPS'], swRows)}${peerText}${uplinkText}\nengine: ${human(e.packets ?? 0)} packets, ${human(e.iterations ?? 0)} iterations, ${busy}, ${e.buffers_free ?? '?'} buffers free, ${s.eventsDropped} events dropped\n`;
}
