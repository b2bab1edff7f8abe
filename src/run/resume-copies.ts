/**
 * The checkpoint copies a data-parallel resume writes on ranks other than 0 (in the temporary folder, named after the
 * process): how they are named, and the sweep that removes those of processes that are gone. Free of LibTorch, so that
 * the launcher, which loads none, sweeps after its workers.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const RESUME_COPY_PREFIX = 'simclr-resume-';
const RESUME_COPY = new RegExp(`^${RESUME_COPY_PREFIX}(\\d+)-`);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the checkpoint copies of resumes whose process is gone: a worker killed while it resumed (SIGKILL, or a
 * SIGTERM before it handles signals) cannot remove its own. Run by every resume and by the launcher once its workers
 * have exited, so that none stays in the temporary folder for good.
 */
export function sweepStaleResumeCopies(folder = os.tmpdir()): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(folder);
  } catch {
    return; // no temporary folder to sweep
  }
  for (const entry of entries) {
    const owner = RESUME_COPY.exec(entry)?.[1];
    if (owner === undefined || Number(owner) === process.pid || alive(Number(owner))) continue;
    fs.rmSync(path.join(folder, entry), { recursive: true, force: true });
  }
}
