// systemctl / journalctl stand-in for lab hosts (installed as /usr/local/bin/systemctl and
// /usr/local/bin/journalctl, and bind-mounted over /usr/bin/systemctl inside the host). Hosts have no
// systemd (sshd is PID 1), yet the app writes units and runs systemctl like on a real server, so:
// - units are read from /etc/systemd/system, /run/systemd/system, /lib/systemd/system (+ <unit>.d/*.conf
//   drop-ins) every time (daemon-reload is accepted and does nothing);
// - `start` runs a detached supervisor (this script, `__supervise`) that runs ExecStartPre, then
//   ExecStart through /bin/sh (so $VAR / ${VAR} from Environment= and EnvironmentFile= expand), honours
//   User=, WorkingDirectory=, Restart=/RestartSec=, and writes the output with journal-like prefixes to
//   /var/log/journal-lab/<unit>.log; state lives in /run/systemd-shim/<unit>.json;
// - `stop` signals the supervisor, which stops the main process group (SIGTERM, SIGKILL after 10 s);
// - enable/disable manage the <target>.wants symlinks like systemd; `__boot` (run by the host's init)
//   starts everything wanted by multi-user.target.
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  writeSync,
  lstatSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';

const UNIT_DIRS = ['/etc/systemd/system', '/run/systemd/system', '/lib/systemd/system', '/usr/lib/systemd/system'];
const STATE_DIR = '/run/systemd-shim';
const LOG_DIR = '/var/log/journal-lab';

interface Unit {
  name: string;
  path: string;
  dropins: string[];
  description: string;
  service: Map<string, string[]>; // key -> values in order (empty value resets list keys)
  wantedBy: string[];
}

interface State {
  state: 'activating' | 'active' | 'deactivating' | 'inactive' | 'failed';
  supervisorPid?: number;
  mainPid?: number;
  since: string;
  result?: string;
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

export function loadUnit(n: string): Unit | undefined {
  const name = unitName(n);
  const path = UNIT_DIRS.map((d) => join(d, name)).find((p) => existsSync(p));
  if (!path) return undefined;
  let realPath = path;
  try {
    if (lstatSync(path).isSymbolicLink() && readlinkSync(path) === '/dev/null') return undefined; // masked
    realPath = path;
  } catch {
    /* ignore */
  }
  const prefix = name.replace(/\.service$/, '');
  const spec = (s: string): string =>
    s
      .replace(/%%/g, '\0')
      .replace(/%[pN]/g, prefix)
      .replace(/%n/g, name)
      .replace(/%i/g, prefix.split('@')[1] ?? '')
      .replace(/%H/g, hostname())
      .replace(/\0/g, '%');
  const unit: Unit = { name, path: realPath, dropins: [], description: prefix, service: new Map(), wantedBy: [] };
  parseInto(readFileSync(realPath, 'utf8'), unit, spec);
  const dropins: string[] = [];
  for (const d of UNIT_DIRS) {
    const dd = join(d, `${name}.d`);
    try {
      for (const f of readdirSync(dd)) if (f.endsWith('.conf')) dropins.push(join(dd, f));
    } catch {
      /* none */
    }
  }
  dropins.sort((a, b) => basename(a).localeCompare(basename(b)));
  for (const f of dropins) parseInto(readFileSync(f, 'utf8'), unit, spec);
  unit.dropins = dropins;
  return unit;
}

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
      return { state: 'failed', since: s.since, result: 'supervisor-gone' };
    }
    return s;
  } catch {
    return { state: 'inactive', since: '' };
  }
}

function writeState(name: string, s: State): void {
  mkdirSync(STATE_DIR, { recursive: true });
  const tmp = statePath(name) + '.tmp';
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

/** The long-running part: one per started unit. */
async function supervise(n: string): Promise<void> {
  const u = loadUnit(n);
  if (!u) process.exit(4);
  const name = u.name;
  process.title = `systemd-shim ${name}`;
  mkdirSync(LOG_DIR, { recursive: true });
  const logFd = openSync(join(LOG_DIR, `${name}.log`), 'a');
  const log = (pid: number | undefined, text: string): void => {
    for (const l of text.split('\n')) if (l.length) writeSync(logFd, journalPrefix(name, pid) + l + '\n');
  };
  const env = unitEnv(u);
  const user = u.service.get('User')?.at(-1);
  const ids = user ? lookupUser(user) : undefined;
  if (ids) {
    env.HOME = ids.home;
    env.USER = user;
  }
  const cwd =
    u.service.get('WorkingDirectory')?.at(-1)?.replace(/^-/, '') ??
    (ids?.home && existsSync(ids.home) ? ids.home : '/');
  const restart = u.service.get('Restart')?.at(-1) ?? 'no';
  const restartSec = parseFloat(u.service.get('RestartSec')?.at(-1) ?? '0.1') * 1000;
  const since = new Date().toISOString();
  let stopping = false;
  let current: ReturnType<typeof spawn> | undefined;
  const runCmd = (line: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
    new Promise((resolve) => {
      const cmd = line.replace(/^[-@+!:]+/, '');
      const child = spawn('/bin/sh', ['-c', `exec ${cmd}`], {
        env,
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
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    writeState(name, { state: 'deactivating', supervisorPid: process.pid, mainPid: current?.pid, since });
    const pid = current?.pid;
    if (pid && pidAlive(pid)) {
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      const deadline = Date.now() + 10_000;
      while (pidAlive(pid) && Date.now() < deadline) await sleep(50);
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  writeState(name, { state: 'activating', supervisorPid: process.pid, since });
  log(process.pid, `Starting ${name} - ${u.description}...`);
  for (const pre of u.service.get('ExecStartPre') ?? []) {
    const r = await runCmd(pre);
    if (r.code !== 0 && !pre.startsWith('-')) {
      log(process.pid, `${name}: Control process exited, code=exited, status=${r.code}/FAILURE`);
      writeState(name, { state: 'failed', since: new Date().toISOString(), result: 'exit-code' });
      process.exit(1);
    }
  }
  const exec = (u.service.get('ExecStart') ?? []).at(-1);
  if (!exec) {
    writeState(name, { state: 'failed', since: new Date().toISOString(), result: 'no-exec' });
    process.exit(1);
  }
  for (;;) {
    const p = runCmd(exec);
    writeState(name, {
      state: 'active',
      supervisorPid: process.pid,
      mainPid: current?.pid,
      since: new Date().toISOString(),
    });
    log(process.pid, `Started ${name} - ${u.description}.`);
    const r = await p;
    const clean = r.code === 0 || (stopping && (r.signal === 'SIGTERM' || r.code === 143));
    if (stopping) {
      log(process.pid, `${name}: Deactivated successfully.`);
      writeState(name, { state: 'inactive', since: new Date().toISOString(), result: 'success' });
      process.exit(0);
    }
    log(
      process.pid,
      `${name}: Main process exited, code=${r.signal ? 'killed' : 'exited'}, status=${r.signal ?? r.code}`,
    );
    const again =
      restart === 'always' || (restart === 'on-failure' && !clean) || (restart === 'on-abnormal' && !!r.signal);
    if (!again) {
      writeState(name, {
        state: clean ? 'inactive' : 'failed',
        since: new Date().toISOString(),
        result: clean ? 'success' : 'exit-code',
      });
      process.exit(0);
    }
    writeState(name, {
      state: 'activating',
      supervisorPid: process.pid,
      since: new Date().toISOString(),
      result: 'exit-code',
    });
    log(process.pid, `${name}: Scheduled restart job.`);
    await sleep(restartSec);
    if (stopping) {
      writeState(name, { state: 'inactive', since: new Date().toISOString(), result: 'success' });
      process.exit(0);
    }
  }
}

async function start(n: string): Promise<number> {
  const u = loadUnit(n);
  if (!u) {
    process.stderr.write(`Failed to start ${unitName(n)}: Unit ${unitName(n)} not found.\n`);
    return 5;
  }
  const s = readState(u.name);
  if ((s.state === 'active' || s.state === 'activating') && s.supervisorPid && pidAlive(s.supervisorPid)) return 0;
  mkdirSync(LOG_DIR, { recursive: true });
  const child = spawn(process.execPath, [process.argv[1], '__supervise', u.name], { detached: true, stdio: 'ignore' });
  child.unref();
  // like Type=simple/notify: return once the main process runs; report an immediate failure
  const deadline = Date.now() + 5000;
  for (;;) {
    await sleep(50);
    const st = readState(u.name);
    if (st.state === 'active' && st.mainPid) {
      await sleep(150);
      const st2 = readState(u.name);
      if (st2.state === 'failed') break;
      return 0;
    }
    if (st.state === 'failed' || Date.now() > deadline) break;
  }
  process.stderr.write(
    `Job for ${u.name} failed because the control process exited with error code.\nSee "systemctl status ${u.name}" and "journalctl -xeu ${u.name}" for details.\n`,
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
    writeState(name, { state: 'inactive', since: new Date().toISOString() });
  return 0;
}

function wantsLinks(u: Unit): string[] {
  return (u.wantedBy.length ? u.wantedBy : []).map((t) => join('/etc/systemd/system', `${t}.wants`, u.name));
}

function isEnabled(u: Unit): boolean {
  return (
    wantsLinks(u).some((l) => existsSync(l)) ||
    readdirSync('/etc/systemd/system').some(
      (d) => d.endsWith('.wants') && existsSync(join('/etc/systemd/system', d, u.name)),
    )
  );
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
  const sub = s.state === 'active' ? 'running' : s.state === 'failed' ? `Result: ${s.result ?? 'exit-code'}` : 'dead';
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
    ...(s.mainPid && s.state === 'active' ? [`   Main PID: ${s.mainPid} (${comm})`] : []),
    '',
    ...journalLines([u.name]).slice(-10),
  ];
  return out.join('\n') + '\n';
}

const PROPS = (u: Unit, s: State): Record<string, string> => ({
  Id: u.name,
  Names: u.name,
  Description: u.description,
  LoadState: 'loaded',
  ActiveState: s.state,
  SubState: s.state === 'active' ? 'running' : s.state === 'failed' ? 'failed' : 'dead',
  MainPID: String(s.state === 'active' ? (s.mainPid ?? 0) : 0),
  UnitFileState: isEnabled(u) ? 'enabled' : 'disabled',
  FragmentPath: u.path,
  DropInPaths: u.dropins.join(' '),
  ExecMainStartTimestamp: s.since ? new Date(s.since).toUTCString() : '',
  Result: s.result ?? 'success',
});

async function systemctl(argv: string[]): Promise<number> {
  const flags = argv.filter((a) => a.startsWith('-'));
  const args = argv.filter((a) => !a.startsWith('-'));
  const quiet = flags.includes('-q') || flags.includes('--quiet');
  const now = flags.includes('--now');
  const [verb = 'list-units', ...units] = args;
  const props: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-p' || argv[i] === '--property') props.push(...(argv[i + 1] ?? '').split(','));
    else if (argv[i].startsWith('--property=')) props.push(...argv[i].slice(11).split(','));
  }
  const propUnits = units.filter((u) => !props.includes(u));
  switch (verb) {
    case '__supervise':
      await supervise(units[0]);
      return 0;
    case '__boot': {
      const wants = '/etc/systemd/system/multi-user.target.wants';
      let rc = 0;
      if (existsSync(wants)) for (const f of readdirSync(wants)) rc |= await start(f);
      return rc;
    }
    case 'daemon-reload':
    case 'daemon-reexec':
    case 'reset-failed':
      if (verb === 'reset-failed')
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
        if (verb === 'stop') rc |= await stop(n);
        else if (verb === 'start') rc |= await start(n);
        else {
          if (verb === 'try-restart' && readState(unitName(n)).state !== 'active') continue;
          await stop(n);
          rc |= await start(n);
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
        if (now) rc |= verb === 'enable' ? await start(n) : await stop(n);
      }
      return rc;
    }
    case 'status': {
      let rc = 0;
      for (const n of units) {
        const u = loadUnit(n);
        if (!u) {
          process.stderr.write(`Unit ${unitName(n)} could not be found.\n`);
          rc = 4;
          continue;
        }
        process.stdout.write(statusText(u));
        if (readState(u.name).state !== 'active') rc = 3;
      }
      return rc;
    }
    case 'show': {
      for (const n of propUnits) {
        const u = loadUnit(n);
        const s = readState(unitName(n));
        const all = u
          ? PROPS(u, s)
          : { Id: unitName(n), LoadState: 'not-found', ActiveState: 'inactive', SubState: 'dead', MainPID: '0' };
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
