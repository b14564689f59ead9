// A QEMU guest on a vhost-user port in client mode (QEMU owns the socket,
// vpcd connects), booted once for the file:
//   - it reaches a guest behind a Linux VTEP (vxlan device + bridge) across
//     VXLAN;
//   - vpcd restarts (SIGTERM, then a crash: SIGKILL) while the VM runs, and
//     traffic resumes each time without touching the VM: vpcd reconnects to
//     QEMU's socket and the guest's driver carries on (VPP's open bug
//     FDio/vpp#407 is a guest stranded by exactly this).
//
// Hosts are namespaces the test creates: "A" runs vpcd (its uplink is an
// afpacket port on the underlay veth), "B" is the Linux VTEP with a guest
// namespace behind its bridge. Underlay 198.18.0.0/24, overlay
// 198.19.113.0/24: all inside 198.18.0.0/15. Pings of a few packets only.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { removeDir, spawnVpcd, TEST_ENGINE, tempDir, type VpcdProcess } from '../control/helpers';
import { type Guest, Lab, run, skipReason, sleep } from '../ports/lab';
import { guest, linuxVtep, quietNetns } from '../overlay/vxlab';
import { ensureGuestTools, guestImage, Vm } from './guest';
import { linkEvents, portView, until } from './vhostlab';

const VNI = 1113;
const A = '198.18.0.1';
const B = '198.18.0.2';
const VM = { mac: '52:54:00:0d:01:01', ip: '198.19.113.1' };
const GB = { mac: '02:00:00:0d:01:02', ip: '198.19.113.2' };

const reason = skipReason([]);

describe('a QEMU guest on a client-mode vhost-user port: VXLAN to a Linux VTEP, vpcd restarts', { skip: reason, timeout: 1_500_000 }, () => {
  let lab: Lab;
  let dir: string;
  let nsA: string;
  let d: VpcdProcess;
  let vm: Vm;
  let gb: Guest;
  let config: string;

  before(async () => {
    ensureGuestTools(['bridge']);
    guestImage();
    lab = new Lab();
    dir = tempDir('vpcd-vhost-');
    nsA = quietNetns(lab, 'a');
    const nsB = quietNetns(lab, 'b');
    lab.vethBetween(nsA, 'ul', nsB, 'ub');
    for (const [ns, dev] of [[nsA, 'ul'], [nsB, 'ub']] as const) run('ip', ['-n', ns, 'link', 'set', dev, 'mtu', '1600']);
    run('ip', ['-n', nsB, 'addr', 'add', `${B}/24`, 'dev', 'ub']);
    const { br } = linuxVtep(nsB, VNI, B, 'ub', [A]);
    gb = guest(lab, 'gb', nsB, 'gbh', GB.mac, `${GB.ip}/24`, 1500);
    run('ip', ['-n', nsB, 'link', 'set', 'gbh', 'master', br]);
    const sock = path.join(dir, 'vm.sock');
    config = `version: 1
${TEST_ENGINE}uplinks:
  - { name: up0, type: afpacket, interface: ul, mtu: 1600, localIp: ${A}/24 }
switches:
  - name: tenant
    vni: ${VNI}
    peers: [${B}]
    ports:
      - { name: vm, type: vhostuser, socket: ${sock}, mode: client }
`;
    d = await spawnVpcd({ dir, config, netns: nsA });
    lab.own(d.proc);
    vm = await Vm.boot((c) => lab.own(c), { name: 'vm', mac: VM.mac, cidr: `${VM.ip}/24`, net: { kind: 'vhostuser', socket: sock, qemuServer: true } });
  });

  after(async () => {
    await vm?.kill();
    if (d) await Promise.race([d.stop(), sleep(15_000)]);
    lab?.cleanup();
    if (dir) removeDir(dir);
  });

  test('the VM reaches the Linux VTEP\'s guest across VXLAN, both ways', async () => {
    const a = await vm.pingUntil(GB.ip);
    assert.ok(a.received > 0, `vm -> gb:\n${a.out}\n${vm.tail()}`);
    const r = await lab.nsAsync(gb.ns, 'ping', ['-c', '3', '-i', '0.3', '-W', '2', '-n', VM.ip], 30_000);
    assert.match(r.out, / 3 received/, `gb -> vm:\n${r.out}`);
  });

  for (const how of ['SIGTERM', 'SIGKILL'] as const) {
    test(`vpcd ${how === 'SIGTERM' ? 'restarted' : 'killed (SIGKILL) and started again'} while the VM runs: it reconnects and traffic resumes`, async () => {
      const connects = (await portView(d, 'vm')).backend?.vhost?.connects ?? 0;
      if (how === 'SIGTERM') await d.stop();
      else await d.kill9();
      // While vpcd is away, nothing gets through: the path really is vpcd.
      const gone = await vm.ping(GB.ip, 2, 1);
      assert.equal(gone.received, 0, `a reply with vpcd stopped:\n${gone.out}`);
      assert.ok(vm.alive(), 'QEMU survives the switch going away');
      d = await spawnVpcd({ dir, config, netns: nsA });
      lab.own(d.proc);
      const v = await until(async () => {
        const p = await portView(d, 'vm');
        assert.equal(p.link, 'up', JSON.stringify(p));
        return p;
      }, 60_000);
      assert.equal(v.backend?.vhost?.connected, true);
      assert.ok(connects >= 1, 'the first vpcd had connected');
      // The event reaches the log a moment after the port's state does.
      await until(() => assert.deepEqual(linkEvents(d, 'vm').slice(-1), [true], 'a link-up event'), 10_000);
      const back = await vm.pingUntil(GB.ip);
      assert.ok(back.received > 0, `no traffic after the restart:\n${back.out}\n${vm.tail()}`);
      const r = await lab.nsAsync(gb.ns, 'ping', ['-c', '2', '-i', '0.3', '-W', '2', '-n', VM.ip], 30_000);
      assert.match(r.out, / 2 received/, `gb -> vm after the restart:\n${r.out}`);
    });
  }
});
