// vpcctl: the command line client of vpcd's control API.
//
// createProgram() builds a fresh commander program (tests build one per
// case); runCli() runs one command line and returns the exit code, never
// calling process.exit itself. Output goes to `io` (stdout/stderr by default):
// human tables, or the API's JSON with --json.
//
// The commands live in cli/, one file per object, each exporting a Registrar;
// REGISTRARS below lists them once.

import { Command, CommanderError } from 'commander';
import { ApiError, Client, UnreachableError } from './client';
import { registerApply } from './cli/apply';
import { registerBgp } from './cli/bgp';
import { registerCapture } from './cli/capture';
import { CliContext, CliError, CliIO, EXIT, exitCodeForStatus, Registrar } from './cli/context';
import { registerFdb } from './cli/fdb';
import { registerPeer } from './cli/peer';
import { registerPort } from './cli/port';
import { registerStats } from './cli/stats';
import { registerStatus } from './cli/status';
import { registerSwitch } from './cli/switch';
import { registerTrace } from './cli/trace';
import { registerUplink } from './cli/uplink';
import { DEFAULT_SOCKET } from './daemon';
import { VERSION } from './version';

export { CliError, EXIT, exitCodeForStatus } from './cli/context';
export type { CliIO, Registrar } from './cli/context';
export { table } from './cli/format';
export { statsText } from './cli/stats';

// Every command group, in the order `vpcctl --help` lists them. A new group
// is a file cli/<object>.ts exporting register<Object>, and one line here.
const REGISTRARS: readonly Registrar[] = [
  registerStatus,
  registerSwitch,
  registerPort,
  registerFdb,
  registerUplink, // and neighbors
  registerPeer,
  registerStats,
  registerCapture,
  registerTrace,
  registerApply, // apply, state
  registerBgp,
];

// stdout's reader can go away before vpcctl is done (`vpcctl stats --watch |
// head -3`, `vpcctl capture a1 | tshark -r - -c 2`): the next write fails
// with EPIPE, an 'error' event on stdout that, unhandled, ends vpcctl with a
// stack trace. The entry point (vpcctl.ts) hands stdout's errors to
// stdoutFailed(): nothing more is written, and a command that would write
// on stops as at its end (onOutputClosed): a capture closes its stream,
// which removes the engine's capture in vpcd. A closed pipe is the reader's
// choice, so vpcctl exits 0, as other command-line tools do; any other
// write error (EIO, a full disk) is said in one line and exits 1.
let outputClosed = false;
let outputError: string | undefined;
const outputClosedListeners = new Set<() => void>();

export function stdoutFailed(err: NodeJS.ErrnoException): void {
  if (err.code !== 'EPIPE' && outputError === undefined) {
    outputError = err.message;
    process.stderr.write(`vpcctl: cannot write the output: ${err.message}\n`);
  }
  if (outputClosed) return;
  outputClosed = true;
  for (const fn of [...outputClosedListeners]) fn();
}

// The exit code once the command is done: its own, unless stdout failed.
export function exitCodeAfterOutput(code: number): number {
  return outputError !== undefined && code === EXIT.OK ? EXIT.FAILURE : code;
}

const defaultIO: CliIO = {
  out: (t) => {
    if (!outputClosed) process.stdout.write(t);
  },
  err: (t) => process.stderr.write(t),
  write: (b) => {
    if (!outputClosed) process.stdout.write(b);
  },
  isTTY: process.stdout.isTTY === true,
  onOutputClosed: (fn) => {
    if (outputClosed) {
      queueMicrotask(fn);
      return () => undefined;
    }
    outputClosedListeners.add(fn);
    return () => outputClosedListeners.delete(fn);
  },
  onInterrupt: (fn) => {
    process.on('SIGINT', fn);
    process.on('SIGTERM', fn);
    return () => {
      process.off('SIGINT', fn);
      process.off('SIGTERM', fn);
    };
  },
};

export function createProgram(io: CliIO = defaultIO): Command {
  const program = new Command('vpcctl');
  program
    .description('control vpcd, the vpc-switch daemon')
    .version(VERSION)
    .option('-s, --socket <path>', 'vpcd control socket', process.env.VPCD_SOCKET ?? DEFAULT_SOCKET)
    .option('--json', 'print the API\'s JSON instead of tables', false)
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: io.out, writeErr: io.err });

  const cli: CliContext = {
    io,
    ctx: (cmd) => {
      const o = cmd.optsWithGlobals() as { socket: string; json: boolean };
      return { client: new Client(o.socket), json: o.json };
    },
    print: (json, body, text) => {
      io.out(json ? `${JSON.stringify(body, null, 2)}\n` : text());
    },
  };
  for (const register of REGISTRARS) register(program, cli);
  return program;
}

// Runs one vpcctl command line (argv without node and script); returns the
// exit code.
export async function runCli(args: string[], io: CliIO = defaultIO): Promise<number> {
  const program = createProgram(io);
  program.exitOverride();
  for (const c of program.commands) {
    c.exitOverride();
    for (const sub of c.commands) sub.exitOverride();
  }
  try {
    await program.parseAsync(args, { from: 'user' });
    return EXIT.OK;
  } catch (err) {
    return reportFailure(err, io);
  }
}

// Prints why a command line failed; returns its exit code.
function reportFailure(err: unknown, io: CliIO): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0) return EXIT.OK;
    return EXIT.USAGE;
  }
  if (err instanceof UnreachableError) {
    io.err(`vpcctl: ${err.message}\n`);
    return EXIT.UNREACHABLE;
  }
  if (err instanceof ApiError) {
    const e = (err.body.error ?? {}) as { details?: { message: string; line?: number; code: string }[] };
    // The code goes on the first line: a config's errors follow it, one a line, each with its own.
    const [first, ...rest] = err.message.split('\n');
    const head = first!.endsWith(':') && rest.length > 0 ? `${first!.slice(0, -1)} [${err.code}]:` : `${first} [${err.code}]`;
    let text = `vpcctl: ${[head, ...rest].join('\n')}\n`;
    // The details, but not the one the message already is (a single YAML syntax error).
    if (Array.isArray(e.details) && err.code !== 'ERR_CONFIG_INVALID') text += e.details.filter((d) => d.message !== err.message).map((d) => `  ${d.message} [${d.code}]\n`).join('');
    io.err(text);
    return exitCodeForStatus(err.status);
  }
  if (err instanceof CliError) {
    io.err(`vpcctl: ${err.message}\n`);
    return err.exitCode;
  }
  io.err(`vpcctl: ${(err as Error)?.stack ?? String(err)}\n`);
  return EXIT.FAILURE;
}
