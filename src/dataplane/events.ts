// Event conversion: the engine's events (NativeEvent, ids) become the API's
// (DataplaneEvent, names). Ids are named by the registry, deleted objects
// included, so a late event still names what it was about.

import type { NativeEvent } from './native';
import type { NameRegistry } from './registry';
import type { DataplaneEvent, TableFullEvent } from './types';

// The batch's events the API knows, in order (unknown types are left out).
export function convertEvents(batch: NativeEvent[], names: NameRegistry): DataplaneEvent[] {
  const events: DataplaneEvent[] = [];
  for (const e of batch) {
    const converted = convertEvent(e, names);
    if (converted !== undefined) events.push(converted);
  }
  return events;
}

function convertEvent(e: NativeEvent, names: NameRegistry): DataplaneEvent | undefined {
  const ev = convertEventBody(e, names);
  if (ev !== undefined && ev.type !== 'link' && e.vtep) {
    // MACs behind a remote VTEP: the port is the uplink they came through.
    (ev as { vtep?: string }).vtep = e.vtep;
    if ('port' in ev) ev.port = names.remotePortName();
  }
  if (ev?.type === 'moved' && e.oldVtep) {
    ev.oldVtep = e.oldVtep;
    ev.oldPort = names.remotePortName();
  }
  return ev;
}

function convertEventBody(e: NativeEvent, names: NameRegistry): DataplaneEvent | undefined {
  switch (e.type) {
    case 'learned':
      return { type: 'learned', switch: names.switchName(e.switchId), port: names.portName(e.portId), vlan: e.vlan, mac: e.mac };
    case 'moved':
      return {
        type: 'moved',
        switch: names.switchName(e.switchId),
        port: names.portName(e.portId),
        oldPort: names.portName(e.oldPortId),
        vlan: e.vlan,
        oldVlan: e.oldVlan,
        mac: e.mac,
      };
    case 'aged':
      return { type: 'aged', switch: names.switchName(e.switchId), port: names.portName(e.portId), vlan: e.vlan, mac: e.mac };
    case 'table_full': {
      const ev: TableFullEvent = { type: 'table_full', switch: names.switchName(e.switchId), mac: e.mac };
      if (e.portId >= 0) ev.port = names.portName(e.portId);
      return ev;
    }
    case 'port_limit':
      return { type: 'port_limit', switch: names.switchName(e.switchId), port: names.portName(e.portId), vlan: e.vlan, mac: e.mac };
    case 'link':
      return { type: 'link', port: names.portName(e.portId), up: e.up };
    default:
      return undefined;
  }
}
