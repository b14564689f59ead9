// Stats decoding: the engine's flat counter tables (NativeStats) become
// counters by object name (DataplaneStats), and its counter schema a copy the
// caller may keep.

import type { NativeSchema, NativeStats } from './native';
import type { NameRegistry } from './registry';
import type { DataplaneSchema, DataplaneStats } from './types';

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
    uplink: s.uplink.map(copyInfo),
    backend: (s.backend ?? []).map(copyInfo),
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
    if (name !== undefined) out.switches[name] = { counters: tableRow(sws.counters, r, names.switch), drops: tableRow(sws.drops, r, names.drop) };
  }
  for (const peer of raw.peers) out.peers[peer.ip] = { ...peer.counters };
  const uplink = registry.uplink;
  if (raw.uplink !== undefined && uplink !== undefined) {
    out.uplink = { name: uplink.spec.name, counters: { ...raw.uplink.counters } };
  }
  for (const b of raw.backend ?? []) {
    const name = registry.livePortName(b.portId);
    const set = name === undefined ? undefined : out.ports[name];
    if (set !== undefined) set.backend = { ...b.counters };
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

function copyInfo(c: { name: string; help: string }): { name: string; help: string } {
  return { name: c.name, help: c.help };
}
