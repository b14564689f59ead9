// vpcctl fdb: static FDB entries (to a port or a remote VTEP) and a switch's
// live forwarding table.

import type { Command } from 'commander';
import type { FdbEntry } from '../../dataplane';
import { ApiError } from '../client';
import { CliContext, CliError, EXIT } from './context';
import { table, warningText } from './format';
import { defined } from './parse';

// One row of the live table. TYPE: `learned` (aged, AGE is since last
// seen), `static` (configured) or `evpn` (installed from a BGP EVPN route;
// never aged, like a static one, but the control plane's: it moves and goes
// with the routes).
export function fdbLiveRow(e: FdbEntry): string[] {
  const type = e.evpn === true ? 'evpn' : e.static ? 'static' : 'learned';
  return [e.mac, e.port, e.vtep ?? '-', e.vlan === 0 ? '-' : String(e.vlan), type, e.static ? '-' : `${Math.round(e.ageSeconds)}s`];
}

export function registerFdb(program: Command, { ctx, print }: CliContext): void {
  const fdb = program.command('fdb').description('forwarding table: static entries and the live table');
  fdb.command('list [switch]').description('the live FDB (learned and static) of a switch, or of every switch; --static: the configured static entries')
    .option('--static', 'list the configured static entries (all switches unless one is given)')
    .action(async (swName: string | undefined, o: { static?: boolean }, cmd: Command) => {
      const { client, json } = ctx(cmd);
      if (o.static === true) {
        const r = await client.call<{ fdb: Record<string, any>[] }>('GET', `/v1/fdb${swName === undefined ? '' : `?switch=${encodeURIComponent(swName)}`}`);
        print(json, r, () => table(['SWITCH', 'MAC', 'PORT', 'VTEP', 'UUID'], r.fdb.map((f) => [f.switch, f.mac, f.port ?? '-', f.vtep ?? '-', f.uuid])));
        return;
      }
      const head = ['MAC', 'PORT', 'VTEP', 'VLAN', 'TYPE', 'AGE'];
      if (swName !== undefined) {
        const r = await client.call<{ entries: FdbEntry[] }>('GET', `/v1/switches/${encodeURIComponent(swName)}/fdb`);
        print(json, r, () => table(head, r.entries.map(fdbLiveRow)));
        return;
      }
      // Every switch: one table, the switch first. A switch deleted between
      // the two calls is left out.
      const { switches } = await client.call<{ switches: Array<{ name: string }> }>('GET', '/v1/switches');
      const entries: Array<FdbEntry & { switch: string }> = [];
      for (const sw of switches) {
        try {
          const r = await client.call<{ entries: FdbEntry[] }>('GET', `/v1/switches/${encodeURIComponent(sw.name)}/fdb`);
          entries.push(...r.entries.map((e) => ({ switch: sw.name, ...e })));
        } catch (err) {
          if (!(err instanceof ApiError && err.code === 'ERR_UNKNOWN_SWITCH')) throw err;
        }
      }
      const r = { entries };
      print(json, r, () => table(['SWITCH', ...head], entries.map((e) => [e.switch, ...fdbLiveRow(e)])));
    });
  fdb.command('create <switch> <mac> [port]').description('add a static entry: MAC -> port, or MAC -> remote VTEP with --vtep')
    .option('--vtep <ip>', 'the MAC lives behind this remote VTEP (instead of a port)')
    .option('--uuid <uuid>', 'UUID to give the entry')
    .action(async (swName: string, mac: string, portName: string | undefined, o: { uuid?: string; vtep?: string }, cmd: Command) => {
      const { client, json } = ctx(cmd);
      if ((portName === undefined) === (o.vtep === undefined)) throw new CliError(EXIT.USAGE, 'fdb create: give a port or --vtep IP (one of them)');
      const r = await client.call<Record<string, any>>('POST', '/v1/fdb', defined({ switch: swName, mac, port: portName, vtep: o.vtep, uuid: o.uuid }));
      print(json, r, () => `${r.created ? 'created' : 'exists (same spec)'}: fdb ${r.fdb.switch} ${r.fdb.mac} -> ${r.fdb.port ?? `vtep ${r.fdb.vtep}`} uuid ${r.fdb.uuid}\n${warningText(r.warnings)}`);
    });
  fdb.command('delete <switch> <mac>').description('remove a static entry').action(async (swName: string, mac: string, _o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<Record<string, any>>('DELETE', `/v1/fdb/${encodeURIComponent(swName)}/${encodeURIComponent(mac)}`);
    print(json, r, () => `deleted: fdb ${r.deleted.name} (uuid ${r.deleted.uuid})\n${warningText(r.warnings)}`);
  });
  fdb.command('flush <switch>').description('remove learned entries').option('--port <name>', 'only those learned on this port')
    .action(async (swName: string, o: { port?: string }, cmd: Command) => {
      const { client, json } = ctx(cmd);
      const r = await client.call<Record<string, any>>('POST', `/v1/switches/${encodeURIComponent(swName)}/fdb/flush`, defined({ port: o.port }));
      print(json, r, () => `flushed ${r.removed} learned entries from ${r.switch}\n`);
    });
}
