// Config validation: one case per kind of mistake, each checked by code,
// path and line. parseConfig() is pure (no engine).

import { test, describe } from 'node:test';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import assert from 'node:assert/strict';
import { parseConfig, splitPath } from '../../src/control/config';
import { ControlError, ErrorDetail } from '../../src/control/errors';

function errorsOf(yaml: string): ErrorDetail[] {
  try {
    parseConfig(yaml, 'test.yaml');
  } catch (err) {
    assert.ok(err instanceof ControlError, String(err));
    assert.ok(err.details !== undefined && err.details.length > 0);
    return err.details;
  }
  assert.fail('expected the config to be refused');
}

function expectError(yaml: string, code: string, field: string, line: number): ErrorDetail {
  const errs = errorsOf(yaml);
  const hit = errs.find((e) => e.code === code && e.field === field);
  assert.ok(hit !== undefined, `expected ${code} at ${field}; got ${JSON.stringify(errs)}`);
  assert.equal(hit.line, line, `line of ${field}: ${JSON.stringify(hit)}`);
  assert.ok(hit.message.startsWith(`${field}: `), hit.message);
  return hit;
}

const GOOD = `
engine: { bufferCount: 4096 }
switches:
  - name: tenant-a
    vni: 1001
    ports:
      - { name: vm1, type: pipe }
      - name: vm2
        type: pipe
        mtu: 1400
    fdb:
      - { mac: 02:00:00:00:00:01, port: vm1 }
  - name: tenant-b
    vni: 1002
ports:
  - name: trunk
    type: pipe
    vlans:
      - { vlan: 10, switch: tenant-a }
      - { vlan: 20, switch: tenant-b }
`;

describe('config: valid files', () => {
  test('a full config parses into switches, ports (nested and top level) and fdb entries', () => {
    const d = parseConfig(GOOD);
    assert.deepEqual(d.switches.map((s) => s.spec.name), ['tenant-a', 'tenant-b']);
    assert.deepEqual(d.ports.map((p) => [p.spec.name, p.spec.switch]), [['vm1', 'tenant-a'], ['vm2', 'tenant-a'], ['trunk', undefined]]);
    assert.deepEqual(d.fdb.map((f) => f.spec), [{ switch: 'tenant-a', mac: '02:00:00:00:00:01', port: 'vm1' }]);
    assert.deepEqual(d.engine, { bufferCount: 4096 });
  });

  test('an empty file is an empty desired state, marked empty (a comment-only file too); an explicit empty list is not', () => {
    assert.deepEqual(parseConfig(''), { switches: [], ports: [], uplinks: [], peers: [], fdb: [], empty: true });
    assert.equal(parseConfig('# nothing here yet\n').empty, true);
    assert.equal(parseConfig('switches: []\n').empty, undefined);
  });

  test('engine limits below what the file itself declares are refused where the file is checked, not at the next start', () => {
    const three = 'switches:\n  - name: a\n    vni: 1\n    ports: [{ name: p1, type: pipe }, { name: p2, type: pipe }]\n  - { name: b, vni: 2 }\nuplinks: [{ name: up0, type: pipe, localIp: 198.18.0.1/24 }]\n';
    assert.throws(() => parseConfig(`engine: { maxPorts: 2 }\n${three}`), /engine\.maxPorts: 2 is fewer than the 3 ports this configuration declares \(the uplink counts as one\) \[ERR_LIMIT\]/);
    assert.throws(() => parseConfig(`engine: { maxSwitches: 1 }\n${three}`), /engine\.maxSwitches: 1 is fewer than the 2 switches/);
    assert.equal(parseConfig(`engine: { maxPorts: 3, maxSwitches: 2 }\n${three}`).ports.length, 2);
  });

  test('a document that is not a mapping says what it is and lists every top-level key', () => {
    assert.throws(() => parseConfig('- a\n- b\n'), (e: Error) => /^  config:1: the configuration must be a mapping \(keys: version, engine, switches, ports, uplinks, bgp\), not a list \[ERR_INVALID_ARGUMENT\]$/m.test(e.message));
    assert.throws(() => parseConfig('hello\n'), /must be a mapping .*, not a string/);
  });

  test('uuids are accepted and kept', () => {
    const d = parseConfig('switches:\n  - { name: a, vni: 5, uuid: 123E4567-E89B-12D3-A456-426614174000 }\n');
    assert.equal(d.switches[0]!.uuid, '123e4567-e89b-12d3-a456-426614174000');
  });
});

describe('config: one error per kind of mistake, with path and line', () => {
  test('YAML syntax error', () => {
    const errs = errorsOf('switches:\n  - name: a\n    vni: [1,\n');
    assert.equal(errs[0]!.code, 'ERR_CONFIG_SYNTAX');
    assert.ok(typeof errs[0]!.line === 'number');
  });

  test('duplicate key', () => {
    const errs = errorsOf('switches:\n  - name: a\n    vni: 1\n    vni: 2\n');
    assert.equal(errs[0]!.code, 'ERR_CONFIG_SYNTAX');
    assert.equal(errs[0]!.line, 4);
  });

  test('unknown top-level key', () => {
    expectError('version: 1\nswitchs: []\n', 'ERR_INVALID_ARGUMENT', 'switchs', 2);
  });

  test('unknown key in a switch (typo)', () => {
    const e = expectError('switches:\n  - name: a\n    vni: 1\n    maclimit: 5\n', 'ERR_INVALID_ARGUMENT', 'switches[0].maclimit', 4);
    // The hint names every key a config switch takes, the nested lists and uuid too.
    assert.match(e.message, /expected one of name, vni, macLimit, .*, uuid, ports, fdb, peers$/);
    const p = expectError('ports:\n  - { name: p, type: pipe, switch: a, maclimit: 5 }\n', 'ERR_INVALID_ARGUMENT', 'ports[0].maclimit', 2);
    assert.match(p.message, /expected one of name, type, .*, uuid$/);
    assert.doesNotMatch(p.message, /ports, fdb, peers/);
  });

  // An object refused by its own checks is not also "unknown" to what
  // refers to it, and a field checked against a refused one is not judged by
  // the stand-in (an operator saw 3 false errors beside 2 true ones).
  test('a refused switch, port or uplink causes no second error where it is used', () => {
    const errs = errorsOf(
      'uplinks:\n  - { name: up, type: afpacket, interface: x, localIp: 198.18.64.1/24, mtu: 1600x }\n' +
      'switches:\n  - name: tenant-a\n    vni: 1001\n    agingSecs: 5\n    peers: [198.18.64.2]\n' +
      '    ports:\n      - { name: p1, type: pipe, mtu: big }\n    fdb:\n      - { mac: "02:00:00:00:00:01", port: p1 }\n',
    );
    assert.deepEqual(errs.map((e) => e.field), ['uplinks[0].mtu', 'switches[0].agingSecs', 'switches[0].ports[0].mtu'], JSON.stringify(errs));
    const gw = errorsOf('uplinks: [{ name: up, type: pipe, localIp: 198.18.64.1/33, gateway: 198.19.1.1 }]\n');
    assert.deepEqual(gw.map((e) => e.field), ['uplinks[0].localIp'], JSON.stringify(gw));
    // A reference to what the file does not declare at all is still reported.
    const unknown = errorsOf('switches:\n  - { name: a, vni: 1, fdb: [{ mac: "02:00:00:00:00:01", port: nope }] }\n');
    assert.deepEqual(unknown.map((e) => e.code), ['ERR_UNKNOWN_PORT']);
  });

  test('bad VNI', () => {
    expectError('switches:\n  - name: a\n    vni: 0\n', 'ERR_INVALID_VNI', 'switches[0].vni', 3);
  });

  test('missing VNI points at the switch', () => {
    expectError('switches:\n  - name: a\n', 'ERR_INVALID_VNI', 'switches[0].vni', 2);
  });

  test('bad name', () => {
    expectError('switches:\n  - name: "-a"\n    vni: 1\n', 'ERR_INVALID_NAME', 'switches[0].name', 2);
  });

  test('bad port type', () => {
    expectError('switches:\n  - name: a\n    vni: 1\n    ports:\n      - { name: p, type: bogus }\n', 'ERR_INVALID_ARGUMENT', 'switches[0].ports[0].type', 5);
  });

  test('MTU out of range for the engine buffers', () => {
    expectError('engine: { bufferSize: 2048, largeBufferCount: 0 }\nswitches:\n  - name: a\n    vni: 1\n    ports:\n      - name: p\n        type: pipe\n        mtu: 9000\n',
      'ERR_INVALID_ARGUMENT', 'switches[0].ports[0].mtu', 8);
  });

  test('bad MAC in a static entry', () => {
    expectError('switches:\n  - name: a\n    vni: 1\n    ports: [{ name: p, type: pipe }]\n    fdb:\n      - { mac: ff:ff:ff:ff:ff:ff, port: p }\n',
      'ERR_INVALID_MAC', 'switches[0].fdb[0].mac', 6);
  });

  test('bad VLAN on a trunk', () => {
    expectError('switches: [{ name: a, vni: 1 }]\nports:\n  - name: t\n    type: pipe\n    vlans:\n      - { vlan: 4095, switch: a }\n',
      'ERR_INVALID_VLAN', 'ports[0].vlans[0].vlan', 6);
  });

  test('a port with neither switch nor VLANs (vlans: []) is one error, not also vlans against a stand-in switch', () => {
    const errs = errorsOf('switches: [{ name: a, vni: 1 }]\nports:\n  - { name: t, type: pipe, vlans: [] }\n');
    assert.deepEqual(errs.map((e) => [e.field, e.line]), [['ports[0].switch', 3]], JSON.stringify(errs));
    assert.match(errs[0]!.message, /a port needs a switch/);
    // A real conflict of the two is still said.
    const both = errorsOf('switches: [{ name: a, vni: 1 }]\nports:\n  - { name: t, type: pipe, switch: a, vlans: [{ vlan: 5, switch: a }] }\n');
    assert.deepEqual(both.map((e) => e.field), ['ports[0].vlans']);
  });

  test('an unknown key in a switch\'s peers or fdb lists the keys that go there, not switch', () => {
    const errs = errorsOf('uplinks: [{ name: u, type: pipe, localIp: 198.18.0.1/24 }]\nswitches:\n  - name: a\n    vni: 5\n    peers: [{ ip: 198.18.0.2, ipp: 1 }]\n' +
      '    fdb: [{ mac: "02:00:00:00:00:09", vtep: 198.18.0.2, vtpe: 1 }]\n');
    assert.deepEqual(errs.map((e) => e.message), [
      'switches[0].peers[0].ipp: unknown field; expected one of ip, uuid',
      'switches[0].fdb[0].vtpe: unknown field; expected one of mac, port, vtep, uuid',
    ]);
  });

  test('a state file given as a configuration is one error that says what it is', () => {
    const errs = errorsOf('{"format": "vpcd-state", "version": 1, "generation": 4, "checksum": "sha256:00", "state": {"switches": []}}\n');
    assert.deepEqual(errs.map((e) => e.field), ['format']);
    assert.match(errs[0]!.message, /^format: this is a vpcd state file .*not a configuration: restore it by copying it over/);
  });

  test('trunk maps a VLAN twice', () => {
    expectError('switches: [{ name: a, vni: 1 }, { name: b, vni: 2 }]\nports:\n  - name: t\n    type: pipe\n    vlans:\n      - { vlan: 10, switch: a }\n      - { vlan: 10, switch: b }\n',
      'ERR_TRUNK_DUPLICATE_VLAN', 'ports[0].vlans[1].vlan', 7);
  });

  test('port refers to an unknown switch', () => {
    expectError('switches: [{ name: a, vni: 1 }]\nports:\n  - name: t\n    type: pipe\n    switch: nope\n', 'ERR_UNKNOWN_SWITCH', 'ports[0].switch', 5);
  });

  test('duplicate switch name', () => {
    expectError('switches:\n  - { name: a, vni: 1 }\n  - { name: a, vni: 2 }\n', 'ERR_DUPLICATE_NAME', 'switches[1].name', 3);
  });

  test('duplicate VNI', () => {
    expectError('switches:\n  - { name: a, vni: 7 }\n  - { name: b, vni: 7 }\n', 'ERR_DUPLICATE_VNI', 'switches[1].vni', 3);
  });

  test('duplicate port name across a switch and the top-level list', () => {
    expectError('switches:\n  - name: a\n    vni: 1\n    ports: [{ name: p, type: pipe }]\nports:\n  - { name: p, type: pipe, switch: a }\n',
      'ERR_DUPLICATE_NAME', 'ports[0].name', 6);
  });

  test('two ports on one interface (the engine would refuse the second at apply: ERR_IN_USE), whatever their types', () => {
    const e = expectError('switches:\n  - name: a\n    vni: 1\n    ports: [{ name: p1, type: afpacket, interface: veth0 }]\n'
      + 'ports:\n  - { name: p2, type: afxdp, switch: a, interface: veth0 }\n', 'ERR_IN_USE', 'ports[0].interface', 6);
    assert.match(e.message, /"veth0" is already used by the port defined at switches\[0\]\.ports\[0\]/);
    // Two vhost-user ports on one socket, and a port on the uplink's interface.
    expectError('switches:\n  - name: a\n    vni: 1\n    ports:\n      - { name: v1, type: vhostuser, socket: /run/v.sock }\n      - { name: v2, type: vhostuser, socket: /run/v.sock }\n',
      'ERR_IN_USE', 'switches[0].ports[1].socket', 6);
    const u = expectError('uplinks: [{ name: up0, type: afpacket, interface: eth1, localIp: 198.18.0.1/24 }]\nswitches:\n  - name: a\n    vni: 1\n    ports: [{ name: p1, type: tap, interface: eth1 }]\n',
      'ERR_IN_USE', 'switches[0].ports[0].interface', 5);
    assert.match(u.message, /already used by the uplink defined at uplinks\[0\]/);
    // One socket file written two ways ("//", "..", a symbolic link in its
    // directory: /var/run is /run on Debian): refused here too, not when
    // the second port opens it (a start would fail then, exit 6).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpc-sock-'));
    try {
      fs.mkdirSync(path.join(dir, 'vms'));
      fs.symlinkSync(path.join(dir, 'vms'), path.join(dir, 'lnk'));
      for (const other of [`${dir}/vms//v.sock`, `${dir}/vms/../vms/v.sock`, `${dir}/lnk/v.sock`]) {
        const twice = expectError(`switches:\n  - name: a\n    vni: 1\n    ports:\n      - { name: v1, type: vhostuser, socket: ${dir}/vms/v.sock }\n      - { name: v2, type: vhostuser, socket: "${other}" }\n`,
          'ERR_IN_USE', 'switches[0].ports[1].socket', 6);
        assert.ok(twice.message.includes(`${JSON.stringify(other)} is already used by the port defined at switches[0].ports[0], as ${JSON.stringify(`${dir}/vms/v.sock`)}: the same file`), twice.message);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    // netmap ports claim rings, not the interface (one per queue may share it);
    // pipes have no interface.
    assert.equal(parseConfig('switches:\n  - name: a\n    vni: 1\n    ports:\n      - { name: n1, type: netmap, interface: eth2, queue: 0 }\n      - { name: n2, type: netmap, interface: eth2, queue: 1 }\n').ports.length, 2);
  });

  test('static entry on a port that is not a member of the switch', () => {
    expectError('switches:\n  - name: a\n    vni: 1\n    ports: [{ name: p, type: pipe }]\n  - name: b\n    vni: 2\n    fdb:\n      - { mac: 02:00:00:00:00:01, port: p }\n',
      'ERR_PORT_NOT_MEMBER', 'switches[1].fdb[0].port', 8);
  });

  test('static entry on an unknown port', () => {
    expectError('switches:\n  - name: a\n    vni: 1\n    fdb:\n      - { mac: 02:00:00:00:00:01, port: ghost }\n', 'ERR_UNKNOWN_PORT', 'switches[0].fdb[0].port', 5);
  });

  test('duplicate static MAC on a switch', () => {
    expectError('switches:\n  - name: a\n    vni: 1\n    ports: [{ name: p, type: pipe }]\n    fdb:\n      - { mac: 02:00:00:00:00:01, port: p }\n      - { mac: 02-00-00-00-00-01, port: p }\n',
      'ERR_DUPLICATE_MAC', 'switches[0].fdb[1].mac', 7);
  });

  test('nested port gives its own switch', () => {
    expectError('switches:\n  - name: a\n    vni: 1\n    ports:\n      - { name: p, type: pipe, switch: a }\n', 'ERR_INVALID_ARGUMENT', 'switches[0].ports[0].switch', 5);
  });

  test('bad UUID', () => {
    expectError('switches:\n  - name: a\n    vni: 1\n    uuid: not-a-uuid\n', 'ERR_INVALID_ARGUMENT', 'switches[0].uuid', 4);
  });

  test('duplicate UUID', () => {
    const u = '123e4567-e89b-12d3-a456-426614174000';
    expectError(`switches:\n  - { name: a, vni: 1, uuid: ${u} }\n  - { name: b, vni: 2, uuid: ${u} }\n`, 'ERR_DUPLICATE_UUID', 'switches[1].uuid', 3);
  });

  test('bad engine option', () => {
    expectError('engine:\n  maxPorts: 0\n', 'ERR_INVALID_ARGUMENT', 'engine.maxPorts', 2);
  });

  test('wrong type where a list is expected', () => {
    expectError('switches: { name: a }\n', 'ERR_INVALID_ARGUMENT', 'switches', 1);
  });

  // ------------------------------------------------------------ overlay

  const UPLINK4 = 'uplinks:\n  - { name: up0, type: pipe, localIp: 198.18.0.1/24 }\n';

  test('overlay: a valid uplink, peers (list and mapping), remoteLearning and a vtep entry', () => {
    const d = parseConfig(`${UPLINK4}switches:
  - name: a
    vni: 1
    remoteLearning: false
    peers: [198.18.0.2, { ip: 198.18.0.3, uuid: 123e4567-e89b-12d3-a456-426614174000 }]
    fdb:
      - { mac: 02:00:00:00:00:09, vtep: 198.18.0.2 }
`);
    assert.equal(d.uplinks.length, 1);
    assert.equal(d.uplinks[0]!.spec.localIp, '198.18.0.1/24');
    assert.deepEqual(d.peers.map((p) => [p.spec.switch, p.spec.ip, p.path]), [['a', '198.18.0.2', 'switches[0].peers[0]'], ['a', '198.18.0.3', 'switches[0].peers[1]']]);
    assert.equal(d.peers[1]!.uuid, '123e4567-e89b-12d3-a456-426614174000');
    assert.equal(d.switches[0]!.spec.remoteLearning, false);
    assert.deepEqual(d.fdb[0]!.spec, { switch: 'a', mac: '02:00:00:00:00:09', vtep: '198.18.0.2' });
  });

  test('overlay: IPv6 peers are kept in one spelling', () => {
    const d = parseConfig('uplinks:\n  - { name: up0, type: pipe, localIp6: 2001:db8::1/64 }\nswitches:\n  - { name: a, vni: 1, peers: ["2001:DB8:0:0::2"] }\n');
    assert.equal(d.peers[0]!.spec.ip, '2001:db8::2');
  });

  test('overlay: a second uplink', () => {
    const e = expectError(`${UPLINK4}  - { name: up1, type: pipe, localIp: 198.18.1.1/24 }\n`, 'ERR_TOO_MANY_UPLINKS', 'uplinks[1]', 3);
    assert.match(e.message, /one uplink/);
  });

  test('overlay: an uplink without a VTEP address', () => {
    expectError('uplinks:\n  - { name: up0, type: pipe }\n', 'ERR_INVALID_ARGUMENT', 'uplinks[0].localIp', 2);
  });

  test('overlay: a bad uplink field', () => {
    expectError('uplinks:\n  - name: up0\n    type: pipe\n    localIp: 198.18.0.1/24\n    udpPort: 70000\n', 'ERR_INVALID_ARGUMENT', 'uplinks[0].udpPort', 5);
  });

  test('overlay: uplink name taken by a port', () => {
    expectError(`${UPLINK4}switches:\n  - { name: a, vni: 1 }\nports:\n  - { name: up0, type: pipe, switch: a }\n`, 'ERR_DUPLICATE_NAME', 'uplinks[0].name', 2);
  });

  test('overlay: a peer that is not an IP address', () => {
    const e = expectError(`${UPLINK4}switches:\n  - name: a\n    vni: 1\n    peers: [198.18.0.300]\n`, 'ERR_INVALID_ARGUMENT', 'switches[0].peers[0]', 6);
    assert.match(e.message, /IPv4 or IPv6/);
  });

  test('overlay: a peer without an uplink', () => {
    expectError('switches:\n  - name: a\n    vni: 1\n    peers: [198.18.0.2]\n', 'ERR_NO_UPLINK', 'switches[0].peers[0]', 4);
  });

  test('overlay: a peer of the wrong address family', () => {
    const e = expectError(`${UPLINK4}switches:\n  - name: a\n    vni: 1\n    peers:\n      - 2001:db8::2\n`, 'ERR_ADDRESS_FAMILY', 'switches[0].peers[0]', 7);
    assert.match(e.message, /IPv6 address but uplink "up0" has no localIp6/);
  });

  test('overlay: a peer listed twice', () => {
    expectError(`${UPLINK4}switches:\n  - name: a\n    vni: 1\n    peers: [198.18.0.2, 198.18.0.2]\n`, 'ERR_DUPLICATE_PEER', 'switches[0].peers[1]', 6);
  });

  test('overlay: a peer that is this host\'s own VTEP address', () => {
    expectError(`${UPLINK4}switches:\n  - name: a\n    vni: 1\n    peers: [198.18.0.1]\n`, 'ERR_INVALID_ARGUMENT', 'switches[0].peers[0]', 6);
  });

  test('overlay: a peer mapping naming its switch', () => {
    expectError(`${UPLINK4}switches:\n  - name: a\n    vni: 1\n    peers:\n      - { ip: 198.18.0.2, switch: b }\n`, 'ERR_INVALID_ARGUMENT', 'switches[0].peers[0].switch', 7);
  });

  test('overlay: a vtep entry of the wrong family, and one with both port and vtep', () => {
    const yaml = `${UPLINK4}switches:\n  - name: a\n    vni: 1\n    ports: [{ name: p1, type: pipe }]\n    fdb:\n      - { mac: 02:00:00:00:00:09, vtep: "2001:db8::9" }\n      - { mac: 02:00:00:00:00:0a, vtep: 198.18.0.9, port: p1 }\n`;
    expectError(yaml, 'ERR_ADDRESS_FAMILY', 'switches[0].fdb[0].vtep', 8);
    expectError(yaml, 'ERR_INVALID_ARGUMENT', 'switches[0].fdb[1].vtep', 9);
  });

  test('overlay: a vtep entry without an uplink', () => {
    expectError('switches:\n  - name: a\n    vni: 1\n    fdb: [{ mac: 02:00:00:00:00:09, vtep: 198.18.0.2 }]\n', 'ERR_NO_UPLINK', 'switches[0].fdb[0].vtep', 4);
  });

  test('overlay: remoteLearning must be a boolean', () => {
    expectError('switches:\n  - name: a\n    vni: 1\n    remoteLearning: sometimes\n', 'ERR_INVALID_ARGUMENT', 'switches[0].remoteLearning', 4);
  });

  test('every error is reported, not just the first, sorted by line', () => {
    const errs = errorsOf('switches:\n  - { name: a, vni: 0 }\n  - { name: b, vni: 2, learning: maybe }\nports:\n  - { name: p, type: pipe, switch: zz }\n');
    assert.deepEqual(errs.map((e) => [e.code, e.line]), [['ERR_INVALID_VNI', 2], ['ERR_INVALID_ARGUMENT', 3], ['ERR_UNKNOWN_SWITCH', 5]]);
  });

  test('the summary message names file, line, path and code', () => {
    try {
      parseConfig('switches:\n  - { name: a, vni: 0 }\n', 'x.yaml');
      assert.fail('refused');
    } catch (err) {
      assert.ok(err instanceof ControlError);
      assert.equal(err.code, 'ERR_CONFIG_INVALID');
      assert.equal(err.status, 400);
      assert.match(err.message, /x\.yaml:2: switches\[0\]\.vni: must be an integer in 1\.\.16777215 \(got 0\) \[ERR_INVALID_VNI\]/);
    }
  });
});

test('splitPath', () => {
  assert.deepEqual(splitPath('switches[0].ports[12].vlans[1].switch'), ['switches', 0, 'ports', 12, 'vlans', 1, 'switch']);
  assert.deepEqual(splitPath(''), []);
});

test('every examples/*.yaml is a valid configuration', () => {
  const fs = require('node:fs') as typeof import('node:fs');
  const path = require('node:path') as typeof import('node:path');
  const dir = path.resolve(__dirname, '../../../examples');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 3);
  for (const f of files) parseConfig(fs.readFileSync(path.join(dir, f), 'utf8'), f);
});

// Issue 10 item 10: every error of every object, not only the first bad
// field of each. Each object below has several independent mistakes.
describe('config: every error of every object', () => {
  const MANY = `engine: { bufferSize: 3000, maxPorts: 0 }
uplinks:
  - { name: up0, type: pipe, localIp: 198.18.0.300/24, ttl: 0, df: maybe }
switches:
  - name: a
    vni: 0
    macLimit: -1
    learnig: true
    uuid: not-a-uuid
    ports:
      - { name: p1, type: pipe, mtu: 1, mac: zz, lerning: false }
      - { name: p2, type: pipe, switch: a, flood: 3 }
    peers:
      - { ip: 198.18.0.2.5, switch: a }
    fdb:
      - { mac: 01:00:00:00:00:01, port: "bad name", switch: a }
ports:
  - { name: t1, type: pipe, vlans: [{ vlan: 0, switch: a }], mtu: 70000, interface: eth0 }
  - { name: "bad name", type: tap, queue: 99 }
  - { name: p3, type: nope, mtu: 1 }
  - { type: pipe, switch: a, mtu: 1 }
`;
  const expected: [string, string, number][] = [
    ['ERR_INVALID_ARGUMENT', 'engine.bufferSize', 1],
    ['ERR_INVALID_ARGUMENT', 'engine.maxPorts', 1],
    ['ERR_INVALID_ARGUMENT', 'uplinks[0].localIp', 3],
    ['ERR_INVALID_ARGUMENT', 'uplinks[0].ttl', 3],
    ['ERR_INVALID_ARGUMENT', 'uplinks[0].df', 3],
    ['ERR_INVALID_VNI', 'switches[0].vni', 6],
    ['ERR_INVALID_ARGUMENT', 'switches[0].macLimit', 7],
    ['ERR_INVALID_ARGUMENT', 'switches[0].learnig', 8],
    ['ERR_INVALID_ARGUMENT', 'switches[0].uuid', 9],
    ['ERR_INVALID_ARGUMENT', 'switches[0].ports[0].mtu', 11],
    ['ERR_INVALID_MAC', 'switches[0].ports[0].mac', 11],
    ['ERR_INVALID_ARGUMENT', 'switches[0].ports[0].lerning', 11],
    ['ERR_INVALID_ARGUMENT', 'switches[0].ports[1].switch', 12],
    ['ERR_INVALID_ARGUMENT', 'switches[0].ports[1].flood', 12],
    ['ERR_INVALID_ARGUMENT', 'switches[0].peers[0].switch', 14],
    ['ERR_INVALID_ARGUMENT', 'switches[0].peers[0].ip', 14],
    ['ERR_INVALID_ARGUMENT', 'switches[0].fdb[0].switch', 16],
    ['ERR_INVALID_MAC', 'switches[0].fdb[0].mac', 16],
    ['ERR_INVALID_NAME', 'switches[0].fdb[0].port', 16],
    ['ERR_INVALID_VLAN', 'ports[0].vlans[0].vlan', 18],
    ['ERR_INVALID_ARGUMENT', 'ports[0].mtu', 18],
    ['ERR_INVALID_ARGUMENT', 'ports[0].interface', 18],
    ['ERR_INVALID_NAME', 'ports[1].name', 19],
    ['ERR_INVALID_ARGUMENT', 'ports[1].switch', 19],
    ['ERR_INVALID_ARGUMENT', 'ports[1].interface', 19],
    ['ERR_INVALID_ARGUMENT', 'ports[1].queue', 19],
    ['ERR_INVALID_ARGUMENT', 'ports[2].type', 20],
    ['ERR_INVALID_NAME', 'ports[3].name', 21],
    ['ERR_INVALID_ARGUMENT', 'ports[3].mtu', 21],
  ];

  test('each bad field is reported once, with its code, path and line, and nothing else', () => {
    const errs = errorsOf(MANY);
    const got = errs.map((e) => [e.code, e.field, e.line]);
    for (const e of expected) assert.ok(got.some((g) => JSON.stringify(g) === JSON.stringify(e)), `missing ${JSON.stringify(e)}; got ${JSON.stringify(got)}`);
    assert.deepEqual(got.map((g) => g[1]).sort(), expected.map((e) => e[1]).sort(), 'no error twice, none made up');
    for (const e of errs) assert.ok(e.message.startsWith(`${e.field}: `), e.message);
  });

  test('an object with one error still reports just that one; a port type error stops at the type (it decides which fields apply)', () => {
    assert.deepEqual(errorsOf('switches: [{ name: a, vni: 0 }]\n').map((e) => e.field), ['switches[0].vni']);
    assert.deepEqual(errorsOf('ports: [{ name: p, type: afxpd, switch: a, queue: 1, zeroCopy: on }]\nswitches: [{ name: a, vni: 1 }]\n').map((e) => e.field), ['ports[0].type']);
  });

  test('every bad element of a list, with the given indices, and the unknown switches of a port refused for another field', () => {
    const sw = 'switches: [{ name: t, vni: 1 }]\nports:\n';
    let errs = errorsOf(`${sw}  - { name: p, type: pipe, switch: t, lockedMacs: ["01:00:00:00:00:01", "zz"] }\n`);
    assert.deepEqual(errs.map((e) => [e.code, e.field]), [['ERR_INVALID_MAC', 'ports[0].lockedMacs[0]'], ['ERR_INVALID_MAC', 'ports[0].lockedMacs[1]']]);
    // After an element set aside, the others keep their own indices, in the field and the message.
    errs = errorsOf(`${sw}  - { name: p, type: pipe, switch: t, lockedMacs: [zz, "02:00:00:00:00:01", "02:00:00:00:00:01"] }\n`);
    assert.deepEqual(errs.map((e) => e.message), [
      'ports[0].lockedMacs[0]: must be six two-digit hex octets separated by ":" or "-" (got "zz")',
      'ports[0].lockedMacs[2]: duplicates lockedMacs[1] (02:00:00:00:00:01)',
    ]);
    errs = errorsOf(`${sw}  - { name: tr, type: pipe, vlans: [{ vlan: 10, switch: nosuch }, { vlan: 0, switch: t }] }\n`);
    assert.deepEqual(errs.map((e) => [e.code, e.field, e.line]).sort(), [['ERR_INVALID_VLAN', 'ports[0].vlans[1].vlan', 3], ['ERR_UNKNOWN_SWITCH', 'ports[0].vlans[0].switch', 3]]);
    // A field whose own error was said is not called unknown as well.
    assert.deepEqual(errorsOf(`${sw}  - { name: p, type: pipe, switch: "bad name", mtu: 1 }\n`).map((e) => e.field), ['ports[0].switch', 'ports[0].mtu']);
  });

  test('a switch whose name is bad: said once, its objects still checked, and no error at a `switch` key nobody wrote', () => {
    const errs = errorsOf(`switches:
  - name: "b\u00e9d"
    vni: 2
    ports:
      - { name: p2, type: pipe }
      - { name: p3, type: pipe, mtu: 5 }
    peers: [198.18.0.9, 198.18.0.300]
    fdb:
      - { mac: "02:00:00:00:00:01", port: p2 }
      - { mac: zz, port: p2 }
`);
    assert.deepEqual(errs.map((e) => [e.code, e.field, e.line]), [
      ['ERR_INVALID_NAME', 'switches[0].name', 2],
      ['ERR_INVALID_ARGUMENT', 'switches[0].ports[1].mtu', 6],
      ['ERR_INVALID_ARGUMENT', 'switches[0].peers[1]', 7],
      ['ERR_INVALID_MAC', 'switches[0].fdb[1].mac', 10],
    ]);
    // No usable name at all: the same.
    assert.deepEqual(errorsOf('switches:\n  - name: 1001\n    vni: 2\n    ports:\n      - { name: p2, type: pipe, mtu: 5 }\n').map((e) => e.field),
      ['switches[0].name', 'switches[0].ports[0].mtu']);
  });

  test('through the API: a create lists every error in details', async () => {
    const { parseSwitch } = await import('../../src/control/model');
    assert.throws(() => parseSwitch({ name: 'a', vni: 0, macLimit: -1, agingSeconds: 'x' }), (err: unknown) => {
      assert.ok(err instanceof ControlError);
      assert.equal(err.code, 'ERR_INVALID_VNI');
      assert.equal(err.field, 'vni');
      assert.equal(err.status, 400);
      assert.deepEqual(err.details!.map((d) => d.field), ['vni', 'macLimit', 'agingSeconds']);
      assert.match(err.message, /^3 errors: vni: .*; macLimit: .*; agingSeconds: /);
      return true;
    });
  });
});
