// npm run lab -- up [--masters 3] [--workers 0] [--spares 2] [--lb haproxy|nginx|none] [--user root|NAME]
//                   [--prefix kl1] [--subnet 198.18.64.0/24] [--no-etcd-tools s1,s2] [--kubelet stand-in|real] [--no-wait] [--json]
//                   [--bare]   (hosts with nothing of Kubernetes: the app installs and creates the cluster)
//                   [--sudo-secure-path /usr/sbin:/usr/bin:/sbin:/bin]   (with --user NAME)
// npm run lab -- down [--prefix P]            tear down (all labs with --all)
// npm run lab -- status [--prefix P]
// npm run lab -- ssh HOST [--prefix P] [-- command…]
// npm run lab -- list | leftovers --prefix P | release-archive [--out DIR]
// Same code as the test API (index.ts). `up` leaves the lab running after the command exits; an
// interrupted `up` (Ctrl-C) tears down what it built.
import { spawnSync } from 'node:child_process';
import { DEFAULT_BASE_DIR, isClean, Lab, leftovers, packEtcdRelease } from './index';
import type { LabOptions, LbKind } from './types';

function parseArgs(argv: string[]): { cmd: string; pos: string[]; opt: Map<string, string>; rest: string[] } {
  const dd = argv.indexOf('--');
  const rest = dd >= 0 ? argv.slice(dd + 1) : [];
  const args = dd >= 0 ? argv.slice(0, dd) : argv;
  const opt = new Map<string, string>();
  const pos: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith('--')) {
      const [k, v] = a.slice(2).split('=', 2);
      if (v !== undefined) opt.set(k, v);
      else if (i + 1 < args.length && !args[i + 1].startsWith('--') && !['no-wait', 'json', 'all', 'bare'].includes(k))
        opt.set(k, args[++i]);
      else opt.set(k, 'true');
    } else pos.push(a);
  }
  return { cmd: pos.shift() ?? 'help', pos, opt, rest };
}

async function main(): Promise<number> {
  const { cmd, pos, opt, rest } = parseArgs(process.argv.slice(2));
  const baseDir = opt.get('base-dir') ?? DEFAULT_BASE_DIR;
  const num = (k: string, d: number): number => (opt.has(k) ? Number(opt.get(k)) : d);
  switch (cmd) {
    case 'up': {
      const t0 = Date.now();
      const lab = await Lab.up({
        prefix: opt.get('prefix'),
        subnet: opt.get('subnet'),
        masters: num('masters', 3),
        workers: num('workers', 0),
        spares: num('spares', 0),
        lb: (opt.get('lb') ?? 'haproxy') as LbKind,
        user: opt.get('user') ?? 'root',
        sudoSecurePath: opt.get('sudo-secure-path'),
        noEtcdTools: opt.get('no-etcd-tools')?.split(',').filter(Boolean),
        etcd: opt.get('etcd') as LabOptions['etcd'],
        kubelet: opt.get('kubelet') as LabOptions['kubelet'],
        varQuotaMB: opt.has('var-quota-mb') ? num('var-quota-mb', 2048) : undefined,
        waitReady: !opt.has('no-wait'),
        bare: opt.has('bare'),
        baseDir,
        cleanupOnExit: true, // only while `up` runs: removed below once the lab is complete
        log: opt.has('json') ? undefined : (m) => console.error(`[lab] ${m}`),
      });
      // the lab outlives this command: drop the exit-time teardown
      lab.keep();
      if (opt.has('json')) {
        console.log(
          JSON.stringify(
            {
              prefix: lab.prefix,
              hosts: lab.hosts,
              keyPath: lab.keyPath,
              knownHostsPath: lab.knownHostsPath,
              inventory: lab.inventory,
              apiEndpoint: lab.apiEndpoint,
            },
            null,
            2,
          ),
        );
      } else {
        console.log(`lab ${lab.prefix} is up (${Date.now() - t0} ms)`);
        for (const h of lab.hosts) console.log(`  ${h.name.padEnd(4)} ${h.role.padEnd(6)} ${h.address}`);
        console.log(
          `ssh: npm run lab -- ssh m1 --prefix ${lab.prefix}   (key ${lab.keyPath}, known_hosts ${lab.knownHostsPath})`,
        );
        console.log(`api: ${lab.apiEndpoint}   down: npm run lab -- down --prefix ${lab.prefix}`);
      }
      return 0;
    }
    case 'down': {
      const prefixes = opt.has('all') ? Lab.list(baseDir) : [opt.get('prefix') ?? pos[0]];
      for (const p of prefixes) {
        const lab = Lab.attach(p, baseDir);
        const t0 = Date.now();
        await lab.down();
        console.log(`lab ${lab.prefix} down (${Date.now() - t0} ms)`);
      }
      return 0;
    }
    case 'status':
      console.log(await Lab.attach(opt.get('prefix') ?? pos[0], baseDir).status());
      return 0;
    case 'list':
      for (const p of Lab.list(baseDir)) console.log(p);
      return 0;
    case 'ssh': {
      const host = pos[0];
      if (!host) throw new Error('usage: lab ssh HOST [--prefix P] [-- command…]');
      const lab = Lab.attach(opt.get('prefix'), baseDir);
      const r = spawnSync(
        'ssh',
        [...lab.sshArgs(host, undefined, { interactive: true }), ...(rest.length ? [rest.join(' ')] : [])],
        { stdio: 'inherit' },
      );
      return r.status ?? 1;
    }
    case 'leftovers': {
      const p = opt.get('prefix') ?? pos[0];
      if (!p) throw new Error('usage: lab leftovers --prefix P');
      const l = await leftovers(p, `${baseDir}/${p}`);
      console.log(JSON.stringify(l, null, 2));
      return isClean(l) ? 0 : 1;
    }
    case 'release-archive': {
      const r = await packEtcdRelease(opt.get('out') ?? process.cwd());
      console.log(JSON.stringify(r, null, 2));
      return 0;
    }
    default:
      console.log(`usage: npm run lab -- up|down|status|ssh HOST|list|leftovers|release-archive [options]
  up:   --masters N(1-5, 3) --workers N(0) --spares N(0-5, 0) --lb haproxy|nginx|none --user root|NAME
        --prefix P --subnet CIDR(in 198.18.0.0/15) --no-etcd-tools h1,h2 --etcd 3.6|3.5|3.4 --kubelet stand-in|real --var-quota-mb N --no-wait --json
        --bare (hosts without Kubernetes: apt-get & co. are stand-ins that install the lab's cached packages)
        --sudo-secure-path DIRS (with --user NAME: that user's sudo secure_path)
  down: --prefix P | --all      status/ssh: --prefix P (optional when only one lab exists)`);
      return cmd === 'help' ? 0 : 2;
  }
}

main().then(
  (rc) => process.exit(rc),
  (e: unknown) => {
    console.error(`lab: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
