// Test helper (not a test file) for the BGP EVPN tests (issue 14): several
// hosts on one machine, each a network namespace, joined by one underlay
// segment:
//
//   - switch hosts: this switch, run by vpcd (its own state dir, socket and
//     managed gobgpd) inside the host's namespace; or, to check the lab
//     itself, a plain gobgpd whose routes the test adds with the gobgp CLI;
//   - one Linux host: a kernel VXLAN device (nolearning) enslaved to a
//     bridge with a guest on it, and Debian's FRR (zebra + bgpd,
//     `advertise-all-vni`) as its EVPN control plane.
//
//   underlay namespace "u": bridge "bund", one veth per host
//   host n (1..3): up0   kernel 198.18.1.n/24 (BGP), VTEP 198.18.0.n (the
//                        switch's uplink, the engine answers for it)
//   FRR host (n=9): eth0 kernel 198.18.1.9/24 (BGP) and 198.18.0.9/24 (its
//                        vxlan device's local address)
//   guests: one namespace each, behind a veth; overlay 198.19.100.0/24
//
// BGP runs between the kernel addresses (198.18.1.0/24), VXLAN between the
// VTEPs (198.18.0.0/24): both on the same wire, as on a host whose NIC
// carries its own address and the switch's VTEP (docs/operations.md, "The
// VTEP address"). One iBGP AS (private 64512), full mesh; each host gets
// only its own configuration.
//
// FRR facts (found by trying): its daemons refuse to run as root ("not part
// of vty group"), so they run as user frr with every path (pid file, zserv
// socket, vty sockets, config, log) in the lab's temp dir, owned by frr; and
// it advertises a local MAC only once its bridge has learned it (FRR issue
// 2768): the FRR host's guest must send first.
//
// Safety: every namespace is "vt<id>..." (test/ports/lab.ts), every address
// from 198.18.0.0/15; every process is started by the lab, kept by PID and
// killed by cleanup(); the namespaces take every interface with them. No
// interface of the root namespace is created or touched.

import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Guest, Lab, run, runAsync, skipReason, sleep } from '../ports/lab';
import { python, quietNetns } from '../overlay/vxlab';
import { spawnVpcd, VpcdProcess } from '../control/helpers';

export const ASN = 64512;
export const VNI = 100;
export const SWITCH = 'tenant';
export const FRR_INDEX = 9;
export const GUEST_MTU = 1450; // 1500 underlay - 50 (VXLAN over IPv4)
export const TEST_ETHERTYPE = 0x88b5; // IEEE local experimental
// Guest ports learn up to this many MACs (the default, 1,024, would stop
// the scale tests' 11,000 MACs from one guest).
const PORT_MAC_LIMIT = 16384;
// A small engine; an event ring that holds a burst of 10,000 learned MACs.
const ENGINE = 'engine: { bufferCount: 8192, hugepages: false, maxPorts: 8, maxSwitches: 4, eventRing: 32768 }\n';

const FRR_DIR = '/usr/lib/frr';
const GOBGPD = '/usr/bin/gobgpd';
const GOBGP = '/usr/bin/gobgp';

export function vtepIp(n: number): string {
  return `198.18.0.${n}`;
}
export function bgpIp(n: number): string {
  return `198.18.1.${n}`;
}
export function guestIp(n: number, k = 0): string {
  return `198.19.100.${n + 10 * k}`;
}
// 02:00:5e:10:<host>:<k>: locally administered, unique per guest.
export function guestMac(n: number, k = 0): string {
  return `02:00:5e:10:${n.toString(16).padStart(2, '0')}:${(k + 1).toString(16).padStart(2, '0')}`;
}

// ---------------------------------------------------------------- preconditions

function exists(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

// Why the EVPN lab cannot run here, or undefined.
export function evpnSkipReason(opts: { frr?: boolean } = {}): string | undefined {
  const base = skipReason(['ip', 'bridge', 'ping', 'sysctl', 'timeout']);
  if (base !== undefined) return base;
  const missing: string[] = [];
  if (!exists(GOBGPD) || !exists(GOBGP)) missing.push('gobgpd (Debian package gobgpd)');
  if (opts.frr !== false) {
    if (!exists(`${FRR_DIR}/zebra`) || !exists(`${FRR_DIR}/bgpd`) || !exists('/usr/bin/vtysh')) missing.push('FRR (Debian package frr)');
    else {
      try {
        execFileSync('id', ['frr'], { stdio: 'ignore' });
      } catch {
        missing.push('the user frr (Debian package frr creates it)');
      }
    }
  }
  if (python() === undefined) missing.push('python3 with AF_PACKET sockets');
  if (missing.length > 0) return `missing: ${missing.join(', ')} (install with: bash scripts/setup-deps.sh)`;
  return undefined;
}

// ---------------------------------------------------------------- hosts

export interface Host {
  n: number; // index: addresses and MACs derive from it
  ns: string;
  dev: string; // the underlay interface in ns
  vtep: string;
  bgp: string;
  guest: Guest; // the guest's namespace and NIC
  hostDev: string; // the guest veth's end in the host namespace
}

export interface SwitchHost extends Host {
  dir: string; // vpcd's dir: socket, state, config
  extraPorts: string[]; // more guest veths (host side) the switch takes as ports
  vpcd?: VpcdProcess;
  gobgpd?: ChildProcess; // plain gobgpd (lab check mode)
  apiPort: number; // plain gobgpd's gRPC port
}

export interface FrrHost extends Host {
  dir: string;
  zebra?: ChildProcess;
  bgpd?: ChildProcess;
}

export interface EvpnLabOptions {
  switchHosts?: number; // default 3
  frr?: boolean; // default true
  keepalive?: number; // seconds, default 3
  holdTime?: number; // seconds, default 9
  // The FRR host is the route reflector: switch hosts peer with it alone,
  // and it accepts any speaker of the underlay subnet (bgp listen range),
  // so a new host needs no change elsewhere. Default: full mesh.
  routeReflector?: boolean;
}

export interface FdbView {
  mac: string;
  port?: string;
  vtep?: string;
  [k: string]: unknown;
}

export class EvpnLab {
  readonly lab = new Lab();
  readonly tmp: string;
  readonly hosts: SwitchHost[] = [];
  frr?: FrrHost;
  readonly underlay: string;
  readonly keepalive: number;
  readonly holdTime: number;
  readonly routeReflector: boolean;
  private readonly children: ChildProcess[] = [];

  constructor(opts: EvpnLabOptions = {}) {
    this.keepalive = opts.keepalive ?? 3;
    this.holdTime = opts.holdTime ?? 9;
    this.routeReflector = opts.routeReflector === true;
    if (this.routeReflector && opts.frr === false) throw new Error('the route reflector is the FRR host: frr must be true');
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${this.lab.name('e')}-`));
    fs.chmodSync(this.tmp, 0o755); // FRR (user frr) reaches its own dir inside
    try {
      this.underlay = quietNetns(this.lab, 'u');
      run('ip', ['-n', this.underlay, 'link', 'add', 'bund', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
      run('ip', ['-n', this.underlay, 'link', 'set', 'bund', 'up']);
      for (let n = 1; n <= (opts.switchHosts ?? 3); n++) this.hosts.push(this.switchHost(n));
      if (opts.frr !== false) this.frr = this.frrHost(FRR_INDEX);
    } catch (err) {
      this.cleanupSync();
      throw err;
    }
  }

  // Every host of the lab, the FRR host last.
  get all(): Host[] {
    return this.frr ? [...this.hosts, this.frr] : [...this.hosts];
  }

  get guests(): Guest[] {
    return this.all.map((h) => h.guest);
  }

  // ------------------------------------------------------------ topology

  // A host namespace with its underlay veth on the underlay bridge.
  private hostNs(tag: string, dev: string): string {
    const ns = quietNetns(this.lab, tag);
    run('ip', ['-n', this.underlay, 'link', 'add', `u${tag}`, 'type', 'veth', 'peer', 'name', dev, 'netns', ns]);
    run('ip', ['-n', this.underlay, 'link', 'set', `u${tag}`, 'master', 'bund', 'up']);
    run('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    return ns;
  }

  // A guest namespace behind a veth whose end `hostDev` is in `hostNs`.
  addGuest(tag: string, hostNs: string, hostDev: string, mac: string, ip: string): Guest {
    const ns = quietNetns(this.lab, tag);
    run('ip', ['-n', hostNs, 'link', 'add', hostDev, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    run('ip', ['-n', hostNs, 'link', 'set', hostDev, 'mtu', String(GUEST_MTU), 'up']);
    return this.lab.configure(ns, 'eth0', mac, `${ip}/24`, GUEST_MTU);
  }

  private switchHost(n: number): SwitchHost {
    const ns = this.hostNs(`h${n}`, 'up0');
    // The kernel's own address (BGP); the VTEP address is the engine's.
    run('ip', ['-n', ns, 'addr', 'add', `${bgpIp(n)}/24`, 'dev', 'up0']);
    const guest = this.addGuest(`g${n}`, ns, `g${n}`, guestMac(n), guestIp(n));
    const dir = path.join(this.tmp, `h${n}`);
    fs.mkdirSync(dir);
    return { n, ns, dev: 'up0', vtep: vtepIp(n), bgp: bgpIp(n), guest, hostDev: `g${n}`, dir, apiPort: 50051, extraPorts: [] };
  }

  private frrHost(n: number): FrrHost {
    const ns = this.hostNs(`f${n}`, 'eth0');
    run('ip', ['-n', ns, 'addr', 'add', `${bgpIp(n)}/24`, 'dev', 'eth0']);
    run('ip', ['-n', ns, 'addr', 'add', `${vtepIp(n)}/24`, 'dev', 'eth0']);
    const vx = `vx${VNI}`;
    const br = `br${VNI}`;
    // No learning from the data plane: remote MACs come from BGP only.
    run('ip', ['-n', ns, 'link', 'add', vx, 'type', 'vxlan', 'id', String(VNI), 'local', vtepIp(n), 'dstport', '4789', 'nolearning']);
    run('ip', ['-n', ns, 'link', 'add', br, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    run('ip', ['-n', ns, 'link', 'set', vx, 'master', br]);
    run('ip', ['-n', ns, 'link', 'set', vx, 'up']);
    run('ip', ['-n', ns, 'link', 'set', br, 'up']);
    const guest = this.addGuest(`g${n}`, ns, `g${n}`, guestMac(n), guestIp(n));
    run('ip', ['-n', ns, 'link', 'set', `g${n}`, 'master', br]);
    const dir = path.join(this.tmp, `f${n}`);
    fs.mkdirSync(dir);
    return { n, ns, dev: 'eth0', vtep: vtepIp(n), bgp: bgpIp(n), guest, hostDev: `g${n}`, dir };
  }

  // A second guest on switch host h (port m<n> of its switch), its NIC
  // down until a test brings it up (a VM that arrives later: a MAC move).
  // Call before vpcd starts.
  spareGuest(h: SwitchHost, mac: string, ip: string): Guest {
    const g = this.addGuest(`m${h.n}`, h.ns, `m${h.n}`, mac, ip);
    run('ip', ['-n', g.ns, 'link', 'set', g.dev, 'down']);
    h.extraPorts.push(`m${h.n}`);
    return g;
  }

  // The BGP addresses of every host but `self`.
  neighborsOf(self: Host): string[] {
    if (this.routeReflector && self !== this.frr) return [this.frr!.bgp];
    return this.all.filter((h) => h !== self).map((h) => h.bgp);
  }

  // ------------------------------------------------------------ vpcd

  // Host n's vpcd configuration: its uplink, its BGP speaker, its switch and
  // guest port. No peer list, no remote MAC: BGP EVPN finds those.
  vpcdConfig(h: SwitchHost, extra: { bgp?: string; switch?: string } = {}): string {
    const neighbors = this.neighborsOf(h)
      .map((ip) => `    - ${ip}\n`)
      .join('');
    return `${ENGINE}uplinks:
  - { name: up0, type: afpacket, interface: up0, localIp: ${h.vtep}/24 }
bgp:
  asn: ${ASN}
  routerId: ${h.bgp}
  keepalive: ${this.keepalive}
  holdTime: ${this.holdTime}
  localAddress: ${h.bgp}
${this.routeReflector ? `  routeReflector: ${this.frr!.bgp}\n` : `  neighbors:\n${neighbors}`}${extra.bgp ?? ''}switches:
  - name: ${SWITCH}
    vni: ${VNI}
${extra.switch ?? ''}    ports:
${[h.hostDev, ...h.extraPorts].map((p) => `      - { name: ${p}, type: afpacket, interface: ${p}, macLimit: ${PORT_MAC_LIMIT} }\n`).join('')}`;
  }

  // vpcd on host h, waited for up to 60 s: with its managed gobgpd to start
  // and connect to, on a loaded machine it can take longer than the
  // control tests' 15 s.
  async startVpcd(h: SwitchHost, config = this.vpcdConfig(h)): Promise<VpcdProcess> {
    const v = await spawnVpcd({ dir: h.dir, config, netns: h.ns, waitReady: false });
    this.lab.own(v.proc);
    h.vpcd = v;
    let exited = false;
    void v.exited.then(() => (exited = true));
    await this.until(() => exited || v.logs.some((l) => l.includes('"msg":"vpcd ready"')), 60_000, `vpcd on host ${h.n} is ready`).catch((e: Error) => {
      throw new Error(`${e.message}\n${v.logs.join('\n')}\n${v.stderr.join('')}`);
    });
    if (exited) throw new Error(`vpcd on host ${h.n} exited at start:\n${v.logs.join('\n')}\n${v.stderr.join('')}`);
    return v;
  }

  async startAllVpcd(): Promise<void> {
    await Promise.all(this.hosts.map((h) => this.startVpcd(h)));
  }

  // The processes in namespace `ns` (all started by the lab).
  pidsIn(ns: string): number[] {
    try {
      return run('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return []; // namespace gone
    }
  }

  // The gobgpd processes in host h's namespace (vpcd's managed one, or the
  // plain one under its timeout wrapper).
  gobgpdPids(h: Host): number[] {
    return this.pidsIn(h.ns).filter((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'gobgpd';
      } catch {
        return false;
      }
    });
  }

  // kill -9 of host h's gobgpd (by PID); resolves with the PIDs killed.
  killGobgpd(h: Host): number[] {
    const pids = this.gobgpdPids(h);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    return pids;
  }

  // This switch's FDB on host h, through its vpcd.
  async fdb(h: SwitchHost): Promise<FdbView[]> {
    if (!h.vpcd) throw new Error(`host ${h.n}: vpcd is not running`);
    const r = await h.vpcd.client.call<{ entries: FdbView[] }>('GET', `/v1/switches/${SWITCH}/fdb`);
    return r.entries;
  }

  // mac -> where host h forwards it: "local:<port>" or the remote VTEP.
  async where(h: Host): Promise<Map<string, string>> {
    if (h === this.frr) return this.frrFdb();
    const m = new Map<string, string>();
    for (const e of await this.fdb(h as SwitchHost)) m.set(e.mac.toLowerCase(), e.vtep ?? `local:${e.port ?? '?'}`);
    return m;
  }

  async stats(h: SwitchHost): Promise<{ engine: Record<string, number>; peers: Record<string, Record<string, number>>; switches: Record<string, { counters: Record<string, number> }> }> {
    if (!h.vpcd) throw new Error(`host ${h.n}: vpcd is not running`);
    return h.vpcd.client.call('GET', '/v1/stats');
  }

  // vpcd's EVPN status on host h (GET /v1/bgp): sessions, routes received
  // and installed, pending work, errors; for failure messages.
  async bgpStatus(h: SwitchHost): Promise<string> {
    try {
      return JSON.stringify((await h.vpcd!.client.call<{ bgp: unknown }>('GET', '/v1/bgp')).bgp);
    } catch (e) {
      return `(no status: ${(e as Error).message})`;
    }
  }

  // Entries in the switch's FDB on host h: a counter read on switch hosts
  // (cheap enough to poll while 10,000 entries go in), a dump on FRR's.
  async fdbSize(h: Host): Promise<number> {
    if (h === this.frr) return this.frrFdb().size - 1; // less the flood list
    return (await this.stats(h as SwitchHost)).switches[SWITCH]?.counters.fdb_entries ?? 0;
  }

  // ------------------------------------------------------------ plain gobgpd (lab check)

  // A gobgpd of our own in host h's namespace, peering with every other
  // host, its gRPC API on 127.0.0.1 of that namespace.
  async startPlainGobgpd(h: SwitchHost): Promise<void> {
    const file = path.join(h.dir, 'gobgpd.toml');
    const neighbors = this.neighborsOf(h)
      .map(
        (ip) => `[[neighbors]]
  [neighbors.config]
    neighbor-address = "${ip}"
    peer-as = ${ASN}
  [neighbors.timers.config]
    hold-time = ${this.holdTime}
    keepalive-interval = ${this.keepalive}
    connect-retry = 1
  [neighbors.transport.config]
    local-address = "${h.bgp}"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "l2vpn-evpn"
`,
      )
      .join('');
    fs.writeFileSync(file, `[global.config]\n  as = ${ASN}\n  router-id = "${h.bgp}"\n  local-address-list = ["${h.bgp}"]\n${neighbors}`);
    // Bounded: a forgotten gobgpd ends by itself.
    const child = spawn('ip', ['netns', 'exec', h.ns, 'timeout', '600', GOBGPD, '-f', file, '-t', 'toml', '--api-hosts', `127.0.0.1:${h.apiPort}`, '--pprof-disable', '-p'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.own(child, path.join(h.dir, 'gobgpd.log'));
    h.gobgpd = child;
    await this.until(async () => (await this.gobgp(h, ['global'])).code === 0, 10_000, `gobgpd on host ${h.n} answers`);
  }

  // The gobgp CLI against host h's gobgpd: the plain one, or vpcd's managed
  // one (its API address read from its command line).
  gobgp(h: SwitchHost, args: string[]): Promise<{ code: number; out: string }> {
    let target = `127.0.0.1:${h.apiPort}`;
    if (!h.gobgpd) {
      const pid = this.gobgpdPids(h)[0];
      if (pid === undefined) return Promise.resolve({ code: 1, out: `no gobgpd runs on host ${h.n}` });
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const i = argv.findIndex((a) => a.startsWith('--api-hosts'));
      const v = i < 0 ? undefined : argv[i].includes('=') ? argv[i].split('=')[1] : argv[i + 1];
      if (v !== undefined) target = v.split(',')[0]!;
    }
    const m = /^(.*):(\d+)$/.exec(target);
    const hostPart = (m?.[1] ?? '127.0.0.1').replace(/^\[|\]$/g, '') || '127.0.0.1';
    return runAsync('ip', ['netns', 'exec', h.ns, GOBGP, '-u', hostPart, '-p', m?.[2] ?? '50051', ...args], 15_000);
  }

  // Host h's IMET (type 3) and MAC (type 2) routes, as its switch would
  // advertise them: RD <bgp>:<vni>, RT ASN:VNI, VXLAN encapsulation, PMSI
  // ingress replication to its VTEP, next hop its VTEP.
  async advertisePlain(h: SwitchHost, macs: string[]): Promise<void> {
    const common = ['rd', `${h.bgp}:${VNI}`, 'rt', `${ASN}:${VNI}`, 'encap', 'vxlan'];
    const cmds = [
      ['global', 'rib', '-a', 'evpn', 'add', 'multicast', h.vtep, 'etag', '0', ...common, 'pmsi', 'ingress-repl', String(VNI), h.vtep, 'nexthop', h.vtep],
      ...macs.map((mac) => ['global', 'rib', '-a', 'evpn', 'add', 'macadv', mac, '0.0.0.0', 'etag', '0', 'label', String(VNI), ...common, 'nexthop', h.vtep]),
    ];
    for (const c of cmds) {
      const r = await this.gobgp(h, c);
      if (r.code !== 0) throw new Error(`gobgp ${c.join(' ')} on host ${h.n}: ${r.out}`);
    }
  }

  // How many EVPN destinations host h's gobgpd holds (its RIB, local and
  // received), from `gobgp global rib summary`.
  async ribSize(h: SwitchHost): Promise<number> {
    const r = await this.gobgp(h, ['global', 'rib', 'summary', '-a', 'evpn']);
    const m = /Destination:\s*(\d+)/.exec(r.out);
    if (r.code !== 0 || !m) throw new Error(`gobgp rib summary on host ${h.n}: ${r.out}`);
    return Number(m[1]);
  }

  async gobgpNeighbors(h: SwitchHost): Promise<Array<{ address: string; state: string }>> {
    const r = await this.gobgp(h, ['neighbor', '-j']);
    if (r.code !== 0) throw new Error(`gobgp neighbor on host ${h.n}: ${r.out}`);
    const list = JSON.parse(r.out) as Array<{ conf: { neighbor_address: string }; state: { session_state: number | string } }>;
    // session_state: 6 (or "ESTABLISHED") is Established
    return list.map((p) => ({ address: p.conf.neighbor_address, state: String(p.state.session_state) }));
  }

  // ------------------------------------------------------------ FRR

  // zebra + bgpd for the FRR host, as user frr, everything under its dir.
  async startFrr(): Promise<void> {
    const f = this.frr;
    if (!f) throw new Error('this lab has no FRR host');
    const conf = path.join(f.dir, 'frr.conf');
    // Full mesh: every switch host by address. Route reflector: one peer
    // group that any speaker of the underlay subnet joins (listen range).
    const peers = this.routeReflector ? ['hosts'] : this.neighborsOf(f);
    fs.writeFileSync(
      conf,
      `frr defaults traditional
hostname frr${f.n}
router bgp ${ASN}
 bgp router-id ${f.bgp}
 no bgp default ipv4-unicast
 timers bgp ${this.keepalive} ${this.holdTime}
${this.routeReflector ? ' neighbor hosts peer-group\n' : ''}${peers.map((p) => ` neighbor ${p} remote-as ${ASN}\n neighbor ${p} timers connect 1\n neighbor ${p} update-source ${f.bgp}\n`).join('')}${this.routeReflector ? ` bgp listen range ${bgpIp(0)}/24 peer-group hosts\n` : ''} address-family l2vpn evpn
${peers.map((p) => `  neighbor ${p} activate\n${this.routeReflector ? `  neighbor ${p} route-reflector-client\n` : ''}`).join('')}  advertise-all-vni
 exit-address-family
`,
    );
    fs.writeFileSync(path.join(f.dir, 'zebra.conf'), '');
    execFileSync('chown', ['-R', 'frr:frr', f.dir]);
    const common = (daemon: string): string[] => [
      '-u', 'frr', '-g', 'frr',
      '-i', path.join(f.dir, `${daemon}.pid`),
      '-z', path.join(f.dir, 'zserv.api'),
      '--vty_socket', f.dir,
      '-P', '0',
      '--log', `file:${path.join(f.dir, `${daemon}.log`)}`,
    ];
    f.zebra = this.spawnIn(f.ns, 'timeout', ['900', `${FRR_DIR}/zebra`, ...common('zebra'), '-f', path.join(f.dir, 'zebra.conf')], path.join(f.dir, 'zebra.out'));
    await this.until(() => fs.existsSync(path.join(f.dir, 'zserv.api')), 10_000, 'zebra listens on its zserv socket');
    f.bgpd = this.spawnIn(f.ns, 'timeout', ['900', `${FRR_DIR}/bgpd`, ...common('bgpd'), '-f', conf], path.join(f.dir, 'bgpd.out'));
    // "No BGP neighbors" until a speaker of the listen range connects.
    await this.until(async () => /local AS number|No BGP neighbors/.test(await this.vtysh('show bgp l2vpn evpn summary')), 15_000, 'bgpd answers vtysh');
  }

  async vtysh(...cmds: string[]): Promise<string> {
    const f = this.frr;
    if (!f) throw new Error('this lab has no FRR host');
    const r = await runAsync('ip', ['netns', 'exec', f.ns, '/usr/bin/vtysh', '--vty_socket', f.dir, ...cmds.flatMap((c) => ['-c', c])], 15_000);
    return r.out;
  }

  // Waits until FRR has a session established with every switch host.
  async frrSessionsUp(timeoutMs = 40_000): Promise<void> {
    await this.until(async () => {
      const s = await this.frrSessions();
      return this.hosts.every((h) => s.get(h.bgp) === 'Established');
    }, timeoutMs, 'FRR has its sessions with the switch hosts established').catch(async (e: Error) => {
      throw new Error(`${e.message}\n${await this.vtysh('show bgp l2vpn evpn summary')}\n${this.logs()}`);
    });
  }

  // Waits until every flood list has every other host's VTEP: each switch
  // host's (its EVPN status: the VTEPs of the IMET routes it installed) and
  // FRR's (its kernel FDB). Sessions being Established is not enough: FRR
  // sends a new peer its table only when its update group's coalesce timer
  // fires (1 s by default in FRR 8.4), and reflects routes with that delay
  // too, so for about a second a broadcast (the first ARP of a ping) reaches
  // only some hosts. Resolves with the time it took, in ms.
  async floodListsComplete(timeoutMs = 30_000): Promise<number> {
    const t0 = Date.now();
    const others = this.all.length - 1;
    const frrWant = this.hosts.map((h) => h.vtep).sort().join(',');
    await this.until(async () => {
      for (const h of this.hosts) {
        const b = (await h.vpcd!.client.call<{ bgp: { evpn: { floodPeers: number } } | null }>('GET', '/v1/bgp')).bgp;
        if (b?.evpn.floodPeers !== others) return false;
      }
      return this.frr === undefined || this.frrFdb().get('flood') === frrWant;
    }, timeoutMs, 'every flood list has every other VTEP').catch(async (e: Error) => {
      throw new Error(`${e.message}\n${(await Promise.all(this.hosts.map((h) => this.bgpStatus(h)))).join('\n')}\nFRR flood list: ${this.frr ? this.frrFdb().get('flood') : '-'}\n${this.logs()}`);
    });
    return Date.now() - t0;
  }

  // FRR's BGP sessions: neighbour -> state ("Established" or the FSM state).
  async frrSessions(): Promise<Map<string, string>> {
    const out = await this.vtysh('show bgp l2vpn evpn summary json');
    const m = new Map<string, string>();
    try {
      const j = JSON.parse(out) as { peers?: Record<string, { state: string }> };
      for (const [ip, p] of Object.entries(j.peers ?? {})) m.set(ip, p.state);
    } catch {
      // not up yet: no JSON
    }
    return m;
  }

  // The kernel FDB of the FRR host's vxlan device: mac -> VTEP for entries
  // with a dst, "local:<dev>" for what its bridge learned locally, and the
  // flood list (00:00:00:00:00:00) under "flood" as a sorted, comma-joined list.
  frrFdb(): Map<string, string> {
    const f = this.frr;
    if (!f) throw new Error('this lab has no FRR host');
    const m = new Map<string, string>();
    const flood: string[] = [];
    for (const line of run('bridge', ['-n', f.ns, 'fdb', 'show', 'br', `br${VNI}`]).split('\n')) {
      const mm = /^([0-9a-f:]{17}) dev (\S+)(?: dst (\S+))?/.exec(line);
      if (!mm || / permanent/.test(line) && !mm[3]) continue;
      const [, mac, dev, dst] = mm;
      if (mac === '00:00:00:00:00:00') {
        if (dst) flood.push(dst);
        continue;
      }
      if (dst) m.set(mac, dst);
      else if (!m.has(mac) && dev !== `vx${VNI}`) m.set(mac, `local:${dev}`);
    }
    m.set('flood', flood.sort().join(','));
    return m;
  }

  // ------------------------------------------------------------ processes

  // A daemon of the lab in `ns`, its output to `log`; cleanup() kills it.
  spawnIn(ns: string, cmd: string, args: string[], log: string): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.own(child, log);
    return child;
  }

  private own(child: ChildProcess, log: string): void {
    const out = fs.createWriteStream(log);
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    this.children.push(child);
    this.lab.own(child);
  }

  async until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
      await sleep(50);
    }
  }

  // A file of the lab (logs) for a failure message; '' if absent.
  tail(file: string, lines = 30): string {
    try {
      return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  // Every log of the lab, last lines, for an assertion message.
  logs(): string {
    const parts: string[] = [];
    for (const h of this.hosts) {
      if (h.vpcd) parts.push(`--- host ${h.n} vpcd:\n${h.vpcd.logs.slice(-15).join('\n')}\n${h.vpcd.stderr.join('').slice(-1500)}`);
      const g = this.tail(path.join(h.dir, 'gobgpd.log'), 10);
      if (g) parts.push(`--- host ${h.n} gobgpd:\n${g}`);
    }
    if (this.frr) for (const d of ['zebra', 'bgpd']) parts.push(`--- FRR ${d}:\n${this.tail(path.join(this.frr.dir, `${d}.log`), 10)}`);
    return parts.join('\n');
  }

  async cleanup(): Promise<void> {
    // vpcd first and gently: it stops its gobgpd and releases its ports.
    await Promise.all(
      this.hosts.map(async (h) => {
        if (!h.vpcd) return;
        const t = setTimeout(() => h.vpcd?.proc.kill('SIGKILL'), 5000);
        await h.vpcd.stop();
        clearTimeout(t);
      }),
    );
    this.cleanupSync();
  }

  private cleanupSync(): void {
    // Whatever still runs in the lab's namespaces was started by the lab (a
    // managed gobgpd vpcd left after kill -9, a daemon under its timeout
    // wrapper): killed by PID before the namespaces go.
    for (const h of this.all) {
      for (const pid of this.pidsIn(h.ns)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    this.lab.cleanup();
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- frames

const MANY = `
import socket, sys, json, time
a = json.loads(sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((a["iface"], 0))
dst = bytes.fromhex(a["dst"].replace(":", ""))
prefix = bytes.fromhex(a["prefix"].replace(":", ""))
et = a["ethertype"].to_bytes(2, "big")
pad = bytes(46)
t0 = time.time()
for i in range(a["start"], a["start"] + a["count"]):
    src = prefix + i.to_bytes(6 - len(prefix), "big")
    for _ in range(3):
        try:
            s.send(dst + src + et + pad)
            break
        except BlockingIOError:
            time.sleep(0.001)
    if a.get("every") and i % a["every"] == 0:
        time.sleep(a.get("pause", 0.001))
print(json.dumps({"t0": t0, "t1": time.time()}), flush=True)
`;

// Sends one broadcast frame from each of `count` source MACs
// <prefix>:<index> (prefix of 2-5 bytes) out of `iface` in `ns`. Resolves
// with the wall-clock time (ms) the first frame was sent and the last.
export async function sendFromMacs(ns: string, iface: string, prefix: string, start: number, count: number, opts: { every?: number; pause?: number } = {}): Promise<{ t0: number; t1: number }> {
  const py = python();
  if (!py) throw new Error('python3 missing');
  const arg = JSON.stringify({ iface, dst: 'ff:ff:ff:ff:ff:ff', prefix, start, count, ethertype: TEST_ETHERTYPE, ...opts });
  const r = await runAsync('ip', ['netns', 'exec', ns, py, '-c', MANY, arg], 120_000);
  if (r.code !== 0) throw new Error(`sending from ${count} MACs in ${ns}/${iface} failed: ${r.out}`);
  const j = JSON.parse(r.out.trim().split('\n').pop() ?? '{}') as { t0: number; t1: number };
  return { t0: j.t0 * 1000, t1: j.t1 * 1000 };
}

// Runs `fn` on a new lab and tears it down afterwards; skips the test, with
// the reason, where the lab cannot run.
export async function withEvpnLab(t: { skip(msg: string): void }, opts: EvpnLabOptions, fn: (lab: EvpnLab) => Promise<void>): Promise<void> {
  const reason = evpnSkipReason();
  if (reason !== undefined) {
    t.skip(reason);
    return;
  }
  const lab = new EvpnLab(opts);
  try {
    await fn(lab);
  } finally {
    await lab.cleanup();
  }
}
