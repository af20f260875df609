/** A fake terminal for ink components under test: stdin in raw mode, stdout that keeps frames. */
import {EventEmitter} from 'node:events'

/** A terminal's stdin as ink reads it (raw mode, 'readable' + read()). */
export class FakeStdin extends EventEmitter {
  isTTY = true
  private queue: string[] = []
  setRawMode(): this { return this }
  setEncoding(): this { return this }
  ref(): this { return this }
  unref(): this { return this }
  resume(): this { return this }
  pause(): this { return this }
  read(): string | null { return this.queue.shift() ?? null }
  press(s: string): void {
    this.queue.push(s)
    this.emit('readable')
  }
}

/** A terminal's stdout: every write kept in `frames`. */
export class FakeStdout extends EventEmitter {
  isTTY = true
  frames: string[] = []
  constructor(public columns = 160, public rows = 30) {
    super()
  }

  write(s: string): boolean {
    this.frames.push(s)
    return true
  }

  /** the last frame written that `pred` accepts ('' when none) */
  lastWhere(pred: (frame: string) => boolean): string {
    return this.frames.filter(pred).at(-1) ?? ''
  }
}
