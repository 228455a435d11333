// Intent: etcdctl's JSON is read without rounding 64-bit ids (shown in hex like etcdctl does), and
// partial output (some endpoints down) still yields the members that answered.
import { describe, expect, it } from 'vitest';
import {
  hexId,
  parseAlarms,
  parseEndpointStatus,
  parseMemberList,
  parseSnapshotStatus,
} from '../../src/main/cluster/etcdjson';

// Captured from etcdctl 3.4.23.
const memberList =
  '{"header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"raft_term":2},"members":[{"ID":13668033151171901709,"name":"t","peerURLs":["http://127.0.0.1:23801"],"clientURLs":["http://127.0.0.1:23791"]}]}';
const status =
  '[{"Endpoint":"http://127.0.0.1:23791","Status":{"header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":1,"raft_term":2},"version":"3.4.23","dbSize":20480,"leader":13668033151171901709,"raftIndex":4,"raftTerm":2,"raftAppliedIndex":4,"dbSizeInUse":16384}}]\nFailed to get the status of endpoint http://127.0.0.1:23799 (context deadline exceeded)\n';

describe('etcdctl JSON', () => {
  it('keeps 64-bit member ids exact', () => {
    expect(hexId('13668033151171901709')).toBe('bdae9bbc11dd390d');
    expect(parseMemberList(memberList)).toEqual([
      {
        id: 'bdae9bbc11dd390d',
        name: 't',
        peerUrls: ['http://127.0.0.1:23801'],
        clientUrls: ['http://127.0.0.1:23791'],
        isLearner: false,
      },
    ]);
  });

  it('reads endpoint status even when another endpoint failed', () => {
    const [s] = parseEndpointStatus(status);
    expect(s).toMatchObject({
      endpoint: 'http://127.0.0.1:23791',
      memberId: 'bdae9bbc11dd390d',
      leader: 'bdae9bbc11dd390d',
      version: '3.4.23',
      dbSize: 20480,
      raftIndex: 4,
      revision: 1,
    });
    expect(parseEndpointStatus('Failed to get the status of endpoint x')).toEqual([]);
  });

  it('reads alarms and snapshot status', () => {
    expect(parseAlarms('memberID:13668033151171901709 alarm:NOSPACE\n')).toEqual([
      { memberId: 'bdae9bbc11dd390d', alarm: 'NOSPACE' },
    ]);
    expect(parseSnapshotStatus('{"hash":1,"revision":51,"totalKey":60,"totalSize":20480}')).toEqual({
      hash: 1,
      revision: 51,
      totalKey: 60,
      totalSize: 20480,
    });
    expect(() => parseSnapshotStatus('{"hash":1}')).toThrow(/revision/);
  });
});
