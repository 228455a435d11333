// `npm run bench:ssh`: why the pool exists. N sequential `true` (default 50) over one pooled
// connection, against two baselines: the plain OpenSSH client (a full TCP + key exchange + auth
// each run) and OpenSSH with connection multiplexing (ControlMaster=auto + ControlPath +
// ControlPersist, the master started before timing, like the pool's warm connection) — what a
// power user would script. Rounds alternate the order (support.ts runRounds, ≥ 3, env
// KES_BENCH_ROUNDS). Aims (issue 12): ≥ 10× plain ssh, ≥ 1.0× multiplexed OpenSSH (ratio of medians).
// Runs against the test sshd fixture on loopback as a throwaway user whose login shell reads no rc
// files, so we time SSH and not somebody's ~/.bashrc (root's here starts pyenv: ~80 ms per command
// on either side). Needs root (it starts sshd and creates the user). No lab. Writes
// test-results/bench-ssh.json. Env: KES_BENCH_SSH_N (commands per round, default 50).
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { testAccounts } from '../integration/fixtures/accounts';
import { makeKey } from '../integration/fixtures/keys';
import { makePool, target, tempDir, trustSshd } from '../integration/fixtures/harness';
import { run } from '../integration/fixtures/procs';
import { startSshd } from '../integration/fixtures/sshd';
import { Results, roundsJson, runBench, runRounds, spread } from './support';

const N = Number(process.env.KES_BENCH_SSH_N ?? 50);
const USER = 'kesbench';

async function main(): Promise<void> {
  const results = new Results('ssh');
  const dir = await tempDir('kes-bench-');
  const accounts = testAccounts();
  const sshd = await startSshd();
  const h = await makePool(dir);
  let muxArgs: string[] = [];
  try {
    await accounts.ensure(USER, undefined, '/bin/sh');
    const key = await makeKey(dir, 'id_bench');
    await sshd.addAuthorizedKey(key.publicKey);
    await trustSshd(h.hostKeys, sshd);
    const knownHosts = join(dir, 'known_hosts');
    const pub = (await fs.readFile(sshd.hostKeyPath + '.pub', 'utf8')).split(' ').slice(0, 2).join(' ');
    await fs.writeFile(knownHosts, `[${sshd.host}]:${sshd.port} ${pub}\n`);
    const t = target(sshd, { method: 'key-file', keyPath: key.path }, { user: USER });

    const common = [
      '-F',
      '/dev/null',
      '-i',
      key.path,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-p',
      String(sshd.port),
    ];
    const plainArgs = [...common, `${USER}@${sshd.host}`, 'true'];
    muxArgs = [
      ...common,
      '-o',
      'ControlMaster=auto',
      '-o',
      `ControlPath=${join(dir, 'cm-%C')}`,
      '-o',
      'ControlPersist=600',
      `${USER}@${sshd.host}`,
      'true',
    ];

    // Warm-up (not timed): the pool's handshake, the multiplexing master (ControlPersist keeps it
    // in the background), and the OpenSSH binary's page cache.
    await h.pool.exec(t, 'true');
    await run('ssh', muxArgs);
    await run('ssh', plainArgs);

    const many = async (one: () => Promise<unknown>) => {
      const t0 = performance.now();
      for (let i = 0; i < N; i++) await one();
      return performance.now() - t0;
    };
    const perCmd = (ms: number) => `${ms.toFixed(0)} ms (${(ms / N).toFixed(1)} ms each)`;
    const r = await runRounds([
      {
        name: 'pool',
        run: async () => {
          const ms = await many(async () => {
            const res = await h.pool.exec(t, 'true');
            if (res.code !== 0) throw new Error(`pool: true exited ${res.code}`);
          });
          return { value: ms, detail: perCmd(ms) };
        },
      },
      {
        name: 'ssh',
        run: async () => {
          const ms = await many(() => run('ssh', plainArgs));
          return { value: ms, detail: perCmd(ms) };
        },
      },
      {
        name: 'ssh-mux',
        run: async () => {
          const ms = await many(() => run('ssh', muxArgs));
          return { value: ms, detail: perCmd(ms) };
        },
      },
    ]);
    const stats = h.pool.stats();
    if (stats.connects !== 1) throw new Error(`the pool connected ${stats.connects} times, not once`);
    const each = (ms: number) => `${(ms / N).toFixed(1)} ms`;
    console.log(`${N} × true, per command:`);
    console.log(`  pool (one ssh2 connection):          ${spread(r.stats.pool, each)}`);
    console.log(`  ssh user@host true (plain OpenSSH):  ${spread(r.stats.ssh, each)}`);
    console.log(`  ssh with ControlMaster/ControlPersist: ${spread(r.stats['ssh-mux'], each)}`);
    const vsPlain = 1 / r.ratio.ssh;
    const vsMux = 1 / r.ratio['ssh-mux'];
    const json = roundsJson(r);
    const detail = `${N} × true; median per command: pool ${each(r.stats.pool.median)}, plain ssh ${each(r.stats.ssh.median)}, multiplexed ssh ${each(r.stats['ssh-mux'].median)}; ${r.rounds} rounds`;
    results.add({
      name: 'bench:ssh, pool vs plain `ssh host true` (speed-up, ratio of medians)',
      value: vsPlain,
      unit: '×',
      aim: '≥ 10×',
      met: vsPlain >= 10,
      detail,
      rounds: json,
    });
    results.add({
      name: 'bench:ssh, pool vs multiplexed OpenSSH (ControlMaster/ControlPersist) (speed-up, ratio of medians)',
      value: vsMux,
      unit: '×',
      aim: '≥ 1.0×',
      met: vsMux >= 1,
      detail,
      rounds: json,
    });
    results.add({ name: 'bench:ssh, pool, one `true`', value: r.stats.pool.median / N, unit: 'ms', detail });
    await results.write();
  } finally {
    if (muxArgs.length) await run('ssh', ['-O', 'exit', ...muxArgs.slice(0, -2), muxArgs.at(-2)!]).catch(() => {});
    await h.pool.closeAll();
    await sshd.stop();
    await accounts.cleanup();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

runBench(main, 10 * 60_000);
