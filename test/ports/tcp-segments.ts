// What tshark sees of a TCP sender's segments in a capture: each data
// segment's length, stream, raw sequence number and checksum verdicts, and
// whether the sequence numbers are contiguous. Shared by the tests that
// check how a TSO super-frame was cut (test/ports/offload.test.ts: by the
// kernel behind an AF_XDP port; test/overlay/overlay.test.ts: by this switch
// before VXLAN encapsulation).

import { run } from './lab';

// One field row of tshark's output per frame.
export interface Seg {
  len: number; // the captured frame's length (outer headers included)
  stream: number;
  seq: number;
  tcpLen: number;
  tcpCsum: number; // 1 = good, 0 = bad, 2 = unverified
  ipCsum: number; // the innermost IPv4 header's (1 when there is none: IPv6)
}

// The sender's data segments (tcp.len > 0) in the capture, checksums
// verified. Inside VXLAN the innermost IP and TCP headers are the ones read
// (tshark decodes port 4789 as VXLAN; -E occurrence=l takes the last).
export function segmentsIn(file: string, src: string): Seg[] {
  const ipField = src.includes(':') ? 'ipv6.src' : 'ip.src';
  const out = run('tshark', [
    '-r', file, '-n',
    '-o', 'tcp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.analyze_sequence_numbers:FALSE',
    '-Y', `${ipField} == ${src} && tcp.len > 0`,
    '-T', 'fields', '-E', 'separator=,', '-E', 'occurrence=l',
    '-e', 'frame.len', '-e', 'tcp.stream', '-e', 'tcp.seq_raw', '-e', 'tcp.len', '-e', 'tcp.checksum.status', '-e', 'ip.checksum.status',
  ], 60_000);
  return out.trim().split('\n').filter((l) => l.length > 0).map((l) => {
    const [len, stream, seq, tcpLen, tcpCsum, ipCsum] = l.split(',');
    return { len: Number(len), stream: Number(stream), seq: Number(seq), tcpLen: Number(tcpLen), tcpCsum: Number(tcpCsum), ipCsum: ipCsum === '' || ipCsum === undefined ? 1 : Number(ipCsum) };
  });
}

// Within each stream, every byte once: sorted by sequence number (modulo
// 2^32 from the first), each segment starts where the previous one ended.
// Retransmissions of the same bytes are counted, not gaps.
export function checkContiguous(segs: Seg[]): { streams: number; gaps: string[]; retransmitted: number } {
  const byStream = new Map<number, Seg[]>();
  for (const s of segs) byStream.set(s.stream, [...(byStream.get(s.stream) ?? []), s]);
  const gaps: string[] = [];
  let retransmitted = 0;
  for (const [stream, list] of byStream) {
    const base = list[0].seq;
    const rel = list.map((s) => ({ ...s, r: (s.seq - base + 2 ** 32) % 2 ** 32 })).sort((x, y) => x.r - y.r);
    let next = rel[0].r;
    for (const s of rel) {
      if (s.r + s.tcpLen <= next) {
        ++retransmitted;
        continue;
      }
      if (s.r !== next) gaps.push(`stream ${stream}: expected ${next}, got ${s.r} (+${s.tcpLen})`);
      next = s.r + s.tcpLen;
    }
  }
  return { streams: byStream.size, gaps, retransmitted };
}
