// vpcctl bgp: the EVPN speaker's sessions and routes.
//
//   vpcctl bgp status|show [--json]        sessions (state, uptime, routes in/out) and route counts;
//                                          the speaker up, busy (slow to answer) or down, and how stale
//   vpcctl bgp routes [--switch S] [--json] EVPN routes: ours (local) and received (remote)

import type { Command } from 'commander';
import type { CliContext } from './context';
import { table } from './format';
import type { EvpnRouteView } from '../evpn/evpn';
import type { BgpStatus } from '../evpn/service';

function uptime(seconds: number): string {
  if (seconds <= 0) return '-';
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(s).padStart(2, '0')}s` : `${s}s`;
}

// up; busy (connected, did not answer in time); down (unreachable). Busy or
// down: the sessions shown are gobgpd's last answer, and how old it is.
function speakerText(b: BgpStatus): string {
  if (!b.stale) return b.speaker;
  const age = b.ageSeconds === undefined ? 'no answer yet' : `sessions as of ${b.ageSeconds.toFixed(1)} s ago`;
  return `${b.speaker} (${b.speaker === 'busy' ? 'gobgpd did not answer in time' : 'gobgpd cannot be reached'}; stale: ${age})`;
}

export function bgpStatusText(b: BgpStatus | null): string {
  if (b === null) return 'BGP is not configured (no `bgp:` section)\n';
  const e = b.evpn;
  const head = [
    `AS ${b.asn}, router ID ${b.routerId}, ${b.managed ? `managed gobgpd${b.pid === undefined ? '' : ` (pid ${b.pid})`}` : 'external gobgpd'} at ${b.api || '-'}: ${speakerText(b)}${b.restarts > 0 ? `, restarted ${b.restarts} time(s)` : ''}`,
    ...(b.reason === undefined ? [] : [`reason: ${b.reason}`]),
    `routes: ${e.routesAdvertised} advertised, ${e.routesReceived} received; ${e.macsInstalled} MACs installed, ${e.floodPeers} flood-list peers; ${e.pending} pending`,
    `MAC moves ${e.moves}, duplicates ${e.duplicates}, over macLimit ${e.limited}, FDB errors ${e.installErrors}, refused by gobgpd ${e.rejected}`,
  ].join('\n');
  const rows = b.neighbors.map((n) => [n.address, n.asn, n.state, uptime(n.uptimeSeconds), n.received, n.accepted, n.advertised, n.routerId || '-']);
  // Why a session is not up, as gobgpd said it last (its log).
  const why = b.neighbors.filter((n) => n.state !== 'established' && n.lastProblem !== undefined).map((n) => `${n.address}: ${n.lastProblem} (${n.lastProblemAt})\n`);
  return `${head}\n\n${rows.length === 0 ? 'no neighbours\n' : table(['NEIGHBOR', 'AS', 'STATE', 'UPTIME', 'ROUTES-IN', 'ACCEPTED', 'ROUTES-OUT', 'ROUTER-ID'], rows)}` +
    (why.length === 0 ? '' : `\nnot established, as gobgpd last said:\n${why.join('')}`);
}

export function bgpRoutesText(routes: EvpnRouteView[]): string {
  if (routes.length === 0) return 'no EVPN routes\n';
  return table(['SWITCH', 'VNI', 'TYPE', 'MAC', 'IP', 'VTEP', 'SEQ', 'ORIGIN', 'BEST'],
    routes.map((r) => [r.switch || '-', r.vni, r.type === 2 ? '2 mac' : '3 imet', r.mac ?? '-', r.ip ?? '-', r.vtep, r.seq ?? '-', r.origin === 'local' ? 'local' : `${r.neighbor || 'remote'}`, r.best ? '*' : '']));
}

// Adds `bgp status` and `bgp routes` to the program.
export function registerBgp(program: Command, { ctx, print }: CliContext): void {
  const bgp = program.command('bgp').description('the BGP EVPN speaker: sessions and routes');
  bgp.command('status').alias('show').description('BGP sessions (state, uptime, routes in and out), the speaker up, busy or down, and EVPN route counts').action(async (_o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<{ bgp: BgpStatus | null }>('GET', '/v1/bgp');
    print(json, r, () => bgpStatusText(r.bgp));
  });
  bgp.command('routes').description('EVPN routes: this host\'s (local) and the other hosts\' (remote)')
    .option('--switch <switch>', 'only the routes of this switch')
    .action(async (o: { switch?: string }, cmd: Command) => {
      const { client, json } = ctx(cmd);
      const r = await client.call<{ bgp: boolean; routes: EvpnRouteView[] }>('GET', `/v1/bgp/routes${o.switch === undefined ? '' : `?switch=${encodeURIComponent(o.switch)}`}`);
      print(json, r, () => (r.bgp ? bgpRoutesText(r.routes) : 'BGP is not configured (no `bgp:` section)\n'));
    });
}
