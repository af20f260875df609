import path from 'node:path'
import {Args, Flags} from '@oclif/core'
import {PatchpointCommand} from '../cli/base-command.js'
import {initProject} from '../core/project/init.js'
import type {InitResult} from '../core/project/init.js'

export class Init extends PatchpointCommand<typeof Init> {
  static override summary = 'Create a patchpoint project: a commented patchpoint.yaml and the .patchpoint/ state folder.'

  static override description = `Creates DIR (default: --project, else the current folder) if needed, writes patchpoint.yaml
with every setting explained and shown with its default, and the .patchpoint/ folder for event
logs and locks. Safe to run again: an existing project is left exactly as it is (created: false).`

  static override examples = [
    {description: 'Make the current folder a project.', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Create a project in /etc/patchpoint.', command: '<%= config.bin %> <%= command.id %> /etc/patchpoint'},
    {description: 'Machine-readable result.', command: '<%= config.bin %> <%= command.id %> /srv/gw --json'},
  ]

  static override args = {
    dir: Args.directory({description: 'project folder to create or check', required: false}),
  }

  static override flags = {
    force: Flags.boolean({description: 'allow a project inside the folder of another project'}),
  }

  public async run(): Promise<InitResult> {
    const dir = this.args.dir ?? this.flags.project ?? process.cwd()
    const result = await initProject(dir, {force: this.flags.force})
    if (result.created) {
      this.log(`Initialized patchpoint project in ${result.project}`)
      for (const f of result.files) this.log(`  created ${path.relative(result.project, f) || '.'}`)
      this.log('Next: edit patchpoint.yaml, then run `patchpoint config check`.')
    } else if (result.files.length > 0) {
      this.log(`${result.project} is already a patchpoint project; restored missing files:`)
      for (const f of result.files) this.log(`  created ${path.relative(result.project, f)}`)
    } else {
      this.log(`${result.project} is already a patchpoint project; nothing changed.`)
    }
    return result
  }
}
