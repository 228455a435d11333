// Intent: external member certificates are signed by the cluster's etcd CA (kubeadm-style PKCS#1
// RSA key), carry the right SANs and usages, and openssl accepts them; a mismatched CA key is
// refused before anything is issued. Names from nodes and the inventory go into certificates only
// as RFC 1123 host names (IPs as IP SANs), in a subject built from fields, never from text.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueCert, issueMemberCerts, isDnsName, loadCa } from '../../src/main/etcd/pki';

let dir: string;
const openssl = (...args: string[]) =>
  execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** The etcd CA certificate over ca.key, self-signed like kubeadm's ("CN=etcd-ca", 10 years). */
function selfSignCa(out: string, extra: string[] = []): void {
  openssl(
    'req',
    '-x509',
    '-new',
    '-key',
    join(dir, 'ca.key'),
    '-subj',
    '/CN=etcd-ca',
    '-days',
    '3650',
    ...extra,
    '-out',
    join(dir, out),
  );
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kes-pki-'));
  // kubeadm's etcd CA: RSA 2048, key in PKCS#1 form.
  openssl('genrsa', '-traditional', '-out', join(dir, 'ca.key'), '2048');
  selfSignCa('ca.crt');
  openssl('genrsa', '-traditional', '-out', join(dir, 'other.key'), '2048');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const read = (f: string) => execFileSync('cat', [join(dir, f)], { encoding: 'utf8' });

describe('etcd PKI', () => {
  it('issues server, peer and client certs that verify against the CA', async () => {
    const ca = await loadCa(read('ca.crt'), read('ca.key'));
    const certs = await issueMemberCerts(ca, { hostname: 's1', address: '198.18.0.20', name: 's1' });
    for (const [name, pair] of Object.entries(certs)) {
      writeFileSync(join(dir, `${name}.crt`), pair.cert);
      writeFileSync(join(dir, `${name}.key`), pair.key);
      expect(openssl('verify', '-CAfile', join(dir, 'ca.crt'), join(dir, `${name}.crt`))).toContain('OK');
      // the key matches the certificate
      const pub1 = openssl('x509', '-in', join(dir, `${name}.crt`), '-noout', '-pubkey');
      const pub2 = openssl('pkey', '-in', join(dir, `${name}.key`), '-pubout');
      expect(pub1).toBe(pub2);
    }
    // Go (etcd) chains by comparing the issuer's raw bytes with the CA subject's raw bytes.
    const x509 = await import('@peculiar/x509');
    const caName = Buffer.from(new x509.X509Certificate(read('ca.crt')).subjectName.toArrayBuffer()).toString('hex');
    const issuer = Buffer.from(new x509.X509Certificate(certs.server.cert).issuerName.toArrayBuffer()).toString('hex');
    expect(issuer).toBe(caName);
    const server = openssl('x509', '-in', join(dir, 'server.crt'), '-noout', '-text');
    expect(server).toMatch(/DNS:s1/);
    expect(server).toMatch(/DNS:localhost/);
    expect(server).toMatch(/IP Address:198\.18\.0\.20/);
    expect(server).toMatch(/IP Address:127\.0\.0\.1/);
    expect(server).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(server).toMatch(/Issuer: CN\s?=\s?etcd-ca/);
    const client = openssl('x509', '-in', join(dir, 'client.crt'), '-noout', '-text');
    expect(client).toMatch(/TLS Web Client Authentication/);
    expect(client).not.toMatch(/Server Authentication/);
  });

  it('names the CA by its own subject key identifier, however that was derived (kubeadm 1.36: truncated SHA-256)', async () => {
    // Go 1.25+ (which builds kubeadm 1.36) derives the SKI by RFC 7093, not SHA-1: a CA with an SKI
    // that is not the SHA-1 of its key must still be found by OpenSSL through the issued AKI.
    const ski = 'a1b2c3d4e5f60718293a4b5c6d7e8f9001122334';
    // like kubeadm's CA: that SKI, and no AKI of its own
    selfSignCa('ca-ski.crt', ['-addext', `subjectKeyIdentifier=${ski}`, '-addext', 'authorityKeyIdentifier=none']);
    const ca = await loadCa(read('ca-ski.crt'), read('ca.key'));
    const { server } = await issueMemberCerts(ca, { hostname: 's1', address: '198.18.0.9', name: 's1' });
    writeFileSync(join(dir, 'ski-server.crt'), server.cert);
    expect(
      openssl('x509', '-in', join(dir, 'ski-server.crt'), '-noout', '-ext', 'authorityKeyIdentifier').toLowerCase(),
    ).toContain(ski.match(/../g)!.join(':'));
    expect(openssl('verify', '-CAfile', join(dir, 'ca-ski.crt'), join(dir, 'ski-server.crt'))).toContain('OK');
  });

  it('refuses a CA key that does not match the certificate', async () => {
    await expect(loadCa(read('ca.crt'), read('other.key'))).rejects.toThrow(/does not match/);
  });

  it('refuses hostile host names, addresses and names with a clear error, before issuing anything', async () => {
    const ca = await loadCa(read('ca.crt'), read('ca.key'));
    const hostile = [
      'a/b',
      'a,b',
      'CN=x',
      'x, O=system:masters',
      'a\nb',
      'a\u0000b',
      `${'a'.repeat(64)}.example`,
      'a..b',
    ];
    for (const bad of hostile) {
      await expect(issueMemberCerts(ca, { hostname: bad, address: '198.18.0.20', name: 's1' })).rejects.toMatchObject({
        code: 'INVALID_INPUT',
        message: expect.stringMatching(/host name of "s1" .* is not a valid host name \(RFC 1123/),
      });
      await expect(issueMemberCerts(ca, { hostname: 's1', address: bad, name: 's1' })).rejects.toThrow(
        /not a valid host name/,
      );
      // ("a..b" fits the inventory's name charset: a label that is simply left out, tested below)
      if (bad !== 'a..b')
        await expect(issueMemberCerts(ca, { hostname: 's1', address: '198.18.0.20', name: bad })).rejects.toThrow(
          /not a valid host name/,
        );
      await expect(issueCert(ca, { commonName: bad, dnsNames: [], ips: [], usage: 'server' })).rejects.toThrow(
        /not a valid host name/,
      );
      await expect(issueCert(ca, { commonName: 's1', dnsNames: [bad], ips: [], usage: 'server' })).rejects.toThrow(
        /not a valid host name/,
      );
    }
    await expect(issueCert(ca, { commonName: 's1', dnsNames: [], ips: ['s1'], usage: 'server' })).rejects.toThrow(
      /not an IP address/,
    );
    await expect(
      issueCert(ca, { commonName: 's1', dnsNames: [], ips: [], usage: 'client', organization: 'a\nO=x' }),
    ).rejects.toThrow(/not plain printable/);
  });

  it('puts IPs in IP SANs, host-name addresses in DNS SANs, and builds a one-attribute subject', async () => {
    expect(['s1', 'etcd-1.lab.example', 'A1'].every(isDnsName)).toBe(true);
    expect(['', '-a', 'a-', 'a_b', '1.2.3', 'a'.repeat(64), `${'a.'.repeat(127)}a`].some(isDnsName)).toBe(false);
    const ca = await loadCa(read('ca.crt'), read('ca.key'));
    // The node reports an IP as its host name; the address is a DNS name; the inventory label is not one.
    const { server } = await issueMemberCerts(ca, {
      hostname: '198.18.0.21',
      address: 'e1.lab.example',
      name: 'etcd_1',
    });
    writeFileSync(join(dir, 'names.crt'), server.cert);
    const text = openssl('x509', '-in', join(dir, 'names.crt'), '-noout', '-text', '-nameopt', 'RFC2253');
    expect(text).toMatch(/IP Address:198\.18\.0\.21/);
    expect(text).not.toMatch(/DNS:198/);
    expect(text).toMatch(/DNS:e1\.lab\.example/);
    expect(text).not.toMatch(/etcd_1/);
    const { cert } = await issueCert(ca, {
      commonName: 's1',
      dnsNames: ['s1'],
      ips: [],
      usage: 'client',
      organization: 'kes',
    });
    writeFileSync(join(dir, 'subject.crt'), cert);
    const subject = openssl('x509', '-in', join(dir, 'subject.crt'), '-noout', '-subject', '-nameopt', 'RFC2253');
    expect(subject.trim()).toBe('subject=O=kes,CN=s1');
  });
});
