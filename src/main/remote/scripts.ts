// The remote scripts the app runs on nodes are real files (VS Code keeps its shell-integration
// scripts as files too). Defaults ship in resources/scripts; the user-editable copies live in
// <dataDir>/scripts, where the console opens. The next job reads the user's copy, so an edit takes
// effect immediately; a copy that differs from the default is marked modified and can be reset.
// Scripts run as `bash -s -- ARG…`: the script text goes over stdin, the arguments through the
// one quoting function — no user string is ever spliced into script text.
import { promises as fs } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { SshPool } from '../ssh/pool';
import type { ExecResult, SshTarget } from '../ssh/types';
import { LineSplitter } from '../ssh/exec';
import { asRoot, shJoin } from './quote';
import { SHIPPED_DIR } from '../scripts/folder';
import { unifiedDiff } from '../util/diff';
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
    // The shipped version the copy came from (scripts/folder.ts); without it, the current one.
    const base = await fs.readFile(join(this.userDir, SHIPPED_DIR, name)).catch(() => null);
    const modified = !!user && sha(user) !== sha(base ?? def);
    return {
      name,
      path: join(this.userDir, name),
      modified,
      missing: !user,
      updateAvailable: modified && (!base || sha(base) !== sha(def)),
    };
  }

  /** What "take the new version" would change: the user's copy → the version this app ships. */
  async diff(name: string): Promise<{ name: string; diff: string }> {
    this.check(name);
    const def = await fs.readFile(join(this.defaultsDir, name), 'utf8');
    const user = await fs.readFile(join(this.userDir, name), 'utf8').catch(() => '');
    return { name, diff: unifiedDiff(name, user, def) };
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
    // the copy is now the shipped version: record it, so the next upgrade updates it by itself
    await fs.mkdir(join(this.userDir, SHIPPED_DIR), { recursive: true, mode: 0o700 });
    await fs.copyFile(join(this.defaultsDir, name), join(this.userDir, SHIPPED_DIR, name));
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
  /**
   * Absolute paths of the etcd tools on the node (as discovered there). A script gets each one it
   * names (KES_ETCD, KES_ETCDCTL, KES_ETCDUTL) in its environment and calls the tool by that path,
   * so nothing depends on PATH — sudo's secure_path leaves /usr/local/bin out on many systems.
   */
  tools?: ToolPathsArg;
}

export type EtcdTool = 'etcd' | 'etcdctl' | 'etcdutl';
export type ToolPathsArg = Partial<Record<EtcdTool, string | null>>;
const TOOL_ENV: Record<EtcdTool, string> = { etcd: 'KES_ETCD', etcdctl: 'KES_ETCDCTL', etcdutl: 'KES_ETCDUTL' };

/**
 * `NAME=/abs/path` words for the tools a script names (`KES_ETCDCTL` …), in a fixed order. Only
 * absolute paths; a tool the node lacks is left out (the script then says it has none).
 */
export function toolEnv(scriptText: string, tools: ToolPathsArg | undefined): string[] {
  const out: string[] = [];
  for (const t of ['etcd', 'etcdctl', 'etcdutl'] as const) {
    const path = tools?.[t];
    const name = TOOL_ENV[t];
    if (path && path.startsWith('/') && new RegExp(`\\b${name}\\b`).test(scriptText)) out.push(`${name}=${path}`);
  }
  return out;
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

/**
 * What the node's login shell receives for a script run: `bash -s -- ARGS`, behind `env NAME=PATH …`
 * when the script gets tool paths. Every word goes through shJoin.
 */
export function scriptExecCommand(args: ReadonlyArray<string | number>, env: ReadonlyArray<string> = []): string {
  return shJoin([...(env.length ? ['env', ...env] : []), 'bash', '-s', '--', ...args]);
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
  const command = scriptExecCommand(args, toolEnv(text, opts.tools));
  const root = opts.asRoot ?? true;
  const secret = opts.secretOutput ?? SECRET_OUTPUT_SCRIPTS.has(name);
  const log = opts.log;
  // The log shows the command exactly as it runs: with `sudo -n -- sh -c …` for a non-root login.
  log?.('cmd', `${target.label}$ ${root ? asRoot(command, target.user) : command}  # < scripts/${name}`);
  // Log whole lines, split as the output arrives; a last line without a newline is flushed at the end.
  const out = log && !secret ? new LineSplitter((l) => log('stdout', l), opts.maxLineBytes) : undefined;
  const err = log ? new LineSplitter((l) => log('stderr', l), opts.maxLineBytes) : undefined;
  const res = await pool.exec(target, command, {
    asRoot: root,
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

/** One script of a batch (runScriptBatch): its name, arguments and the tool paths it gets. */
export interface ScriptCall {
  name: string;
  args: ReadonlyArray<string | number>;
  /** In a batch: run only when this earlier part (its index) exited 0; else skipped with code 125. */
  needs?: number;
}

/** The exit code a batch gives a part it skipped (its `needs` part failed). */
export const SKIPPED = 125;

/**
 * The program a batch sends on stdin: each script as `bash -s -- ARGS <<'DELIM'` (its own bash,
 * reading its own text, so an `exit` or `set -e` in one ends only that one), between marker lines
 * on stdout and stderr that carry the part's number and exit code. The arguments go through the
 * same quoting as a single run (scriptExecCommand); the delimiter is random per batch, and a script
 * text holding it is refused.
 */
export function batchProgram(
  parts: ReadonlyArray<{
    text: string;
    args: ReadonlyArray<string | number>;
    env: ReadonlyArray<string>;
    needs?: number;
  }>,
  nonce: string,
): string {
  const delim = `KES_SCRIPT_${nonce}`;
  const out: string[] = [];
  parts.forEach((p, i) => {
    if (p.text.split('\n').includes(delim)) throw new Error(`script ${i} holds the batch delimiter`);
    if (p.needs !== undefined && !(Number.isInteger(p.needs) && p.needs >= 0 && p.needs < i))
      throw new Error(`part ${i} needs part ${p.needs}, which does not run before it`);
    const text = p.text.endsWith('\n') ? p.text : `${p.text}\n`;
    const run = [`${scriptExecCommand(p.args, p.env)} <<'${delim}'`, `${text}${delim}`, 'kes_rc=$?'];
    out.push(
      `printf 'KES_PART_${nonce}=%s\\n' ${i}; printf 'KES_PART_${nonce}=%s\\n' ${i} >&2`,
      ...(p.needs === undefined
        ? run
        : [
            `if [ "$kes_rc_${p.needs}" = 0 ]; then`,
            ...run,
            `else echo 'skipped: part ${p.needs} failed' >&2; kes_rc=${SKIPPED}; fi`,
          ]),
      `kes_rc_${i}=$kes_rc; printf '\\nKES_PART_END_${nonce}=%s:%s\\n' ${i} "$kes_rc"; printf '\\nKES_PART_END_${nonce}=%s:%s\\n' ${i} "$kes_rc" >&2`,
    );
  });
  return `${out.join('\n')}\n`;
}

/** Each part's stdout, stderr and exit code from a batch's output (null: the part never ended). */
export function splitBatch(
  stdout: string,
  stderr: string,
  count: number,
  nonce: string,
): { code: number | null; stdout: string; stderr: string }[] {
  const cut = (text: string) => {
    const parts: { text: string; code: number | null }[] = Array.from({ length: count }, () => ({
      text: '',
      code: null,
    }));
    const re = new RegExp(`^KES_PART_${nonce}=(\\d+)\\n|\\nKES_PART_END_${nonce}=(\\d+):(\\d+)\\n`, 'gm');
    let cur = -1;
    let from = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      if (m[1] !== undefined) {
        cur = Number(m[1]);
        from = m.index + m[0].length;
      } else if (cur === Number(m[2]) && parts[cur]) {
        parts[cur] = { text: text.slice(from, m.index), code: Number(m[3]) };
        cur = -1;
      }
    }
    // a part cut short (timeout, dropped connection): what it printed so far
    if (cur >= 0 && parts[cur]) parts[cur] = { text: text.slice(from), code: null };
    return parts;
  };
  const o = cut(stdout);
  const e = cut(stderr);
  return o.map((p, i) => ({ code: p.code, stdout: p.text, stderr: e[i].text }));
}

/**
 * Several scripts on one node in one SSH exec (one round trip; the health view runs one batch per
 * node). Each part is logged as the command it is, like a single run; its result says how it
 * ended (`code` null: the batch stopped before it ended). Never throws for a part's exit code.
 */
export async function runScriptBatch(
  pool: SshPool,
  target: SshTarget,
  lib: ScriptLibrary,
  calls: ReadonlyArray<ScriptCall>,
  opts: Omit<RunScriptOptions, 'check' | 'secretOutput'> = {},
): Promise<ExecResult[]> {
  if (calls.some((c) => SECRET_OUTPUT_SCRIPTS.has(c.name)))
    throw new Error('scripts with secret output run alone (runScript)');
  const texts = await Promise.all(calls.map((c) => lib.read(c.name)));
  const parts = calls.map((c, i) => ({
    text: texts[i],
    args: c.args,
    env: toolEnv(texts[i], opts.tools),
    needs: c.needs,
  }));
  const nonce = randomBytes(8).toString('hex');
  const root = opts.asRoot ?? true;
  const command = shJoin(['bash', '-s']);
  const log = opts.log;
  const marker = new RegExp(`^KES_PART(_END)?_${nonce}=`);
  parts.forEach((p, i) =>
    log?.(
      'cmd',
      `${target.label}$ ${scriptExecCommand(p.args, p.env)}  # < scripts/${calls[i].name} (${i + 1} of ${calls.length} in one run${root ? ` under ${asRoot(command, target.user)}` : ''})`,
    ),
  );
  const keep = (stream: 'stdout' | 'stderr') => (l: string) => {
    if (l && !marker.test(l)) log?.(stream, l);
  };
  const out = log ? new LineSplitter(keep('stdout'), opts.maxLineBytes) : undefined;
  const err = log ? new LineSplitter(keep('stderr'), opts.maxLineBytes) : undefined;
  const res = await pool.exec(target, command, {
    asRoot: root,
    stdin: batchProgram(parts, nonce),
    signal: opts.signal,
    timeoutMs: opts.timeoutMs,
    maxOutputBytes: opts.maxOutputBytes,
    onStdout: out && ((d) => out.write(d)),
    onStderr: err && ((d) => err.write(d)),
  });
  out?.end();
  err?.end();
  return splitBatch(res.stdout, res.stderr, calls.length, nonce).map((p) => ({
    ...p,
    signal: p.code === null ? res.signal : undefined,
    durationMs: res.durationMs,
  }));
}
