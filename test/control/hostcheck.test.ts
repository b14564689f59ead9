// The kernel holding the uplink's VTEP address is detected when the uplink is
// created (read only: vpcd never changes the host's addresses) and reported
// as a warning: in the log, and in the answer of an apply (dry run too). So
// is a port whose kernel interface has a larger MTU than the port takes.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import type { NetworkInterfaceInfo } from 'node:os';
import { vtepHeldByKernel } from '../../src/control/hostcheck';
import { removeDir, spawnVpcd, TEST_ENGINE } from './helpers';

function iface(address: string, prefix: number): NetworkInterfaceInfo {
  const v6 = address.includes(':');
  return { address, cidr: `${address}/${prefix}`, family: v6 ? 'IPv6' : 'IPv4', internal: false, mac: '02:00:00:00:00:01', netmask: '', ...(v6 ? { scopeid: 0 } : {}) } as NetworkInterfaceInfo;
}

test('vtepHeldByKernel: names the interface and the address, IPv4 and IPv6 in any spelling', () => {
  const host = {
    lo: [iface('127.0.0.1', 8), iface('::1', 128)],
    eth1: [iface('198.18.0.1', 24), iface('2001:db8:100::1', 64)],
    eth2: [iface('198.18.5.1', 24)],
  };
  const spec = { name: 'up0', interface: 'eth1', localIp: '198.18.0.1/24', localIp6: '2001:DB8:100:0:0:0:0:1/64' };
  const w = vtepHeldByKernel(spec, host);
  assert.equal(w.length, 2, w.join('\n'));
  assert.match(w[0]!, /^uplink "up0": localIp 198\.18\.0\.1 is also assigned to the kernel interface eth1 \(198\.18\.0\.1\/24\)/);
  assert.match(w[0]!, /ip addr del 198\.18\.0\.1\/24 dev eth1/);
  assert.match(w[1]!, /localIp6 2001:db8:100::1 is also assigned to the kernel interface eth1/);

  // Another interface holding it is as bad (the kernel answers ARP on every interface by default).
  assert.match(vtepHeldByKernel({ name: 'up0', interface: 'eth1', localIp: '198.18.5.1/24' }, host)[0]!, /kernel interface eth2/);
  // Free addresses, and pipe uplinks (no kernel side), are fine.
  assert.deepEqual(vtepHeldByKernel({ name: 'up0', interface: 'eth1', localIp: '198.18.0.9/24', localIp6: '2001:db8:100::9' }, host), []);
  assert.deepEqual(vtepHeldByKernel({ name: 'up0', localIp: '198.18.0.1/24' }, host), []);
});

// A network namespace of the test's own with vpcd in it, started with
// `config`: `setup` makes its interfaces (through `ip -n NS ...`) first; the
// daemon, its directory and the namespace are removed afterwards.
// Applies `text` as an operator does on a vpcd started with --config: the
// file edited first, so that it says what runs.
async function applyFile<T>(d: Awaited<ReturnType<typeof spawnVpcd>>, text: string, dryRun = false): Promise<T> {
  fs.writeFileSync(d.configFile, text);
  return d.client.call<T>('POST', '/v1/apply', { config: text, dryRun });
}

async function withVpcdInNamespace(tag: string, config: string, setup: (ip: (...args: string[]) => string) => void, fn: (d: Awaited<ReturnType<typeof spawnVpcd>>, ip: (...args: string[]) => string) => Promise<void>): Promise<void> {
  const ns = `${tag}-${process.pid}`;
  const ip = (...args: string[]): string => execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8' });
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    setup(ip);
    const d = await spawnVpcd({ netns: ns, config });
    try {
      await fn(d, ip);
    } finally {
      await d.stop();
      removeDir(d.dir);
    }
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

describe('vpcd with an uplink whose address the kernel holds', () => {
  const root = process.getuid?.() === 0;
  test('warns in the log and in the apply answer; the address is left alone', { skip: root ? false : 'needs root (a network namespace and a veth of its own)' }, async () => {
    const switches = 'switches:\n  - { name: t, vni: 5 }\n';
    const withUplink = `${TEST_ENGINE}uplinks:\n  - { name: up0, type: afpacket, interface: vu0, localIp: 198.18.77.1/24 }\n${switches}`;
    const setup = (ip: (...args: string[]) => string): void => {
      ip('link', 'set', 'lo', 'up');
      ip('link', 'add', 'vu0', 'type', 'veth', 'peer', 'name', 'vu1');
      ip('link', 'set', 'vu0', 'up');
      ip('link', 'set', 'vu1', 'up');
      ip('addr', 'add', '198.18.77.1/24', 'dev', 'vu1');
    };
    await withVpcdInNamespace('vpch', `${TEST_ENGINE}${switches}`, setup, async (d, ip) => {
      const dry = await applyFile<{ plan: string[]; warnings: string[]; applied: boolean }>(d, withUplink, true);
      assert.equal(dry.applied, false);
      assert.equal(dry.warnings.length, 1, JSON.stringify(dry));
      assert.match(dry.warnings[0]!, /localIp 198\.18\.77\.1 is also assigned to the kernel interface vu1 \(198\.18\.77\.1\/24\)/);

      const r = await applyFile<{ warnings: string[]; applied: boolean }>(d, withUplink);
      assert.equal(r.applied, true);
      assert.deepEqual(r.warnings, dry.warnings);
      const logged = d.logs.map((l) => JSON.parse(l) as { level: string; msg: string }).filter((l) => /also assigned to the kernel interface vu1/.test(l.msg));
      assert.deepEqual(logged.map((l) => l.level), ['warn'], d.logs.join('\n'));
      assert.match(ip('-o', 'addr', 'show', 'dev', 'vu1'), /198\.18\.77\.1\/24/, 'the kernel address is untouched');

      // An uplink mtu above its interface's: uplink show gives the inner MTU
      // in force (the interface's 1500 less the headers), and says why.
      await applyFile(d, withUplink.replace('localIp: 198.18.77.1/24 }', 'localIp: 198.18.77.1/24, mtu: 1600 }'));
      const shown = await d.client.call<{ uplink: { mtu: number; innerMtu4: number; warnings?: string[] } }>('GET', '/v1/uplinks/up0');
      assert.deepEqual([shown.uplink.mtu, shown.uplink.innerMtu4], [1600, 1450]);
      assert.match((shown.uplink.warnings ?? []).join('\n'), /its mtu 1600 is above its interface vu0's MTU 1500: VXLAN packets go by 1500/);
    });
  });
});

// A port whose kernel interface has a larger MTU than the port takes: the
// guest's long frames are dropped at the port (and answered with ICMP too
// big). Read from the host, said in the apply answer and in `port show`.
describe('vpcd with a port whose interface MTU exceeds the port\'s', () => {
  const root = process.getuid?.() === 0;
  test('warns in the apply answer (dry run too) and in port show; a port at the interface\'s MTU is not warned about', { skip: root ? false : 'needs root (a network namespace and a veth of its own)' }, async () => {
    const switches = `${TEST_ENGINE}switches:\n  - { name: t, vni: 5 }\n`;
    const port = `${switches}ports:\n  - { name: p0, type: afpacket, interface: vm0, switch: t`;
    const setup = (ip: (...args: string[]) => string): void => {
      ip('link', 'add', 'vm0', 'mtu', '9000', 'type', 'veth', 'peer', 'name', 'vm1', 'mtu', '9000');
      ip('link', 'set', 'vm0', 'up');
      ip('link', 'set', 'vm1', 'up');
    };
    await withVpcdInNamespace('vpcm', switches, setup, async (d) => {
      const WARN = /^port "p0": its interface vm0 has MTU 9000, above the port's MTU 1500: frames longer than that are dropped at the port and answered with ICMP too big .* Set the port's mtu to 9000, or give the interface MTU 1500/;
      const dry = await applyFile<{ warnings: string[]; applied: boolean }>(d, `${port} }\n`, true);
      assert.equal(dry.applied, false);
      assert.equal(dry.warnings.length, 1, JSON.stringify(dry));
      assert.match(dry.warnings[0]!, WARN);
      const r = await applyFile<{ warnings: string[]; applied: boolean }>(d, `${port} }\n`);
      assert.equal(r.applied, true);
      assert.deepEqual(r.warnings, dry.warnings);
      const show = await d.client.call<{ port: { warnings?: string[] } }>('GET', '/v1/ports/p0');
      assert.deepEqual(show.port.warnings, dry.warnings);
      const fits = await applyFile<{ warnings: string[]; applied: boolean }>(d, `${port}, mtu: 9000 }\n`);
      assert.equal(fits.applied, true);
      assert.deepEqual(fits.warnings, []);
      assert.equal((await d.client.call<{ port: { warnings?: string[] } }>('GET', '/v1/ports/p0')).port.warnings, undefined);
    });
  });
});
