// Intent: the load balancer configurations pass TCP through to every master's apiserver with health
// checks (haproxy: active HTTPS /healthz; nginx: passive + next upstream; envoy: tcp_proxy + active
// /healthz over a TLS socket used for checks only), bracket IPv6 where the syntax needs it, refuse
// anything that is not a name, address or port — and the real checkers accept them: haproxy -c and
// nginx -t on this machine, and for Envoy (no binary here) envoy-check, a validator built from
// Envoy's own API module (test/lab/gobuild/envoy-check). Broken configs make each checker fail.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  checkCommandFor,
  LbConfigError,
  renderLbConfig,
  type LbBackend,
  type LbRender,
} from '../../src/main/kube/lb-config';

const run = promisify(execFile);
const HAPROXY = '/usr/sbin/haproxy';
const NGINX = '/usr/sbin/nginx';
const ENVOY_CHECK = join(process.env.KES_LAB_CACHE ?? '/var/cache/kes-lab', 'bin', 'envoy-check');
const missing = (bin: string, how: string) => (existsSync(bin) ? '' : ` (skipped: ${bin} is missing; ${how})`);

const MASTERS: LbBackend[] = [
  { name: 'm1', address: '198.18.0.3', port: 6443 },
  { name: 'm2', address: '198.18.0.4', port: 6443 },
  { name: 'm3', address: '198.18.0.5', port: 6443 },
];
const MIXED: LbBackend[] = [
  { name: 'm1', address: '198.18.0.3', port: 6443 },
  { name: 'on', address: '[2001:db8::4]', port: 6443 },
  { name: 'm3', address: 'm3.cluster.example', port: 6443 },
];

const dir = mkdtempSync(join(tmpdir(), 'kes-lb-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
function file(name: string, content: string): string {
  const p = join(dir, `${++seq}-${name}`);
  writeFileSync(p, content);
  return p;
}

/** The plan's argv aimed at a copy of the file; resolves to the exit status and output. */
async function check(r: LbRender, bin: string, path: string) {
  const args = checkCommandFor(r, path).slice(1);
  try {
    const r = await run(bin, args, { timeout: 20_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: err.code ?? -1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

describe('haproxy', () => {
  const r = renderLbConfig('haproxy', { port: 6443, masters: MASTERS });

  it('passes TCP to every master with HTTPS checks of /healthz', () => {
    expect(r).toMatchObject({
      packages: ['haproxy'],
      configPath: '/etc/haproxy/haproxy.cfg',
      checkCommand: ['haproxy', '-c', '-f', '/etc/haproxy/haproxy.cfg'],
      unit: 'haproxy.service',
    });
    expect(checkCommandFor(r, '/tmp/staged.cfg')).toEqual(['haproxy', '-c', '-f', '/tmp/staged.cfg']);
    expect(r.content).toContain('mode                    tcp');
    expect(r.content).toContain('bind *:6443\n');
    expect(r.content).toContain('http-check connect ssl');
    expect(r.content).toContain('http-check send meth GET uri /healthz');
    expect(r.content).toContain('http-check expect status 200');
    expect(r.content.match(/^ {4}server .*$/gm)).toEqual([
      '    server m1 198.18.0.3:6443 check verify none',
      '    server m2 198.18.0.4:6443 check verify none',
      '    server m3 198.18.0.5:6443 check verify none',
    ]);
  });

  it('brackets IPv6 masters and listens on IPv6 too', () => {
    const v6 = renderLbConfig('haproxy', { port: 8443, masters: MIXED }).content;
    expect(v6).toContain('server on [2001:db8::4]:6443 check verify none');
    expect(v6).toContain('server m3 m3.cluster.example:6443 check verify none');
    expect(v6).toContain('bind *:8443\n    bind :::8443 v6only');
  });

  it(`is accepted by the real haproxy -c${missing(HAPROXY, 'apt-get install haproxy')}`, async (ctx) => {
    if (!existsSync(HAPROXY)) return ctx.skip();
    const ok = await check(r, HAPROXY, file('haproxy.cfg', r.content));
    expect(ok.out).toMatch(/Configuration file is valid/);
    expect(ok.code).toBe(0);
    const v6 = renderLbConfig('haproxy', { port: 6643, masters: MIXED.filter((m) => m.name !== 'm3') });
    expect((await check(v6, HAPROXY, file('haproxy-v6.cfg', v6.content))).code).toBe(0);
  });

  it(`makes haproxy -c fail when broken${missing(HAPROXY, 'apt-get install haproxy')}`, async (ctx) => {
    if (!existsSync(HAPROXY)) return ctx.skip();
    const broken = r.content.replace('198.18.0.4:6443', '198.18.0.400:6443');
    const res = await check(r, HAPROXY, file('broken.cfg', broken));
    expect(res.code).not.toBe(0);
    expect(res.out).toMatch(/198\.18\.0\.400/);
  });
});

describe('nginx', () => {
  const r = renderLbConfig('nginx', { port: 6443, masters: MASTERS });
  // Same file, but pid and error log in the temp dir so the check touches nothing of the machine's.
  const local = (content: string) =>
    content
      .replace('pid /run/nginx.pid;', `pid ${dir}/nginx.pid;`)
      .replace('/var/log/nginx/error.log', `${dir}/error.log`);

  it('passes TCP through the stream module with passive checks and retries on the next master', () => {
    expect(r).toMatchObject({
      packages: ['nginx', 'libnginx-mod-stream'],
      configPath: '/etc/nginx/nginx.conf',
      checkCommand: ['nginx', '-t', '-c', '/etc/nginx/nginx.conf'],
      unit: 'nginx.service',
    });
    expect(r.content).toContain('include /etc/nginx/modules-enabled/*.conf;');
    expect(r.content).not.toContain('load_module');
    expect(r.content).not.toMatch(/^\s*http\s*\{/m);
    expect(r.content.match(/^ {8}server .*$/gm)).toEqual([
      '        server 198.18.0.3:6443 max_fails=2 fail_timeout=10s;',
      '        server 198.18.0.4:6443 max_fails=2 fail_timeout=10s;',
      '        server 198.18.0.5:6443 max_fails=2 fail_timeout=10s;',
    ]);
    expect(r.content).toContain('listen 6443;\n');
    expect(r.content).toContain('proxy_next_upstream on;');
    expect(r.content).toContain('proxy_next_upstream_tries 3;');
  });

  it('brackets IPv6 masters and listens on IPv6 too', () => {
    const v6 = renderLbConfig('nginx', { port: 6443, masters: MIXED }).content;
    expect(v6).toContain('server [2001:db8::4]:6443 max_fails=2');
    expect(v6).toContain('listen [::]:6443 ipv6only=on;');
  });

  it(`is accepted by the real nginx -t${missing(NGINX, 'apt-get install nginx libnginx-mod-stream')}`, async (ctx) => {
    if (!existsSync(NGINX)) return ctx.skip();
    const ok = await check(r, NGINX, file('nginx.conf', local(r.content)));
    expect(ok.out).toMatch(/syntax is ok/);
    expect(ok.code).toBe(0);
    const v6 = renderLbConfig('nginx', { port: 6643, masters: MIXED.filter((m) => m.name !== 'm3') });
    expect((await check(v6, NGINX, file('nginx-v6.conf', local(v6.content)))).code).toBe(0);
  });

  it(`makes nginx -t fail when broken${missing(NGINX, 'apt-get install nginx libnginx-mod-stream')}`, async (ctx) => {
    if (!existsSync(NGINX)) return ctx.skip();
    // without the stream module nginx does not know the block at all
    const noStream = local(r.content).replace('include /etc/nginx/modules-enabled/*.conf;', '');
    const res = await check(r, NGINX, file('no-stream.conf', noStream));
    expect(res.code).not.toBe(0);
    expect(res.out).toMatch(/unknown directive "stream"/);
    const badPort = local(r.content).replace('listen 6443;', 'listen 65536;');
    expect((await check(r, NGINX, file('bad-port.conf', badPort))).code).not.toBe(0);
  });
});

describe('envoy', () => {
  const r = renderLbConfig('envoy', { port: 6443, masters: MASTERS });
  const cfg = parse(r.content);
  const how = 'build it: KES_LAB_ONLY=envoy-check npm run lab:binaries';

  it('proxies TCP to a static cluster of the masters, checked over TLS at /healthz', () => {
    expect(r).toMatchObject({
      packages: ['envoy'],
      configPath: '/etc/envoy/envoy.yaml',
      checkCommand: ['envoy', '--mode', 'validate', '-c', '/etc/envoy/envoy.yaml'],
      unit: 'envoy.service',
      unitFile: { path: '/etc/systemd/system/envoy.service' },
    });
    expect(r.unitFile!.content).toContain('ExecStart=/usr/bin/envoy -c /etc/envoy/envoy.yaml');
    expect(cfg.admin.address.socket_address).toEqual({ address: '127.0.0.1', port_value: 9901 });
    const [listener] = cfg.static_resources.listeners;
    expect(listener.address.socket_address).toEqual({ address: '0.0.0.0', port_value: 6443 });
    const [filter] = listener.filter_chains[0].filters;
    expect(filter.typed_config['@type']).toBe(
      'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
    );
    expect(filter.typed_config.cluster).toBe('kube-apiserver');
    const [cluster] = cfg.static_resources.clusters;
    expect(cluster.name).toBe('kube-apiserver');
    expect(cluster.type).toBe('STATIC');
    expect(
      cluster.load_assignment.endpoints[0].lb_endpoints.map(
        (e: { endpoint: { address: { socket_address: unknown } } }) => e.endpoint.address.socket_address,
      ),
    ).toEqual(MASTERS.map((m) => ({ address: m.address, port_value: 6443 })));
    const [hc] = cluster.health_checks;
    expect(hc.http_health_check).toEqual({ path: '/healthz' });
    // the TLS socket serves the checks only; proxied traffic matches no entry and stays raw TCP
    expect(cluster.transport_socket_matches).toEqual([
      {
        name: 'health-check-tls',
        match: hc.transport_socket_match_criteria,
        transport_socket: {
          name: 'envoy.transport_sockets.tls',
          typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext' },
        },
      },
    ]);
    expect(cluster.transport_socket).toBeUndefined();
  });

  it('resolves host names (STRICT_DNS), listens dual-stack for IPv6, quotes every string', () => {
    const mixed = renderLbConfig('envoy', { port: 9901, masters: MIXED });
    const c = parse(mixed.content);
    expect(c.static_resources.clusters[0].type).toBe('STRICT_DNS');
    expect(c.static_resources.listeners[0].address.socket_address).toEqual({
      address: '::',
      port_value: 9901,
      ipv4_compat: true,
    });
    expect(c.admin.address.socket_address.port_value).toBe(9902);
    // "on" stays a string even for a YAML 1.1 reader
    expect(mixed.content).toContain('hostname: "on"');
    expect(mixed.content).toContain('address: "2001:db8::4"');
  });

  it(`is accepted by envoy-check${missing(ENVOY_CHECK, how)}`, async (ctx) => {
    if (!existsSync(ENVOY_CHECK)) return ctx.skip();
    for (const [name, render] of [
      ['envoy.yaml', r],
      ['envoy-mixed.yaml', renderLbConfig('envoy', { port: 9901, masters: MIXED })],
    ] as const) {
      const res = await check(render, ENVOY_CHECK, file(name, render.content));
      expect(res.out).toMatch(/OK/);
      expect(res.code).toBe(0);
    }
  });

  it(`makes envoy-check fail when broken${missing(ENVOY_CHECK, how)}`, async (ctx) => {
    if (!existsSync(ENVOY_CHECK)) return ctx.skip();
    const cases: [string, string, RegExp][] = [
      [
        'port',
        r.content.replace('port_value: 6443\n      filter_chains', 'port_value: 70000\n      filter_chains'),
        /PortValue/,
      ],
      ['enum', r.content.replace('"ROUND_ROBIN"', '"ROUND_ROBINS"'), /enum/],
      ['field', r.content.replace('lb_policy:', 'lb_polcy:'), /unknown field "lb_polcy"/],
      [
        'cluster',
        r.content.replace('cluster: "kube-apiserver"', 'cluster: "apiservers"'),
        /unknown cluster "apiservers"/,
      ],
      // rules of a message packed in an Any (typed_config) are checked too
      ['any', r.content.replace('stat_prefix: "kube_apiserver"', 'stat_prefix: ""'), /StatPrefix/],
    ];
    for (const [name, content, why] of cases) {
      expect(content).not.toBe(r.content);
      const res = await check(r, ENVOY_CHECK, file(`broken-${name}.yaml`, content));
      expect(res.code, name).toBe(1);
      expect(res.out, name).toMatch(why);
    }
  });
});

describe('input checks', () => {
  it('refuses anything that is not a name, an address or a port before it reaches a file', () => {
    const bad: [LbBackend[], number, RegExp][] = [
      [[{ name: 'm1', address: '198.18.0.3;\n    server evil 6.6.6.6', port: 6443 }], 6443, /not a host name/],
      [[{ name: 'm1\n    server evil', address: '198.18.0.3', port: 6443 }], 6443, /Master name/],
      [
        [
          { name: 'm1', address: '198.18.0.3', port: 6443 },
          { name: 'm1', address: '198.18.0.4', port: 6443 },
        ],
        6443,
        /twice/,
      ],
      [[{ name: 'm1', address: '198.18.0.3', port: 0 }], 6443, /port 0/],
      [MASTERS, 65536, /Load balancer port/],
      [[], 6443, /at least one master/],
    ];
    for (const kind of ['haproxy', 'nginx', 'envoy'] as const)
      for (const [masters, port, why] of bad) {
        expect(() => renderLbConfig(kind, { port, masters })).toThrow(LbConfigError);
        expect(() => renderLbConfig(kind, { port, masters })).toThrow(why);
      }
    expect(() => renderLbConfig('traefik' as never, { port: 6443, masters: MASTERS })).toThrow(/Unknown load balancer/);
  });
});
