// kubelet stand-in, run inside each master/worker host by the systemctl shim (kubelet.service).
// What it does, like the real one for static pods:
// - watches staticPodPath (/etc/kubernetes/manifests) from --config; starts a pod when a manifest
//   appears, restarts it when the file's content changes, stops it when the file goes away;
// - runs each container's command (+args) as a host process ("image" binaries are looked up in
//   /usr/local/lib/kes-lab/images/<image name>/ first, then in PATH), with hostPath volumes whose
//   host path differs from the mount path bind-mounted in a private mount namespace, so editing the
//   etcd-data hostPath really moves the data dir; logs go to /var/log/pods/<ns>_<pod>_<uid>/<c>/N.log;
// - restarts crashed containers with exponential back-off (2 s doubling to 40 s: the real 10 s..5 min
//   compressed for tests) and reports CrashLoopBackOff meanwhile;
// - evaluates httpGet startup/readiness probes (periods capped at 1 s) for the Ready condition
//   (liveness probes do not kill: not emulated);
// - registers its Node and a mirror pod per static pod through the API (kubelet.conf credentials),
//   pushing status at once when a container starts or dies;
// - containers survive a kubelet restart (they run detached; the next kubelet adopts them).
import { spawn, type ChildProcess } from 'node:child_process';
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
} from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { hostname, networkInterfaces, release } from 'node:os';
import { basename, join } from 'node:path';
import { parse } from 'yaml';
import { assertLabAddress } from '../guard';
import { KUBERNETES_VERSION } from '../kubeadm';
import { k8sTime, klog, KubeClient, parseFlags, readKubeconfig } from './k8s-common';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const IMAGES_DIR = '/usr/local/lib/kes-lab/images';
const STATE_DIR = '/run/kes-lab/kubelet';
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

function imageName(image: string): string {
  const noTag = image.replace(/@.*$/, '').replace(/:[^/:]*$/, '');
  return basename(noTag);
}

/** Like a container runtime resolving argv[0] inside the image, then on the host's PATH. */
export function resolveCommand(cmd: string, image: string): string | undefined {
  const inImage = join(IMAGES_DIR, imageName(image), basename(cmd));
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

function probeOnce(p: Obj | undefined, podIP: string): Promise<boolean> {
  const g = p?.httpGet;
  if (!g) return Promise.resolve(true);
  const host = g.host ?? podIP;
  try {
    assertLabAddress(host);
  } catch {
    return Promise.resolve(false);
  }
  const https = String(g.scheme ?? 'HTTP').toUpperCase() === 'HTTPS';
  return new Promise((resolve) => {
    const req = (https ? httpsRequest : httpRequest)(
      { host, port: g.port, path: g.path ?? '/', method: 'GET', timeout: 2000, rejectUnauthorized: false },
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

interface Saved {
  pid: number;
  restartCount: number;
  startedAt: string;
  containerID: string;
  hash: string;
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
    readonly pod: StaticPod,
    readonly spec: Obj,
  ) {}

  private get stateFile(): string {
    return join(STATE_DIR, `${this.pod.uid}_${this.spec.name}.json`);
  }

  /** Adopt a process left running by a previous kubelet, if its state file says so. */
  adopt(): boolean {
    try {
      const s = JSON.parse(readFileSync(this.stateFile, 'utf8')) as Saved;
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
    const cmd: string[] = [...(this.spec.command ?? []), ...(this.spec.args ?? [])].map(String);
    const bin = cmd.length ? resolveCommand(cmd[0], this.spec.image ?? '') : undefined;
    if (!bin) {
      this.failStart('StartError', `exec: "${cmd[0] ?? ''}": executable file not found in $PATH`);
      return;
    }
    // hostPath volumes: create per type; bind those whose host path differs from the mount path
    const binds: [string, string][] = [];
    const vols = new Map<string, Obj>(((this.pod.manifest.spec?.volumes ?? []) as Obj[]).map((v) => [v.name, v]));
    for (const m of (this.spec.volumeMounts ?? []) as Obj[]) {
      const hp = vols.get(m.name)?.hostPath;
      if (!hp?.path) continue;
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
      const saved: Saved = {
        pid: this.pid,
        restartCount: this.restartCount,
        startedAt: this.startedAt,
        containerID: this.containerID,
        hash: this.pod.hash,
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
        if (await probeOnce(this.spec.startupProbe, ip)) this.started = true;
      }
      const r = this.started && (await probeOnce(this.spec.readinessProbe, ip));
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

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    this.stopProbes();
    const pid = this.pid;
    if (!pid) return;
    const graceMs = Math.min(Number(this.pod.manifest.spec?.terminationGracePeriodSeconds ?? 30), 10) * 1000;
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

class StaticPod {
  readonly containers: Container[];
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly startTime = k8sTime();

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

  start(): void {
    for (const c of this.containers) if (!c.adopt()) c.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.containers.map((c) => c.stop()));
  }

  changed(): void {
    this.kubelet.markDirty();
  }

  /** The mirror pod object as the real kubelet creates it. */
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
    const cs = this.containers.map((c) => c.status());
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
    const ip = this.kubelet.nodeIP;
    return {
      phase: anyRunning || everStarted ? 'Running' : 'Pending',
      conditions: [
        cond('PodReadyToStartContainers', true),
        cond('Initialized', true),
        cond('Ready', allReady),
        cond('ContainersReady', allReady),
        cond('PodScheduled', true),
      ],
      hostIP: ip,
      hostIPs: [{ ip }],
      podIP: ip,
      podIPs: [{ ip }],
      startTime: this.startTime,
      qosClass: 'Burstable',
      containerStatuses: cs,
    };
  }
}

class Kubelet {
  readonly nodeName = hostname();
  nodeIP = '';
  private pods = new Map<string, StaticPod>(); // by manifest file
  private dirty = true;
  private nodeUid?: string;
  private lastNodeSync = 0;
  private lastPodSync = 0;
  private syncing = false;
  private reconciling = false;

  constructor(
    readonly manifestDir: string,
    readonly api: KubeClient,
    readonly roles: { controlPlane: boolean },
  ) {
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) this.nodeIP = a.address;
    }
  }

  markDirty(): void {
    this.dirty = true;
    setTimeout(() => void this.sync(), 30);
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
          klog('I', `${w ? 'manifest changed' : 'manifest removed'}: stopping static pod ${pod.name}`);
          this.pods.delete(path);
          await pod.stop();
          this.markDirty();
        }
      }
      for (const [path, w] of want) {
        if (this.pods.has(path)) continue;
        const pod = new StaticPod(this, path, w.manifest, w.hash);
        this.pods.set(path, pod);
        klog('I', `starting static pod ${pod.name} from ${path}`);
        pod.start();
        this.markDirty();
      }
    } finally {
      this.reconciling = false;
    }
  }

  private nodeObject(): Obj {
    const labels: Obj = {
      'beta.kubernetes.io/arch': 'amd64',
      'beta.kubernetes.io/os': 'linux',
      'kubernetes.io/arch': 'amd64',
      'kubernetes.io/hostname': this.nodeName,
      'kubernetes.io/os': 'linux',
    };
    if (this.roles.controlPlane) {
      labels['node-role.kubernetes.io/control-plane'] = '';
      labels['node.kubernetes.io/exclude-from-external-load-balancers'] = '';
    }
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: this.nodeName,
        labels,
        annotations: {
          'kubeadm.alpha.kubernetes.io/cri-socket': 'unix:///var/run/containerd/containerd.sock',
          'node.alpha.kubernetes.io/ttl': '0',
          'volumes.kubernetes.io/controller-managed-attach-detach': 'true',
        },
      },
      spec: this.roles.controlPlane
        ? { taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }] }
        : {},
      status: this.nodeStatus(),
    };
  }

  private nodeStatus(): Obj {
    const now = k8sTime();
    const c = (type: string, status: string, reason: string, message: string): Obj => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: now,
      lastTransitionTime: now,
    });
    return {
      addresses: [
        { type: 'InternalIP', address: this.nodeIP },
        { type: 'Hostname', address: this.nodeName },
      ],
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
        kubeProxyVersion: KUBERNETES_VERSION,
        kubeletVersion: KUBERNETES_VERSION,
        machineID: existsSync('/etc/machine-id') ? readFileSync('/etc/machine-id', 'utf8').trim() : '',
        operatingSystem: 'linux',
        osImage: 'Debian GNU/Linux 12 (bookworm)',
        systemUUID: '',
      },
    };
  }

  /** Push node + mirror pod state to the API (on change, else every 5 s as a heartbeat). */
  async sync(): Promise<void> {
    if (this.syncing) return;
    const now = Date.now();
    if (!this.dirty && now - this.lastPodSync < 5000 && now - this.lastNodeSync < 5000) return;
    this.syncing = true;
    this.dirty = false;
    try {
      await this.syncNode();
      await this.syncMirrors();
      this.lastPodSync = Date.now();
    } catch (e) {
      this.dirty = true;
      klog('W', `status sync failed (will retry): ${(e as Error).message}`);
    } finally {
      this.syncing = false;
    }
  }

  private async syncNode(): Promise<void> {
    const path = `/api/v1/nodes/${this.nodeName}`;
    const cur = await this.api.call('GET', path);
    if (cur.status === 404) {
      const r = await this.api.call('POST', '/api/v1/nodes', this.nodeObject());
      if (r.status >= 300 && r.status !== 409) throw new Error(`register node: ${r.status} ${JSON.stringify(r.body)}`);
      if (r.status < 300) klog('I', `Successfully registered node ${this.nodeName}`);
      this.nodeUid = (r.body as Obj)?.metadata?.uid;
    } else if (cur.status === 200) {
      this.nodeUid = (cur.body as Obj).metadata?.uid;
      if (Date.now() - this.lastNodeSync >= 5000) {
        const r = await this.api.call('PUT', `${path}/status`, { ...(cur.body as Obj), status: this.nodeStatus() });
        if (r.status >= 300) throw new Error(`node status: ${r.status}`);
      }
    } else throw new Error(`get node: ${cur.status}`);
    this.lastNodeSync = Date.now();
  }

  private async syncMirrors(): Promise<void> {
    const want = new Map([...this.pods.values()].map((p) => [`${p.namespace}/${p.name}`, p]));
    const list = await this.api.call('GET', `/api/v1/pods?fieldSelector=spec.nodeName%3D${this.nodeName}`);
    if (list.status !== 200) throw new Error(`list pods: ${list.status}`);
    const existing = new Map<string, Obj>();
    for (const p of ((list.body as Obj).items ?? []) as Obj[]) {
      if (!p.metadata?.annotations?.['kubernetes.io/config.mirror']) continue;
      existing.set(`${p.metadata.namespace}/${p.metadata.name}`, p);
    }
    for (const [key, p] of existing) {
      const pod = want.get(key);
      if (!pod || p.metadata.annotations['kubernetes.io/config.mirror'] !== pod.uid) {
        await this.api.call('DELETE', `/api/v1/namespaces/${p.metadata.namespace}/pods/${p.metadata.name}`);
        existing.delete(key);
      }
    }
    for (const [key, pod] of want) {
      const cur = existing.get(key);
      if (!cur) {
        const r = await this.api.call('POST', `/api/v1/namespaces/${pod.namespace}/pods`, pod.mirror(this.nodeUid));
        if (r.status >= 300 && r.status !== 409)
          throw new Error(`create mirror pod ${key}: ${r.status} ${JSON.stringify(r.body)}`);
        if (r.status === 409) this.dirty = true;
        continue;
      }
      const r = await this.api.call('PUT', `/api/v1/namespaces/${pod.namespace}/pods/${pod.name}/status`, {
        ...cur,
        status: pod.status(),
      });
      if (r.status >= 300) throw new Error(`mirror pod status ${key}: ${r.status}`);
    }
  }

  async run(): Promise<void> {
    mkdirSync(this.manifestDir, { recursive: true });
    await this.reconcile();
    // fs.watch for quick reaction, plus a 1 s poll (editors replace files; watches can miss renames)
    try {
      watch(this.manifestDir, () => setTimeout(() => void this.reconcile(), 20));
    } catch {
      /* poll only */
    }
    setInterval(() => void this.reconcile(), 1000);
    setInterval(() => void this.sync(), 1000);
    void this.sync();
  }
}

export async function main(): Promise<void> {
  process.title = 'kubelet';
  const f = parseFlags(process.argv.slice(2));
  const configPath = f.get('config') ?? '/var/lib/kubelet/config.yaml';
  const kubeconfigPath = f.get('kubeconfig') ?? '/etc/kubernetes/kubelet.conf';
  let staticPodPath = '/etc/kubernetes/manifests';
  try {
    staticPodPath = (parse(readFileSync(configPath, 'utf8')) as Obj).staticPodPath ?? staticPodPath;
  } catch (e) {
    klog('W', `reading ${configPath}: ${(e as Error).message}`);
  }
  const kc = readKubeconfig(readFileSync(kubeconfigPath, 'utf8'), parse, (p) => readFileSync(p));
  const api = new KubeClient(kc.server, { ca: kc.ca, cert: kc.cert, key: kc.key });
  const controlPlane =
    existsSync('/etc/kubernetes/manifests/kube-apiserver.yaml') || existsSync('/etc/kubernetes/pki/ca.key');
  const k = new Kubelet(staticPodPath, api, { controlPlane });
  klog(
    'I',
    `kubelet (lab stand-in) ${KUBERNETES_VERSION} node ${k.nodeName} ${k.nodeIP}, static pods from ${staticPodPath}, API ${kc.server}`,
  );
  // Like the real kubelet, stopping it leaves the containers running (the next kubelet adopts them).
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
  await k.run();
}
