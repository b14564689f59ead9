// vpcctl apply: apply a configuration file (the desired state) and print the
// plan; vpcctl state: print the running desired state.

import * as fs from 'node:fs';
import type { Command } from 'commander';
import { CliContext, CliError, EXIT } from './context';
import { planText, warningText } from './format';
import type { Model } from '../model';
import { stateDocument, stateDocumentText } from '../state';

export function registerApply(program: Command, { io, ctx, print }: CliContext): void {
  program.command('apply').description('apply a configuration file (desired state); prints the plan')
    .requiredOption('-f, --file <file>', 'YAML configuration')
    .option('--dry-run', 'print the plan, change nothing')
    .action(async (o: { file: string; dryRun?: boolean }, cmd: Command) => {
      const { client, json } = ctx(cmd);
      let text: string;
      try {
        text = fs.readFileSync(o.file, 'utf8');
      } catch (err) {
        // A file that cannot be read is a bad command line, as for capture -w.
        const e = err as NodeJS.ErrnoException;
        const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'it is a directory' : e.code === 'EACCES' ? 'permission denied' : e.message;
        throw new CliError(EXIT.USAGE, `apply: cannot read ${o.file}: ${why}`);
      }
      const r = await client.call<Record<string, any>>('POST', '/v1/apply', { config: text, dryRun: o.dryRun === true, source: o.file });
      print(json, r, () => {
        const head = r.plan.length === 0 ? 'no changes: the running state already matches' : `plan (${r.summary.create} to create, ${r.summary.update} to change, ${r.summary.delete} to remove):`;
        const tail = r.plan.length === 0 ? '' : r.applied ? 'applied.\n' : 'dry run: nothing was changed.\n';
        return `${head}\n${planText(r.plan)}${warningText(r.warnings as string[])}${tail}`;
      });
    });

  // The API's answer ({generation, state}) is a view; with --state-file it is
  // printed as the state file holds it (format, version, checksum), so that
  // a backup taken through the API restores by a copy over state.json.
  program.command('state').description('print the running desired state as JSON (debugging); --state-file: as a state file (backups)')
    .option('--state-file', 'print a complete state file (format, version, checksum): copied over state.json, it restores this state')
    .action(async (o: { stateFile?: boolean }, cmd: Command) => {
      const { client } = ctx(cmd);
      const r = await client.call<{ generation: number; state: Model }>('GET', '/v1/state');
      io.out(o.stateFile === true ? stateDocumentText(stateDocument(r.state, r.generation)) : `${JSON.stringify(r, null, 2)}\n`);
    });
}
