// packaging/systemd: the unit is checked by systemd's own verifier, agrees
// with vpcd (exit codes that must not restart it, default paths, options it
// accepts), and explains every capability it grants; the sysusers file
// creates the user and group the unit names.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DaemonOptions, DEFAULT_SOCKET, DEFAULT_STATE_DIR, VPCD_EXIT } from '../../src/control/daemon';
import { createProgram } from '../../src/control/vpcd';
import { removeDir, ROOT, spawnVpcd, tempDir, TEST_ENGINE } from './helpers';

const UNIT = path.join(ROOT, 'packaging/systemd/vpcd.service');
const SYSUSERS = path.join(ROOT, 'packaging/systemd/vpcd.sysusers');
const text = fs.readFileSync(UNIT, 'utf8');

function has(tool: string): boolean {
  return spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0;
}

// The value of a key in the unit (the last one wins, as in systemd).
function setting(key: string): string {
  const lines = text.split('\n').filter((l) => l.startsWith(`${key}=`));
  assert.ok(lines.length > 0, `${key} is set`);
  return lines[lines.length - 1]!.slice(key.length + 1);
}

// systemd-analyze verify exits 0 on settings it ignores, but names them.
function verify(file: string): { code: number | null; out: string } {
  const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

// A copy of the unit in a temp dir (same file name), edited by `edit`.
// Where node is not /usr/bin/node (Debian's), ExecStart points at this node.
function copyOfUnit(dir: string, edit: (s: string) => string = (s) => s): string {
  const file = path.join(dir, 'vpcd.service');
  let s = text;
  if (!fs.existsSync('/usr/bin/node')) s = s.replace(/^ExecStart=\/usr\/bin\/node /m, `ExecStart=${process.execPath} `);
  fs.writeFileSync(file, edit(s));
  return file;
}

describe('systemd unit', () => {
  const noAnalyze = has('systemd-analyze') ? false : 'systemd-analyze is not installed (bash scripts/setup-deps.sh test installs the systemd package)';

  test('systemd-analyze verify: no error, no ignored setting', { skip: noAnalyze }, () => {
    const dir = tempDir();
    try {
      // The checker works here: it names an invalid setting of a broken copy.
      const broken = verify(copyOfUnit(dir, (s) => s.replace(/^Restart=on-failure$/m, 'Restart=sometimes')));
      assert.match(broken.out, /vpcd\.service:\d+: .*restart specifier.*sometimes/i, broken.out);

      const r = verify(copyOfUnit(dir));
      assert.equal(r.code, 0, r.out);
      assert.doesNotMatch(r.out, /vpcd\.service/, `no complaint about the unit:\n${r.out}`);
    } finally {
      removeDir(dir);
    }
  });

  test('agrees with vpcd: exit codes that need a human, paths, options', async () => {
    assert.deepEqual(setting('RestartPreventExitStatus').split(' ').map(Number).sort(),
      [VPCD_EXIT.USAGE, VPCD_EXIT.STATE_CORRUPT, VPCD_EXIT.CONFIG_INVALID, VPCD_EXIT.SOCKET_IN_USE].sort());
    assert.equal(setting('Restart'), 'on-failure');

    const exec = setting('ExecStart').split(' ');
    assert.equal(exec[1], '/opt/vpc-switch/dist/src/control/vpcd.js');
    let opts: DaemonOptions | undefined;
    const program = createProgram((o) => {
      opts = o;
    });
    program.exitOverride();
    await program.parseAsync(exec.slice(2), { from: 'user' });
    assert.ok(opts !== undefined, 'vpcd accepts the command line');
    assert.equal(opts.socket, DEFAULT_SOCKET);
    assert.equal(opts.stateDir, DEFAULT_STATE_DIR);
    assert.equal(opts.logFormat, 'json');
    // Relative paths are taken as absolute ones (status and logs show where).
    let rel: DaemonOptions | undefined;
    const p2 = createProgram((o) => {
      rel = o;
    });
    p2.exitOverride();
    await p2.parseAsync(['--config', 'c.yaml', '--socket', 's.sock', '--state-dir', 'st'], { from: 'user' });
    assert.deepEqual([rel!.config, rel!.socket, rel!.stateDir], [path.resolve('c.yaml'), path.resolve('s.sock'), path.resolve('st')]);
    assert.equal(opts.metrics, '127.0.0.1:9273');
    // The directories systemd creates are the ones vpcd uses.
    assert.equal(`/run/${setting('RuntimeDirectory')}`, path.dirname(opts.socket));
    assert.equal(`/var/lib/${setting('StateDirectory')}`, opts.stateDir);
    assert.equal(setting('ExecReload'), '/bin/kill -HUP $MAINPID');
  });

  test('not root: a user, and capabilities each with the reason it is needed', () => {
    assert.equal(setting('User'), 'vpcd');
    assert.equal(setting('Group'), 'vpc');
    const caps = setting('AmbientCapabilities').split(' ');
    assert.deepEqual(setting('CapabilityBoundingSet').split(' '), caps, 'nothing beyond what is granted');
    assert.ok(caps.includes('CAP_NET_RAW') && caps.includes('CAP_NET_ADMIN'), caps.join(' '));
    for (const cap of caps) assert.match(text, new RegExp(`^#\\s+${cap}\\s+\\S.*$`, 'm'), `${cap} has a comment saying why`);
    assert.equal(setting('NoNewPrivileges'), 'yes');
  });

  test('sysusers: creates the group vpc and the user vpcd', { skip: has('systemd-sysusers') ? false : 'systemd-sysusers is not installed (package systemd)' }, () => {
    const root = tempDir();
    try {
      // --root: an empty tree, so the host's users do not matter; --dry-run writes nothing.
      const r = spawnSync('systemd-sysusers', ['--dry-run', `--root=${root}`, SYSUSERS], { encoding: 'utf8' });
      const out = `${r.stdout}${r.stderr}`;
      assert.equal(r.status, 0, out);
      assert.match(out, /Creating group 'vpc'/);
      assert.match(out, /Creating user 'vpcd' \(vpc-switch daemon\)/);
      assert.deepEqual(fs.readdirSync(root), [], 'nothing written');
    } finally {
      removeDir(root);
    }
  });
});

// The capabilities the unit grants are enough: vpcd as an unprivileged user
// with exactly those (setpriv, as systemd would) attaches kernel ports. In a
// namespace of the test's own, on veths and a tap made there.
describe('the unit\'s capabilities at work', () => {
  const why = process.getuid?.() !== 0 ? 'needs root (to drop to an unprivileged user, and a namespace)'
    : !has('setpriv') ? 'needs setpriv (util-linux)'
    : undefined;

  test('an unprivileged vpcd with them attaches afpacket, afxdp and tap ports', { skip: why ?? false }, async (t) => {
    const caps = setting('AmbientCapabilities').split(' ').map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`).join(',');
    const afxdp = /^afxdp=1$/m.test(fs.readFileSync(path.join(ROOT, 'build/features.env'), 'utf8'));
    // Debian's udev makes /dev/net/tun 0666; some containers leave it root's.
    const tunOpen = (fs.statSync('/dev/net/tun').mode & 0o006) === 0o006;
    const ns = `vpcc-${process.pid}`;
    const ip = (...args: string[]): string => execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8' });
    const dir = tempDir();
    fs.chmodSync(dir, 0o777); // the state dir and socket are made by user nobody
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      ip('link', 'set', 'lo', 'up');
      for (const [a, b] of [['pa0', 'pa1'], ['px0', 'px1']]) {
        ip('link', 'add', a!, 'type', 'veth', 'peer', 'name', b!);
        ip('link', 'set', a!, 'up');
        ip('link', 'set', b!, 'up');
      }
      const ports = [
        '      - { name: p1, type: afpacket, interface: pa0 }',
        ...(afxdp ? ['      - { name: p2, type: afxdp, interface: px0 }'] : []),
        ...(tunOpen ? ['      - { name: p3, type: tap, interface: pt0 }'] : []),
      ];
      if (!afxdp) t.diagnostic('afxdp port left out: this build has no AF_XDP');
      if (!tunOpen) t.diagnostic(`tap port left out: /dev/net/tun is ${(fs.statSync('/dev/net/tun').mode & 0o777).toString(8)} here, not 0666 (Debian's udev default)`);
      const config = `${TEST_ENGINE}switches:\n  - name: t\n    vni: 7\n    ports:\n${ports.join('\n')}\n`;
      fs.writeFileSync(path.join(dir, 'vpcd.yaml'), config, { mode: 0o644 });
      const d = await spawnVpcd({
        dir,
        config,
        netns: ns,
        wrapper: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', `--inh-caps=${caps}`, `--ambient-caps=${caps}`, `--bounding-set=-all,${caps}`],
      });
      try {
        const st = await d.client.call<{ pid: number; engine: { linkWatch: { mode: string; why?: string } } }>('GET', '/v1/status');
        assert.match(fs.readFileSync(`/proc/${st.pid}/status`, 'utf8'), /^Uid:\s+65534\s/m, 'vpcd runs unprivileged');
        assert.equal(st.engine.linkWatch.mode, 'all-namespaces', `link changes from every namespace are heard (${st.engine.linkWatch.why ?? ''})`);
        const list = await d.client.call<{ ports: Array<{ name: string; type: string }> }>('GET', '/v1/ports');
        assert.deepEqual(list.ports.map((p) => p.type).sort(), ['afpacket', ...(afxdp ? ['afxdp'] : []), ...(tunOpen ? ['tap'] : [])].sort());
      } finally {
        assert.equal(await d.stop(), 0, d.logs.join('\n'));
      }
    } finally {
      execFileSync('ip', ['netns', 'del', ns]);
      removeDir(dir);
    }
  });
});
