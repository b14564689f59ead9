// Prometheus metrics. The dataplane families are generated from dp.schema(),
// so a counter added to the engine's X-macro tables appears here with its
// help text, without an edit to this file. They are written as text straight
// from one dp.stats() snapshot (40,000 series with 1,000 ports: prom-client's
// per-label bookkeeping tripled the scrape time, see bench/metrics.ts); the
// prom-client registry adds the process's default metrics and the control
// plane's own gauges to the same exposition.
//
// Naming (Prometheus conventions): vpc_<object>_<counter>_total for counters,
// no suffix for gauges, base units (nanosecond counters become *_seconds_total).
//   engine:  vpc_engine_packets_total, vpc_engine_busy_seconds_total, vpc_engine_buffers_free
//   port:    vpc_port_rx_packets_total{switch,port}, vpc_port_drops_total{switch,port,reason}
//   switch:  vpc_switch_learned_total{switch}, vpc_switch_fdb_entries{switch},
//            vpc_switch_drops_total{switch,reason}
//   peer:    vpc_peer_rx_packets_total{peer}, vpc_peer_fdb_learned{peer} (remote VTEPs, totals
//            over every switch; the label was `vtep` before, see docs/operations.md)
//   switch and peer: vpc_switch_peer_rx_packets_total{switch,peer}, ... (one switch's
//            VNI with one remote VTEP)
//   uplink:  vpc_uplink_vxlan_rx_total{uplink}, ...; the uplink's port is a
//            port too: vpc_port_*{switch="",port="<uplink>"}, with its decap
//            drops in vpc_port_drops_total{...,reason}
//   backend: vpc_port_backend_rx_too_big_total{switch,port}, ... for every
//            kernel-facing port, the uplink included (names: schema().backend)
//   vhost:   vpc_vhost_queue_packets_total{switch,port,queue}, ... per virtqueue
//            of a vhostuser port (names: schema().virtq; queue 2k is guest
//            receive queue k, 2k+1 guest transmit queue k), and
//            vpc_vhost_queue_drops_total{switch,port,queue,reason} (schema().virtqDrop)
// A port's `switch` label is its switch (access port) or its switches joined
// with "," (trunk). A counter that is the sum of a by-reason family
// (switch "drops") is left out: sum by (switch) gives it.
//
// A scrape reads every counter with one dp.stats() call: lock-free loads
// from the engine's counter blocks, the engine never waits (see
// bench/metrics.ts for the cost with 1,000 ports).

import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { CounterInfo, Dataplane, DataplaneStats } from '../dataplane';

// Counters left out because a by-reason family carries them.
const OMITTED = new Set(['switch.drops']);

export interface MetricsSource {
  dp: Dataplane;
  // Names of the switches a port belongs to.
  portSwitches(port: string): string[];
  generation(): number;
}

type ObjectName = 'engine' | 'port' | 'switch' | 'peer' | 'switch_peer' | 'uplink' | 'port_backend' | 'vhost_queue';

export function metricName(object: ObjectName, counter: string, gauge: boolean): { name: string; scale: number } {
  let base = counter;
  let scale = 1;
  if (base.endsWith('_ns')) {
    base = `${base.slice(0, -3)}_seconds`;
    scale = 1e-9;
  }
  return { name: `vpc_${object}_${base}${gauge ? '' : '_total'}`, scale };
}

// The HELP of a metric. The engine's help (core/counters.h, through
// dp.schema()) describes its counter in the counter's unit, as dp.stats()
// and `vpcctl stats --json` give it ("Nanoseconds spent ..." for busy_ns);
// where metricName() turns nanoseconds into seconds, the help says seconds
// too. The conversion and its words live here, together.
export function metricHelp(counter: string, help: string): string {
  if (!counter.endsWith('_ns')) return help;
  return help.replace(/\bnanoseconds\b/gi, (w) => (w[0] === 'N' ? 'Seconds' : 'seconds'));
}

export class Metrics {
  readonly registry = new Registry();
  private portLabels = new Map<string, string>();
  private lastScrapeSeconds = 0;

  // Dataplane families, rendered straight from one stats snapshot (see render()).
  private readonly families: Family[] = [];

  constructor(private readonly source: MetricsSource, opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) {
      collectDefaultMetrics({ register: this.registry });
      // prom-client also exports the sums of nodejs_active_{handles,requests,
      // resources} as gauges named *_total, which promtool refuses (a gauge
      // must not end in _total). The families by type stay.
      for (const n of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(n);
    }
    const schema = source.dp.schema();
    const self = this;

    for (const info of schema.engine) this.family('engine', info, (s, emit) => emit('', s.engine[info.name] ?? 0));
    for (const info of schema.port) {
      this.family('port', info, (s, emit) => {
        for (const [port, set] of Object.entries(s.ports)) emit(`{switch="${self.portLabel(port)}",port="${port}"}`, set.counters[info.name] ?? 0);
      });
    }
    for (const info of schema.switch) {
      this.family('switch', info, (s, emit) => {
        for (const [sw, set] of Object.entries(s.switches)) emit(`{switch="${sw}"}`, set.counters[info.name] ?? 0);
      });
    }
    for (const info of schema.peer ?? []) {
      this.family('peer', info, (s, emit) => {
        for (const [ip, counters] of Object.entries(s.peers ?? {})) emit(`{peer="${ip}"}`, counters[info.name] ?? 0);
      });
    }
    for (const info of schema.switchPeer ?? []) {
      this.family('switch_peer', info, (s, emit) => {
        for (const [sw, set] of Object.entries(s.switches)) {
          for (const [ip, counters] of Object.entries(set.peers ?? {})) emit(`{switch="${sw}",peer="${ip}"}`, counters[info.name] ?? 0);
        }
      });
    }
    for (const info of schema.uplink ?? []) {
      this.family('uplink', info, (s, emit) => {
        if (s.uplink !== undefined) emit(`{uplink="${s.uplink.name}"}`, s.uplink.counters[info.name] ?? 0);
      });
    }
    for (const info of schema.backend ?? []) {
      this.family('port_backend', info, (s, emit) => {
        for (const [port, set] of Object.entries(s.ports)) {
          if (set.backend !== undefined) emit(`{switch="${self.portLabel(port)}",port="${port}"}`, set.backend[info.name] ?? 0);
        }
      });
    }
    for (const info of schema.virtq ?? []) {
      this.family('vhost_queue', info, (s, emit) => {
        for (const [port, set] of Object.entries(s.ports)) {
          for (const q of set.queues ?? []) emit(`{switch="${self.portLabel(port)}",port="${port}",queue="${q.queue}"}`, q.counters[info.name] ?? 0);
        }
      });
    }
    if ((schema.virtqDrop ?? []).length > 0) {
      this.families.push({
        name: 'vpc_vhost_queue_drops_total', type: 'counter', scale: 1,
        help: `Frames dropped at a virtqueue of a vhost-user port, by reason (${schema.virtqDrop.map((d) => d.name).join(', ')})`,
        values: (s, emit) => {
          for (const [port, set] of Object.entries(s.ports)) {
            const sw = self.portLabel(port);
            for (const q of set.queues ?? []) {
              for (const [reason, v] of Object.entries(q.drops)) emit(`{switch="${sw}",port="${port}",queue="${q.queue}",reason="${reason}"}`, v);
            }
          }
        },
      });
    }
    const reasons = schema.drop.map((d) => d.name).join(', ');
    this.families.push({
      name: 'vpc_port_drops_total', type: 'counter', scale: 1,
      help: `Frames dropped on ingress or egress of the port, by reason (${reasons})`,
      values: (s, emit) => {
        for (const [port, set] of Object.entries(s.ports)) {
          const sw = self.portLabel(port);
          for (const [reason, v] of Object.entries(set.drops)) emit(`{switch="${sw}",port="${port}",reason="${reason}"}`, v);
        }
      },
    });
    this.families.push({
      name: 'vpc_switch_drops_total', type: 'counter', scale: 1,
      help: `Frames dropped in the switch, by reason (${reasons})`,
      values: (s, emit) => {
        for (const [sw, set] of Object.entries(s.switches)) {
          for (const [reason, v] of Object.entries(set.drops)) emit(`{switch="${sw}",reason="${reason}"}`, v);
        }
      },
    });
    this.families.push({ name: 'vpc_switches', type: 'gauge', scale: 1, help: 'Switches configured in the engine', values: (s, emit) => emit('', Object.keys(s.switches).length) });
    this.families.push({ name: 'vpc_ports', type: 'gauge', scale: 1, help: 'Ports configured in the engine, the uplink included', values: (s, emit) => emit('', Object.keys(s.ports).length) });
    this.families.push({ name: 'vpc_peers', type: 'gauge', scale: 1, help: 'Remote VTEPs known to the engine (peers and remote FDB entries)', values: (s, emit) => emit('', Object.keys(s.peers ?? {}).length) });

    // Control-plane figures live in the prom-client registry itself.
    new Gauge({
      name: 'vpc_state_generation',
      help: 'Generation of the state file (increments with every persisted change)',
      registers: [this.registry],
      collect() {
        this.set(source.generation());
      },
    });
    new Gauge({
      name: 'vpc_metrics_scrape_duration_seconds',
      help: 'Time the previous scrape took to read and render the metrics',
      registers: [this.registry],
      collect() {
        this.set(self.lastScrapeSeconds);
      },
    });
  }

  // The text exposition of every metric. One dp.stats() read per call; the
  // dataplane families (tens of thousands of series with 1,000 ports) are
  // written straight from that snapshot, the registry adds process and
  // control-plane metrics.
  async render(): Promise<string> {
    const t0 = process.hrtime.bigint();
    const snapshot = this.source.dp.stats();
    this.portLabels = new Map();
    const parts: string[] = [];
    for (const f of this.families) {
      const lines: string[] = [`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`];
      f.values(snapshot, (labels, v) => {
        lines.push(`${f.name}${labels} ${formatValue(v * f.scale)}`);
      });
      parts.push(lines.join('\n'));
    }
    const registry = await this.registry.metrics();
    this.lastScrapeSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return `${parts.join('\n')}\n${registry}`;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private portLabel(port: string): string {
    let label = this.portLabels.get(port);
    if (label === undefined) {
      label = this.source.portSwitches(port).join(',');
      this.portLabels.set(port, label);
    }
    return label;
  }

  private family(object: ObjectName, info: CounterInfo, values: Family['values']): void {
    const key = `${object}.${info.name}`;
    if (OMITTED.has(key)) return;
    const gauge = info.kind === 'gauge'; // the kind column of the engine's counter tables
    const { name, scale } = metricName(object, info.name, gauge);
    this.families.push({ name, help: metricHelp(info.name, info.help), type: gauge ? 'gauge' : 'counter', scale, values });
  }
}

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  scale: number;
  values: (s: DataplaneStats, emit: (labels: string, value: number) => void) => void;
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
