// vpcctl capture: frames of a port or a switch, as pcap (for tshark and
// Wireshark) or as one line a frame on a terminal.

import * as fs from 'node:fs';
import type { Command } from 'commander';
import { ApiError } from '../client';
import { CliContext, CliError, EXIT } from './context';
import { int } from './parse';

interface CaptureOptions {
  direction: string;
  count?: number;
  seconds?: number;
  snaplen?: number;
  write?: string;
}

const ETHERTYPES: Record<number, string> = { 0x0800: 'IPv4', 0x0806: 'ARP', 0x86dd: 'IPv6', 0x8100: '802.1Q' };

function macOf(b: Buffer, off: number): string {
  return [...b.subarray(off, off + 6)].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

// One line for a frame (the terminal view; tshark decodes the pcap fully).
export function frameLine(f: { time: string; port: string; direction: string; length: number; data: string }): string {
  const b = Buffer.from(f.data, 'hex');
  const time = f.time.slice(11, 26);
  if (b.length < 14) return `${time} ${f.port} ${f.direction.padEnd(3)} ${f.length} bytes (runt)\n`;
  let type = b.readUInt16BE(12);
  let vlan = '';
  if (type === 0x8100 && b.length >= 18) {
    vlan = ` vlan ${b.readUInt16BE(14) & 0x0fff}`;
    type = b.readUInt16BE(16);
  }
  const name = ETHERTYPES[type] ?? `0x${type.toString(16).padStart(4, '0')}`;
  return `${time} ${f.port} ${f.direction.padEnd(3)} ${macOf(b, 6)} > ${macOf(b, 0)}${vlan} ${name}, ${f.length} bytes\n`;
}

export function registerCapture(program: Command, { io, ctx }: CliContext): void {
  program.command('capture <target>')
    .description('capture the frames of a port (the uplink: with VXLAN outer headers) or of a switch; target: NAME, port:NAME or switch:NAME')
    .option('-d, --direction <dir>', 'in, out or both', 'both')
    .option('-c, --count <n>', 'stop after n frames', int('count', 1, 1e12))
    .option('--seconds <s>', 'stop after s seconds', int('seconds', 1, 31536000))
    .option('--snaplen <bytes>', 'bytes kept of each frame (1..65535, default 256)', int('snaplen', 1, 65535))
    .option('-w, --write <file>', 'write pcap to FILE (- for stdout, the default when stdout is not a terminal)')
    .action(async (target: string, o: CaptureOptions, cmd: Command) => {
      const { client } = ctx(cmd);
      if (!['in', 'out', 'both'].includes(o.direction)) throw new CliError(EXIT.USAGE, `--direction: must be in, out or both (got ${JSON.stringify(o.direction)})`);
      const pcap = o.write !== undefined || io.isTTY !== true;
      const toStdout = o.write === undefined || o.write === '-';
      if (pcap && toStdout && io.write === undefined) throw new CliError(EXIT.USAGE, 'pcap output needs a binary stdout: use -w FILE');
      const query = (kind: string, name: string): string => {
        const q = new URLSearchParams({ [kind]: name, direction: o.direction, format: pcap ? 'pcap' : 'json' });
        if (o.count !== undefined) q.set('count', String(o.count));
        if (o.seconds !== undefined) q.set('seconds', String(o.seconds));
        if (o.snaplen !== undefined) q.set('snaplen', String(o.snaplen));
        return `/v1/capture?${q.toString()}`;
      };
      const m = /^(port|switch):(.+)$/.exec(target);
      let file: number | undefined;
      try {
        file = pcap && !toStdout ? fs.openSync(o.write!, 'w') : undefined;
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        const why = e.code === 'ENOENT' ? 'its directory does not exist' : e.code === 'EISDIR' ? 'it is a directory' : e.code === 'EACCES' ? 'permission denied' : e.message;
        throw new CliError(EXIT.USAGE, `capture: cannot write ${o.write}: ${why}`);
      }
      const abort = new AbortController();
      // Ctrl-C, or a reader that went away (`| tshark -c 2`), ends the capture
      // from this side: vpcd then removes the engine's capture.
      const stopInterrupt = io.onInterrupt?.(() => abort.abort()) ?? (() => undefined);
      const stopOutput = io.onOutputClosed?.(() => abort.abort()) ?? (() => undefined);
      const stopListening = (): void => {
        stopInterrupt();
        stopOutput();
      };
      let pending = '';
      let totals = { captured: 0, dropped: 0 };
      const onData = (chunk: Buffer): void => {
        if (pcap) {
          if (file !== undefined) fs.writeSync(file, chunk);
          else io.write!(chunk);
          return;
        }
        pending += chunk.toString('utf8');
        const lines = pending.split('\n');
        pending = lines.pop()!;
        for (const l of lines) {
          if (l === '') continue;
          const f = JSON.parse(l) as Record<string, any>;
          if (f.end === true) totals = { captured: f.captured, dropped: f.dropped };
          else io.out(frameLine(f as any));
        }
      };
      try {
        let trailers: Record<string, string | undefined>;
        try {
          trailers = await client.stream(query(m?.[1] ?? 'port', m?.[2] ?? target), onData, abort.signal);
        } catch (err) {
          // A bare NAME that is no port may be a switch.
          if (m !== null || !(err instanceof ApiError) || err.code !== 'ERR_UNKNOWN_PORT') throw err;
          try {
            trailers = await client.stream(query('switch', target), onData, abort.signal);
          } catch (err2) {
            if (!(err2 instanceof ApiError) || err2.code !== 'ERR_UNKNOWN_SWITCH') throw err2;
            throw new CliError(EXIT.NOT_FOUND, `capture: no port or switch named "${target}" (vpcctl port list, vpcctl switch list) [ERR_NOT_FOUND]`);
          }
        }
        if (pcap && trailers['vpc-captured'] !== undefined) {
          totals = { captured: Number(trailers['vpc-captured']), dropped: Number(trailers['vpc-dropped'] ?? 0) };
        }
      } finally {
        stopListening();
        if (file !== undefined) fs.closeSync(file);
      }
      const lost = totals.dropped > 0 ? `, ${totals.dropped} not captured (the capture ring was full: vpcctl fell behind)` : '';
      if (!abort.signal.aborted) io.err(`${totals.captured} frames captured${lost}\n`);
    });
}
