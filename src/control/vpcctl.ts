#!/usr/bin/env node
// vpcctl: entry point; the commands are in cli.ts.
import { exitCodeAfterOutput, runCli, stdoutFailed } from './cli';

if (require.main === module) {
  process.stdout.on('error', stdoutFailed);
  runCli(process.argv.slice(2)).then((code) => {
    process.exitCode = exitCodeAfterOutput(code);
  });
}
