// TCP request/response round trips between two guests, for the tcp suite's
// latency figures (iperf3 measures throughput only). Run inside a guest's
// namespace by the harness:
//
//   ip netns exec S node dist/bench/e2e/tcp-rr.js server ADDR PORT DEADLINE_MS
//   ip netns exec G node dist/bench/e2e/tcp-rr.js client ADDR PORT SECONDS SIZE
//
// The server echoes what it reads on one connection (Nagle off), prints
// {"listening":true} once bound and exits when that connection closes or at
// its deadline. The client sends SIZE bytes, waits for the SIZE-byte echo,
// and repeats for SECONDS (at most 100,000 round trips) after 200 unmeasured
// warm-up ones; it prints one JSON line with the percentiles in microseconds
// or {"error": ...}. Both exit by themselves whatever happens.

import * as net from 'node:net';

export interface RrResult {
  size: number;
  roundTrips: number;
  min_us: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  max_us: number;
  error?: string;
}

const WARMUP = 200;
const MAX_ROUNDS = 100_000;

function out(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function server(addr: string, port: number, deadlineMs: number): void {
  const srv = net.createServer((sock) => {
    sock.setNoDelay(true);
    srv.close(); // one connection
    sock.on('data', (d) => sock.write(d));
    sock.on('error', () => process.exit(0));
    sock.on('close', () => process.exit(0));
  });
  srv.on('error', (err) => {
    out({ error: `server: ${err.message}` });
    process.exit(1);
  });
  srv.listen(port, addr, () => out({ listening: true }));
  setTimeout(() => process.exit(0), deadlineMs); // also ends a server nobody connected to
}

export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function client(addr: string, port: number, seconds: number, size: number): void {
  const msg = Buffer.alloc(size, 0x5a);
  const samples: number[] = [];
  let done = 0;
  let got = 0;
  let sentAt = 0n;
  let stopAt = 0;
  const finish = (error?: string): void => {
    const s = samples.slice().sort((a, b) => a - b);
    const r: RrResult = {
      size,
      roundTrips: s.length,
      min_us: s[0] ?? 0,
      p50_us: percentile(s, 0.5),
      p99_us: percentile(s, 0.99),
      p999_us: percentile(s, 0.999),
      max_us: s[s.length - 1] ?? 0,
      ...(error ? { error } : {}),
    };
    out(r);
    process.exit(0);
  };
  // Hard bound: a stalled connection (a switch that drops everything) ends
  // the run with what was measured so far.
  setTimeout(() => finish(`stalled: ${done} round trips in ${seconds + 5} s`), (seconds + 5) * 1000);
  const sock = net.connect({ host: addr, port, timeout: 3000 });
  sock.setNoDelay(true);
  const send = (): void => {
    got = 0;
    sentAt = process.hrtime.bigint();
    sock.write(msg);
  };
  sock.on('connect', () => {
    sock.setTimeout(0);
    stopAt = Date.now() + seconds * 1000;
    send();
  });
  sock.on('timeout', () => finish('connect timed out (3 s)'));
  sock.on('error', (err) => finish(`connection: ${err.message}`));
  sock.on('data', (d) => {
    got += d.length;
    if (got < size) return;
    const us = Number(process.hrtime.bigint() - sentAt) / 1000;
    done++;
    if (done > WARMUP) samples.push(us);
    if (samples.length >= MAX_ROUNDS || (done > WARMUP && Date.now() >= stopAt)) {
      sock.destroy();
      finish();
      return;
    }
    send();
  });
}

function main(): void {
  const [mode, addr, portS, a, b] = process.argv.slice(2);
  const port = Number(portS);
  if (!addr || !Number.isInteger(port) || port <= 0) throw new Error('usage: tcp-rr server ADDR PORT DEADLINE_MS | client ADDR PORT SECONDS SIZE');
  if (mode === 'server') server(addr, port, Number(a) || 30_000);
  else if (mode === 'client') client(addr, port, Number(a) || 2, Number(b) || 64);
  else throw new Error(`unknown mode ${String(mode)}`);
}

if (require.main === module) {
  try {
    main();
  } catch (err) {
    out({ error: err instanceof Error ? err.message : String(err) });
    process.exit(2);
  }
}
