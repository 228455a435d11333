// Issue 12's pure pieces: the CRC-32C that `snapshot status` prints, and decoding etcd's
// SnapshotResponse off the wire (field numbers of etcdserverpb/rpc.proto), and cutting a gRPC
// response body into messages however HTTP/2 split it.
import { describe, expect, it } from 'vitest';
import { crc32c, crc32cJs } from '../../src/main/vault/boltstatus';
import { decodeSnapshotPieces, decodeSnapshotResponse } from '../../src/main/etcd/snapshot-stream';
import { MessageParser } from '../../src/main/etcd/grpc-h2';

describe('gRPC message framing', () => {
  const frame = (m: Buffer, flag = 0) => {
    const h = Buffer.alloc(5);
    h[0] = flag;
    h.writeUInt32BE(m.length, 1);
    return Buffer.concat([h, m]);
  };
  const msgs = [Buffer.from('first'), Buffer.alloc(0), Buffer.alloc(70_000, 9), Buffer.from('last')];
  const body = Buffer.concat(msgs.map((m) => frame(m)));

  it('gives the messages whole and in order, at any split of the body (byte by byte too)', () => {
    for (const size of [1, 3, 5, 6, 4096, 16_384, body.length]) {
      const p = new MessageParser();
      const got: Buffer[] = [];
      for (let off = 0; off < body.length; off += size) got.push(...p.push(body.subarray(off, off + size)));
      p.end();
      expect(got.map((b) => b.toString('hex'))).toEqual(msgs.map((b) => b.toString('hex')));
    }
  });

  it('gives each message as views of the chunks it came in (no copy), at any split', () => {
    for (const size of [1, 5, 16_384, body.length]) {
      const p = new MessageParser();
      const chunks: Buffer[] = [];
      const got: Buffer[][] = [];
      for (let off = 0; off < body.length; off += size) {
        const c = body.subarray(off, off + size);
        chunks.push(c);
        got.push(...p.pushParts(c));
      }
      p.end();
      expect(got.map((m) => Buffer.concat(m).toString('hex'))).toEqual(msgs.map((b) => b.toString('hex')));
      // every piece of the big message shares memory with the body: nothing was joined
      for (const piece of got[2]) expect(piece.buffer).toBe(body.buffer);
    }
  });

  it('refuses a compressed message and a body that ends inside a message', () => {
    expect(() => new MessageParser().push(frame(Buffer.from('x'), 1))).toThrow(/compressed/);
    const p = new MessageParser();
    p.push(body.subarray(0, 12));
    expect(() => p.end()).toThrow(/ended inside a message/);
  });
});

describe('crc32c', () => {
  it('matches the Castagnoli check value and runs across chunks like Go’s crc32.Update', () => {
    expect(crc32c(0, Buffer.from('123456789'))).toBe(0xe3069283);
    const all = Buffer.from('The quick brown fox jumps over the lazy dog, again and again.');
    const split = crc32c(crc32c(crc32c(0, all.subarray(0, 7)), all.subarray(7, 40)), all.subarray(40));
    expect(split).toBe(crc32c(0, all));
    expect(crc32c(0, Buffer.alloc(0))).toBe(0);
  });

  it('the native CRC (hardware, @node-rs/crc32) and the fallback agree, running state included', () => {
    const buf = Buffer.from(Array.from({ length: 70_001 }, (_, i) => (i * 31 + (i >> 7)) & 0xff));
    expect(crc32c(0, buf)).toBe(crc32cJs(0, buf));
    const part = crc32c(crc32c(0, buf.subarray(0, 4096)), buf.subarray(4096));
    expect(part).toBe(crc32cJs(crc32cJs(0, buf.subarray(0, 4096)), buf.subarray(4096)));
    expect(crc32c(0, new Uint8Array(buf.buffer, buf.byteOffset + 3, 100))).toBe(crc32cJs(0, buf.subarray(3, 103)));
  });
});

describe('decodeSnapshotResponse', () => {
  it('reads remaining_bytes (2), blob (3) and version (4), skipping the header (1)', () => {
    const blob = Buffer.from('bolt-bytes');
    const msg = Buffer.concat([
      Buffer.from([0x0a, 0x02, 0x18, 0x05]), // header { revision: 5 }
      Buffer.from([0x10, 0xac, 0x02]), // remaining_bytes = 300
      Buffer.from([0x1a, blob.length]),
      blob,
      Buffer.from([0x22, 0x05]),
      Buffer.from('3.6.0'),
    ]);
    expect(decodeSnapshotResponse(msg)).toEqual({ remaining: 300, blob, version: '3.6.0' });
  });

  it('decodes a message given in pieces without joining its blob, wherever the pieces split', () => {
    const blob = Buffer.from(Array.from({ length: 40_000 }, (_, i) => (i * 7) & 0xff));
    const msg = Buffer.concat([
      Buffer.from([0x0a, 0x02, 0x18, 0x05]),
      Buffer.from([0x10, 0xac, 0x02]),
      Buffer.from([0x1a, 0xc0, 0xb8, 0x02]), // blob, 40000 bytes
      blob,
      Buffer.from([0x22, 0x05]),
      Buffer.from('3.6.0'),
    ]);
    for (const cuts of [[16_384, 32_768], [2], [9], [11], [12], [40_011], [40_012, 40_014], [1, 2, 3, 4, 5, 6, 7, 8]]) {
      const parts: Buffer[] = [];
      let at = 0;
      for (const c of [...cuts, msg.length]) {
        parts.push(msg.subarray(at, c));
        at = c;
      }
      const m = decodeSnapshotPieces(parts);
      expect([m.remaining, m.version, m.blobBytes]).toEqual([300, '3.6.0', blob.length]);
      expect(Buffer.concat(m.blob).equals(blob), `cut at ${cuts.join(',')}`).toBe(true);
    }
    // a first piece that holds the blob's start gives views, not copies
    const m = decodeSnapshotPieces([msg.subarray(0, 16_384), msg.subarray(16_384)]);
    expect(m.blob.every((p) => p.buffer === msg.buffer)).toBe(true);
  });

  it('gives an empty blob and no version for an empty message', () => {
    const m = decodeSnapshotResponse(Buffer.alloc(0));
    expect([m.remaining, m.blob.length, m.version]).toEqual([0, 0, '']);
  });
});
