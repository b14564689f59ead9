#!/usr/bin/env node
// vpcctl: entry point; the commands are in cli.ts.
import { runCli } from './cli';

if (require.main === module) {
  runCli(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
