import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import * as zlib from 'zlib';
import { Tensor } from '../src';
import { readCheckpoint, readCheckpointHeader, writeCheckpoint } from '../src/train/checkpoint';
import { describeWithTool } from './helpers/tools';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-ckpt-'));

describe('checkpoint files', () => {
  it('round-trip metadata and tensors of every dtype exactly', async () => {
    const file = path.join(tmp(), 'a.ckpt');
    const tensors = {
      w: Tensor.fromTypedArray(new Float32Array([1.5, -2, 3.25]), [3]),
      d: Tensor.fromTypedArray(new Float64Array([Math.PI]), [1, 1]),
      n: Tensor.fromTypedArray(new BigInt64Array([7n]), []),
      u: Tensor.fromTypedArray(new Uint8Array([0, 255, 3]), [3]),
    };
    await writeCheckpoint(file, { meta: { epoch: 3, rng: [1, 2, 3, 4], note: 'x' }, tensors });
    const back = await readCheckpoint<{ epoch: number; rng: number[]; note: string }>(file);
    expect(back.meta).toEqual({ epoch: 3, rng: [1, 2, 3, 4], note: 'x' });
    for (const [name, t] of Object.entries(tensors)) {
      expect(back.tensors[name].shape).toEqual(t.shape);
      expect(back.tensors[name].dtype).toBe(t.dtype);
      expect(back.tensors[name].toTypedArray()).toEqual(t.toTypedArray());
    }
  });

  it('reports foreign, truncated and missing files clearly', async () => {
    const dir = tmp();
    const file = path.join(dir, 'a.ckpt');
    await writeCheckpoint(file, { meta: {}, tensors: { w: Tensor.ones([1000]) } });
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(path.join(dir, 'cut.ckpt'), bytes.subarray(0, bytes.length - 100));
    fs.writeFileSync(path.join(dir, 'other.ckpt'), 'hello world, this is not a checkpoint');
    await expect(readCheckpoint(path.join(dir, 'cut.ckpt'))).rejects.toThrow(/truncated/);
    await expect(readCheckpoint(path.join(dir, 'other.ckpt'))).rejects.toThrow(/not a simclr checkpoint/);
    await expect(readCheckpoint(path.join(dir, 'missing.ckpt'))).rejects.toThrow(/Cannot read checkpoint/);
  });

  it('reads the header alone (meta and tensor list) without the tensor data', async () => {
    const dir = tmp();
    const file = path.join(dir, 'a.ckpt');
    await writeCheckpoint(file, { meta: { config: { seed: 3 } }, tensors: { w: Tensor.ones([1000]), b: Tensor.zeros([2, 3], { dtype: 'float64' }) } });
    const bytes = fs.readFileSync(file);
    // Without its tensor data the file is truncated for readCheckpoint, but its header is whole.
    fs.writeFileSync(path.join(dir, 'cut.ckpt'), bytes.subarray(0, bytes.length - 4000));
    for (const name of ['a.ckpt', 'cut.ckpt']) {
      const header = await readCheckpointHeader<{ config: { seed: number } }>(path.join(dir, name));
      expect(header.meta).toEqual({ config: { seed: 3 } });
      expect(header.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([['w', 'float32', [1000]], ['b', 'float64', [2, 3]]]);
    }
    await expect(readCheckpoint(path.join(dir, 'cut.ckpt'))).rejects.toThrow(/truncated/);
    fs.writeFileSync(path.join(dir, 'other.ckpt'), 'hello');
    fs.writeFileSync(path.join(dir, 'short.ckpt'), bytes.subarray(0, 30));
    await expect(readCheckpointHeader(path.join(dir, 'other.ckpt'))).rejects.toThrow(/not a simclr checkpoint/);
    await expect(readCheckpointHeader(path.join(dir, 'short.ckpt'))).rejects.toThrow(/truncated/);
    await expect(readCheckpointHeader(path.join(dir, 'missing.ckpt'))).rejects.toThrow(/Cannot read checkpoint/);
  });

  it('refuses tensor entries that lie outside the data section or disagree with their shape and dtype', async () => {
    const dir = tmp();
    const file = path.join(dir, 'a.ckpt');
    await writeCheckpoint(file, { meta: {}, tensors: { w: Tensor.ones([1000]), b: Tensor.ones([2]) } });
    // Rewrites the header with one change to the second tensor's entry, and its checksum to match (a crafted file, not
    // a damaged one); the data section stays as it is.
    const crafted = (change: Record<string, unknown>) => {
      const bytes = fs.readFileSync(file);
      const headerBytes = Number(bytes.readBigUInt64LE(16));
      const header = JSON.parse(bytes.toString('utf8', 24, 24 + headerBytes));
      Object.assign(header.tensors[1], change);
      let json = Buffer.from(JSON.stringify(header));
      json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
      const prefix = Buffer.from(bytes.subarray(0, 24));
      prefix.writeBigUInt64LE(BigInt(json.length), 16);
      prefix.writeUInt32LE(zlib.crc32(json), 12);
      const out = path.join(dir, `crafted-${Object.keys(change)[0]}.ckpt`);
      fs.writeFileSync(out, Buffer.concat([prefix, json, bytes.subarray(24 + headerBytes)]));
      return out;
    };
    await expect(readCheckpoint(crafted({ offset: -8 }))).rejects.toThrow(/at tensor b: its offset or size is not a non-negative integer/);
    await expect(readCheckpoint(crafted({ offset: 4008 }))).rejects.toThrow(/at tensor b: it lies past the end of the file/);
    await expect(readCheckpoint(crafted({ bytes: 4 }))).rejects.toThrow(/at tensor b: its shape \[2\] does not match its 4 bytes/);
    await expect(readCheckpoint(crafted({ shape: [-2] }))).rejects.toThrow(/at tensor b: its shape is not a list of sizes/);
    await expect(readCheckpoint(crafted({ dtype: 'float16' }))).rejects.toThrow(/at tensor b: unknown dtype float16/);
  });

  it('carries checksums: a flipped byte in a tensor or an edited header is refused naming the file and what changed', async () => {
    const dir = tmp();
    const file = path.join(dir, 'a.ckpt');
    await writeCheckpoint(file, { meta: { epoch: 1 }, tensors: { 'model/conv1.weight': Tensor.fromTypedArray(new Float32Array([0.5, -0.25, 2])), b: Tensor.ones([2]) } });
    const bytes = fs.readFileSync(file);
    const headerBytes = Number(bytes.readBigUInt64LE(16));
    // One bit of the first tensor's data.
    const flipped = Buffer.from(bytes);
    flipped[24 + headerBytes + 1] ^= 0x10;
    fs.writeFileSync(path.join(dir, 'flipped.ckpt'), flipped);
    await expect(readCheckpoint(path.join(dir, 'flipped.ckpt'))).rejects
      .toThrow(`${path.join(dir, 'flipped.ckpt')} is corrupt: tensor model/conv1.weight does not match the checksum written with it`);
    // The header edited in place, its length kept: float32 read as int32 would load 0.5 as 1056964608.
    const edited = Buffer.from(bytes.toString('latin1').replace('"dtype":"float32"', '"dtype":"int32"  '), 'latin1');
    expect(edited.length).toBe(bytes.length);
    fs.writeFileSync(path.join(dir, 'edited.ckpt'), edited);
    await expect(readCheckpoint(path.join(dir, 'edited.ckpt'))).rejects.toThrow(`${path.join(dir, 'edited.ckpt')} is corrupt: its header does not match`);
    await expect(readCheckpointHeader(path.join(dir, 'edited.ckpt'))).rejects.toThrow('is corrupt: its header');
    // Read anyway when asked.
    const anyway = await readCheckpoint(path.join(dir, 'flipped.ckpt'), { verify: false });
    expect(anyway.tensors['model/conv1.weight'].toTypedArray()).not.toEqual(new Float32Array([0.5, -0.25, 2]));
    expect((await readCheckpoint(file)).tensors['model/conv1.weight'].toTypedArray()).toEqual(new Float32Array([0.5, -0.25, 2]));
  });

  it('reads version 1 checkpoints, which had no checksums', async () => {
    const dir = tmp();
    const file = path.join(dir, 'a.ckpt');
    await writeCheckpoint(file, { meta: { epoch: 2 }, tensors: { w: Tensor.ones([3]) } });
    const bytes = fs.readFileSync(file);
    const headerBytes = Number(bytes.readBigUInt64LE(16));
    const header = JSON.parse(bytes.toString('utf8', 24, 24 + headerBytes));
    for (const entry of header.tensors) delete entry.crc32;
    let json = Buffer.from(JSON.stringify(header));
    json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
    const prefix = Buffer.from(bytes.subarray(0, 24));
    prefix.writeUInt32LE(1, 8);
    prefix.writeUInt32LE(0, 12);
    prefix.writeBigUInt64LE(BigInt(json.length), 16);
    fs.writeFileSync(path.join(dir, 'v1.ckpt'), Buffer.concat([prefix, json, bytes.subarray(24 + headerBytes)]));
    const back = await readCheckpoint<{ epoch: number }>(path.join(dir, 'v1.ckpt'));
    expect([back.meta.epoch, back.tensors.w.toTypedArray()]).toEqual([2, new Float32Array([1, 1, 1])]);
  });

  it('best.ckpt is never partial: linking it to a checkpoint, killed at random moments, leaves a whole old or new file', async () => {
    const dir = tmp();
    // Two complete 8 MB checkpoints; the child makes best.ckpt a name of one, then the other, until it is killed.
    const sources = [0, 1].map((value) => path.join(dir, `last-${value}.ckpt`));
    for (const [value, file] of sources.entries()) {
      await writeCheckpoint(file, { meta: { value }, tensors: { w: Tensor.fromTypedArray(new Float32Array(2 << 20).fill(value), [2 << 20]) } });
    }
    const best = path.join(dir, 'best.ckpt');
    const script = `
      const { linkFileAtomic } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'atomic-file'))});
      (async () => {
        for (let i = 0; ; i++) {
          await linkFileAtomic(${JSON.stringify(sources)}[i % 2], ${JSON.stringify(best)});
          if (i === 0) process.stdout.write('ready\\n');
        }
      })();`;
    for (let round = 0; round < 8; round++) {
      const writer = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => writer.stdout!.once('data', () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, 5 + 23 * round));
      writer.kill('SIGKILL');
      writer.stdout!.destroy();
      await new Promise((resolve) => writer.once('exit', resolve));
      const { meta, tensors } = await readCheckpoint<{ value: number }>(best);
      const data = tensors.w.toTypedArray() as Float32Array;
      expect(data.length).toBe(2 << 20);
      expect(data.every((v) => v === meta.value)).toBe(true);
    }
  });

  it('is never half-written: a writer killed at random moments leaves a whole old or new checkpoint', async () => {
    const dir = tmp();
    const file = path.join(dir, 'last.ckpt');
    // The child rewrites an 8 MB checkpoint in a loop, alternating two contents, until it is killed.
    const script = `
      const { Tensor } = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});
      const { writeCheckpoint } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'train', 'checkpoint'))});
      (async () => {
        for (let i = 0; ; i++) {
          const value = i % 2;
          await writeCheckpoint(${JSON.stringify(file)}, { meta: { value }, tensors: { w: Tensor.fromTypedArray(new Float32Array(2 << 20).fill(value), [2 << 20]) } });
          if (i === 0) process.stdout.write('ready\\n');
        }
      })();`;
    for (let round = 0; round < 5; round++) {
      const writer = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => writer.stdout!.once('data', () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, 20 + 37 * round));
      writer.kill('SIGKILL');
      writer.stdout!.destroy();
      await new Promise((resolve) => writer.once('exit', resolve));
      const { meta, tensors } = await readCheckpoint<{ value: number }>(file);
      const data = tensors.w.toTypedArray() as Float32Array;
      expect(data.length).toBe(2 << 20);
      expect(data.every((v) => v === meta.value)).toBe(true);
    }
  });
});

// A small tmpfs (root mounts it, as CI runs) is a disk with room for one checkpoint but not two.
const canMount = (() => {
  if (process.getuid?.() !== 0) return false;
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-mount-'));
  const ok = require('child_process').spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe]).status === 0;
  if (ok) require('child_process').spawnSync('umount', [probe]);
  fs.rmSync(probe, { recursive: true, force: true });
  return ok;
})();

describeWithTool('a full disk', 'a tmpfs mount (root)', canMount ? 'mount' : undefined, () => {
  it('names the checkpoint, says it needs room for two, and leaves the previous one whole and no temporary file', async () => {
    const disk = fs.mkdtempSync(path.join(os.tmpdir(), 'simclr-full-'));
    expect(require('child_process').spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=160k', 'tmpfs', disk]).status).toBe(0);
    try {
      const file = path.join(disk, 'last.ckpt');
      const tensors = (value: number) => ({ w: Tensor.fromTypedArray(new Float32Array(25_000).fill(value)) }); // 100 kB
      await writeCheckpoint(file, { meta: { step: 1 }, tensors: tensors(1) });
      await expect(writeCheckpoint(file, { meta: { step: 2 }, tensors: tensors(2) })).rejects
        .toThrow(`Cannot write ${file}: no space left on its disk (ENOSPC). It is written beside the file it replaces`);
      const kept = await readCheckpoint<{ step: number }>(file);
      expect([kept.meta.step, (kept.tensors.w.toTypedArray() as Float32Array)[0]]).toEqual([1, 1]);
      expect(fs.readdirSync(disk)).toEqual(['last.ckpt']);
    } finally {
      require('child_process').spawnSync('umount', [disk]);
      fs.rmSync(disk, { recursive: true, force: true });
    }
  });
});
