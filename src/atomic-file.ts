/** Atomic file writes: readers see the old file or the whole new one, never a half-written file. */
import * as fs from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';

/**
 * Writes `chunks` to a temporary file beside `target`, flushes it to disk, then renames it over `target` (rename is
 * atomic within one filesystem). On failure the temporary file is removed and `target` is untouched. Each chunk is
 * written before the next is taken, so a generator may reuse one buffer for all of them.
 */
export async function writeFileAtomic(target: string, chunks: Iterable<string | NodeJS.ArrayBufferView> | AsyncIterable<string | NodeJS.ArrayBufferView>): Promise<void> {
  const temporary = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await fs.promises.open(temporary, 'wx');
    try {
      for await (const chunk of chunks) await handle.write(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(temporary, target);
  } catch (err) {
    await fs.promises.rm(temporary, { force: true });
    throw err;
  }
}
