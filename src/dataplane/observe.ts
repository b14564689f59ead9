// Capture and trace: seeing frames in the engine (native/netmap/core/capture.h,
// core/trace.h).
//
// A capture copies the frames of one port (or every frame of one switch,
// see docs/operations.md "Seeing packets") into a bounded ring in the
// engine; read() drains it as classic pcap records. When the reader falls
// behind, the engine drops what does not fit and counts it (`dropped`); it
// never waits. stop() detaches it; a capture must be stopped (the control
// API does it when its client goes away).
//
// A trace records, for the next `count` frames received (optionally on one
// port), what each stage decided; read() returns the records completed so far.

import { makeError, mapNativeError } from './errors';
import type { NativeEngine, NativeTraceRead } from './native';
import type { NameRegistry } from './registry';
import { validateInteger, validateName, validateObject } from './validate';

export type CaptureDirection = 'in' | 'out' | 'both';
const DIRECTION_BITS: Record<CaptureDirection, number> = { in: 1, out: 2, both: 3 };

export interface CaptureSpec {
  port?: string; // one port (the uplink too: it shows the outer VXLAN headers) ...
  switch?: string; // ... or every port of one switch (exactly one of the two)
  direction?: CaptureDirection; // default both
  snaplen?: number; // bytes kept per frame, 1..65535 (default 256)
  ring?: number; // ring slots, a power of two 2..65536 (default 4096)
}

export const CAPTURE_DEFAULTS = { snaplen: 256, ring: 4096 } as const;

export interface CaptureChunk {
  pcap: Buffer; // libpcap records (16-byte header + bytes each), oldest first
  frames: { port: string; direction: 'in' | 'out' }[]; // one per record, same order
  captured: number; // frames captured since the start
  dropped: number; // frames not captured because the ring was full
  ended: boolean; // the captured port or switch was deleted: this is the last chunk
}

export interface Capture {
  readonly id: number;
  readonly header: Buffer; // the pcap file header (LINKTYPE_ETHERNET, snaplen)
  // Up to `max` records (default: everything waiting). Throws ERR_NOT_FOUND once stopped.
  read(max?: number): CaptureChunk;
  stop(): Promise<void>;
}

export interface TraceSpec {
  count: number; // frames to trace, 1..1000
  port?: string; // only frames received on this port
  // The trace ends by itself after this long if its frames have not all
  // come (1..TRACE_MAX_SECONDS, default 60): a trace pauses the kernel fast
  // path of every port while it waits, and a client that went away must not
  // leave it so.
  seconds?: number;
}

export const TRACE_DEFAULT_SECONDS = 60;
// Two hours: vpcctl trace waits up to an hour and asks for 5 s more.
export const TRACE_MAX_SECONDS = 7200;

export interface TraceLine {
  ns: number; // CLOCK_MONOTONIC nanoseconds
  stage: 'rx' | 'classify' | 'decap' | 'learn' | 'lookup' | 'encap' | 'tx' | 'drop';
  text: string; // port#N / switch#N are replaced by names
}
export interface TraceRecord {
  port: string;
  length: number;
  truncated: boolean; // more stages than the record holds
  lines: TraceLine[];
}
export interface TraceResult {
  id?: number; // the trace's (Dataplane.startTrace's answer)
  count: number; // frames asked for
  port?: string;
  records: TraceRecord[]; // completed so far, in arrival order
}

export function validateCaptureSpec(spec: unknown): Required<Omit<CaptureSpec, 'port' | 'switch'>> & Pick<CaptureSpec, 'port' | 'switch'> {
  const o = validateObject(spec, '', ['port', 'switch', 'direction', 'snaplen', 'ring'], 'capture');
  if ((o.port === undefined) === (o.switch === undefined)) {
    throw makeError('ERR_INVALID_ARGUMENT', 'capture: give a port or a switch (exactly one)', o.port === undefined ? 'port' : 'switch');
  }
  const direction = (o.direction ?? 'both') as CaptureDirection;
  if (!Object.prototype.hasOwnProperty.call(DIRECTION_BITS, direction)) {
    throw makeError('ERR_INVALID_ARGUMENT', `direction: must be in, out or both (got ${JSON.stringify(o.direction)})`, 'direction');
  }
  const ring = validateInteger(o.ring ?? CAPTURE_DEFAULTS.ring, 'ring', 2, 65536);
  if ((ring & (ring - 1)) !== 0) throw makeError('ERR_INVALID_ARGUMENT', `ring: must be a power of two (got ${ring})`, 'ring');
  return {
    ...(o.port === undefined ? {} : { port: validateName(o.port, 'port') }),
    ...(o.switch === undefined ? {} : { switch: validateName(o.switch, 'switch') }),
    direction,
    snaplen: validateInteger(o.snaplen ?? CAPTURE_DEFAULTS.snaplen, 'snaplen', 1, 65535),
    ring,
  };
}

export function validateTraceSpec(spec: unknown): TraceSpec {
  const o = validateObject(spec, '', ['count', 'port', 'seconds'], 'trace');
  return {
    count: validateInteger(o.count, 'count', 1, 1000),
    ...(o.port === undefined ? {} : { port: validateName(o.port, 'port') }),
    seconds: o.seconds === undefined ? TRACE_DEFAULT_SECONDS : validateInteger(o.seconds, 'seconds', 1, TRACE_MAX_SECONDS),
  };
}

// Starts a capture on an engine; `names` resolves ids to names.
export async function openCapture(
  engine: NativeEngine,
  names: NameRegistry,
  spec: ReturnType<typeof validateCaptureSpec>,
): Promise<Capture> {
  const portId = spec.port === undefined ? -1 : names.requireEndpoint(spec.port, 'port').id;
  const switchId = spec.switch === undefined ? -1 : names.requireSwitch(spec.switch, 'switch').id;
  const call = { portId, switchId, direction: DIRECTION_BITS[spec.direction], snaplen: spec.snaplen, slots: spec.ring };
  let id: number;
  try {
    id = (await engine.captureStart(call)).id;
  } catch (err) {
    throw mapNativeError(err, { op: 'capture' });
  }
  const first = engine.captureRead(id, 0);
  if (first === undefined) throw makeError('ERR_NATIVE', 'capture: the engine lost the capture it just started');
  // Ids are resolved once each: a port deleted while its capture runs keeps its name.
  const portNames = new Map<number, string>();
  const nameOf = (p: number): string => {
    let n = portNames.get(p);
    if (n === undefined) {
      n = names.portName(p);
      portNames.set(p, n);
    }
    return n;
  };
  let stopped = false;
  return {
    id,
    header: first.header,
    read(max = 1 << 16): CaptureChunk {
      const r = stopped ? undefined : engine.captureRead(id, max);
      if (r === undefined) throw makeError('ERR_NOT_FOUND', `capture ${id}: not running`);
      const frames = Array.from(r.ports, (p, i) => ({ port: nameOf(p), direction: r.dirs[i] === 1 ? ('in' as const) : ('out' as const) }));
      return { pcap: r.pcap, frames, captured: r.captured, dropped: r.dropped, ended: r.ended };
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      try {
        await engine.captureStop(id);
      } catch (err) {
        throw mapNativeError(err, { op: 'capture' });
      }
    },
  };
}

// Port and switch ids in trace text ("port#3") become names; a drop line
// (the reason's name) gets the reason's help, whole (`dropHelp`: schema().drop).
export function traceResult(raw: NativeTraceRead, names: NameRegistry, dropHelp: ReadonlyMap<string, string> = new Map()): TraceResult {
  const port = (id: number): string => names.portName(id);
  const named = (t: string): string =>
    t.replace(/port#(\d+)/g, (_, d: string) => `port ${port(Number(d))}`).replace(/switch#(\d+)/g, (_, d: string) => `switch ${names.switchName(Number(d))}`);
  return {
    count: raw.count,
    ...(raw.portId < 0 ? {} : { port: port(raw.portId) }),
    records: raw.records.map((r) => ({
      port: port(r.portId),
      length: r.length,
      truncated: r.truncated,
      lines: r.lines.map((l) => {
        const help = l.stage === 'drop' ? dropHelp.get(l.text) : undefined;
        return { ns: l.ns, stage: l.stage as TraceLine['stage'], text: help === undefined ? named(l.text) : `${l.text}: ${help}` };
      }),
    })),
  };
}
