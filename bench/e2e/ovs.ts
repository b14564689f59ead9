// A private Open vSwitch instance (userspace datapath) inside one of the
// benchmark's namespaces: its own database (ovsdb-tool create in a temp dir),
// its own run/db/log dirs and unix sockets (OVS_RUNDIR, OVS_DBDIR,
// OVS_LOGDIR), ovsdb-server and ovs-vswitchd started as our children and
// killed at cleanup. The host's own Open vSwitch service (if any) is neither
// used nor touched: nothing here talks to /var/run/openvswitch.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Topo, sh, sleep, trySh, which } from './topo';

const SCHEMA_CANDIDATES = ['/usr/share/openvswitch/vswitch.ovsschema'];

export function ovsMissing(): string | undefined {
  for (const t of ['ovsdb-tool', 'ovsdb-server', 'ovs-vswitchd', 'ovs-vsctl', 'ovs-appctl']) {
    if (!which(t)) return `${t} not found (Debian: apt-get install openvswitch-switch; scripts/setup-deps.sh installs it)`;
  }
  if (!SCHEMA_CANDIDATES.some((p) => fs.existsSync(p))) return 'vswitch.ovsschema not found (openvswitch-common)';
  return undefined;
}

export function ovsVersion(): string {
  const r = trySh('ovs-vswitchd', ['--version']);
  return r.ok ? r.out.split('\n')[0]!.trim() : 'unknown';
}

export class Ovs {
  readonly dir: string;
  readonly db: string;
  readonly env: NodeJS.ProcessEnv;

  private constructor(
    topo: Topo,
    readonly ns: string,
    tag: string,
  ) {
    this.dir = topo.tempDir(`ovs${tag}`);
    this.db = `unix:${path.join(this.dir, 'db.sock')}`;
    this.env = { ...process.env, OVS_RUNDIR: this.dir, OVS_DBDIR: this.dir, OVS_LOGDIR: this.dir, OVS_SYSCONFDIR: this.dir };
  }

  // otherConfig: more Open_vSwitch other_config keys, set before
  // ovs-vswitchd starts (some, like userspace-tso-enable, are read only then).
  // vswitchd: another ovs-vswitchd binary (the DPDK build); env: more
  // environment for it (DPDK's RUNTIME_DIRECTORY).
  static async start(topo: Topo, ns: string, tag: string, pmdCpuMask: string, otherConfig: Record<string, string> = {}, vswitchd: { binary?: string; env?: Record<string, string> } = {}): Promise<Ovs> {
    const o = new Ovs(topo, ns, tag);
    const schema = SCHEMA_CANDIDATES.find((p) => fs.existsSync(p))!;
    sh('ovsdb-tool', ['create', path.join(o.dir, 'conf.db'), schema], 15_000, o.env);
    topo.spawnIn(
      ns,
      'ovsdb-server',
      [path.join(o.dir, 'conf.db'), `--remote=punix:${path.join(o.dir, 'db.sock')}`, `--pidfile=${path.join(o.dir, 'ovsdb-server.pid')}`,
        `--unixctl=${path.join(o.dir, 'ovsdb-server.ctl')}`, `--log-file=${path.join(o.dir, 'ovsdb-server.log')}`],
      o.env,
    );
    await o.waitFor(path.join(o.dir, 'db.sock'), 'ovsdb-server');
    o.vsctl(['--no-wait', 'init']);
    o.vsctl(['--no-wait', 'set', 'Open_vSwitch', '.', `other_config:pmd-cpu-mask=${pmdCpuMask}`, ...Object.entries(otherConfig).map(([k, v]) => `other_config:${k}=${v}`)]);
    topo.spawnIn(
      ns,
      vswitchd.binary ?? 'ovs-vswitchd',
      [o.db, `--pidfile=${path.join(o.dir, 'ovs-vswitchd.pid')}`, `--unixctl=${path.join(o.dir, 'ovs-vswitchd.ctl')}`,
        `--log-file=${path.join(o.dir, 'ovs-vswitchd.log')}`, '-vconsole:off'],
      { ...o.env, ...vswitchd.env },
    );
    await o.waitFor(path.join(o.dir, 'ovs-vswitchd.ctl'), 'ovs-vswitchd');
    topo.onCleanup(() => {
      trySh('ovs-appctl', [`--target=${path.join(o.dir, 'ovs-vswitchd.ctl')}`, 'exit', '--cleanup'], 5000, o.env);
    });
    return o;
  }

  private async waitFor(file: string, what: string): Promise<void> {
    for (let i = 0; i < 100; i++) {
      if (fs.existsSync(file)) return;
      await sleep(50);
    }
    throw new Error(`${what} did not start within 5 s (log: ${this.log(what)})`);
  }

  log(what = 'ovs-vswitchd'): string {
    try {
      return fs.readFileSync(path.join(this.dir, `${what}.log`), 'utf8').split('\n').slice(-8).join(' | ');
    } catch {
      return '(no log)';
    }
  }

  logLines(what = 'ovs-vswitchd'): string[] {
    try {
      return fs.readFileSync(path.join(this.dir, `${what}.log`), 'utf8').split('\n');
    } catch {
      return [];
    }
  }

  vsctl(args: string[], timeoutMs = 20_000): string {
    return sh('ovs-vsctl', [`--db=${this.db}`, '--timeout=15', ...args], timeoutMs, this.env);
  }

  // ovs-ofctl on a bridge of this instance (its br*.mgmt socket is in OVS_RUNDIR).
  ofctl(args: string[]): string {
    return sh('ovs-ofctl', args, 15_000, this.env);
  }

  appctl(args: string[]): string {
    return sh('ovs-appctl', [`--target=${path.join(this.dir, 'ovs-vswitchd.ctl')}`, ...args], 15_000, this.env);
  }

  // The interface's error column ('' when fine) and status map.
  ifaceState(name: string): { error: string; status: string; type: string } {
    const get = (col: string): string => trySh('ovs-vsctl', [`--db=${this.db}`, 'get', 'Interface', name, col], 5000, this.env).out.trim();
    const error = get('error');
    return { error: error === '[]' ? '' : error, status: get('status'), type: get('type') };
  }
}
