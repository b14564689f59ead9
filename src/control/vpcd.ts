#!/usr/bin/env node
// vpcd: command line of the daemon. The life cycle is in daemon.ts.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { checkConfig, DEFAULT_METRICS, DEFAULT_SOCKET, DEFAULT_STATE_DIR, DaemonOptions, parseHostPort, runDaemon, VPCD_EXIT } from './daemon';
import { socketPathProblem } from './client';
import { LOG_FORMATS, LogFormat } from './logging';
import { VERSION } from './version';

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export function createProgram(onRun: (opts: DaemonOptions) => void | Promise<void>): Command {
  const program = new Command('vpcd');
  program
    .description('vpc-switch daemon: runs the dataplane, serves the control API and metrics')
    .version(VERSION)
    .option('-c, --config <file>', 'YAML configuration (desired state); applied at start and on SIGHUP')
    .option('-s, --state-dir <dir>', 'where the state file lives', process.env.VPCD_STATE_DIR ?? DEFAULT_STATE_DIR)
    .option('--socket <path>', 'control API Unix socket', process.env.VPCD_SOCKET ?? DEFAULT_SOCKET)
    .option('--socket-mode <octal>', 'permissions of the socket', (v) => {
      if (!/^0?[0-7]{3}$/.test(v)) throw new InvalidArgumentError('expected an octal mode like 0660');
      return v;
    }, '0660')
    .option('--metrics <host:port|off>', 'Prometheus endpoint (loopback by default)', (v) => {
      if (v !== 'off') {
        try {
          parseHostPort(v);
        } catch (err) {
          throw new InvalidArgumentError((err as Error).message);
        }
      }
      return v;
    }, DEFAULT_METRICS)
    .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'))
    .addOption(new Option('--log-format <format>', 'logs as JSON lines or human-readable lines (pino-pretty); auto: pretty on a terminal, JSON otherwise')
      .choices([...LOG_FORMATS]).default('auto'))
    .option('--test-hooks', 'enable /v1/test/* routes that inject and read frames on pipe ports (tests and demos only)', false)
    .option('--check-config', 'validate the --config file with this version\'s rules and exit (0: config ok; 4: every error with its line); nothing else is read or touched', false)
    .action(async (o: { config?: string; stateDir: string; socket: string; socketMode: string; metrics: string; logLevel: string; logFormat: LogFormat; testHooks: boolean; checkConfig: boolean }) => {
      if (o.checkConfig) {
        if (o.config === undefined) {
          process.stderr.write('vpcd: --check-config needs --config FILE\n');
          process.exitCode = VPCD_EXIT.USAGE;
          return;
        }
        process.exitCode = checkConfig(o.config, (t) => process.stdout.write(t), (t) => process.stderr.write(t));
        return;
      }
      // Paths as absolute ones: what status, logs and errors show is where
      // the file is, whatever directory vpcctl runs in.
      const socket = path.resolve(o.socket);
      const tooLong = socketPathProblem(socket);
      if (tooLong !== undefined) {
        process.stderr.write(`vpcd: --socket (or VPCD_SOCKET) ${tooLong}\n`);
        process.exitCode = VPCD_EXIT.USAGE;
        return;
      }
      // vpcctl's -s is its --socket; vpcd's is --state-dir. A state
      // directory given on the command line, named like a socket and not
      // there yet, is that slip, not a choice.
      if (program.getOptionValueSource('stateDir') === 'cli' && /\.sock\/*$/.test(o.stateDir) && !isDirectory(o.stateDir)) {
        process.stderr.write(`vpcd: --state-dir ${o.stateDir} looks like a socket's path: vpcd's -s is --state-dir (vpcctl's is --socket); give the socket with --socket\n`);
        process.exitCode = VPCD_EXIT.USAGE;
        return;
      }
      await onRun({
        config: o.config === undefined ? undefined : path.resolve(o.config),
        stateDir: path.resolve(o.stateDir),
        socket,
        socketMode: parseInt(o.socketMode, 8),
        metrics: o.metrics === 'off' ? undefined : o.metrics,
        logLevel: o.logLevel,
        logFormat: o.logFormat,
        testHooks: o.testHooks,
        version: VERSION,
      });
    });
  return program;
}

if (require.main === module) {
  const program = createProgram(async (opts) => {
    process.exitCode = await runDaemon(opts);
    // Timers of the default metrics and pending sockets must not keep us up.
    setImmediate(() => process.exit(process.exitCode));
  });
  program.exitOverride();
  program.parseAsync(process.argv).catch((err) => {
    if (err instanceof CommanderError) {
      process.exit(err.exitCode === 0 ? 0 : VPCD_EXIT.USAGE);
    }
    process.stderr.write(`vpcd: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(VPCD_EXIT.FATAL);
  });
}
