// Certificates for external etcd members, issued in-process from the cluster's etcd CA with
// @peculiar/x509 (no cfssl/openssl binaries). Signed by the same CA as the stacked members, so
// the apiservers' existing apiserver-etcd-client certificate keeps working after a switch.
// The CA key is read from a master only for the duration of a job and lives only in memory.
import 'reflect-metadata';
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// Node's WebCrypto is the standard one; the cast only bridges DOM vs Node typings.
x509.cryptoProvider.set(webcrypto as never);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const subtle = webcrypto.subtle;
const RSA = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as const;
const ECDSA = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface CertPair {
  cert: string;
  key: string;
}

export interface EtcdCa {
  cert: x509.X509Certificate;
  key: CryptoKey;
  algorithm: typeof RSA | typeof ECDSA;
}

/** kubeadm writes PKCS#1 ("BEGIN RSA PRIVATE KEY") or SEC1 EC keys; WebCrypto wants PKCS#8. */
function toPkcs8(pem: string): { der: Buffer; type: 'rsa' | 'ec' } {
  const key = createPrivateKey(pem);
  const type = key.asymmetricKeyType === 'ec' ? 'ec' : 'rsa';
  if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'ec')
    throw new Error(`Unsupported CA key type ${key.asymmetricKeyType}`);
  return { der: key.export({ type: 'pkcs8', format: 'der' }) as Buffer, type };
}

export async function loadCa(certPem: string, keyPem: string): Promise<EtcdCa> {
  const cert = new x509.X509Certificate(certPem);
  const { der, type } = toPkcs8(keyPem);
  const algorithm = type === 'ec' ? ECDSA : RSA;
  const key = await subtle.importKey(
    'pkcs8',
    der,
    type === 'ec' ? { name: 'ECDSA', namedCurve: 'P-256' } : RSA,
    false,
    ['sign'],
  );
  // Refuse a key that does not belong to the certificate: everything signed would be useless.
  const probe = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=probe',
    notBefore: new Date(),
    notAfter: new Date(Date.now() + 60_000),
    keys: { privateKey: key, publicKey: await cert.publicKey.export(algorithm, ['verify']) },
    signingAlgorithm: algorithm,
  });
  if (!(await probe.verify({ publicKey: await cert.publicKey.export(algorithm, ['verify']) })))
    throw new Error('The etcd CA key does not match its certificate');
  return { cert, key, algorithm };
}

export interface IssueRequest {
  /** Common name, e.g. the node's hostname (kubeadm uses the node name for server/peer). */
  commonName: string;
  dnsNames: string[];
  ips: string[];
  usage: 'server' | 'peer' | 'client';
  /** Validity in days (kubeadm: 1 year). */
  days?: number;
  organization?: string;
}

function serial(): string {
  const b = randomBytes(16);
  b[0] &= 0x7f; // positive
  return b.toString('hex');
}

/**
 * The authority key identifier must repeat the CA's own subject key identifier: OpenSSL (and curl)
 * pick the issuer by it. Computing it again is not the same thing — Go 1.25+ (kubeadm 1.36 is built
 * with it) derives the SKI from a truncated SHA-256 of the key (RFC 7093), not SHA-1.
 */
async function authorityKeyId(caCert: x509.X509Certificate): Promise<x509.Extension> {
  const ski = caCert.getExtension(x509.SubjectKeyIdentifierExtension);
  if (ski) return new x509.AuthorityKeyIdentifierExtension(ski.keyId, false);
  return x509.AuthorityKeyIdentifierExtension.create(caCert, false);
}

export async function issueCert(ca: EtcdCa, req: IssueRequest): Promise<CertPair> {
  const keys = (await subtle.generateKey(
    ca.algorithm.name === 'ECDSA'
      ? { name: 'ECDSA', namedCurve: 'P-256' }
      : { ...RSA, modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) },
    true,
    ['sign', 'verify'],
  )) as CryptoKeyPair;
  const now = Date.now();
  const usages =
    req.usage === 'client'
      ? [x509.ExtendedKeyUsage.clientAuth]
      : // kubeadm gives etcd server and peer certs both usages (members dial each other).
        [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth];
  const names = [
    ...req.dnsNames.map((v) => ({ type: 'dns' as const, value: v })),
    ...req.ips.map((v) => ({ type: 'ip' as const, value: v })),
  ];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension(usages, false),
    await authorityKeyId(ca.cert),
  ];
  if (names.length) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  const subject = req.organization ? `CN=${req.commonName}, O=${req.organization}` : `CN=${req.commonName}`;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject,
    // The CA's subject exactly as encoded (UTF8String vs PrintableString matters): Go's x509, which
    // etcd uses, matches issuer to subject byte for byte when building the chain.
    issuer: ca.cert.subjectName,
    notBefore: new Date(now - 5 * 60_000), // tolerate small clock skew between desktop and nodes
    notAfter: new Date(now + (req.days ?? 365) * 86_400_000),
    signingAlgorithm: ca.algorithm,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    extensions,
  });
  const pkcs8 = Buffer.from(await subtle.exportKey('pkcs8', keys.privateKey));
  const key = `-----BEGIN PRIVATE KEY-----\n${pkcs8
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
  return { cert: cert.toString('pem') + '\n', key };
}

/** Server, peer and healthcheck-client certificates for one external member. */
export async function issueMemberCerts(
  ca: EtcdCa,
  node: { hostname: string; address: string; name: string },
): Promise<{ server: CertPair; peer: CertPair; client: CertPair }> {
  const dns = [...new Set([node.hostname, node.name, 'localhost'].filter(Boolean))];
  const ips = [...new Set([node.address, '127.0.0.1', '::1'].filter((a) => /^[\d.]+$|:/.test(a)))];
  return {
    server: await issueCert(ca, { commonName: node.hostname || node.name, dnsNames: dns, ips, usage: 'server' }),
    peer: await issueCert(ca, { commonName: node.hostname || node.name, dnsNames: dns, ips, usage: 'peer' }),
    client: await issueCert(ca, { commonName: 'kube-etcd-healthcheck-client', dnsNames: [], ips: [], usage: 'client' }),
  };
}
