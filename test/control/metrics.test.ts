// Metrics: names and types generated from the dataplane schema, and a real
// Prometheus server (Debian's `prometheus`) scraping vpcd and answering a
// query for a dataplane counter after frames have flowed.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { Dataplane } from '../../src/dataplane';
import { Metrics, metricHelp, metricName } from '../../src/control/metrics';
import { eventually, frameHex, removeDir, sleep, spawnVpcd, TEST_ENGINE, tempDir } from './helpers';

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

// The metric names a document gives (`vpc_port_{rx,tx}_packets_total`,
// `vpc_engine_*_total`, `vpc_port_backend_<name>_total`), as patterns.
function documentedMetrics(doc: string): RegExp[] {
  const out: RegExp[] = [];
  for (const m of doc.matchAll(/`(vpcd?_[a-z0-9_{},*<>]+)`/g)) {
    const re = m[1]!.replace(/<name>|\*/g, '[a-z0-9_]+').replace(/\{([^}]*)\}/g, (_, alts: string) => `(?:${alts.split(',').join('|')})`);
    out.push(new RegExp(`^${re}$`));
  }
  return out;
}

describe('metrics', () => {
  test('names follow Prometheus conventions and cover every schema counter', async () => {
    assert.deepEqual(metricName('port', 'rx_packets', false), { name: 'vpc_port_rx_packets_total', scale: 1 });
    assert.deepEqual(metricName('engine', 'busy_ns', false), { name: 'vpc_engine_busy_seconds_total', scale: 1e-9 });
    assert.deepEqual(metricName('switch', 'fdb_entries', true), { name: 'vpc_switch_fdb_entries', scale: 1 });

    const dp = new Dataplane({ bufferCount: 1024, hugepages: false, maxPorts: 8 });
    try {
      dp.start();
      await dp.createSwitch({ name: 'a', vni: 1 });
      await dp.createPort({ name: 'p1', type: 'pipe', switch: 'a' });
      await dp.createPort({ name: 't', type: 'pipe', vlans: [{ vlan: 5, switch: 'a' }] });
      const m = new Metrics({ dp, portSwitches: (p) => (p === 'p1' ? ['a'] : ['a', 'b']), generation: () => 3 });
      const text = await m.render();
      const schema = dp.schema();
      for (const c of schema.port) {
        const gauge = c.name === 'fdb_learned' || c.name === 'link_up';
        const { name } = metricName('port', c.name, gauge);
        assert.match(text, new RegExp(`^# HELP ${name} ${c.help.replace(/[()]/g, '.')}$`, 'm'), name);
        assert.match(text, new RegExp(`^# TYPE ${name} ${gauge ? 'gauge' : 'counter'}$`, 'm'), name);
        const idle = c.name === 'link_up' ? 1 : 0; // a new pipe port is up and has moved nothing
        assert.match(text, new RegExp(`^${name}\\{switch="a",port="p1"\\} ${idle}$`, 'm'), name);
      }
      for (const c of schema.engine) assert.match(text, new RegExp(`^vpc_engine_${c.name.replace(/_ns$/, '_seconds')}(_total)? `, 'm'), c.name);
      // Nanosecond counters are exported in seconds, and their help says so.
      assert.match(text, /^# HELP vpc_engine_busy_seconds_total Seconds spent in iterations that moved frames$/m);
      assert.match(text, /^# HELP vpc_engine_idle_seconds_total Seconds spent in iterations that moved nothing, sleep included$/m);
      assert.deepEqual(text.split('\n').filter((l) => /^# HELP vpc_\S*_seconds\S* .*nanosecond/i.test(l)), [], 'no seconds metric speaks of nanoseconds');
      assert.equal(metricHelp('rx_packets', 'Nanoseconds, or not'), 'Nanoseconds, or not', 'only *_ns counters are converted');
      for (const c of schema.switch.filter((s) => s.name !== 'drops')) assert.match(text, new RegExp(`^vpc_switch_${c.name}(_total)?\\{switch="a"\\} `, 'm'), c.name);
      for (const d of schema.drop) assert.match(text, new RegExp(`^vpc_port_drops_total\\{switch="a,b",port="t",reason="${d.name}"\\} 0$`, 'm'), d.name);
      assert.match(text, /^# TYPE vpc_switch_fdb_entries gauge$/m);
      assert.match(text, /^# TYPE vpc_engine_iteration_max_seconds gauge$/m); // a stall, not a running total
      // The engine follows link messages here (root: in every namespace with an id; else its own).
      assert.match(text, process.getuid?.() === 0 ? /^vpc_engine_link_watch 2$/m : /^vpc_engine_link_watch [12]$/m);
      assert.match(text, /^vpc_state_generation 3$/m);
      assert.match(text, /^process_cpu_seconds_total /m);
      assert.match(text, /^nodejs_eventloop_lag_seconds /m);
      // Every metric name is unique (no family registered twice).
      const types = text.split('\n').filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]);
      assert.equal(new Set(types).size, types.length);
      // ... and each of ours is in operations.md's tables.
      const documented = documentedMetrics(fs.readFileSync(path.join(__dirname, '../../../docs/operations.md'), 'utf8'));
      assert.deepEqual(types.filter((n) => n!.startsWith('vpc_') && !documented.some((re) => re.test(n!))), [], 'families docs/operations.md does not name');
    } finally {
      dp.close();
    }
  });

  test('promtool check metrics passes the whole exposition, Node\'s families included', async (t) => {
    if (spawnSync('promtool', ['--version']).error !== undefined) {
      t.skip('promtool is not installed (Debian package `prometheus`; scripts/setup-deps.sh installs it)');
      return;
    }
    const dp = new Dataplane({ bufferCount: 1024, hugepages: false, maxPorts: 8 });
    try {
      dp.start();
      await dp.createSwitch({ name: 'a', vni: 1 });
      await dp.createPort({ name: 'p1', type: 'pipe', switch: 'a' });
      const text = await new Metrics({ dp, portSwitches: () => ['a'], generation: () => 1 }).render();
      // prom-client's nodejs_active_*_total gauges are left out; the by-type families stay.
      assert.match(text, /^nodejs_active_handles\{/m);
      assert.doesNotMatch(text, /^nodejs_active_handles_total/m);
      const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      assert.deepEqual([lint.status, `${lint.stdout}${lint.stderr}`.trim()], [0, ''], 'promtool check metrics');
    } finally {
      dp.close();
    }
  });

  test('a real Prometheus scrapes vpcd and returns a dataplane counter after traffic', async (t) => {
    const which = spawnSync('sh', ['-c', 'command -v prometheus']);
    if (which.status !== 0) {
      t.skip('prometheus is not installed (Debian package `prometheus`; scripts/setup-deps.sh installs it)');
      return;
    }
    const d = await spawnVpcd({
      config: `${TEST_ENGINE}switches:\n  - name: tenant-a\n    vni: 1001\n    ports:\n      - { name: vm1, type: pipe }\n      - { name: vm2, type: pipe }\n`,
      metrics: true,
      testHooks: true,
    });
    const dir = tempDir('vpcd-prom-');
    const promPort = await freePort();
    fs.writeFileSync(path.join(dir, 'prometheus.yml'), [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'scrape_configs:',
      '  - job_name: vpcd',
      `    static_configs: [{ targets: ["${d.metrics}"] }]`,
      '',
    ].join('\n'));
    const promLog: string[] = [];
    const prom = spawn('prometheus', [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--storage.tsdb.retention.time=1h',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    prom.stdout.on('data', (c) => promLog.push(String(c)));
    prom.stderr.on('data', (c) => promLog.push(String(c)));
    try {
      // Traffic: 25 frames vm1 -> vm2 through the pipe test hook.
      await d.client.call('POST', '/v1/test/ports/vm1/send', { frames: [frameHex('02:00:00:00:0b:02', '02:00:00:00:0b:01')], repeat: 25 });
      await eventually(async () => ((await d.client.call<any>('GET', '/v1/stats')).ports.vm1.counters.rx_packets === 25) || undefined);

      const scrape = await get(`http://${d.metrics}/metrics`);
      assert.equal(scrape.status, 200);
      assert.match(scrape.body, /^vpc_port_rx_packets_total\{switch="tenant-a",port="vm1"\} 25$/m);

      const query = encodeURIComponent('vpc_port_rx_packets_total{job="vpcd",port="vm1"}');
      const value = await eventually(async () => {
        try {
          const r = await get(`http://127.0.0.1:${promPort}/api/v1/query?query=${query}`);
          if (r.status !== 200) return undefined;
          const body = JSON.parse(r.body) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
          const hit = body.data.result[0];
          return hit !== undefined && hit.value[1] === '25' ? hit : undefined;
        } catch {
          return undefined;
        }
      }, 30000, 250).catch((err) => {
        throw new Error(`${(err as Error).message}; prometheus log:\n${promLog.join('').slice(-3000)}`);
      });
      assert.equal(value.metric.switch, 'tenant-a');
      assert.equal(value.metric.__name__, 'vpc_port_rx_packets_total');
      // The target is healthy in Prometheus's own view.
      const targets = JSON.parse((await get(`http://127.0.0.1:${promPort}/api/v1/targets`)).body);
      assert.equal(targets.data.activeTargets[0].health, 'up');
    } finally {
      prom.kill('SIGTERM');
      await Promise.race([new Promise((r) => prom.once('exit', r)), sleep(5000)]);
      if (prom.exitCode === null) prom.kill('SIGKILL');
      await d.stop();
      removeDir(d.dir);
      removeDir(dir);
    }
  });
});
