// vpcctl port: ports (VM NICs, host interfaces, pipes; access or trunk).

import type { Command } from 'commander';
import { CliContext, CliError, EXIT } from './context';
import { keyValues, planText, portWhere, table, warningText } from './format';
import { bool, collect, defined, int, keyValue, updateBody, vlanMapping } from './parse';
import { LIMITS } from '../../dataplane/validate';
import { SPEC_LIMITS } from '../../dataplane/specs';
import type { VhostUserStatus } from '../../dataplane';
import { formatVhost } from './vhost';

// A kernel-facing port's (or the uplink's) spec, then what its backend
// opened and counted (a vhost-user port: its device).
export function withBackend(port: Record<string, unknown>, backend: Record<string, unknown>): string {
  const { counters, vhost, ...live } = backend;
  // 0 in the spec means the backend's default: say so, and which it chose.
  const spec: Record<string, unknown> = { ...port };
  for (const k of ['rxRing', 'txRing', 'burst']) if (spec[k] === 0) spec[k] = live[k] === undefined ? 'default' : `default (${String(live[k])})`;
  // A vhost-user port counts per virtqueue (under its device); the kernel
  // ports' backend counters are not its own and stay 0, so they are left out.
  if (vhost !== undefined) return `${keyValues(spec)}\nbackend:\n${keyValues(live)}\nvhost-user device:\n${formatVhost(vhost as VhostUserStatus)}`;
  return `${keyValues(spec)}\nbackend:\n${keyValues(live)}\nbackend counters:\n${keyValues(counters as Record<string, unknown>)}`;
}

export function registerPort(program: Command, { ctx, print }: CliContext): void {
  const port = program.command('port').description('ports (VM NICs, host interfaces, pipes; access or trunk)');
  port.command('list').description('list ports').action(async (_o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<{ ports: Record<string, any>[] }>('GET', '/v1/ports');
    print(json, r, () => table(['NAME', 'TYPE', 'MODE', 'SWITCH', 'LINK', 'MTU', 'MAC', 'UUID'],
      r.ports.map((p) => [p.name, p.type, p.mode ?? '-', portWhere(p) || '-', p.link ?? '-', p.mtu ?? '-', p.mac ?? '-', p.uuid])));
  });
  port.command('show <ref>').description('one port, by name or UUID').action(async (ref: string, _o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<{ port: Record<string, unknown> }>('GET', `/v1/ports/${encodeURIComponent(ref)}`);
    print(json, r, () => {
      const { backend, warnings, ...port } = r.port as { backend?: Record<string, unknown>; warnings?: string[] };
      return `${backend === undefined ? keyValues(port) : withBackend(port, backend)}${warningText(warnings)}`;
    });
  });
  port.command('create <name>').description('create a port (succeeds if it exists with the same spec)')
    .requiredOption('--type <type>', 'port type (see docs/configuration.md; e.g. pipe, tap, afpacket)')
    .option('--switch <name>', 'access port of this switch')
    .option('--interface <ifname>', 'the kernel interface (afpacket, afxdp, tap, netmap)')
    .option('--vhost-socket <path>', "vhostuser: the port's socket, field socket (absolute path; --socket is vpcctl's own)")
    .option('--vlan <vlan=switch>', 'trunk: VLAN mapping, repeatable', collect(vlanMapping))
    .option('--untagged <switch>', 'trunk: native (untagged) switch')
    .option('--mtu <n>', 'L3 MTU', int('mtu', LIMITS.mtuMin, LIMITS.mtuMax))
    .option('--mac <mac>', 'the port\'s MAC (default: random, kept across restarts)')
    .option('--learning <bool>', 'learn source MACs', bool)
    .option('--flood <bool>', 'receive unknown-unicast/multicast floods', bool)
    .option('--mac-limit <n>', 'learned MACs on this port (0: no limit)', int('mac-limit', LIMITS.portMacLimitMin, LIMITS.portMacLimitMax))
    .option('--locked-mac <mac>', 'port security: allowed source MAC, repeatable', collect((v) => v))
    .option('--ring-size <n>', 'ring size (power of two)', int('ring-size', ...SPEC_LIMITS.ringSize))
    .option('--set <key=value>', 'any other port field (JSON value), repeatable; e.g. --set queues=2', collect(keyValue))
    .option('--uuid <uuid>', 'UUID to give the port (default: generated)')
    .action(async (name: string, o: Record<string, any>, cmd: Command) => {
      const { client, json } = ctx(cmd);
      const body = defined({
        name, type: o.type, switch: o.switch, interface: o.interface, socket: o.vhostSocket, vlans: o.vlan, untagged: o.untagged, mtu: o.mtu, mac: o.mac, learning: o.learning,
        flood: o.flood, macLimit: o.macLimit, lockedMacs: o.lockedMac, ringSize: o.ringSize, uuid: o.uuid,
      });
      // --set adds the fields that have no option of their own; one that
      // repeats an option (or the name) would silently win over it.
      for (const [k, v] of (o.set ?? []) as [string, unknown][]) {
        if (k === 'name') throw new CliError(EXIT.USAGE, `--set name: the name is the argument (port create ${name} ...)`);
        if (k in body) throw new CliError(EXIT.USAGE, `--set ${k}: ${k} is given twice (an option sets it already); give it once`);
        body[k] = v;
      }
      const r = await client.call<Record<string, any>>('POST', '/v1/ports', body);
      print(json, r, () => `${r.created ? 'created' : 'exists (same spec)'}: port ${r.port.name} (${r.port.type}, ${portWhere(r.port)}) mac ${r.port.mac} uuid ${r.port.uuid}\n${warningText(r.warnings)}`);
    });
  port.command('update <ref>').description('change a running port\'s mutable fields')
    .option('--mtu <n>', 'L3 MTU', int('mtu', LIMITS.mtuMin, LIMITS.mtuMax))
    .option('--learning <bool>', 'learn source MACs', bool)
    .option('--flood <bool>', 'receive floods', bool)
    .option('--mac-limit <n>', 'learned MACs on this port (0: no limit)', int('mac-limit', LIMITS.portMacLimitMin, LIMITS.portMacLimitMax))
    .option('--locked-mac <mac>', 'port security list (replaces the list), repeatable', collect((v) => v))
    .option('--unlock', 'clear the port security list')
    .action(async (ref: string, o: Record<string, any>, cmd: Command) => {
      const { client, json } = ctx(cmd);
      if (o.unlock && o.lockedMac !== undefined) throw new CliError(EXIT.USAGE, 'port update: --locked-mac and --unlock contradict each other; give one');
      const body = updateBody({ mtu: o.mtu, learning: o.learning, flood: o.flood, macLimit: o.macLimit, lockedMacs: o.unlock ? [] : o.lockedMac }, 'port update',
        ['--mtu', '--learning', '--flood', '--mac-limit', '--locked-mac', '--unlock']);
      const r = await client.call<Record<string, any>>('PATCH', `/v1/ports/${encodeURIComponent(ref)}`, body);
      print(json, r, () => (r.plan.length === 0 ? `no change: port ${r.port.name} already has these settings\n` : `updated: port ${r.port.name}\n${planText(r.plan)}`) + warningText(r.warnings));
    });
  port.command('delete <ref>').description('delete a port (and its static FDB entries)').action(async (ref: string, _o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<Record<string, any>>('DELETE', `/v1/ports/${encodeURIComponent(ref)}`);
    print(json, r, () => `deleted: port ${r.deleted.name} (uuid ${r.deleted.uuid})\n${planText(r.plan)}${warningText(r.warnings)}`);
  });
}
