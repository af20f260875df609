import {existsSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import path from 'node:path'
import {Flags} from '@oclif/core'
import {PatchpointCommand} from '../../cli/base-command.js'
import {createBundle, generateSigningKey} from '../../core/bundle/bundle.js'
import {UserError} from '../../core/errors.js'
import {writeOutputFile} from '../../core/project/atomic.js'
import {findProject} from '../../core/project/find.js'

export interface RulesBundleResult {
  /** the bundle written, or the private key written with --generate-key */
  file: string
  /** the public key written with --generate-key */
  publicKey?: string
  keyId: string
  files?: number
  created?: string
}

export class RulesBundle extends PatchpointCommand<typeof RulesBundle> {
  static override summary = 'Make a signed rule bundle (Ed25519) of a rules folder, for `patchpoint rules update`.'

  static override description = `The bundle is one JSON file: a manifest pinning every file by size and SHA-256, the files
(base64), and an Ed25519 signature over the manifest. Gateways install it with
\`patchpoint rules update --from FILE|DIR|URL\` when the signer's public key is in their
.patchpoint/trusted-keys/ folder.

--generate-key FILE makes a new key pair: FILE (private, mode 0600; keep it off the gateways)
and FILE.pub (public: copy it into each gateway's .patchpoint/trusted-keys/).`

  static override examples = [
    {description: 'Make a signing key once.', command: '<%= config.bin %> <%= command.id %> --generate-key ~/.patchpoint/signing.key'},
    {description: "Bundle this project's rules/.", command: '<%= config.bin %> <%= command.id %> --key ~/.patchpoint/signing.key --out rules-2026-03.bundle.json'},
  ]

  static override flags = {
    key: Flags.string({summary: 'Ed25519 private key (PEM) to sign with.', helpValue: 'FILE', exclusive: ['generate-key']}),
    out: Flags.string({summary: 'Bundle file to write (default: rules-<date>.bundle.json).', helpValue: 'FILE'}),
    dir: Flags.string({summary: "Rules folder to bundle (default: the project's rules/).", helpValue: 'DIR'}),
    comment: Flags.string({summary: 'Free text stored in the signed manifest.', helpValue: 'TEXT'}),
    'generate-key': Flags.string({summary: 'Write a new key pair to FILE and FILE.pub, then exit.', helpValue: 'FILE'}),
  }

  public async run(): Promise<RulesBundleResult> {
    const f = this.flags
    if (f['generate-key']) {
      const file = path.resolve(f['generate-key'])
      if (existsSync(file) || existsSync(file + '.pub')) throw new UserError(`${file} or ${file}.pub already exists; not overwritten`)
      const k = generateSigningKey()
      // a missing folder is made private: it holds the signing key
      await writeOutputFile(file, k.privatePem, {flag: '--generate-key', mode: 0o600, overwrite: false, dirMode: 0o700})
      await writeOutputFile(file + '.pub', k.publicPem, {flag: '--generate-key', mode: 0o644, overwrite: false})
      if (!this.jsonEnabled()) this.log(`key ${k.keyId}: private ${file}, public ${file}.pub`)
      return {file, publicKey: file + '.pub', keyId: k.keyId}
    }
    if (!f.key) throw new UserError('missing --key FILE (make one with --generate-key FILE)', {code: 'FLAG_INVALID'})
    const dir = path.resolve(f.dir ?? path.join(findProject({explicit: f.project, env: process.env.PATCHPOINT_PROJECT, cwd: process.cwd()}).dir, 'rules'))
    let pem: string
    try {
      pem = await readFile(path.resolve(f.key), 'utf8')
    } catch (e) {
      throw new UserError(`--key: cannot read ${f.key} (${(e as NodeJS.ErrnoException).code ?? 'error'})`)
    }
    if (!existsSync(dir)) throw new UserError(`${dir}: no such folder, nothing to bundle`, {code: 'BUNDLE_CREATE', suggestion: 'put the rule files in the project\'s rules/ folder, or name one with --dir'})
    let bundle
    try {
      bundle = createBundle(dir, pem, {comment: f.comment})
    } catch (e) {
      throw new UserError(`cannot make the bundle: ${(e as Error).message}`, {code: 'BUNDLE_CREATE'})
    }
    if (bundle.manifest.files.length === 0) throw new UserError(`${dir}: no files to bundle`)
    const out = path.resolve(f.out ?? `rules-${bundle.manifest.created.slice(0, 10)}.bundle.json`)
    await writeOutputFile(out, JSON.stringify(bundle) + '\n', {flag: '--out'})
    if (!this.jsonEnabled()) this.log(`${out}: ${bundle.manifest.files.length} file(s) from ${dir}, signed by key ${bundle.manifest.key_id}`)
    return {file: out, keyId: bundle.manifest.key_id, files: bundle.manifest.files.length, created: bundle.manifest.created}
  }
}
