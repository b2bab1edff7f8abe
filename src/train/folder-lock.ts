/**
 * A run folder's lock: while a run writes `<out>`, `<out>/.lock` names its process (pid, host, boot and process start),
 * so a second run on the same folder gets a clear error instead of interleaving metrics and checkpoints. A lock whose
 * process is gone (killed, crashed, the machine rebooted, its pid reused) is stale and taken over.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { makeFolder, removeTemporaries, temporaryFor } from '../atomic-file';

/** Who holds a lock, as the lock file records it. */
export interface LockOwner {
  pid: number;
  host: string;
  /** When the lock was taken (ISO time). */
  since: string;
  /** Linux: the boot the process ran in, and its start (clock ticks after boot), so a reused pid is told apart. */
  bootId?: string;
  processStart?: string;
}

const LOCK_NAME = '.lock';
/** The files a run writes in its folder, whose leftover temporary files are removed when a run starts. */
export const RUN_FILES = ['last.ckpt', 'best.ckpt', 'metrics.jsonl', 'report.html', 'report.svg', LOCK_NAME, `${LOCK_NAME}.takeover`] as const;

const readText = (file: string) => {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
};

/** The start time of process `pid` in clock ticks after boot (field 22 of /proc/<pid>/stat), where there is a /proc. */
function processStart(pid: number): string | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

function currentOwner(): LockOwner {
  return {
    pid: process.pid, host: os.hostname(), since: new Date().toISOString(),
    bootId: readText('/proc/sys/kernel/random/boot_id'), processStart: processStart(process.pid),
  };
}

/** Locks held by this process, by lock file; released on exit even when the process exits at once. */
const held = new Map<string, LockOwner>();
process.on('exit', () => {
  for (const [file, owner] of held) {
    if (sameOwner(readOwner(file), owner)) fs.rmSync(file, { force: true });
  }
});

function readOwner(file: string): LockOwner | undefined {
  const text = readText(file);
  if (text === undefined) return undefined;
  try {
    const owner = JSON.parse(text);
    return typeof owner?.pid === 'number' && typeof owner?.host === 'string' ? owner : undefined;
  } catch {
    return undefined;
  }
}

const sameOwner = (a: LockOwner | undefined, b: LockOwner | undefined) =>
  a !== undefined && b !== undefined && a.pid === b.pid && a.host === b.host && a.since === b.since && a.processStart === b.processStart;

/** Whether `owner`'s process is certainly gone. A lock from another host is never judged stale: its process is out of sight. */
function isStale(owner: LockOwner, file: string): boolean {
  if (owner.host !== os.hostname()) return false;
  const me = currentOwner();
  if (owner.bootId && me.bootId && owner.bootId !== me.bootId) return true;
  if (owner.pid === process.pid && owner.processStart === me.processStart) return !held.has(file);
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return true;
  }
  const start = processStart(owner.pid);
  return owner.processStart !== undefined && start !== undefined && start !== owner.processStart;
}

function describe(owner: LockOwner): string {
  const mine = owner.pid === process.pid && owner.host === os.hostname() ? ', this process' : '';
  return `process ${owner.pid} on ${owner.host} (since ${owner.since}${mine})`;
}

/**
 * Creates `file` holding `owner` unless a file of that name exists, atomically and complete: a hard link of a fully
 * written draft. False when the name is taken.
 */
async function createExclusive(file: string, owner: LockOwner): Promise<boolean> {
  const draft = temporaryFor(file);
  await fs.promises.writeFile(draft, JSON.stringify(owner), { flag: 'wx' });
  try {
    await fs.promises.link(draft, file);
    return true;
  } catch (err) {
    // ENOENT: the lock's holder removed the draft as a leftover; the name is taken either way.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOENT') return false;
    throw err;
  } finally {
    await fs.promises.rm(draft, { force: true });
  }
}

/** The lock of one run folder, held by this process until {@link release}. */
export class RunFolderLock {
  private constructor(readonly folder: string, readonly file: string, private readonly owner: LockOwner) {}

  /**
   * Creates `folder` if needed and locks it for this process; removes the temporary files that killed runs left there.
   * A folder locked by a live process (or by one on another host) is an error naming it; a stale lock is taken over.
   */
  static async acquire(folder: string): Promise<RunFolderLock> {
    const absolute = path.resolve(folder);
    try {
      await makeFolder(absolute);
      await fs.promises.access(absolute, fs.constants.W_OK | fs.constants.X_OK);
    } catch (err) {
      throw new Error(`cannot use ${folder} as the run folder: ${(err as Error).message}`);
    }
    const file = path.join(absolute, LOCK_NAME);
    const owner = currentOwner();
    for (let attempt = 0; attempt < 5; attempt++) {
      let created: boolean;
      try {
        created = await createExclusive(file, owner);
      } catch (err) {
        throw new Error(`cannot use ${folder} as the run folder: ${(err as Error).message}`);
      }
      if (created) {
        held.set(file, owner);
        await removeTemporaries(absolute, RUN_FILES);
        return new RunFolderLock(absolute, file, owner);
      }
      const other = readOwner(file);
      if (other === undefined) {
        if (fs.existsSync(file)) {
          throw new Error(`${folder} has a lock file (${file}) that is not simclr's: remove it if no run is using the folder`);
        }
        continue; // released meanwhile
      }
      if (!isStale(other, file)) {
        throw new Error(`${folder} is in use by another run: ${describe(other)} holds ${file}. Wait for it, or train into ` +
          `another --out; if that process is gone (e.g. on another host), delete ${file}`);
      }
      await RunFolderLock.takeOver(file, other);
    }
    throw new Error(`cannot lock ${folder}: its lock file ${file} keeps changing`);
  }

  /**
   * Removes the stale lock of `stale`, unless another process took it over first: the removal happens under a second,
   * short-lived lock file, and only if the lock still names the same stale owner.
   */
  private static async takeOver(file: string, stale: LockOwner): Promise<void> {
    const guard = `${file}.takeover`;
    if (!(await createExclusive(guard, currentOwner()))) {
      const other = readOwner(guard);
      if (other && isStale(other, guard)) await fs.promises.rm(guard, { force: true });
      await new Promise((resolve) => setTimeout(resolve, 50));
      return;
    }
    try {
      if (sameOwner(readOwner(file), stale)) await fs.promises.rm(file, { force: true });
    } finally {
      await fs.promises.rm(guard, { force: true });
    }
  }

  /** Whether this process still holds the lock. */
  get held(): boolean {
    return held.get(this.file) === this.owner;
  }

  /** Releases the lock (it is also released when the process exits). */
  async release(): Promise<void> {
    if (!this.held) return;
    held.delete(this.file);
    if (sameOwner(readOwner(this.file), this.owner)) await fs.promises.rm(this.file, { force: true });
  }
}
