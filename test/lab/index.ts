// The lab's TypeScript API (the CLI in cli.ts uses the same code):
//   const lab = await Lab.up({ masters: 3, spares: 2, lb: 'haproxy' });
//   lab.hosts, lab.keyPath, lab.knownHosts, lab.inventory, await lab.ssh('m1', 'hostname'), await lab.down();
// See README.md for topology options, what is real and what is emulated, and the fault hooks.
import {
  chmodSync,
  existsSync,
  linkSync,
  copyFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { bundleEmulators } from './emul/bundle';
import { EtcdClient } from './emul/etcd-client';
import { KubeClient } from './emul/k8s-common';
import * as faults from './faults';
import { assertLabAddress, assertLabSubnet } from './guard';
import {
  hostExec,
  hostInitPid,
  hostReadFile,
  hostRunning,
  hostWriteFile,
  initScript,
  killHost,
  ownsPid,
  prepareHostDirs,
  seedFiles,
  sshBanner,
  sshdConfig,
  startHost,
  unmountHostVar,
  type SeedFile,
} from './host';
import {
  caCertHash,
  controlPlaneEndpoint,
  etcdFlagsFor,
  initConfig,
  joinConfig,
  KUBEADM_CONFIG_PATH,
  kubePackageFiles,
  LAB_LIB,
  newKubeadmSecrets,
  etcdImageTag,
} from './kubeadm';
import {
  defaultEtcdMinor,
  defaultKubeletKind,
  etcdRelease,
  etcdTools,
  KUBE_BINARIES,
  kubernetesBinDir,
  KUBERNETES_VERSION,
  realKubeletUnavailable,
} from './binaries';
import {
  createCgroupRoots,
  ensureImages,
  importImages,
  realKubeletInit,
  realKubeletSeed,
  removeCgroupRoots,
} from './realkubelet';
import { lbFiles } from './lb';
import { leftovers, type Leftovers } from './leftovers';
import {
  bridgeAddress,
  bridgeName,
  createNetwork,
  destroyNetwork,
  freshPrefix,
  hostAddress,
  PREFIX_RE,
  releaseSubnet,
  reserveSubnet,
} from './net';
import { preflight } from './preflight';
import { bareArchive, bareHostFiles, bareWhiteouts } from './bare';
import type { HostSpec, LabInventory, LabOptions, LabState, NodeRole } from './types';
import { run, runSync, shq, waitFor, type RunResult } from './util';

export * from './types';
export { assertLabAddress, assertLabUrl, LAB_RANGE } from './guard';
export { leftovers, isClean, type Leftovers } from './leftovers';
export { packEtcdRelease, type EtcdRelease } from './release';
export { KUBERNETES_VERSION, etcdRelease, ETCD_MINORS, type EtcdMinor, realKubeletUnavailable } from './binaries';
export { EtcdClient } from './emul/etcd-client';
export { KubeClient } from './emul/k8s-common';

export const DEFAULT_BASE_DIR = process.env.KES_LAB_DIR ?? '/tmp/kes-lab';
// Shared by every host through the lower layer of their /usr/local overlay (the machine's own
// /usr/local): the "container images" (hard links of the cached binaries) and the stand-ins.
const IMAGES = `${LAB_LIB}/images`;

/** Labs with cleanupOnExit, torn down synchronously if this process is interrupted or exits. */
const live = new Set<Lab>();
let handlersInstalled = false;
function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const cleanAll = (): void => {
    for (const lab of [...live]) lab.downSync();
  };
  process.once('exit', cleanAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      cleanAll();
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
  }
}

export class Lab {
  private constructor(
    readonly state: LabState,
    private readonly log: (msg: string) => void = () => undefined,
  ) {}

  // ---------------------------------------------------------------- lifecycle

  /** Build and boot a lab. On any failure everything built so far is torn down before the error is thrown. */
  static async up(opts: LabOptions = {}): Promise<Lab> {
    const t0 = Date.now();
    const masters = opts.masters ?? 3;
    const workers = opts.workers ?? 0;
    const spares = opts.spares ?? 0;
    const lbKind = opts.lb ?? 'haproxy';
    const user = opts.user ?? 'root';
    if (masters < 1 || masters > 5) throw new Error('masters must be 1..5');
    if (spares < 0 || spares > 5) throw new Error('spares must be 0..5');
    if (workers < 0 || workers > 20) throw new Error('workers must be 0..20');
    if (!/^[a-z_][a-z0-9_-]{0,30}$/.test(user)) throw new Error(`bad user name ${user}`);
    if (opts.sudoSecurePath !== undefined) {
      if (user === 'root') throw new Error('sudoSecurePath needs a sudo user (user: NAME)');
      if (!/^\/[A-Za-z0-9_./-]*(:\/[A-Za-z0-9_./-]*)*$/.test(opts.sudoSecurePath))
        throw new Error(`bad sudoSecurePath ${opts.sudoSecurePath}: absolute dirs joined by ':'`);
    }
    const bare = opts.bare ?? false;
    // a bare lab configures no LB: the machine's haproxy/nginx only feed the apt stand-in's archive
    preflight({ lb: bare ? 'none' : lbKind, sudoUser: user !== 'root' });
    const kubelet = opts.kubelet ?? defaultKubeletKind();
    if (bare && kubelet === 'real') throw new Error('bare hosts have no kubelet: kubelet: real needs the default mode');
    if (kubelet !== 'stand-in' && kubelet !== 'real')
      throw new Error(`kubelet must be 'stand-in' or 'real', not ${kubelet}`);
    if (kubelet === 'real') {
      const why = realKubeletUnavailable();
      if (why) throw new Error(why);
    }
    const baseDir = opts.baseDir ?? DEFAULT_BASE_DIR;
    mkdirSync(baseDir, { recursive: true, mode: 0o700 });
    const prefix = opts.prefix ?? freshPrefix(baseDir);
    if (!PREFIX_RE.test(prefix)) throw new Error(`bad lab prefix ${prefix}: use [a-z][a-z0-9]{1,7}`);
    const dir = join(baseDir, prefix);
    if (existsSync(join(dir, 'state.json'))) Lab.attach(prefix, baseDir).downSync(); // stale lab of ours
    rmSync(dir, { recursive: true, force: true });
    if (opts.subnet) assertLabSubnet(opts.subnet);
    const subnet = reserveSubnet(prefix, baseDir, opts.subnet);
    const log = opts.log ?? (() => undefined);

    const hosts: HostSpec[] = [];
    const add = (name: string, role: HostSpec['role']): void => {
      const i = hosts.length;
      hosts.push({
        name,
        role,
        address: hostAddress(subnet, i),
        netns: `${prefix}-${name}`,
        veth: `${prefix}-v${i}`,
        dir: join(dir, 'hosts', name),
        etcdTools: !bare && !(opts.noEtcdTools ?? []).includes(name),
      });
    };
    if (lbKind !== 'none') add('lb', 'lb');
    for (let i = 1; i <= masters; i++) add(`m${i}`, 'master');
    for (let i = 1; i <= workers; i++) add(`w${i}`, 'worker');
    for (let i = 1; i <= spares; i++) add(`s${i}`, 'spare');
    for (const n of opts.noEtcdTools ?? [])
      if (!hosts.some((h) => h.name === n)) throw new Error(`noEtcdTools: no host ${n}`);

    const state: LabState = {
      version: 1,
      prefix,
      subnet,
      bridge: bridgeName(prefix),
      bridgeAddress: bridgeAddress(subnet),
      dir,
      clusterName: opts.clusterName ?? `lab-${prefix}`,
      lb: lbKind,
      user,
      sudoSecurePath: opts.sudoSecurePath,
      varQuotaMB: opts.varQuotaMB ?? 2048,
      k8sVersion: KUBERNETES_VERSION,
      etcdMinor: opts.etcd ?? defaultEtcdMinor(),
      etcdVersion: etcdRelease(opts.etcd ?? defaultEtcdMinor()).version,
      ...(kubelet === 'real' ? { kubelet } : {}),
      ...(bare ? { bare } : {}),
      kubeadm: newKubeadmSecrets(),
      createdAt: new Date().toISOString(),
      hosts,
    };
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const lab = new Lab(state, log);
    lab.save();
    if (opts.cleanupOnExit ?? true) {
      installExitHandlers();
      live.add(lab);
    }
    try {
      await lab.build(opts.waitReady ?? true);
      log(`lab ${prefix} up in ${Date.now() - t0} ms`);
      return lab;
    } catch (e) {
      const hostLog = hosts.map((h) => {
        try {
          return `--- ${h.name} host.log\n${readFileSync(join(h.dir, 'host.log'), 'utf8').slice(-1500)}`;
        } catch {
          return '';
        }
      });
      // KES_LAB_KEEP_ON_FAIL=1 leaves a failed lab running for a post-mortem (`lab down` removes it)
      if (process.env.KES_LAB_KEEP_ON_FAIL === '1') lab.keep();
      else lab.downSync();
      const err = e instanceof Error ? e : new Error(String(e));
      err.message += `\n${hostLog.filter(Boolean).join('\n')}`;
      throw err;
    }
  }

  /** Re-open a running lab from its state.json (the CLI's down/status/ssh; another test process). */
  static attach(prefix?: string, baseDir = DEFAULT_BASE_DIR): Lab {
    let p = prefix;
    if (!p) {
      const labs = Lab.list(baseDir);
      if (labs.length !== 1)
        throw new Error(
          labs.length ? `several labs exist (${labs.join(', ')}): pass --prefix` : `no lab found in ${baseDir}`,
        );
      p = labs[0];
    }
    const file = join(baseDir, p, 'state.json');
    if (!existsSync(file)) throw new Error(`no lab ${p} in ${baseDir}`);
    return new Lab(JSON.parse(readFileSync(file, 'utf8')) as LabState);
  }

  static list(baseDir = DEFAULT_BASE_DIR): string[] {
    try {
      return readdirSync(baseDir).filter((d) => PREFIX_RE.test(d) && existsSync(join(baseDir, d, 'state.json')));
    } catch {
      return [];
    }
  }

  private save(): void {
    writeFileSync(join(this.state.dir, 'state.json'), JSON.stringify(this.state, null, 2));
  }

  private async build(waitReady: boolean): Promise<void> {
    const s = this.state;
    const t = (label: string, since: number): void => this.log(`${label}: ${Date.now() - since} ms`);
    let t1 = Date.now();
    await Promise.all([
      bundleEmulators(join(s.dir, 'emul')).then((r) => Object.values(r).forEach((f) => chmodSync(f, 0o755))),
      this.sshKeys(),
      Promise.all(s.hosts.map((h) => prepareHostDirs(h, s.varQuotaMB))),
      createNetwork(s.prefix, s.subnet, s.hosts),
    ]);
    installImages(s);
    t('keys, stand-ins, images, network', t1);
    const real = s.kubelet === 'real';
    let tars: string[] = [];
    if (real) {
      t1 = Date.now();
      tars = await ensureImages(s);
      createCgroupRoots(s);
      t('real kubelet: image tars, cgroup roots', t1);
    }
    t1 = Date.now();
    const archive = s.bare ? bareArchive(join(s.dir, 'emul')) : undefined;
    if (archive) t('bare hosts: package archive', t1);
    for (const h of s.hosts) this.seedHost(h, archive);
    for (const h of s.hosts) h.pid = startHost(h, s.prefix, real);
    this.save();
    await Promise.all(
      s.hosts.map((h) => waitFor(`sshd on ${h.name}`, () => sshBanner(h.address, s.subnet, 500), 20_000, 50)),
    );
    t('hosts booted, sshd answering', t1);
    if (real) {
      t1 = Date.now();
      await Promise.all(
        // workers run no control-plane pod: the pause image (pod sandboxes) is all they need
        s.hosts
          .filter((h) => h.role === 'master' || h.role === 'worker')
          .map((h) => importImages(h, h.role === 'worker' ? tars.slice(0, 1) : tars)),
      );
      t('real kubelet: containerd up, images imported', t1);
    }
    if (!waitReady || s.bare) return;
    await this.kubeadmCluster(t);
  }

  private async sshKeys(): Promise<void> {
    const s = this.state;
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `kes-lab-${s.prefix}`, '-f', this.keyPath]);
    await Promise.all(
      s.hosts.map(async (h) => {
        const d = join(h.dir, 'upper', 'etc', 'ssh');
        mkdirSync(d, { recursive: true });
        await run('ssh-keygen', [
          '-q',
          '-t',
          'ed25519',
          '-N',
          '',
          '-C',
          `root@${h.name}`,
          '-f',
          join(d, 'ssh_host_ed25519_key'),
        ]);
      }),
    );
    const lines = s.hosts.map((h) => {
      const pub = readFileSync(join(h.dir, 'upper', 'etc', 'ssh', 'ssh_host_ed25519_key.pub'), 'utf8')
        .trim()
        .split(' ');
      return `${h.address} ${pub[0]} ${pub[1]}`;
    });
    writeFileSync(this.knownHostsPath, lines.join('\n') + '\n');
  }

  /** Everything a host needs on its disks before it boots: what the packages would have installed. */
  private seedHost(h: HostSpec, archive?: ReturnType<typeof bareArchive>): void {
    const s = this.state;
    const emul = join(s.dir, 'emul');
    const pub = readFileSync(`${this.keyPath}.pub`, 'utf8').trim();
    const files: SeedFile[] = [
      { path: '/etc/hostname', content: `${h.name}\n` },
      {
        path: '/etc/hosts',
        content: `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${s.hosts.map((x) => `${x.address}\t${x.name}`).join('\n')}\n`,
      },
      {
        path: '/etc/machine-id',
        content: `${[...Array(32)].map(() => Math.floor(Math.random() * 16).toString(16)).join('')}\n`,
      },
      { path: '/etc/ssh/sshd_config', content: sshdConfig(s.user === 'root') },
      { path: '/usr/local/bin/systemctl', copyFrom: join(emul, 'systemd.cjs') },
      { path: '/usr/local/bin/journalctl', copyFrom: join(emul, 'systemd.cjs') },
    ];
    if (s.user === 'root') files.push({ path: '/root/.ssh/authorized_keys', content: `${pub}\n`, mode: 0o600 });
    else {
      // a user-specific secure_path overrides the machine's `Defaults secure_path` (e.g. one without /usr/local/bin)
      const path = s.sudoSecurePath ? `Defaults:${s.user} secure_path="${s.sudoSecurePath}"\n` : '';
      files.push({
        path: '/etc/sudoers.d/90-kes-lab',
        content: `${path}${s.user} ALL=(ALL) NOPASSWD:ALL\n`,
        mode: 0o440,
      });
    }
    const enable: string[] = [];
    if (s.bare) {
      // nothing of Kubernetes: the package-tool stand-ins and the lab's archive (bare.ts)
      files.push(...bareHostFiles(emul, archive!));
      seedFiles(h, files);
      bareWhiteouts(h);
      writeFileSync(
        join(h.dir, 'init.sh'),
        initScript({
          state: s,
          host: h,
          enableUnits: [],
          sudoUser: s.user === 'root' ? undefined : { name: s.user, pubkey: pub },
          bare: true,
        }),
        { mode: 0o755 },
      );
      return;
    }
    if (h.etcdTools) {
      // the etcd tools of the lab's etcd version, as a distribution package would put them
      const rel = etcdRelease(s.etcdMinor);
      for (const b of etcdTools(rel.dir)) files.push({ path: `/usr/bin/${b}`, copyFrom: join(rel.dir, b) });
    }
    if (h.role === 'master' || h.role === 'worker') {
      // what the kubelet/kubeadm/kubectl (+ cri-tools) packages install; kubelet and crictl are stand-ins
      const pkgs = kubePackageFiles(emul);
      files.push(...pkgs.kubeadm, ...pkgs.kubectl, ...pkgs.kubelet, ...pkgs['cri-tools'], {
        path: '/etc/crictl.yaml',
        content: 'runtime-endpoint: unix:///var/run/containerd/containerd.sock\n',
      });
      mkdirSync(join(h.dir, 'upper', 'etc', 'kubernetes', 'manifests'), { recursive: true });
      enable.push('kubelet.service');
    }
    if (s.kubelet === 'real' && (h.role === 'master' || h.role === 'worker')) {
      // the real kubelet and crictl replace the stand-ins (later entries win), containerd runs as
      // Debian's own unit under the systemd stand-in
      files.push(...realKubeletSeed(s, h));
      enable.push('containerd.service');
    }
    if (h.role === 'lb' && s.lb !== 'none') {
      const lb = lbFiles(
        s.lb,
        s.hosts.filter((x) => x.role === 'master'),
      );
      files.push(...lb.files);
      enable.push(lb.unit);
    }
    seedFiles(h, files);
    if (!h.etcdTools) writeFileSync(join(h.dir, 'no-etcd-tools'), '');
    writeFileSync(
      join(h.dir, 'init.sh'),
      initScript({
        state: s,
        host: h,
        enableUnits: enable,
        sudoUser: s.user === 'root' ? undefined : { name: s.user, pubkey: pub },
        ...(s.kubelet === 'real' && (h.role === 'master' || h.role === 'worker')
          ? { extraInit: realKubeletInit(h) }
          : {}),
      }),
      { mode: 0o755 },
    );
  }

  /**
   * The real kubeadm makes the cluster: `kubeadm init` on the first master (the LB as control-plane
   * endpoint, certificates uploaded), then `kubeadm join --control-plane` on the other masters one
   * at a time (each adds its etcd member, as kubeadm requires), then the workers together.
   */
  private async kubeadmCluster(t: (label: string, since: number) => void): Promise<void> {
    const s = this.state;
    const [first, ...others] = this.masters;
    let t1 = Date.now();
    await this.kubeadm(first, initConfig(s, first, s.kubeadm, s.etcdVersion), 'init');
    t(`kubeadm init on ${first.name}`, t1);
    const caPem = await hostReadFile(first, '/etc/kubernetes/pki/ca.crt');
    await this.saveClientCredentials(first);
    const hash = caCertHash(caPem);
    for (const m of others) {
      t1 = Date.now();
      await this.kubeadm(m, joinConfig(s, m, s.kubeadm, hash, true), 'join');
      t(`kubeadm join --control-plane on ${m.name}`, t1);
    }
    t1 = Date.now();
    const workers = s.hosts.filter((h) => h.role === 'worker');
    await Promise.all(workers.map((w) => this.kubeadm(w, joinConfig(s, w, s.kubeadm, hash, false), 'join')));
    if (workers.length) t('kubeadm join of the workers', t1);
    t1 = Date.now();
    await this.waitControlPlane();
    t('apiservers ready through the endpoint, nodes Ready, control-plane pods running', t1);
  }

  /** Run kubeadm init/join on a host with its config file; the output lands in the lab dir. */
  private async kubeadm(h: HostSpec, config: string, verb: 'init' | 'join'): Promise<void> {
    await hostWriteFile(h, KUBEADM_CONFIG_PATH, config, 0o600);
    // kubeadm 1.36 spells two etcd flags the 3.6 way: for an older etcd the lab rewrites them in
    // etcd.yaml as soon as kubeadm writes it (the kubelet stand-in restarts the pod on the change).
    const legacy =
      etcdFlagsFor(this.state.etcdMinor, '- --feature-gates=InitialCorruptCheck=true') !==
      '- --feature-gates=InitialCorruptCheck=true';
    const fix = legacy
      ? `( f=/etc/kubernetes/manifests/etcd.yaml; while kill -0 $kpid 2>/dev/null; do
           if grep -q -- '--feature-gates=InitialCorruptCheck=true' $f 2>/dev/null; then
             sed -i -e 's/--feature-gates=InitialCorruptCheck=true/--experimental-initial-corrupt-check=true/' \
               -e 's/--watch-progress-notify-interval=/--experimental-watch-progress-notify-interval=/' ${
                 // etcd 3.4 has no /livez or /readyz: the probes kubeadm wrote for it were /health
                 this.state.etcdMinor === '3.4'
                   ? "-e 's#path: /livez#path: /health?exclude=NOSPACE\\&serializable=true#' -e 's#path: /readyz#path: /health?serializable=false#'"
                   : ''
               } $f
           fi; sleep 0.1; done ) &`
      : '';
    const r = await hostExec(
      h,
      `kubeadm ${verb} --config ${KUBEADM_CONFIG_PATH}${verb === 'init' ? ' --upload-certs' : ''} -v=1 >/root/kubeadm-${verb}.log 2>&1 & kpid=$!
${fix}
wait $kpid; rc=$?; wait; cat /root/kubeadm-${verb}.log; exit $rc`,
      { allowFail: true, timeoutMs: 300_000 },
    );
    writeFileSync(join(h.dir, `kubeadm-${verb}.log`), r.stdout + r.stderr);
    if (r.code !== 0)
      throw new Error(`kubeadm ${verb} on ${h.name} failed (exit ${r.code}):\n${(r.stdout + r.stderr).slice(-4000)}`);
  }

  /** Keep the lab's own client credentials: kubeadm's admin.conf and an etcd healthcheck client. */
  private async saveClientCredentials(first: HostSpec): Promise<void> {
    const d = join(this.state.dir, 'pki');
    mkdirSync(join(d, 'etcd'), { recursive: true, mode: 0o700 });
    const files: [string, string][] = [
      ['/etc/kubernetes/admin.conf', 'admin.conf'],
      ['/etc/kubernetes/pki/ca.crt', 'ca.crt'],
      ['/etc/kubernetes/pki/etcd/ca.crt', 'etcd/ca.crt'],
      ['/etc/kubernetes/pki/etcd/healthcheck-client.crt', 'etcd/lab-client.crt'],
      ['/etc/kubernetes/pki/etcd/healthcheck-client.key', 'etcd/lab-client.key'],
    ];
    for (const [from, to] of files) writeFileSync(join(d, to), await hostReadFile(first, from), { mode: 0o600 });
    const kc = parseYaml(readFileSync(join(d, 'admin.conf'), 'utf8')) as {
      users: { user: { 'client-certificate-data': string; 'client-key-data': string } }[];
    };
    writeFileSync(join(d, 'admin.crt'), Buffer.from(kc.users[0].user['client-certificate-data'], 'base64'));
    writeFileSync(join(d, 'admin.key'), Buffer.from(kc.users[0].user['client-key-data'], 'base64'), { mode: 0o600 });
  }

  private async waitControlPlane(): Promise<void> {
    const api = this.api();
    const kubeletHosts = this.state.hosts.filter((h) => h.role === 'master' || h.role === 'worker');
    try {
      await Promise.all(
        this.masters.map((m) =>
          waitFor(
            `apiserver on ${m.name}`,
            async () => (await this.api(m).call('GET', '/readyz')).status === 200,
            60_000,
            200,
          ),
        ),
      );
      await waitFor(
        'nodes Ready and control-plane pods running',
        async () => {
          const nodes = await api.call('GET', '/api/v1/nodes');
          type N = { metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } };
          const ready = ((nodes.body as { items?: N[] }).items ?? [])
            .filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
            .map((n) => n.metadata.name);
          if (!kubeletHosts.every((h) => ready.includes(h.name))) return false;
          const pods = await api.call('GET', '/api/v1/namespaces/kube-system/pods');
          const list =
            (
              pods.body as {
                items?: { metadata: { name: string }; status?: { containerStatuses?: { ready: boolean }[] } }[];
              }
            ).items ?? [];
          return this.masters.every((m) =>
            ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler'].every(
              (c) => list.find((p) => p.metadata.name === `${c}-${m.name}`)?.status?.containerStatuses?.[0]?.ready,
            ),
          );
        },
        90_000,
        300,
      );
    } finally {
      api.close();
    }
  }

  /** Tear down everything this lab made. Safe to call twice, from any process, and after failures. */
  async down(): Promise<void> {
    this.downSync();
  }

  downSync(): void {
    const s = this.state;
    live.delete(this);
    const pids = s.hosts.filter((h) => ownsPid(h)).map((h) => h.pid!);
    for (const h of s.hosts) killHost(h);
    // wait (briefly) for the unshare processes to go so their mounts are released
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline && pids.some((p) => isAlive(p))) runSync('sleep', ['0.02'], { allowFail: true });
    for (const h of s.hosts) h.pid = undefined; // never signal these numbers again (pids get reused)
    destroyNetwork(
      s.prefix,
      s.hosts.map((h) => h.netns),
    );
    for (const h of s.hosts) unmountHostVar(h);
    // anything else still mounted under the lab dir (should be nothing): unmount lazily
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((m): m is string => !!m && m.startsWith(`${s.dir}/`));
    for (const m of mounts.reverse()) runSync('umount', ['-l', m], { allowFail: true });
    if (s.kubelet === 'real') removeCgroupRoots(s);
    releaseSubnet(s.subnet, join(s.dir, '..'), s.prefix);
    rmSync(s.dir, { recursive: true, force: true });
  }

  /** Let the lab outlive this process (no teardown on exit/signals): `lab up` from the CLI. */
  keep(): void {
    live.delete(this);
  }

  /** Nothing of this lab left? (waits ~2 s for late reaping first) */
  leftovers(waitMs?: number): Promise<Leftovers> {
    return leftovers(this.state.prefix, this.state.dir, { waitMs });
  }

  // ---------------------------------------------------------------- what tests use

  get prefix(): string {
    return this.state.prefix;
  }
  get hosts(): HostSpec[] {
    return this.state.hosts;
  }
  get masters(): HostSpec[] {
    return this.state.hosts.filter((h) => h.role === 'master');
  }
  host(name: string): HostSpec {
    const h = this.state.hosts.find((x) => x.name === name || x.address === name);
    if (!h) throw new Error(`no host ${name} in lab ${this.state.prefix}`);
    return h;
  }
  get keyPath(): string {
    return join(this.state.dir, 'id_ed25519');
  }
  get knownHostsPath(): string {
    return join(this.state.dir, 'known_hosts');
  }
  get knownHosts(): string[] {
    return readFileSync(this.knownHostsPath, 'utf8').trim().split('\n');
  }
  /** https://<LB or first master>:6443 */
  get apiEndpoint(): string {
    return `https://${controlPlaneEndpoint(this.state)}`;
  }

  get inventory(): LabInventory {
    const roles = (h: HostSpec): NodeRole[] =>
      h.role === 'lb' ? ['lb'] : h.role === 'master' ? ['master', 'etcd'] : h.role === 'worker' ? ['worker'] : [];
    return {
      name: this.state.clusterName,
      nodes: this.state.hosts.map((h) => ({
        name: h.name,
        address: h.address,
        port: 22,
        user: this.state.user,
        roles: roles(h),
      })),
    };
  }

  pem(path: string): Buffer {
    return readFileSync(join(this.state.dir, 'pki', path));
  }

  /** Admin client for the Kubernetes API (kubernetes-admin cert), through the LB or straight to one master. */
  api(master?: HostSpec): KubeClient {
    const server = master ? `https://${master.address}:6443` : this.apiEndpoint;
    assertLabAddress(new URL(server).hostname, this.state.subnet);
    return new KubeClient(server, {
      ca: this.pem('ca.crt'),
      cert: this.pem('admin.crt'),
      key: this.pem('admin.key'),
    });
  }

  etcdUrl(m: HostSpec): string {
    return `https://${m.address}:2379`;
  }

  /** etcd client (healthcheck-client style cert from the cluster's etcd CA) for the given members. */
  etcdClient(members = this.masters): EtcdClient {
    return new EtcdClient(
      members.map((m) => this.etcdUrl(m)),
      { ca: this.pem('etcd/ca.crt'), cert: this.pem('etcd/lab-client.crt'), key: this.pem('etcd/lab-client.key') },
      this.state.subnet,
    );
  }

  /** OpenSSH command line for a host: lab key, strict host-key checking against the lab's known_hosts. */
  sshArgs(host: string, user = this.state.user, opts: { interactive?: boolean } = {}): string[] {
    const h = this.host(host);
    assertLabAddress(h.address, this.state.subnet);
    return [
      '-i',
      this.keyPath,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      `UserKnownHostsFile=${this.knownHostsPath}`,
      '-o',
      'GlobalKnownHostsFile=/dev/null',
      ...(opts.interactive ? [] : ['-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR']),
      '-o',
      'ConnectTimeout=5',
      `${user}@${h.address}`,
    ];
  }

  /** Run a command on a host over real SSH (as the lab user; use `sudo` in sudo-user labs). */
  ssh(host: string, command: string, opts: { input?: string | Buffer; allowFail?: boolean } = {}): Promise<RunResult> {
    return run('ssh', [...this.sshArgs(host), command], {
      input: opts.input,
      allowFail: opts.allowFail,
      timeoutMs: 120_000,
    });
  }

  /** Run a script as root inside a host without SSH (lab plumbing; tests of the app should use ssh). */
  exec(host: string, script: string, opts: { input?: string | Buffer; allowFail?: boolean } = {}): Promise<RunResult> {
    return hostExec(this.host(host), script, opts);
  }
  readFile(host: string, path: string): Promise<string> {
    return hostReadFile(this.host(host), path);
  }
  writeFile(host: string, path: string, content: string | Buffer, mode?: number): Promise<void> {
    return hostWriteFile(this.host(host), path, content, mode);
  }
  running(host: string): boolean {
    return hostRunning(this.host(host));
  }

  /**
   * Bare hosts: every call of the package-tool stand-ins (apt-get, apt-mark, dpkg-query, modprobe,
   * sysctl, …) on that host, oldest first — /var/log/kes-lab/tools.log inside it, read from its /var layer.
   */
  toolCalls(host: string): { time: string; tool: string; args: string[]; exit: number; notes?: string[] }[] {
    try {
      return readFileSync(join(this.host(host).dir, 'varfs', 'upper', 'log', 'kes-lab', 'tools.log'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { time: string; tool: string; args: string[]; exit: number; notes?: string[] });
    } catch {
      return [];
    }
  }

  // ---------------------------------------------------------------- fault hooks (see faults.ts)

  async stopHost(host: string): Promise<void> {
    await faults.stopHost(this.host(host));
  }
  async startHost(host: string, waitSsh = true): Promise<void> {
    const h = this.host(host);
    faults.bootHost(this.state, h);
    this.save();
    if (waitSsh) await waitFor(`sshd on ${h.name}`, () => sshBanner(h.address, this.state.subnet, 500), 20_000, 50);
  }
  cutLink(host: string): Promise<void> {
    return faults.cutLink(this.host(host));
  }
  restoreLink(host: string): Promise<void> {
    return faults.restoreLink(this.host(host));
  }
  killProcess(host: string, name: string, signal = 'KILL'): Promise<number> {
    return faults.killProcess(this.host(host), name, signal);
  }
  fillDisk(host: string, leaveKB = 0): Promise<void> {
    return faults.fillDisk(this.state, this.host(host), leaveKB);
  }
  freeDisk(host: string): Promise<void> {
    return faults.freeDisk(this.state, this.host(host));
  }
  corruptFile(host: string, path: string, opts?: { offset?: number; bytes?: number }): Promise<void> {
    return faults.corruptFile(this.host(host), path, opts);
  }
  stickyKubelet(host: string, restartKubelet = false): Promise<void> {
    return faults.stickyKubelet(this.host(host), restartKubelet);
  }
  looseKubelet(host: string): Promise<void> {
    return faults.looseKubelet(this.host(host));
  }
  async hideEtcdTools(host: string): Promise<void> {
    await faults.hideEtcdTools(this.host(host));
    this.save();
  }

  /** One-screen summary for `lab status`. */
  async status(): Promise<string> {
    const s = this.state;
    const lines = [
      `lab ${s.prefix}  subnet ${s.subnet}  bridge ${s.bridge} (${s.bridgeAddress})  dir ${s.dir}`,
      `cluster ${s.clusterName}  api ${this.apiEndpoint}  ssh user ${s.user}  key ${this.keyPath}`,
    ];
    if (s.bare) {
      // nothing the lab could probe: the app makes (or not) the cluster
      for (const h of s.hosts)
        lines.push(
          `  ${h.name.padEnd(4)} ${h.role.padEnd(6)} ${h.address.padEnd(15)} ${hostRunning(h) ? 'running' : 'STOPPED'}  (bare)`,
        );
      return lines.join('\n');
    }
    const etcd = this.etcdClient();
    const api = this.api();
    try {
      for (const h of s.hosts) {
        const up = hostRunning(h);
        let extra = '';
        if (up && h.role === 'master') {
          const e = await etcd.healthy(this.etcdUrl(h), 1000);
          const a = await this.api(h)
            .call('GET', '/readyz', undefined, 1000)
            .then((r) => r.status === 200)
            .catch(() => false);
          extra = `etcd ${e ? 'healthy' : 'DOWN'}  apiserver ${a ? 'ready' : 'NOT READY'}`;
        }
        if (up && h.role === 'lb') {
          const r = await api
            .call('GET', '/readyz', undefined, 1000)
            .then((x) => x.status === 200)
            .catch(() => false);
          extra = `${s.lb} → /readyz ${r ? 'ok' : 'FAILING'}`;
        }
        lines.push(
          `  ${h.name.padEnd(4)} ${h.role.padEnd(6)} ${h.address.padEnd(15)} ${up ? 'running' : 'STOPPED'}  ${h.etcdTools ? '' : '(no etcd tools) '}${extra}`,
        );
      }
    } finally {
      etcd.close();
      api.close();
    }
    return lines.join('\n');
  }

  /** Wait until the given master's etcd answers /health (after a restart or restore). */
  async waitEtcdHealthy(members = this.masters, timeoutMs = 60_000): Promise<void> {
    const etcd = this.etcdClient(members);
    try {
      await Promise.all(
        members.map((m) => waitFor(`etcd on ${m.name}`, () => etcd.healthy(this.etcdUrl(m)), timeoutMs, 100)),
      );
    } finally {
      etcd.close();
    }
  }

  /** Run `etcdctl` inside a master with the kubeadm certificates (ETCDCTL_API=3). */
  etcdctl(host: string, args: string): Promise<RunResult> {
    return this.exec(
      host,
      `ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key ${args}`,
    );
  }

  /** The pid of a host's PID 1 (root-namespace numbering), for debugging. */
  initPid(host: string): number | undefined {
    return hostInitPid(this.host(host));
  }
}

/**
 * The "container images" of the static pods kubeadm writes: the cached real binaries, hard-linked
 * under /usr/local/lib/kes-lab/images/<image>/<tag>/ on this machine (every host sees it through
 * its /usr/local overlay). Idempotent; several labs share it.
 */
function installImages(s: LabState): void {
  const kube = kubernetesBinDir();
  const rel = etcdRelease(s.etcdMinor);
  const entries: [string, string][] = [
    ...KUBE_BINARIES.filter((b) => b.startsWith('kube-')).map((b): [string, string] => [
      join(kube, b),
      join(IMAGES, b, s.k8sVersion, b),
    ]),
    [join(rel.dir, 'etcd'), join(IMAGES, 'etcd', etcdImageTag(rel.version), 'etcd')],
  ];
  // the images kubeadm names by default (`kubeadm init` without the lab's config, bare labs): its
  // etcd tag (3.6.x-0) runs the cached etcd 3.6 build; pause, coredns and kube-proxy have no program
  // here (their containers run a placeholder) but exist, so the CRI stand-in can "pull" them
  for (const ref of kubeadmDefaultImages()) {
    const m = /\/([^/:]+):([^/:]+)$/.exec(ref);
    if (!m) continue;
    const [, name, tag] = m;
    if (name === 'etcd') entries.push([join(etcdRelease('3.6').dir, 'etcd'), join(IMAGES, 'etcd', tag, 'etcd')]);
    else mkdirSync(join(IMAGES, name, tag), { recursive: true });
  }
  for (const [from, to] of entries) {
    if (existsSync(to)) continue;
    mkdirSync(dirname(to), { recursive: true });
    const tmp = `${to}.tmp-${process.pid}`;
    try {
      linkSync(from, tmp);
    } catch {
      copyFileSync(from, tmp);
    }
    chmodSync(tmp, 0o755);
    try {
      linkSync(tmp, to);
    } catch {
      /* another lab won the race */
    }
    rmSync(tmp, { force: true });
  }
}

let defaultImages: string[] | undefined;
/** `kubeadm config images list` of the cached kubeadm (registry.k8s.io/etcd:3.6.8-0, …). */
export function kubeadmDefaultImages(): string[] {
  defaultImages ??= runSync(join(kubernetesBinDir(), 'kubeadm'), [
    'config',
    'images',
    'list',
    '--kubernetes-version',
    KUBERNETES_VERSION,
  ])
    .stdout.trim()
    .split('\n')
    .filter(Boolean);
  return defaultImages;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

export { shq };
