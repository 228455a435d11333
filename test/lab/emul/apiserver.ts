// kube-apiserver stand-in, run by the kubelet stand-in as the command of kube-apiserver.yaml.
// It honours the real flags (--secure-port, --bind-address, --tls-cert-file, --tls-private-key-file,
// --client-ca-file, --etcd-servers, --etcd-cafile/certfile/keyfile) and stores every object in etcd
// under /registry/... as JSON (what the real one does with --storage-media-type=application/json), so
// etcd snapshots, restores and wipes affect the "cluster" exactly as they would a real one.
// Served: /livez /readyz /healthz /version, discovery (/api, /api/v1, /apis), namespaces, nodes, pods
// (list/get/create/update/patch/delete, pods/status, nodes/status), server-side Tables for kubectl.
// Authentication: client certificates signed by --client-ca-file (CN = user, O = groups); anonymous
// only for the health and version endpoints (like system:public-info-viewer). No authorization.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { KUBERNETES_VERSION } from '../kubeadm';
import { EtcdClient } from './etcd-client';
import { k8sTime, klog, parseFlags } from './k8s-common';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Resource {
  name: string; // plural
  kind: string;
  namespaced: boolean;
  prefix: string; // etcd key prefix (the real apiserver's)
  shortNames?: string[];
}

const RESOURCES: Resource[] = [
  { name: 'namespaces', kind: 'Namespace', namespaced: false, prefix: '/registry/namespaces/', shortNames: ['ns'] },
  { name: 'nodes', kind: 'Node', namespaced: false, prefix: '/registry/minions/', shortNames: ['no'] },
  { name: 'pods', kind: 'Pod', namespaced: true, prefix: '/registry/pods/', shortNames: ['po'] },
];
const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

function status(code: number, reason: string, message: string): Obj {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: code < 400 ? 'Success' : 'Failure',
    message,
    reason,
    code,
  };
}

const notFound = (r: Resource, name: string): HttpError =>
  new HttpError(404, 'NotFound', `${r.name} "${name}" not found`);

function age(ts: string | undefined): string {
  if (!ts) return '<unknown>';
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(ts)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** RFC 7386 JSON merge patch (kubectl's strategic merge for our simple objects is close enough). */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Obj = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Obj) } : {};
  for (const [k, v] of Object.entries(patch as Obj)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function matchLabels(obj: Obj, selector: string | null): boolean {
  if (!selector) return true;
  const labels: Obj = obj.metadata?.labels ?? {};
  return selector.split(',').every((term) => {
    const t = term.trim();
    if (!t) return true;
    let m = /^([^!=]+)!=(.*)$/.exec(t);
    if (m) return labels[m[1].trim()] !== m[2].trim();
    m = /^([^=]+)==?(.*)$/.exec(t);
    if (m) return labels[m[1].trim()] === m[2].trim();
    if (t.startsWith('!')) return !(t.slice(1) in labels);
    return t in labels;
  });
}

function matchFields(obj: Obj, selector: string | null): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const m = /^([^!=]+)(!=|==|=)(.*)$/.exec(term.trim());
    if (!m) return true;
    const path = m[1].trim().split('.');
    let v: unknown = obj;
    for (const p of path) v = v && typeof v === 'object' ? (v as Obj)[p] : undefined;
    const eq = String(v ?? '') === m[3].trim();
    return m[2] === '!=' ? !eq : eq;
  });
}

function podReady(p: Obj): string {
  const cs: Obj[] = p.status?.containerStatuses ?? [];
  const total = p.spec?.containers?.length ?? cs.length;
  return `${cs.filter((c) => c.ready).length}/${total}`;
}

function podStatusText(p: Obj): string {
  if (p.metadata?.deletionTimestamp) return 'Terminating';
  for (const c of (p.status?.containerStatuses ?? []) as Obj[]) {
    if (c.state?.waiting?.reason) return c.state.waiting.reason;
    if (c.state?.terminated?.reason) return c.state.terminated.reason;
  }
  return p.status?.phase ?? 'Unknown';
}

function table(r: Resource, items: Obj[], includeObject: string | null, listRv: string): Obj {
  const cols: Obj[] = [{ name: 'Name', type: 'string', format: 'name', description: 'Name', priority: 0 }];
  const row = (o: Obj): unknown[] => {
    if (r.kind === 'Pod') {
      const restarts = ((o.status?.containerStatuses ?? []) as Obj[]).reduce((a, c) => a + (c.restartCount ?? 0), 0);
      return [
        o.metadata.name,
        podReady(o),
        podStatusText(o),
        restarts,
        age(o.metadata.creationTimestamp),
        o.status?.podIP ?? '<none>',
        o.spec?.nodeName ?? '<none>',
      ];
    }
    if (r.kind === 'Node') {
      const ready = ((o.status?.conditions ?? []) as Obj[]).find((c) => c.type === 'Ready');
      const roles = Object.keys(o.metadata?.labels ?? {})
        .filter((k) => k.startsWith('node-role.kubernetes.io/'))
        .map((k) => k.slice('node-role.kubernetes.io/'.length));
      return [
        o.metadata.name,
        ready?.status === 'True' ? 'Ready' : 'NotReady',
        roles.join(',') || '<none>',
        age(o.metadata.creationTimestamp),
        o.status?.nodeInfo?.kubeletVersion ?? '',
      ];
    }
    return [o.metadata.name, o.status?.phase ?? 'Active', age(o.metadata.creationTimestamp)];
  };
  if (r.kind === 'Pod') {
    cols.push(
      { name: 'Ready', type: 'string', format: '', priority: 0 },
      { name: 'Status', type: 'string', format: '', priority: 0 },
      { name: 'Restarts', type: 'string', format: '', priority: 0 },
      { name: 'Age', type: 'string', format: '', priority: 0 },
      { name: 'IP', type: 'string', format: '', priority: 1 },
      { name: 'Node', type: 'string', format: '', priority: 1 },
    );
  } else if (r.kind === 'Node') {
    cols.push(
      { name: 'Status', type: 'string', format: '', priority: 0 },
      { name: 'Roles', type: 'string', format: '', priority: 0 },
      { name: 'Age', type: 'string', format: '', priority: 0 },
      { name: 'Version', type: 'string', format: '', priority: 0 },
    );
  } else {
    cols.push(
      { name: 'Status', type: 'string', format: '', priority: 0 },
      { name: 'Age', type: 'string', format: '', priority: 0 },
    );
  }
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion: listRv },
    columnDefinitions: cols,
    rows: items.map((o) => ({
      cells: row(o),
      object:
        includeObject === 'Object'
          ? o
          : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
  };
}

export class ApiServer {
  private server?: Server;
  private readyCache = { at: 0, ok: false, err: '' };

  constructor(
    private readonly etcd: EtcdClient,
    private readonly opts: { advertise: string; port: number },
  ) {}

  // ------------------------------------------------------------ storage

  private key(r: Resource, ns: string | undefined, name: string): string {
    return r.namespaced ? `${r.prefix}${ns}/${name}` : `${r.prefix}${name}`;
  }

  private decode(value: string, modRevision: number): Obj {
    const o = JSON.parse(value) as Obj;
    o.metadata = { ...(o.metadata ?? {}), resourceVersion: String(modRevision) };
    return o;
  }

  private encode(o: Obj): string {
    const copy = { ...o, metadata: { ...o.metadata } };
    delete copy.metadata.resourceVersion;
    return JSON.stringify(copy);
  }

  async getObj(r: Resource, ns: string | undefined, name: string): Promise<Obj> {
    const kv = await this.etcd.get(this.key(r, ns, name));
    if (!kv) throw notFound(r, name);
    return this.decode(kv.value, kv.modRevision);
  }

  async list(r: Resource, ns: string | undefined): Promise<{ items: Obj[]; rv: string }> {
    const prefix = r.namespaced && ns ? `${r.prefix}${ns}/` : r.prefix;
    const res = await this.etcd.range(prefix, { prefix: true });
    return { items: res.kvs.map((kv) => this.decode(kv.value, kv.modRevision)), rv: String(res.revision) };
  }

  async createObj(r: Resource, ns: string | undefined, body: Obj): Promise<Obj> {
    if (!body || typeof body !== 'object')
      throw new HttpError(400, 'BadRequest', 'the body of the request was in an unknown format');
    if (body.kind && body.kind !== r.kind)
      throw new HttpError(400, 'BadRequest', `the kind of the object (${body.kind}) does not match ${r.kind}`);
    const meta: Obj = { ...(body.metadata ?? {}) };
    if (!meta.name && meta.generateName) meta.name = meta.generateName + randomUUID().slice(0, 5);
    if (!meta.name || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(meta.name)) {
      throw new HttpError(422, 'Invalid', `${r.kind} "${meta.name ?? ''}" is invalid: metadata.name: Invalid value`);
    }
    if (r.namespaced) {
      if (meta.namespace && meta.namespace !== ns)
        throw new HttpError(
          400,
          'BadRequest',
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      meta.namespace = ns;
      const nsKv = await this.etcd.get(`/registry/namespaces/${ns}`);
      if (!nsKv) throw new HttpError(404, 'NotFound', `namespaces "${ns}" not found`);
    }
    meta.uid = randomUUID();
    meta.creationTimestamp = k8sTime();
    delete meta.resourceVersion;
    const obj: Obj = { ...body, kind: r.kind, apiVersion: 'v1', metadata: meta };
    if (r.kind === 'Pod') {
      obj.spec = {
        restartPolicy: 'Always',
        dnsPolicy: 'ClusterFirst',
        schedulerName: 'default-scheduler',
        terminationGracePeriodSeconds: 30,
        ...(obj.spec ?? {}),
      };
      obj.status = { phase: 'Pending', qosClass: 'BestEffort', ...(obj.status ?? {}) };
    }
    if (r.kind === 'Namespace') {
      obj.spec = { finalizers: ['kubernetes'] };
      obj.status = { phase: 'Active' };
      meta.labels = { ...(meta.labels ?? {}), 'kubernetes.io/metadata.name': meta.name };
    }
    const rev = await this.etcd.create(this.key(r, ns, meta.name), this.encode(obj));
    if (rev === undefined) throw new HttpError(409, 'AlreadyExists', `${r.name} "${meta.name}" already exists`);
    meta.resourceVersion = String(rev);
    return obj;
  }

  async updateObj(r: Resource, ns: string | undefined, name: string, body: Obj, sub?: string): Promise<Obj> {
    const cur = await this.getObj(r, ns, name);
    const rv = body?.metadata?.resourceVersion;
    if (rv && rv !== cur.metadata.resourceVersion) {
      throw new HttpError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${r.name} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    }
    const next: Obj =
      sub === 'status'
        ? { ...cur, status: body.status }
        : {
            ...body,
            kind: r.kind,
            apiVersion: 'v1',
            metadata: {
              ...body.metadata,
              name,
              uid: cur.metadata.uid,
              creationTimestamp: cur.metadata.creationTimestamp,
              ...(r.namespaced ? { namespace: ns } : {}),
            },
          };
    if (sub !== 'status' && next.status === undefined) next.status = cur.status;
    const newRv = await this.etcd.update(this.key(r, ns, name), this.encode(next));
    if (newRv === undefined) throw notFound(r, name);
    next.metadata = { ...next.metadata, resourceVersion: String(newRv) };
    return next;
  }

  async deleteObj(r: Resource, ns: string | undefined, name: string): Promise<Obj> {
    if (r.kind === 'Namespace' && SYSTEM_NAMESPACES.includes(name)) {
      throw new HttpError(403, 'Forbidden', `namespaces "${name}" is forbidden: this namespace may not be deleted`);
    }
    const cur = await this.getObj(r, ns, name);
    await this.etcd.del(this.key(r, ns, name));
    if (r.kind === 'Namespace') await this.etcd.del(`/registry/pods/${name}/`, { prefix: true });
    return cur;
  }

  /** Like the real apiserver's bootstrap controller: the system namespaces always exist. */
  async ensureSystemNamespaces(): Promise<void> {
    for (const n of SYSTEM_NAMESPACES) {
      try {
        await this.createObj(RESOURCES[0], undefined, { metadata: { name: n } });
      } catch (e) {
        if (!(e instanceof HttpError && e.code === 409)) throw e;
      }
    }
  }

  // ------------------------------------------------------------ health

  private async etcdOk(): Promise<{ ok: boolean; err: string }> {
    const now = Date.now();
    if (now - this.readyCache.at < 300) return this.readyCache;
    try {
      await this.etcd.range('/registry/namespaces/default', { limit: 1 });
      this.readyCache = { at: now, ok: true, err: '' };
    } catch (e) {
      this.readyCache = { at: now, ok: false, err: e instanceof Error ? e.message : String(e) };
    }
    return this.readyCache;
  }

  private async health(kind: string, verbose: boolean, res: ServerResponse): Promise<void> {
    const etcd = await this.etcdOk();
    const checks = [
      ['ping', true],
      ['log', true],
      ['etcd', etcd.ok],
      ...(kind === 'readyz'
        ? [
            ['informer-sync', true],
            ['shutdown', true],
          ]
        : []),
    ] as [string, boolean][];
    const ok = checks.every(([, c]) => c);
    let body = 'ok';
    if (!ok || verbose) {
      body =
        checks.map(([n, c]) => (c ? `[+]${n} ok` : `[-]${n} failed: reason withheld`)).join('\n') +
        '\n' +
        (ok ? `${kind} check passed\n` : `${kind} check failed\n`);
    }
    if (!etcd.ok) klog('W', `${kind}: etcd check failed: ${etcd.err}`);
    res.writeHead(ok ? 200 : 500, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
    res.end(body);
  }

  // ------------------------------------------------------------ HTTP

  private send(res: ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async readBody(req: IncomingMessage): Promise<Obj> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    if (!text) return {};
    try {
      return JSON.parse(text) as Obj;
    } catch {
      throw new HttpError(415, 'UnsupportedMediaType', 'only JSON request bodies are supported by the lab apiserver');
    }
  }

  private discovery(path: string): unknown {
    if (path === '/api') {
      return {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [
          { clientCIDR: '0.0.0.0/0', serverAddress: `${this.opts.advertise}:${this.opts.port}` },
        ],
      };
    }
    if (path === '/apis') return { kind: 'APIGroupList', apiVersion: 'v1', groups: [] };
    if (path === '/api/v1') {
      const verbs = ['create', 'delete', 'get', 'list', 'patch', 'update'];
      return {
        kind: 'APIResourceList',
        groupVersion: 'v1',
        resources: RESOURCES.flatMap((r) => [
          {
            name: r.name,
            singularName: r.kind.toLowerCase(),
            namespaced: r.namespaced,
            kind: r.kind,
            verbs,
            shortNames: r.shortNames,
          },
          {
            name: `${r.name}/status`,
            singularName: '',
            namespaced: r.namespaced,
            kind: r.kind,
            verbs: ['get', 'patch', 'update'],
          },
        ]),
      };
    }
    return undefined;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://x');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    const top = path.split('/')[1];
    if (['livez', 'readyz', 'healthz'].includes(top) && method === 'GET')
      return this.health(top, url.searchParams.has('verbose'), res);
    if (path === '/version') {
      const minor = KUBERNETES_VERSION.split('.')[1];
      return this.send(res, 200, {
        major: '1',
        minor,
        emulationMajor: '1',
        emulationMinor: minor,
        minCompatibilityMajor: '1',
        minCompatibilityMinor: String(Number(minor) - 1),
        gitVersion: KUBERNETES_VERSION,
        gitCommit: '0000000000000000000000000000000000000000',
        gitTreeState: 'clean',
        buildDate: '2025-04-22T16:00:00Z',
        goVersion: 'go1.23.8',
        compiler: 'gc',
        platform: 'linux/amd64',
      });
    }
    const sock = req.socket as TLSSocket;
    if (!sock.authorized) {
      return this.send(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    }
    const disc = method === 'GET' ? this.discovery(path) : undefined;
    if (disc) return this.send(res, 200, disc);
    if (path === '/openapi/v2' || path.startsWith('/openapi/v3'))
      return this.send(res, 404, status(404, 'NotFound', 'the lab apiserver serves no OpenAPI'));

    // /api/v1/[namespaces/{ns}/]{resource}[/{name}[/status]]
    const seg = path.split('/').slice(3);
    if (path.split('/')[1] !== 'api' || path.split('/')[2] !== 'v1' || seg.length === 0) {
      return this.send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
    }
    let ns: string | undefined;
    if (seg[0] === 'namespaces' && seg.length >= 3) {
      ns = seg[1];
      seg.splice(0, 2);
    }
    const r = RESOURCES.find((x) => x.name === seg[0]);
    if (!r || seg.length > 3 || (seg[2] && seg[2] !== 'status')) {
      return this.send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
    }
    const name = seg[1];
    const sub = seg[2];
    if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1') {
      return this.send(res, 405, status(405, 'MethodNotAllowed', 'watch is not supported by the lab apiserver'));
    }
    if (!r.namespaced && ns)
      return this.send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
    if (r.namespaced && name && !ns)
      return this.send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
    const wantsTable = (req.headers.accept ?? '').includes('as=Table');

    switch (method) {
      case 'GET': {
        if (!name) {
          const { items, rv } = await this.list(r, ns);
          const sel = items.filter(
            (o) =>
              matchLabels(o, url.searchParams.get('labelSelector')) &&
              matchFields(o, url.searchParams.get('fieldSelector')),
          );
          if (wantsTable) return this.send(res, 200, table(r, sel, url.searchParams.get('includeObject'), rv));
          return this.send(res, 200, {
            kind: `${r.kind}List`,
            apiVersion: 'v1',
            metadata: { resourceVersion: rv },
            items: sel,
          });
        }
        const o = await this.getObj(r, ns, name);
        if (wantsTable)
          return this.send(res, 200, table(r, [o], url.searchParams.get('includeObject'), o.metadata.resourceVersion));
        return this.send(res, 200, o);
      }
      case 'POST':
        if (name) break;
        return this.send(res, 201, await this.createObj(r, ns, await this.readBody(req)));
      case 'PUT':
        if (!name) break;
        return this.send(res, 200, await this.updateObj(r, ns, name, await this.readBody(req), sub));
      case 'PATCH': {
        if (!name) break;
        const patch = await this.readBody(req);
        const cur = await this.getObj(r, ns, name);
        const merged = mergePatch(cur, patch) as Obj;
        merged.metadata.resourceVersion = cur.metadata.resourceVersion;
        return this.send(res, 200, await this.updateObj(r, ns, name, merged, sub));
      }
      case 'DELETE':
        if (!name) break;
        return this.send(res, 200, await this.deleteObj(r, ns, name));
    }
    return this.send(
      res,
      405,
      status(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`),
    );
  }

  listen(tls: { cert: Buffer; key: Buffer; ca: Buffer }, bind: string): Promise<void> {
    this.server = createServer(
      { cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: true, rejectUnauthorized: false },
      (req, res) => {
        this.handle(req, res).catch((e: unknown) => {
          if (e instanceof HttpError) return this.send(res, e.code, status(e.code, e.reason, e.message));
          const msg = e instanceof Error ? e.message : String(e);
          klog('E', `${req.method} ${req.url}: ${msg}`);
          // etcd unreachable: the real apiserver answers 500/504 with a Status too
          this.send(res, 500, status(500, 'InternalError', `Internal error occurred: ${msg}`));
        });
      },
    );
    this.server.keepAliveTimeout = 30_000;
    return new Promise((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.opts.port, bind, () => resolve());
    });
  }

  close(): void {
    this.server?.close();
    this.etcd.close();
  }
}

export async function main(): Promise<void> {
  process.title = 'kube-apiserver'; // so `pgrep -x kube-apiserver` / `pkill` find it like the real one
  const f = parseFlags(process.argv.slice(2));
  const need = (k: string): string => {
    const v = f.get(k);
    if (!v) {
      klog('E', `missing required flag --${k}`);
      process.exit(1);
    }
    return v;
  };
  const port = Number(f.get('secure-port') ?? '6443');
  const bind = f.get('bind-address') ?? '0.0.0.0';
  const advertise = f.get('advertise-address') ?? bind;
  const etcd = new EtcdClient(need('etcd-servers').split(','), {
    ca: readFileSync(need('etcd-cafile')),
    cert: readFileSync(need('etcd-certfile')),
    key: readFileSync(need('etcd-keyfile')),
  });
  const api = new ApiServer(etcd, { advertise, port });
  await api.listen(
    {
      cert: readFileSync(need('tls-cert-file')),
      key: readFileSync(need('tls-private-key-file')),
      ca: readFileSync(need('client-ca-file')),
    },
    bind,
  );
  klog(
    'I',
    `Serving securely on ${bind}:${port} (lab stand-in ${KUBERNETES_VERSION}), etcd ${etcd.endpoints.join(',')}`,
  );
  const stop = (): void => {
    klog('I', 'received termination signal, shutting down');
    api.close();
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // bootstrap controller: keep trying until etcd answers
  for (;;) {
    try {
      await api.ensureSystemNamespaces();
      break;
    } catch (e) {
      klog('W', `waiting for etcd: ${e instanceof Error ? e.message : String(e)}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
