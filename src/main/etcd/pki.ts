// Certificates for external etcd members, issued in-process from the cluster's etcd CA with
// @peculiar/x509 (no cfssl/openssl binaries). Signed by the same CA as the stacked members, so
// the apiservers' existing apiserver-etcd-client certificate keeps working after a switch.
// The CA key is read from a master only for the duration of a job and lives only in memory.
import 'reflect-metadata';
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';
import { EtcdOpError } from './deps';

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

// ------------------------------------------------------------- names that go into certificates

/** One RFC 1123 label: letters, digits and inner hyphens, 1–63 characters. */
const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

/** An RFC 1123 host name (≤ 253 characters of dot-separated labels), not a dotted all-numeric string. */
export function isDnsName(s: string): boolean {
  if (!s || s.length > 253 || /^[\d.]+$/.test(s)) return false;
  return s.split('.').every((l) => LABEL_RE.test(l));
}

/** A value as it can be shown in an error message (quoted, escapes visible, bounded). */
function shown(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

/** `s` when it is a host name, else a refusal naming `what` (the value comes from a node or the inventory). */
export function checkDnsName(s: string, what: string): string {
  if (isDnsName(s)) return s;
  throw new EtcdOpError(
    'INVALID_INPUT',
    `${what} ${shown(s)} is not a valid host name (RFC 1123: letters, digits and "-", dot-separated labels of ` +
      'at most 63 characters): refusing to put it in a certificate',
  );
}

function checkIp(s: string, what: string): string {
  if (isIP(s)) return s;
  throw new EtcdOpError(
    'INVALID_INPUT',
    `${what} ${shown(s)} is not an IP address: refusing to put it in a certificate`,
  );
}

export async function issueCert(ca: EtcdCa, req: IssueRequest): Promise<CertPair> {
  // Checked before anything is generated; the subject is built from fields, never from text, so a
  // name can neither add attributes ("," or "=") nor break the encoding.
  const commonName = isIP(req.commonName) ? req.commonName : checkDnsName(req.commonName, 'The certificate name');
  const dnsNames = req.dnsNames.map((d) => checkDnsName(d, 'The DNS name'));
  const ips = req.ips.map((a) => checkIp(a, 'The IP address'));
  if (req.organization !== undefined && !/^[\x20-\x7e]{1,64}$/.test(req.organization))
    throw new EtcdOpError('INVALID_INPUT', `Organization ${shown(req.organization)} is not plain printable text`);
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
    ...dnsNames.map((v) => ({ type: 'dns' as const, value: v })),
    ...ips.map((v) => ({ type: 'ip' as const, value: v })),
  ];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension(usages, false),
    await authorityKeyId(ca.cert),
  ];
  if (names.length) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  const subject: x509.JsonName = [{ CN: [commonName] }, ...(req.organization ? [{ O: [req.organization] }] : [])];
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

/** The inventory's node-name charset: a label the user chose, which may not be a DNS name (e.g. "etcd_1"). */
const INVENTORY_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/**
 * Server, peer and healthcheck-client certificates for one external member. The host name the
 * node reports and its address are its identity: an IP goes to the IP SANs, anything else must be
 * an RFC 1123 host name or nothing is issued. The inventory name is an alias: added when it is a
 * host name (or IP), left out when it is an inventory label that is not one, refused otherwise.
 */
export async function issueMemberCerts(
  ca: EtcdCa,
  node: { hostname: string; address: string; name: string },
): Promise<{ server: CertPair; peer: CertPair; client: CertPair }> {
  const dns = new Set<string>();
  const ips = new Set<string>();
  const add = (v: string, what: string, alias = false) => {
    if (!v) return;
    if (isIP(v)) ips.add(v);
    else if (alias && !isDnsName(v) && INVENTORY_NAME_RE.test(v)) return;
    else dns.add(checkDnsName(v, what));
  };
  add(node.hostname, `The host name of ${shown(node.name)}`);
  add(node.address, `The address of ${shown(node.name)}`);
  add(node.name, 'The node name', true);
  dns.add('localhost');
  ips.add('127.0.0.1');
  ips.add('::1');
  const cn = node.hostname || node.name;
  const member = { commonName: cn, dnsNames: [...dns], ips: [...ips] };
  return {
    server: await issueCert(ca, { ...member, usage: 'server' }),
    peer: await issueCert(ca, { ...member, usage: 'peer' }),
    client: await issueCert(ca, { commonName: 'kube-etcd-healthcheck-client', dnsNames: [], ips: [], usage: 'client' }),
  };
}
