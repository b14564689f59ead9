// vpcctl trace: what each stage decided for the next N frames, printed the
// way VPP's `show trace` does (a block per frame, a line per stage).

import type { Command } from 'commander';
import type { TraceResult } from '../../dataplane';
import type { CliContext } from './context';
import { int } from './parse';

// hh:mm:ss.uuuuuu since `t0` (nanoseconds).
function stamp(ns: number, t0: number): string {
  const us = Math.max(0, Math.round((ns - t0) / 1000));
  const s = Math.floor(us / 1e6);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${p(Math.floor(s / 3600))}:${p(Math.floor(s / 60) % 60)}:${p(s % 60)}.${p(us % 1e6, 6)}`;
}

export function traceText(t: TraceResult): string {
  if (t.records.length === 0) return `No frames traced${t.port === undefined ? '' : ` on port ${t.port}`}.\n`;
  const t0 = t.records[0]!.lines[0]?.ns ?? 0;
  return t.records.map((r, i) => {
    const head = `Frame ${i + 1}: port ${r.port}, ${r.length} bytes\n`;
    const lines = r.lines.map((l) => `  ${stamp(l.ns, t0)} ${l.stage.padEnd(8)} ${l.text}\n`).join('');
    return `${head}${lines}${r.truncated ? '  (more stages than a record holds)\n' : ''}`;
  }).join('\n');
}

export function registerTrace(program: Command, { io, ctx, print }: CliContext): void {
  program.command('trace')
    .description('trace the next N frames through the switch: classify, learn, lookup, encap/decap, tx or the drop reason')
    .requiredOption('-c, --count <n>', 'frames to trace (1..1000)', int('count', 1, 1000))
    .option('-p, --port <port>', 'only frames received on this port (or the uplink)')
    .option('--seconds <s>', 'wait at most this long for the frames', int('seconds', 1, 3600), 10)
    .action(async (o: { count: number; port?: string; seconds: number }, cmd: Command) => {
      const { client, json } = ctx(cmd);
      const sleep = io.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
      // vpcd ends the trace by itself 5 s after our wait, should this process
      // be killed (a waiting trace pauses the kernel path). Ctrl-C ends the
      // wait: the trace is stopped, and what it has is printed.
      let interrupted = false;
      const stopListening = io.onInterrupt?.(() => (interrupted = true)) ?? (() => undefined);
      try {
        const { id } = await client.call<{ id: number }>('POST', '/v1/trace', { count: o.count, seconds: o.seconds + 5, ...(o.port === undefined ? {} : { port: o.port }) });
        const deadline = Date.now() + o.seconds * 1000;
        // Another vpcctl trace may replace ours meanwhile (one trace runs at a
        // time): then ours is what we read last, and theirs is left alone.
        let t = await client.call<TraceResult>('GET', '/v1/trace');
        let mine: TraceResult = t.id === id ? t : { id, count: o.count, ...(o.port === undefined ? {} : { port: o.port }), records: [] };
        while (t.id === id && t.records.length < o.count && Date.now() < deadline && !interrupted) {
          await sleep(100);
          t = await client.call<TraceResult>('GET', '/v1/trace');
          if (t.id === id) mine = t;
        }
        const { stopped } = await client.call<{ stopped: boolean }>('DELETE', `/v1/trace?id=${id}`);
        if (stopped) {
          t = await client.call<TraceResult>('GET', '/v1/trace'); // frames completed while stopping
          if (t.id === id) mine = t;
        }
        const got = `${mine.records.length} of ${o.count} frames`;
        const short = mine.records.length >= o.count ? '' : !stopped ? `(${got}: another trace replaced this one)\n`
          : interrupted ? `(${got}: interrupted)\n` : `(${got} within ${o.seconds} s)\n`;
        print(json, mine, () => traceText(mine) + short);
      } finally {
        stopListening();
      }
    });
}
