// vpcctl: the command line client of vpcd's control API.
//
// createProgram() builds a fresh commander program (tests build one per
// case); runCli() runs one command line and returns the exit code, never
// calling process.exit itself. Output goes to `io` (stdout/stderr by default):
// human tables, or the API's JSON with --json.

import * as fs from 'node:fs';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { ApiError, Client, UnreachableError } from './client';
import { DEFAULT_SOCKET } from './daemon';
import { VERSION } from './version';
import { registerBgpCommands } from './cli/bgp';

// Exit codes of vpcctl, declared once (docs/operations.md lists them).
export const EXIT = {
  OK: 0,
  FAILURE: 1, // unexpected failure (a bug, or an answer vpcctl does not understand)
  USAGE: 2, // bad command line
  UNREACHABLE: 3, // the daemon is not running or the socket is not reachable
  INVALID: 4, // the daemon refused the request or config as invalid (HTTP 400)
  NOT_FOUND: 5, // no such object (HTTP 404)
  CONFLICT: 6, // conflicts with what runs, or a limit is reached (HTTP 409/422)
  DAEMON_ERROR: 7, // the daemon failed (HTTP 5xx), e.g. a rollback or the state file
} as const;

export function exitCodeForStatus(status: number): number {
  if (status === 400 || status === 405) return EXIT.INVALID;
  if (status === 404) return EXIT.NOT_FOUND;
  if (status === 409 || status === 422) return EXIT.CONFLICT;
  if (status >= 500) return EXIT.DAEMON_ERROR;
  return EXIT.FAILURE;
}

export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
  sleep?: (ms: number) => Promise<void>;
}

const defaultIO: CliIO = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

// ---------------------------------------------------------------- formatting

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => String(c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return `${cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n')}\n`;
}

function keyValues(obj: Record<string, unknown>): string {
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined);
  const w = Math.max(...keys.map((k) => k.length));
  return `${keys.map((k) => `${k.padEnd(w)}  ${typeof obj[k] === 'object' ? JSON.stringify(obj[k]) : String(obj[k])}`).join('\n')}\n`;
}

function portWhere(p: Record<string, unknown>): string {
  if (typeof p.switch === 'string') return p.switch;
  const parts: string[] = [];
  if (typeof p.untagged === 'string') parts.push(`untagged=${p.untagged}`);
  for (const m of (p.vlans ?? []) as { vlan: number; switch: string }[]) parts.push(`${m.vlan}=${m.switch}`);
  return parts.join(',');
}

function human(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

// ---------------------------------------------------------------- parsers

function int(name: string, min: number, max: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in ${min}..${max}`);
    return n;
  };
}

function bool(v: string): boolean {
  if (['true', 'on', 'yes', '1'].includes(v)) return true;
  if (['false', 'off', 'no', '0'].includes(v)) return false;
  throw new InvalidArgumentError('expected true or false');
}

function collect<T>(parse: (v: string) => T): (v: string, prev: T[] | undefined) => T[] {
  return (v, prev) => [...(prev ?? []), parse(v)];
}

function vlanMapping(v: string): { vlan: number; switch: string } {
  const m = /^(\d+)[=:](.+)$/.exec(v);
  if (m === null) throw new InvalidArgumentError('expected VLAN=SWITCH, e.g. 10=tenant-a');
  return { vlan: Number(m[1]), switch: m[2]! };
}

function keyValue(v: string): [string, unknown] {
  const i = v.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError('expected KEY=VALUE');
  const raw = v.slice(i + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    // a plain string
  }
  return [v.slice(0, i), value];
}

function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

// ---------------------------------------------------------------- program

export function createProgram(io: CliIO = defaultIO): Command {
  const program = new Command('vpcctl');
  program
    .description('control vpcd, the vpc-switch daemon')
    .version(VERSION)
    .option('-s, --socket <path>', 'vpcd control socket', process.env.VPCD_SOCKET ?? DEFAULT_SOCKET)
    .option('--json', 'print the API\'s JSON instead of tables', false)
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: io.out, writeErr: io.err });

  const ctx = (cmd: Command): { client: Client; json: boolean } => {
    const o = cmd.optsWithGlobals() as { socket: string; json: boolean };
    return { client: new Client(o.socket), json: o.json };
  };
  const print = (json: boolean, body: unknown, text: () => string): void => {
    io.out(json ? `${JSON.stringify(body, null, 2)}\n` : text());
  };
  const planText = (plan: string[]): string => (plan.length === 0 ? '' : `${plan.map((p) => `  ${p}`).join('\n')}\n`);

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
      objects: `${s.counts.switches} switches, ${s.counts.ports} ports, ${s.counts.uplinks ?? 0} uplink(s), ${s.counts.peers ?? 0} peers, ${s.counts.fdb} static fdb entries`,
    }));
  });

  // ------------------------------------------------------------ switch
  const sw = program.command('switch').description('switches (one broadcast domain = one VNI)');
  sw.command('list').description('list switches').action(async (_o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<{ switches: Record<string, any>[] }>('GET', '/v1/switches');
    print(json, r, () => table(['NAME', 'VNI', 'PORTS', 'MAC-LIMIT', 'AGING', 'LEARNING', 'REMOTE-LEARNING', 'UUID'],
      r.switches.map((s) => [s.name, s.vni, (s.ports ?? []).join(',') || '-', s.macLimit, `${s.agingSeconds}s`, s.learning ? 'on' : 'off', s.remoteLearning === false ? 'off' : 'on', s.uuid])));
  });
  sw.command('show <ref>').description('one switch, by name or UUID').action(async (ref: string, _o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<{ switch: Record<string, unknown> }>('GET', `/v1/switches/${encodeURIComponent(ref)}`);
    print(json, r, () => keyValues(r.switch));
  });
  sw.command('create <name>').description('create a switch (succeeds if it exists with the same spec)')
    .requiredOption('--vni <n>', 'VXLAN network identifier, 1..16777215', int('vni', 1, 16777215))
    .option('--mac-limit <n>', 'learned MACs allowed', int('mac-limit', 1, 1_000_000))
    .option('--aging-seconds <n>', 'learned entries expire after this idle time', int('aging-seconds', 1, 1_000_000))
    .option('--learning <bool>', 'learn source MACs', bool)
    .option('--remote-learning <bool>', 'learn MACs behind remote VTEPs (VXLAN)', bool)
    .option('--fdb-capacity <n>', 'initial FDB table size', int('fdb-capacity', 1, 4_194_304))
    .option('--uuid <uuid>', 'UUID to give the switch (default: generated)')
    .action(async (name: string, o: Record<string, unknown>, cmd: Command) => {
      const { client, json } = ctx(cmd);
      const body = defined({ name, vni: o.vni, macLimit: o.macLimit, agingSeconds: o.agingSeconds, learning: o.learning, remoteLearning: o.remoteLearning, fdbCapacity: o.fdbCapacity, uuid: o.uuid });
      const r = await client.call<Record<string, any>>('POST', '/v1/switches', body);
      print(json, r, () => `${r.created ? 'created' : 'exists (same spec)'}: switch ${r.switch.name} vni ${r.switch.vni} uuid ${r.switch.uuid}\n`);
    });
  sw.command('update <ref>').description('change a running switch\'s mutable fields')
    .option('--mac-limit <n>', 'learned MACs allowed', int('mac-limit', 1, 1_000_000))
    .option('--aging-seconds <n>', 'aging time', int('aging-seconds', 1, 1_000_000))
    .option('--learning <bool>', 'learn source MACs', bool)
    .option('--remote-learning <bool>', 'learn MACs behind remote VTEPs (VXLAN)', bool)
    .action(async (ref: string, o: Record<string, unknown>, cmd: Command) => {
      const { client, json } = ctx(cmd);
      const r = await client.call<Record<string, any>>('PATCH', `/v1/switches/${encodeURIComponent(ref)}`, defined({ macLimit: o.macLimit, agingSeconds: o.agingSeconds, learning: o.learning, remoteLearning: o.remoteLearning }));
      print(json, r, () => `updated: switch ${r.switch.name}\n${planText(r.plan)}`);
    });
  sw.command('delete <ref>').description('delete a switch (its ports must be deleted first)').action(async (ref: string, _o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<Record<string, any>>('DELETE', `/v1/switches/${encodeURIComponent(ref)}`);
    print(json, r, () => `deleted: switch ${r.deleted.name} (uuid ${r.deleted.uuid})\n${planText(r.plan)}`);
  });

  // ------------------------------------------------------------ port
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
      const { backend, ...port } = r.port as { backend?: Record<string, unknown> };
      if (backend === undefined) return keyValues(port);
      const { counters, ...live } = backend;
      return `${keyValues(port)}\nbackend:\n${keyValues(live)}\nbackend counters:\n${keyValues(counters as Record<string, unknown>)}`;
    });
  });
  port.command('create <name>').description('create a port (succeeds if it exists with the same spec)')
    .requiredOption('--type <type>', 'port type (see docs/configuration.md; e.g. pipe, tap, afpacket)')
    .option('--switch <name>', 'access port of this switch')
    .option('--vlan <vlan=switch>', 'trunk: VLAN mapping, repeatable', collect(vlanMapping))
    .option('--untagged <switch>', 'trunk: native (untagged) switch')
    .option('--mtu <n>', 'L3 MTU', int('mtu', 68, 9000))
    .option('--mac <mac>', 'the port\'s MAC (default: random, kept across restarts)')
    .option('--learning <bool>', 'learn source MACs', bool)
    .option('--flood <bool>', 'receive unknown-unicast/multicast floods', bool)
    .option('--mac-limit <n>', 'learned MACs on this port (0: none)', int('mac-limit', 0, 1_000_000))
    .option('--locked-mac <mac>', 'port security: allowed source MAC, repeatable', collect((v) => v))
    .option('--ring-size <n>', 'ring size (power of two)', int('ring-size', 16, 65536))
    .option('--set <key=value>', 'any other port field (JSON value), repeatable; e.g. --set interface=tap-vm1', collect(keyValue))
    .option('--uuid <uuid>', 'UUID to give the port (default: generated)')
    .action(async (name: string, o: Record<string, any>, cmd: Command) => {
      const { client, json } = ctx(cmd);
      const body = defined({
        name, type: o.type, switch: o.switch, vlans: o.vlan, untagged: o.untagged, mtu: o.mtu, mac: o.mac, learning: o.learning,
        flood: o.flood, macLimit: o.macLimit, lockedMacs: o.lockedMac, ringSize: o.ringSize, uuid: o.uuid,
        ...Object.fromEntries((o.set ?? []) as [string, unknown][]),
      });
      const r = await client.call<Record<string, any>>('POST', '/v1/ports', body);
      print(json, r, () => `${r.created ? 'created' : 'exists (same spec)'}: port ${r.port.name} (${r.port.type}, ${portWhere(r.port)}) mac ${r.port.mac} uuid ${r.port.uuid}\n`);
    });
  port.command('update <ref>').description('change a running port\'s mutable fields')
    .option('--mtu <n>', 'L3 MTU', int('mtu', 68, 9000))
    .option('--learning <bool>', 'learn source MACs', bool)
    .option('--flood <bool>', 'receive floods', bool)
    .option('--mac-limit <n>', 'learned MACs on this port (0: none)', int('mac-limit', 0, 1_000_000))
    .option('--locked-mac <mac>', 'port security list (replaces the list), repeatable', collect((v) => v))
    .option('--unlock', 'clear the port security list')
    .action(async (ref: string, o: Record<string, any>, cmd: Command) => {
      const { client, json } = ctx(cmd);
      const body = defined({ mtu: o.mtu, learning: o.learning, flood: o.flood, macLimit: o.macLimit, lockedMacs: o.unlock ? [] : o.lockedMac });
      const r = await client.call<Record<string, any>>('PATCH', `/v1/ports/${encodeURIComponent(ref)}`, body);
      print(json, r, () => `updated: port ${r.port.name}\n${planText(r.plan)}`);
    });
  port.command('delete <ref>').description('delete a port (and its static FDB entries)').action(async (ref: string, _o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<Record<string, any>>('DELETE', `/v1/ports/${encodeURIComponent(ref)}`);
    print(json, r, () => `deleted: port ${r.deleted.name} (uuid ${r.deleted.uuid})\n${planText(r.plan)}`);
  });

  // ------------------------------------------------------------ fdb
  const fdb = program.command('fdb').description('forwarding table: static entries and the live table');
  fdb.command('list [switch]').description('the live FDB of a switch (learned and static); --static: configured static entries')
    .option('--static', 'list the configured static entries (all switches unless one is given)')
    .action(async (swName: string | undefined, o: { static?: boolean }, cmd: Command) => {
      const { client, json } = ctx(cmd);
      if (o.static === true || swName === undefined) {
        const r = await client.call<{ fdb: Record<string, any>[] }>('GET', `/v1/fdb${swName === undefined ? '' : `?switch=${encodeURIComponent(swName)}`}`);
        print(json, r, () => table(['SWITCH', 'MAC', 'PORT', 'VTEP', 'UUID'], r.fdb.map((f) => [f.switch, f.mac, f.port ?? '-', f.vtep ?? '-', f.uuid])));
        return;
      }
      const r = await client.call<{ entries: Record<string, any>[] }>('GET', `/v1/switches/${encodeURIComponent(swName)}/fdb`);
      print(json, r, () => table(['MAC', 'PORT', 'VTEP', 'VLAN', 'TYPE', 'AGE'],
        r.entries.map((e) => [e.mac, e.port, e.vtep ?? '-', e.vlan || '-', e.static ? 'static' : 'learned', e.static ? '-' : `${Math.round(e.ageSeconds)}s`])));
    });
  fdb.command('create <switch> <mac> [port]').description('add a static entry: MAC -> port, or MAC -> remote VTEP with --vtep')
    .option('--vtep <ip>', 'the MAC lives behind this remote VTEP (instead of a port)')
    .option('--uuid <uuid>', 'UUID to give the entry')
    .action(async (swName: string, mac: string, portName: string | undefined, o: { uuid?: string; vtep?: string }, cmd: Command) => {
      const { client, json } = ctx(cmd);
      if ((portName === undefined) === (o.vtep === undefined)) throw new CliError(EXIT.USAGE, 'fdb create: give a port or --vtep IP (one of them)');
      const r = await client.call<Record<string, any>>('POST', '/v1/fdb', defined({ switch: swName, mac, port: portName, vtep: o.vtep, uuid: o.uuid }));
      print(json, r, () => `${r.created ? 'created' : 'exists (same spec)'}: fdb ${r.fdb.switch} ${r.fdb.mac} -> ${r.fdb.port ?? `vtep ${r.fdb.vtep}`} uuid ${r.fdb.uuid}\n`);
    });
  fdb.command('delete <switch> <mac>').description('remove a static entry').action(async (swName: string, mac: string, _o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<Record<string, any>>('DELETE', `/v1/fdb/${encodeURIComponent(swName)}/${encodeURIComponent(mac)}`);
    print(json, r, () => `deleted: fdb ${r.deleted.name} (uuid ${r.deleted.uuid})\n`);
  });
  fdb.command('flush <switch>').description('remove learned entries').option('--port <name>', 'only those learned on this port')
    .action(async (swName: string, o: { port?: string }, cmd: Command) => {
      const { client, json } = ctx(cmd);
      const r = await client.call<Record<string, any>>('POST', `/v1/switches/${encodeURIComponent(swName)}/fdb/flush`, defined({ port: o.port }));
      print(json, r, () => `flushed ${r.removed} learned entries from ${r.switch}\n`);
    });

  // ------------------------------------------------------------ uplink
  const neighborTable = (list: Record<string, any>[]): string => (list.length === 0 ? '(no neighbours)\n'
    : table(['IP', 'MAC', 'STATE', 'AGE'], list.map((n) => [n.ip, n.mac || '-', n.state, `${Math.round(n.ageSeconds)}s`])));
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
    print(json, r, () => `${keyValues(r.uplink)}\nneighbours:\n${neighborTable(r.neighbors)}`);
  });
  uplink.command('create <name>').description('create the uplink (succeeds if it exists with the same spec)')
    .requiredOption('--type <type>', 'underlay port type: afpacket (an interface), pipe (tests), tap, ...')
    .option('--interface <ifname>', 'the underlay interface (afpacket, tap, ...)')
    .option('--local-ip <cidr>', 'IPv4 VTEP address with prefix, e.g. 198.18.0.1/24')
    .option('--local-ip6 <cidr>', 'IPv6 VTEP address with prefix, e.g. 2001:db8::1/64')
    .option('--gateway <ip>', 'IPv4 next hop for peers off the local prefix')
    .option('--gateway6 <ip>', 'IPv6 next hop for peers off the local prefix')
    .option('--mtu <n>', 'underlay MTU', int('mtu', 68, 9000))
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
      print(json, r, () => `${r.created ? 'created' : 'exists (same spec)'}: uplink ${u.name} (${u.type}${u.interface ? ` ${u.interface}` : ''}, ${[u.localIp, u.localIp6].filter(Boolean).join(' ')}) mac ${u.mac} uuid ${u.uuid}\n`);
    });
  uplink.command('delete <ref>').description('delete the uplink (its peers and remote FDB entries must be deleted first)').action(async (ref: string, _o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<Record<string, any>>('DELETE', `/v1/uplinks/${encodeURIComponent(ref)}`);
    print(json, r, () => `deleted: uplink ${r.deleted.name} (uuid ${r.deleted.uuid})\n${planText(r.plan)}`);
  });
  program.command('neighbors').alias('neighbours').description('the uplink\'s neighbour cache (next hops resolved by ARP/ND)').action(async (_o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<{ uplink: string | null; neighbors: Record<string, any>[] }>('GET', '/v1/neighbors');
    print(json, r, () => (r.uplink === null ? 'no uplink\n' : neighborTable(r.neighbors)));
  });

  // ------------------------------------------------------------ peer
  const peer = program.command('peer').description('remote VTEPs in a switch\'s flood list (VXLAN head-end replication)');
  peer.command('list [switch]').description('list peers (of every switch unless one is given)').action(async (swName: string | undefined, _o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<{ peers: Record<string, any>[] }>('GET', `/v1/peers${swName === undefined ? '' : `?switch=${encodeURIComponent(swName)}`}`);
    print(json, r, () => table(['SWITCH', 'VTEP', 'RX-PKTS', 'TX-PKTS', 'DROPS', 'UUID'],
      r.peers.map((p) => [p.switch, p.ip, human(p.counters?.rx_packets ?? 0), human(p.counters?.tx_packets ?? 0), p.counters?.drops ?? 0, p.uuid])));
  });
  peer.command('create <switch> <ip>').description('add a remote VTEP to a switch (succeeds if it is there)')
    .option('--uuid <uuid>', 'UUID to give the peer (default: generated)')
    .action(async (swName: string, ip: string, o: { uuid?: string }, cmd: Command) => {
      const { client, json } = ctx(cmd);
      const r = await client.call<Record<string, any>>('POST', '/v1/peers', defined({ switch: swName, ip, uuid: o.uuid }));
      print(json, r, () => `${r.created ? 'created' : 'exists (same spec)'}: peer ${r.peer.ip} of switch ${r.peer.switch} uuid ${r.peer.uuid}\n`);
    });
  peer.command('delete <switch> <ip>').description('remove a remote VTEP from a switch').action(async (swName: string, ip: string, _o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<Record<string, any>>('DELETE', `/v1/peers/${encodeURIComponent(swName)}/${encodeURIComponent(ip)}`);
    print(json, r, () => `deleted: peer ${r.deleted.name} (uuid ${r.deleted.uuid})\n`);
  });

  // ------------------------------------------------------------ stats
  program.command('stats').description('counters of ports, switches and the engine')
    .option('-w, --watch', 'refresh until interrupted, with rates')
    .option('-i, --interval <seconds>', 'refresh interval for --watch', int('interval', 1, 3600), 2)
    .option('-n, --count <n>', 'with --watch: stop after n refreshes', int('count', 1, 1_000_000))
    .action(async (o: { watch?: boolean; interval: number; count?: number }, cmd: Command) => {
      const { client, json } = ctx(cmd);
      const sleep = io.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
      let prev: { at: number; s: Stats } | undefined;
      for (let i = 0; ; i++) {
        const s = await client.call<Stats>('GET', '/v1/stats');
        const at = Date.now();
        if (json) io.out(`${JSON.stringify(s)}\n`);
        else io.out(`${o.watch ? `\x1b[H\x1b[2J${new Date(at).toISOString()}  (every ${o.interval}s, Ctrl-C to stop)\n` : ''}${statsText(s, prev === undefined ? undefined : { s: prev.s, seconds: (at - prev.at) / 1000 })}`);
        prev = { at, s };
        if (!o.watch || (o.count !== undefined && i + 1 >= o.count)) break;
        await sleep(o.interval * 1000);
      }
    });

  // ------------------------------------------------------------ apply
  program.command('apply').description('apply a configuration file (desired state); prints the plan')
    .requiredOption('-f, --file <file>', 'YAML configuration')
    .option('--dry-run', 'print the plan, change nothing')
    .action(async (o: { file: string; dryRun?: boolean }, cmd: Command) => {
      const { client, json } = ctx(cmd);
      let text: string;
      try {
        text = fs.readFileSync(o.file, 'utf8');
      } catch (err) {
        throw new CliError(EXIT.INVALID, `cannot read ${o.file}: ${(err as Error).message}`);
      }
      const r = await client.call<Record<string, any>>('POST', '/v1/apply', { config: text, dryRun: o.dryRun === true, source: o.file });
      print(json, r, () => {
        const head = r.plan.length === 0 ? 'no changes: the running state already matches' : `plan (${r.summary.create} to create, ${r.summary.update} to change, ${r.summary.delete} to remove):`;
        const tail = r.plan.length === 0 ? '' : r.applied ? 'applied.\n' : 'dry run: nothing was changed.\n';
        return `${head}\n${planText(r.plan)}${(r.warnings as string[]).map((w) => `warning: ${w}\n`).join('')}${tail}`;
      });
    });

  program.command('state').description('print the running desired state as JSON (backups, debugging)').action(async (_o, cmd: Command) => {
    const { client } = ctx(cmd);
    const r = await client.call('GET', '/v1/state');
    io.out(`${JSON.stringify(r, null, 2)}\n`);
  });
  registerBgpCommands(program, io);
  return program;
}

interface Stats {
  engine: Record<string, number>;
  eventsDropped: number;
  ports: Record<string, { counters: Record<string, number>; drops: Record<string, number> }>;
  switches: Record<string, { counters: Record<string, number>; drops: Record<string, number> }>;
  peers?: Record<string, Record<string, number>>;
  uplink?: { name: string; counters: Record<string, number> };
}

export function statsText(s: Stats, prev?: { s: Stats; seconds: number }): string {
  const rate = (now: number, before: number | undefined): string => (prev === undefined || before === undefined ? '' : `${human(Math.max(0, now - before) / prev.seconds)}/s`);
  const ports = Object.entries(s.ports).sort(([a], [b]) => (a < b ? -1 : 1));
  const portRows = ports.map(([name, p]) => {
    const old = prev?.s.ports[name]?.counters;
    const drops = Object.entries(p.drops).filter(([, v]) => v > 0).map(([k, v]) => `${k}=${v}`).join(',');
    return [name, human(p.counters.rx_packets ?? 0), human(p.counters.rx_bytes ?? 0), human(p.counters.tx_packets ?? 0), human(p.counters.tx_bytes ?? 0),
      ...(prev === undefined ? [] : [rate(p.counters.rx_packets ?? 0, old?.rx_packets), rate(p.counters.tx_packets ?? 0, old?.tx_packets)]), drops || '-'];
  });
  const portHead = ['PORT', 'RX-PKTS', 'RX-BYTES', 'TX-PKTS', 'TX-BYTES', ...(prev === undefined ? [] : ['RX-RATE', 'TX-RATE']), 'DROPS'];
  const sws = Object.entries(s.switches).sort(([a], [b]) => (a < b ? -1 : 1));
  const swRows = sws.map(([name, w]) => [name, w.counters.fdb_entries ?? 0, human(w.counters.rx_packets ?? 0), w.counters.learned ?? 0, w.counters.moved ?? 0, w.counters.aged ?? 0, human(w.counters.flooded ?? 0), w.counters.drops ?? 0]);
  const e = s.engine;
  const busy = (e.busy_ns ?? 0) + (e.idle_ns ?? 0) > 0 ? `${(((e.busy_ns ?? 0) / ((e.busy_ns ?? 0) + (e.idle_ns ?? 0))) * 100).toFixed(1)}% busy` : '';
  const peers = Object.entries(s.peers ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  const peerText = peers.length === 0 ? '' : `\n${table(['PEER', 'RX-PKTS', 'RX-BYTES', 'TX-PKTS', 'TX-BYTES', 'DROPS', 'LEARNED'],
    peers.map(([ip, c]) => [ip, human(c.rx_packets ?? 0), human(c.rx_bytes ?? 0), human(c.tx_packets ?? 0), human(c.tx_bytes ?? 0), c.drops ?? 0, c.fdb_learned ?? 0]))}`;
  const u = s.uplink;
  const uplinkText = u === undefined ? '' : `\nuplink ${u.name}: ${Object.entries(u.counters).filter(([, v]) => v > 0).map(([k, v]) => `${k}=${v}`).join(' ') || 'no traffic'}\n`;
  return `${table(portHead, portRows)}\n${table(['SWITCH', 'FDB', 'RX-PKTS', 'LEARNED', 'MOVED', 'AGED', 'FLOODED', 'DROPS'], swRows)}${peerText}${uplinkText}\nengine: ${human(e.packets ?? 0)} packets, ${human(e.iterations ?? 0)} iterations, ${busy}, ${e.buffers_free ?? '?'} buffers free, ${s.eventsDropped} events dropped\n`;
}

export class CliError extends Error {
  constructor(readonly exitCode: number, message: string) {
    super(message);
  }
}

// Runs one vpcctl command line (argv without node and script); returns the
// exit code.
export async function runCli(args: string[], io: CliIO = defaultIO): Promise<number> {
  const program = createProgram(io);
  program.exitOverride();
  for (const c of program.commands) {
    c.exitOverride();
    for (const sub of c.commands) sub.exitOverride();
  }
  try {
    await program.parseAsync(args, { from: 'user' });
    return EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0) return EXIT.OK;
      if (err.code === 'commander.help' || err.code === 'commander.executeSubCommandAsync') return EXIT.USAGE;
      return EXIT.USAGE;
    }
    if (err instanceof UnreachableError) {
      io.err(`vpcctl: ${err.message}\n`);
      return EXIT.UNREACHABLE;
    }
    if (err instanceof ApiError) {
      const e = (err.body.error ?? {}) as { details?: { message: string; line?: number; code: string }[] };
      let text = `vpcctl: ${err.message} [${err.code}]\n`;
      if (Array.isArray(e.details) && err.code !== 'ERR_CONFIG_INVALID') text += e.details.map((d) => `  ${d.message} [${d.code}]\n`).join('');
      io.err(text);
      return exitCodeForStatus(err.status);
    }
    if (err instanceof CliError) {
      io.err(`vpcctl: ${err.message}\n`);
      return err.exitCode;
    }
    io.err(`vpcctl: ${(err as Error)?.stack ?? String(err)}\n`);
    return EXIT.FAILURE;
  }
}
