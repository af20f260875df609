/**
 * Output helpers for commands.
 */
import Table from 'cli-table3'

/** True when a person is probably watching: stdout is a terminal and not running under CI. */
export function isInteractive(
  stream: {isTTY?: boolean} = process.stdout,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  return stream.isTTY === true && !env.CI
}

export interface RenderTableOptions {
  /** colours and box borders; default isInteractive() */
  interactive?: boolean
  /** column alignment, e.g. ['left', 'right'] */
  align?: ('left' | 'right' | 'center')[]
}

/**
 * A table as a string (no trailing newline). Interactive: boxed with a coloured header.
 * Otherwise: plain aligned columns without borders or colours, friendly to grep and logs.
 */
export function renderTable(
  head: string[],
  rows: readonly (readonly (string | number | boolean | null | undefined)[])[],
  options: RenderTableOptions = {},
): string {
  const interactive = options.interactive ?? isInteractive()
  const table = new Table({
    head,
    ...(options.align ? {colAligns: options.align} : {}),
    style: interactive ? {head: ['cyan']} : {head: [], border: [], 'padding-left': 0, 'padding-right': 2},
    chars: interactive
      ? undefined
      : {
          top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '',
          'bottom-left': '', 'bottom-right': '', left: '', 'left-mid': '', mid: '', 'mid-mid': '',
          right: '', 'right-mid': '', middle: '',
        },
  })
  for (const row of rows) table.push(row.map((c) => (c === null || c === undefined ? '' : String(c))))
  const out = table.toString()
  return interactive ? out : out.split('\n').map((l) => l.trimEnd()).join('\n')
}
