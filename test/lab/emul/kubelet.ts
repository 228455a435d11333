// kubelet stand-in, run inside each master/worker host by the systemctl stand-in (kubelet.service, as
// the kubelet .deb + kubeadm's drop-in configure it). It talks to the REAL kube-apiserver and does
// what the real kubelet does where the app or kubeadm depend on it:
// - exits when /var/lib/kubelet/config.yaml is missing (systemd restarts it, kubeadm restarts it);
// - serves /healthz on healthzBindAddress:healthzPort (kubeadm waits for it);
// - TLS bootstrap: without kubelet.conf it uses bootstrap-kubelet.conf's token to post a CSR
//   (signer kubernetes.io/kube-apiserver-client-kubelet), waits for the controller-manager to
//   approve and sign it, and writes /var/lib/kubelet/pki/kubelet-client-current.pem + kubelet.conf;
// - static pods from staticPodPath: start on a new manifest, restart on change, stop on removal,
//   with the pod's termination grace (default 30 s); containers are host processes ("images" map
//   to cached real binaries: /usr/local/lib/kes-lab/images/<image>/<tag>/<command>), hostPath volumes
//   whose path differs from the mount path are bind-mounted in a private mount namespace;
// - crash back-off 2 s doubling to 40 s (the real 10 s..5 min compressed for tests), CrashLoopBackOff;
// - startup/readiness httpGet probes (periods capped at 1 s) for the Ready condition;
// - registers its Node (the labels the kubelet may set; kubeadm adds roles and taints), renews its
//   Lease, posts node status, creates mirror pods and their status (NodeRestriction rules apply);
// - runs API pods bound to its node as processes (an image with no cached binary runs a placeholder
//   that sleeps: nothing real can run nginx here), reports their status, and finishes their deletion;
// - containers survive a kubelet restart (detached; the next kubelet adopts them through the state
//   files crictl also reads); containers nobody wants any more (orphans) are stopped — API pods'
//   only after the first successful sync with the API, as the real kubelet waits for "sources ready";
// - fault (file /run/kes-lab/fault-kubelet-sources-not-ready): while it exists, the kubelet stops NO
//   pod whose manifest went away and reaps no orphan — what the real kubelet does after a restart
//   while the apiserver is unreachable, until its sources are ready — `crictl stop` still works.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  closeSync,
  rmSync,
  writeFileSync,
  watch,
  statSync,
  symlinkSync,
  renameSync,
} from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { hostname, networkInterfaces, release } from 'node:os';
import { basename, join } from 'node:path';
import { parse } from 'yaml';
import { assertLabAddress } from '../guard';
import { k8sTime, klog, KubeClient, parseFlags, readKubeconfig } from './k8s-common';
import { CONTAINER_STATE_DIR, listContainerStates, processAlive, type ContainerState } from './runtime-state';

declare const KES_K8S_VERSION: string; // set by bundle.ts (esbuild define)
const KUBERNETES_VERSION = typeof KES_K8S_VERSION === 'string' ? KES_K8S_VERSION : 'v0.0.0-lab';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const IMAGES_DIR = '/usr/local/lib/kes-lab/images';
const STATE_DIR = CONTAINER_STATE_DIR;
const FAULT_SOURCES_NOT_READY = '/run/kes-lab/fault-kubelet-sources-not-ready';
const PLACEHOLDER = '/bin/sleep';
const CONTAINER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const BACKOFF_START_MS = 2000;
const BACKOFF_MAX_MS = 40_000;
const BACKOFF_RESET_MS = 60_000;

function isExec(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function imageName(image: string): { name: string; tag: string } {
  const noDigest = image.replace(/@.*$/, '');
  const m = /^(.*?)(?::([^/:]*))?$/.exec(noDigest)!;
  return { name: basename(m[1]), tag: m[2] ?? 'latest' };
}

/** Like a container runtime resolving argv[0] inside the image, then on the host's PATH. */
export function resolveCommand(cmd: string, image: string): string | undefined {
  const { name, tag } = imageName(image);
  for (const inImage of [join(IMAGES_DIR, name, tag, basename(cmd)), join(IMAGES_DIR, name, basename(cmd))])
    if (isExec(inImage)) return inImage;
  if (cmd.startsWith('/')) return isExec(cmd) ? cmd : undefined;
  for (const dir of CONTAINER_PATH.split(':')) if (isExec(join(dir, cmd))) return join(dir, cmd);
  return undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(st); // a zombie is dead
  } catch {
    return false;
  }
}

function probeOnce(p: Obj | undefined, podIP: string, container: Obj): Promise<boolean> {
  const g = p?.httpGet;
  if (!g) return Promise.resolve(true);
  // kubeadm 1.36 names its probe ports ("probe-port"): resolve them like the kubelet does
  const port =
    typeof g.port === 'string' && !/^\d+$/.test(g.port)
      ? ((container.ports ?? []) as Obj[]).find((x) => x.name === g.port)?.containerPort
      : Number(g.port);
  if (!port) return Promise.resolve(false);
  const host = g.host ?? podIP;
  try {
    assertLabAddress(host);
  } catch {
    return Promise.resolve(false);
  }
  const https = String(g.scheme ?? 'HTTP').toUpperCase() === 'HTTPS';
  return new Promise((resolve) => {
    const req = (https ? httpsRequest : httpRequest)(
      { host, port, path: g.path ?? '/', method: 'GET', timeout: 2000, rejectUnauthorized: false },
      (res) => {
        res.resume();
        resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** What a container needs from its pod (a static pod from a manifest or an API pod). */
export interface PodOfContainer {
  readonly kubelet: { nodeIP: string };
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly hash: string;
  readonly isStatic: boolean;
  readonly spec: Obj;
  changed(): void;
}

class Container {
  pid?: number;
  child?: ChildProcess;
  restartCount = 0;
  startedAt?: string;
  containerID = '';
  waiting?: { reason: string; message?: string };
  lastState: Obj = {};
  started = false; // startupProbe passed
  ready = false;
  private stopping = false;
  private backoffMs = 0;
  private timer?: NodeJS.Timeout;
  private probeTimer?: NodeJS.Timeout;
  private pollTimer?: NodeJS.Timeout;

  constructor(
    readonly pod: PodOfContainer,
    readonly spec: Obj,
  ) {}

  private get stateFile(): string {
    return join(STATE_DIR, `${this.pod.uid}_${this.spec.name}.json`);
  }

  /** Adopt a process left running by a previous kubelet, if its state file says so. */
  adopt(): boolean {
    try {
      const s = JSON.parse(readFileSync(this.stateFile, 'utf8')) as ContainerState;
      if (s.hash !== this.pod.hash || !alive(s.pid)) return false;
      this.pid = s.pid;
      this.restartCount = s.restartCount;
      this.startedAt = s.startedAt;
      this.containerID = s.containerID;
      this.pollTimer = setInterval(() => {
        if (this.pid && !this.child && !alive(this.pid)) this.exited(null, 'unknown');
      }, 300);
      this.startProbes();
      klog('I', `adopted running container ${this.pod.name}/${this.spec.name} pid ${s.pid}`);
      return true;
    } catch {
      return false;
    }
  }

  start(): void {
    if (this.stopping) return;
    this.waiting = undefined;
    let cmd: string[] = [...(this.spec.command ?? []), ...(this.spec.args ?? [])].map(String);
    let bin = cmd.length ? resolveCommand(cmd[0], this.spec.image ?? '') : undefined;
    if (!bin && !this.pod.isStatic) {
      // No cached binary for this image (nginx, busybox…): a placeholder process keeps the
      // container "running" so controllers, endpoints and the app see a live workload.
      bin = PLACEHOLDER;
      cmd = [PLACEHOLDER, 'infinity'];
    }
    if (!bin) {
      this.failStart('StartError', `exec: "${cmd[0] ?? ''}": executable file not found in $PATH`);
      return;
    }
    // hostPath volumes: create per type; bind those whose host path differs from the mount path
    const binds: [string, string][] = [];
    const vols = new Map<string, Obj>(((this.pod.spec.volumes ?? []) as Obj[]).map((v) => [v.name, v]));
    for (const m of (this.spec.volumeMounts ?? []) as Obj[]) {
      const hp = vols.get(m.name)?.hostPath;
      if (!hp?.path || !this.pod.isStatic) continue; // API pods: no hostPath games in the lab
      try {
        if (hp.type === 'DirectoryOrCreate' && !existsSync(hp.path))
          mkdirSync(hp.path, { recursive: true, mode: 0o755 });
        if (hp.type === 'FileOrCreate' && !existsSync(hp.path)) writeFileSync(hp.path, '');
      } catch (e) {
        this.failStart('CreateContainerError', `hostPath ${hp.path}: ${(e as Error).message}`);
        return;
      }
      if (hp.path !== m.mountPath) {
        if (!existsSync(m.mountPath)) mkdirSync(m.mountPath, { recursive: true });
        binds.push([hp.path, m.mountPath]);
      }
    }
    const env: NodeJS.ProcessEnv = { PATH: CONTAINER_PATH, HOSTNAME: hostname() };
    for (const e of (this.spec.env ?? []) as Obj[]) if (e.value !== undefined) env[e.name] = String(e.value);
    const logDir = join('/var/log/pods', `${this.pod.namespace}_${this.pod.name}_${this.pod.uid}`, this.spec.name);
    mkdirSync(logDir, { recursive: true });
    const fd = openSync(join(logDir, `${this.restartCount}.log`), 'a');
    let file = bin;
    let argv = cmd.slice(1);
    if (binds.length) {
      const script =
        binds.map((_pair, i) => `mount --bind "$${i + 1}" "$${i + 1 + binds.length}" || exit 1; `).join('') +
        `shift ${binds.length * 2}; exec "$@"`;
      file = '/usr/bin/unshare';
      argv = [
        '--mount',
        '--propagation',
        'private',
        '/bin/sh',
        '-c',
        script,
        'sh',
        ...binds.map((b) => b[0]),
        ...binds.map((b) => b[1]),
        bin,
        ...cmd.slice(1),
      ];
    }
    const child = spawn(file, argv, {
      env,
      cwd: this.spec.workingDir ?? '/',
      stdio: ['ignore', fd, fd],
      detached: true,
    });
    closeSync(fd);
    this.child = child;
    this.pid = child.pid;
    this.startedAt = k8sTime();
    this.containerID = 'containerd://' + randomBytes(32).toString('hex');
    this.started = !this.spec.startupProbe;
    this.ready = false;
    if (this.pid) {
      const saved: ContainerState = {
        pid: this.pid,
        restartCount: this.restartCount,
        startedAt: this.startedAt,
        containerID: this.containerID,
        hash: this.pod.hash,
        name: this.spec.name,
        image: String(this.spec.image ?? ''),
        podName: this.pod.name,
        podNamespace: this.pod.namespace,
        podUid: this.pod.uid,
        static: this.pod.isStatic,
        logPath: join(logDir, `${this.restartCount}.log`),
      };
      mkdirSync(STATE_DIR, { recursive: true });
      writeFileSync(this.stateFile, JSON.stringify(saved));
    }
    klog('I', `started container ${this.pod.name}/${this.spec.name} (${bin}) pid ${this.pid}`);
    child.on('exit', (code, signal) => this.exited(code, signal));
    child.on('error', (e) => klog('E', `container ${this.spec.name}: ${e.message}`));
    this.startProbes();
    this.pod.changed();
  }

  private failStart(reason: string, message: string): void {
    klog('E', `container ${this.pod.name}/${this.spec.name}: ${reason}: ${message}`);
    this.lastState = { terminated: { exitCode: 128, reason, message, startedAt: k8sTime(), finishedAt: k8sTime() } };
    this.scheduleRestart(reason);
  }

  private exited(code: number | null, signal: string | null): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    this.stopProbes();
    const ranMs = this.startedAt ? Date.now() - Date.parse(this.startedAt) : 0;
    this.lastState = {
      terminated: {
        exitCode: code ?? (signal === 'SIGKILL' ? 137 : 143),
        ...(signal ? { signal: 0 } : {}),
        reason: code === 0 ? 'Completed' : 'Error',
        startedAt: this.startedAt,
        finishedAt: k8sTime(),
        containerID: this.containerID,
      },
    };
    this.child = undefined;
    this.pid = undefined;
    this.ready = false;
    try {
      rmSync(this.stateFile, { force: true });
    } catch {
      /* ignore */
    }
    klog('I', `container ${this.pod.name}/${this.spec.name} exited (code ${code}, signal ${signal})`);
    if (this.stopping) {
      this.pod.changed();
      return;
    }
    if (ranMs > BACKOFF_RESET_MS) this.backoffMs = 0;
    this.scheduleRestart('CrashLoopBackOff');
  }

  private scheduleRestart(reason: string): void {
    this.backoffMs = this.backoffMs ? Math.min(this.backoffMs * 2, BACKOFF_MAX_MS) : BACKOFF_START_MS;
    this.waiting = {
      reason,
      message: `back-off ${Math.round(this.backoffMs / 1000)}s restarting failed container=${this.spec.name} pod=${this.pod.name}_${this.pod.namespace}(${this.pod.uid})`,
    };
    this.pod.changed();
    this.timer = setTimeout(() => {
      this.restartCount++;
      this.start();
    }, this.backoffMs);
  }

  private startProbes(): void {
    this.stopProbes();
    const tick = async (): Promise<void> => {
      if (!this.pid) return;
      const ip = this.pod.kubelet.nodeIP;
      if (!this.started) {
        if (await probeOnce(this.spec.startupProbe, ip, this.spec)) this.started = true;
      }
      const r = this.started && (await probeOnce(this.spec.readinessProbe, ip, this.spec));
      if (r !== this.ready && this.pid) {
        this.ready = r;
        this.pod.changed();
      }
    };
    void tick();
    this.probeTimer = setInterval(() => void tick(), 1000);
  }

  private stopProbes(): void {
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = undefined;
  }

  /** Forget the process without stopping it (it becomes an orphan the kubelet no longer manages). */
  detach(): void {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.stopProbes();
    this.child?.removeAllListeners('exit');
    this.child?.unref();
    this.child = undefined;
    this.pid = undefined;
  }

  /** SIGTERM, then SIGKILL after the pod's grace period (the real default: 30 s). */
  async stop(graceSeconds?: number): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.stopProbes();
    const pid = this.pid;
    if (!pid) return;
    const graceMs = Number(graceSeconds ?? this.pod.spec.terminationGracePeriodSeconds ?? 30) * 1000;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    const deadline = Date.now() + graceMs;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (alive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      while (alive(pid)) await new Promise((r) => setTimeout(r, 20));
    }
    if (this.pid === pid && !this.child) this.exited(null, 'SIGTERM'); // adopted: no exit event
  }

  status(): Obj {
    const running = !!this.pid;
    const state = running
      ? { running: { startedAt: this.startedAt } }
      : this.waiting
        ? { waiting: this.waiting }
        : this.lastState.terminated
          ? { terminated: this.lastState.terminated }
          : { waiting: { reason: 'ContainerCreating' } };
    return {
      name: this.spec.name,
      image: this.spec.image,
      imageID: `${String(this.spec.image).replace(/:[^/:]*$/, '')}@sha256:${createHash('sha256').update(String(this.spec.image)).digest('hex')}`,
      containerID: this.containerID || undefined,
      ready: running && this.ready,
      started: running && this.started,
      restartCount: this.restartCount,
      state,
      lastState: running || this.waiting ? this.lastState : {},
    };
  }
}

/** Pod status as the kubelet reports it (mirror pods and API pods alike). */
function podStatus(containers: Container[], nodeIP: string, startTime: string): Obj {
  const cs = containers.map((c) => c.status());
  const allReady = cs.length > 0 && cs.every((c) => c.ready);
  const anyRunning = cs.some((c) => c.state.running);
  const everStarted = cs.some((c) => c.state.running || c.restartCount > 0 || c.lastState.terminated);
  const now = k8sTime();
  const cond = (type: string, ok: boolean): Obj => ({
    type,
    status: ok ? 'True' : 'False',
    lastProbeTime: null,
    lastTransitionTime: now,
  });
  return {
    phase: anyRunning || everStarted ? 'Running' : 'Pending',
    conditions: [
      cond('PodReadyToStartContainers', true),
      cond('Initialized', true),
      cond('Ready', allReady),
      cond('ContainersReady', allReady),
      cond('PodScheduled', true),
    ],
    hostIP: nodeIP,
    hostIPs: [{ ip: nodeIP }],
    podIP: nodeIP,
    podIPs: [{ ip: nodeIP }],
    startTime,
    qosClass: 'Burstable',
    containerStatuses: cs,
  };
}

function fullName(p: { namespace: string; name: string }): string {
  return `${p.namespace}/${p.name}`;
}

class StaticPod implements PodOfContainer {
  readonly containers: Container[];
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly startTime = k8sTime();
  readonly isStatic = true;

  constructor(
    readonly kubelet: Kubelet,
    readonly file: string,
    readonly manifest: Obj,
    readonly hash: string,
  ) {
    this.uid = hash.slice(0, 32);
    this.name = `${manifest.metadata?.name ?? basename(file, '.yaml')}-${kubelet.nodeName}`;
    this.namespace = manifest.metadata?.namespace ?? 'default';
    this.containers = ((manifest.spec?.containers ?? []) as Obj[]).map((c) => new Container(this, c));
  }

  get spec(): Obj {
    return this.manifest.spec ?? {};
  }

  start(): void {
    for (const c of this.containers) if (!c.adopt()) c.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.containers.map((c) => c.stop()));
  }

  changed(): void {
    this.kubelet.markDirty();
  }

  /** The mirror pod object as the real kubelet creates it (NodeRestriction: owned by the Node). */
  mirror(nodeUid: string | undefined): Obj {
    const m = this.manifest.metadata ?? {};
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: this.name,
        namespace: this.namespace,
        labels: m.labels ?? {},
        annotations: {
          ...(m.annotations ?? {}),
          'kubernetes.io/config.hash': this.uid,
          'kubernetes.io/config.mirror': this.uid,
          'kubernetes.io/config.seen': new Date().toISOString(),
          'kubernetes.io/config.source': 'file',
        },
        ownerReferences: nodeUid
          ? [{ apiVersion: 'v1', kind: 'Node', name: this.kubelet.nodeName, uid: nodeUid, controller: true }]
          : undefined,
      },
      spec: {
        ...(this.manifest.spec ?? {}),
        nodeName: this.kubelet.nodeName,
        restartPolicy: this.manifest.spec?.restartPolicy ?? 'Always',
        tolerations: [{ operator: 'Exists', effect: 'NoExecute' }],
      },
      status: this.status(),
    };
  }

  status(): Obj {
    return podStatus(this.containers, this.kubelet.nodeIP, this.startTime);
  }
}

/** A pod the scheduler (or a user) bound to this node through the API. */
class ApiPod implements PodOfContainer {
  readonly containers: Container[];
  readonly isStatic = false;
  readonly startTime = k8sTime();
  terminating = false;

  constructor(
    readonly kubelet: Kubelet,
    public obj: Obj,
  ) {
    this.containers = ((obj.spec?.containers ?? []) as Obj[]).map((c) => new Container(this, c));
  }
  get uid(): string {
    return this.obj.metadata.uid;
  }
  get hash(): string {
    return this.obj.metadata.uid;
  }
  get name(): string {
    return this.obj.metadata.name;
  }
  get namespace(): string {
    return this.obj.metadata.namespace;
  }
  get spec(): Obj {
    return this.obj.spec ?? {};
  }
  start(): void {
    for (const c of this.containers) if (!c.adopt()) c.start();
  }
  async stop(graceSeconds?: number): Promise<void> {
    await Promise.all(this.containers.map((c) => c.stop(graceSeconds)));
  }
  changed(): void {
    this.kubelet.markDirty();
  }
  status(): Obj {
    return podStatus(this.containers, this.kubelet.nodeIP, this.startTime);
  }
}

/** A container found running that no pod of this kubelet wants (its manifest or API pod went away). */
interface Orphan {
  state: ContainerState;
  file: string;
}

function writeFileAtomic(path: string, data: string | Buffer, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, path);
}

function kubeletKubeconfig(server: string, ca: Buffer, certFile: string): string {
  return `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ${ca.toString('base64')}
    server: ${server}
  name: default-cluster
contexts:
- context:
    cluster: default-cluster
    namespace: default
    user: default-auth
  name: default-context
current-context: default-context
kind: Config
preferences: {}
users:
- name: default-auth
  user:
    client-certificate: ${certFile}
    client-key: ${certFile}
`;
}

const PKI_DIR = '/var/lib/kubelet/pki';
const CURRENT_PEM = `${PKI_DIR}/kubelet-client-current.pem`;

function storeClientPem(pem: string): void {
  mkdirSync(PKI_DIR, { recursive: true, mode: 0o700 });
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  const file = `${PKI_DIR}/kubelet-client-${stamp}.pem`;
  writeFileSync(file, pem, { mode: 0o600 });
  rmSync(`${CURRENT_PEM}.tmp`, { force: true });
  symlinkSync(file, `${CURRENT_PEM}.tmp`);
  renameSync(`${CURRENT_PEM}.tmp`, CURRENT_PEM);
}

class Kubelet {
  readonly nodeName: string;
  nodeIP = '';
  api?: KubeClient;
  private pods = new Map<string, StaticPod>(); // by manifest file
  /** Static pods being stopped, by full name (namespace/name). */
  private terminating = new Map<string, Promise<void>>();
  private apiPods = new Map<string, ApiPod>(); // by uid
  private orphans: Orphan[] = [];
  private dirty = true;
  private nodeUid?: string;
  private lastNodeSync = 0;
  private lastPodSync = 0;
  private lastLease = 0;
  private syncing = false;
  private reconciling = false;
  /** The API source has answered once since this process started ("sources ready"). */
  private apiSynced = false;

  constructor(
    readonly manifestDir: string,
    nodeName: string,
  ) {
    this.nodeName = nodeName;
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) this.nodeIP = a.address;
    }
  }

  /** The lab fault: behave as a kubelet whose API source never became ready (see the header). */
  private get stickyFault(): boolean {
    return existsSync(FAULT_SOURCES_NOT_READY);
  }

  markDirty(): void {
    this.dirty = true;
    setTimeout(() => void this.sync(), 30);
  }

  /** Containers left running by a previous kubelet that no current pod will adopt. */
  collectOrphans(): void {
    const claimed = new Set<string>();
    for (const p of this.pods.values()) for (const c of p.containers) claimed.add(`${p.uid}_${c.spec.name}`);
    for (const p of this.apiPods.values()) for (const c of p.containers) claimed.add(`${p.uid}_${c.spec.name}`);
    const known = new Set(this.orphans.map((o) => o.file));
    for (const st of listContainerStates()) {
      if (claimed.has(`${st.podUid}_${st.name}`) || known.has(st.file)) continue;
      if (!processAlive(st.pid)) {
        rmSync(st.file, { force: true });
        continue;
      }
      this.orphans.push({ state: st, file: st.file });
      klog('I', `found orphaned container ${st.podName}/${st.name} pid ${st.pid}`);
    }
  }

  /** Stop orphans once allowed: static ones at once, API ones after the first API sync (sources ready). */
  private async reapOrphans(): Promise<void> {
    const keep: Orphan[] = [];
    const kills: Promise<void>[] = [];
    for (const o of this.orphans) {
      if (!processAlive(o.state.pid)) {
        rmSync(o.file, { force: true });
        continue;
      }
      const allowed = !this.stickyFault && (this.apiSynced || o.state.static);
      if (!allowed) {
        keep.push(o);
        continue;
      }
      kills.push(
        (async () => {
          klog('I', `killing orphaned container ${o.state.podName}/${o.state.name} pid ${o.state.pid}`);
          const grace = Date.now() + 30_000;
          try {
            process.kill(o.state.pid, 'SIGTERM');
          } catch {
            /* gone */
          }
          while (processAlive(o.state.pid) && Date.now() < grace) await new Promise((r) => setTimeout(r, 50));
          try {
            process.kill(o.state.pid, 'SIGKILL');
          } catch {
            /* gone */
          }
          rmSync(o.file, { force: true });
        })(),
      );
    }
    this.orphans = keep;
    await Promise.all(kills); // together, as the real kubelet's per-pod workers do
  }

  /** Compare the manifest dir with running pods: start new, restart changed, stop removed. */
  async reconcile(): Promise<void> {
    if (this.reconciling) return;
    this.reconciling = true;
    try {
      const want = new Map<string, { manifest: Obj; hash: string }>();
      let files: string[] = [];
      try {
        files = readdirSync(this.manifestDir).filter((f) => !f.startsWith('.') && /\.(ya?ml|json)$/.test(f));
      } catch {
        files = [];
      }
      for (const f of files) {
        const path = join(this.manifestDir, f);
        try {
          const text = readFileSync(path, 'utf8');
          const manifest = parse(text) as Obj;
          if (manifest?.kind !== 'Pod') continue;
          const hash = createHash('sha256').update(text).update(this.nodeName).digest('hex');
          want.set(path, { manifest, hash });
        } catch (e) {
          klog('E', `could not parse static pod manifest ${path}: ${(e as Error).message}`);
        }
      }
      for (const [path, pod] of [...this.pods]) {
        const w = want.get(path);
        if (!w || w.hash !== pod.hash) {
          this.pods.delete(path);
          if (this.stickyFault) {
            // The real kubelet, restarted while the apiserver was unreachable, keeps such pods
            // running until its sources are ready: they become orphans nobody restarts.
            klog('W', `sources not ready: not stopping static pod ${pod.name} (manifest ${w ? 'changed' : 'removed'})`);
            for (const c of pod.containers) {
              const st = listContainerStates().find((x) => x.podUid === pod.uid && x.name === c.spec.name);
              c.detach();
              if (st) this.orphans.push({ state: st, file: st.file });
            }
          } else {
            // Each pod has its own worker in the real kubelet: a pod that takes its grace period
            // to stop (kube-apiserver exits ~12 s after SIGTERM) holds up no other pod — only a new
            // static pod of the same full name waits for it (pod_workers.go allowStaticPodStart).
            klog('I', `${w ? 'manifest changed' : 'manifest removed'}: stopping static pod ${pod.name}`);
            const key = fullName(pod);
            const done: Promise<void> = pod.stop().finally(() => {
              if (this.terminating.get(key) === done) this.terminating.delete(key);
              setTimeout(() => void this.reconcile(), 20);
            });
            this.terminating.set(key, done);
          }
          this.markDirty();
        }
      }
      for (const [path, w] of want) {
        if (this.pods.has(path)) continue;
        const pod = new StaticPod(this, path, w.manifest, w.hash);
        if (this.terminating.has(fullName(pod))) {
          klog('I', `static pod ${pod.name} waits until its previous instance has terminated`);
          continue;
        }
        this.pods.set(path, pod);
        klog('I', `starting static pod ${pod.name} from ${path}`);
        pod.start();
        this.markDirty();
      }
      await this.reapOrphans();
    } finally {
      this.reconciling = false;
    }
  }

  private nodeObject(): Obj {
    // Only the labels a kubelet may set itself (NodeRestriction); kubeadm adds the role and taint.
    const labels: Obj = {
      'beta.kubernetes.io/arch': 'amd64',
      'beta.kubernetes.io/os': 'linux',
      'kubernetes.io/arch': 'amd64',
      'kubernetes.io/hostname': this.nodeName,
      'kubernetes.io/os': 'linux',
    };
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: this.nodeName,
        labels,
        annotations: { 'volumes.kubernetes.io/controller-managed-attach-detach': 'true' },
      },
      spec: {},
      status: this.nodeStatus(),
    };
  }

  private nodeStatus(prev?: Obj): Obj {
    const now = k8sTime();
    const old = new Map<string, Obj>(((prev?.conditions ?? []) as Obj[]).map((c) => [c.type, c]));
    const c = (type: string, status: string, reason: string, message: string): Obj => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: now,
      lastTransitionTime: old.get(type)?.status === status ? old.get(type)!.lastTransitionTime : now,
    });
    return {
      ...(prev ?? {}),
      addresses: [
        { type: 'InternalIP', address: this.nodeIP },
        { type: 'Hostname', address: this.nodeName },
      ],
      capacity: { cpu: '2', memory: '8Gi', pods: '110', 'ephemeral-storage': '20Gi' },
      allocatable: { cpu: '2', memory: '8Gi', pods: '110', 'ephemeral-storage': '20Gi' },
      conditions: [
        c('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
        c('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
        c('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
        c('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'),
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        architecture: 'amd64',
        bootID: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
        containerRuntimeVersion: 'containerd://1.7.24',
        kernelVersion: release(),
        kubeProxyVersion: '',
        kubeletVersion: KUBERNETES_VERSION,
        machineID: existsSync('/etc/machine-id') ? readFileSync('/etc/machine-id', 'utf8').trim() : '',
        operatingSystem: 'linux',
        osImage: 'Debian GNU/Linux 12 (bookworm)',
        systemUUID: '',
      },
    };
  }

  /** Push node, lease, mirror pods and API pods to/from the API (on change, else every 5 s). */
  async sync(): Promise<void> {
    if (this.syncing || !this.api) return;
    const now = Date.now();
    if (!this.dirty && now - this.lastPodSync < 2000 && now - this.lastNodeSync < 5000) return;
    this.syncing = true;
    this.dirty = false;
    try {
      await this.syncNode();
      await this.syncLease();
      await this.syncPods();
      this.lastPodSync = Date.now();
      if (!this.apiSynced) {
        this.apiSynced = true;
        klog('I', 'API source synced (sources ready)');
        await this.reapOrphans();
      }
    } catch (e) {
      this.dirty = true;
      klog('W', `status sync failed (will retry): ${(e as Error).message}`);
    } finally {
      this.syncing = false;
    }
  }

  private async syncNode(): Promise<void> {
    const api = this.api!;
    const path = `/api/v1/nodes/${this.nodeName}`;
    const cur = await api.call('GET', path);
    if (cur.status === 404) {
      const r = await api.call('POST', '/api/v1/nodes', this.nodeObject());
      if (r.status >= 300 && r.status !== 409) throw new Error(`register node: ${r.status} ${JSON.stringify(r.body)}`);
      if (r.status < 300) klog('I', `Successfully registered node ${this.nodeName}`);
      this.nodeUid = (r.body as Obj)?.metadata?.uid;
    } else if (cur.status === 200) {
      const node = cur.body as Obj;
      this.nodeUid = node.metadata?.uid;
      if (Date.now() - this.lastNodeSync >= 5000) {
        const r = await api.call('PUT', `${path}/status`, { ...node, status: this.nodeStatus(node.status) });
        if (r.status >= 300 && r.status !== 409) throw new Error(`node status: ${r.status}`);
      }
    } else throw new Error(`get node: ${cur.status} ${JSON.stringify(cur.body).slice(0, 200)}`);
    this.lastNodeSync = Date.now();
  }

  /** The node heartbeat the node lifecycle controller watches (kube-node-lease). */
  private async syncLease(): Promise<void> {
    if (Date.now() - this.lastLease < 10_000 || !this.nodeUid) return;
    const api = this.api!;
    const base = '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases';
    const renewTime = new Date().toISOString().replace('Z', '000Z');
    const cur = await api.call('GET', `${base}/${this.nodeName}`);
    const spec = { holderIdentity: this.nodeName, leaseDurationSeconds: 40, renewTime };
    const r =
      cur.status === 404
        ? await api.call('POST', base, {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: {
              name: this.nodeName,
              namespace: 'kube-node-lease',
              ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: this.nodeName, uid: this.nodeUid }],
            },
            spec,
          })
        : await api.call('PUT', `${base}/${this.nodeName}`, {
            ...(cur.body as Obj),
            spec: { ...((cur.body as Obj).spec ?? {}), ...spec },
          });
    if (r.status < 300) this.lastLease = Date.now();
  }

  private async syncPods(): Promise<void> {
    const api = this.api!;
    const want = new Map([...this.pods.values()].map((p) => [`${p.namespace}/${p.name}`, p]));
    const list = await api.call('GET', `/api/v1/pods?fieldSelector=spec.nodeName%3D${this.nodeName}`);
    if (list.status !== 200) throw new Error(`list pods: ${list.status}`);
    const mirrors = new Map<string, Obj>();
    const bound = new Map<string, Obj>();
    for (const p of ((list.body as Obj).items ?? []) as Obj[]) {
      if (p.metadata?.annotations?.['kubernetes.io/config.mirror'])
        mirrors.set(`${p.metadata.namespace}/${p.metadata.name}`, p);
      else bound.set(p.metadata.uid, p);
    }
    // mirror pods
    for (const [key, p] of mirrors) {
      const pod = want.get(key);
      if (!pod || p.metadata.annotations['kubernetes.io/config.mirror'] !== pod.uid) {
        await api.call('DELETE', `/api/v1/namespaces/${p.metadata.namespace}/pods/${p.metadata.name}`);
        mirrors.delete(key);
      }
    }
    for (const [key, pod] of want) {
      const cur = mirrors.get(key);
      if (!cur) {
        const r = await api.call('POST', `/api/v1/namespaces/${pod.namespace}/pods`, pod.mirror(this.nodeUid));
        if (r.status >= 300 && r.status !== 409)
          throw new Error(`create mirror pod ${key}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
        if (r.status === 409) this.dirty = true;
        continue;
      }
      const r = await api.call('PUT', `/api/v1/namespaces/${pod.namespace}/pods/${pod.name}/status`, {
        ...cur,
        status: pod.status(),
      });
      if (r.status >= 300 && r.status !== 409) throw new Error(`mirror pod status ${key}: ${r.status}`);
    }
    await this.syncApiPods(bound);
  }

  /** Run the pods bound to this node, finish the deletion of terminating ones, report status. */
  private async syncApiPods(bound: Map<string, Obj>): Promise<void> {
    const api = this.api!;
    for (const [uid, pod] of [...this.apiPods]) {
      if (bound.has(uid) || pod.terminating) continue;
      // deleted from the API (forced) while we ran it
      this.apiPods.delete(uid);
      klog('I', `pod ${pod.namespace}/${pod.name} is gone from the API: stopping it`);
      void pod.stop(0);
    }
    for (const [uid, obj] of bound) {
      let pod = this.apiPods.get(uid);
      if (!pod) {
        if (['Succeeded', 'Failed'].includes(obj.status?.phase)) continue;
        if (obj.metadata.deletionTimestamp) {
          await this.finishDelete(obj);
          continue;
        }
        pod = new ApiPod(this, obj);
        this.apiPods.set(uid, pod);
        klog('I', `starting pod ${pod.namespace}/${pod.name}`);
        pod.start();
      }
      pod.obj = obj;
      if (obj.metadata.deletionTimestamp && !pod.terminating) {
        pod.terminating = true;
        const p = pod;
        klog('I', `pod ${p.namespace}/${p.name} is terminating`);
        void p
          .stop(Number(obj.metadata.deletionGracePeriodSeconds ?? obj.spec?.terminationGracePeriodSeconds ?? 30))
          .then(async () => {
            this.apiPods.delete(uid);
            await this.finishDelete(p.obj).catch(() => undefined);
          });
        continue;
      }
      if (pod.terminating) continue;
      const r = await api.call('PUT', `/api/v1/namespaces/${pod.namespace}/pods/${pod.name}/status`, {
        ...obj,
        // qosClass is the API's to compute (and immutable): keep what it says
        status: { ...(obj.status ?? {}), ...pod.status(), qosClass: obj.status?.qosClass ?? 'BestEffort' },
      });
      if (r.status >= 300 && r.status !== 409 && r.status !== 404)
        klog('W', `pod status ${pod.namespace}/${pod.name}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    }
  }

  /**
   * The last step of a graceful deletion, as the kubelet's status manager does it: DELETE with grace
   * 0 and the pod's uid as precondition. A pod already being deleted with a longer grace period is
   * only shortened to 0 by the first call; the next one removes it, so repeat until it is gone.
   */
  private async finishDelete(obj: Obj): Promise<void> {
    const path = `/api/v1/namespaces/${obj.metadata.namespace}/pods/${obj.metadata.name}`;
    for (let i = 0; i < 3; i++) {
      const r = await this.api!.call('DELETE', path, {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        gracePeriodSeconds: 0,
        preconditions: { uid: obj.metadata.uid },
      });
      if (r.status === 404 || r.status === 409) return; // gone, or another pod of that name now
      if (r.status >= 300) {
        klog(
          'W',
          `deleting ${obj.metadata.namespace}/${obj.metadata.name}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`,
        );
        return;
      }
      const g = await this.api!.call('GET', path);
      if (g.status === 404 || (g.body as Obj)?.metadata?.uid !== obj.metadata.uid) {
        klog('I', `pod ${obj.metadata.namespace}/${obj.metadata.name} deleted`);
        return;
      }
    }
  }

  /** healthz like the real kubelet's (kubeadm polls it before waiting for the control plane). */
  serveHealthz(address: string, port: number): void {
    const srv = createServer((req, res) => {
      res.writeHead(req.url?.startsWith('/healthz') ? 200 : 404, { 'content-type': 'text/plain' });
      res.end(req.url?.startsWith('/healthz') ? 'ok' : 'not found');
    });
    srv.on('error', (e) => klog('E', `healthz server: ${e.message}`));
    srv.listen(port, address);
  }

  async run(connect: () => Promise<KubeClient>): Promise<void> {
    mkdirSync(this.manifestDir, { recursive: true });
    await this.reconcile(); // static pods start without any API (that is how the control plane boots)
    this.collectOrphans();
    await this.reapOrphans();
    // fs.watch for quick reaction, plus a 1 s poll (editors replace files; watches can miss renames)
    try {
      watch(this.manifestDir, () => setTimeout(() => void this.reconcile(), 20));
    } catch {
      /* poll only */
    }
    setInterval(() => void this.reconcile(), 1000);
    setInterval(() => void this.sync(), 1000);
    this.api = await connect();
    void this.sync();
  }
}

/** The API client: kubelet.conf when it exists, else TLS bootstrap with bootstrap-kubelet.conf. */
async function connectApi(kubeconfigPath: string, bootstrapPath: string | undefined): Promise<KubeClient> {
  for (let attempt = 0; ; attempt++) {
    if (existsSync(kubeconfigPath)) {
      const kc = readKubeconfig(readFileSync(kubeconfigPath, 'utf8'), parse, (p) => readFileSync(p));
      // kubeadm init writes the first master's client certificate into kubelet.conf; the real
      // kubelet's certificate manager keeps it as kubelet-client-current.pem (kubelet-finalize
      // then points kubelet.conf at that file).
      if (
        kc.cert &&
        kc.key &&
        !existsSync(CURRENT_PEM) &&
        /client-certificate-data/.test(readFileSync(kubeconfigPath, 'utf8'))
      )
        storeClientPem(`${kc.cert.toString()}${kc.key.toString()}`);
      return new KubeClient(kc.server, { ca: kc.ca, cert: kc.cert, key: kc.key, token: kc.token });
    }
    if (bootstrapPath && existsSync(bootstrapPath)) {
      try {
        return await tlsBootstrap(kubeconfigPath, bootstrapPath);
      } catch (e) {
        klog('W', `TLS bootstrap: ${(e as Error).message} (retrying)`);
      }
    } else if (attempt % 30 === 0)
      klog('I', `waiting for ${kubeconfigPath} or ${bootstrapPath ?? 'a bootstrap kubeconfig'}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The kubelet's client certificate through a CSR, as the real kubelet bootstraps. */
async function tlsBootstrap(kubeconfigPath: string, bootstrapPath: string): Promise<KubeClient> {
  const kc = readKubeconfig(readFileSync(bootstrapPath, 'utf8'), parse, (p) => readFileSync(p));
  const nodeName = hostname();
  mkdirSync(PKI_DIR, { recursive: true, mode: 0o700 });
  const keyFile = `${PKI_DIR}/kubelet-client.key.tmp`;
  const csr = execFileSync(
    'openssl',
    [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-subj',
      `/O=system:nodes/CN=system:node:${nodeName}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  ).toString();
  const key = readFileSync(keyFile, 'utf8');
  rmSync(keyFile, { force: true });
  const api = new KubeClient(kc.server, { ca: kc.ca, cert: kc.cert, key: kc.key, token: kc.token });
  try {
    const base = '/apis/certificates.k8s.io/v1/certificatesigningrequests';
    const r = await api.call('POST', base, {
      apiVersion: 'certificates.k8s.io/v1',
      kind: 'CertificateSigningRequest',
      metadata: { generateName: 'csr-' },
      spec: {
        request: Buffer.from(csr).toString('base64'),
        signerName: 'kubernetes.io/kube-apiserver-client-kubelet',
        usages: ['digital signature', 'client auth'],
      },
    });
    if (r.status >= 300) throw new Error(`create CSR: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    const name = (r.body as Obj).metadata.name as string;
    klog('I', `posted CSR ${name} for system:node:${nodeName}; waiting for approval and signature`);
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const g = await api.call('GET', `${base}/${name}`);
      const cert = (g.body as Obj)?.status?.certificate as string | undefined;
      if (g.status === 200 && cert) {
        storeClientPem(`${Buffer.from(cert, 'base64').toString()}${key}`);
        writeFileAtomic(kubeconfigPath, kubeletKubeconfig(kc.server, kc.ca, CURRENT_PEM), 0o600);
        klog('I', `TLS bootstrap done: wrote ${kubeconfigPath}`);
        return new KubeClient(kc.server, {
          ca: kc.ca,
          cert: readFileSync(CURRENT_PEM),
          key: readFileSync(CURRENT_PEM),
        });
      }
      await new Promise((res) => setTimeout(res, 500));
    }
    throw new Error(`CSR ${name} was not signed within 120 s`);
  } finally {
    api.close();
  }
}

export async function main(): Promise<void> {
  process.title = 'kubelet';
  const f = parseFlags(process.argv.slice(2));
  if (f.has('version')) {
    // kubeadm's preflight (KubeletVersion) runs `kubelet --version`
    process.stdout.write(`Kubernetes ${KUBERNETES_VERSION}\n`);
    return;
  }
  const configPath = f.get('config') ?? '/var/lib/kubelet/config.yaml';
  const kubeconfigPath = f.get('kubeconfig') ?? '/etc/kubernetes/kubelet.conf';
  let config: Obj;
  try {
    config = parse(readFileSync(configPath, 'utf8')) as Obj;
  } catch (e) {
    // the real kubelet exits too; systemd restarts it (kubeadm writes the file, then restarts it)
    klog('E', `failed to load kubelet config file, path: ${configPath}, error: ${(e as Error).message}`);
    process.exit(1);
  }
  const k = new Kubelet(config.staticPodPath ?? '/etc/kubernetes/manifests', f.get('hostname-override') ?? hostname());
  klog(
    'I',
    `kubelet (lab stand-in) ${KUBERNETES_VERSION} node ${k.nodeName} ${k.nodeIP}, static pods from ${k.manifestDir}`,
  );
  k.serveHealthz(config.healthzBindAddress ?? '127.0.0.1', Number(config.healthzPort ?? 10248));
  // Like the real one, stopping the kubelet leaves the containers running (the next kubelet adopts them).
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
  await k.run(() => connectApi(kubeconfigPath, f.get('bootstrap-kubeconfig')));
}
