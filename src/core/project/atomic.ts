/**
 * Atomic file replacement: write a temp file in the same folder, fsync it, rename it over the
 * target, fsync the folder. A reader sees the old file or the new one, never half of one; after
 * a crash the target is one or the other too.
 */
import {randomBytes} from 'node:crypto'
import {constants as fsc} from 'node:fs'
import {link, mkdir, open, rename, unlink} from 'node:fs/promises'
import path from 'node:path'
import {UserError} from '../errors.js'

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

export interface OutputFileOptions extends AtomicWriteOptions {
  /** how the user named the file in messages, e.g. '--out' */
  flag: string
  /** mode of folders created on the way (default 0o777 minus the umask) */
  dirMode?: number
}

/**
 * A file the user named on the command line (--out, --generate-key): its folder is created
 * when missing, as `mkdir -p` would, and the file written atomically. Anything the file system
 * refuses (no permission, read-only, a file where a folder should be, disk full) is the user's
 * to fix: a UserError naming the flag, the file and the reason, never a crash.
 */
export async function writeOutputFile(file: string, data: string | Uint8Array, options: OutputFileOptions): Promise<void> {
  let step = 'folder'
  try {
    await mkdir(path.dirname(file), {recursive: true, ...(options.dirMode === undefined ? {} : {mode: options.dirMode})})
    step = 'file'
    await atomicWriteFile(file, data, options)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) throw err
    // mkdir -p says EEXIST when a part of the path is a file
    const why = step === 'folder' && code === 'EEXIST' ? OUTPUT_ERRORS.ENOTDIR : OUTPUT_ERRORS[code] ?? code
    throw new UserError(`${options.flag} ${file}: cannot write it (${why})`, {code: 'OUTPUT_UNWRITABLE', cause: err})
  }
}

const OUTPUT_ERRORS: Record<string, string> = {
  EACCES: 'permission denied', EPERM: 'operation not permitted', EROFS: 'read-only file system',
  ENOTDIR: 'a part of the path is a file, not a folder', EISDIR: 'it is a folder', EEXIST: 'it already exists',
  ENOSPC: 'no space left on the device', EDQUOT: 'disk quota exceeded', ENOENT: 'no such folder',
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
