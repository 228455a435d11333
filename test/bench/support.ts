// What the benchmarks share: time formatting, timing a step, running the whole bench bounded (it
// gives up after 20 minutes; the lab's exit handler tears the lab down on every exit), fair rounds
// (app and baselines alternate order, ≥ 3 rounds, min/median/max and the ratio of medians), a
// results collector that writes `test-results/bench-<name>.json`, the machine's description, an
// RSS sampler and CPU accounting for the app (this process) and for child commands.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs, readdirSync, readFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join, resolve } from 'node:path';

export const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
export const MiB = 1048576;
export const GB = 1e9;

export async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const v = await fn();
  return [performance.now() - t0, v];
}

/** Run `main` and exit: 0 when it finished, 1 when it threw, 2 when it ran out of time. */
export function runBench(main: () => Promise<void>, limitMs = 20 * 60_000): void {
  const giveUp = setTimeout(() => {
    console.error(`bench: gave up after ${Math.round(limitMs / 60_000)} minutes`);
    process.exit(2);
  }, limitMs);
  giveUp.unref();
  main().then(
    () => process.exit(0),
    (e: Error) => {
      console.error(e.stack ?? e.message);
      process.exit(1);
    },
  );
}

// ---- rounds ------------------------------------------------------------------------------------

/** How many rounds: env KES_BENCH_ROUNDS, never fewer than `min` (3 for a fair comparison). */
export function benchRounds(min = 3, fallback = min): number {
  const n = Number(process.env.KES_BENCH_ROUNDS ?? fallback);
  return Math.max(min, Number.isFinite(n) ? Math.floor(n) : fallback);
}

export interface Stats {
  min: number;
  median: number;
  max: number;
  samples: number[];
}

export function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { min: s[0], median, max: s[s.length - 1], samples };
}

/** One contender's run: the measured value (ms unless the caller says otherwise), and words for the log. */
export type Measured = number | { value: number; detail?: string };

export interface Contender {
  name: string;
  run: (round: number) => Promise<Measured>;
}

export interface RoundsResult {
  /** Per contender, in the order given (the app first). */
  stats: Record<string, Stats>;
  /** median(app) / median(baseline) per baseline: below 1 the app measured less. */
  ratio: Record<string, number>;
  rounds: number;
}

/**
 * Run the app and its baselines `rounds` times (≥ 3 unless the caller asks for fewer), alternating
 * the order: odd rounds app first then the baselines, even rounds the reverse (last baseline first,
 * app last), so warm caches and a neighbour's load do not favour one side. The first contender is
 * the app.
 */
export async function runRounds(
  contenders: Contender[],
  opts: { rounds?: number; label?: string; log?: (line: string) => void } = {},
): Promise<RoundsResult> {
  const n = opts.rounds ?? benchRounds();
  const log = opts.log ?? ((l: string) => console.log(l));
  const samples = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  for (let r = 1; r <= n; r++) {
    const order = r % 2 ? contenders : [...contenders].reverse();
    const parts: string[] = [];
    for (const c of order) {
      const m = await c.run(r);
      const value = typeof m === 'number' ? m : m.value;
      samples.get(c.name)!.push(value);
      parts.push(`${c.name} ${typeof m === 'number' ? secs(m) : (m.detail ?? String(value))}`);
    }
    log(`  ${opts.label ? opts.label + ' ' : ''}round ${r}/${n}: ${parts.join('; ')}`);
  }
  const st: Record<string, Stats> = {};
  for (const c of contenders) st[c.name] = stats(samples.get(c.name)!);
  const app = st[contenders[0].name].median;
  const ratio: Record<string, number> = {};
  for (const c of contenders.slice(1)) ratio[c.name] = app / st[c.name].median;
  return { stats: st, ratio, rounds: n };
}

/** "1.23 / 1.45 / 1.80 s" (min / median / max) for a Stats in ms. */
export const spread = (s: Stats, fmt: (v: number) => string = secs) =>
  `${fmt(s.min)} / ${fmt(s.median)} / ${fmt(s.max)} (min / median / max of ${s.samples.length})`;

// ---- results -----------------------------------------------------------------------------------

export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** The aim in words, e.g. "≥ 10× (plain ssh / pool)". */
  aim?: string;
  /** Whether the aim is met; undefined when the figure has no aim. */
  met?: boolean;
  detail?: string;
  /** min/median/max per contender when the figure came from rounds. */
  rounds?: Record<string, Omit<Stats, 'samples'> & { samples: number[] }>;
}

export interface Machine {
  cpu: string;
  cores: number;
  ramGB: number;
  kernel: string;
  os: string;
  /** 1-minute load average when the bench started: another engineer may share the cores. */
  loadAtStart: number;
  /**
   * One core's sha256 speed (MB/s, 64 MB hashed in this process) and the CPU's crypto features:
   * "2 cores, Intel Xeon" says little, and the snapshot figures move with both (the app's stream is
   * TLS, AES-GCM and one sha256 over every byte), so runs on two machines can be told apart.
   */
  sha256MBps?: number;
  cpuFlags?: string[];
}

/** sha256 throughput of one core, MB/s (best of 3 × 64 MB: the first pass warms up). */
export function sha256Speed(): number {
  const buf = Buffer.alloc(64 * MiB, 0x5a);
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    createHash('sha256').update(buf).digest();
    best = Math.min(best, performance.now() - t0);
  }
  return Math.round(64 / (best / 1000));
}

/** The crypto-relevant CPU features /proc/cpuinfo lists (Linux), e.g. ["aes", "sha_ni", "avx2"]. */
function cryptoFlags(): string[] {
  try {
    const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1].trim().split(/\s+/) ?? [];
    return ['aes', 'vaes', 'pclmulqdq', 'sha_ni', 'avx2', 'avx512f'].filter((f) => flags.includes(f));
  } catch {
    return [];
  }
}

export function machine(): Machine {
  let os = 'Linux';
  try {
    os = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os;
  } catch {
    /* not Linux, or no os-release */
  }
  const c = cpus();
  return {
    cpu: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    ramGB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    os,
    loadAtStart: Math.round(loadavg()[0] * 100) / 100,
    sha256MBps: sha256Speed(),
    cpuFlags: cryptoFlags(),
  };
}

/** One line: "Intel Xeon …, 2 cores, 24 GB, Debian GNU/Linux 12, kernel 6.1.0; sha256 2000 MB/s on one core (aes sha_ni)". */
export const machineLine = (m: Machine) =>
  `${m.cpu}, ${m.cores} cores, ${m.ramGB} GB, ${m.os}, kernel ${m.kernel}` +
  (m.sha256MBps ? `; sha256 ${m.sha256MBps} MB/s on one core` : '') +
  (m.cpuFlags?.length ? ` (${m.cpuFlags.join(' ')})` : '');

export const RESULTS_DIR = resolve(__dirname, '../../test-results');

export interface BenchFile {
  bench: string;
  date: string;
  machine: Machine;
  env: Record<string, string>;
  figures: Figure[];
}

/** Collects a bench's figures and writes them to `test-results/bench-<name>.json`. */
export class Results {
  readonly figures: Figure[] = [];
  private readonly started = new Date();
  private readonly host = machine();

  constructor(readonly bench: string) {}

  add(f: Figure): Figure {
    this.figures.push(f);
    const met = f.met === undefined ? '' : f.met ? ' — aim met' : ' — AIM NOT MET';
    console.log(`» ${f.name}: ${fmtValue(f.value, f.unit)}${f.aim ? ` (aim ${f.aim})` : ''}${met}`);
    return f;
  }

  async write(): Promise<string> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (k.startsWith('KES_BENCH_') && v !== undefined) env[k] = v;
    const file: BenchFile = {
      bench: this.bench,
      date: this.started.toISOString(),
      machine: this.host,
      env,
      figures: this.figures,
    };
    await fs.mkdir(RESULTS_DIR, { recursive: true });
    const path = join(RESULTS_DIR, `bench-${this.bench}.json`);
    await fs.writeFile(path, JSON.stringify(file, null, 2) + '\n');
    console.log(`wrote ${path}`);
    return path;
  }
}

export function fmtValue(v: number, unit: string): string {
  if (unit === 'ms') return v < 1000 ? `${v.toFixed(1)} ms` : secs(v);
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return `${v.toFixed(digits)}${unit === '×' ? '×' : ` ${unit}`}`;
}

/** Stats for the JSON file (sample values rounded to 0.1). */
export function roundsJson(r: RoundsResult): Figure['rounds'] {
  const out: NonNullable<Figure['rounds']> = {};
  const r1 = (v: number) => Math.round(v * 10) / 10;
  for (const [k, s] of Object.entries(r.stats))
    out[k] = { min: r1(s.min), median: r1(s.median), max: r1(s.max), samples: s.samples.map(r1) };
  return out;
}

// ---- memory and CPU ------------------------------------------------------------------------------

/** Samples this process's RSS every `everyMs` (default 25 ms) between start() and stop(). */
export class RssSampler {
  private timer: NodeJS.Timeout | null = null;
  peak = 0;
  count = 0;

  start(everyMs = 25): this {
    this.peak = process.memoryUsage.rss();
    this.count = 1;
    this.timer = setInterval(() => {
      this.peak = Math.max(this.peak, process.memoryUsage.rss());
      this.count++;
    }, everyMs);
    return this;
  }

  /** Peak RSS in bytes (the last sample included). */
  stop(): number {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.peak = Math.max(this.peak, process.memoryUsage.rss());
    return this.peak;
  }
}

/** This process's idle RSS: the median of samples over `ms` (default 2 s) with nothing running. */
export async function idleRss(ms = 2000, everyMs = 50): Promise<number> {
  const xs: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    xs.push(process.memoryUsage.rss());
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return stats(xs).median;
}

/** CPU seconds (user + system) this process spent in `fn`. */
export async function appCpu<T>(
  fn: () => Promise<T>,
): Promise<{ cpuS: number; userS: number; sysS: number; ms: number; value: T }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const c = process.cpuUsage(c0);
  return {
    cpuS: (c.user + c.system) / 1e6,
    userS: c.user / 1e6,
    sysS: c.system / 1e6,
    ms: performance.now() - t0,
    value,
  };
}

/**
 * Run `command` (a shell line) through bash and return the CPU seconds (user + system) of its
 * children, waited-for descendants included (scp's ssh), from bash's `times`.
 */
export async function childCpu(
  command: string,
  timeoutMs = 600_000,
): Promise<{ cpuS: number; userS: number; sysS: number; ms: number }> {
  const t0 = performance.now();
  const out = await new Promise<string>((res, rej) =>
    execFile(
      'bash',
      ['-c', `set -e; ${command}; times`],
      { timeout: timeoutMs, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => (err ? rej(new Error(`${command}: ${err.message} ${stderr}`)) : res(stdout)),
    ),
  );
  const ms = performance.now() - t0;
  // `times`: the shell's own user/sys, then its children's: "0m1.234s 0m0.567s".
  const lines = out.trim().split('\n');
  const kids = lines[lines.length - 1].match(/(\d+)m([\d.]+)s/g) ?? [];
  const [user, sys] = kids.map((t) => {
    const m = /(\d+)m([\d.]+)s/.exec(t)!;
    return Number(m[1]) * 60 + Number(m[2]);
  });
  return { cpuS: user + sys, userS: user, sysS: sys, ms };
}

/**
 * With KES_BENCH_PROFILE=FILE, V8's CPU profiler runs from here until the returned `stop()`, which
 * writes FILE (open it in Chrome DevTools); without it both do nothing.
 */
export async function cpuProfile(): Promise<{ stop: (note?: string) => Promise<void> }> {
  const file = process.env.KES_BENCH_PROFILE;
  if (!file) return { stop: async () => undefined };
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return {
    stop: async (note = '') => {
      const { profile } = await session.post('Profiler.stop');
      await fs.writeFile(file, JSON.stringify(profile));
      session.disconnect();
      console.log(`wrote ${file}${note}`);
    },
  };
}

/**
 * Where the whole box's CPU goes while something runs (Linux /proc): the lab's nodes are network
 * namespaces on this machine, so etcd, sshd, the control planes and the app all show up here. A
 * process that starts and ends inside the window (etcdctl, scp) shows up as its parent's children
 * once reaped; `busyCores` counts everything.
 */
export class BoxCpu {
  private readonly hz = 100; // USER_HZ: 100 on every Linux architecture the lab runs on
  private t0 = 0;
  private total0 = { busy: 0, all: 0 };
  private procs0 = new Map<number, { comm: string; ticks: number }>();

  start(): this {
    this.t0 = performance.now();
    this.total0 = BoxCpu.total();
    this.procs0 = BoxCpu.procs();
    return this;
  }

  /** Cores busy on average, and the commands that used the most CPU (cores, averaged over the window). */
  stop(top = 6): { busyCores: number; byCommand: [string, number][] } {
    const secs = (performance.now() - this.t0) / 1000;
    const t1 = BoxCpu.total();
    const busyCores = ((t1.busy - this.total0.busy) / (t1.all - this.total0.all || 1)) * cpus().length;
    const by = new Map<string, number>();
    for (const [pid, p] of BoxCpu.procs()) {
      const used = p.ticks - (this.procs0.get(pid)?.ticks ?? 0);
      if (used > 0) by.set(p.comm, (by.get(p.comm) ?? 0) + used / this.hz / secs);
    }
    return { busyCores, byCommand: [...by].sort((a, b) => b[1] - a[1]).slice(0, top) };
  }

  static line(r: { busyCores: number; byCommand: [string, number][] }): string {
    return `box ${r.busyCores.toFixed(2)} of ${cpus().length} cores busy (${r.byCommand.map(([c, v]) => `${c} ${v.toFixed(2)}`).join(', ')})`;
  }

  private static total(): { busy: number; all: number } {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const all = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: all - f[3] - f[4], all }; // idle and iowait are not busy
  }

  private static procs(): Map<number, { comm: string; ticks: number }> {
    const out = new Map<number, { comm: string; ticks: number }>();
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const s = readFileSync(`/proc/${d}/stat`, 'utf8');
        const close = s.lastIndexOf(')');
        const comm = s.slice(s.indexOf('(') + 1, close);
        const f = s.slice(close + 2).split(' ');
        // fields after the comm: state=0 … utime=11 stime=12; cutime=13 cstime=14 are its reaped
        // children's (etcdctl under the session's shell, scp under the bench), kept apart
        out.set(Number(d), { comm, ticks: +f[11] + +f[12] });
        out.set(-Number(d), { comm: `${comm}'s children`, ticks: +f[13] + +f[14] });
      } catch {
        /* gone meanwhile */
      }
    }
    return out;
  }
}
