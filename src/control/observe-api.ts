// The control API's capture stream (docs/api.md "Capture and trace").
//
//   GET    /v1/capture?port=P|switch=S[&direction=in|out|both][&count=N][&seconds=S]
//                     [&snaplen=B][&format=pcap|json]
//          streams the capture: a pcap file (application/vnd.tcpdump.pcap),
//          or one JSON object a line (application/x-ndjson). It ends after
//          `count` frames or `seconds`, or when the client goes away; the
//          engine's capture is removed then. Trailers (pcap) or the last line
//          (json) give the totals: captured, and dropped (ring full).
// The trace routes (POST, GET, DELETE /v1/trace) are in api.ts; they read
// their query with intParam() too.

import type * as http from 'node:http';
import type { Capture, CaptureSpec } from '../dataplane';
import type { Controller } from './controller';
import { ControlError } from './errors';

// How often the ring is drained while the client keeps up.
const POLL_MS = 20;

// An integer query parameter (undefined when absent); ERR_BAD_REQUEST naming it otherwise.
export function intParam(q: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) {
    throw new ControlError('ERR_BAD_REQUEST', `${name}: must be an integer in ${min}..${max} (got ${JSON.stringify(v.slice(0, 40))})`, { field: name });
  }
  return n;
}

// The records of a pcap chunk as [offset, end) pairs (16-byte header, then incl_len bytes).
export function pcapRecords(chunk: Buffer): [number, number][] {
  const out: [number, number][] = [];
  for (let off = 0; off + 16 <= chunk.length; ) {
    const end = off + 16 + chunk.readUInt32LE(off + 8);
    out.push([off, end]);
    off = end;
  }
  return out;
}

export function captureSpecOf(q: URLSearchParams): CaptureSpec {
  const port = q.get('port') ?? undefined;
  const sw = q.get('switch') ?? undefined;
  if ((port === undefined) === (sw === undefined)) {
    throw new ControlError('ERR_BAD_REQUEST', 'capture: give ?port= or ?switch= (exactly one)', { field: port === undefined ? 'port' : 'switch' });
  }
  const direction = q.get('direction') ?? 'both';
  if (direction !== 'in' && direction !== 'out' && direction !== 'both') {
    throw new ControlError('ERR_BAD_REQUEST', `direction: must be in, out or both (got ${JSON.stringify(direction.slice(0, 40))})`, { field: 'direction' });
  }
  const snaplen = intParam(q, 'snaplen', 1, 65535);
  return { ...(port === undefined ? {} : { port }), ...(sw === undefined ? {} : { switch: sw }), direction, ...(snaplen === undefined ? {} : { snaplen }) };
}

// Serves GET /v1/capture. Throws (before anything is written) when the
// request is invalid or the capture cannot start; otherwise it owns `res`.
export async function serveCapture(c: Controller, q: URLSearchParams, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const spec = captureSpecOf(q);
  const count = intParam(q, 'count', 1, 1e12);
  const seconds = intParam(q, 'seconds', 1, 86400 * 365);
  const format = q.get('format') ?? 'pcap';
  if (format !== 'pcap' && format !== 'json') {
    throw new ControlError('ERR_BAD_REQUEST', `format: must be pcap or json (got ${JSON.stringify(format.slice(0, 40))})`, { field: 'format' });
  }
  const cap: Capture = await c.dp.startCapture(spec);
  const pcap = format === 'pcap';
  res.writeHead(200, {
    'content-type': pcap ? 'application/vnd.tcpdump.pcap' : 'application/x-ndjson',
    'cache-control': 'no-store',
    ...(pcap ? { trailer: 'vpc-captured, vpc-dropped' } : {}),
  });
  if (pcap) res.write(cap.header);
  let sent = 0;
  let dropped = 0;
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  let deadline: NodeJS.Timeout | undefined;
  const finish = (): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    clearTimeout(deadline);
    // Whatever happens to the response, the engine's capture goes.
    void cap.stop().catch(() => undefined);
    if (res.writableEnded || res.destroyed) return;
    if (pcap) res.addTrailers({ 'vpc-captured': String(sent), 'vpc-dropped': String(dropped) });
    else res.write(`${JSON.stringify({ end: true, captured: sent, dropped })}\n`);
    res.end();
  };
  const pump = (): void => {
    if (done) return;
    const chunk = cap.read();
    dropped = chunk.dropped;
    let records = pcapRecords(chunk.pcap);
    if (count !== undefined && sent + records.length > count) records = records.slice(0, count - sent);
    let ok = true;
    if (records.length > 0) {
      if (pcap) {
        ok = res.write(chunk.pcap.subarray(0, records[records.length - 1]![1]));
      } else {
        const lines = records.map(([o, e], i) => {
          const sec = chunk.pcap.readUInt32LE(o);
          const usec = chunk.pcap.readUInt32LE(o + 4);
          return JSON.stringify({
            time: new Date(sec * 1000 + Math.floor(usec / 1000)).toISOString().replace('Z', `${String(usec % 1000).padStart(3, '0')}Z`),
            port: chunk.frames[i]!.port,
            direction: chunk.frames[i]!.direction,
            length: chunk.pcap.readUInt32LE(o + 12),
            data: chunk.pcap.subarray(o + 16, e).toString('hex'),
          });
        });
        ok = res.write(`${lines.join('\n')}\n`);
      }
      sent += records.length;
    }
    // Done: enough frames, or the port or switch was deleted and its ring is empty.
    if ((count !== undefined && sent >= count) || (chunk.ended && chunk.frames.length === 0)) {
      finish();
      return;
    }
    // A slow client: stop reading until it drains; the engine's ring then
    // fills and the engine drops (and counts) instead of waiting.
    if (ok) timer = setTimeout(pump, POLL_MS);
    else res.once('drain', () => { if (!done) timer = setTimeout(pump, POLL_MS); });
  };
  res.on('close', finish);
  req.on('close', () => { if (!res.writableEnded) finish(); });
  if (seconds !== undefined) deadline = setTimeout(() => { pump(); finish(); }, seconds * 1000);
  timer = setTimeout(pump, POLL_MS);
}
