// vpcctl peer: remote VTEPs in a switch's flood list.

import type { Command } from 'commander';
import type { CliContext } from './context';
import { human, table, warningText } from './format';
import { defined } from './parse';

export function registerPeer(program: Command, { ctx, print }: CliContext): void {
  const peer = program.command('peer').description('remote VTEPs in a switch\'s flood list (VXLAN head-end replication)');
  peer.command('list [switch]').description('list peers (of every switch unless one is given)').action(async (swName: string | undefined, _o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<{ peers: Record<string, any>[] }>('GET', `/v1/peers${swName === undefined ? '' : `?switch=${encodeURIComponent(swName)}`}`);
    // Counters of this switch's traffic with the peer (not the peer's totals over every switch).
    print(json, r, () => table(['SWITCH', 'PEER', 'RX-PKTS', 'RX-BYTES', 'TX-PKTS', 'TX-BYTES', 'DROPS', 'UUID'],
      r.peers.map((p) => { const c = p.counters ?? {}; return [p.switch, p.ip, human(c.rx_packets ?? 0), human(c.rx_bytes ?? 0), human(c.tx_packets ?? 0), human(c.tx_bytes ?? 0), c.drops ?? 0, p.uuid ?? `- (${p.origin})`]; })));
  });
  peer.command('create <switch> <ip>').description('add a remote VTEP to a switch (succeeds if it is there)')
    .option('--uuid <uuid>', 'UUID to give the peer (default: generated)')
    .action(async (swName: string, ip: string, o: { uuid?: string }, cmd: Command) => {
      const { client, json } = ctx(cmd);
      const r = await client.call<Record<string, any>>('POST', '/v1/peers', defined({ switch: swName, ip, uuid: o.uuid }));
      print(json, r, () => `${r.created ? 'created' : 'exists (same spec)'}: peer ${r.peer.ip} of switch ${r.peer.switch} uuid ${r.peer.uuid}\n${warningText(r.warnings)}`);
    });
  peer.command('delete <switch> <ip>').description('remove a remote VTEP from a switch').action(async (swName: string, ip: string, _o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<Record<string, any>>('DELETE', `/v1/peers/${encodeURIComponent(swName)}/${encodeURIComponent(ip)}`);
    print(json, r, () => `deleted: peer ${r.deleted.name} (uuid ${r.deleted.uuid})\n${warningText(r.warnings)}`);
  });
}
