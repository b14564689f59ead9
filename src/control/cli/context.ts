// What every vpcctl command file shares: the context a command runs in (its
// output, its client, --json) and how it fails (exit codes).
//
// A command group is a file in this directory exporting a Registrar, listed
// once in ../cli.ts.

import type { Command } from 'commander';
import type { Client } from '../client';

// Exit codes of vpcctl, declared once (docs/operations.md lists them).
export const EXIT = {
  OK: 0,
  FAILURE: 1, // unexpected failure (a bug, or an answer vpcctl does not understand)
  USAGE: 2, // bad command line
  UNREACHABLE: 3, // the daemon is not running or the socket is not reachable
  INVALID: 4, // the daemon refused the request or config as invalid (HTTP 400)
  NOT_FOUND: 5, // no such object (HTTP 404)
  CONFLICT: 6, // conflicts with what runs, or a limit is reached (HTTP 409/422)
  DAEMON_ERROR: 7, // the daemon failed (HTTP 5xx), e.g. a rollback or the state file
} as const;

export function exitCodeForStatus(status: number): number {
  if (status === 400 || status === 405) return EXIT.INVALID;
  if (status === 404) return EXIT.NOT_FOUND;
  if (status === 409 || status === 422) return EXIT.CONFLICT;
  if (status >= 500) return EXIT.DAEMON_ERROR;
  return EXIT.FAILURE;
}

// A failure a command reports itself, with its exit code.
export class CliError extends Error {
  constructor(readonly exitCode: number, message: string) {
    super(message);
  }
}

export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
  sleep?: (ms: number) => Promise<void>;
  // Binary output (vpcctl capture's pcap) and whether stdout is a terminal.
  write?: (bytes: Buffer) => void;
  isTTY?: boolean;
  // Called when the user interrupts (Ctrl-C); returns a function that stops listening.
  onInterrupt?: (fn: () => void) => () => void;
  // Called when stdout's reader has gone away (a closed pipe: `vpcctl stats
  // --watch | head -3`), for commands that would write on; returns a
  // function that stops listening.
  onOutputClosed?: (fn: () => void) => () => void;
}

export interface CliContext {
  io: CliIO;
  // The client of the daemon named by the global options (--socket), and
  // whether --json was given.
  ctx: (cmd: Command) => { client: Client; json: boolean };
  // Prints `body` as JSON with --json, else `text()`.
  print: (json: boolean, body: unknown, text: () => string) => void;
}

// Registers one group of commands (one object: switch, port, ...) on the
// program.
export type Registrar = (program: Command, cli: CliContext) => void;
