// Intent: no string, however hostile, can escape its argument slot on a remote POSIX shell.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { asRoot, sh, shJoin, shQuote } from '../../src/main/remote/quote';

const hostile = [
  '',
  'plain',
  'with space',
  "it's",
  "''",
  '"double"',
  '$(touch /tmp/kes-pwned)',
  '`touch /tmp/kes-pwned`',
  '; rm -rf / ;',
  'a && b || c',
  'line1\nline2',
  '\r\n\t',
  'ünïcødé ☸ 日本',
  '$HOME ${PATH} $1 $@',
  '*?[a-z]',
  '~root',
  '-n',
  '--help',
  '\\',
  "back\\'slash",
  '!event',
  '#comment',
  '>redirect <in |pipe &bg',
  'x'.repeat(10_000),
];

/** Ask a real shell what argv it sees. */
function echoArgs(shell: string, cmd: string): string[] {
  const out = execFileSync(shell, ['-c', `${cmd}`], { encoding: 'utf8' });
  return JSON.parse(out) as string[];
}
const printer = `node -e 'process.stdout.write(JSON.stringify(process.argv.slice(1)))'`;

describe('shQuote', () => {
  it('leaves simple words bare so job logs stay readable', () => {
    expect(shQuote('etcd.yaml')).toBe('etcd.yaml');
    expect(shQuote('/var/lib/etcd-2024')).toBe('/var/lib/etcd-2024');
    expect(shQuote(2379)).toBe('2379');
  });

  it('quotes the empty string as an explicit empty argument', () => {
    expect(shQuote('')).toBe("''");
  });

  it('refuses NUL bytes, which no shell argument can carry', () => {
    expect(() => shQuote('a\0b')).toThrow(/NUL/);
  });

  for (const shell of ['/bin/sh', '/bin/bash']) {
    it(`round-trips every hostile string through ${shell} unchanged`, () => {
      const got = echoArgs(shell, `${printer} ${hostile.map(shQuote).join(' ')}`);
      expect(got).toEqual(hostile);
    });
  }

  it('never executes command substitutions', () => {
    const got = echoArgs('/bin/sh', `${printer} ${shQuote('$(echo pwned)')} ${shQuote('`echo pwned`')}`);
    expect(got).toEqual(['$(echo pwned)', '`echo pwned`']);
  });
});

describe('shJoin and sh``', () => {
  it('quotes every element of argv', () => {
    expect(shJoin(['ls', '-l', 'my dir'])).toBe("ls -l 'my dir'");
    expect(() => shJoin([])).toThrow();
  });

  it('quotes interpolated values but not the literal template', () => {
    const path = "/tmp/a b'c";
    expect(sh`cat ${path} | wc -c`).toBe(`cat '/tmp/a b'\\''c' | wc -c`);
    expect(sh`rm -f ${['a b', 'c']}`).toBe("rm -f 'a b' c");
  });

  it('survives a double round (quoted command handed to sh -c by asRoot)', () => {
    const inner = `${printer} ${hostile.map(shQuote).join(' ')}`;
    // asRoot for non-root wraps in sudo; emulate by replacing sudo with a plain sh -c round.
    const wrapped = asRoot(inner, 'alice').replace(/^sudo -n -- /, '');
    expect(echoArgs('/bin/sh', wrapped)).toEqual(hostile);
    expect(asRoot('id -u', 'root')).toBe('id -u');
  });
});
