// Intent: the "Add several nodes" list is parsed line by line (comments and blank lines skipped,
// problems kept on their row), every row's problems are found (bad address/port, a machine twice
// or already in the cluster), and the previous node's settings are offered for the next one.
import { describe, expect, it } from 'vitest';
import type { ClusterNode } from '@shared/domain';
import {
  credentialPayload,
  defaultName,
  nodesToAdd,
  parseHostList,
  parseTarget,
  prefillFrom,
  previousNode,
  reusable,
  rowsFromSshConfig,
  serverRowIssues,
  sharedCredentialIssues,
  validRowIndexes,
  validateRows,
} from './addnodes';

const D = { port: '22', user: 'root' };
const node = (over: Partial<ClusterNode>): ClusterNode => ({
  id: 'n1',
  name: 'm1',
  address: '198.18.0.2',
  port: 22,
  user: 'root',
  roles: ['master'],
  auth: { method: 'agent' },
  jumpNodeId: null,
  ...over,
});
const fields = (issues: { field: string }[]) => issues.map((i) => i.field);

describe('parseTarget', () => {
  it('splits user, host and port; keeps bare IPv6 whole; takes [v6]:port', () => {
    expect(parseTarget('198.18.0.3')).toEqual({ address: '198.18.0.3' });
    expect(parseTarget('m1.lab:2222')).toEqual({ address: 'm1.lab', port: '2222' });
    expect(parseTarget('admin@198.18.0.3:2200')).toEqual({ user: 'admin', address: '198.18.0.3', port: '2200' });
    expect(parseTarget('2001:db8::1')).toEqual({ address: '2001:db8::1' });
    expect(parseTarget('[2001:db8::1]:23')).toEqual({ address: '[2001:db8::1]', port: '23' });
    expect(parseTarget('[2001:db8::1').problem).toMatch(/Missing "\]"/);
  });
});

describe('parseHostList', () => {
  it('makes one row per machine line, skipping comments and blank lines, with 1-based line numbers', () => {
    const rows = parseHostList(
      [
        '# the lab',
        '',
        '198.18.0.2 lb lb',
        'admin@198.18.0.3:2222 m1 master,etcd  # first master',
        '   ',
        'e1.lab',
      ].join('\n'),
      D,
    );
    expect(rows).toEqual([
      {
        name: 'lb',
        address: '198.18.0.2',
        port: '22',
        user: 'root',
        roles: ['lb'],
        source: { kind: 'paste', line: 3 },
      },
      {
        name: 'm1',
        address: '198.18.0.3',
        port: '2222',
        user: 'admin',
        roles: ['master', 'etcd'],
        source: { kind: 'paste', line: 4 },
      },
      { name: 'e1', address: 'e1.lab', port: '22', user: 'root', roles: [], source: { kind: 'paste', line: 6 } },
    ]);
  });

  it('uses the given defaults for port and user, and names a machine after its address', () => {
    const [r] = parseHostList('198.18.0.9', { port: '2022', user: 'ops' });
    expect(r).toMatchObject({ name: '198.18.0.9', port: '2022', user: 'ops' });
    expect(defaultName('w1.example.org')).toBe('w1');
    expect(defaultName('[2001:db8::1]')).toBe('2001-db8-1');
  });

  it('keeps a line it cannot fully read as a row with its problem (unknown role, extra words)', () => {
    const rows = parseHostList('198.18.0.4 w1 boss\n198.18.0.5 w2 worker what is this', D);
    expect(rows[0].problem).toBe('Unknown role "boss" (master, worker, lb, etcd)');
    expect(rows[1].problem).toMatch(/^Unexpected "what is this": a line is/);
    expect(rows[1].roles).toEqual(['worker']);
  });
});

describe('validateRows', () => {
  it('flags a bad address, a bad port and a bad user on their own row', () => {
    const rows = parseHostList('300.1.1.1 a\n198.18.0.3:70000 b\nBad@198.18.0.4 c\n198.18.0.5:x d', D);
    const issues = validateRows(rows, []);
    expect(issues).toEqual([
      { field: 'rows.0.address', message: 'Not a valid host name or IP address' },
      { field: 'rows.1.port', message: 'Port must be between 1 and 65535' },
      { field: 'rows.2.user', message: expect.stringMatching(/^User names start with a letter/) },
      { field: 'rows.3.port', message: 'Port must be a number' },
    ]);
    expect(validRowIndexes(rows, issues)).toEqual([]);
  });

  it('refuses the second line naming the same machine, and machines or names the cluster has', () => {
    const existing = [node({ name: 'm1', address: '198.18.0.2' })];
    const rows = parseHostList(
      [
        '198.18.0.3 w1',
        '198.18.0.3:22 w2',
        '198.18.0.3:2222 w3',
        '198.18.0.2 m9',
        '198.18.0.7 M1',
        '198.18.0.8 w1',
      ].join('\n'),
      D,
    );
    const issues = validateRows(rows, existing);
    expect(issues).toEqual([
      { field: 'rows.1.address', message: 'Same machine as line 1' },
      { field: 'rows.3.address', message: 'Same machine already in the cluster as m1' },
      { field: 'rows.4.name', message: 'Name already used in this cluster' },
      { field: 'rows.5.name', message: 'Name used by line 1' },
    ]);
    // Another SSH port on the same address is another machine (sshd per port, as in the lab).
    expect(validRowIndexes(rows, issues)).toEqual([0, 2]);
  });

  it('treats an unreadable line as a problem of its row', () => {
    const rows = parseHostList('198.18.0.3 w1 boss', D);
    expect(fields(validateRows(rows, []))).toEqual(['rows.0.line']);
  });

  it('checks an ssh config row’s ProxyJump against the cluster’s nodes', () => {
    const rows = rowsFromSshConfig(
      [
        {
          host: 'w1',
          hostName: '198.18.0.4',
          user: 'ops',
          port: 2222,
          identityFile: '/home/u/.ssh/w1',
          proxyJump: 'm1',
        },
        { host: 'w2', hostName: '198.18.0.5', proxyJump: 'nowhere' },
      ],
      D,
    );
    expect(rows[0]).toMatchObject({
      name: 'w1',
      address: '198.18.0.4',
      port: '2222',
      user: 'ops',
      keyPath: '/home/u/.ssh/w1',
    });
    expect(validateRows(rows, [node({})])).toEqual([
      { field: 'rows.1.proxyJump', message: 'ProxyJump nowhere is not a node of this cluster: add it first' },
    ]);
  });
});

describe('what the previous node offers the next', () => {
  it('is the last node added; its port, user, jump host and key path are the prefill', () => {
    const nodes = [
      node({ id: 'a', name: 'a' }),
      node({
        id: 'b',
        name: 'b',
        port: 2222,
        user: 'ops',
        jumpNodeId: 'a',
        auth: { method: 'key-file', keyPath: '/k/id' },
      }),
    ];
    const p = prefillFrom(previousNode(nodes));
    expect(p).toMatchObject({ port: '2222', user: 'ops', jumpNodeId: 'a', from: { id: 'b', name: 'b' } });
    expect(p.credential).toMatchObject({ method: 'key-file', keyPath: '/k/id', pastedKey: '', password: '' });
    expect(prefillFrom(undefined)).toMatchObject({ port: '22', user: 'root', jumpNodeId: '' });
  });

  it('offers the stored secret only when the previous node has the one this method needs', () => {
    const flags = { privateKey: true, passphrase: false, password: false };
    expect(reusable('key-stored', flags)).toBe(true);
    expect(reusable('password', flags)).toBe(false);
    expect(reusable('agent', flags)).toBe(false);
    expect(reusable('key-stored', null)).toBe(false);
  });

  it('does not ask for a pasted key or password the stored copy provides', () => {
    const c = { method: 'key-stored' as const, keyPath: '', pastedKey: '', passphrase: '', password: '' };
    expect(fields(sharedCredentialIssues(c, false))).toEqual(['credential.pastedKey']);
    expect(sharedCredentialIssues(c, true)).toEqual([]);
    expect(credentialPayload(c, 'b')).toEqual({ copyFrom: 'b' });
    expect(credentialPayload({ ...c, method: 'password', password: 'pw' }, null)).toEqual({ password: 'pw' });
  });
});

describe('nodesToAdd', () => {
  it('builds the payload of the valid rows: roles in order, shared auth or the row’s IdentityFile', () => {
    const rows = [
      ...parseHostList('198.18.0.3 w1 etcd,worker\n300.1.1.1 bad', D),
      ...rowsFromSshConfig([{ host: 'w2', hostName: '198.18.0.5', identityFile: '/k/w2', proxyJump: 'm1' }], D),
    ];
    const existing = [node({ id: 'm1id', name: 'm1' })];
    const cred = { method: 'agent' as const, keyPath: '', pastedKey: '', passphrase: '', password: '' };
    const idx = validRowIndexes(rows, validateRows(rows, existing));
    expect(idx).toEqual([0, 2]);
    expect(nodesToAdd(rows, idx, cred, '', existing)).toEqual([
      {
        name: 'w1',
        address: '198.18.0.3',
        port: 22,
        user: 'root',
        roles: ['worker', 'etcd'],
        auth: { method: 'agent' },
        jumpNodeId: null,
      },
      {
        name: 'w2',
        address: '198.18.0.5',
        port: 22,
        user: 'root',
        roles: [],
        auth: { method: 'key-file', keyPath: '/k/w2' },
        jumpNodeId: 'm1id',
      },
    ]);
    expect(serverRowIssues({ 'nodes.1.address': 'Same machine' }, idx)).toEqual([
      { field: 'rows.2.address', message: 'Same machine' },
    ]);
  });
});
