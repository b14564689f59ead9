// Logs: pino. Two formats of the same records:
//   json    one object per line with a level label (for journald, files, log
//           shippers; the default when stdout is not a terminal)
//   pretty  one human-readable line per record through pino-pretty (time,
//           level, message, then the fields); the default on a terminal
//
// Dataplane events (port link changes, MAC moves, table-full episodes, ...)
// can arrive by the thousand (a MAC flapping between two ports, a flood of
// new sources). Each event kind has its own token bucket: up to `burst` lines
// at once, then `ratePerSecond`; what does not fit is counted, and one
// "suppressed N events" line per kind is written when the interval ends.

import pino, { Logger, LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';
import { DataplaneEvent } from '../dataplane';

export type { Logger };

export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

// `auto`: pretty on a terminal, JSON otherwise.
export function resolveLogFormat(format: LogFormat, isTTY: boolean | undefined = process.stdout.isTTY): 'json' | 'pretty' {
  if (format === 'auto') return isTTY === true ? 'pretty' : 'json';
  return format;
}

export function createLogger(level: LevelWithSilent = 'info', destination?: pino.DestinationStream, format: LogFormat = 'json'): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { pid: process.pid, name: 'vpcd' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (resolveLogFormat(format, destination === undefined ? process.stdout.isTTY : false) === 'pretty') {
    // Numeric levels here: pino-pretty names and colours them itself.
    const stream = pretty({
      // Synchronous writes: a line logged just before an exit or a kill is not lost.
      sync: true,
      destination: destination ?? 1,
      colorize: destination === undefined && process.stdout.isTTY === true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,name',
      singleLine: true,
    });
    return pino(options, stream);
  }
  options.formatters = { level: (label) => ({ level: label }) };
  // Synchronous writes: a line logged just before an exit or a kill is not lost.
  return destination === undefined ? pino(options, pino.destination({ dest: 1, sync: true })) : pino(options, destination);
}

export interface RateLimitOptions {
  burst: number; // lines allowed at once per kind
  ratePerSecond: number; // refill rate per kind
  summaryMs: number; // how often suppressed counts are reported
}

export const DEFAULT_RATE_LIMIT: RateLimitOptions = { burst: 20, ratePerSecond: 5, summaryMs: 5000 };

interface Bucket {
  tokens: number;
  last: number;
  suppressed: number;
}

// Token bucket per key. take() says whether a line may be written now.
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  constructor(private readonly opts: RateLimitOptions = DEFAULT_RATE_LIMIT, private readonly now: () => number = Date.now) {}

  take(key: string): boolean {
    const t = this.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      b = { tokens: this.opts.burst, last: t, suppressed: 0 };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.opts.burst, b.tokens + ((t - b.last) / 1000) * this.opts.ratePerSecond);
    b.last = t;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    b.suppressed += 1;
    return false;
  }

  // Suppressed counts since the last call, by key (only non-zero ones).
  drainSuppressed(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, b] of this.buckets) {
      if (b.suppressed > 0) out[key] = b.suppressed;
      b.suppressed = 0;
    }
    return out;
  }
}

// Level and message of each dataplane event kind.
const EVENT_LOG: Record<DataplaneEvent['type'], { level: 'debug' | 'info' | 'warn'; msg: string }> = {
  learned: { level: 'debug', msg: 'mac learned' },
  aged: { level: 'debug', msg: 'mac aged out' },
  moved: { level: 'info', msg: 'mac moved' },
  link: { level: 'info', msg: 'port link state changed' },
  table_full: { level: 'warn', msg: 'switch mac table full; not learning' },
  port_limit: { level: 'warn', msg: 'port mac limit reached; not learning' },
};

// Writes dataplane events to the log, rate-limited per kind.
export class EventLogger {
  private readonly limiter: RateLimiter;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly log: Logger, opts: RateLimitOptions = DEFAULT_RATE_LIMIT) {
    this.limiter = new RateLimiter(opts);
    this.timer = setInterval(() => this.flush(), opts.summaryMs);
    this.timer.unref();
  }

  event(e: DataplaneEvent): void {
    const how = EVENT_LOG[e.type];
    if (how === undefined || !this.log.isLevelEnabled(how.level)) return;
    if (!this.limiter.take(e.type)) return;
    const { type, ...fields } = e;
    this.log[how.level]({ event: type, ...fields }, how.msg);
  }

  flush(): void {
    for (const [kind, count] of Object.entries(this.limiter.drainSuppressed())) {
      this.log.warn({ event: kind, suppressed: count }, `suppressed ${count} ${kind} events (rate limit)`);
    }
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.flush();
  }
}
