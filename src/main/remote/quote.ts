// The one quoting path for everything the app sends to a remote shell. Every argument that is not
// a fixed literal of our own goes through `shQuote`; commands are assembled with `shJoin`.
// POSIX single quotes are the only construct in which no character is special, so the rule is:
// wrap in '…' and write each embedded ' as '\'' . Works for bash, dash, busybox sh and zsh.

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quote one argument for a POSIX shell. Leaves obviously safe words bare for readable job logs. */
export function shQuote(arg: string | number): string {
  const s = String(arg);
  if (s.includes('\0')) throw new Error('Cannot pass a NUL byte to a remote shell');
  if (s !== '' && SAFE.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Join argv into one command line, quoting every element. */
export function shJoin(argv: ReadonlyArray<string | number>): string {
  if (argv.length === 0) throw new Error('Empty command');
  return argv.map(shQuote).join(' ');
}

/**
 * Tagged template for command lines: literal parts are ours, every interpolated value is quoted
 * (arrays become several quoted words). `sh\`cat ${path} | wc -c\``
 */
export function sh(
  strings: TemplateStringsArray,
  ...values: ReadonlyArray<string | number | ReadonlyArray<string | number>>
): string {
  let out = strings[0];
  values.forEach((v, i) => {
    out += Array.isArray(v)
      ? (v as ReadonlyArray<string | number>).map(shQuote).join(' ')
      : shQuote(v as string | number);
    out += strings[i + 1];
  });
  return out;
}

/**
 * Run a command as root: directly when we log in as root, else through `sudo -n` (non-interactive,
 * so a missing sudo rule fails fast instead of hanging on a password prompt).
 */
export function asRoot(command: string, loginUser: string): string {
  if (loginUser === 'root') return command;
  return `sudo -n -- sh -c ${shQuote(command)}`;
}
