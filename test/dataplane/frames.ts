// Test helper: builds and parses Ethernet frames (optionally 802.1Q tagged).
// Not a test file itself; the tests import it.

export const BROADCAST = 'ff:ff:ff:ff:ff:ff';
export const ETH_MIN = 60; // minimum frame without FCS
export const TPID_8021Q = 0x8100;
export const ETHERTYPE_TEST = 0x88b5; // IEEE 802 local experimental ethertype

// Locally administered unicast MAC 02:00:00:00:hi:lo for test host `n`.
export function mac(n: number): string {
  return `02:00:00:00:${((n >> 8) & 0xff).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`;
}

export function macBytes(text: string): Buffer {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6) throw new Error(`bad MAC ${text}`);
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

export function macText(bytes: Buffer, offset = 0): string {
  return Array.from(bytes.subarray(offset, offset + 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}

export interface FrameSpec {
  dst: string;
  src: string;
  ethertype?: number; // default ETHERTYPE_TEST
  payload?: Buffer | string;
  vlan?: number; // adds an 802.1Q tag (PCP 0, DEI 0)
}

// The untagged frame is padded with zeros to 60 bytes; a tag then adds 4, so
// removing the tag again gives exactly the untagged frame.
export function frame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload) : spec.payload ?? Buffer.alloc(0);
  const type = Buffer.alloc(2);
  type.writeUInt16BE(spec.ethertype ?? ETHERTYPE_TEST);
  let untagged = Buffer.concat([macBytes(spec.dst), macBytes(spec.src), type, payload]);
  if (untagged.length < ETH_MIN) untagged = Buffer.concat([untagged, Buffer.alloc(ETH_MIN - untagged.length)]);
  if (spec.vlan === undefined) return untagged;
  const tag = Buffer.alloc(4);
  tag.writeUInt16BE(TPID_8021Q, 0);
  tag.writeUInt16BE(spec.vlan & 0x0fff, 2);
  return Buffer.concat([untagged.subarray(0, 12), tag, untagged.subarray(12)]);
}

export interface ParsedFrame {
  dst: string;
  src: string;
  vlan?: number;
  pcp?: number;
  ethertype: number;
  payload: Buffer;
}

export function parseFrame(buf: Buffer): ParsedFrame {
  const dst = macText(buf, 0);
  const src = macText(buf, 6);
  const outer = buf.readUInt16BE(12);
  if (outer === TPID_8021Q) {
    const tci = buf.readUInt16BE(14);
    return { dst, src, vlan: tci & 0x0fff, pcp: tci >> 13, ethertype: buf.readUInt16BE(16), payload: buf.subarray(18) };
  }
  return { dst, src, ethertype: outer, payload: buf.subarray(14) };
}
