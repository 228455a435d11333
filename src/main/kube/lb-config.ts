// Configuration of the kube-apiserver load balancer, one renderer per kind. Pure: the plan shows the
// file, writes it, runs `checkCommand` on the LB node before (re)starting `unit`.
//
// Every kind passes TCP through to each master's apiserver (clients keep their certificates end to
// end) and takes a master out as soon as it stops answering:
//   haproxy  active HTTPS checks of GET /healthz (TLS without verification: the check only needs
//            "200 from an apiserver"; the traffic itself is never terminated), kubeadm's HA guide;
//   nginx    open-source nginx has only passive checks: a refused or timed-out connection is
//            retried on the next master (proxy_next_upstream) and the master is skipped for a while;
//   envoy    active HTTP checks of /healthz over a TLS transport socket used only for checks
//            (transport_socket_matches), traffic over raw TCP (tcp_proxy).
// Inputs are validated here as well (names, addresses, ports), so nothing but a host name or an IP
// reaches a configuration file, whoever calls.
import { stringify } from 'yaml';
import { addressKind, nodeNameProblem, portProblem, type AddressKind } from '@shared/cluster-spec';
import { normalizeAddress } from '@shared/domain';

export type LbConfigKind = 'haproxy' | 'nginx' | 'envoy';

export interface LbBackend {
  name: string;
  address: string;
  /** The master's kube-apiserver port (6443). */
  port: number;
}

export interface LbRender {
  /** Debian/Ubuntu package names (envoy: from apt.envoyproxy.io, which the plan must add). */
  packages: string[];
  configPath: string;
  content: string;
  /** argv that parses `configPath` without starting anything. */
  checkCommand: string[];
  /** systemd unit to enable and (re)start. */
  unit: string;
  /** Unit file to install when the package ships none (envoy). */
  unitFile?: { path: string; content: string };
}

/** Same thing, under the name the cluster-creation job uses. */
export type LbConfig = LbRender;

/** `checkCommand` aimed at another copy of the file: a staged upload is checked before it replaces the live one. */
export function checkCommandFor(cfg: LbRender, path: string): string[] {
  return cfg.checkCommand.map((a) => (a === cfg.configPath ? path : a));
}

export class LbConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LbConfigError';
  }
}

interface Checked {
  name: string;
  address: string;
  kind: AddressKind;
  port: number;
}

function check(kind: string, port: number, masters: LbBackend[]): Checked[] {
  if (!['haproxy', 'nginx', 'envoy'].includes(kind)) throw new LbConfigError(`Unknown load balancer ${kind}`);
  if (portProblem(port)) throw new LbConfigError(`Load balancer port ${port}: must be 1-65535`);
  if (!masters.length) throw new LbConfigError('The load balancer needs at least one master');
  const names = new Set<string>();
  return masters.map((m) => {
    const nameError = nodeNameProblem(m.name);
    if (nameError) throw new LbConfigError(`Master name ${JSON.stringify(m.name)}: ${nameError}`);
    if (names.has(m.name)) throw new LbConfigError(`Master name ${m.name} is used twice`);
    names.add(m.name);
    const address = normalizeAddress(m.address);
    const k = addressKind(address);
    if (!k) throw new LbConfigError(`${m.name}: ${JSON.stringify(m.address)} is not a host name or IP address`);
    if (portProblem(m.port)) throw new LbConfigError(`${m.name}: port ${m.port} must be 1-65535`);
    return { name: m.name, address: k === 'hostname' ? address.replace(/\.$/, '') : address, kind: k, port: m.port };
  });
}

/** `host:port`, IPv6 in brackets (haproxy and nginx both accept that form). */
const hostPort = (m: Checked) => (m.kind === 'ipv6' ? `[${m.address}]:${m.port}` : `${m.address}:${m.port}`);
const HEADER = '# Written by Kube Etcd Switch: kube-apiserver load balancer (TCP pass-through).';

function haproxy(port: number, masters: Checked[]): LbRender {
  const path = '/etc/haproxy/haproxy.cfg';
  // An IPv6 listener only when the masters speak IPv6: a host with IPv6 disabled refuses `:::`.
  const v6 = masters.some((m) => m.kind === 'ipv6') ? `\n    bind :::${port} v6only` : '';
  const content = `${HEADER}
# After kubeadm's docs/ha-considerations.md; checks: GET /healthz over TLS every 2 s.
global
    log /dev/log local0
    log /dev/log local1 notice
    user haproxy
    group haproxy

defaults
    mode                    tcp
    log                     global
    option                  tcplog
    option                  dontlognull
    option                  redispatch
    retries                 3
    timeout connect         5s
    # watches stay open for a long time
    timeout client          1h
    timeout server          1h
    timeout check           5s

frontend kube-apiserver
    bind *:${port}${v6}
    default_backend kube-apiserver

backend kube-apiserver
    option httpchk
    http-check connect ssl
    http-check send meth GET uri /healthz
    http-check expect status 200
    balance roundrobin
    default-server inter 2s fall 3 rise 2
${masters.map((m) => `    server ${m.name} ${hostPort(m)} check verify none`).join('\n')}
`;
  return {
    packages: ['haproxy'],
    configPath: path,
    content,
    checkCommand: ['haproxy', '-c', '-f', path],
    unit: 'haproxy.service',
  };
}

function nginx(port: number, masters: Checked[]): LbRender {
  const path = '/etc/nginx/nginx.conf';
  const v6 = masters.some((m) => m.kind === 'ipv6') ? `\n        listen [::]:${port} ipv6only=on;` : '';
  // Debian/Ubuntu build the stream module as a dynamic module (libnginx-mod-stream), enabled by
  // /etc/nginx/modules-enabled/50-mod-stream.conf; builds with a static stream module (nginx.org)
  // have no such file and the glob matches nothing. An explicit load_module would break those.
  const content = `${HEADER}
# This file replaces the distribution's nginx.conf: the node serves no HTTP sites.
user www-data;
worker_processes auto;
pid /run/nginx.pid;
error_log /var/log/nginx/error.log notice;
include /etc/nginx/modules-enabled/*.conf;

events {
    worker_connections 1024;
}

stream {
    upstream kube_apiserver {
${masters.map((m) => `        server ${hostPort(m)} max_fails=2 fail_timeout=10s;`).join('\n')}
    }

    server {
        listen ${port};${v6}
        proxy_pass kube_apiserver;
        proxy_connect_timeout 2s;
        # watches stay open for a long time
        proxy_timeout 1h;
        proxy_next_upstream on;
        proxy_next_upstream_tries ${masters.length};
        proxy_next_upstream_timeout 10s;
    }
}
`;
  return {
    packages: ['nginx', 'libnginx-mod-stream'],
    configPath: path,
    content,
    checkCommand: ['nginx', '-t', '-c', path],
    unit: 'nginx.service',
  };
}

/** Envoy's admin interface; loopback only, moved aside when the LB itself listens there. */
const ENVOY_ADMIN_PORT = 9901;
const ENVOY_UNIT = `[Unit]
Description=Envoy: kube-apiserver load balancer
Documentation=https://www.envoyproxy.io/
After=network-online.target
Wants=network-online.target

[Service]
ExecStartPre=/usr/bin/envoy --mode validate -c /etc/envoy/envoy.yaml
ExecStart=/usr/bin/envoy -c /etc/envoy/envoy.yaml
Restart=always
RestartSec=2
LimitNOFILE=65536
AmbientCapabilities=CAP_NET_BIND_SERVICE
DynamicUser=yes

[Install]
WantedBy=multi-user.target
`;

function envoy(port: number, masters: Checked[]): LbRender {
  const path = '/etc/envoy/envoy.yaml';
  const anyV6 = masters.some((m) => m.kind === 'ipv6');
  const bootstrap = {
    admin: {
      address: {
        socket_address: {
          address: '127.0.0.1',
          port_value: port === ENVOY_ADMIN_PORT ? ENVOY_ADMIN_PORT + 1 : ENVOY_ADMIN_PORT,
        },
      },
    },
    static_resources: {
      listeners: [
        {
          name: 'kube-apiserver',
          address: {
            socket_address: anyV6
              ? { address: '::', port_value: port, ipv4_compat: true }
              : { address: '0.0.0.0', port_value: port },
          },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.tcp_proxy',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
                    stat_prefix: 'kube_apiserver',
                    cluster: 'kube-apiserver',
                    // watches stay open for a long time
                    idle_timeout: '3600s',
                    max_connect_attempts: masters.length,
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [
        {
          name: 'kube-apiserver',
          // STATIC takes IP literals only; with a host name, resolve them all (re-resolved as DNS changes)
          type: masters.every((m) => m.kind !== 'hostname') ? 'STATIC' : 'STRICT_DNS',
          connect_timeout: '2s',
          lb_policy: 'ROUND_ROBIN',
          load_assignment: {
            cluster_name: 'kube-apiserver',
            endpoints: [
              {
                lb_endpoints: masters.map((m) => ({
                  endpoint: {
                    hostname: m.name,
                    address: { socket_address: { address: m.address, port_value: m.port } },
                  },
                })),
              },
            ],
          },
          health_checks: [
            {
              timeout: '2s',
              interval: '2s',
              unhealthy_threshold: 3,
              healthy_threshold: 2,
              http_health_check: { path: '/healthz' },
              // checks speak TLS; the proxied traffic does not (it matches no entry: raw TCP)
              transport_socket_match_criteria: { health_check: 'tls' },
            },
          ],
          transport_socket_matches: [
            {
              name: 'health-check-tls',
              match: { health_check: 'tls' },
              transport_socket: {
                name: 'envoy.transport_sockets.tls',
                typed_config: {
                  '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
                },
              },
            },
          ],
        },
      ],
    },
  };
  return {
    packages: ['envoy'],
    configPath: path,
    // Every string quoted: a YAML 1.1 reader would take a master named "on" or "no" for a boolean.
    content: `${HEADER}\n${stringify(bootstrap, { lineWidth: 0, defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN' })}`,
    checkCommand: ['envoy', '--mode', 'validate', '-c', path],
    unit: 'envoy.service',
    unitFile: { path: '/etc/systemd/system/envoy.service', content: ENVOY_UNIT },
  };
}

/** The LB's files and commands for `kind`, listening on `port`, in front of every master. */
export function renderLbConfig(kind: LbConfigKind, opts: { port: number; masters: LbBackend[] }): LbRender {
  const masters = check(kind, opts.port, opts.masters);
  if (kind === 'haproxy') return haproxy(opts.port, masters);
  if (kind === 'nginx') return nginx(opts.port, masters);
  return envoy(opts.port, masters);
}
