// Human output of vpcctl: tables, key/value lists, counts.

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => String(c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return `${cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n')}\n`;
}

export function keyValues(obj: Record<string, unknown>): string {
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined);
  const w = Math.max(...keys.map((k) => k.length));
  return `${keys.map((k) => `${k.padEnd(w)}  ${typeof obj[k] === 'object' ? JSON.stringify(obj[k]) : String(obj[k])}`).join('\n')}\n`;
}

// Where a port is attached: its switch, or its trunk's mappings.
export function portWhere(p: Record<string, unknown>): string {
  if (typeof p.switch === 'string') return p.switch;
  const parts: string[] = [];
  if (typeof p.untagged === 'string') parts.push(`untagged=${p.untagged}`);
  for (const m of (p.vlans ?? []) as { vlan: number; switch: string }[]) parts.push(`${m.vlan}=${m.switch}`);
  return parts.join(',');
}

export function human(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

// The steps of a plan the daemon answered with, one a line.
export function planText(plan: string[]): string {
  return plan.length === 0 ? '' : `${plan.map((p) => `  ${p}`).join('\n')}\n`;
}

// The answer's warnings, one `warning:` line each.
export function warningText(warnings: string[] | undefined): string {
  return (warnings ?? []).map((w) => `warning: ${w}\n`).join('');
}
