// Import nodes from an OpenSSH client config (~/.ssh/config). Parsing and the "first value wins,
// `Host *` applies last" evaluation come from the ssh-config library; we only pick the concrete
// host aliases and the fields the app uses. `Match exec` is never evaluated: reading a config file
// must not run commands.
import { promises as fs } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { parse, type Line } from 'ssh-config';
import type { SshConfigEntry } from '@shared/domain';

export async function readSshConfig(path: string): Promise<SshConfigEntry[]> {
  const file = expandHome(path);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`Cannot read SSH config ${path}: ${(e as Error).message}`, { cause: e });
  }
  // Relative Include paths are relative to the folder of the user's config (~/.ssh), as in ssh.
  return parseSshConfig(await expandIncludes(text, dirname(file), 0));
}

const MAX_INCLUDE_DEPTH = 16; // OpenSSH's READCONF_MAX_DEPTH

/**
 * `Include` (OpenSSH ≥ 7.3), which the ssh-config library does not follow: splice the included
 * files in where the directive stands, as ssh reads them — `~` expanded, relative paths against
 * ~/.ssh, `*`/`?` globs in the file name matched in sorted order, files that do not exist skipped,
 * at most 16 levels deep. ssh restores the enclosing `Host`/`Match` condition after an include,
 * so that line is repeated after the spliced text (`Host *` at the top level).
 */
async function expandIncludes(text: string, baseDir: string, depth: number): Promise<string> {
  if (depth >= MAX_INCLUDE_DEPTH) throw new Error('SSH config: Include nested too deeply (more than 16 levels)');
  const out: string[] = [];
  let block: string | null = null;
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(\w+)\s*(?:=\s*|\s+)(.*?)\s*$/.exec(line);
    const key = m?.[1].toLowerCase();
    if (key === 'host' || key === 'match') block = line;
    if (key !== 'include') {
      out.push(line);
      continue;
    }
    for (const pattern of m![2].split(/\s+/).filter(Boolean)) {
      const full = isAbsolute(expandHome(pattern)) ? expandHome(pattern) : join(baseDir, pattern);
      for (const f of await globFile(full)) {
        const inner = await fs.readFile(f, 'utf8').catch(() => null);
        if (inner !== null) out.push(await expandIncludes(inner, baseDir, depth + 1));
      }
    }
    // Back to the enclosing condition; at the top level that is "every host".
    out.push(block ?? 'Host *');
  }
  return out.join('\n');
}

/** Files matching a path whose last part may hold `*` or `?`, sorted (glob(3) order). */
async function globFile(path: string): Promise<string[]> {
  const name = basename(path);
  if (!/[*?]/.test(name)) return [path];
  const re = new RegExp(
    `^${name
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  const dir = dirname(path);
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  return names
    .filter((n) => !n.startsWith('.') && re.test(n))
    .sort()
    .map((n) => join(dir, n));
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
