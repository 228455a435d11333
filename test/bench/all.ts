// `npm run bench`: every benchmark one after the other (bench:ssh, bench:snapshot, bench:switch, bench:health and
// bench:ui when test/bench/ui.ts exists), then their JSON files (test-results/bench-<name>.json,
// written by support.ts Results) merged into test-results/bench.json, and a markdown table for the
// README printed and written to test-results/bench.md. Never two labs at once: the benches run in
// sequence, each tearing its lab down before the next starts.
//
//   npm run bench                      all of them
//   npm run bench -- ssh snapshot      only these
//   npm run bench -- --merge-only      no runs: merge the JSON files already there (e.g. from separate
//                                      runs at KES_BENCH_MB=250 and 500; rename one to keep both)
//
// Exits 1 when a bench failed (the others still run and the table shows what there is).
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import { fmtValue, machineLine, RESULTS_DIR, type BenchFile } from './support';

const ROOT = resolve(__dirname, '../..');
const ALL = ['ssh', 'snapshot', 'switch', 'health', 'ui'];

function runOne(name: string): Promise<number> {
  const script = join(__dirname, `${name}.ts`);
  console.log(`\n===== bench:${name} =====`);
  return new Promise((res) => {
    // each bench runs with the app's own V8 heap option (package.json's bench scripts pass it here)
    const heap = process.execArgv.filter((a) => a.startsWith('--initial-old-space-size'));
    const child = spawn(process.execPath, [...heap, '--import', 'tsx', script], { cwd: ROOT, stdio: 'inherit' });
    child.on('exit', (code, signal) => res(code ?? (signal ? 1 : 0)));
  });
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function table(files: BenchFile[]): string {
  const rows = ['| figure | value | aim | met | date | machine |', '| --- | --- | --- | --- | --- | --- |'];
  for (const f of files) {
    const date = f.date.slice(0, 16).replace('T', ' ');
    const m = `${machineLine(f.machine)}; load ${f.machine.loadAtStart} at start`;
    for (const fig of f.figures) {
      const met = fig.met === undefined ? '–' : fig.met ? 'yes' : '**no**';
      rows.push(
        `| ${cell(fig.name)}${fig.detail ? `<br><small>${cell(fig.detail)}</small>` : ''} | ${cell(fmtValue(fig.value, fig.unit))} | ${cell(fig.aim ?? '–')} | ${met} | ${date} UTC | ${cell(m)} |`,
      );
    }
  }
  return rows.join('\n') + '\n';
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const mergeOnly = args.includes('--merge-only');
  const asked = args.filter((a) => !a.startsWith('--'));
  const names = (asked.length ? asked : ALL).filter((n) => {
    if (existsSync(join(__dirname, `${n}.ts`))) return true;
    if (asked.length) throw new Error(`no such bench: test/bench/${n}.ts`);
    return false; // bench:ui only where its script exists
  });
  const started = Date.now();
  const failed: string[] = [];
  if (!mergeOnly)
    for (const n of names) {
      const code = await runOne(n);
      if (code !== 0) failed.push(`${n} (exit ${code})`);
    }

  // Merge: in a run, only the files this run wrote (a stale file from an earlier run would pass
  // for a fresh figure); with --merge-only, every bench-*.json there is.
  const files: BenchFile[] = [];
  await fs.mkdir(RESULTS_DIR, { recursive: true });
  for (const f of (await fs.readdir(RESULTS_DIR)).sort()) {
    if (!/^bench-.+\.json$/.test(f)) continue;
    const path = join(RESULTS_DIR, f);
    if (!mergeOnly && (await fs.stat(path)).mtimeMs < started) continue;
    try {
      const data = JSON.parse(await fs.readFile(path, 'utf8')) as BenchFile;
      if (!Array.isArray(data.figures) || !data.machine) throw new Error('no figures/machine');
      files.push(data);
    } catch (e) {
      console.error(`skipped ${f}: ${(e as Error).message}`);
    }
  }
  const order = (b: string) => (ALL.indexOf(b) < 0 ? ALL.length : ALL.indexOf(b));
  files.sort((a, b) => order(a.bench) - order(b.bench) || a.date.localeCompare(b.date));
  const merged = {
    date: new Date(started).toISOString(),
    benches: files.map((f) => ({ bench: f.bench, date: f.date, machine: f.machine, env: f.env })),
    figures: files.flatMap((f) => f.figures.map((fig) => ({ bench: f.bench, date: f.date, ...fig }))),
    failed,
  };
  await fs.writeFile(join(RESULTS_DIR, 'bench.json'), JSON.stringify(merged, null, 2) + '\n');
  const md = table(files);
  await fs.writeFile(join(RESULTS_DIR, 'bench.md'), md);
  console.log(`\n${md}`);
  console.log(`wrote ${join(RESULTS_DIR, 'bench.json')} and bench.md`);
  if (failed.length) {
    console.error(`failed: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
