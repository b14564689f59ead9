// vpcctl status: the daemon, its engine and how many objects run.

import type { Command } from 'commander';
import type { CliContext } from './context';
import { keyValues } from './format';

export function registerStatus(program: Command, { ctx, print }: CliContext): void {
  program.command('status').description('daemon, engine and object counts').action(async (_o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const s = await client.call<Record<string, any>>('GET', '/v1/status');
    print(json, s, () => keyValues({
      vpcd: `${s.version} (pid ${s.pid}), up ${s.uptimeSeconds}s, API ${s.apiVersion}`,
      socket: s.socket,
      metrics: s.metrics ?? 'off',
      config: s.config ?? '(none)',
      state: `${s.stateFile} (generation ${s.stateGeneration})`,
      engine: `${s.engine.running ? 'running' : 'stopped'}, ${s.engine.bufferCount} buffers (${s.engine.buffersFree} free), hugepages ${s.engine.hugepages ? 'yes' : 'no'}, maxPorts ${s.engine.options.maxPorts}`,
      'link watch': s.engine.linkWatch ? `${s.engine.linkWatch.mode}${s.engine.linkWatch.why ? ` (${s.engine.linkWatch.why})` : ''}` : 'unknown',
      objects: objectCounts(s.counts),
    }));
  });
}

// Configured objects; with a bgp section, what EVPN routes added (flood-list
// peers from type-3 routes, remote MACs from type-2).
export function objectCounts(c: { switches: number; ports: number; uplinks?: number; peers?: number; fdb: number; evpnPeers?: number; evpnMacs?: number }): string {
  const plus = (n: number | undefined): string => (n === undefined ? '' : ` (+${n} from EVPN)`);
  return `${c.switches} switches, ${c.ports} ports, ${c.uplinks ?? 0} uplink(s), ${c.peers ?? 0} peers${plus(c.evpnPeers)}, ${c.fdb} static fdb entries${plus(c.evpnMacs)}`;
}
