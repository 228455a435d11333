// Import nodes from an OpenSSH client config (~/.ssh/config). Parsing and the "first value wins,
// `Host *` applies last" evaluation come from the ssh-config library; we only pick the concrete
// host aliases and the fields the app uses. `Match exec` is never evaluated: reading a config file
// must not run commands.
import { promises as fs } from 'node:fs';
import { homedir } from 'node:os';
import { parse, type Line } from 'ssh-config';
import type { SshConfigEntry } from '@shared/domain';

export async function readSshConfig(path: string): Promise<SshConfigEntry[]> {
  let text: string;
  try {
    text = await fs.readFile(expandHome(path), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`Cannot read SSH config ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseSshConfig(text);
}

/** Pure part of `readSshConfig`, for tests. */
export function parseSshConfig(text: string): SshConfigEntry[] {
  const config = parse(text);
  const seen = new Set<string>();
  const out: SshConfigEntry[] = [];
  for (const alias of hostAliases(config)) {
    if (seen.has(alias)) continue;
    seen.add(alias);
    const c = config.compute(alias, { ignoreCase: true, matchExec: false });
    const entry: SshConfigEntry = { host: alias };
    const hostName = first(c.hostname);
    if (hostName) entry.hostName = expandTokens(hostName, alias);
    const user = first(c.user);
    if (user) entry.user = user;
    const port = Number(first(c.port));
    if (Number.isInteger(port) && port >= 1 && port <= 65535) entry.port = port;
    const identity = first(c.identityfile);
    if (identity && identity.toLowerCase() !== 'none') entry.identityFile = expandHome(expandTokens(identity, alias));
    const jump = first(c.proxyjump);
    if (jump && jump.toLowerCase() !== 'none') entry.proxyJump = jump;
    out.push(entry);
  }
  return out;
}

/** Every concrete name of every `Host` line, in file order; patterns and negations are skipped. */
function hostAliases(config: Line[]): string[] {
  const names: string[] = [];
  for (const line of config) {
    if (!('param' in line) || line.param.toLowerCase() !== 'host') continue;
    const values = typeof line.value === 'string' ? line.value.split(/\s+/) : line.value.map((v) => v.val);
    for (const v of values) if (v && !/[*?!]/.test(v)) names.push(v);
  }
  return names;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** The ssh_config tokens that make sense outside a live connection: %h (alias), %% ; ~ for home. */
function expandTokens(s: string, alias: string): string {
  return s.replace(/%([%h])/g, (_, t: string) => (t === '%' ? '%' : alias));
}

function expandHome(p: string): string {
  if (p === '~') return homedir();
  if (p.startsWith('~/')) return homedir() + p.slice(1);
  return p;
}
