// Option parsers of vpcctl (commander argParsers) and request body helpers.

import { InvalidArgumentError } from 'commander';
import { CliError, EXIT } from './context';

export function int(name: string, min: number, max: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in ${min}..${max}`);
    return n;
  };
}

export function bool(v: string): boolean {
  if (['true', 'on', 'yes', '1'].includes(v)) return true;
  if (['false', 'off', 'no', '0'].includes(v)) return false;
  throw new InvalidArgumentError('expected true or false (on/off, yes/no and 1/0 are taken too)');
}

// A repeatable option: every value parsed and collected.
export function collect<T>(parse: (v: string) => T): (v: string, prev: T[] | undefined) => T[] {
  return (v, prev) => [...(prev ?? []), parse(v)];
}

export function vlanMapping(v: string): { vlan: number; switch: string } {
  const m = /^(\d+)[=:](.+)$/.exec(v);
  if (m === null) throw new InvalidArgumentError('expected VLAN=SWITCH, e.g. 10=tenant-a');
  return { vlan: Number(m[1]), switch: m[2]! };
}

// KEY=VALUE, the value as JSON when it parses, else as a string.
export function keyValue(v: string): [string, unknown] {
  const i = v.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError('expected KEY=VALUE');
  const raw = v.slice(i + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    // a plain string
  }
  return [v.slice(0, i), value];
}

// The fields of `o` that were given.
export function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

// An update's body; an update that changes nothing is a usage error, not a
// silent 'updated' (`flags` lists what it could have changed).
export function updateBody(o: Record<string, unknown>, what: string, flags: string[]): Record<string, unknown> {
  const body = defined(o);
  if (Object.keys(body).length === 0) throw new CliError(EXIT.USAGE, `${what}: nothing to update; give at least one of ${flags.join(', ')}`);
  return body;
}
