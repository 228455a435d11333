// Reader for OpenSSH's ~/.ssh/known_hosts, so keys the user already trusts with `ssh` can be
// accepted (opt-in setting). Read-only: we never write the user's file.
// Supported: plain host lists with `*`/`?` wildcards and `!` negation, `[host]:port`, hashed
// `|1|salt|hash` entries. Skipped: `@cert-authority` lines (we do not do certificates); `@revoked`
// keys are returned so the caller can refuse them.
import { promises as fs } from 'node:fs';
import { createHmac } from 'node:crypto';
import { fingerprintOf } from './fingerprint';

export interface KnownHostEntry {
  keyType: string;
  fingerprint: string;
  revoked: boolean;
  /** Whether this entry names `host` on `port` (ssh's rules: port 22 is written bare). */
  matches(host: string, port: number): boolean;
}

export async function readKnownHostsFile(path: string): Promise<KnownHostEntry[]> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return parseKnownHosts(text);
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let revoked = false;
    if (fields[0].startsWith('@')) {
      const marker = fields.shift();
      if (marker === '@revoked') revoked = true;
      else continue;
    }
    const [hosts, keyType, b64] = fields;
    if (!hosts || !keyType || !b64) continue;
    let blob: Buffer;
    try {
      blob = Buffer.from(b64, 'base64');
    } catch {
      continue;
    }
    if (blob.length === 0) continue;
    out.push({ keyType, fingerprint: fingerprintOf(blob), revoked, matches: hostMatcher(hosts) });
  }
  return out;
}

/** The name ssh writes for a host: bare for port 22, `[host]:port` otherwise. */
function sshHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function hostMatcher(field: string): (host: string, port: number) => boolean {
  if (field.startsWith('|1|')) {
    const [, , salt64, hash64] = field.split('|');
    const salt = Buffer.from(salt64 ?? '', 'base64');
    return (host, port) => createHmac('sha1', salt).update(sshHostName(host, port)).digest('base64') === hash64;
  }
  const patterns = field.split(',');
  return (host, port) => {
    const name = sshHostName(host, port).toLowerCase();
    let hit = false;
    for (const p of patterns) {
      const negated = p.startsWith('!');
      const pat = (negated ? p.slice(1) : p).toLowerCase();
      if (globMatch(pat, name)) {
        if (negated) return false; // a negated match wins over any positive one, as in ssh
        hit = true;
      }
    }
    return hit;
  };
}

function globMatch(pattern: string, s: string): boolean {
  // Only `*` and `?` are special in known_hosts; everything else (including the brackets of the
  // `[host]:port` form) is literal.
  const re = pattern.replace(/[.+^${}()|[\]\\*?]/g, (c) => (c === '*' ? '.*' : c === '?' ? '.' : '\\' + c));
  return new RegExp('^' + re + '$').test(s);
}
