// vpcctl switch: switches (one broadcast domain = one VNI).

import type { Command } from 'commander';
import type { CliContext } from './context';
import { keyValues, planText, table, warningText } from './format';
import { bool, defined, int, updateBody } from './parse';
import { SPEC_LIMITS } from '../../dataplane/specs';
import { LIMITS } from '../../dataplane/validate';

export function registerSwitch(program: Command, { ctx, print }: CliContext): void {
  const sw = program.command('switch').description('switches (one broadcast domain = one VNI)');
  sw.command('list').description('list switches').action(async (_o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<{ switches: Record<string, any>[] }>('GET', '/v1/switches');
    print(json, r, () => table(['NAME', 'VNI', 'PORTS', 'MAC-LIMIT', 'AGING', 'LEARNING', 'REMOTE-LEARNING', 'UUID'],
      r.switches.map((s) => [s.name, s.vni, (s.ports ?? []).join(',') || '-', s.macLimit, `${s.agingSeconds}s`, s.learning ? 'on' : 'off', s.remoteLearning === false ? 'off' : 'on', s.uuid])));
  });
  sw.command('show <ref>').description('one switch, by name or UUID').action(async (ref: string, _o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<{ switch: Record<string, unknown> }>('GET', `/v1/switches/${encodeURIComponent(ref)}`);
    print(json, r, () => keyValues(r.switch));
  });
  sw.command('create <name>').description('create a switch (succeeds if it exists with the same spec)')
    .requiredOption('--vni <n>', `VXLAN network identifier, ${LIMITS.vniMin}..${LIMITS.vniMax}`, int('vni', LIMITS.vniMin, LIMITS.vniMax))
    .option('--mac-limit <n>', 'learned MACs allowed', int('mac-limit', LIMITS.macLimitMin, LIMITS.macLimitMax))
    .option('--aging-seconds <n>', 'learned entries expire after this idle time', int('aging-seconds', LIMITS.agingSecondsMin, LIMITS.agingSecondsMax))
    .option('--learning <bool>', 'learn source MACs', bool)
    .option('--remote-learning <bool>', 'learn MACs behind remote VTEPs (VXLAN)', bool)
    .option('--fdb-capacity <n>', 'initial FDB table size', int('fdb-capacity', SPEC_LIMITS.fdbCapacity[0], SPEC_LIMITS.fdbCapacity[1]))
    .option('--uuid <uuid>', 'UUID to give the switch (default: generated)')
    .action(async (name: string, o: Record<string, unknown>, cmd: Command) => {
      const { client, json } = ctx(cmd);
      const body = defined({ name, vni: o.vni, macLimit: o.macLimit, agingSeconds: o.agingSeconds, learning: o.learning, remoteLearning: o.remoteLearning, fdbCapacity: o.fdbCapacity, uuid: o.uuid });
      const r = await client.call<Record<string, any>>('POST', '/v1/switches', body);
      print(json, r, () => `${r.created ? 'created' : 'exists (same spec)'}: switch ${r.switch.name} vni ${r.switch.vni} uuid ${r.switch.uuid}\n${warningText(r.warnings)}`);
    });
  sw.command('update <ref>').description('change a running switch\'s mutable fields')
    .option('--mac-limit <n>', 'learned MACs allowed', int('mac-limit', LIMITS.macLimitMin, LIMITS.macLimitMax))
    .option('--aging-seconds <n>', 'aging time', int('aging-seconds', LIMITS.agingSecondsMin, LIMITS.agingSecondsMax))
    .option('--learning <bool>', 'learn source MACs', bool)
    .option('--remote-learning <bool>', 'learn MACs behind remote VTEPs (VXLAN)', bool)
    .action(async (ref: string, o: Record<string, unknown>, cmd: Command) => {
      const { client, json } = ctx(cmd);
      const body = updateBody({ macLimit: o.macLimit, agingSeconds: o.agingSeconds, learning: o.learning, remoteLearning: o.remoteLearning }, 'switch update',
        ['--mac-limit', '--aging-seconds', '--learning', '--remote-learning']);
      const r = await client.call<Record<string, any>>('PATCH', `/v1/switches/${encodeURIComponent(ref)}`, body);
      print(json, r, () => (r.plan.length === 0 ? `no change: switch ${r.switch.name} already has these settings\n` : `updated: switch ${r.switch.name}\n${planText(r.plan)}`) + warningText(r.warnings));
    });
  sw.command('delete <ref>').description('delete a switch (its ports must be deleted first)').action(async (ref: string, _o, cmd: Command) => {
    const { client, json } = ctx(cmd);
    const r = await client.call<Record<string, any>>('DELETE', `/v1/switches/${encodeURIComponent(ref)}`);
    print(json, r, () => `deleted: switch ${r.deleted.name} (uuid ${r.deleted.uuid})\n${planText(r.plan)}${warningText(r.warnings)}`);
  });
}
