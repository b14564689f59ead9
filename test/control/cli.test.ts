// vpcctl against a running vpcd (child process, private socket): human and
// JSON output, and exit codes. Most cases run the CLI in-process through
// runCli() (createProgram + exitOverride); a few run the real vpcctl binary.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXIT, runCli } from '../../src/control/cli';
import { withBackend } from '../../src/control/cli/port';
import { StateStore } from '../../src/control/state';
import { frameHex, removeDir, spawnVpcd, TEST_ENGINE, VpcdProcess, VPCCTL, eventually } from './helpers';

interface Run {
  code: number;
  out: string;
  err: string;
}

let d: VpcdProcess;
const CONFIG_FILE = (): string => d.configFile;

async function cli(...args: string[]): Promise<Run> {
  let out = '';
  let err = '';
  const code = await runCli(['--socket', d.socket, ...args], { out: (t) => (out += t), err: (t) => (err += t), sleep: async () => undefined });
  return { code, out, err };
}

function bin(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [VPCCTL, ...args], { env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : (error as NodeJS.ErrnoException & { code: number }).code, out: stdout, err: stderr });
    });
  });
}

const CONFIG = `${TEST_ENGINE}switches:
  - name: tenant-a
    vni: 1001
    ports:
      - { name: vm1, type: pipe, mac: "02:00:00:00:0a:01" }
      - { name: vm2, type: pipe, mac: "02:00:00:00:0a:02" }
`;

describe('vpcctl against vpcd', () => {
  before(async () => {
    d = await spawnVpcd({ config: CONFIG, testHooks: true });
  });
  after(async () => {
    await d.stop();
    removeDir(d.dir);
  });

  test('request bodies: a dryRun that is not a boolean, or a field that is not the request\'s, is refused and changes nothing', async () => {
    const before = JSON.stringify((await d.client.call<{ state: unknown }>('GET', '/v1/state')).state);
    const wipe = 'switches: [{ name: probe, vni: 4000 }]\n'; // applied, it would delete tenant-a and its ports
    for (const [body, field] of [
      [{ config: wipe, dryRun: 'true' }, 'dryRun'],
      [{ config: wipe, dryRun: 1 }, 'dryRun'],
      [{ config: wipe, dryRun: null }, 'dryRun'],
      [{ config: wipe, dry_run: true }, 'dry_run'],
      [{ config: wipe, source: 7 }, 'source'],
    ] as const) {
      const r = await d.client.raw('POST', '/v1/apply', body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.equal((r.body as { error: { field?: string } }).error.field, field, JSON.stringify(r.body));
    }
    const flush = await d.client.raw('POST', '/v1/switches/tenant-a/fdb/flush', { prot: 'vm1' });
    assert.equal(flush.status, 400, JSON.stringify(flush.body));
    assert.match(JSON.stringify(flush.body), /prot: not a field of this request \(expected one of: port\)/);
    assert.equal(JSON.stringify((await d.client.call<{ state: unknown }>('GET', '/v1/state')).state), before, 'nothing changed');
    // The well-formed dry run still works.
    const dry = await d.client.call<{ applied: boolean }>('POST', '/v1/apply', { config: wipe, dryRun: true });
    assert.equal(dry.applied, false);
  });

  test('updates that change nothing, contradicting options, --set repeating an option and a file apply cannot read are usage errors, and change nothing', async () => {
    const before = JSON.stringify((await d.client.call<{ state: unknown }>('GET', '/v1/state')).state);
    for (const [args, msg] of [
      [['switch', 'update', 'tenant-a'], /switch update: nothing to update; give at least one of --mac-limit, --aging-seconds, --learning, --remote-learning/],
      [['port', 'update', 'vm1'], /port update: nothing to update; give at least one of --mtu/],
      [['port', 'update', 'vm1', '--locked-mac', 'zz', '--unlock'], /--locked-mac and --unlock contradict each other/],
      [['port', 'create', 'q1', '--type', 'pipe', '--switch', 'tenant-a', '--set', 'name="other"'], /--set name: the name is the argument/],
      [['port', 'create', 'q1', '--type', 'pipe', '--switch', 'tenant-a', '--mtu', '1500', '--set', 'mtu=1400'], /--set mtu: mtu is given twice/],
      [['apply', '-f', '/nonexistent/vpc.yaml'], /apply: cannot read \/nonexistent\/vpc\.yaml: no such file/],
      [['apply', '-f', '/'], /apply: cannot read \/: it is a directory/],
    ] as const) {
      const r = await cli(...args);
      assert.equal(r.code, EXIT.USAGE, `${args.join(' ')}: ${r.out}${r.err}`);
      assert.match(r.err, msg);
    }
    assert.equal(JSON.stringify((await d.client.call<{ state: unknown }>('GET', '/v1/state')).state), before, 'nothing changed');
  });

  test('status: human and JSON', async () => {
    const h = await cli('status');
    assert.equal(h.code, EXIT.OK, h.err);
    assert.match(h.out, /^vpcd\s+0\.\d+\.\d+ \(pid \d+\)/m);
    assert.match(h.out, /^objects\s+1 switches, 2 ports, 0 uplink\(s\), 0 peers, 0 static fdb entries$/m);
    // The link watch: root follows every namespace's link messages.
    assert.match(h.out, process.getuid?.() === 0 ? /^link watch\s+all-namespaces$/m : /^link watch\s+(all-namespaces|own-namespace \(NETLINK_LISTEN_ALL_NSID: .+\))$/m);
    const j = await cli('--json', 'status');
    assert.equal(JSON.parse(j.out).counts.ports, 2);
    const lw = JSON.parse(j.out).engine.linkWatch;
    if (process.getuid?.() === 0) assert.deepEqual(lw, { mode: 'all-namespaces' });
    else assert.ok(lw.mode === 'all-namespaces' || (lw.mode === 'own-namespace' && /NETLINK_LISTEN_ALL_NSID/.test(lw.why)), JSON.stringify(lw));
  });

  test('switch create/list/show/update/delete with idempotent create and a conflict', async () => {
    let r = await cli('switch', 'create', 'tenant-b', '--vni', '1002', '--mac-limit', '500');
    assert.equal(r.code, EXIT.OK, r.err);
    // vpcd runs with --config: said, as its next reload undoes the change
    // unless the file has it too. Not when nothing changed.
    assert.equal(r.out.replace(/uuid [0-9a-f-]{36}/, 'uuid U'), 'created: switch tenant-b vni 1002 uuid U\n' +
      `warning: vpcd runs with --config ${d.configFile}: a reload (SIGHUP) or restart applies that file again and undoes this change unless the file says the same; put the change in that file\n`);
    r = await cli('switch', 'create', 'tenant-b', '--vni', '1002', '--mac-limit', '500');
    assert.equal(r.code, EXIT.OK);
    assert.match(r.out, /^exists \(same spec\): switch tenant-b/);
    assert.doesNotMatch(r.out, /warning/);
    r = await cli('switch', 'create', 'tenant-b', '--vni', '1003', '--mac-limit', '500');
    assert.equal(r.code, EXIT.CONFLICT);
    assert.match(r.err, /vni: switch "tenant-b" exists with a different spec .*\[ERR_SPEC_CONFLICT\]/);
    // What the request gave is named first; a value it did not give is the
    // default, said so (not "requested").
    r = await cli('switch', 'create', 'tenant-b', '--vni', '1003');
    assert.equal(r.code, EXIT.CONFLICT);
    assert.match(r.err, /^vpcctl: vni: switch "tenant-b" exists with a different spec \(vni: 1002 running, 1003 requested; macLimit: 500 running, 65536 by default \(not given\)\)/);

    r = await cli('switch', 'list');
    assert.match(r.out, /^NAME\s+VNI\s+PORTS\s+MAC-LIMIT\s+AGING\s+LEARNING\s+REMOTE-LEARNING\s+UUID$/m);
    assert.match(r.out, /^tenant-a\s+1001\s+vm1,vm2\s+65536\s+300s\s+on\s+on\s+[0-9a-f-]{36}$/m);
    assert.match(r.out, /^tenant-b\s+1002\s+-\s+500\s/m);
    const j = JSON.parse((await cli('--json', 'switch', 'list')).out);
    assert.deepEqual(j.switches.map((s: { name: string }) => s.name), ['tenant-a', 'tenant-b']);

    const uuid = j.switches[1].uuid as string;
    r = await cli('switch', 'show', uuid);
    assert.match(r.out, /^name\s+tenant-b$/m);
    r = await cli('switch', 'update', 'tenant-b', '--aging-seconds', '60');
    assert.equal(r.code, EXIT.OK, r.err);
    assert.match(r.out, /~ switch tenant-b: agingSeconds 300 -> 60/);
    r = await cli('switch', 'update', 'tenant-b', '--aging-seconds', '60');
    assert.deepEqual([r.code, r.out], [EXIT.OK, 'no change: switch tenant-b already has these settings\n'], 'the same again is said to change nothing');
    r = await cli('switch', 'delete', 'tenant-b');
    assert.equal(r.code, EXIT.OK);
    r = await cli('switch', 'show', 'tenant-b');
    assert.equal(r.code, EXIT.NOT_FOUND);
    assert.match(r.err, /\[ERR_UNKNOWN_SWITCH\]/);
    r = await cli('switch', 'delete', 'tenant-a');
    assert.equal(r.code, EXIT.CONFLICT);
    assert.match(r.err, /still has ports attached: vm1, vm2 \[ERR_SWITCH_IN_USE\]/);
  });

  test('port and fdb commands; traffic shows in fdb list and stats', async () => {
    let r = await cli('port', 'create', 'trunk', '--type', 'pipe', '--vlan', '10=tenant-a', '--mtu', '1400');
    assert.equal(r.code, EXIT.OK, r.err);
    assert.match(r.out, /created: port trunk \(pipe, 10=tenant-a\)/);
    r = await cli('port', 'list');
    assert.match(r.out, /^NAME\s+TYPE\s+MODE\s+SWITCH\s+LINK\s+MTU/m);
    assert.match(r.out, /^trunk\s+pipe\s+trunk\s+10=tenant-a\s+up\s+1400\s/m);
    r = await cli('port', 'create', 'bad', '--type', 'pipe', '--switch', 'nope');
    assert.equal(r.code, EXIT.INVALID);
    assert.match(r.err, /switch: no switch named "nope" \[ERR_UNKNOWN_SWITCH\]/);
    // --interface is an option of its own (not only --set interface=...).
    r = await cli('port', 'create', 'k1', '--type', 'afpacket', '--switch', 'tenant-a', '--interface', 'vpc-nosuch0');
    assert.equal(r.code, EXIT.NOT_FOUND, r.err);
    assert.match(r.err, /interface vpc-nosuch0 does not exist: create it first/);
    // A vhost-user port's socket (--socket is vpcctl's own option).
    const vsock = path.join(d.dir, 'vm7.sock');
    r = await cli('port', 'create', 'vm7', '--type', 'vhostuser', '--switch', 'tenant-a', '--vhost-socket', vsock);
    assert.equal(r.code, EXIT.OK, r.err);
    assert.equal(JSON.parse((await cli('--json', 'port', 'show', 'vm7')).out).port.socket, vsock);
    assert.ok(fs.statSync(vsock).isSocket(), 'vpcd listens on it');
    assert.equal((await cli('port', 'delete', 'vm7')).code, EXIT.OK);
    r = await cli('port', 'create', 'k1', '--type', 'pipe', '--switch', 'tenant-a', '--learning', 'maybe');
    assert.equal(r.code, EXIT.USAGE);
    assert.match(r.err, /--learning <bool>' argument 'maybe' is invalid\. expected true or false \(on\/off, yes\/no and 1\/0 are taken too\)/);
    r = await cli('port', 'create', 'k1', '--type', 'afpacket', '--switch', 'tenant-a', '--interface', 'a', '--set', 'interface=b');
    assert.equal(r.code, EXIT.USAGE);
    assert.match(r.err, /--set interface: interface is given twice/);
    r = await cli('port', 'update', 'trunk', '--mtu', '99999');
    assert.equal(r.code, EXIT.USAGE);

    r = await cli('fdb', 'create', 'tenant-a', '02:00:00:00:0a:99', 'vm2');
    assert.equal(r.code, EXIT.OK, r.err);
    r = await cli('fdb', 'create', 'tenant-a', '02:00:00:00:0a:99', 'vm1');
    assert.equal(r.code, EXIT.CONFLICT);
    r = await cli('fdb', 'list', '--static');
    assert.match(r.out, /^tenant-a\s+02:00:00:00:0a:99\s+vm2\s+-\s+[0-9a-f-]{36}$/m);

    // Frames through the test hook: vm1 -> vm2 is learned and counted.
    await d.client.call('POST', '/v1/test/ports/vm1/send', { frames: [frameHex('02:00:00:00:0a:02', '02:00:00:00:0a:01')], repeat: 10 });
    await eventually(async () => ((await d.client.call<any>('GET', '/v1/stats')).ports.vm2.counters.tx_packets >= 10) || undefined);
    r = await cli('fdb', 'list', 'tenant-a');
    assert.match(r.out, /^MAC\s+PORT\s+VTEP\s+VLAN\s+TYPE\s+AGE$/m);
    assert.match(r.out, /^02:00:00:00:0a:01\s+vm1\s+-\s+-\s+learned\s+\d+s$/m);
    assert.match(r.out, /^02:00:00:00:0a:99\s+vm2\s+-\s+-\s+static\s+-$/m);
    r = await cli('fdb', 'list', '--static', 'nosuch');
    assert.equal(r.code, EXIT.NOT_FOUND, 'an unknown switch is not an empty list');
    assert.match(r.err, /no switch named "nosuch"/);
    // No switch named: the live table of every switch, not the static entries.
    r = await cli('fdb', 'list');
    assert.equal(r.code, EXIT.OK, r.err);
    assert.match(r.out, /^SWITCH\s+MAC\s+PORT\s+VTEP\s+VLAN\s+TYPE\s+AGE$/m);
    assert.match(r.out, /^tenant-a\s+02:00:00:00:0a:01\s+vm1\s+-\s+-\s+learned\s+\d+s$/m);
    assert.match(r.out, /^tenant-a\s+02:00:00:00:0a:99\s+vm2\s+-\s+-\s+static\s+-$/m);
    const all = JSON.parse((await cli('--json', 'fdb', 'list')).out) as { entries: Array<{ switch: string; mac: string }> };
    assert.ok(all.entries.some((e) => e.switch === 'tenant-a' && e.mac === '02:00:00:00:0a:01'), JSON.stringify(all));
    r = await cli('stats');
    assert.match(r.out, /^vm1\s+10\s+600\s+0\s+0\s+-$/m);
    assert.match(r.out, /^vm2\s+0\s+0\s+10\s+600\s+-$/m);
    r = await cli('stats', '--watch', '--count', '2', '--interval', '1');
    // Both screens have the rate columns (the first, with no sample before it, shows '-').
    assert.equal(r.out.match(/RX-RATE\s+TX-RATE/g)?.length, 2, r.out);
    assert.match(r.out, /^vm1\s+10\s+600\s+0\s+0\s+-\s+-\s+-$/m);
    assert.match(r.out, /^vm1\s+10\s+600\s+0\s+0\s+0\/s\s+0\/s\s+-$/m);
    // Not a terminal here: no clear-screen codes, the screens one after the other.
    assert.doesNotMatch(r.out, /\x1b/);
    const js = JSON.parse((await cli('--json', 'stats')).out);
    assert.equal(js.ports.vm1.counters.rx_packets, 10);
    r = await cli('fdb', 'flush', 'tenant-a');
    assert.match(r.out, /^flushed 1 learned entries from tenant-a$/m);

    r = await cli('fdb', 'delete', 'tenant-a', '02:00:00:00:0a:99');
    assert.equal(r.code, EXIT.OK);
    r = await cli('fdb', 'delete', 'tenant-a', '02:00:00:00:0a:99');
    assert.equal(r.code, EXIT.NOT_FOUND);
    r = await cli('port', 'delete', 'trunk');
    assert.equal(r.code, EXIT.OK);
  });

  test('apply -f: dry run prints the plan and changes nothing; apply applies; again is a no-op; invalid file names the line', async () => {
    const file = path.join(d.dir, 'next.yaml');
    fs.writeFileSync(file, `${CONFIG}      - { name: vm3, type: pipe }\n  - name: tenant-c\n    vni: 1003\n`);
    let r = await cli('apply', '-f', file, '--dry-run');
    assert.equal(r.code, EXIT.OK, r.err);
    // vpcd runs with another --config: said, as the next reload undoes this.
    assert.equal(r.out, 'plan (2 to create, 0 to change, 0 to remove):\n  + switch tenant-c (vni 1003)\n  + port vm3 (pipe, switch tenant-a)\n' +
      `warning: vpcd runs with --config ${d.configFile}, which says otherwise: a reload (SIGHUP) or restart applies that file again and undoes this change; put the change in that file\n` +
      'dry run: nothing was changed.\n');
    assert.equal(JSON.parse((await cli('--json', 'status')).out).counts.switches, 1);
    r = await cli('apply', '-f', file);
    assert.match(r.out, /applied\.\n$/);
    r = await cli('apply', '-f', file);
    assert.equal(r.out, 'no changes: the running state already matches\n');
    const j = JSON.parse((await cli('--json', 'apply', '-f', file)).out);
    assert.equal(j.applied, false);

    fs.writeFileSync(file, `${CONFIG}      - { name: vm3, type: pipe, mtu: 12 }\n`);
    r = await cli('apply', '-f', file);
    assert.equal(r.code, EXIT.INVALID);
    assert.match(r.err, /next\.yaml:8: switches\[0\]\.ports\[2\]\.mtu: must be an integer in 68\.\.\d+ \(got 12\).* \[ERR_INVALID_ARGUMENT\]/);
    // The file's code heads the list; each line keeps its own.
    assert.match(r.err, /^vpcctl: 1 error\(s\) in .*next\.yaml \[ERR_CONFIG_INVALID\]:\n {2}\S.*\[ERR_INVALID_ARGUMENT\]\n$/);
    r = await cli('apply', '-f', path.join(d.dir, 'missing.yaml'));
    assert.equal(r.code, EXIT.USAGE, 'a file that cannot be read is a bad command line');
    assert.match(r.err, /cannot read .*missing\.yaml: no such file/);
    // One YAML syntax error is said once.
    fs.writeFileSync(file, 'switches:\n  - name: a\n\tvni: 1\n');
    r = await cli('apply', '-f', file);
    assert.equal(r.code, EXIT.INVALID);
    assert.equal(r.err.match(/Tabs are not allowed as indentation/g)?.length, 1, r.err);
  });

  test('the vpcctl binary: exit codes, JSON errors on the API, and a helpful message when vpcd is not running', async () => {
    let r = await bin(['--socket', d.socket, 'port', 'show', 'vm1', '--json']);
    assert.equal(r.code, 0, r.err);
    assert.equal(JSON.parse(r.out).port.mac, '02:00:00:00:0a:01');
    r = await bin(['port', 'show', 'nope'], { VPCD_SOCKET: d.socket });
    assert.equal(r.code, EXIT.NOT_FOUND);
    r = await bin(['--socket', path.join(d.dir, 'nowhere.sock'), 'status']);
    assert.equal(r.code, EXIT.UNREACHABLE);
    assert.match(r.err, /no socket at .*nowhere\.sock: vpcd is not running/);
    assert.match(r.err, /Start it with: +sudo vpcd --config/);
    // A path that is no socket at all is said so, not called a stale socket.
    for (const [p, what] of [[CONFIG_FILE(), 'a regular file'], [d.dir, 'a directory']] as const) {
      r = await bin(['--socket', p, 'status']);
      assert.equal(r.code, EXIT.UNREACHABLE);
      assert.ok(r.err.includes(`${p} is ${what}, not vpcd's socket: check --socket`), r.err);
    }
    r = await bin(['frobnicate']);
    assert.equal(r.code, EXIT.USAGE);
    r = await bin(['--version']);
    assert.equal(r.code, 0);
  });

  test('a port that is no member of the switch is a conflict (409, exit 6) for fdb create and fdb flush --port alike', async () => {
    await d.client.call('POST', '/v1/switches', { name: 'nm-sw', vni: 3333 });
    await d.client.call('POST', '/v1/ports', { name: 'nm-p', type: 'pipe', switch: 'nm-sw' });
    try {
      let r = await cli('fdb', 'create', 'tenant-a', '02:00:00:00:0c:01', 'nm-p');
      assert.equal(r.code, EXIT.CONFLICT, r.err);
      assert.match(r.err, /port: port "nm-p" is not a member of switch "tenant-a" \[ERR_PORT_NOT_MEMBER\]/);
      r = await cli('fdb', 'flush', 'tenant-a', '--port', 'nm-p');
      assert.equal(r.code, EXIT.CONFLICT, r.err);
      assert.match(r.err, /\[ERR_PORT_NOT_MEMBER\]/);
      const raw = await d.client.raw('POST', '/v1/fdb', { switch: 'tenant-a', mac: '02:00:00:00:0c:01', port: 'nm-p' });
      assert.equal(raw.status, 409, JSON.stringify(raw.body));
      // An unknown reference stays a 400 (exit 4), as operations.md's table says.
      r = await cli('fdb', 'create', 'tenant-a', '02:00:00:00:0c:01', 'nothere');
      assert.equal(r.code, EXIT.INVALID, r.err);
    } finally {
      await d.client.call('DELETE', '/v1/ports/nm-p');
      await d.client.call('DELETE', '/v1/switches/nm-sw');
    }
  });

  test('state --state-file prints a complete state file: copied over state.json, it loads as the running state; plain state is the API\'s view', async () => {
    const api = await d.client.call<{ generation: number; state: unknown }>('GET', '/v1/state');
    const r = await cli('state', '--state-file');
    assert.equal(r.code, EXIT.OK, r.err);
    const dir = path.join(d.dir, 'restored');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'state.json'), r.out);
    const store = new StateStore(dir);
    assert.deepEqual(store.load(), api.state);
    assert.equal(store.generation, api.generation);
    // The plain output is no state file (no format, version or checksum).
    fs.writeFileSync(path.join(dir, 'state.json'), (await cli('state')).out);
    assert.throws(() => new StateStore(dir).load(), /format is undefined, expected "vpcd-state"/);
  });

  // The real binary with its stdout a pipe whose reader goes away after the
  // first chunk (`| head -3`, `| tshark -c 2`); `nudge` makes it write again.
  async function readerGoesAway(args: string[], nudge: () => Promise<unknown>): Promise<{ code: number | null; signal: string | null; err: string; first: Buffer }> {
    const p = spawn(process.execPath, [VPCCTL, '--socket', d.socket, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => p.on('exit', (code, signal) => resolve({ code, signal })));
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    const first = await new Promise<Buffer>((resolve) => p.stdout.once('data', resolve));
    p.stdout.destroy();
    let done = false;
    void exited.then(() => (done = true));
    while (!done) {
      await nudge().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
    }
    clearTimeout(timer);
    return { ...(await exited), err, first };
  }

  test('a reader that goes away ends stats --watch and a capture quietly (exit 0), and the capture is released', async () => {
    const w = await readerGoesAway(['stats', '--watch', '--interval', '1'], async () => undefined);
    assert.deepEqual([w.code, w.signal, w.err], [0, null, ''], 'no EPIPE stack trace');
    assert.match(w.first.toString(), /PORT\s+RX-PKTS/);
    const send = (): Promise<unknown> => d.client.call('POST', '/v1/test/ports/vm1/send', { frames: [frameHex('02:00:00:00:0a:02', '02:00:00:00:0a:01')] });
    const c = await readerGoesAway(['capture', 'vm1'], send);
    assert.deepEqual([c.code, c.signal, c.err], [0, null, ''], 'no EPIPE stack trace');
    assert.equal(c.first.readUInt32LE(0), 0xa1b2c3d4, 'the pcap header came first');
    // Every capture vpcd allows (eight) starts again: none is left behind.
    await eventually(async () => {
      const abort = new AbortController();
      const started: Promise<unknown>[] = [];
      try {
        for (let i = 0; i < 8; i++) {
          started.push(new Promise((resolve, reject) => {
            d.client.stream('/v1/capture?port=vm2', () => resolve(true), abort.signal).then(resolve, reject);
          }));
        }
        await Promise.all(started);
        return true;
      } catch {
        return undefined;
      } finally {
        abort.abort();
      }
    }, 10_000, 200);
  });

  test('API errors are JSON with a stable code, message and field', async () => {
    const raw = await d.client.raw('POST', '/v1/switches', { name: 'x', vni: 0 });
    assert.equal(raw.status, 400);
    assert.deepEqual(raw.body, { error: { code: 'ERR_INVALID_VNI', message: 'vni: must be an integer in 1..16777215 (got 0)', field: 'vni' } });
    const nf = await d.client.raw('GET', '/v1/nothing');
    assert.equal(nf.status, 404);
    assert.equal((nf.body as any).error.code, 'ERR_ROUTE_NOT_FOUND');
    const m = await d.client.raw('PUT', '/v1/switches');
    assert.equal(m.status, 405);
    const bad = await new Promise<number>((resolve) => {
      const http = require('node:http') as typeof import('node:http');
      const req = http.request({ socketPath: d.socket, method: 'POST', path: '/v1/ports', headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.end('{not json');
    });
    assert.equal(bad, 400);
  });
});

// A kernel-facing port: `port show` adds what the backend opened and how it
// moves frames. vpcd runs in a namespace of the test's own, where it creates
// the tap; the namespace goes away afterwards.
describe('vpcctl port show with a tap port', () => {
  const ns = `vpcctl-${process.pid}`;
  const tap = `vct${process.pid % 100000}`;
  const root = process.getuid?.() === 0;

  test('shows the backend: interface, io_uring batching, counters', { skip: root ? false : 'needs root (network namespace, tap)' }, async () => {
    const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
    execFileSync('ip', ['netns', 'add', ns]);
    let v: VpcdProcess | undefined;
    try {
      v = await spawnVpcd({
        netns: ns,
        config: `${TEST_ENGINE}switches:\n  - name: t\n    vni: 7\n    ports:\n      - { name: vm1, type: tap, interface: ${tap} }\n`,
      });
      d = v; // cli() talks to this daemon
      const r = await cli('port', 'show', 'vm1');
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /^backend:$/m);
      assert.match(r.out, new RegExp(`spec +tap:${tap}`));
      assert.match(r.out, /io +io_uring: one waiting read per queue while idle, then up to 256 reads per queue and burst/);
      assert.match(r.out, /^backend counters:$/m);
      assert.match(r.out, /^link +(up|down)$/m);
      // A ring or burst left to the backend says so, and what it chose (the JSON keeps 0).
      assert.match(r.out, /^burst +default \(\d+\)$/m);
      const j = JSON.parse((await cli('--json', 'port', 'show', 'vm1')).out) as { port: { burst: number; backend: { attached: boolean; io: string; queueRx: number[] } } };
      assert.equal(j.port.burst, 0);
      assert.equal(j.port.backend.attached, true);
      assert.match(j.port.backend.io, /^io_uring/);
      assert.deepEqual(j.port.backend.queueRx.length, 1);
      // vpcd's log line for the applied port says how it moves frames.
      const applied = v.logs.map((l) => JSON.parse(l) as { msg?: string; step?: string; io?: string }).find((l) => l.msg === 'applied' && l.step?.startsWith('+ port vm1'));
      assert.match(applied?.io ?? '', /^io_uring: /, JSON.stringify(applied));
    } finally {
      if (v !== undefined) {
        await v.stop();
        removeDir(v.dir);
      }
      execFileSync('ip', ['netns', 'del', ns]);
    }
  });
});

// A vhost-user port counts per virtqueue: port show leaves out the kernel
// ports' backend counters, which are not its own and stay 0.
test('port show of a vhost-user port prints its device, not the kernel ports\' backend counters', () => {
  const vhost = {
    socket: '/run/vpc-vms/vm1.sock', mode: 'server', connected: false, connects: 0, disconnects: 0, messages: 0, refused: 0,
    connectionDrops: {}, watcherErrors: 0, features: '0x0', featureNames: '', protocolFeatures: '0x0', deviceStatus: 0,
    maxQueuePairs: 1, queues: [], regions: [],
  };
  const out = withBackend({ name: 'vm1', type: 'vhostuser' }, { backend: 'vhostuser', counters: { rx_offload: 0 }, vhost });
  assert.match(out, /^vhost-user device:$/m);
  assert.doesNotMatch(out, /backend counters|rx_offload/);
  assert.match(withBackend({ name: 'p' }, { backend: 'afpacket', counters: { rx_offload: 3 } }), /^backend counters:\nrx_offload +3$/m);
});
