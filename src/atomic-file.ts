/**
 * Atomic file writes: readers see the old file or the whole new one, never a half-written file. Temporary files are
 * named `.<target name>.<pid>.<random>.tmp` beside their target, so that a process killed mid-write leaves a file that
 * {@link removeTemporaries} recognises.
 */
import * as fs from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';

/** A fresh temporary name for a write of `target`, beside it (what {@link removeTemporaries} recognises). */
export function temporaryFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Temporary files being written now: a process that exits meanwhile (a second Ctrl-C) removes them on its way out. */
const unfinished = new Set<string>();
process.on('exit', () => {
  for (const file of unfinished) fs.rmSync(file, { force: true });
});

/** Flushes a folder's entries (a rename in it) to disk; where a filesystem cannot, the rename still happened. */
async function syncFolder(folder: string): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(folder, 'r');
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on a folder; the data itself was synced before the rename.
  } finally {
    await handle?.close();
  }
}

/**
 * Writes `chunks` to a temporary file beside `target`, flushes it to disk, then renames it over `target` (rename is
 * atomic within one filesystem). On failure the temporary file is removed and `target` is untouched. Each chunk is
 * written before the next is taken, so a generator may reuse one buffer for all of them.
 */
export async function writeFileAtomic(target: string, chunks: Iterable<string | NodeJS.ArrayBufferView> | AsyncIterable<string | NodeJS.ArrayBufferView>): Promise<void> {
  const temporary = temporaryFor(target);
  unfinished.add(temporary);
  try {
    const handle = await fs.promises.open(temporary, 'wx');
    try {
      for await (const chunk of chunks) await writeAll(handle, typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(temporary, target);
  } catch (err) {
    await fs.promises.rm(temporary, { force: true });
    throw named(err, target);
  } finally {
    unfinished.delete(temporary);
  }
  await syncFolder(path.dirname(target));
}

/**
 * Writes all of `chunk`. FileHandle.write may write less than it is given without an error (a nearly full disk wrote
 * 61 440 of 100 000 bytes and said nothing): the rest is written in further calls, which fail once nothing fits.
 */
async function writeAll(handle: fs.promises.FileHandle, chunk: NodeJS.ArrayBufferView): Promise<void> {
  const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  for (let done = 0; done < bytes.length;) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done);
    if (bytesWritten === 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    done += bytesWritten;
  }
}

/**
 * A write error that names the file it was for (Node's ENOSPC says only "write"). A full disk gets what it means here:
 * the new file is written beside the old one, which it replaces only once complete, so the write needs room for both.
 */
function named(err: unknown, target: string): unknown {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return Object.assign(new Error(`Cannot write ${target}: no space left on its disk (${code}). It is written beside the ` +
      'file it replaces, which stays until the new one is complete, so the disk needs room for both: free some space or ' +
      'write elsewhere'), { code });
  }
  return err;
}

/**
 * Makes `target` a second name of the complete file `source` (best.ckpt of last.ckpt), atomically: a hard link under a
 * temporary name, renamed over `target`. The two names share the file until `source` is replaced by a rename, which
 * gives `source` a new file and leaves `target` the old one. Where hard links are not allowed, the file is copied to
 * the temporary name (and flushed) instead; either way `target` is never a partial file.
 */
export async function linkFileAtomic(source: string, target: string): Promise<void> {
  const temporary = temporaryFor(target);
  unfinished.add(temporary);
  try {
    try {
      await fs.promises.link(source, temporary);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV' && code !== 'EMLINK') throw err;
      await fs.promises.copyFile(source, temporary, fs.constants.COPYFILE_EXCL);
      const handle = await fs.promises.open(temporary, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    await fs.promises.rename(temporary, target);
  } catch (err) {
    await fs.promises.rm(temporary, { force: true });
    throw err;
  } finally {
    unfinished.delete(temporary);
  }
  await syncFolder(path.dirname(target));
}

/**
 * Removes the temporary files that writes of `names` (file names in `folder`) left behind when their process was
 * killed. Call it only while no other process can be writing them (the run folder's lock); returns the removed names.
 */
export async function removeTemporaries(folder: string, names: readonly string[]): Promise<string[]> {
  const pattern = /^\.(.+)\.\d+\.[0-9a-f]{8}\.tmp$/;
  const removed: string[] = [];
  for (const entry of await fs.promises.readdir(folder)) {
    const match = pattern.exec(entry);
    if (!match || !names.includes(match[1])) continue;
    await fs.promises.rm(path.join(folder, entry), { force: true });
    removed.push(entry);
  }
  return removed;
}

/**
 * `fs.mkdir(folder, { recursive: true })` without its failure modes: Node's recursive mkdir spins forever at 100 % CPU
 * on paths under /proc; this creates one level at a time and reports the first level it cannot create.
 */
export async function makeFolder(folder: string): Promise<void> {
  const absolute = path.resolve(folder);
  const missing: string[] = [];
  for (let at = absolute; ; at = path.dirname(at)) {
    const stat = await fs.promises.stat(at).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (stat) {
      if (!stat.isDirectory()) throw new Error(`${at} is not a folder`);
      break;
    }
    if (path.dirname(at) === at) break;
    missing.unshift(at);
  }
  for (const level of missing) {
    await fs.promises.mkdir(level).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }
}
