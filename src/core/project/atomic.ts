/**
 * Atomic file replacement: write a temp file in the same folder, fsync it, rename it over the
 * target, fsync the folder. A reader sees the old file or the new one, never half of one; after
 * a crash the target is one or the other too.
 */
import {randomBytes} from 'node:crypto'
import {constants as fsc} from 'node:fs'
import {link, open, rename, unlink} from 'node:fs/promises'
import path from 'node:path'

export interface AtomicWriteOptions {
  /** file mode of a new file (default 0o644) */
  mode?: number
  /**
   * false: never replace an existing file (the new file appears atomically, complete, or the
   * call fails with EEXIST). Default true.
   */
  overwrite?: boolean
}

/** Temp name next to `file`: same folder, so rename is atomic (same filesystem). */
export function tempPathFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
}

export async function atomicWriteFile(
  file: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const tmp = tempPathFor(file)
  const fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, options.mode ?? 0o644)
  let done = false
  try {
    try {
      await fh.writeFile(data)
      await fh.sync()
    } finally {
      await fh.close()
    }
    if (options.overwrite === false) {
      // link() fails with EEXIST instead of replacing: atomic create-if-absent with full content
      await link(tmp, file)
    } else {
      await rename(tmp, file)
      done = true
    }
    await fsyncDir(path.dirname(file))
  } finally {
    if (!done) await unlink(tmp).catch(() => {})
  }
}

/** JSON with 2-space indent and a final newline, written atomically. */
export async function writeJsonAtomic(file: string, value: unknown, options: AtomicWriteOptions = {}): Promise<void> {
  await atomicWriteFile(file, JSON.stringify(value, null, 2) + '\n', options)
}

/** fsync a folder so a rename/create in it is durable; ignored where unsupported. */
export async function fsyncDir(dir: string): Promise<void> {
  let fh
  try {
    fh = await open(dir, fsc.O_RDONLY)
    await fh.sync()
  } catch {
    // some filesystems refuse fsync on a directory: durability is best effort there
  } finally {
    await fh?.close().catch(() => {})
  }
}
