// Checks of the host around vpcd. They only read (addresses of the
// interfaces of vpcd's own network namespace, which is the one its kernel
// ports and its uplink live in); they never change anything.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UplinkSpec } from '../dataplane';

type Interfaces = NodeJS.Dict<os.NetworkInterfaceInfo[]>;

// An address in one spelling: IPv6 compressed and lower-case, like the
// kernel (and os.networkInterfaces()) reports it.
function canonical(address: string): string {
  const a = address.split('/')[0]!.split('%')[0]!;
  if (!a.includes(':')) return a;
  try {
    return new URL(`http://[${a}]/`).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return a.toLowerCase();
  }
}

// The uplink answers ARP/ND and VXLAN for its VTEP address itself. When a
// kernel interface of the same namespace holds that address too, the kernel
// sees the same frames (AF_PACKET does not take them away from it): it
// answers ARP a second time and rejects the VXLAN datagrams with ICMP port
// unreachable. One warning per address held, naming the interface.
export function vtepHeldByKernel(spec: Pick<UplinkSpec, 'name' | 'interface' | 'localIp' | 'localIp6'>, interfaces: Interfaces = os.networkInterfaces()): string[] {
  if (spec.interface === undefined) return []; // a pipe uplink: no kernel side
  const out: string[] = [];
  for (const [key, given] of [['localIp', spec.localIp], ['localIp6', spec.localIp6]] as const) {
    if (given === undefined) continue;
    const want = canonical(given);
    for (const [ifname, addrs] of Object.entries(interfaces)) {
      const held = (addrs ?? []).find((a) => canonical(a.address) === want);
      if (held === undefined) continue;
      out.push(`uplink "${spec.name}": ${key} ${want} is also assigned to the kernel interface ${ifname} (${held.cidr ?? want}); ` +
        'the kernel then answers ARP/ND for it a second time and rejects VXLAN to it with ICMP port unreachable. ' +
        `Remove it from the kernel (ip addr del ${held.cidr ?? want} dev ${ifname}) or give the uplink an address of its own ` +
        '(docs/operations.md, "The VTEP address")');
    }
  }
  return out;
}

// An afpacket or afxdp port whose interface does not exist (yet) is made
// down and comes up when the interface appears (a VM's tap comes with its
// VM, a container's veth with its container); said so that a misspelt name
// does not go unnoticed. `exists` reads vpcd's own namespace.
// The same holds for the uplink (its VTEP then takes the interface's MAC).
export function interfaceMissing(spec: { name: string; type: string; interface?: string }, exists: (ifname: string) => boolean = (n) => fs.existsSync(`/sys/class/net/${n}`), what: 'port' | 'uplink' = 'port'): string[] {
  if ((spec.type !== 'afpacket' && spec.type !== 'afxdp') || spec.interface === undefined || exists(spec.interface)) return [];
  return [`${what} "${spec.name}": interface ${spec.interface} does not exist (yet); the ${what} is down until it appears (check the name with: ip link)`];
}

// A vhost-user port in server mode whose socket's directory is missing is
// made down the same way, and listens when the directory appears.
export function socketDirectoryMissing(spec: { name: string; type: string; socket?: string; mode?: string }, exists: (dir: string) => boolean = (d) => fs.existsSync(d)): string[] {
  if (spec.type !== 'vhostuser' || spec.mode === 'client' || spec.socket === undefined) return [];
  const dir = path.dirname(spec.socket);
  if (exists(dir)) return [];
  return [`port "${spec.name}": the directory ${dir} of its socket does not exist (yet); the port is down until it does (make it, e.g. mkdir -p ${dir})`];
}
