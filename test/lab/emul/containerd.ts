// containerd stand-in of bare lab hosts (what `apt-get install containerd` puts in place there, see
// bare.ts): /usr/bin/containerd, run by Debian's own containerd.service (Type=notify) under the
// systemctl stand-in. It serves the CRI (gRPC, runtime.v1) on /run/containerd/containerd.sock — the
// calls kubeadm and crictl make — over the same state the kubelet and crictl stand-ins share:
//   RuntimeService: Version, Status (RuntimeReady; NetworkReady once /etc/cni/net.d has a config;
//     verbose: info.config.sandboxImage), ListPodSandbox, StopPodSandbox (kills the pod's processes at
//     once, like containerd), RemovePodSandbox, ListContainers; RuntimeConfig is UNIMPLEMENTED, as in
//     Debian 12's containerd 1.6.20 (kubeadm warns: "You must update your container runtime …");
//   ImageService: ImageFsInfo, ImageStatus, PullImage, ListImages, RemoveImage (images.ts: the lab's
//     catalogue; no network, other images fail to pull);
//   anything else: UNIMPLEMENTED. With `disabled_plugins = ["cri"]` in /etc/containerd/config.toml (the
//     containerd.io package's default) the CRI services are unknown, as with the real containerd.
// CLI: `containerd --version`, `containerd config default` (the real Debian binary's output, captured
// when the lab was made), anything else runs the daemon. READY=1 goes to $NOTIFY_SOCKET with this
// process's credentials (python3 helper: node has no unix datagram sockets).
// gRPC is spoken by hand: HTTP/2 (node:http2, h2c on the unix socket) + the few protobuf messages.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type ServerHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { dirname } from 'node:path';
import { catalogue, findImage, imageId, pullImage, PullError, removeImage, storedImages } from './images';
import { listContainerStates, processAlive, type ContainerState } from './runtime-state';

const SOCKET = '/run/containerd/containerd.sock';
const CONFIG = '/etc/containerd/config.toml';
const VERSION_FILE = '/usr/local/lib/kes-lab/containerd/version';
const DEFAULT_CONFIG_FILE = '/usr/local/lib/kes-lab/containerd/config-default.toml';
const DEFAULT_SANDBOX_IMAGE = 'registry.k8s.io/pause:3.6'; // containerd 1.6's default

// ---------------------------------------------------------------- protobuf (the subset we need)

type Field = { wt: number; num?: bigint; buf?: Buffer };
export type Msg = Map<number, Field[]>;

function readVarint(b: Buffer, o: { p: number }): bigint {
  let r = 0n;
  let s = 0n;
  for (;;) {
    const x = b[o.p++];
    if (x === undefined) throw new Error('truncated varint');
    r |= BigInt(x & 0x7f) << s;
    if (!(x & 0x80)) return r;
    s += 7n;
  }
}

export function decode(b: Buffer): Msg {
  const m: Msg = new Map();
  const o = { p: 0 };
  while (o.p < b.length) {
    const key = Number(readVarint(b, o));
    const num = key >>> 3;
    const wt = key & 7;
    let f: Field;
    if (wt === 0) f = { wt, num: readVarint(b, o) };
    else if (wt === 2) {
      const len = Number(readVarint(b, o));
      f = { wt, buf: b.subarray(o.p, o.p + len) };
      o.p += len;
    } else if (wt === 1) {
      f = { wt, buf: b.subarray(o.p, o.p + 8) };
      o.p += 8;
    } else if (wt === 5) {
      f = { wt, buf: b.subarray(o.p, o.p + 4) };
      o.p += 4;
    } else throw new Error(`unsupported wire type ${wt}`);
    m.set(num, [...(m.get(num) ?? []), f]);
  }
  return m;
}

export const str = (m: Msg, n: number): string => m.get(n)?.at(-1)?.buf?.toString('utf8') ?? '';
export const sub = (m: Msg, n: number): Msg => decode(m.get(n)?.at(-1)?.buf ?? Buffer.alloc(0));
export const bool = (m: Msg, n: number): boolean => (m.get(n)?.at(-1)?.num ?? 0n) !== 0n;

function varint(v: bigint | number): Buffer {
  let x = BigInt(v);
  if (x < 0n) x = (1n << 64n) + x;
  const out: number[] = [];
  do {
    let byte = Number(x & 0x7fn);
    x >>= 7n;
    if (x) byte |= 0x80;
    out.push(byte);
  } while (x);
  return Buffer.from(out);
}

/** Encoders: each returns the bytes of one field (or none for a default value, like proto3). */
export const enc = {
  str: (n: number, s: string | undefined): Buffer =>
    s ? Buffer.concat([varint((n << 3) | 2), varint(Buffer.byteLength(s)), Buffer.from(s)]) : Buffer.alloc(0),
  int: (n: number, v: number | bigint): Buffer =>
    BigInt(v) ? Buffer.concat([varint(n << 3), varint(v)]) : Buffer.alloc(0),
  bool: (n: number, v: boolean): Buffer => (v ? Buffer.from([n << 3, 1]) : Buffer.alloc(0)),
  msg: (n: number, ...parts: Buffer[]): Buffer => {
    const body = Buffer.concat(parts);
    return Buffer.concat([varint((n << 3) | 2), varint(body.length), body]);
  },
  map: (n: number, o: Record<string, string>): Buffer =>
    Buffer.concat(Object.entries(o).map(([k, v]) => enc.msg(n, enc.str(1, k), enc.str(2, v)))),
};

// ---------------------------------------------------------------- the runtime's view of the lab

type C = ContainerState & { file: string };
const podId = (c: C): string => c.podUid.replace(/-/g, '').padEnd(64, '0');
const containerId = (c: C): string => c.containerID.replace(/^containerd:\/\//, '');

function config(): string {
  try {
    return readFileSync(CONFIG, 'utf8');
  } catch {
    return '';
  }
}

function criDisabled(): boolean {
  const m = /^\s*disabled_plugins\s*=\s*\[([^\]]*)\]/m.exec(config());
  return !!m && /"(cri|io\.containerd\.grpc\.v1\.cri)"/.test(m[1]);
}

function sandboxImage(): string {
  return /^\s*sandbox_image\s*=\s*"([^"]+)"/m.exec(config())?.[1] ?? DEFAULT_SANDBOX_IMAGE;
}

function cniReady(): boolean {
  try {
    return readdirSync('/etc/cni/net.d').some((f) => /\.(conf|conflist|json)$/.test(f));
  } catch {
    return false;
  }
}

function version(): string {
  try {
    return readFileSync(VERSION_FILE, 'utf8').trim();
  } catch {
    return 'containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3';
  }
}

function pods(): Map<string, C[]> {
  const by = new Map<string, C[]>();
  for (const c of listContainerStates() as C[]) by.set(podId(c), [...(by.get(podId(c)) ?? []), c]);
  return by;
}

function kill(c: C): void {
  if (!processAlive(c.pid)) return;
  try {
    process.kill(c.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

class GrpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}
const UNKNOWN = 2;
const UNIMPLEMENTED = 12;

function imageMsg(n: number, ref: string): Buffer {
  const img = findImage(ref)!;
  return enc.msg(
    n,
    enc.str(1, img.id),
    enc.str(2, img.ref),
    enc.str(3, `${img.ref.replace(/:[^/:]+$/, '')}@sha256:${img.id.slice(7)}`),
    enc.int(4, img.size),
    enc.msg(7, enc.str(1, img.ref)),
  );
}

type Handler = (req: Msg) => Buffer | Promise<Buffer>;

const RUNTIME: Record<string, Handler> = {
  Version: () =>
    Buffer.concat([
      enc.str(1, '0.1.0'),
      enc.str(2, 'containerd'),
      enc.str(3, version().split(' ')[2] ?? '1.6.20~ds1'),
      enc.str(4, 'v1'),
    ]),
  Status: (req) => {
    const cond = (type: string, ok: boolean, reason = '', message = ''): Buffer =>
      enc.msg(1, enc.str(1, type), enc.bool(2, ok), enc.str(3, reason), enc.str(4, message));
    const net = cniReady();
    return Buffer.concat([
      enc.msg(
        1,
        cond('RuntimeReady', true),
        cond(
          'NetworkReady',
          net,
          net ? '' : 'NetworkPluginNotReady',
          net ? '' : 'Network plugin returns error: cni plugin not initialized',
        ),
      ),
      bool(req, 1)
        ? enc.map(2, {
            config: JSON.stringify({ sandboxImage: sandboxImage(), containerd: { snapshotter: 'overlayfs' } }),
          })
        : Buffer.alloc(0),
    ]);
  },
  ListPodSandbox: () =>
    Buffer.concat(
      [...pods()].map(([id, cs]) => {
        const c = cs[0];
        return enc.msg(
          1,
          enc.str(1, id),
          enc.msg(2, enc.str(1, c.podName), enc.str(2, c.podUid), enc.str(3, c.podNamespace)),
          enc.int(3, cs.some((x) => processAlive(x.pid)) ? 0 : 1), // SANDBOX_READY / SANDBOX_NOTREADY
          enc.int(4, BigInt(Date.parse(c.startedAt)) * 1_000_000n),
          enc.map(5, {
            'io.kubernetes.pod.name': c.podName,
            'io.kubernetes.pod.namespace': c.podNamespace,
            'io.kubernetes.pod.uid': c.podUid,
          }),
        );
      }),
    ),
  ListContainers: () =>
    Buffer.concat(
      (listContainerStates() as C[]).map((c) =>
        enc.msg(
          1,
          enc.str(1, containerId(c)),
          enc.str(2, podId(c)),
          enc.msg(3, enc.str(1, c.name), enc.int(2, c.restartCount)),
          enc.msg(4, enc.str(1, c.image)),
          enc.str(5, imageId(c.image)),
          enc.int(6, processAlive(c.pid) ? 1 : 2), // CONTAINER_RUNNING / CONTAINER_EXITED
          enc.int(7, BigInt(Date.parse(c.startedAt)) * 1_000_000n),
          enc.map(8, {
            'io.kubernetes.container.name': c.name,
            'io.kubernetes.pod.name': c.podName,
            'io.kubernetes.pod.namespace': c.podNamespace,
            'io.kubernetes.pod.uid': c.podUid,
          }),
        ),
      ),
    ),
  StopPodSandbox: (req) => {
    const id = str(req, 1);
    const hits = [...pods()].filter(([p]) => p.startsWith(id) && id);
    // containerd: stopping an unknown sandbox is not an error (idempotent)
    for (const [, cs] of hits) for (const c of cs) kill(c);
    return Buffer.alloc(0);
  },
  RemovePodSandbox: (req) => {
    const id = str(req, 1);
    for (const [p, cs] of pods())
      if (id && p.startsWith(id))
        for (const c of cs) {
          kill(c);
          rmSync(c.file, { force: true });
        }
    return Buffer.alloc(0);
  },
};

const IMAGE: Record<string, Handler> = {
  ImageFsInfo: () => Buffer.alloc(0),
  ImageStatus: (req) => {
    const ref = str(sub(req, 1), 1);
    return findImage(ref) ? imageMsg(1, ref) : Buffer.alloc(0);
  },
  PullImage: (req) => {
    const ref = str(sub(req, 1), 1);
    try {
      const img = pullImage(ref);
      log(`PullImage "${ref}" returns image reference "${img.id}"`);
      return enc.str(1, img.id);
    } catch (e) {
      if (e instanceof PullError) throw new GrpcError(UNKNOWN, e.message);
      throw e;
    }
  },
  ListImages: () => Buffer.concat(storedImages().map((i) => imageMsg(1, i.ref))),
  RemoveImage: (req) => {
    const ref = str(sub(req, 1), 1);
    removeImage(ref);
    return Buffer.alloc(0);
  },
};

function log(msg: string): void {
  process.stderr.write(`time="${new Date().toISOString()}" level=info msg=${JSON.stringify(msg)}\n`);
}

// ---------------------------------------------------------------- gRPC over HTTP/2

function respond(stream: ServerHttp2Stream, body: Buffer | undefined, code = 0, message = ''): void {
  if (stream.destroyed) return;
  const trailers = { 'grpc-status': String(code), ...(message ? { 'grpc-message': encodeURIComponent(message) } : {}) };
  if (body === undefined) {
    // trailers-only response
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...trailers }, { endStream: true });
    return;
  }
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.sendTrailers(trailers));
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  stream.end(Buffer.concat([head, body]));
}

function handle(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  const path = String(headers[':path'] ?? '');
  const chunks: Buffer[] = [];
  stream.on('data', (d: Buffer) => chunks.push(d));
  stream.on('error', () => undefined);
  stream.on('end', () => {
    const m = /^\/([^/]+)\/([^/]+)$/.exec(path);
    const [service, method] = m ? [m[1], m[2]] : ['', ''];
    const table =
      service === 'runtime.v1.RuntimeService' ? RUNTIME : service === 'runtime.v1.ImageService' ? IMAGE : undefined;
    if (!table || criDisabled()) {
      respond(stream, undefined, UNIMPLEMENTED, `unknown service ${service}`);
      return;
    }
    const h = table[method];
    if (!h) {
      respond(stream, undefined, UNIMPLEMENTED, `unknown method ${method} for service ${service}`);
      return;
    }
    const raw = Buffer.concat(chunks);
    const req = raw.length >= 5 ? decode(raw.subarray(5, 5 + raw.readUInt32BE(1))) : new Map();
    Promise.resolve()
      .then(() => h(req))
      .then(
        (body) => respond(stream, body),
        (e: unknown) =>
          respond(
            stream,
            undefined,
            e instanceof GrpcError ? e.code : UNKNOWN,
            e instanceof Error ? e.message : String(e),
          ),
      );
  });
}

function notifyReady(): void {
  const sock = process.env.NOTIFY_SOCKET;
  if (!sock) return;
  // the datagram carries this process's pid (root may send another pid's credentials)
  execFileSync(
    '/usr/bin/python3',
    [
      '-c',
      `import os, socket, struct, sys
a = os.environ["NOTIFY_SOCKET"]
a = "\\0" + a[1:] if a.startswith("@") else a
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendmsg([b"READY=1"], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, struct.pack("iII", int(sys.argv[1]), os.getuid(), os.getgid()))], 0, a)`,
      String(process.pid),
    ],
    { stdio: 'ignore' },
  );
}

export async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--version') || args.includes('-v')) {
    process.stdout.write(`${version()}\n`);
    return;
  }
  if (args[0] === 'config') {
    if (args[1] === 'default' || args[1] === 'dump') {
      process.stdout.write(
        args[1] === 'dump' && existsSync(CONFIG) ? readFileSync(CONFIG, 'utf8') : readFileSync(DEFAULT_CONFIG_FILE),
      );
      return;
    }
    process.stderr.write('containerd: kes-lab stand-in: only `config default` and `config dump`\n');
    process.exit(1);
  }
  process.title = 'containerd';
  mkdirSync(dirname(SOCKET), { recursive: true });
  rmSync(SOCKET, { force: true });
  const server = createServer();
  server.on('stream', handle);
  server.on('sessionError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(SOCKET, resolve);
  });
  log(`containerd (kes-lab stand-in) serving CRI on ${SOCKET}; ${catalogue().length} images in the lab catalogue`);
  if (criDisabled()) log('the cri plugin is disabled by disabled_plugins in ' + CONFIG);
  notifyReady();
  const stop = (): void => {
    rmSync(SOCKET, { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
