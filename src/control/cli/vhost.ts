// How `vpcctl port show` (cli/port.ts) prints a vhost-user port's device (the `vhost`
// object of its backend status): the connection and negotiated features as
// key/value lines, one line per virtqueue, one per memory region.

import type { VhostUserStatus } from '../../dataplane';

function nonZero(rec: Record<string, number>): string {
  const parts = Object.entries(rec).filter(([, v]) => v !== 0).map(([k, v]) => `${k}=${v}`);
  return parts.length === 0 ? '-' : parts.join(' ');
}

export function formatVhost(v: VhostUserStatus): string {
  const lines = [
    `socket            ${v.socket} (${v.mode})`,
    `connected         ${v.connected} (connects ${v.connects}, disconnects ${v.disconnects}, messages ${v.messages}, refused ${v.refused})`,
    `dropped           ${nonZero(v.connectionDrops)} (watcher errors ${v.watcherErrors})`,
    `features          ${v.features} ${v.featureNames}`,
    `protocolFeatures  ${v.protocolFeatures}`,
    `deviceStatus      ${v.deviceStatus}`,
    `maxQueuePairs     ${v.maxQueuePairs}`,
    'queues:',
    ...v.queues.map((q) => {
      const state = q.broken ? 'BROKEN' : q.ready ? 'ready' : q.size === 0 ? 'unset' : q.enabled ? 'started' : 'disabled';
      const err = q.lastError === '' ? '' : `  error: ${q.lastError}`;
      return `  ${String(q.index).padStart(2)} ${q.role.padEnd(8)} size ${String(q.size).padEnd(5)} ${state.padEnd(8)} avail ${q.lastAvail} used ${q.usedIdx}  ${nonZero(q.counters)}  drops: ${nonZero(q.drops)}${err}`;
    }),
    'regions:',
    ...(v.regions.length === 0 ? ['  (none mapped)'] : v.regions.map((r) => `  gpa ${r.guestPhysical} size ${r.size} frontend ${r.frontendVirtual}`)),
  ];
  return `${lines.join('\n')}\n`;
}
