/**
 * Reading files a user names (checkpoints, weights, .npy, configs, manifests, images): regular files only, and no more
 * than they hold. A FIFO would block the reader until something writes to it (a run hung before its first step, deaf
 * to signals), a device such as /dev/zero never ends (a read grew past 5 GB, then crashed): both are refused before a
 * byte is read. The file is opened without blocking and checked on the open descriptor, so a path swapped between a
 * check and the open cannot slip through, and read up to the size it had when opened.
 */
import * as fs from 'fs';

/** A path that names something other than a regular file (a FIFO, a device, a socket, a folder). */
export class NotARegularFileError extends Error {
  override name = 'NotARegularFileError';
  readonly code = 'ENOTREG';
}

function kindOf(stat: fs.Stats): string {
  if (stat.isFIFO()) return 'a FIFO (named pipe)';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  if (stat.isDirectory()) return 'a folder';
  return 'not a regular file';
}

function refuse(file: string, stat: fs.Stats): NotARegularFileError {
  return new NotARegularFileError(`${file} is ${kindOf(stat)}, not a regular file`);
}

// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; it changes nothing for a regular file.
const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK;

/**
 * The bytes of the regular file `file`, at most `maxBytes` of them (more is an error naming the file). Errors of the
 * open (ENOENT, EACCES) come as Node gives them; anything but a regular file is a {@link NotARegularFileError}.
 */
export async function readRegularFile(file: string, options: { maxBytes?: number } = {}): Promise<Buffer> {
  const handle = await fs.promises.open(file, OPEN_FLAGS);
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw refuse(file, stat);
    checkSize(file, stat.size, options.maxBytes);
    const bytes = Buffer.allocUnsafe(stat.size);
    let read = 0;
    while (read < bytes.length) {
      const { bytesRead } = await handle.read(bytes, read, bytes.length - read, read);
      if (bytesRead === 0) break; // shrank meanwhile
      read += bytesRead;
    }
    return bytes.subarray(0, read);
  } finally {
    await handle.close();
  }
}

/** {@link readRegularFile}, synchronously (for the few readers that run while objects are constructed). */
export function readRegularFileSync(file: string, options: { maxBytes?: number } = {}): Buffer {
  const fd = fs.openSync(file, OPEN_FLAGS);
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw refuse(file, stat);
    checkSize(file, stat.size, options.maxBytes);
    const bytes = Buffer.allocUnsafe(stat.size);
    let read = 0;
    while (read < bytes.length) {
      const bytesRead = fs.readSync(fd, bytes, read, bytes.length - read, read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    return bytes.subarray(0, read);
  } finally {
    fs.closeSync(fd);
  }
}

/** Opens the regular file `file` for reading (a FIFO or device is refused, as by {@link readRegularFile}). */
export async function openRegularFile(file: string): Promise<fs.promises.FileHandle> {
  const handle = await fs.promises.open(file, OPEN_FLAGS);
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw refuse(file, stat);
    return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/**
 * Runs `use` with a path that names the regular file `file` as opened now, for code that opens paths itself (the
 * native JPEG decoder): /proc/self/fd/<fd> of a descriptor checked as {@link readRegularFile} checks it, held open
 * until `use` settles. A path checked and then handed on could be swapped for a FIFO in between; the descriptor's
 * file cannot. The open is synchronous (O_NONBLOCK, a few microseconds): three pool jobs per image cost more than the
 * decoding of a small JPEG. Errors of the open (ENOENT) come as Node gives them.
 */
export async function withRegularFilePath<T>(file: string, use: (openedPath: string) => Promise<T>): Promise<T> {
  const fd = fs.openSync(file, OPEN_FLAGS);
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw refuse(file, stat);
    return await use(`/proc/self/fd/${fd}`);
  } finally {
    fs.closeSync(fd);
  }
}

function checkSize(file: string, size: number, maxBytes: number | undefined): void {
  if (maxBytes !== undefined && size > maxBytes) {
    throw new RangeError(`${file} holds ${size} bytes, more than the ${maxBytes} it may`);
  }
}
