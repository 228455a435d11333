// Configuration files of an external etcd member: a systemd unit that runs etcd with its
// settings from /etc/default/etcd (etcd reads every flag as ETCD_<FLAG> from the environment),
// so a restore or repair rewrites one small env file and never the unit itself.

export const EXTERNAL_PKI = '/etc/etcd/pki';
export const EXTERNAL_TLS = {
  ca: `${EXTERNAL_PKI}/ca.crt`,
  cert: `${EXTERNAL_PKI}/healthcheck-client.crt`,
  key: `${EXTERNAL_PKI}/healthcheck-client.key`,
};

export interface ExternalMember {
  name: string;
  address: string;
  dataDir: string;
}

export interface ExternalClusterConfig {
  initialCluster: string;
  token: string;
  state: 'new' | 'existing';
}

function urlHost(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

export function clientUrl(address: string): string {
  return `https://${urlHost(address)}:2379`;
}

export function peerUrl(address: string): string {
  return `https://${urlHost(address)}:2380`;
}

export function renderEtcdUnit(etcdBinary: string): string {
  return `# Managed by Kube Etcd Switch: an external etcd member for a kubeadm cluster.
# Settings live in /etc/default/etcd; a restore or repair rewrites only that file.
[Unit]
Description=etcd key-value store (external, managed by Kube Etcd Switch)
Documentation=https://etcd.io/docs/
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
EnvironmentFile=/etc/default/etcd
ExecStart=${etcdBinary}
Restart=on-failure
RestartSec=5
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`;
}

/**
 * A value goes into `KEY="value"` of an EnvironmentFile: systemd would interpret quotes,
 * backslashes and `$`, a newline (or CR) would start a new setting, and a NUL or other control
 * character has no place in a setting — such values are refused. renderEtcdEnv and editEtcdEnv
 * both check every value they write with this one function.
 */
export function checkEtcdEnvValue(v: string): void {
  // eslint-disable-next-line no-control-regex
  if (/["\\$`\x00-\x1f\x7f]/.test(v)) throw new Error(`Unsafe character in etcd setting: ${JSON.stringify(v)}`);
}

/**
 * Settings whose name depends on the etcd version that reads the file. etcd 3.6 renamed most
 * `--experimental-*` flags (the old names are deprecated, and go in 3.7), and etcd 3.4/3.5 ignore
 * an ETCD_* variable they do not know with only a log line — so a wrong spelling silently does
 * nothing. Checked against each version's `etcd --help` (test/integration/scripts-local.test.ts).
 * The watch progress notification every 5 s is what kubeadm gives its stacked members, so the
 * apiservers see the same etcd behaviour after a switch. kubeadm's initial corruption check is
 * deliberately not written: members restored together would each wait ~7 s per peer that is still
 * starting (see firstStartManifest), time the apiservers are down during a switch.
 */
function versionedSettings(version: string | null): [string, string][] {
  const m = /^v?(\d+)\.(\d+)/.exec(version ?? '');
  // Unknown version: the 3.4/3.5 spelling, which every etcd from 3.4 to 3.6 reads.
  const v36 = !!m && (Number(m[1]) > 3 || (Number(m[1]) === 3 && Number(m[2]) >= 6));
  return [[v36 ? 'ETCD_WATCH_PROGRESS_NOTIFY_INTERVAL' : 'ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL', '5s']];
}

/** /etc/default/etcd of a member, spelled for `etcdVersion` (the etcd binary that will read it). */
export function renderEtcdEnv(m: ExternalMember, c: ExternalClusterConfig, etcdVersion: string | null): string {
  const vars: [string, string][] = [
    ['ETCD_NAME', m.name],
    ['ETCD_DATA_DIR', m.dataDir],
    ['ETCD_LISTEN_CLIENT_URLS', `${clientUrl(m.address)},https://127.0.0.1:2379`],
    ['ETCD_ADVERTISE_CLIENT_URLS', clientUrl(m.address)],
    ['ETCD_LISTEN_PEER_URLS', peerUrl(m.address)],
    ['ETCD_INITIAL_ADVERTISE_PEER_URLS', peerUrl(m.address)],
    ['ETCD_INITIAL_CLUSTER', c.initialCluster],
    ['ETCD_INITIAL_CLUSTER_TOKEN', c.token],
    ['ETCD_INITIAL_CLUSTER_STATE', c.state],
    ['ETCD_LISTEN_METRICS_URLS', 'http://127.0.0.1:2381'],
    ['ETCD_CLIENT_CERT_AUTH', 'true'],
    ['ETCD_TRUSTED_CA_FILE', `${EXTERNAL_PKI}/ca.crt`],
    ['ETCD_CERT_FILE', `${EXTERNAL_PKI}/server.crt`],
    ['ETCD_KEY_FILE', `${EXTERNAL_PKI}/server.key`],
    ['ETCD_PEER_CLIENT_CERT_AUTH', 'true'],
    ['ETCD_PEER_TRUSTED_CA_FILE', `${EXTERNAL_PKI}/ca.crt`],
    ['ETCD_PEER_CERT_FILE', `${EXTERNAL_PKI}/peer.crt`],
    ['ETCD_PEER_KEY_FILE', `${EXTERNAL_PKI}/peer.key`],
    ['ETCD_SNAPSHOT_COUNT', '10000'],
    ...versionedSettings(etcdVersion),
  ];
  for (const [, v] of vars) checkEtcdEnvValue(v);
  return `# Managed by Kube Etcd Switch — read by etcd.service (EnvironmentFile).\n${vars.map(([k, v]) => `${k}="${v}"`).join('\n')}\n`;
}

export function parseEtcdEnv(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m)
      out.set(
        m[1],
        m[2]
          .trim()
          .replace(/^"(.*)"$/, '$1')
          .replace(/^'(.*)'$/, '$1'),
      );
  }
  return out;
}

/** Change the settings a restore or repair changes, keeping everything else. */
export function editEtcdEnv(
  text: string,
  edit: { dataDir?: string; initialCluster?: string; token?: string; state?: 'new' | 'existing' },
): string {
  const map: Record<string, string | undefined> = {
    ETCD_DATA_DIR: edit.dataDir,
    ETCD_INITIAL_CLUSTER: edit.initialCluster,
    ETCD_INITIAL_CLUSTER_TOKEN: edit.token,
    ETCD_INITIAL_CLUSTER_STATE: edit.state,
  };
  // The same check as renderEtcdEnv: these values come from etcd.yaml, member lists and plans.
  for (const v of Object.values(map)) if (v !== undefined) checkEtcdEnvValue(v);
  const seen = new Set<string>();
  const lines = text.split('\n').map((line) => {
    const m = /^(\s*(?:export\s+)?)([A-Z_][A-Z0-9_]*)=/.exec(line);
    if (!m || map[m[2]] === undefined) return line;
    seen.add(m[2]);
    return `${m[1]}${m[2]}="${map[m[2]]}"`;
  });
  for (const [k, v] of Object.entries(map))
    if (v !== undefined && !seen.has(k)) lines.splice(lines.length - (lines.at(-1) === '' ? 1 : 0), 0, `${k}="${v}"`);
  return lines.join('\n');
}
