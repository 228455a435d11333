// The remote scripts the app runs on nodes are real files (VS Code keeps its shell-integration
// scripts as files too). Defaults ship in resources/scripts; the user-editable copies live in
// <dataDir>/scripts, where the console opens. The next job reads the user's copy, so an edit takes
// effect immediately; a copy that differs from the default is marked modified and can be reset.
// Scripts run as `bash -s -- ARG…`: the script text goes over stdin, the arguments through the
// one quoting function — no user string is ever spliced into script text.
import { promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { SshPool } from '../ssh/pool';
import type { ExecResult, SshTarget } from '../ssh/types';
import { LineSplitter } from '../ssh/exec';
import { shJoin } from './quote';
import type { ScriptInfo } from '@shared/domain';

export type { ScriptInfo };

const NAME_RE = /^[a-z0-9][a-z0-9-]*\.sh$/;

function sha(s: string | Buffer): string {
  return createHash('sha256').update(s).digest('hex');
}

export class ScriptLibrary {
  constructor(
    readonly defaultsDir: string,
    readonly userDir: string,
  ) {}

  async list(): Promise<ScriptInfo[]> {
    const names = (await fs.readdir(this.defaultsDir)).filter((n) => NAME_RE.test(n)).sort();
    return Promise.all(names.map((n) => this.info(n)));
  }

  async info(name: string): Promise<ScriptInfo> {
    this.check(name);
    const def = await fs.readFile(join(this.defaultsDir, name));
    const user = await fs.readFile(join(this.userDir, name)).catch(() => null);
    return { name, path: join(this.userDir, name), modified: !!user && sha(user) !== sha(def), missing: !user };
  }

  /** The text the next run will use: the user's copy, or the default when it is gone. */
  async read(name: string): Promise<string> {
    this.check(name);
    const user = await fs.readFile(join(this.userDir, name), 'utf8').catch(() => null);
    return user ?? fs.readFile(join(this.defaultsDir, name), 'utf8');
  }

  async reset(name: string): Promise<ScriptInfo> {
    this.check(name);
    await fs.mkdir(this.userDir, { recursive: true });
    await fs.copyFile(join(this.defaultsDir, name), join(this.userDir, name));
    await fs.chmod(join(this.userDir, name), 0o755);
    return this.info(name);
  }

  private check(name: string): void {
    if (!NAME_RE.test(name))
      throw Object.assign(new Error(`Bad script name ${JSON.stringify(name)}`), { code: 'INVALID_INPUT' });
  }
}

/**
 * Scripts whose stdout carries secrets (collect-files.sh prints file contents as base64 — the etcd
 * CA key among them). Their stdout never reaches a log or an error message, whoever calls them.
 */
export const SECRET_OUTPUT_SCRIPTS: ReadonlySet<string> = new Set(['collect-files.sh']);

export interface RunScriptOptions {
  asRoot?: boolean;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Job log: receives the command line (as shown to users) and output lines. */
  log?: (stream: 'cmd' | 'stdout' | 'stderr', text: string) => void;
  /** Fail on a non-zero exit code (default true). */
  check?: boolean;
  /**
   * The script prints secrets on stdout (key material): stdout is neither logged nor used in an
   * error message. Always on for the scripts in SECRET_OUTPUT_SCRIPTS.
   */
  secretOutput?: boolean;
  /** Cap on the output of the run (default: the exec default, 64 MiB); past it the script is stopped. */
  maxOutputBytes?: number;
  /** Cap on one logged line (longer lines are cut, saying how much); default 16 KiB. */
  maxLineBytes?: number;
}

/** The last `n` lines of a (possibly huge) text, each bounded; only the tail is looked at. */
function lastLines(text: string, n = 3, maxChars = 500): string[] {
  const tail = text.length > 8192 ? text.slice(-8192) : text;
  return tail
    .trim()
    .split('\n')
    .slice(-n)
    .map((l) => (l.length > maxChars ? `${l.slice(0, maxChars)}…` : l));
}

/** Lines with long base64/hex-like runs or PEM armour are data, not an explanation: leave them out. */
function looksLikeData(line: string): boolean {
  return /[A-Za-z0-9+/=]{40,}/.test(line) || /-----(BEGIN|END) /.test(line);
}

export class ScriptFailed extends Error {
  readonly code = 'REMOTE_FAILED';
  readonly result: ExecResult;
  constructor(
    readonly script: string,
    readonly node: string,
    result: ExecResult,
    opts: { secretOutput?: boolean } = {},
  ) {
    const secret = opts.secretOutput ?? SECRET_OUTPUT_SCRIPTS.has(script);
    let last = lastLines(result.stderr);
    if (!last.join('') && !secret)
      last = lastLines(result.stdout).map((l) => (looksLikeData(l) ? '[data left out]' : l));
    const why = last.join(' | ');
    const exited = `${script} on ${node} exited with ${result.code ?? result.signal}`;
    super(why ? `${exited}: ${why}` : secret ? `${exited} (its output is not shown: it may contain secrets)` : exited);
    this.name = 'ScriptFailed';
    // Whoever inspects the failure does not get the secret either.
    this.result = secret ? { ...result, stdout: '' } : result;
  }
}

/** The command line a script run uses — shown in plans and logs exactly as executed. */
export function scriptCommand(name: string, args: ReadonlyArray<string | number>): string {
  return shJoin(['bash', '-s', '--', ...args]) + `  # < scripts/${name}`;
}

export async function runScript(
  pool: SshPool,
  target: SshTarget,
  lib: ScriptLibrary,
  name: string,
  args: ReadonlyArray<string | number>,
  opts: RunScriptOptions = {},
): Promise<ExecResult> {
  const text = await lib.read(name);
  const command = shJoin(['bash', '-s', '--', ...args]);
  const secret = opts.secretOutput ?? SECRET_OUTPUT_SCRIPTS.has(name);
  const log = opts.log;
  log?.('cmd', `${target.label}$ ${scriptCommand(name, args)}`);
  // Log whole lines, split as the output arrives; a last line without a newline is flushed at the end.
  const out = log && !secret ? new LineSplitter((l) => log('stdout', l), opts.maxLineBytes) : undefined;
  const err = log ? new LineSplitter((l) => log('stderr', l), opts.maxLineBytes) : undefined;
  const res = await pool.exec(target, command, {
    asRoot: opts.asRoot ?? true,
    stdin: text,
    signal: opts.signal,
    timeoutMs: opts.timeoutMs,
    maxOutputBytes: opts.maxOutputBytes,
    onStdout: out && ((d) => out.write(d)),
    onStderr: err && ((d) => err.write(d)),
  });
  out?.end();
  err?.end();
  if ((opts.check ?? true) && res.code !== 0) throw new ScriptFailed(name, target.label, res, { secretOutput: secret });
  return res;
}
