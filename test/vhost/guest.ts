// Test helper (not a test file): tiny QEMU guests for the vhost-user tests.
//
// The image (guest-image.sh, cached under build/vhost-guest) is Debian's
// current kernel plus a busybox-static initramfs whose /init
// (guest-init.sh) loads virtio-net, configures eth0 from the kernel command
// line and then runs the commands the test writes to its serial console. The
// guest keeps virtio-net's defaults: whatever the backend offers and the
// driver takes (checksum offload, TSO, mergeable buffers...) stays on.
//
// QEMU runs under TCG (no KVM here), guest memory is a shared memfd (what
// vhost-user needs), the NIC is virtio-net-pci with vectors=0 (QEMU 7.2
// under TCG segfaults in vhost_net_start without it). Every VM is bounded:
// the guest powers off after its deadline, and the test kills QEMU by PID at
// cleanup.

import { ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
const IMAGE_SCRIPT = path.join(ROOT, 'test', 'vhost', 'guest-image.sh');
const IMAGE_DIR = path.join(ROOT, 'build', 'vhost-guest');

// virtio-net feature bits (virtio 1.x spec, 5.1.3), as the guest reports
// them in /sys/class/net/eth0/device/features.
export const VIRTIO_NET_F = {
  CSUM: 0,
  GUEST_CSUM: 1,
  GUEST_TSO4: 7,
  GUEST_TSO6: 8,
  HOST_TSO4: 11,
  HOST_TSO6: 12,
  MRG_RXBUF: 15,
  STATUS: 16,
  MQ: 22,
  EVENT_IDX: 29,
  VERSION_1: 32,
} as const;

function which(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore', env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` } });
    return true;
  } catch {
    return false;
  }
}

const TOOLS = ['qemu-system-x86_64', 'apt-get', 'dpkg-deb', 'xz'];

// The QEMU tests do not skip for a missing tool: they install it (the
// project's setup script) or fail with its name.
let setupTried = false;
export function ensureGuestTools(extra: string[] = []): void {
  const missing = (): string[] => [...TOOLS, ...extra].filter((t) => !which(t)).concat(fs.existsSync('/bin/busybox') ? [] : ['busybox (busybox-static)']);
  if (missing().length > 0 && !setupTried) {
    setupTried = true;
    try {
      execFileSync('bash', [path.join(ROOT, 'scripts', 'setup-deps.sh'), 'test'], { stdio: 'ignore', timeout: 900_000 });
    } catch {
      // reported below
    }
  }
  const still = missing();
  if (still.length > 0) throw new Error(`vhost-user QEMU tests: missing ${still.join(', ')} (scripts/setup-deps.sh was tried)`);
}

export interface GuestImage {
  kernel: string;
  initrd: string;
}

let image: GuestImage | undefined;

// Builds (once, cached under build/vhost-guest) and returns the guest image.
export function guestImage(): GuestImage {
  if (image) return image;
  let out: string;
  try {
    out = execFileSync('bash', [IMAGE_SCRIPT, IMAGE_DIR], { encoding: 'utf8', timeout: 1_200_000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`building the QEMU guest image failed: ${e.stderr?.trim() || e.message}`);
  }
  const [kernel, initrd] = out.trim().split('\n');
  if (!kernel || !initrd || !fs.existsSync(kernel) || !fs.existsSync(initrd)) throw new Error(`guest-image.sh printed no image: ${out}`);
  image = { kernel, initrd };
  return image;
}

export type VmNet =
  // vhost-user: `qemuServer` true when QEMU owns the socket (the switch's
  // port is in client mode), false when the switch owns it (QEMU connects and
  // reconnects).
  | { kind: 'vhostuser'; socket: string; qemuServer: boolean; queues?: number }
  // A tap QEMU opens itself by name (the VM-on-a-tap setup of docs/ports.md).
  | { kind: 'tap'; ifname: string };

export interface VmOptions {
  name: string;
  mac: string;
  cidr: string; // eth0's address, from 198.18.0.0/15
  net: VmNet;
  memMiB?: number; // default 256
  deadlineS?: number; // the guest powers off after this; default 900
  bootTimeoutMs?: number; // default 420 s (TCG on a busy 2-core machine)
}

export interface RunResult {
  code: number;
  out: string;
}

// The QEMU command line of a test VM.
export function qemuArgs(img: GuestImage, o: VmOptions): string[] {
  const mem = o.memMiB ?? 256;
  const append = ['console=ttyS0', 'panic=-1', 'quiet', 'no_timer_check', `vpc.name=${o.name}`, `vpc.ip=${o.cidr}`, `vpc.deadline=${o.deadlineS ?? 900}`].join(' ');
  const args = [
    '-nographic', '-nodefaults', '-no-reboot', '-monitor', 'none', '-serial', 'stdio',
    '-smp', '1', '-m', `${mem}M`,
    '-object', `memory-backend-memfd,id=mem,size=${mem}M,share=on`, '-numa', 'node,memdev=mem',
    '-kernel', img.kernel, '-initrd', img.initrd, '-append', append,
  ];
  // no_timer_check: the PVH-booted kernel's IO-APIC timer check fails under
  // TCG and would panic; it checks the emulated PIT, nothing the tests use.
  const nic = `virtio-net-pci,netdev=n0,mac=${o.mac},vectors=0,romfile=`;
  if (o.net.kind === 'vhostuser') {
    const q = o.net.queues ?? 1;
    args.push('-chardev', `socket,id=c0,path=${o.net.socket}${o.net.qemuServer ? ',server=on,wait=off' : ',reconnect=1'}`);
    args.push('-netdev', `vhost-user,id=n0,chardev=c0${q > 1 ? `,queues=${q}` : ''}`);
    args.push('-device', q > 1 ? `${nic},mq=on` : nic);
  } else {
    args.push('-netdev', `tap,id=n0,ifname=${o.net.ifname},script=no,downscript=no`, '-device', nic);
  }
  return args;
}

export class Vm {
  readonly name: string;
  private readonly child: ChildProcessWithoutNullStreams;
  private console = '';
  private stderr = '';
  private nextId = 1;
  private queue: Promise<unknown> = Promise.resolve();
  readonly exited: Promise<number | null>;
  private exitCode: number | null | undefined;
  features = ''; // negotiated virtio-net features, one '0'/'1' per bit
  guestMac = '';

  private constructor(readonly opts: VmOptions, img: GuestImage) {
    this.name = opts.name;
    this.child = spawn('qemu-system-x86_64', qemuArgs(img, opts), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (d: Buffer) => {
      this.console += d.toString('latin1');
      this.wake();
    });
    this.child.stderr.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      this.wake();
    });
    this.child.stdin.on('error', () => undefined); // QEMU gone: reported by the waiters
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        this.wake();
        resolve(this.exitCode);
      }),
    );
  }

  // Starts QEMU; `own` registers it for cleanup (Lab.own). Resolves once
  // the guest printed @@READY (eth0 configured).
  static async boot(own: (c: { kill(signal?: NodeJS.Signals): boolean }) => void, opts: VmOptions): Promise<Vm> {
    const vm = new Vm(opts, guestImage());
    own(vm.child);
    const m = await vm.waitFor(/@@READY (\S+) (\S+) (\S+)\r?\n/, opts.bootTimeoutMs ?? 420_000, 'boot');
    vm.guestMac = m[2]!;
    vm.features = m[3]!;
    for (const f of vm.console.matchAll(/@@FAIL ([^\r\n]*)/g)) throw new Error(`${vm.name}: guest init: ${f[1]}\n${vm.tail()}`);
    return vm;
  }

  get pid(): number {
    return this.child.pid!;
  }

  alive(): boolean {
    return this.exitCode === undefined;
  }

  has(bit: number): boolean {
    return this.features[bit] === '1';
  }

  tail(chars = 3000): string {
    return `--- ${this.name} console (last ${chars} chars) ---\n${this.console.slice(-chars)}\n--- ${this.name} qemu stderr ---\n${this.stderr.slice(-1500)}`;
  }

  private waiters = new Set<() => void>();
  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  // Waits until `re` matches the console from `from` on.
  private waitFor(re: RegExp, timeoutMs: number, what: string, from = 0): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const m = re.exec(this.console.slice(from));
        if (m) {
          done();
          resolve(m);
        } else if (this.exitCode !== undefined) {
          done();
          reject(new Error(`${this.name}: QEMU exited (${this.exitCode}) waiting for ${what}\n${this.tail()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: ${what} timed out after ${timeoutMs} ms\n${this.tail()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  // Runs one shell command line (no newlines) in the guest; commands run one
  // at a time, in order.
  run(cmd: string, timeoutMs = 60_000): Promise<RunResult> {
    if (cmd.includes('\n')) throw new Error('guest commands are single lines');
    const p = this.queue.then(async () => {
      const id = `c${this.nextId++}`;
      const from = this.console.length;
      this.child.stdin.write(`${id} ${cmd}\n`);
      const m = await this.waitFor(new RegExp(`@@BEGIN ${id}\\r?\\n([\\s\\S]*?)@@END ${id} (\\d+)`), timeoutMs, `"${cmd}"`, from);
      return { code: Number(m[2]), out: m[1]!.replace(/\r/g, '') };
    });
    this.queue = p.catch(() => undefined);
    return p;
  }

  // ping from the guest (busybox ping); resolves with the reply count.
  async ping(ip: string, count = 3, timeoutS = 2): Promise<{ received: number; out: string }> {
    const r = await this.run(`ping -c ${count} -W ${timeoutS} ${ip}`, (count * (timeoutS + 1) + 30) * 1000);
    const m = /(\d+) packets received/.exec(r.out);
    return { received: m ? Number(m[1]) : 0, out: r.out };
  }

  // Pings until one reply comes back (ARP and the switch's learning settle
  // first), at most `tries` rounds.
  async pingUntil(ip: string, tries = 10): Promise<{ received: number; out: string }> {
    let last = { received: 0, out: '' };
    for (let i = 0; i < tries; i++) {
      last = await this.ping(ip, 2);
      if (last.received > 0) return last;
    }
    return last;
  }

  async kill(): Promise<void> {
    if (this.alive()) this.child.kill('SIGKILL');
    await this.exited;
  }
}
