/** Temporary folders of one test file. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** A maker of folders `simclr-<name>-XXXXXX` in the temporary folder, all removed after the file's tests. */
export function scratchFolders(name: string): () => string {
  const folders: string[] = [];
  afterAll(() => {
    for (const folder of folders) fs.rmSync(folder, { recursive: true, force: true });
  });
  return () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), `simclr-${name}-`));
    folders.push(folder);
    return folder;
  };
}
