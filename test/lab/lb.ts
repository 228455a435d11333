// The load balancer host: TCP pass-through on :6443 to every master's apiserver (clients keep their
// client certificates end to end), with health checks so a stopped apiserver drops out fast.
// haproxy: active HTTPS checks of /healthz every second (the kubeadm HA guide's config, faster timers),
// run by Debian's own haproxy.service through the systemctl stand-in.
// nginx: open-source nginx has only passive checks, so a refused connection is retried on the next
// upstream (proxy_next_upstream) and the server is marked failed for a few seconds.
import type { SeedFile } from './host';
import type { HostSpec } from './types';

export function haproxyConfig(masters: HostSpec[]): string {
  return `# kube-apiserver load balancer (lab), after kubeadm's docs/ha-considerations.md
global
    log stdout format raw local0 info
    maxconn 4096

defaults
    mode                    tcp
    log                     global
    option                  tcplog
    option                  dontlognull
    option                  redispatch
    retries                 3
    timeout connect         2s
    timeout client          1h
    timeout server          1h
    timeout check           2s

frontend apiserver
    bind *:6443
    mode tcp
    option tcplog
    default_backend apiserverbackend

backend apiserverbackend
    option httpchk
    http-check connect ssl
    http-check send meth GET uri /healthz
    http-check expect status 200
    mode tcp
    balance     roundrobin
    default-server inter 1s fall 2 rise 1
${masters.map((m) => `    server ${m.name} ${m.address}:6443 check verify none`).join('\n')}
`;
}

export function nginxConfig(masters: HostSpec[]): string {
  return `# kube-apiserver load balancer (lab): nginx stream module, TCP pass-through
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
user www-data;
worker_processes 1;
pid /run/nginx.pid;
error_log stderr notice;

events {
    worker_connections 1024;
}

stream {
    upstream kube_apiserver {
${masters.map((m) => `        server ${m.address}:6443 max_fails=1 fail_timeout=5s;`).join('\n')}
    }
    server {
        listen 6443;
        proxy_pass kube_apiserver;
        proxy_connect_timeout 1s;
        proxy_timeout 1h;
        proxy_next_upstream on;
        proxy_next_upstream_tries ${masters.length};
    }
}
`;
}

/** nginx's Debian unit forks (Type=forking); this admin override keeps it in the foreground. */
export const NGINX_UNIT = `[Unit]
Description=A high performance web server and a reverse proxy server
Documentation=man:nginx(8)
After=network-online.target remote-fs.target nss-lookup.target
Wants=network-online.target

[Service]
Type=simple
ExecStartPre=/usr/sbin/nginx -t -q -g 'daemon off; master_process on;'
ExecStart=/usr/sbin/nginx -g 'daemon off; master_process on;'
Restart=always
TimeoutStopSec=5

[Install]
WantedBy=multi-user.target
`;

/** Files for the LB host and the unit to enable. */
export function lbFiles(kind: 'haproxy' | 'nginx', masters: HostSpec[]): { files: SeedFile[]; unit: string } {
  if (kind === 'haproxy') {
    return { files: [{ path: '/etc/haproxy/haproxy.cfg', content: haproxyConfig(masters) }], unit: 'haproxy.service' };
  }
  return {
    files: [
      { path: '/etc/nginx/nginx.conf', content: nginxConfig(masters) },
      { path: '/etc/systemd/system/nginx.service', content: NGINX_UNIT },
    ],
    unit: 'nginx.service',
  };
}
