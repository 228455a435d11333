// Importing ~/.ssh/config: one entry per concrete Host name, ssh's first-value-wins with `Host *`
// defaults, ~ expanded, patterns skipped, and `Match exec` never run.
import { existsSync, promises as fs } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSshConfig, readSshConfig } from '../../src/main/ssh/sshconfig';

const CONFIG = `
# global defaults come first in the file and win
IdentityFile ~/.ssh/global_key

Host web1 web2
  HostName %h.example.com
  Port 2200

Host db "quoted name"
  hostname 198.18.0.3
  user admin
  ProxyJump web1

Host *.internal !bad.internal
  User internal

Host lb
  HostName 198.18.0.10
  Port 22
  IdentityFile /keys/lb
  ProxyJump none

Match exec "touch /tmp/kes-sshconfig-pwned"
  User evil

Host *
  User keanu
  Port 2222
`;

describe('parseSshConfig', () => {
  const entries = parseSshConfig(CONFIG);
  const byHost = Object.fromEntries(entries.map((e) => [e.host, e]));

  it('lists every concrete host name once, in file order, and skips patterns', () => {
    expect(entries.map((e) => e.host)).toEqual(['web1', 'web2', 'db', 'quoted name', 'lb']);
  });

  it('expands %h in HostName and ~ in IdentityFile; Host * fills in what is missing', () => {
    expect(byHost.web1).toEqual({
      host: 'web1',
      hostName: 'web1.example.com',
      port: 2200,
      user: 'keanu',
      identityFile: join(homedir(), '.ssh/global_key'),
    });
    expect(byHost.web2.hostName).toBe('web2.example.com');
  });

  it('takes the first value like ssh does, and reads ProxyJump', () => {
    expect(byHost.db).toMatchObject({ hostName: '198.18.0.3', user: 'admin', port: 2222, proxyJump: 'web1' });
    expect(byHost['quoted name']).toMatchObject({ hostName: '198.18.0.3', user: 'admin' });
    // The global IdentityFile comes before the Host block, so it wins (ssh would try it first).
    expect(byHost.lb).toMatchObject({
      hostName: '198.18.0.10',
      port: 22,
      identityFile: join(homedir(), '.ssh/global_key'),
    });
    expect(byHost.lb.proxyJump).toBeUndefined();
  });

  it('never runs Match exec commands', () => {
    expect(existsSync('/tmp/kes-sshconfig-pwned')).toBe(false);
    expect(entries.some((e) => e.user === 'evil')).toBe(false);
  });
});

describe('readSshConfig', () => {
  it('reads a file and treats a missing one as empty', async () => {
    const dir = await fs.mkdtemp(join(tmpdir(), 'kes-sshconfig-'));
    try {
      await fs.writeFile(join(dir, 'config'), 'Host a\n  HostName 127.0.0.1\n  User root\n');
      expect(await readSshConfig(join(dir, 'config'))).toEqual([{ host: 'a', hostName: '127.0.0.1', user: 'root' }]);
      expect(await readSshConfig(join(dir, 'missing'))).toEqual([]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('readSshConfig: Include', () => {
  it('splices included files where they stand: globs sorted, relative to the config folder, nested, missing skipped', async () => {
    const dir = await fs.mkdtemp(join(tmpdir(), 'kes-sshconfig-'));
    try {
      await fs.mkdir(join(dir, 'config.d'));
      await fs.writeFile(join(dir, 'config.d', '20-lab'), 'Host lab2\n  HostName 198.18.0.12\n  Include nested\n');
      await fs.writeFile(join(dir, 'config.d', '10-lab'), 'Host lab1\n  HostName 198.18.0.11\n');
      await fs.writeFile(join(dir, 'config.d', '.hidden'), 'Host hidden\n');
      await fs.writeFile(join(dir, 'nested'), 'User nested-user\n');
      await fs.writeFile(join(dir, 'jump'), 'ProxyJump bastion\n');
      await fs.writeFile(
        join(dir, 'config'),
        [
          'Include config.d/* does-not-exist',
          'User top-level-user', // after an include, back to "every host" (ssh restores the condition)
          'Host main',
          '  Include jump', // applies under Host main only
          '  HostName 198.18.0.10',
        ].join('\n'),
      );
      expect(await readSshConfig(join(dir, 'config'))).toEqual([
        { host: 'lab1', hostName: '198.18.0.11', user: 'top-level-user' },
        { host: 'lab2', hostName: '198.18.0.12', user: 'nested-user' },
        { host: 'main', hostName: '198.18.0.10', user: 'top-level-user', proxyJump: 'bastion' },
      ]);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses an include loop with a clear error instead of hanging', async () => {
    const dir = await fs.mkdtemp(join(tmpdir(), 'kes-sshconfig-'));
    try {
      await fs.writeFile(join(dir, 'config'), 'Include config\n');
      await expect(readSshConfig(join(dir, 'config'))).rejects.toThrow(/Include nested too deeply/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
