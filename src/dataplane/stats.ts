// Stats decoding: the engine's flat counter tables (NativeStats) become
// counters by object name (DataplaneStats), and its counter schema a copy the
// caller may keep.

import type { NativeSchema, NativeStats } from './native';
import type { NameRegistry } from './registry';
import type { CounterInfo, DataplaneSchema, DataplaneStats } from './types';

// The counter names of the schema, in table order.
export interface CounterNames {
  engine: string[];
  port: string[];
  switch: string[];
  drop: string[];
}

export function counterNamesOf(s: DataplaneSchema): CounterNames {
  return { engine: s.engine.map((c) => c.name), port: s.port.map((c) => c.name), switch: s.switch.map((c) => c.name), drop: s.drop.map((c) => c.name) };
}

// A deep copy of a schema (the engine's, or one handed out before).
export function copySchema(s: NativeSchema | DataplaneSchema): DataplaneSchema {
  return {
    engine: s.engine.map(copyInfo),
    port: s.port.map(copyInfo),
    switch: s.switch.map(copyInfo),
    drop: s.drop.map(copyInfo),
    peer: s.peer.map(copyInfo),
    switchPeer: (s.switchPeer ?? []).map(copyInfo),
    uplink: s.uplink.map(copyInfo),
    backend: (s.backend ?? []).map(copyInfo),
    virtq: (s.virtq ?? []).map(copyInfo),
    virtqDrop: (s.virtqDrop ?? []).map(copyInfo),
  };
}

// Counters by object name. Every engine counter of `names` is present (0 when
// the engine did not report it); rows of ids the registry does not know (an
// object deleted meanwhile) are left out.
export function decodeStats(raw: NativeStats, names: CounterNames, registry: NameRegistry): DataplaneStats {
  const out: DataplaneStats = { engine: {}, eventsDropped: raw.eventsDropped, ports: {}, switches: {}, peers: {} };
  for (const name of names.engine) out.engine[name] = 0;
  Object.assign(out.engine, raw.engine);
  const ports = raw.ports;
  for (let r = 0; r < ports.ids.length; r++) {
    // The uplink is a port too: its drops by reason are the decap checks.
    const name = registry.livePortName(ports.ids[r]!);
    if (name !== undefined) out.ports[name] = { counters: tableRow(ports.counters, r, names.port), drops: tableRow(ports.drops, r, names.drop) };
  }
  const sws = raw.switches;
  for (let r = 0; r < sws.ids.length; r++) {
    const name = registry.liveSwitchName(sws.ids[r]!);
    if (name !== undefined) out.switches[name] = { counters: tableRow(sws.counters, r, names.switch), drops: tableRow(sws.drops, r, names.drop), peers: {} };
  }
  const peerIps = new Map<number, string>();
  for (const peer of raw.peers) {
    out.peers[peer.ip] = { ...peer.counters };
    peerIps.set(peer.id, peer.ip);
  }
  // Per switch and peer: the switch's traffic with each remote VTEP.
  for (const sp of raw.switchPeers ?? []) {
    const name = registry.liveSwitchName(sp.switchId);
    const ip = peerIps.get(sp.peerId);
    if (name !== undefined && ip !== undefined && out.switches[name] !== undefined) out.switches[name]!.peers[ip] = { ...sp.counters };
  }
  const uplink = registry.uplink;
  if (raw.uplink !== undefined && uplink !== undefined) {
    out.uplink = { name: uplink.spec.name, counters: { ...raw.uplink.counters } };
  }
  for (const b of raw.backend ?? []) {
    const name = registry.livePortName(b.portId);
    const set = name === undefined ? undefined : out.ports[name];
    if (set !== undefined) set.backend = { ...b.counters };
    if (set !== undefined && b.queues !== undefined) set.queues = b.queues.map((q) => ({ queue: q.queue, counters: { ...q.counters }, drops: { ...q.drops } }));
  }
  return out;
}

// Row r of a counter table (NativeCounterTable) as name -> value. The rows
// of one kind are built by one object literal made for its names, so they
// share one shape and stay fast to read (the metrics renderer reads tens of
// thousands of them per scrape). The names are the engine's own counter
// identifiers, quoted with JSON.stringify.
type RowReader = (table: Float64Array, base: number) => Record<string, number>;
const rowReaders = new WeakMap<string[], RowReader>();
function tableRow(table: Float64Array, r: number, names: string[]): Record<string, number> {
  let read = rowReaders.get(names);
  if (read === undefined) {
    const fields = names.map((n, k) => `${JSON.stringify(n)}: t[b + ${k}]`).join(', ');
    read = new Function('t', 'b', `return { ${fields} };`) as RowReader;
    rowReaders.set(names, read);
  }
  return read(table, r * names.length);
}

function copyInfo(c: CounterInfo): CounterInfo {
  return { name: c.name, kind: c.kind, help: c.help };
}
