/**
 * Writes oclif.manifest.json after each build (`npm run build`): with it, oclif imports only the
 * command being run instead of every command module, which halves start-up time. The manifest
 * is derived from the built commands, so it cannot drift from them.
 */
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {Config, Plugin} from '@oclif/core'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const file = path.join(root, 'oclif.manifest.json')
fs.rmSync(file, {force: true}) // never load commands through a stale manifest
const config = await Config.load({root})
const plugin = config.plugins.get(config.pjson.name)
if (!(plugin instanceof Plugin)) throw new Error(`oclif did not load the ${config.pjson.name} plugin from ${root}`)
const tmp = `${file}.${process.pid}.tmp`
fs.writeFileSync(tmp, JSON.stringify(plugin.manifest, null, 2) + '\n')
fs.renameSync(tmp, file)
