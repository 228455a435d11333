// Pure parts of "kubectl access" (local console) and of kubectl on a master's terminal: the
// tunnel kubeconfig made from admin.conf, the master shell's set-up command, the console banner.
// Error messages here never quote the kubeconfig: it holds cluster-admin credentials.
import { isAbsolute, join, delimiter } from 'node:path';
import { accessSync, constants } from 'node:fs';
import { parse, stringify } from 'yaml';
import { shQuote } from '../remote/quote';

export const ADMIN_CONF = '/etc/kubernetes/admin.conf';

interface Named<T> {
  name?: string;
  [k: string]: unknown;
  cluster?: T;
  context?: T;
}
interface KubeconfigDoc {
  'current-context'?: string;
  clusters?: Named<Record<string, unknown>>[];
  contexts?: Named<{ cluster?: string; user?: string }>[];
  users?: Named<Record<string, unknown>>[];
}

export interface TunnelKubeconfig {
  /** The kubeconfig to write (0600): server https://127.0.0.1:<port>, tls-server-name kept. */
  text: string;
  /** admin.conf's server: the control-plane endpoint the tunnel goes to. */
  server: string;
  endpoint: { host: string; port: number };
  /** The name the apiserver certificate is checked against (a SAN: the original server host). */
  serverName: string;
}

/**
 * admin.conf rewritten to reach its cluster through a local tunnel: the current context's cluster
 * gets server https://127.0.0.1:<localPort> and tls-server-name = the original server's host
 * (kubeadm puts the control-plane endpoint in the apiserver certificate; 127.0.0.1 is not there).
 * Credentials and CA are kept as they are; only the current context is kept.
 */
export function tunnelKubeconfig(adminConf: string, localPort: number): TunnelKubeconfig {
  let doc: KubeconfigDoc;
  try {
    doc = parse(adminConf) as KubeconfigDoc;
  } catch {
    throw new Error('admin.conf is not valid YAML');
  }
  if (!doc || typeof doc !== 'object') throw new Error('admin.conf is not a kubeconfig');
  const ctx = doc.contexts?.find((c) => c.name === doc['current-context']) ?? doc.contexts?.[0];
  const cluster = doc.clusters?.find((c) => c.name === ctx?.context?.cluster) ?? doc.clusters?.[0];
  const user = doc.users?.find((u) => u.name === ctx?.context?.user) ?? doc.users?.[0];
  if (!cluster?.cluster || !user) throw new Error('admin.conf has no cluster or user');
  const server = cluster.cluster.server;
  if (typeof server !== 'string') throw new Error('admin.conf names no server');
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new Error('admin.conf server is not a URL');
  }
  if (url.protocol !== 'https:') throw new Error('admin.conf server is not https');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port || 443);
  const given = cluster.cluster['tls-server-name'];
  const serverName = typeof given === 'string' && given ? given : host;
  const clusterName = cluster.name ?? 'kubernetes';
  const userName = user.name ?? 'kubernetes-admin';
  const contextName = ctx?.name ?? `${userName}@${clusterName}`;
  const out = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: clusterName,
        cluster: { ...cluster.cluster, server: `https://127.0.0.1:${localPort}`, 'tls-server-name': serverName },
      },
    ],
    contexts: [{ name: contextName, context: { cluster: clusterName, user: userName } }],
    'current-context': contextName,
    users: [{ ...user, name: userName }],
  };
  return { text: stringify(out), server, endpoint: { host, port }, serverName };
}

/**
 * The command a master's terminal runs instead of the bare login shell, so `kubectl` works there:
 * when the login user can read admin.conf (root), KUBECONFIG points at it; else, with passwordless
 * sudo, bash gets an exported function `kubectl` that runs the node's kubectl through `sudo -n`
 * with --kubeconfig (sudo's secure_path may lack kubectl's folder, so it is found with type -P).
 * Either way a banner line says what was set; then the user's login shell takes over (exec).
 */
export function masterShellCommand(conf = ADMIN_CONF): string {
  const tag = '[kube-etcd-switch]';
  const fn = `() { sudo -n "$(type -P kubectl || echo kubectl)" --kubeconfig ${conf} "$@"; }`;
  const script = [
    `c=${shQuote(conf)}; s=\${SHELL:-/bin/sh}`,
    `if [ -r "$c" ]; then`,
    `  echo ${shQuote(`${tag} KUBECONFIG=${conf} is set in this shell: kubectl works here (cluster-admin).`)}`,
    `  exec env KUBECONFIG="$c" "$s" -l`,
    // root needs no sudo (and sudo would only be asked in vain); stdin is kept from sudo so
    // nothing the user types ahead is read or flushed before the login shell starts
    `elif [ "$(id -u)" != 0 ] && sudo -n test -r "$c" </dev/null 2>/dev/null; then`,
    `  echo ${shQuote(`${tag} ${conf} is readable through sudo only: in bash, kubectl is a function running "sudo -n kubectl --kubeconfig ${conf}".`)}`,
    `  exec env ${shQuote(`BASH_FUNC_kubectl%%=${fn}`)} "$s" -l`,
    `else`,
    `  echo ${shQuote(`${tag} ${conf} is not readable by this login (no passwordless sudo): kubectl is not set up.`)}`,
    `  exec "$s" -l`,
    `fi`,
  ].join('\n');
  return `sh -c ${shQuote(script)}`;
}

/** Where `name` is on `pathEnv` (an executable file), or null. */
export function findOnPath(
  name: string,
  pathEnv: string | undefined,
  isExecutable = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  },
): string | null {
  for (const dir of (pathEnv ?? '').split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue;
    const p = join(dir, name);
    if (isExecutable(p)) return p;
  }
  return null;
}

/** What the kubectl console says first (CRLF: it goes straight to xterm). No secrets in it. */
export function kubectlBanner(a: {
  cluster: string;
  path: string;
  port: number;
  via: string;
  server: string;
  serverName: string;
  kubectl: string | null;
}): string {
  const lines = [
    `[kube-etcd-switch] kubectl access to cluster ${a.cluster} in this console: KUBECONFIG=${a.path}`,
    `  server https://127.0.0.1:${a.port} = an SSH tunnel through ${a.via} to ${a.server} (TLS name ${a.serverName})`,
    `  cluster-admin credentials read from ${a.via}:${ADMIN_CONF} (file 0600). The file and the tunnel are removed when this console closes.`,
    a.kubectl
      ? `  kubectl: ${a.kubectl}. Try: kubectl get nodes`
      : `  kubectl is not on PATH on this machine: install kubectl (https://kubernetes.io/docs/tasks/tools/), then try: kubectl get nodes`,
    '',
  ];
  return lines.join('\r\n');
}
