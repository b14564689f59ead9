// vpcctl uplink: the VXLAN uplink (this host's VTEP on the underlay), and
// vpcctl neighbors: its neighbour cache.

import type { Command } from 'commander';
import { VXLAN_OVERHEAD } from '../../dataplane/overlay';
import { LIMITS } from '../../dataplane/validate';
import type { CliContext } from './context';
import { keyValues, planText, table, warningText } from './format';
import { collect, defined, int, keyValue } from './parse';
import { withBackend } from './port';

function neighborTable(list: Record<string, any>[]): string {
  return list.length === 0 ? '(no neighbours)\n'
    : table(['IP', 'MAC', 'STATE', 'AGE'], list.map((n) => [n.ip, n.mac || '-', n.state, `${Math.round(n.ageSeconds)}s`]));
}

export function registerUplink(program: Command, { ctx, print }: CliContext): void {
  const uplink = program.command('uplink').description('the VXLAN uplink: this host\'s VTEP on the underlay (at most one)');
  uplink.command('list').description('list the uplink').action(async (_o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<{ uplinks: Record<string, any>[] }>('GET', '/v1/uplinks');
    print(json, r, () => table(['NAME', 'TYPE', 'INTERFACE', 'LOCAL-IP', 'LOCAL-IP6', 'MTU', 'MAC', 'UDP', 'UUID'],
      r.uplinks.map((u) => [u.name, u.type, u.interface ?? '-', u.localIp ?? '-', u.localIp6 ?? '-', u.mtu ?? '-', u.mac ?? '-', u.udpPort ?? 4789, u.uuid])));
  });
  uplink.command('show <ref>').description('the uplink, by name or UUID, with its neighbour cache').action(async (ref: string, _o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<{ uplink: Record<string, unknown>; neighbors: Record<string, any>[] }>('GET', `/v1/uplinks/${encodeURIComponent(ref)}`);
    print(json, r, () => {
      const { backend, warnings, ...spec } = r.uplink as { backend?: Record<string, unknown>; warnings?: string[] };
      return `${backend === undefined ? keyValues(spec) : withBackend(spec, backend)}\nneighbours:\n${neighborTable(r.neighbors)}${warningText(warnings)}`;
    });
  });
  uplink.command('create <name>').description('create the uplink (succeeds if it exists with the same spec)')
    .requiredOption('--type <type>', 'underlay port type: afpacket (an interface), pipe (tests), tap, ...')
    .option('--interface <ifname>', 'the underlay interface (afpacket, tap, ...)')
    .option('--local-ip <cidr>', 'IPv4 VTEP address with prefix, e.g. 198.18.0.1/24')
    .option('--local-ip6 <cidr>', 'IPv6 VTEP address with prefix, e.g. 2001:db8::1/64')
    .option('--gateway <ip>', 'IPv4 next hop for peers off the local prefix')
    .option('--gateway6 <ip>', 'IPv6 next hop for peers off the local prefix')
    .option('--mtu <n>', 'underlay MTU (118..9000; 1280.. with --local-ip6)', int('mtu', 68 + VXLAN_OVERHEAD.ipv4, LIMITS.mtuMax))
    .option('--mac <mac>', 'the VTEP\'s MAC (pipe uplinks; kernel interfaces keep their own)')
    .option('--udp-port <n>', 'VXLAN UDP port (default 4789)', int('udp-port', 1, 65535))
    .option('--set <key=value>', 'any other uplink field (JSON value), repeatable; e.g. --set ttl=32', collect(keyValue))
    .option('--uuid <uuid>', 'UUID to give the uplink (default: generated)')
    .action(async (name: string, o: Record<string, any>, cmd: Command) => {
      const { client, json } = ctx(cmd);
      const body = defined({
        name, type: o.type, interface: o.interface, localIp: o.localIp, localIp6: o.localIp6, gateway: o.gateway, gateway6: o.gateway6,
        mtu: o.mtu, mac: o.mac, udpPort: o.udpPort, uuid: o.uuid, ...Object.fromEntries((o.set ?? []) as [string, unknown][]),
      });
      const r = await client.call<Record<string, any>>('POST', '/v1/uplinks', body);
      const u = r.uplink;
      print(json, r, () => `${r.created ? 'created' : 'exists (same spec)'}: uplink ${u.name} (${u.type}${u.interface ? ` ${u.interface}` : ''}, ${[u.localIp, u.localIp6].filter(Boolean).join(' ')}) mac ${u.mac} uuid ${u.uuid}\n${warningText(r.warnings)}`);
    });
  uplink.command('delete <ref>').description('delete the uplink (its peers and remote FDB entries must be deleted first)').action(async (ref: string, _o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<Record<string, any>>('DELETE', `/v1/uplinks/${encodeURIComponent(ref)}`);
    print(json, r, () => `deleted: uplink ${r.deleted.name} (uuid ${r.deleted.uuid})\n${planText(r.plan)}${warningText(r.warnings)}`);
  });
  program.command('neighbors').alias('neighbours').description('the uplink\'s neighbour cache (next hops resolved by ARP/ND)').action(async (_o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<{ uplink: string | null; neighbors: Record<string, any>[] }>('GET', '/v1/neighbors');
    print(json, r, () => (r.uplink === null ? 'no uplink\n' : neighborTable(r.neighbors)));
  });
}
