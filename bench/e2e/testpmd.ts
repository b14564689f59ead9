// DPDK's testpmd as a child process of the vhost-user benchmark: the
// virtio-user frontend (two ports, interactive, driven through its stdin) or
// a vhost-user backend (the ceiling, non-interactive, forwarding from start).
//
// Without hugepages (--no-huge: EAL backs its memory with a memfd, which is
// what vhost-user shares), without PCI, with a --file-prefix of its own and
// its runtime files under a directory of the run (RUNTIME_DIRECTORY), never
// /var/run/dpdk. Every process is the Topo's child and is killed at cleanup.

import type { ChildProcess } from 'node:child_process';
import { Topo, which } from './topo';

export function testpmdMissing(): string | undefined {
  if (!which('dpdk-testpmd')) return 'dpdk-testpmd not found (Debian: apt-get install dpdk; scripts/setup-deps.sh installs it)';
  return undefined;
}

export interface PortCounters {
  rxPackets: number;
  txPackets: number;
  rxMissed: number;
  rxErrors: number;
  txErrors: number;
}

export class Testpmd {
  // stdout alone: the prompt and the commands' answers are matched here.
  // testpmd's command line writes its prompt one character at a time, and
  // stderr (error lines such as "Error during enabling promiscuous mode") is
  // another pipe that Node reads on its own schedule: in one merged buffer a
  // stderr chunk could land inside "testpmd> " and the prompt would never be
  // seen (the benchmark's "no testpmd> within 60000 ms").
  private out = '';
  // Both streams in arrival order, for the reports.
  private all = '';
  private exited = false;
  private waiters = new Set<() => void>();

  private constructor(
    readonly child: ChildProcess,
    readonly what: string,
  ) {
    const add = (d: Buffer, stdout: boolean): void => {
      const text = d.toString();
      if (stdout) this.out += text;
      this.all += text;
      if (this.out.length > 4_000_000) this.out = this.out.slice(-1_000_000);
      if (this.all.length > 4_000_000) this.all = this.all.slice(-1_000_000);
      for (const w of [...this.waiters]) w();
    };
    child.stdout!.on('data', (d: Buffer) => add(d, true));
    child.stderr!.on('data', (d: Buffer) => add(d, false));
    child.stdin!.on('error', () => undefined);
    child.on('exit', () => {
      this.exited = true;
      for (const w of [...this.waiters]) w();
    });
  }

  // A testpmd (or anything that talks like it) already started: the tests
  // drive this class with a stand-in.
  static attach(child: ChildProcess, what: string): Testpmd {
    return new Testpmd(child, what);
  }

  // Starts testpmd in the run's namespace `ns` (vhost-user needs none, but
  // nothing testpmd might create then lands in the host's). `eal` and `app`
  // are the EAL and application arguments; `runtimeDir` holds its runtime
  // files.
  static start(t: Topo, ns: string, what: string, eal: string[], app: string[], runtimeDir: string): Testpmd {
    const env = { ...process.env, RUNTIME_DIRECTORY: runtimeDir, XDG_RUNTIME_DIR: runtimeDir };
    // stdbuf: testpmd prints with stdio, fully buffered on a pipe; the
    // interactive exchange needs each answer when it is printed.
    return new Testpmd(t.spawnIn(ns, 'stdbuf', ['-o0', '-e0', 'dpdk-testpmd', ...eal, '--', ...app], env), what);
  }

  alive(): boolean {
    return !this.exited;
  }

  log(chars = 1500): string {
    return this.all.slice(-chars).replace(/\s+/g, ' ');
  }

  // Waits until `re` matches the standard output after `from`.
  waitFor(re: RegExp, timeoutMs: number, from = 0): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const m = re.exec(this.out.slice(from));
        if (m) {
          done();
          resolve(m);
        } else if (this.exited) {
          done();
          reject(new Error(`${this.what} exited: ${this.log()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.what}: no ${re.source} within ${timeoutMs} ms: ${this.log()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  // Interactive mode: sends one command and returns its output (up to the
  // next prompt).
  async cmd(line: string, timeoutMs = 15_000): Promise<string> {
    const from = this.out.length;
    this.child.stdin!.write(`${line}\n`);
    const m = await this.waitFor(/([\s\S]*?)testpmd> /, timeoutMs, from);
    return m[1]!;
  }

  // Per-port counters from `show port stats all`.
  async portStats(): Promise<PortCounters[]> {
    const text = await this.cmd('show port stats all');
    const ports: PortCounters[] = [];
    for (const block of text.split(/#+ NIC statistics for port \d+/).slice(1)) {
      const num = (re: RegExp): number => Number(re.exec(block)?.[1] ?? NaN);
      ports.push({
        rxPackets: num(/RX-packets:\s*(\d+)/),
        rxMissed: num(/RX-missed:\s*(\d+)/),
        rxErrors: num(/RX-errors:\s*(\d+)/),
        txPackets: num(/TX-packets:\s*(\d+)/),
        txErrors: num(/TX-errors:\s*(\d+)/),
      });
    }
    if (ports.length === 0 || ports.some((p) => !Number.isFinite(p.rxPackets))) throw new Error(`${this.what}: unreadable port stats: ${text.slice(0, 600)}`);
    return ports;
  }

  async quit(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    try {
      this.child.stdin!.write('stop\nquit\n');
      this.child.stdin!.end();
    } catch {
      // gone
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 8000);
    await gone;
    clearTimeout(timer);
  }
}
