// bgp.managed: false: vpcd uses an operator's gobgpd (here one the test
// starts on a loopback port and configures over the API) and only adds and
// withdraws paths in it.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { describe, test } from 'node:test';
import { GobgpClient } from '../../src/control/evpn/gobgp';
import { freeLoopbackPort } from '../../src/control/evpn/speaker';
import { eventually, frameHex, removeDir, spawnVpcd, TEST_ENGINE, type VpcdProcess } from '../control/helpers';

const GOBGPD = ['/usr/bin/gobgpd', '/usr/sbin/gobgpd'].find((f) => fs.existsSync(f));
const PROTOS = fs.existsSync('/usr/share/gocode/src/github.com/osrg/gobgp/api/gobgp.proto');

describe('EVPN with an external gobgpd', { skip: GOBGPD !== undefined && PROTOS ? false : 'gobgpd (Debian package gobgpd) or its protos missing' }, () => {
  // The operator's gobgpd (no neighbours) and its API client, around `body`,
  // which may start a vpcd (set *vpcd): everything is stopped afterwards.
  async function withGobgpd(body: (c: GobgpClient, port: number, vpcd: { d?: VpcdProcess }) => Promise<void>): Promise<void> {
    const port = await freeLoopbackPort();
    const g = spawn(GOBGPD!, ['--api-hosts', `127.0.0.1:${port}`, '--pprof-disable', '-p', '-l', 'warn'], { stdio: 'ignore' });
    const c = new GobgpClient(`127.0.0.1:${port}`);
    const vpcd: { d?: VpcdProcess } = {};
    try {
      await c.waitReady(10_000);
      await c.startBgp({ asn: 64512, routerId: '198.18.0.1', listenPort: -1 });
      await body(c, port, vpcd);
    } finally {
      await vpcd.d?.stop();
      if (vpcd.d) removeDir(vpcd.d.dir);
      c.close();
      g.kill('SIGKILL');
    }
  }

  test('vpcd advertises into it and withdraws what goes; bgp status names it', async () => {
    await withGobgpd(async (c, port, vpcd) => {
      const d = (vpcd.d = await spawnVpcd({
        testHooks: true,
        config: `${TEST_ENGINE}uplinks:\n  - { name: up0, type: pipe, localIp: 198.18.0.11/24 }\nswitches:\n  - name: s1\n    vni: 1001\n    ports: [{ name: p1, type: pipe }]\nbgp: { asn: 64512, routerId: 198.18.0.1, managed: false, address: "127.0.0.1:${port}" }\n`,
      }));
      const ours = async (): Promise<{ type: number; mac?: string }[]> => (await c.listRoutes()).filter((r) => r.neighbor === '').map((r) => ({ type: r.route.type, ...(r.route.type === 2 ? { mac: r.route.mac } : {}) }));
      await eventually(async () => (await ours()).some((r) => r.type === 3), 15_000, 100);
      await d.client.call('POST', '/v1/test/ports/p1/send', { frames: [frameHex('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:51')] });
      await eventually(async () => (await ours()).some((r) => r.type === 2 && r.mac === '02:00:00:00:00:51'), 15_000, 100);
      const st = await d.client.call<{ bgp: { managed: boolean; api: string; speaker: string } }>('GET', '/v1/bgp');
      assert.equal(st.bgp.managed, false);
      assert.equal(st.bgp.api, `127.0.0.1:${port}`);
      // The switch goes: its routes are withdrawn from the operator's gobgpd.
      await d.client.call('DELETE', '/v1/ports/p1');
      await d.client.call('DELETE', '/v1/switches/s1');
      await eventually(async () => (await ours()).length === 0, 15_000, 100);
    });
  });

  test('bgp taken out of the configuration: our routes are withdrawn from it and the switch learns from VXLAN frames again', async () => {
    await withGobgpd(async (c, port, vpcd) => {
      const base = `${TEST_ENGINE}uplinks:\n  - { name: up0, type: pipe, localIp: 198.18.0.11/24 }\nswitches:\n  - name: s1\n    vni: 1001\n    ports: [{ name: p1, type: pipe }]\n`;
      const d = (vpcd.d = await spawnVpcd({ testHooks: true, config: `${base}bgp: { asn: 64512, routerId: 198.18.0.1, managed: false, address: "127.0.0.1:${port}" }\n` }));
      const ours = async (): Promise<number> => (await c.listRoutes()).filter((r) => r.neighbor === '').length;
      const learning = async (): Promise<boolean> => (await d.client.call<{ switch: { remoteLearning: boolean } }>('GET', '/v1/switches/s1')).switch.remoteLearning;
      await d.client.call('POST', '/v1/test/ports/p1/send', { frames: [frameHex('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:52')] });
      await eventually(async () => (await ours()) === 2, 15_000, 100); // IMET and the MAC
      assert.equal(await learning(), false, 'EVPN turned learning from VXLAN frames off');
      const r = await d.client.call<{ applied: boolean }>('POST', '/v1/apply', { config: base });
      assert.equal(r.applied, true);
      await eventually(async () => (await ours()) === 0, 15_000, 100);
      assert.equal(await learning(), true, 'the switch is as configured again');
      // The service follows the configuration after the apply: it withdraws
      // the routes and gives the switches back first, then stops its sync
      // and its client, and only then is there no speaker to report.
      await eventually(async () => (await d.client.call<{ bgp: unknown }>('GET', '/v1/bgp')).bgp === null, 5_000, 100);
    });
  });
});
