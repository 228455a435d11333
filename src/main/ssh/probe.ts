// The "Test connection" probe: one exec that reports hostname, OS, login user, uid and whether
// `sudo -n` works, as key=value lines. Run through `sh -c` so a non-POSIX login shell (fish,
// csh) cannot change its meaning.
import type { ConnectionTest } from '@shared/domain';
import { shJoin } from '../remote/quote';

const SCRIPT = [
  `printf 'hostname=%s\\n' "$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)"`,
  `printf 'os=%s\\n' "$( . /etc/os-release 2>/dev/null; printf %s "$PRETTY_NAME")"`,
  `printf 'user=%s\\n' "$(id -un)"`,
  `printf 'uid=%s\\n' "$(id -u)"`,
  // -n: never prompt; a sudo that wants a password fails at once instead of hanging.
  `if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then echo sudo=yes; else echo sudo=no; fi`,
].join('\n');

export const PROBE_COMMAND = shJoin(['sh', '-c', SCRIPT]);

export function parseProbe(
  stdout: string,
): Pick<ConnectionTest, 'hostname' | 'os' | 'user' | 'isRoot' | 'passwordlessSudo'> {
  const kv = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  const out: ReturnType<typeof parseProbe> = {};
  if (kv.get('hostname')) out.hostname = kv.get('hostname');
  if (kv.get('os')) out.os = kv.get('os');
  if (kv.get('user')) out.user = kv.get('user');
  if (kv.has('uid')) out.isRoot = kv.get('uid') === '0';
  if (kv.has('sudo')) out.passwordlessSudo = kv.get('sudo') === 'yes';
  return out;
}
