// Prometheus metrics of the EVPN service (registered on the daemon's
// prom-client registry next to the dataplane families):
//   vpcd_bgp_session_up{neighbor}             1 while the session is established
//   vpcd_bgp_session_state{neighbor,state}    1 for the session's current state
//   vpcd_evpn_speaker_state{state}            1 for the speaker's state: up, busy, down
//   vpcd_bgp_routes_received{neighbor}        EVPN paths received from the neighbour
//   vpcd_bgp_routes_advertised{neighbor}      EVPN paths sent to the neighbour
//   vpcd_evpn_routes{origin}                  routes held now: local (ours) and remote
//   vpcd_evpn_macs_installed                  FDB entries of kind evpn
//   vpcd_evpn_flood_peers                     VTEPs in managed switches' flood lists
//   vpcd_evpn_updates_sent_total              paths handed to gobgpd (advertise + withdraw)
//   vpcd_evpn_mac_moves_total, vpcd_evpn_duplicate_macs_total, vpcd_evpn_limited_total,
//   vpcd_evpn_rejected_total
//   vpcd_evpn_pending                         updates waiting (rate limit, FDB batches)
//   vpcd_evpn_speaker_restarts_total          managed gobgpd restarts
//   vpcd_evpn_mac_move_seconds{phase}         MAC-move convergence: `advertise` from the
//       dataplane's move event to the route handed to gobgpd; `install` from the
//       winning route's arrival to the FDB update

import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EvpnService, EvpnTotals } from './service';

const SPEAKER_STATES = ['up', 'busy', 'down'];
const STATES = ['idle', 'connect', 'active', 'opensent', 'openconfirm', 'established', 'unknown'];

export function registerEvpnMetrics(registry: Registry, evpn: EvpnService): (phase: 'advertise' | 'install', seconds: number) => void {
  const status = (): ReturnType<EvpnService['status']> => evpn.status();
  const gauge = (name: string, help: string, labelNames: string[], collect: (g: Gauge<string>) => void): void => {
    // eslint-disable-next-line no-new
    new Gauge({ name, help, labelNames, registers: [registry], collect(this: Gauge<string>) { this.reset(); collect(this); } });
  };
  gauge('vpcd_bgp_session_up', 'BGP session with the neighbour established (1) or not (0)', ['neighbor'], (g) => {
    for (const n of status()?.neighbors ?? []) g.set({ neighbor: n.address }, n.state === 'established' ? 1 : 0);
  });
  gauge('vpcd_bgp_session_state', 'BGP session state (1 for the current one)', ['neighbor', 'state'], (g) => {
    for (const n of status()?.neighbors ?? []) for (const st of STATES) g.set({ neighbor: n.address, state: st }, n.state === st ? 1 : 0);
  });
  gauge('vpcd_evpn_speaker_state', 'the BGP speaker: up, busy (connected, did not answer in time) or down (unreachable); 1 for the current one', ['state'], (g) => {
    const s = status();
    if (s !== undefined) for (const st of SPEAKER_STATES) g.set({ state: st }, s.speaker === st ? 1 : 0);
  });
  gauge('vpcd_bgp_routes_received', 'EVPN paths received from the neighbour (adj-rib-in)', ['neighbor'], (g) => {
    for (const n of status()?.neighbors ?? []) g.set({ neighbor: n.address }, n.received);
  });
  gauge('vpcd_bgp_routes_advertised', 'EVPN paths advertised to the neighbour', ['neighbor'], (g) => {
    for (const n of status()?.neighbors ?? []) g.set({ neighbor: n.address }, n.advertised);
  });
  gauge('vpcd_evpn_routes', 'EVPN routes held now: ours (local) and other hosts\' (remote)', ['origin'], (g) => {
    const s = status();
    if (s === undefined) return;
    g.set({ origin: 'local' }, s.evpn.routesAdvertised);
    g.set({ origin: 'remote' }, s.evpn.routesReceived);
  });
  const single = (name: string, help: string, pick: (s: NonNullable<ReturnType<EvpnService['status']>>) => number): void =>
    gauge(name, help, [], (g) => {
      const s = status();
      if (s !== undefined) g.set(pick(s));
    });
  single('vpcd_evpn_macs_installed', 'FDB entries of kind evpn (installed from type-2 routes)', (s) => s.evpn.macsInstalled);
  single('vpcd_evpn_flood_peers', 'VTEPs in the flood lists of EVPN-managed switches (from type-3 routes)', (s) => s.evpn.floodPeers);
  // The service keeps these totals for the life of the process, across
  // speaker restarts and bgp sections taken out and put back; a scrape
  // copies them, typed as the counters they are (rate() needs the type).
  const counter = (name: string, help: string, pick: (t: EvpnTotals) => number): void => {
    // eslint-disable-next-line no-new
    new Counter({
      name, help, registers: [registry],
      collect(this: Counter<string>) {
        this.reset();
        this.inc(pick(evpn.totals()));
      },
    });
  };
  counter('vpcd_evpn_updates_sent_total', 'paths handed to gobgpd (advertisements and withdrawals)', (t) => t.updatesSent);
  counter('vpcd_evpn_mac_moves_total', 'MACs that moved to or away from this host', (t) => t.moves);
  counter('vpcd_evpn_duplicate_macs_total', 'MACs flagged as duplicates (RFC 7432 section 15.1)', (t) => t.duplicates);
  counter('vpcd_evpn_limited_total', 'routes not advertised or not installed because of a switch macLimit', (t) => t.limited);
  counter('vpcd_evpn_rejected_total', 'routes gobgpd refused (dropped, see the log)', (t) => t.rejected);
  single('vpcd_evpn_pending', 'updates waiting for the rate limit or an FDB batch', (s) => s.evpn.pending);
  counter('vpcd_evpn_speaker_restarts_total', 'restarts of the managed gobgpd', (t) => t.restarts);
  const moves = new Histogram({
    name: 'vpcd_evpn_mac_move_seconds',
    help: 'MAC-move convergence: advertise = move event to route handed to gobgpd; install = winning route received to FDB updated',
    labelNames: ['phase'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return (phase, seconds) => moves.observe({ phase }, seconds);
}
