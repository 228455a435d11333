// Bits shared by the lab's stand-ins (kubelet, crictl) and the lab itself: flag parsing, logging,
// time format, a minimal HTTPS JSON client for the real kube-apiserver (client certificate or
// bootstrap token auth).
import { Agent, request } from 'node:https';
import { assertLabUrl } from '../guard';

/** Parse `--name=value` / `--flag` arguments like the real binaries (last one wins). */
export function parseFlags(argv: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    if (eq > 0) m.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) m.set(a.slice(2), argv[++i]);
    else m.set(a.slice(2), 'true');
  }
  return m;
}

/** klog-style line: I0102 15:04:05.000000    1234 file.go:1] msg */
export function klog(level: 'I' | 'W' | 'E', msg: string): void {
  const d = new Date();
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const ts = `${p(d.getMonth() + 1)}${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}000`;
  process.stderr.write(`${level}${ts} ${String(process.pid).padStart(7)} lab] ${msg}\n`);
}

/** Kubernetes timestamps: RFC 3339 without fractions. */
export function k8sTime(d = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export interface ApiResponse {
  status: number;
  body: unknown;
}

/** A JSON client for the Kubernetes API (kubelet → apiserver), mutual TLS from a kubeconfig. */
export class KubeClient {
  private readonly agent: Agent;
  private readonly token?: string;
  constructor(
    readonly server: string,
    tls: { ca: string | Buffer; cert?: string | Buffer; key?: string | Buffer; token?: string },
  ) {
    this.agent = new Agent({ keepAlive: true, ca: tls.ca, cert: tls.cert, key: tls.key, maxSockets: 8 });
    this.token = tls.token;
  }

  close(): void {
    this.agent.destroy();
  }

  call(method: string, path: string, body?: unknown, timeoutMs = 5000, contentType?: string): Promise<ApiResponse> {
    const url = new URL(path, this.server);
    assertLabUrl(url.href);
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        url,
        {
          method,
          agent: this.agent,
          timeout: timeoutMs,
          headers: {
            accept: 'application/json',
            // an explicit length: Go's server ignores a chunked DELETE body and then reads the
            // leftover chunks as the next request on the kept-alive connection ("400 Bad Request")
            ...(data
              ? { 'content-type': contentType ?? 'application/json', 'content-length': Buffer.byteLength(data) }
              : {}),
            ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              /* plain text */
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
      req.on('error', reject);
      req.end(data);
    });
  }
}

/** Read a kubeconfig's server + credentials (data or file references), first cluster/user. */
export function readKubeconfig(
  text: string,
  parse: (s: string) => unknown,
  readFile: (p: string) => Buffer,
): { server: string; ca: Buffer; cert?: Buffer; key?: Buffer; token?: string } {
  type KC = {
    clusters: {
      cluster: { server: string; 'certificate-authority-data'?: string; 'certificate-authority'?: string };
    }[];
    users: {
      user: {
        'client-certificate-data'?: string;
        'client-key-data'?: string;
        'client-certificate'?: string;
        'client-key'?: string;
        token?: string;
      };
    }[];
  };
  const kc = parse(text) as KC;
  const c = kc.clusters[0].cluster;
  const u = kc.users[0].user;
  const pick = (data: string | undefined, file: string | undefined): Buffer | undefined =>
    data ? Buffer.from(data, 'base64') : file ? readFile(file) : undefined;
  return {
    server: c.server,
    ca: pick(c['certificate-authority-data'], c['certificate-authority'])!,
    cert: pick(u['client-certificate-data'], u['client-certificate']),
    key: pick(u['client-key-data'], u['client-key']),
    token: u.token,
  };
}
