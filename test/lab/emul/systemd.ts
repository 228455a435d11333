// systemctl / journalctl stand-in for lab hosts (installed as /usr/local/bin/systemctl and
// /usr/local/bin/journalctl, and bind-mounted over /usr/bin/systemctl inside the host). Hosts have no
// systemd (sshd is PID 1), yet the app writes units and runs systemctl like on a real server, so:
// - units are read from /etc/systemd/system, /run/systemd/system, /lib/systemd/system (+ <unit>.d/*.conf
//   drop-ins). Like systemd, a unit that is loaded keeps the definition it was loaded with until
//   `daemon-reload` (also implied by enable/disable): a loaded unit is one that is not inactive
//   (active, activating, deactivating, failed) or is enabled; the others are garbage-collected by
//   systemd and so are read afresh on demand (a new unit file needs no reload). The loaded
//   definitions are kept in /run/systemd-shim/loaded/<unit>.json; start/stop/restart/status warn
//   like systemctl when the files changed on disk since, and `show` answers NeedDaemonReload;
// - `start` runs a detached supervisor (this script, `__supervise`) that runs ExecStartPre, then
//   ExecStart through /bin/sh (so $VAR / ${VAR} from Environment= and EnvironmentFile= expand), honours
//   User=, WorkingDirectory=, Restart=/RestartSec=, and writes the output with journal-like prefixes to
//   /var/log/journal-lab/<unit>.log; state lives in /run/systemd-shim/<unit>.json;
// - Type=notify: the supervisor binds a unix datagram socket /run/systemd-shim/notify/<unit> (a small
//   python3 helper: node has no AF_UNIX datagrams; SO_PASSCRED gives the sender's PID) and passes it
//   as $NOTIFY_SOCKET. The unit stays "activating" until READY=1 arrives from the main process
//   (NotifyAccess=main; =all/exec/none honoured), or fails after TimeoutStartSec= (default 90 s;
//   TimeoutSec=, infinity, EXTEND_TIMEOUT_USEC= honoured): "start operation timed out", main process
//   terminated, result 'timeout'. `systemctl start/restart` wait for that job like systemctl does;
//   --no-block returns at once. STATUS= and MAINPID= are kept; other fields are ignored;
// - `stop` signals the supervisor, which stops the main process group (SIGTERM, SIGKILL after 10 s);
// - enable/disable manage the <target>.wants symlinks like systemd; `__boot` (run by the host's init)
//   starts everything wanted by multi-user.target (Type=notify ones without waiting, like systemd's
//   parallel boot does not hold sshd back).
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  writeSync,
  lstatSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';

const UNIT_DIRS = ['/etc/systemd/system', '/run/systemd/system', '/lib/systemd/system', '/usr/lib/systemd/system'];
const STATE_DIR = '/run/systemd-shim';
const LOADED_DIR = join(STATE_DIR, 'loaded');
const NOTIFY_DIR = join(STATE_DIR, 'notify');
const LOG_DIR = '/var/log/journal-lab';
const DEFAULT_TIMEOUT_START_MS = 90_000; // systemd's DefaultTimeoutStartSec
const PYTHON = '/usr/bin/python3';

interface Unit {
  name: string;
  path: string;
  dropins: string[];
  description: string;
  service: Map<string, string[]>; // key -> values in order (empty value resets list keys)
  serviceOrder: [string, string][]; // every [Service] assignment in file order (TimeoutSec vs TimeoutStartSec)
  wantedBy: string[];
}

/** A unit's files as systemd loaded them (content and mtime of fragment and drop-ins). */
interface UnitFileCopy {
  path: string;
  text: string;
  mtime: string; // ns
}
interface UnitSource {
  name: string;
  fragment: UnitFileCopy;
  dropins: UnitFileCopy[];
}

/** systemd's job results (also used as the unit's Result=); 'done' = the start job succeeded. */
type JobResult = 'done' | 'canceled' | 'exit-code' | 'signal' | 'timeout' | 'protocol' | 'resources';

interface State {
  state: 'activating' | 'active' | 'deactivating' | 'inactive' | 'failed';
  supervisorPid?: number;
  mainPid?: number;
  since: string;
  result?: string;
  job?: string; // id of the start job the supervisor runs
  jobResult?: JobResult; // set once that job is finished
  statusText?: string; // STATUS= from sd_notify
}

function unitName(n: string): string {
  return /\.(service|target|socket|timer|mount)$/.test(n) ? n : `${n}.service`;
}

function parseInto(text: string, unit: Unit, specifiers: (s: string) => string): void {
  let section = '';
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      section = sec[1];
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const k = line.slice(0, eq).trim();
    const v = specifiers(line.slice(eq + 1).trim());
    if (section === 'Unit' && k === 'Description') unit.description = v;
    if (section === 'Install' && (k === 'WantedBy' || k === 'RequiredBy'))
      unit.wantedBy.push(...v.split(/\s+/).filter(Boolean));
    if (section === 'Service') {
      unit.serviceOrder.push([k, v]);
      const list = unit.service.get(k) ?? [];
      if (
        v === '' &&
        ['ExecStart', 'ExecStartPre', 'ExecStartPost', 'Environment', 'EnvironmentFile', 'ExecStop'].includes(k)
      )
        list.length = 0;
      else list.push(v);
      unit.service.set(k, list);
    }
  }
}

function fileCopy(path: string): UnitFileCopy {
  return { path, text: readFileSync(path, 'utf8'), mtime: String(statSync(path, { bigint: true }).mtimeNs) };
}

/** The unit's files as they are on disk now (undefined: no such unit, or masked). */
function readSource(n: string): UnitSource | undefined {
  const name = unitName(n);
  const path = UNIT_DIRS.map((d) => join(d, name)).find((p) => existsSync(p));
  if (!path) return undefined;
  try {
    if (lstatSync(path).isSymbolicLink() && readlinkSync(path) === '/dev/null') return undefined; // masked
  } catch {
    /* ignore */
  }
  const dropins: string[] = [];
  // like systemd: a drop-in name in a higher-priority directory hides the same name in a lower one;
  // /lib is /usr/lib on merged-/usr systems (one directory listed twice)
  const seenDirs = new Set<string>();
  for (const d of UNIT_DIRS) {
    const dd = join(d, `${name}.d`);
    try {
      const real = realpathSync(dd);
      if (seenDirs.has(real)) continue;
      seenDirs.add(real);
      for (const f of readdirSync(dd))
        if (f.endsWith('.conf') && !dropins.some((x) => basename(x) === f)) dropins.push(join(dd, f));
    } catch {
      /* none */
    }
  }
  dropins.sort((a, b) => basename(a).localeCompare(basename(b)));
  try {
    return { name, fragment: fileCopy(path), dropins: dropins.map(fileCopy) };
  } catch {
    return undefined; // vanished while reading
  }
}

function parseSource(src: UnitSource): Unit {
  const name = src.name;
  const prefix = name.replace(/\.service$/, '');
  const spec = (s: string): string =>
    s
      .replace(/%%/g, '\0')
      .replace(/%[pN]/g, prefix)
      .replace(/%n/g, name)
      .replace(/%i/g, prefix.split('@')[1] ?? '')
      .replace(/%H/g, hostname())
      .replace(/\0/g, '%');
  const unit: Unit = {
    name,
    path: src.fragment.path,
    dropins: src.dropins.map((d) => d.path),
    description: prefix,
    service: new Map(),
    serviceOrder: [],
    wantedBy: [],
  };
  parseInto(src.fragment.text, unit, spec);
  for (const d of src.dropins) parseInto(d.text, unit, spec);
  return unit;
}

/** The unit as its files are on disk now. */
export function loadUnit(n: string): Unit | undefined {
  const src = readSource(n);
  return src && parseSource(src);
}

// ---------------------------------------------------------------- loaded definitions (daemon-reload)

function loadedPath(name: string): string {
  return join(LOADED_DIR, `${name}.json`);
}

function readLoaded(name: string): UnitSource | undefined {
  try {
    return JSON.parse(readFileSync(loadedPath(name), 'utf8')) as UnitSource;
  } catch {
    return undefined;
  }
}

function writeLoaded(src: UnitSource): void {
  mkdirSync(LOADED_DIR, { recursive: true });
  const tmp = `${loadedPath(src.name)}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(src));
  renameSync(tmp, loadedPath(src.name));
}

function enabledByName(name: string): boolean {
  try {
    return readdirSync('/etc/systemd/system').some(
      (d) => d.endsWith('.wants') && existsSync(join('/etc/systemd/system', d, name)),
    );
  } catch {
    return false;
  }
}

/** Would systemd keep this unit loaded (not garbage-collect it)? Then its definition is only re-read by daemon-reload. */
function pinned(name: string): boolean {
  return readState(name).state !== 'inactive' || enabledByName(name);
}

/** NeedDaemonReload: the unit's fragment or drop-ins differ on disk from what was loaded. */
function changedOnDisk(loaded: UnitSource): boolean {
  const now = readSource(loaded.name);
  if (!now) return true;
  const same = (a: UnitFileCopy, b: UnitFileCopy): boolean =>
    a.path === b.path && a.mtime === b.mtime && a.text === b.text;
  return (
    !same(now.fragment, loaded.fragment) ||
    now.dropins.length !== loaded.dropins.length ||
    now.dropins.some((d, i) => !same(d, loaded.dropins[i]))
  );
}

/**
 * The unit as the (emulated) manager has it: a loaded unit keeps its definition until daemon-reload;
 * an unloaded one is read from disk now (and is loaded from then on).
 */
function loadedUnit(n: string): { unit: Unit; stale: boolean } | undefined {
  const name = unitName(n);
  const loaded = readLoaded(name);
  if (loaded && pinned(name)) return { unit: parseSource(loaded), stale: changedOnDisk(loaded) };
  const src = readSource(name);
  if (!src) {
    rmSync(loadedPath(name), { force: true });
    return undefined;
  }
  writeLoaded(src);
  return { unit: parseSource(src), stale: false };
}

/** daemon-reload: every unit systemd keeps loaded gets its definition from disk again. */
function daemonReload(): void {
  // file by file (each write atomic), so a concurrent systemctl never sees a half-done reload
  const names = new Set<string>();
  for (const d of UNIT_DIRS) {
    try {
      for (const f of readdirSync(d)) if (f.endsWith('.service')) names.add(f);
    } catch {
      /* none */
    }
  }
  const keep = new Set<string>();
  for (const name of names) {
    if (!pinned(name)) continue;
    const src = readSource(name);
    if (!src) continue;
    writeLoaded(src);
    keep.add(`${name}.json`);
  }
  try {
    for (const f of readdirSync(LOADED_DIR))
      if (f.endsWith('.json') && !keep.has(f)) rmSync(join(LOADED_DIR, f), { force: true });
  } catch {
    /* nothing loaded */
  }
}

function warnChanged(name: string): void {
  process.stderr.write(
    `Warning: The unit file, source configuration file or drop-ins of ${name} changed on disk. Run 'systemctl daemon-reload' to reload units.\n`,
  );
}

// ---------------------------------------------------------------- runtime state

function statePath(name: string): string {
  return join(STATE_DIR, `${name}.json`);
}

function readState(name: string): State {
  try {
    const s = JSON.parse(readFileSync(statePath(name), 'utf8')) as State;
    if (
      s.supervisorPid &&
      !pidAlive(s.supervisorPid) &&
      (s.state === 'active' || s.state === 'activating' || s.state === 'deactivating')
    ) {
      return { state: 'failed', since: s.since, result: 'supervisor-gone', job: s.job, jobResult: s.jobResult };
    }
    return s;
  } catch {
    return { state: 'inactive', since: '' };
  }
}

function writeState(name: string, s: State): void {
  mkdirSync(STATE_DIR, { recursive: true });
  const tmp = `${statePath(name)}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(s));
  renameSync(tmp, statePath(name));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false; // EPERM: alive, not ours (non-root caller)
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** systemd time span ("90", "1min 30s", "500ms", "infinity") in ms; 0 and infinity mean no limit. */
export function parseTimespan(v: string): number {
  const t = v.trim();
  if (t === 'infinity') return Infinity;
  const units: Record<string, number> = {
    us: 0.001,
    usec: 0.001,
    ms: 1,
    msec: 1,
    s: 1000,
    sec: 1000,
    second: 1000,
    seconds: 1000,
    m: 60_000,
    min: 60_000,
    minute: 60_000,
    minutes: 60_000,
    h: 3_600_000,
    hr: 3_600_000,
    hour: 3_600_000,
    hours: 3_600_000,
    d: 86_400_000,
    day: 86_400_000,
    days: 86_400_000,
  };
  let ms = 0;
  let rest = t;
  if (!rest) return NaN;
  while (rest) {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)/.exec(rest);
    if (!m) return NaN;
    const f = units[m[2] || 's'];
    if (f === undefined) return NaN;
    ms += parseFloat(m[1]) * f;
    rest = rest.slice(m[0].length).trim();
  }
  return ms === 0 ? Infinity : ms;
}

/** TimeoutStartSec= / TimeoutSec= (the later assignment wins), else the default; Infinity = none. */
function timeoutStartMs(u: Unit): number {
  let ms = DEFAULT_TIMEOUT_START_MS;
  for (const [k, v] of u.serviceOrder) {
    if (k !== 'TimeoutStartSec' && k !== 'TimeoutSec') continue;
    const t = v === '' ? DEFAULT_TIMEOUT_START_MS : parseTimespan(v);
    if (!Number.isNaN(t)) ms = t;
  }
  return ms;
}

function serviceType(u: Unit): string {
  return u.service.get('Type')?.at(-1) || 'simple';
}

function isNotifyType(u: Unit): boolean {
  return ['notify', 'notify-reload'].includes(serviceType(u));
}

function notifyAccess(u: Unit): 'none' | 'main' | 'exec' | 'all' {
  const v = u.service.get('NotifyAccess')?.at(-1);
  if (v === 'none' || v === 'main' || v === 'exec' || v === 'all') return v;
  return isNotifyType(u) ? 'main' : 'none';
}

function fmtTimespan(ms: number): string {
  if (!Number.isFinite(ms)) return 'infinity';
  const parts: string[] = [];
  let s = Math.floor(ms / 1000);
  const rest = ms - s * 1000;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (h) parts.push(`${h}h`);
  if (m) parts.push(`${m}min`);
  if (s) parts.push(`${s}s`);
  if (rest) parts.push(`${rest}ms`);
  return parts.join(' ') || '0';
}

function parseEnvAssignments(v: string, env: NodeJS.ProcessEnv): void {
  // Environment="A=1 2" B=3  (systemd quoting)
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (const m of v.matchAll(re)) {
    const a = m[1] ?? m[2] ?? m[3] ?? '';
    const eq = a.indexOf('=');
    if (eq > 0) env[a.slice(0, eq)] = a.slice(eq + 1);
  }
}

function unitEnv(u: Unit): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
    INVOCATION_ID: Math.random().toString(16).slice(2),
  };
  for (const v of u.service.get('Environment') ?? []) parseEnvAssignments(v, env);
  for (let f of u.service.get('EnvironmentFile') ?? []) {
    const optional = f.startsWith('-');
    if (optional) f = f.slice(1);
    try {
      for (const line of readFileSync(f, 'utf8').split('\n')) {
        const t = line.trim();
        if (!t || t.startsWith('#')) continue;
        const eq = t.indexOf('=');
        if (eq < 0) continue;
        let val = t.slice(eq + 1).trim();
        if ((val.startsWith('"') && val.endsWith('"')) || (val.startsWith("'") && val.endsWith("'")))
          val = val.slice(1, -1);
        env[
          t
            .slice(0, eq)
            .trim()
            .replace(/^export\s+/, '')
        ] = val;
      }
    } catch (e) {
      if (!optional) throw new Error(`Failed to load environment files: ${(e as Error).message}`, { cause: e });
    }
  }
  return env;
}

function lookupUser(user: string): { uid: number; gid: number; home: string } | undefined {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const p = line.split(':');
    if (p[0] === user || p[2] === user) return { uid: Number(p[2]), gid: Number(p[3]), home: p[5] };
  }
  return undefined;
}

function journalPrefix(name: string, pid: number | undefined): string {
  const d = new Date();
  const mon = d.toLocaleString('en-US', { month: 'short' });
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${mon} ${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${hostname()} ${name.replace(/\.service$/, '')}[${pid ?? 0}]: `;
}

// The notify socket: node has no AF_UNIX datagram sockets, so python3 (on every host) binds it and
// reports each datagram as "<sender pid> <hex payload>" on stdout; it exits when its stdin (the
// supervisor) closes, removing the socket.
const NOTIFY_HELPER = `
import os, select, socket, struct, sys
path = sys.argv[1]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(path)
os.chmod(path, 0o777)
sys.stdout.write("bound\\n")
sys.stdout.flush()
try:
    while True:
        r, _, _ = select.select([s, 0], [], [])
        if 0 in r and not os.read(0, 4096):
            break
        if s in r:
            data, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(12))
            pid = 0
            for lvl, typ, d in anc:
                if lvl == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", d[:12])[0]
            sys.stdout.write("%d %s\\n" % (pid, data.hex()))
            sys.stdout.flush()
finally:
    try:
        os.unlink(path)
    except OSError:
        pass
`;

/** Bind the unit's notify socket; `onMessage` gets each datagram's sender PID and fields. */
async function openNotifySocket(
  name: string,
  onMessage: (pid: number, fields: Map<string, string>) => void,
): Promise<{ path: string; close: () => void }> {
  mkdirSync(NOTIFY_DIR, { recursive: true, mode: 0o755 });
  const path = join(NOTIFY_DIR, name);
  const helper = spawn(PYTHON, ['-c', NOTIFY_HELPER, path], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  helper.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const lines = createInterface({ input: helper.stdout });
  await new Promise<void>((resolve, reject) => {
    helper.on('error', reject);
    helper.on('exit', (code) => reject(new Error(`notify socket helper exited (${code}): ${err.trim()}`)));
    lines.once('line', () => resolve());
  });
  lines.on('line', (l) => {
    const [pid, hex] = l.split(' ');
    const fields = new Map<string, string>();
    for (const f of Buffer.from(hex ?? '', 'hex')
      .toString('utf8')
      .split('\n')) {
      const eq = f.indexOf('=');
      if (eq > 0) fields.set(f.slice(0, eq), f.slice(eq + 1));
    }
    onMessage(Number(pid), fields);
  });
  return {
    path,
    close: () => {
      helper.stdin.end();
      helper.kill();
    },
  };
}

const JOB_FAILED_BECAUSE: Record<string, string> = {
  'exit-code': 'the control process exited with error code',
  signal: 'a fatal signal was delivered to the control process',
  timeout: 'a timeout was exceeded',
  protocol: 'the service did not take the steps required by its unit configuration',
  resources: 'of unavailable resources or another system error',
};

/** The long-running part: one per started unit (`__supervise NAME JOB`). */
async function supervise(n: string, job: string | undefined): Promise<void> {
  const name = unitName(n);
  let cur: State = { ...readState(name), job };
  const set = (patch: Partial<State>): void => {
    cur = { ...cur, ...patch, supervisorPid: process.pid };
    writeState(name, cur);
  };
  /** Finish the start job (once): 'done' or the failure result. */
  const jobDone = (r: JobResult): void => {
    if (!cur.jobResult) set({ jobResult: r });
  };
  const finish = (state: 'inactive' | 'failed', result: string, code = 0): never => {
    cur = { ...cur, state, result, since: new Date().toISOString(), supervisorPid: undefined, mainPid: undefined };
    if (!cur.jobResult) cur.jobResult = state === 'inactive' && result === 'success' ? 'canceled' : 'resources';
    writeState(name, cur);
    process.exit(code);
  };
  const loaded = loadedUnit(name);
  if (!loaded) finish('failed', 'resources', 4);
  let u = loaded!.unit;
  process.title = `systemd-shim ${name}`;
  mkdirSync(LOG_DIR, { recursive: true });
  const logFd = openSync(join(LOG_DIR, `${name}.log`), 'a');
  const log = (pid: number | undefined, text: string): void => {
    for (const l of text.split('\n')) if (l.length) writeSync(logFd, journalPrefix(name, pid) + l + '\n');
  };
  const since = new Date().toISOString();
  let stopping = false;
  let current: ReturnType<typeof spawn> | undefined;
  let mainPid: number | undefined;
  // wakes the activation wait on READY=1, main process exit, stop request or a timeout extension
  let wake: () => void = () => undefined;
  const waitEvent = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(resolve, Math.max(0, Math.min(ms, 60_000)));
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  const ev = { ready: false }; // READY=1 seen from the current main process
  let deadline = Infinity;
  let env: NodeJS.ProcessEnv = {};
  const killGroup = async (pid: number | undefined): Promise<void> => {
    if (!pid || !pidAlive(pid)) return;
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    const until = Date.now() + 10_000;
    while (pidAlive(pid) && Date.now() < until) await sleep(50);
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  };
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    wake();
    set({ state: 'deactivating', mainPid: current?.pid });
    await killGroup(current?.pid);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  set({ state: 'activating', since });
  log(process.pid, `Starting ${name} - ${u.description}...`);

  let notify: { path: string; close: () => void } | undefined;
  const access = notifyAccess(u);
  if (access !== 'none') {
    try {
      notify = await openNotifySocket(name, (pid, fields) => {
        if ((access === 'main' || access === 'exec') && pid !== mainPid) {
          log(
            process.pid,
            `${name}: Got notification message from PID ${pid}, but reception only permitted for main PID ${mainPid ?? 0}`,
          );
          return;
        }
        const mp = Number(fields.get('MAINPID'));
        if (mp > 0 && pidAlive(mp)) {
          mainPid = mp;
          if (cur.state === 'active' || cur.state === 'activating') set({ mainPid });
        }
        if (fields.has('STATUS')) set({ statusText: fields.get('STATUS') });
        const ext = Number(fields.get('EXTEND_TIMEOUT_USEC'));
        if (ext > 0 && Number.isFinite(deadline)) deadline = Math.max(deadline, Date.now() + ext / 1000);
        if (fields.get('READY') === '1') ev.ready = true;
        wake();
      });
    } catch (e) {
      log(process.pid, `${name}: Failed to set up notify socket: ${(e as Error).message}`);
      log(process.pid, `${name}: Failed with result 'resources'.`);
      finish('failed', 'resources');
    }
    process.on('exit', () => notify?.close());
  }

  const runCmd = (line: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
    new Promise((resolve) => {
      const cmd = line.replace(/^[-@+!:]+/, '');
      const user = u.service.get('User')?.at(-1);
      const ids = user ? lookupUser(user) : undefined;
      const cwd =
        u.service.get('WorkingDirectory')?.at(-1)?.replace(/^-/, '') ??
        (ids?.home && existsSync(ids.home) ? ids.home : '/');
      const child = spawn('/bin/sh', ['-c', `exec ${cmd}`], {
        env: ids ? { ...env, HOME: ids.home, USER: user } : env,
        cwd,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
        uid: ids?.uid,
        gid: ids?.gid,
      });
      current = child;
      child.stdout!.on('data', (d: Buffer) => log(child.pid, d.toString()));
      child.stderr!.on('data', (d: Buffer) => log(child.pid, d.toString()));
      child.on('error', (e) => log(child.pid, `Failed to execute: ${e.message}`));
      child.on('close', (code, signal) => resolve({ code, signal }));
    });

  for (;;) {
    // every (re)start reads EnvironmentFile= again, and uses the currently loaded definition
    const again = loadedUnit(name);
    if (again) u = again.unit;
    const restart = u.service.get('Restart')?.at(-1) ?? 'no';
    const restartSec = parseFloat(u.service.get('RestartSec')?.at(-1) ?? '0.1') * 1000;
    const notifyType = isNotifyType(u);
    deadline = Date.now() + timeoutStartMs(u);
    try {
      env = unitEnv(u);
    } catch (e) {
      log(process.pid, `${name}: ${(e as Error).message}`);
      log(process.pid, `${name}: Failed with result 'resources'.`);
      log(process.pid, `Failed to start ${name} - ${u.description}.`);
      finish('failed', 'resources', 1);
    }
    if (notify) env.NOTIFY_SOCKET = notify.path;
    for (const pre of u.service.get('ExecStartPre') ?? []) {
      const r = await runCmd(pre);
      if (stopping) finish('inactive', 'success');
      if (r.code !== 0 && !pre.startsWith('-')) {
        log(process.pid, `${name}: Control process exited, code=exited, status=${r.code}/FAILURE`);
        log(process.pid, `${name}: Failed with result 'exit-code'.`);
        log(process.pid, `Failed to start ${name} - ${u.description}.`);
        set({ jobResult: cur.jobResult ?? 'exit-code' });
        finish('failed', 'exit-code', 1);
      }
    }
    const exec = (u.service.get('ExecStart') ?? []).at(-1);
    if (!exec) {
      set({ jobResult: cur.jobResult ?? 'resources' });
      finish('failed', 'no-exec', 1);
    }
    ev.ready = false;
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const p = runCmd(exec!).then((r) => {
      exited = r;
      wake();
      return r;
    });
    mainPid = current?.pid;
    let result = 'success';
    let wasActive = false;
    if (!notifyType) {
      set({ state: 'active', mainPid, since: new Date().toISOString() });
      jobDone('done');
      log(process.pid, `Started ${name} - ${u.description}.`);
      wasActive = true;
    } else {
      set({ state: 'activating', mainPid, since: new Date().toISOString() });
      while (!ev.ready && !exited && !stopping && Date.now() < deadline) await waitEvent(deadline - Date.now());
      if (stopping) {
        /* handled below */
      } else if (ev.ready && !exited) {
        set({ state: 'active', since: new Date().toISOString() });
        jobDone('done');
        log(process.pid, `Started ${name} - ${u.description}.`);
        wasActive = true;
      } else if (!exited) {
        log(process.pid, `${name}: start operation timed out. Terminating.`);
        result = 'timeout';
        set({ state: 'deactivating' });
        await killGroup(current?.pid);
      }
    }
    const r = await p;
    if (stopping) {
      log(process.pid, `${name}: Deactivated successfully.`);
      finish('inactive', 'success');
    }
    if (result !== 'timeout') {
      log(
        process.pid,
        `${name}: Main process exited, code=${r.signal ? 'killed' : 'exited'}, status=${r.signal ?? r.code}`,
      );
      if (r.signal) result = 'signal';
      else if (r.code !== 0) result = 'exit-code';
      else if (!wasActive) result = 'protocol'; // Type=notify: exited without READY=1
    }
    if (result !== 'success') log(process.pid, `${name}: Failed with result '${result}'.`);
    if (!wasActive) {
      log(process.pid, `Failed to start ${name} - ${u.description}.`);
      jobDone(result as JobResult);
    }
    const restartIt =
      restart === 'always' ||
      (restart === 'on-failure' && result !== 'success') ||
      (restart === 'on-abnormal' && (result === 'signal' || result === 'timeout'));
    if (!restartIt) finish(result === 'success' ? 'inactive' : 'failed', result);
    set({ state: 'activating', mainPid: undefined, since: new Date().toISOString(), result });
    log(process.pid, `${name}: Scheduled restart job.`);
    const restartAt = Date.now() + restartSec;
    while (!stopping && Date.now() < restartAt) await waitEvent(restartAt - Date.now());
    if (stopping) finish('inactive', 'success');
    log(process.pid, `Starting ${name} - ${u.description}...`);
  }
}

interface StartOpts {
  noBlock?: boolean;
  /** restart: the definition resolved before the stop (the unit stayed loaded) */
  resolved?: { unit: Unit; stale: boolean };
}

async function start(n: string, opts: StartOpts = {}): Promise<number> {
  const loaded = opts.resolved ?? loadedUnit(n);
  if (!loaded) {
    process.stderr.write(`Failed to start ${unitName(n)}: Unit ${unitName(n)} not found.\n`);
    return 5;
  }
  const u = loaded.unit;
  if (loaded.stale && !opts.resolved) warnChanged(u.name);
  const s = readState(u.name);
  const running = !!s.supervisorPid && pidAlive(s.supervisorPid);
  if (s.state === 'active' && running) return 0;
  let job: string;
  if (s.state === 'activating' && running && s.job && !s.jobResult) {
    job = s.job; // a start job is already running: wait for it like systemctl does
  } else if (s.state === 'activating' && running) {
    return 0; // auto-restart in progress: no job to wait for
  } else {
    job = Math.random().toString(16).slice(2, 10);
    mkdirSync(LOG_DIR, { recursive: true });
    // the job is visible (and the unit "activating") before the supervisor even runs
    writeState(u.name, { state: 'activating', since: new Date().toISOString(), job });
    const child = spawn(process.execPath, [process.argv[1], '__supervise', u.name, job], {
      detached: true,
      stdio: 'ignore',
    });
    child.unref();
    const st = readState(u.name);
    if (st.job === job && !st.supervisorPid) writeState(u.name, { ...st, supervisorPid: child.pid });
  }
  if (opts.noBlock) return 0;
  const notify = isNotifyType(u);
  // Type=simple/exec: done once the main process runs (an immediate failure is still reported);
  // Type=notify: done on READY=1, or failed on exit / TimeoutStartSec (the supervisor enforces it)
  const deadline = notify ? Infinity : Date.now() + 5000;
  let res: JobResult | undefined;
  for (;;) {
    await sleep(50);
    const st = readState(u.name);
    if (st.job === job && st.jobResult) res = st.jobResult;
    else if (st.job !== job || st.state === 'inactive') res = 'canceled';
    else if (st.state === 'failed')
      res = 'resources'; // supervisor gone
    else if (Date.now() > deadline) res = 'timeout';
    if (!res) continue;
    if (res === 'done' && !notify) {
      await sleep(150);
      if (readState(u.name).state === 'failed') res = 'exit-code';
    }
    break;
  }
  if (res === 'done') return 0;
  if (res === 'canceled') process.stderr.write(`Job for ${u.name} canceled.\n`);
  else
    process.stderr.write(
      `Job for ${u.name} failed because ${JOB_FAILED_BECAUSE[res] ?? JOB_FAILED_BECAUSE['exit-code']}.\nSee "systemctl status ${u.name}" and "journalctl -xeu ${u.name}" for details.\n`,
    );
  return 1;
}

async function stop(n: string): Promise<number> {
  const name = unitName(n);
  const s = readState(name);
  if (s.supervisorPid && pidAlive(s.supervisorPid)) {
    process.kill(s.supervisorPid, 'SIGTERM');
    const deadline = Date.now() + 15_000;
    while (pidAlive(s.supervisorPid) && Date.now() < deadline) await sleep(50);
    if (pidAlive(s.supervisorPid)) process.kill(s.supervisorPid, 'SIGKILL');
  }
  const after = readState(name);
  if (after.state !== 'inactive' && after.state !== 'failed')
    writeState(name, { state: 'inactive', since: new Date().toISOString(), job: after.job, jobResult: 'canceled' });
  return 0;
}

function wantsLinks(u: Unit): string[] {
  return (u.wantedBy.length ? u.wantedBy : []).map((t) => join('/etc/systemd/system', `${t}.wants`, u.name));
}

function isEnabled(u: Unit): boolean {
  return wantsLinks(u).some((l) => existsSync(l)) || enabledByName(u.name);
}

function journalLines(units: string[]): string[] {
  const files = units.length
    ? units.map((n) => join(LOG_DIR, `${unitName(n)}.log`))
    : existsSync(LOG_DIR)
      ? readdirSync(LOG_DIR).map((f) => join(LOG_DIR, f))
      : [];
  const lines: string[] = [];
  for (const f of files) {
    try {
      lines.push(...readFileSync(f, 'utf8').split('\n').filter(Boolean));
    } catch {
      /* no log yet */
    }
  }
  return lines;
}

function statusText(u: Unit): string {
  const s = readState(u.name);
  const enabled = isEnabled(u) ? 'enabled' : 'disabled';
  const sub =
    s.state === 'active'
      ? 'running'
      : s.state === 'activating'
        ? s.mainPid
          ? 'start'
          : 'auto-restart'
        : s.state === 'failed'
          ? `Result: ${s.result ?? 'exit-code'}`
          : 'dead';
  const comm = s.mainPid
    ? (() => {
        try {
          return readFileSync(`/proc/${s.mainPid}/comm`, 'utf8').trim();
        } catch {
          return '';
        }
      })()
    : '';
  const out = [
    `${s.state === 'active' ? '●' : s.state === 'failed' ? '×' : '○'} ${u.name} - ${u.description}`,
    `     Loaded: loaded (${u.path}; ${enabled}; preset: enabled)`,
    ...(u.dropins.length ? [`    Drop-In: ${u.dropins.join(', ')}`] : []),
    `     Active: ${s.state} (${sub})${s.since ? ` since ${new Date(s.since).toUTCString()}` : ''}`,
    ...(s.mainPid && (s.state === 'active' || s.state === 'activating') ? [`   Main PID: ${s.mainPid} (${comm})`] : []),
    ...(s.statusText && s.state !== 'inactive' ? [`     Status: "${s.statusText}"`] : []),
    '',
    ...journalLines([u.name]).slice(-10),
  ];
  return out.join('\n') + '\n';
}

const PROPS = (u: Unit, s: State, stale: boolean): Record<string, string> => ({
  Id: u.name,
  Names: u.name,
  Description: u.description,
  Type: serviceType(u),
  NotifyAccess: notifyAccess(u),
  TimeoutStartUSec: fmtTimespan(timeoutStartMs(u)),
  LoadState: 'loaded',
  ActiveState: s.state,
  SubState:
    s.state === 'active'
      ? 'running'
      : s.state === 'activating'
        ? s.mainPid
          ? 'start'
          : 'auto-restart'
        : s.state === 'deactivating'
          ? 'stop-sigterm'
          : s.state === 'failed'
            ? 'failed'
            : 'dead',
  MainPID: String(s.state === 'active' || s.state === 'activating' ? (s.mainPid ?? 0) : 0),
  StatusText: s.state !== 'inactive' ? (s.statusText ?? '') : '',
  UnitFileState: isEnabled(u) ? 'enabled' : 'disabled',
  FragmentPath: u.path,
  DropInPaths: u.dropins.join(' '),
  NeedDaemonReload: stale ? 'yes' : 'no',
  ExecMainStartTimestamp: s.since ? new Date(s.since).toUTCString() : '',
  Result: s.result ?? 'success',
});

async function systemctl(argv: string[]): Promise<number> {
  const flags = argv.filter((a) => a.startsWith('-'));
  const args = argv.filter((a) => !a.startsWith('-'));
  const quiet = flags.includes('-q') || flags.includes('--quiet');
  const now = flags.includes('--now');
  const noBlock = flags.includes('--no-block');
  const [verb = 'list-units', ...units] = args;
  const props: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-p' || argv[i] === '--property') props.push(...(argv[i + 1] ?? '').split(','));
    else if (argv[i].startsWith('--property=')) props.push(...argv[i].slice(11).split(','));
  }
  const propUnits = units.filter((u) => !props.includes(u));
  switch (verb) {
    case '__supervise':
      await supervise(units[0], units[1]);
      return 0;
    case '__boot': {
      // boot loads every enabled unit; Type=notify units are not waited for (systemd's boot is parallel)
      daemonReload();
      const wants = '/etc/systemd/system/multi-user.target.wants';
      let rc = 0;
      if (existsSync(wants))
        for (const f of readdirSync(wants)) {
          const u = loadedUnit(f)?.unit;
          rc |= await start(f, { noBlock: !!u && isNotifyType(u) });
        }
      return rc;
    }
    case 'daemon-reload':
    case 'daemon-reexec':
      daemonReload();
      return 0;
    case 'reset-failed':
      for (const n of units)
        if (readState(unitName(n)).state === 'failed') writeState(unitName(n), { state: 'inactive', since: '' });
      return 0;
    case 'start':
    case 'stop':
    case 'restart':
    case 'try-restart':
    case 'reload-or-restart':
    case 'reload': {
      let rc = 0;
      for (const n of units) {
        if (verb === 'stop') {
          const l = readLoaded(unitName(n));
          if (l && pinned(l.name) && changedOnDisk(l)) warnChanged(l.name);
          rc |= await stop(n);
        } else if (verb === 'start') rc |= await start(n, { noBlock });
        else {
          if (verb === 'try-restart' && readState(unitName(n)).state !== 'active') continue;
          // the unit stays loaded across the restart: it keeps the definition it has now
          const resolved = loadedUnit(n);
          if (!resolved) {
            process.stderr.write(`Failed to ${verb} ${unitName(n)}: Unit ${unitName(n)} not found.\n`);
            rc |= 5;
            continue;
          }
          if (resolved.stale) warnChanged(resolved.unit.name);
          await stop(n);
          rc |= await start(n, { noBlock, resolved });
        }
      }
      return rc;
    }
    case 'is-active':
    case 'is-failed': {
      let ok = false;
      for (const n of units) {
        const s = readState(unitName(n)).state;
        if (!quiet) process.stdout.write(`${s}\n`);
        if (verb === 'is-active' ? s === 'active' : s === 'failed') ok = true;
      }
      return ok ? 0 : verb === 'is-active' ? 3 : 1;
    }
    case 'is-enabled': {
      let ok = false;
      for (const n of units) {
        const u = loadUnit(n);
        if (!u) {
          process.stderr.write(`Failed to get unit file state for ${unitName(n)}: No such file or directory\n`);
          continue;
        }
        const e = isEnabled(u);
        if (!quiet) process.stdout.write(`${e ? 'enabled' : 'disabled'}\n`);
        ok ||= e;
      }
      return ok ? 0 : 1;
    }
    case 'enable':
    case 'disable': {
      let rc = 0;
      for (const n of units) {
        const u = loadUnit(n);
        if (!u) {
          process.stderr.write(`Failed to ${verb} unit: Unit file ${unitName(n)} does not exist.\n`);
          rc = 1;
          continue;
        }
        for (const l of wantsLinks(u)) {
          if (verb === 'enable' && !existsSync(l)) {
            mkdirSync(join(l, '..'), { recursive: true });
            symlinkSync(u.path, l);
            if (!quiet) process.stderr.write(`Created symlink ${l} → ${u.path}.\n`);
          } else if (verb === 'disable' && existsSync(l)) {
            unlinkSync(l);
            if (!quiet) process.stderr.write(`Removed "${l}".\n`);
          }
        }
      }
      daemonReload(); // systemctl enable/disable reload the manager (no --no-reload here)
      if (now) for (const n of units) rc |= verb === 'enable' ? await start(n, { noBlock }) : await stop(n);
      return rc;
    }
    case 'status': {
      let rc = 0;
      for (const n of units) {
        const l = loadedUnit(n);
        if (!l) {
          process.stderr.write(`Unit ${unitName(n)} could not be found.\n`);
          rc = 4;
          continue;
        }
        process.stdout.write(statusText(l.unit));
        if (l.stale) warnChanged(l.unit.name);
        if (readState(l.unit.name).state !== 'active') rc = 3;
      }
      return rc;
    }
    case 'show': {
      for (const n of propUnits) {
        const l = loadedUnit(n);
        const s = readState(unitName(n));
        const all = l
          ? PROPS(l.unit, s, l.stale)
          : {
              Id: unitName(n),
              LoadState: 'not-found',
              ActiveState: 'inactive',
              SubState: 'dead',
              MainPID: '0',
              NeedDaemonReload: 'no',
            };
        const keys = props.length ? props : Object.keys(all);
        for (const k of keys) {
          const v = (all as Record<string, string>)[k] ?? '';
          process.stdout.write(flags.includes('--value') ? `${v}\n` : `${k}=${v}\n`);
        }
      }
      return 0;
    }
    case 'cat': {
      for (const n of units) {
        const u = loadUnit(n);
        if (!u) return 1;
        const l = readLoaded(u.name);
        if (l && pinned(u.name) && changedOnDisk(l))
          process.stdout.write(
            `# Warning: ${u.name} changed on disk, the version systemd has loaded is outdated.\n# This output shows the current version of the unit's original fragment and drop-in files.\n# If fragments or drop-ins were added or removed, they are not properly reflected in this output.\n# Run 'systemctl daemon-reload' to reload units.\n`,
          );
        process.stdout.write(`# ${u.path}\n${readFileSync(u.path, 'utf8')}`);
        for (const d of u.dropins) process.stdout.write(`\n# ${d}\n${readFileSync(d, 'utf8')}`);
      }
      return 0;
    }
    case 'kill': {
      const sigFlag = argv.find((a) => a.startsWith('--signal=') || a.startsWith('-s'));
      const sig = (sigFlag?.includes('=') ? sigFlag.split('=')[1] : argv[argv.indexOf('-s') + 1]) ?? 'SIGTERM';
      for (const n of units) {
        const s = readState(unitName(n));
        if (s.mainPid) process.kill(s.mainPid, (sig.startsWith('SIG') ? sig : `SIG${sig}`) as NodeJS.Signals);
      }
      return 0;
    }
    case 'list-units':
    case 'list-unit-files': {
      const names = new Set<string>();
      for (const d of UNIT_DIRS) {
        try {
          for (const f of readdirSync(d)) if (f.endsWith('.service')) names.add(f);
        } catch {
          /* none */
        }
      }
      for (const n of [...names].sort()) {
        const u = loadUnit(n);
        if (!u) continue;
        const s = readState(n);
        if (verb === 'list-units' && s.state === 'inactive' && !flags.includes('--all')) continue;
        process.stdout.write(
          verb === 'list-units'
            ? `${n} loaded ${s.state} ${s.state === 'active' ? 'running' : 'dead'} ${u.description}\n`
            : `${n} ${isEnabled(u) ? 'enabled' : 'disabled'} enabled\n`,
        );
      }
      return 0;
    }
    default:
      process.stderr.write(`Unknown command verb ${verb}.\n`);
      return 1;
  }
}

async function journalctl(argv: string[]): Promise<number> {
  const units: string[] = [];
  let lines = Infinity;
  let follow = false;
  let cat = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-u' || a === '--unit') units.push(argv[++i]);
    else if (a.startsWith('--unit=')) units.push(a.slice(7));
    else if (a.startsWith('-u') && a.length > 2) units.push(a.slice(2));
    else if (a === '-n' || a === '--lines') lines = Number(argv[++i]);
    else if (a.startsWith('--lines=')) lines = Number(a.slice(8));
    else if (/^-n\d+$/.test(a)) lines = Number(a.slice(2));
    else if (a === '-f' || a === '--follow') follow = true;
    else if (a === '-o' && argv[i + 1] === 'cat') {
      cat = true;
      i++;
    } else if (a === '--output=cat' || a === '-ocat') cat = true;
    else if (/^-[a-z]*e[a-z]*$/.test(a) && lines === Infinity) lines = 1000; // -e / -xe: jump to end
  }
  const fmt = (l: string): string => (cat ? l.replace(/^\w{3} \d\d \d\d:\d\d:\d\d \S+ [^:]+: /, '') : l);
  const all = journalLines(units);
  const shown = Number.isFinite(lines) ? all.slice(-lines) : all;
  if (!shown.length && !follow) process.stdout.write('-- No entries --\n');
  for (const l of shown) process.stdout.write(fmt(l) + '\n');
  if (!follow) return 0;
  let seen = all.length;
  for (;;) {
    await sleep(250);
    const now = journalLines(units);
    for (const l of now.slice(seen)) process.stdout.write(fmt(l) + '\n');
    seen = now.length;
  }
}

export async function main(): Promise<void> {
  const self = basename(process.argv[1] ?? 'systemctl');
  const argv = process.argv.slice(2);
  const rc = self.startsWith('journalctl') ? await journalctl(argv) : await systemctl(argv);
  if (argv[0] !== '__supervise') process.exit(rc);
}
