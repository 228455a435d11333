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

export interface RunScriptOptions {
  asRoot?: boolean;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Job log: receives the command line (as shown to users) and output lines. */
  log?: (stream: 'cmd' | 'stdout' | 'stderr', text: string) => void;
  /** Fail on a non-zero exit code (default true). */
  check?: boolean;
}

export class ScriptFailed extends Error {
  readonly code = 'REMOTE_FAILED';
  constructor(
    readonly script: string,
    readonly node: string,
    readonly result: ExecResult,
  ) {
    const last = (result.stderr || result.stdout).trim().split('\n').slice(-3).join(' | ');
    super(`${script} on ${node} exited with ${result.code ?? result.signal}${last ? `: ${last}` : ''}`);
    this.name = 'ScriptFailed';
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
  opts.log?.('cmd', `${target.label}$ ${scriptCommand(name, args)}`);
  // Log whole lines; a last line without a newline is flushed when the command ends.
  const lineLogger = (stream: 'stdout' | 'stderr') => {
    let rest = '';
    return {
      write: (chunk: Buffer) => {
        const lines = (rest + chunk.toString('utf8')).split('\n');
        rest = lines.pop() ?? '';
        for (const l of lines) opts.log?.(stream, l);
      },
      flush: () => rest && opts.log?.(stream, rest),
    };
  };
  const out = lineLogger('stdout');
  const err = lineLogger('stderr');
  const res = await pool.exec(target, command, {
    asRoot: opts.asRoot ?? true,
    stdin: text,
    signal: opts.signal,
    timeoutMs: opts.timeoutMs,
    onStdout: opts.log ? out.write : undefined,
    onStderr: opts.log ? err.write : undefined,
  });
  out.flush();
  err.flush();
  if ((opts.check ?? true) && res.code !== 0) throw new ScriptFailed(name, target.label, res);
  return res;
}
